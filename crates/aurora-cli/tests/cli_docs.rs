//! Runs every example of `docs/cli.md`, in order, in one empty folder:
//! fenced blocks tagged `file=NAME` are written as files; each `$ aurora …`
//! line of a `console` block is run with the real binary and its standard
//! output followed by its standard error must equal the lines after it
//! (`...` matches any text inside a line; a last line `[exit N]` is the
//! expected non-zero exit status).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli_support;

use cli_support::aurora_in;

/// Splits a command line into words: spaces separate, single quotes keep
/// everything up to the next single quote (the only quoting the page uses).
fn words(line: &str) -> Vec<String> {
    let (mut out, mut word, mut quoted, mut any) = (Vec::new(), String::new(), false, false);
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any || !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
                any = false;
            }
            c => word.push(c),
        }
    }
    if any || !word.is_empty() {
        out.push(word);
    }
    out
}

/// Whether `actual` matches `pattern`, where `...` stands for any text.
fn matches(pattern: &str, actual: &str) -> bool {
    let parts: Vec<&str> = pattern.split("...").collect();
    if parts.len() == 1 {
        return pattern == actual;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !actual.starts_with(first) || !actual[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &actual[first.len()..actual.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

/// One example: the command's words, the expected lines, the exit status.
struct Example {
    words: Vec<String>,
    expected: Vec<String>,
    code: i32,
}

enum Step {
    File(String, String),
    Run(Example),
}

fn steps(page: &str) -> Vec<Step> {
    let mut out = Vec::new();
    let mut lines = page.lines();
    while let Some(line) = lines.next() {
        let Some(info) = line.strip_prefix("```") else { continue };
        let body: Vec<&str> = lines.by_ref().take_while(|l| !l.starts_with("```")).collect();
        if let Some(name) = info.split_whitespace().find_map(|w| w.strip_prefix("file=")) {
            out.push(Step::File(name.to_string(), body.iter().map(|l| format!("{l}\n")).collect()));
        } else if info == "console" {
            out.extend(split_commands(&body).into_iter().map(Step::Run));
        }
    }
    out
}

/// A console block's lines as examples (each `$ ` line and what follows it).
fn split_commands(block: &[&str]) -> Vec<Example> {
    let mut out: Vec<Example> = Vec::new();
    for line in block {
        if let Some(cmd) = line.strip_prefix("$ ") {
            let words = words(cmd);
            assert_eq!(words[0], "aurora", "only `aurora` commands run: {cmd}");
            out.push(Example { words: words[1..].to_vec(), expected: Vec::new(), code: 0 });
        } else if let Some(last) = out.last_mut() {
            match line.strip_prefix("[exit ").and_then(|l| l.strip_suffix(']')) {
                Some(n) => last.code = n.parse().expect("exit status"),
                None => last.expected.push(line.to_string()),
            }
        }
    }
    out
}

#[test]
fn every_example_of_the_cli_guide_runs_as_shown() {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/cli.md")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut ran = 0;
    for step in steps(&page) {
        match step {
            Step::File(name, text) => std::fs::write(tmp.path().join(name), text).unwrap(),
            Step::Run(example) => {
                let args: Vec<&str> = example.words.iter().map(String::as_str).collect();
                let run = aurora_in(tmp.path(), &args);
                let shown = format!("$ aurora {}", args.join(" "));
                assert_eq!(run.code, example.code, "{shown}: {run:#?}");
                let actual: Vec<&str> = run.stdout.lines().chain(run.stderr.lines()).collect();
                let ok = actual.len() == example.expected.len()
                    && example.expected.iter().zip(&actual).all(|(p, a)| matches(p, a));
                assert!(ok, "{shown}\nexpected:\n{}\nactual:\n{}", example.expected.join("\n"), actual.join("\n"));
                ran += 1;
            }
        }
    }
    assert!(ran >= 15, "the page's examples were found ({ran})");
}

#[test]
fn the_matcher_and_the_splitter_do_what_the_page_needs() {
    assert!(matches("in ... -> x", "in 1.2ms -> x"));
    assert!(!matches("in ... -> x", "in 1.2ms -> y"));
    assert!(matches("a...b...c", "a1b2c"));
    assert!(!matches("abc", "abcd"));
    assert_eq!(words(r#"query db p '{"a": 1}' --limit 2"#), ["query", "db", "p", r#"{"a": 1}"#, "--limit", "2"]);
}
