//! The sandbox against hostile scripts: each kind of fault seen in issue 14
//! (native code that never returns to the bytecode loop, state leaking
//! between evaluations, engine crashes, per-document instead of per-query
//! limits) is stopped with a typed error, promptly, and the next evaluation
//! works. Timing bounds are generous for a loaded 2-core machine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora_core::Value;
use aurora_js::{Failure, Limits, Session};
use std::time::{Duration, Instant};

/// Generous bound for "stopped promptly" with a 50 ms limit.
const PROMPT: Duration = Duration::from_secs(2);

fn eval(s: &mut Session, body: &str) -> Result<Value, Failure> {
    s.evaluate(&[], body, vec![])
}

/// Runs `body`, checks it fails as `expected` says within `PROMPT`, and that
/// the same session still evaluates afterwards.
fn stopped(body: &str, expected: impl Fn(&Failure) -> bool) {
    let mut s = Session::new(Limits::default());
    let started = Instant::now();
    let got = eval(&mut s, body);
    let took = started.elapsed();
    assert!(matches!(&got, Err(f) if expected(f)), "{body}: {got:?}");
    assert!(took < PROMPT, "{body}: stopped after {took:?}");
    assert_eq!(eval(&mut s, "return 1 + 1;"), Ok(Value::Int(2)), "the session works after {body}");
}

fn time_limit(f: &Failure) -> bool {
    matches!(f, Failure::TimeLimit(_))
}

#[test]
fn the_study_example_works_verbatim() {
    let mut s = Session::new(Limits::default());
    let params = vec!["age".to_string()];
    let body = "if (age < 18) return 'minor'; return 'adult';";
    assert_eq!(s.evaluate(&params, body, vec![12.into()]), Ok("minor".into()));
    assert_eq!(s.evaluate(&params, body, vec![40.into()]), Ok("adult".into()));
    assert_eq!(aurora_js::check(&params, body), Ok(()));
}

#[test]
fn values_cross_the_boundary() {
    let mut s = Session::new(Limits::default());
    let params = vec!["a".to_string(), "b".to_string()];
    let got = s
        .evaluate(
            &params,
            "return { n: a * 2, list: [1, 'x', null, b], big: 2.5, t: true };",
            vec![21.into(), "y".into()],
        )
        .unwrap();
    assert_eq!(got.get_path("n"), Some(&Value::Int(42)));
    assert_eq!(got.get_path("list.1"), Some(&Value::from("x")));
    assert_eq!(got.get_path("list.3"), Some(&Value::from("y")));
    assert_eq!(got.get_path("big"), Some(&Value::Float(2.5)));
    assert_eq!(got.get_path("t"), Some(&Value::Bool(true)));
    assert!(matches!(eval(&mut s, "return () => 1;"), Err(Failure::Unrepresentable(_))));
}

// ---- 1. time: work that never returns to the bytecode loop -------------

#[test]
fn a_busy_loop_is_stopped() {
    stopped("while (true) {}", time_limit);
}

#[test]
fn a_backtracking_regex_is_stopped() {
    stopped("return /^(a+)+$/.test('a'.repeat(34) + '!');", time_limit);
}

#[test]
fn a_native_join_over_two_to_the_forty_is_stopped() {
    stopped("return Array.prototype.join.call({ length: 2 ** 40 }, '');", time_limit);
}

#[test]
fn a_large_native_join_is_stopped() {
    stopped("return new Array(1e7).join('x');", |f| {
        matches!(f, Failure::TimeLimit(_) | Failure::MemoryLimit(_) | Failure::OutputTooLarge(_))
    });
}

#[test]
fn recursion_allocation_and_output_are_bounded() {
    stopped(
        "function f(n) { return f(n + 1) + 1; } return f(0);",
        |f| matches!(f, Failure::Threw(m) if m.contains("stack")),
    );
    stopped("let a = []; while (true) a.push('x'.repeat(1 << 20));", |f| matches!(f, Failure::MemoryLimit(_)));
    stopped("return 'x'.repeat(2 << 20);", |f| matches!(f, Failure::OutputTooLarge(_)));
    stopped("const a = []; a[2 ** 30] = 1; return a;", |f| matches!(f, Failure::OutputTooLarge(_)));
    let mut s = Session::new(Limits::default());
    match eval(&mut s, "throw new Error('x'.repeat(100000));") {
        Err(Failure::Threw(m)) => assert!(m.len() < 2048, "message bounded: {} bytes", m.len()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn no_io_and_no_dynamic_code() {
    let mut s = Session::new(Limits::default());
    assert_eq!(
        eval(&mut s, "return [typeof require, typeof process, typeof fetch, typeof eval, typeof Function, typeof std, typeof os].join();"),
        Ok("undefined,undefined,undefined,undefined,undefined,undefined,undefined".into())
    );
    assert!(eval(&mut s, "return (function () {}).constructor('return 1')();").is_err());
    assert!(eval(&mut s, "return import('x');").is_err() || eval(&mut s, "return typeof import('x');").is_ok());
}

// ---- 2. state: nothing survives an evaluation ----------------------------

#[test]
fn each_evaluation_starts_from_a_clean_global_environment() {
    let mut s = Session::new(Limits::default());
    let park = "globalThis.n = (globalThis.n || 0) + 1; return globalThis.n;";
    assert_eq!(eval(&mut s, park), Ok(Value::Int(1)));
    assert_eq!(eval(&mut s, park), Ok(Value::Int(1)), "a value parked on globalThis is gone");
    let poison =
        "String.prototype.toUpperCase = () => 'pwned'; Math.max = () => 666; globalThis.dirty = 'yes'; return 0;";
    assert_eq!(eval(&mut s, poison), Ok(Value::Int(0)));
    let probe =
        "return Math.max(1, 0) + ':' + 'abc'.toUpperCase() + ':' + (typeof dirty === 'undefined' ? 'clean' : dirty);";
    assert_eq!(eval(&mut s, probe), Ok("1:ABC:clean".into()), "replaced built-ins are gone");
    // A memory hog does not make later scripts fail.
    let hog = eval(&mut s, "let a = []; while (true) a.push('x'.repeat(1 << 20));");
    // (QuickJS sometimes segfaults running out of memory: `Crashed`, contained.)
    assert!(matches!(hog, Err(Failure::MemoryLimit(_) | Failure::TimeLimit(_) | Failure::Crashed(_))), "{hog:?}");
    for _ in 0..3 {
        assert_eq!(eval(&mut s, "return new Array(1000).fill(1).length;"), Ok(Value::Int(1000)));
    }
}

#[test]
fn the_body_is_compiled_as_a_function_body() {
    let mut s = Session::new(Limits::default());
    let escape = "return 1; }); globalThis.ran = 1; (function () {";
    assert!(matches!(aurora_js::check(&[], escape), Err(Failure::Syntax(_))), "refused at registration");
    assert!(matches!(eval(&mut s, escape), Err(Failure::Syntax(_))), "refused at evaluation");
    assert!(matches!(aurora_js::check(&[], "return ("), Err(Failure::Syntax(_))));
    // Braces inside strings, comments, regexes and templates are fine.
    assert_eq!(
        eval(&mut s, "const s = '})'; /* }) */ const r = /\\}\\)/; return `${s}` + r.test(s);"),
        Ok("})true".into())
    );
    assert_eq!(aurora_js::parameter_names(&["a.b".into(), "c".into()]), Some(vec!["a_b".into(), "c".into()]));
    assert_eq!(aurora_js::parameter_names(&["a) { x(); }; (function(".into()]), None);
}

// ---- 3. crashes: an engine crash ends only the sandbox ---------------------

#[test]
fn an_engine_crash_is_a_typed_error_and_the_host_goes_on() {
    // A crash of QuickJS in the sandbox, as a SIGSEGV while a script runs.
    let limits = Limits { time: Duration::from_secs(30), query_budget: Duration::from_secs(60), ..Limits::default() };
    let mut s = Session::new(limits);
    assert_eq!(eval(&mut s, "return 1;"), Ok(Value::Int(1)));
    let pid = s.sandbox_pid().expect("the session holds a sandbox");
    let crasher = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        std::process::Command::new("kill").args(["-SEGV", &pid.to_string()]).status().is_ok_and(|s| s.success())
    });
    let started = Instant::now();
    let got = eval(&mut s, "while (true) {}");
    assert!(crasher.join().unwrap(), "sent SIGSEGV to the sandbox");
    assert!(matches!(&got, Err(Failure::Crashed(m)) if m.contains("SIGSEGV")), "{got:?}");
    assert!(started.elapsed() < Duration::from_secs(25));
    assert_eq!(eval(&mut s, "return 2;"), Ok(Value::Int(2)), "a new sandbox takes over");
}

#[test]
fn out_of_memory_inside_try_catch_never_hurts_the_host() {
    // The scripts that made in-process QuickJS segfault (a freed error
    // object while building a backtrace): whatever they do now, the host
    // gets a value or a typed error.
    let scripts = [
        "try { let a = []; while (true) a.push(new Array(1000).fill(1)); } catch (e) { return String(e.stack); }",
        "let a = []; try { while (true) a.push('x'.repeat(4096)); } catch (e) { try { a.push(e); throw e; } catch (f) { return f.message + f.stack; } }",
        "function r(n) { try { return r(n + 1); } catch (e) { return new Error('deep').stack + n; } } let a = []; try { while (true) a.push({}); } catch (e) { return r(0); }",
        "let a = []; while (true) a.push(new Array(1000).fill(1));",
        "let keep = []; for (let i = 0; i < 8; i++) { try { let a = []; while (true) a.push(new Error('e' + i)); } catch (e) { keep.push(e); } } return keep.length;",
    ];
    let mut s = Session::new(Limits::default());
    for body in scripts {
        let started = Instant::now();
        let got = eval(&mut s, body);
        assert!(started.elapsed() < PROMPT, "{body}: {:?}", started.elapsed());
        if let Err(f) = &got {
            assert!(
                matches!(
                    f,
                    Failure::MemoryLimit(_)
                        | Failure::Crashed(_)
                        | Failure::Threw(_)
                        | Failure::TimeLimit(_)
                        | Failure::OutputTooLarge(_)
                ),
                "{body}: {f:?}"
            );
        }
        assert_eq!(eval(&mut s, "return 'ok';"), Ok("ok".into()), "after {body}");
    }
}

// ---- 4. the limit is per query, not per document ---------------------------

#[test]
fn a_query_budget_bounds_the_time_across_documents() {
    let mut s = Session::new(Limits::default());
    // 30 ms, not 45: a loaded machine must not turn it into a time-limit failure.
    let wait = "const t = Date.now(); while (Date.now() - t < 30) {} return 1;";
    let started = Instant::now();
    let mut done = 0;
    let failure = loop {
        match eval(&mut s, wait) {
            Ok(_) => done += 1,
            Err(f) => break f,
        }
        assert!(done < 100, "100 documents × 30 ms ran without hitting the budget");
    };
    assert!(matches!(failure, Failure::QueryBudget(_)), "{failure:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "stopped after {:?}", started.elapsed());
    assert!(s.spent() <= aurora_js::QUERY_BUDGET + aurora_js::KILL_GRACE + Duration::from_millis(500));
    assert!(matches!(eval(&mut s, "return 1;"), Err(Failure::QueryBudget(_))), "the budget stays spent");
}

// ---- values cross the boundary exactly, or not at all ------------------

#[test]
fn a_field_named_proto_is_a_field() {
    let mut s = Session::new(Limits::default());
    let params = vec!["doc".to_string()];
    let doc =
        Value::Object([("__proto__".to_string(), Value::Object([("x".to_string(), Value::Int(1))].into()))].into());
    let got = s.evaluate(&params, "return Object.keys(doc).join(',') + ':' + doc.__proto__.x;", vec![doc.clone()]);
    assert_eq!(got, Ok(Value::from("__proto__:1")), "the field is an own property");
    assert_eq!(s.evaluate(&params, "return doc;", vec![doc.clone()]), Ok(doc), "and it round-trips");
}

#[test]
fn keys_with_nul_round_trip_and_lone_surrogates_are_refused() {
    let mut s = Session::new(Limits::default());
    let got = eval(&mut s, "return { 'a\\u0000b': 1, a: 2 };").unwrap();
    let Value::Object(fields) = got else { panic!("an object") };
    assert_eq!(fields.get("a\0b"), Some(&Value::Int(1)), "the key keeps its NUL: {fields:?}");
    assert_eq!(fields.get("a"), Some(&Value::Int(2)));
    for body in ["return { '\\ud800': 1 };", "return '\\udc00x';", "return ['ok', { k: '\\ud83d' }];"] {
        assert!(matches!(eval(&mut s, body), Err(Failure::Unrepresentable(_))), "{body}");
    }
}

#[test]
fn objects_that_are_not_plain_are_refused_not_emptied() {
    let mut s = Session::new(Limits::default());
    for body in [
        "return new Date(0);",
        "return new Map([[1, 2]]);",
        "return new Set([1]);",
        "return { when: new Date(0) };",
        "class P { constructor() { this.x = 1; } } return new P();",
        "return /re/;",
        "return new Error('e');",
    ] {
        assert!(matches!(eval(&mut s, body), Err(Failure::Unrepresentable(_))), "{body}: {:?}", eval(&mut s, body));
    }
    // Plain objects, also with a null prototype, and arrays pass.
    assert_eq!(
        eval(&mut s, "const o = Object.create(null); o.k = 1; return o;"),
        Ok(Value::Object([("k".to_string(), Value::Int(1))].into()))
    );
    // Replacing the global `Object` does not change what counts as plain.
    assert_eq!(
        eval(&mut s, "Object = Date; return { k: 2 };"),
        Ok(Value::Object([("k".to_string(), Value::Int(2))].into()))
    );
}

#[test]
fn negative_zero_stays_a_float_and_getters_that_throw_are_the_scripts_error() {
    let mut s = Session::new(Limits::default());
    match eval(&mut s, "return -0;") {
        Ok(Value::Float(f)) => assert!(f == 0.0 && f.is_sign_negative()),
        other => panic!("-0 became {other:?}"),
    }
    assert_eq!(eval(&mut s, "return 0;"), Ok(Value::Int(0)));
    let got = eval(&mut s, "return { get k() { throw new RangeError('nope'); } };");
    assert!(matches!(&got, Err(Failure::Threw(m)) if m.contains("RangeError") && m.contains("nope")), "{got:?}");
    let got =
        eval(&mut s, "const a = [1]; Object.defineProperty(a, 0, { get() { throw new Error('bad'); } }); return a;");
    assert!(matches!(&got, Err(Failure::Threw(m)) if m.contains("bad")), "{got:?}");
}
