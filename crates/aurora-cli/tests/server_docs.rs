//! Runs every example of `docs/server.md` against the real binary, in the
//! order shown, and compares each answer with the one printed: every
//! `curl` command of a `sh` block (and `aurora keys`, with
//! `VAR=$(…)` capturing a token for `$VAR`) is run; the blocks after it
//! (`json`: one value per command, `http`: status line, headers and body,
//! `text`: the events of a `curl -N` stream) are what it must answer,
//! with `"…"` standing for any value (or any part of a string). The error
//! tables must equal `aurora_server::ERROR_CODES` and `STREAM_ERROR_CODES`.

#![cfg(feature = "server")]

mod server_support;

use serde_json::Value as Json;
use server_support::{temp, Client, Server};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

fn guide() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/server.md");
    std::fs::read_to_string(path).expect("docs/server.md")
}

/// The fenced blocks of a Markdown text: (language, body).
fn blocks(md: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in md.lines() {
        match (&mut current, line.strip_prefix("```")) {
            (None, Some(lang)) => current = Some((lang.trim().to_string(), String::new())),
            (Some(_), Some(_)) => out.extend(current.take()),
            (Some((_, body)), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    out
}

/// A word of a shell command, and whether `$VAR` may be expanded in it
/// (not inside single quotes).
type Word = Vec<(String, bool)>;

/// Splits a `sh` block into commands of words: quotes may span lines; a
/// newline outside quotes ends a command.
fn commands(text: &str) -> Vec<Vec<Word>> {
    let mut cmds = Vec::new();
    let mut words: Vec<Word> = Vec::new();
    let mut word: Word = Vec::new();
    let mut part = String::new();
    let mut quote: Option<char> = None;
    let mut started = false;
    let flush_part = |word: &mut Word, part: &mut String, expand: bool| {
        if !part.is_empty() {
            word.push((std::mem::take(part), expand));
        }
    };
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        match (quote, ch) {
            (Some('\''), '\'') => {
                flush_part(&mut word, &mut part, false);
                quote = None;
            }
            (Some('"'), '"') => {
                flush_part(&mut word, &mut part, true);
                quote = None;
            }
            (Some(_), c) => part.push(c),
            (None, '\'' | '"') => {
                flush_part(&mut word, &mut part, true);
                quote = Some(ch);
                started = true;
            }
            (None, '\\') if chars.peek() == Some(&'\n') => {
                chars.next();
            }
            (None, ' ' | '\t') => {
                flush_part(&mut word, &mut part, true);
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            (None, '\n') => {
                flush_part(&mut word, &mut part, true);
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
                if !words.is_empty() {
                    cmds.push(std::mem::take(&mut words));
                }
            }
            (None, c) => {
                part.push(c);
                started = true;
            }
        }
    }
    flush_part(&mut word, &mut part, true);
    if started {
        words.push(word);
    }
    if !words.is_empty() {
        cmds.push(words);
    }
    cmds
}

/// A word with `$VAR` expanded where allowed, `./aurora-data` and
/// `localhost:7878` pointed at the test's server.
fn expand(word: &Word, vars: &HashMap<String, String>, server: &Server) -> String {
    let mut out = String::new();
    for (text, expandable) in word {
        let mut t = text.clone();
        if *expandable {
            for (k, v) in vars {
                t = t.replace(&format!("${k}"), v);
            }
        }
        out.push_str(&t);
    }
    out.replace("./aurora-data", &server.data.to_string_lossy()).replace("localhost:7878", &server.addr)
}

/// Whether `actual` matches `expected` (`"…"`: any value; a string with
/// `…` in it: those parts in order).
fn matches(expected: &Json, actual: &Json, at: &str) -> Result<(), String> {
    match (expected, actual) {
        (Json::String(e), _) if e == "…" => Ok(()),
        (Json::String(e), Json::String(a)) if e.contains('…') => {
            let mut rest = a.as_str();
            for (i, piece) in e.split('…').enumerate() {
                match rest.find(piece) {
                    Some(p) if i > 0 || p == 0 => rest = &rest[p + piece.len()..],
                    _ => return Err(format!("{at}: {a:?} does not match {e:?}")),
                }
            }
            Ok(())
        }
        (Json::Object(e), Json::Object(a)) => {
            let (ek, ak): (Vec<_>, Vec<_>) = (e.keys().collect(), a.keys().collect());
            if ek != ak {
                return Err(format!("{at}: members {ak:?}, the guide shows {ek:?}"));
            }
            e.iter().try_for_each(|(k, v)| matches(v, &a[k], &format!("{at}/{k}")))
        }
        (Json::Array(e), Json::Array(a)) if e.len() == a.len() => {
            e.iter().zip(a).enumerate().try_for_each(|(i, (e, a))| matches(e, a, &format!("{at}/{i}")))
        }
        (e, a) if e == a => Ok(()),
        (e, a) => Err(format!("{at}: {a} where the guide shows {e}")),
    }
}

/// What the guide says a command answers.
#[derive(Debug)]
enum Expected {
    Json(Json),
    Http { status: u16, headers: Vec<(String, String)>, body: Option<Json> },
    Events(Vec<(String, Option<String>, Json)>),
}

fn expectations(lang: &str, body: &str) -> Vec<Expected> {
    match lang {
        "json" => serde_json::Deserializer::from_str(body)
            .into_iter::<Json>()
            .map(|v| Expected::Json(v.unwrap_or_else(|e| panic!("a json block of the guide: {e}\n{body}"))))
            .collect(),
        "http" => {
            let mut lines = body.lines();
            let status =
                lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok()).expect("status");
            let mut headers = Vec::new();
            for line in lines.by_ref() {
                match line.split_once(':') {
                    Some((n, v)) if !line.trim().is_empty() => {
                        headers.push((n.trim().to_string(), v.trim().to_string()))
                    }
                    _ => break,
                }
            }
            let rest: String = lines.collect::<Vec<_>>().join("\n");
            let body = (!rest.trim().is_empty()).then(|| serde_json::from_str(&rest).expect("an http block's body"));
            vec![Expected::Http { status, headers, body }]
        }
        "text" => {
            let events = body
                .split("\n\n")
                .filter(|b| !b.trim().is_empty())
                .map(|b| {
                    let (mut event, mut id, mut data) = (String::from("message"), None, Json::Null);
                    for line in b.lines() {
                        match line.split_once(": ") {
                            Some(("event", v)) => event = v.to_string(),
                            Some(("id", v)) => id = Some(v.to_string()),
                            Some(("data", v)) => data = serde_json::from_str(v).expect("event data in the guide"),
                            _ => {}
                        }
                    }
                    (event, id, data)
                })
                .collect();
            vec![Expected::Events(events)]
        }
        _ => Vec::new(),
    }
}

/// A parsed `curl` command.
struct Curl {
    method: String,
    path: String,
    body: Option<String>,
    headers: Vec<(String, String)>,
    stream: bool,
}

fn curl(words: &[String]) -> Curl {
    let mut c = Curl { method: String::new(), path: String::new(), body: None, headers: Vec::new(), stream: false };
    let mut i = 1;
    while i < words.len() {
        match words[i].as_str() {
            "-s" | "-i" => {}
            "-N" => c.stream = true,
            "-X" => {
                i += 1;
                c.method = words[i].clone();
            }
            "-d" => {
                i += 1;
                c.body = Some(words[i].clone());
            }
            "-H" => {
                i += 1;
                let (n, v) = words[i].split_once(':').expect("a header");
                c.headers.push((n.trim().to_string(), v.trim().to_string()));
            }
            url => c.path = url.find("/v1").map(|p| url[p..].to_string()).expect("a URL with /v1"),
        }
        i += 1;
    }
    if c.method.is_empty() {
        c.method = if c.body.is_some() { "POST" } else { "GET" }.into();
    }
    c
}

fn check(expected: &Expected, c: &Curl, client: &Client, what: &str) {
    let headers: Vec<(&str, &str)> = c.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    if c.stream {
        let Expected::Events(events) = expected else { panic!("{what}: a stream needs a text block of events") };
        let mut s = client.events(&c.path, &headers).unwrap_or_else(|r| panic!("{what}: {}", r.text()));
        for (event, id, data) in events {
            let got = s.next(Duration::from_secs(20)).unwrap_or_else(|| panic!("{what}: no event {event}"));
            assert_eq!(&got.event, event, "{what}: {got:?}");
            if id.as_deref() != Some("…") {
                assert_eq!(&got.id, id, "{what}: {got:?}");
            }
            if let Err(e) = matches(data, &got.json(), "") {
                panic!("{what}: {e}\nthe server sent: {}", got.data);
            }
        }
        return;
    }
    let r = client.request_with(&c.method, &c.path, c.body.as_deref().map(str::as_bytes), &headers);
    let (status, want_headers, body) = match expected {
        Expected::Json(j) => (200..300, Vec::new(), Some(j)),
        Expected::Http { status, headers, body } => (*status..*status + 1, headers.clone(), body.as_ref()),
        Expected::Events(_) => panic!("{what}: events for a request that is not a stream"),
    };
    assert!(status.contains(&r.status), "{what}: status {}: {}", r.status, r.text());
    for (n, v) in want_headers {
        assert_eq!(r.header(&n), Some(v.as_str()), "{what}: header {n}");
    }
    if let Some(b) = body {
        if let Err(e) = matches(b, &r.json(), "") {
            panic!("{what}: {e}\nthe server answered: {}", r.text());
        }
    }
}

#[test]
fn every_example_of_the_server_guide_answers_as_shown() {
    let (_tmp, data) = temp();
    let server = Server::start(&data, &[]);
    let mut vars: HashMap<String, String> = HashMap::new();
    let all = blocks(&guide());
    let mut ran = 0;
    let mut i = 0;
    while i < all.len() {
        let (lang, text) = &all[i];
        i += 1;
        if lang != "sh" {
            continue;
        }
        // The expectations: the blocks after this one, up to the next `sh`.
        let mut expected = Vec::new();
        let mut j = i;
        while j < all.len() && all[j].0 != "sh" {
            expected.extend(expectations(&all[j].0, &all[j].1));
            j += 1;
        }
        let mut expected = expected.into_iter();
        for cmd in commands(text) {
            let (var, words): (Option<String>, Vec<String>) = match cmd.first().map(|w| w[0].0.clone()) {
                Some(first) if first.contains("=$(") => {
                    // VAR=$(aurora keys …): the first word holds `VAR=$(aurora`, the last ends with `)`.
                    let (name, rest) = first.split_once("=$(").expect("assignment");
                    let mut words: Vec<String> = cmd.iter().map(|w| expand(w, &vars, &server)).collect();
                    words[0] = rest.to_string();
                    let last = words.last_mut().expect("words");
                    *last = last.trim_end_matches(')').to_string();
                    (Some(name.to_string()), words)
                }
                _ => (None, cmd.iter().map(|w| expand(w, &vars, &server)).collect()),
            };
            let what = format!("`{}`", words.join(" "));
            match words[0].as_str() {
                "aurora" if words.get(1).map(String::as_str) == Some("serve") => {}
                "aurora" => {
                    let out = server_support::aurora().args(&words[1..]).output().expect("aurora");
                    assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
                    if let Some(v) = &var {
                        vars.insert(v.clone(), String::from_utf8_lossy(&out.stdout).trim().to_string());
                    }
                    // The server re-reads the key file within half a second.
                    std::thread::sleep(Duration::from_millis(1100));
                    ran += 1;
                }
                "curl" => {
                    let c = curl(&words);
                    let e = expected.next().unwrap_or_else(|| panic!("{what}: the guide shows no answer"));
                    check(&e, &c, &server.client(), &what);
                    ran += 1;
                }
                other => panic!("{what}: the test does not know how to run `{other}`"),
            }
        }
    }
    assert!(ran >= 20, "ran only {ran} examples");
}

/// The rows `| \`code\` | … |` of the table after `heading`.
fn table(md: &str, heading: &str) -> Vec<Vec<String>> {
    let section = md.split(heading).nth(1).expect("the heading");
    section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter(|l| l.starts_with("| `"))
        .map(|l| l.trim_matches('|').split(" | ").map(|c| c.trim().trim_matches('`').to_string()).collect())
        .collect()
}

#[test]
fn the_error_tables_of_the_guide_are_the_servers() {
    let md = guide();
    let errors: Vec<Vec<String>> = table(&md, "## Errors");
    let codes: Vec<Vec<String>> =
        aurora_server::ERROR_CODES.iter().map(|(c, s, m)| vec![c.to_string(), s.to_string(), m.to_string()]).collect();
    assert_eq!(errors, codes, "docs/server.md's error table is aurora_server::ERROR_CODES");
    let streams = table(&md, "an `error` event instead");
    let codes: Vec<Vec<String>> =
        aurora_server::STREAM_ERROR_CODES.iter().map(|(c, m)| vec![c.to_string(), m.to_string()]).collect();
    assert_eq!(streams, codes);
}
