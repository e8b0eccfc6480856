//! Hostile review of s8's `Strict` commits on the caller's thread
//! (`db::on_callers_thread`): the async API called from every context a
//! caller can be in — a multi-thread runtime's `block_on`, a task on it, a
//! current-thread runtime, `spawn_blocking` + `Handle::block_on`,
//! `block_in_place` + `Handle::block_on`, a runtime nested in another's
//! blocking thread, a `LocalSet` — never hangs or panics, and every
//! acknowledged write is there. A future dropped mid-commit (a timeout, a
//! `select!`) leaves the write committed whole or not at all. An
//! acknowledged `Strict` write made from a multi-thread `block_on`
//! survives a SIGKILL right after it is acknowledged.
//!
//! Rounds: `AURORA_S8_REVIEW_ROUNDS`; crash rounds: `AURORA_CRASH_ROUNDS`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurora::{doc, Aurora, AuroraConfig, DocId, Durability, FieldDefinition};
use aurora_testkit::crash::{jitter, CrashTest};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

fn rounds(default: usize) -> usize {
    std::env::var("AURORA_S8_REVIEW_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn multi() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn current() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

async fn open(dir: &Path) -> Aurora {
    let config = AuroraConfig { durability: Durability::Strict, ..AuroraConfig::new(dir) };
    let db = Aurora::with_config(config).await.unwrap();
    db.ensure_collection("t", Vec::<(&str, FieldDefinition)>::new()).await.unwrap();
    db
}

/// Every kind of write the async API has, `tag` naming its documents;
/// returns the ids it wrote.
async fn every_write(db: &Aurora, tag: &str) -> Vec<DocId> {
    let mut ids = Vec::new();
    ids.push(db.insert_into("t", doc! { "tag": tag, "k": "insert_into" }).await.unwrap());
    let tg = tag.to_string();
    ids.push(
        db.transaction(move |tx| Ok(tx.insert("t", doc! { "tag": tg.clone(), "k": "transaction" })?)).await.unwrap(),
    );
    ids.extend(
        db.insert_many("t", vec![doc! { "tag": tag, "k": "many" }, doc! { "tag": tag, "k": "many" }]).await.unwrap(),
    );
    let mut tx = db.begin().unwrap();
    ids.push(tx.insert("t", doc! { "tag": tag, "k": "tx.commit" }).unwrap());
    tx.commit().await.unwrap();
    db.update_document("t", &ids[0], doc! { "k": "updated" }).await.unwrap();
    db.create_index("t", "k", false).await.unwrap();
    db.drop_index("t", "k").await.unwrap();
    ids
}

/// Runs `f` on its own thread and fails (instead of hanging the suite) if
/// it does not finish within a minute.
fn within_a_minute<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let h = std::thread::spawn(move || {
        let out = f();
        let _ = tx.send(());
        out
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(()) => h.join().unwrap_or_else(|_| panic!("{what}: panicked")),
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: hung for a minute"),
        Err(mpsc::RecvTimeoutError::Disconnected) => match h.join() {
            Err(e) => std::panic::resume_unwind(e),
            Ok(out) => out,
        },
    }
}

fn assert_all_there(rt: &tokio::runtime::Runtime, db: &Aurora, ids: &[DocId], what: &str) {
    for id in ids {
        assert!(rt.block_on(db.get_document("t", id)).unwrap().is_some(), "{what}: {id} acknowledged but missing");
    }
}

#[test]
fn strict_writes_from_every_runtime_context_neither_hang_nor_panic() {
    within_a_minute("every context", || {
        let dir = tempfile::tempdir().unwrap();
        let rt = multi();
        let db = rt.block_on(open(dir.path()));
        let mut all = Vec::new();

        // A multi-thread runtime's block_on (the caller's thread).
        all.extend(rt.block_on(every_write(&db, "block_on")));

        // A task on it.
        let d = db.clone();
        all.extend(rt.block_on(rt.spawn(async move { every_write(&d, "task").await })).unwrap());

        // spawn_blocking + Handle::block_on.
        let d = db.clone();
        let h = rt.handle().clone();
        all.extend(rt.block_on(rt.spawn_blocking(move || h.block_on(every_write(&d, "spawn_blocking")))).unwrap());

        // block_in_place + Handle::block_on, from a task.
        let d = db.clone();
        all.extend(
            rt.block_on(rt.spawn(async move {
                tokio::task::block_in_place(|| {
                    tokio::runtime::Handle::current().block_on(every_write(&d, "block_in_place"))
                })
            }))
            .unwrap(),
        );

        // A LocalSet on the multi-thread runtime's block_on thread: local
        // tasks and the set's own future.
        let local = tokio::task::LocalSet::new();
        let d = db.clone();
        all.extend(local.block_on(&rt, async move {
            let d2 = d.clone();
            let mut ids = tokio::task::spawn_local(async move { every_write(&d2, "spawn_local").await }).await.unwrap();
            ids.extend(every_write(&d, "local_set").await);
            ids
        }));

        // A second multi-thread runtime driven from the first's blocking pool
        // (nested runtimes), and a current-thread runtime on a plain thread.
        let d = db.clone();
        all.extend(
            rt.block_on(rt.spawn_blocking(move || {
                let inner = multi();
                let ids = inner.block_on(every_write(&d, "nested multi"));
                drop(inner);
                ids
            }))
            .unwrap(),
        );
        let d = db.clone();
        all.extend(std::thread::spawn(move || current().block_on(every_write(&d, "current_thread"))).join().unwrap());

        // Writes joined with a listener drained on the same block_on thread:
        // the commit must not wait for the consumer.
        let d = db.clone();
        let seen = rt.block_on(async move {
            let mut listener = d.listen("t");
            let writer = async {
                let mut ids = Vec::new();
                for i in 0..50 {
                    ids.push(d.insert_into("t", doc! { "tag": "joined", "i": i }).await.unwrap());
                }
                ids
            };
            let reader = async {
                let mut n = 0;
                while n < 50 {
                    match tokio::time::timeout(Duration::from_secs(20), listener.recv()).await {
                        Ok(Ok(_)) => n += 1,
                        _ => break,
                    }
                }
                n
            };
            let (ids, n) = tokio::join!(writer, reader);
            (ids, n)
        });
        assert_eq!(seen.1, 50, "the listener saw every joined write");
        all.extend(seen.0);

        assert_all_there(&rt, &db, &all, "every context");
        rt.block_on(db.close()).unwrap();
        let db = rt.block_on(open(dir.path()));
        assert_all_there(&rt, &db, &all, "after a reopen");
        rt.block_on(db.close()).unwrap();
    });
}

/// A strict write's future dropped before it finishes — a timeout in a
/// task, a `select!` in `block_on`, a task aborted — is committed whole or
/// not at all: a transaction's two documents are both there or neither,
/// also after a reopen.
#[test]
fn a_strict_write_cancelled_mid_commit_is_committed_whole_or_not_at_all() {
    within_a_minute("cancellation", || {
        let dir = tempfile::tempdir().unwrap();
        let rt = multi();
        let db = rt.block_on(open(dir.path()));
        let pairs = rounds(60);
        for i in 0..pairs {
            let d = db.clone();
            let write = async move {
                d.transaction(move |tx| {
                    tx.insert("t", doc! { "pair": i as i64, "half": 0 }.id(DocId::text(&format!("p{i}a")).unwrap()))?;
                    tx.insert("t", doc! { "pair": i as i64, "half": 1 }.id(DocId::text(&format!("p{i}b")).unwrap()))?;
                    Ok(())
                })
                .await
            };
            let wait = Duration::from_micros((i as u64 % 7) * 150);
            match i % 3 {
                // A timeout in a task (the blocking pool's path).
                0 => drop(rt.block_on(rt.spawn(async move { tokio::time::timeout(wait, write).await })).unwrap()),
                // A select! in block_on (the caller's-thread path).
                1 => rt.block_on(async {
                    tokio::select! {
                        _ = write => {}
                        _ = tokio::time::sleep(wait) => {}
                    }
                }),
                // An aborted task.
                _ => {
                    let h = rt.spawn(write);
                    std::thread::sleep(wait);
                    h.abort();
                    let _ = rt.block_on(h);
                }
            }
        }
        // Let detached pool work finish, then check and reopen.
        std::thread::sleep(Duration::from_millis(300));
        let check = |db: &Aurora, what: &str| {
            for i in 0..pairs {
                let a = rt.block_on(db.get_document("t", &DocId::text(&format!("p{i}a")).unwrap())).unwrap();
                let b = rt.block_on(db.get_document("t", &DocId::text(&format!("p{i}b")).unwrap())).unwrap();
                assert_eq!(a.is_some(), b.is_some(), "{what}: pair {i} half committed");
            }
        };
        check(&db, "live");
        rt.block_on(db.close()).unwrap();
        let db = rt.block_on(open(dir.path()));
        check(&db, "after a reopen");
        rt.block_on(db.close()).unwrap();
    });
}

const CRASH: CrashTest = CrashTest::new("strict_block_on_child", "AURORA_S8_STRICT_CRASH_DIR");

/// The child: Strict writes from a multi-thread runtime's `block_on`
/// (committed on this very thread), each printed once acknowledged.
#[test]
fn strict_block_on_child() {
    let Some(dir) = CRASH.child_dir() else { return };
    let rt = multi();
    let db = rt.block_on(open(&dir));
    println!("ready");
    for i in 0u64.. {
        let name = format!("{}-{i}", std::process::id());
        match i % 3 {
            0 => {
                drop(rt.block_on(db.insert_into("t", doc! { "i": i as i64 }.id(DocId::text(&name).unwrap()))).unwrap())
            }
            1 => rt
                .block_on(db.transaction({
                    let name = name.clone();
                    move |tx| {
                        tx.insert("t", doc! { "i": i as i64 }.id(DocId::text(&name).unwrap()))
                            .map(drop)
                            .map_err(Into::into)
                    }
                }))
                .unwrap(),
            _ => drop(
                rt.block_on(db.insert_many("t", vec![doc! { "i": i as i64 }.id(DocId::text(&name).unwrap())])).unwrap(),
            ),
        }
        println!("acked {name}");
    }
}

#[test]
fn strict_writes_acknowledged_on_a_block_on_thread_survive_sigkill() {
    if CRASH.is_child() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rt = multi();
    let mut total = 0;
    for round in 0..CRASH.rounds(3) {
        let lines = CRASH.spawn(dir.path()).kill_after(Duration::from_millis(150) + jitter(300));
        let acked: Vec<&str> = lines.iter().filter_map(|l| l.strip_prefix("acked ")).collect();
        total += acked.len();
        let db = rt.block_on(open(dir.path()));
        for name in &acked {
            let got = rt.block_on(db.get_document("t", &DocId::text(name).unwrap())).unwrap();
            assert!(got.is_some(), "round {round}: {name} was acknowledged (Strict) but lost");
        }
        rt.block_on(db.close()).unwrap();
    }
    assert!(total > 0, "the children acknowledged writes before they were killed");
}

/// A `Strict` transaction whose body panics, run from a task, a
/// current-thread runtime and a multi-thread runtime's `block_on`: main
/// ran every strict body on the blocking pool, so the panic came back as
/// `Err(Error::Task)` in every context. The database works afterwards in
/// all of them.
#[test]
fn a_panicking_strict_transaction_body_is_the_same_error_in_every_context() {
    // Review finding 1: the body ran inline on the block_on thread and its
    // panic unwound into the caller; `blocking_here_or_pool` now catches it.
    let dir = tempfile::tempdir().unwrap();
    let rt = multi();
    let db = rt.block_on(open(dir.path()));
    let panicking = |db: Aurora| async move {
        db.transaction(|tx| -> aurora::Result<()> {
            tx.insert("t", doc! { "half": 1 })?;
            panic!("the body failed")
        })
        .await
    };
    // From a task: an error.
    let d = db.clone();
    let in_task = rt.block_on(rt.spawn(panicking(d))).unwrap();
    assert!(matches!(in_task, Err(aurora::Error::Task(_))), "{in_task:?}");
    // From a current-thread runtime: an error.
    let d = db.clone();
    let in_current = std::thread::spawn(move || current().block_on(panicking(d))).join().unwrap();
    assert!(matches!(in_current, Err(aurora::Error::Task(_))), "{in_current:?}");
    // From a multi-thread runtime's block_on: the same error, not a panic.
    let d = db.clone();
    let in_block_on = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(panicking(d))));
    let db_ok = rt.block_on(db.insert_into("t", doc! { "after": true })).is_ok();
    assert!(db_ok, "the database works after the panics");
    match in_block_on {
        Ok(r) => assert!(matches!(r, Err(aurora::Error::Task(_))), "{r:?}"),
        Err(_) => panic!("the body's panic unwound through block_on (a task got Error::Task)"),
    }
    rt.block_on(db.close()).unwrap();
}

/// The commit thread of each sequence (the change sink runs on the commit
/// leader — a lone writer leads its own commit).
#[derive(Default)]
struct CommitThreads(std::sync::Mutex<Vec<(u64, std::thread::ThreadId)>>);

impl aurora::ChangeSink for CommitThreads {
    fn publish(&self, committed: aurora::Committed) {
        self.0.lock().unwrap().push((committed.sequence, std::thread::current().id()));
    }
}

/// Review finding 2, settled as documented (`db::on_callers_thread`,
/// docs/transactions.md): a `LocalSet` driven by a multi-thread runtime's
/// `block_on` runs its `spawn_local` tasks on the `block_on` thread, and a
/// `Strict` write made by the set's own future commits on that thread (tokio
/// has no public way to tell a `LocalSet` apart), so the local tasks wait
/// for that commit — no deadlock, and they run once it is done.
#[test]
fn a_strict_write_in_a_local_set_commits_on_its_thread_and_the_local_tasks_run_after() {
    let dir = tempfile::tempdir().unwrap();
    let rt = multi();
    let threads = std::sync::Arc::new(CommitThreads::default());
    let config = AuroraConfig { durability: Durability::Strict, ..AuroraConfig::new(dir.path()) };
    let db = rt.block_on(Aurora::with_sink(config, threads.clone())).unwrap();
    rt.block_on(db.ensure_collection("t", Vec::<(&str, FieldDefinition)>::new())).unwrap();
    let local = tokio::task::LocalSet::new();
    let d = db.clone();
    let (local_task_thread, sequence, after) = local.block_on(&rt, async move {
        let local_task_thread = tokio::task::spawn_local(async { std::thread::current().id() }).await.unwrap();
        d.insert_into("t", doc! { "n": 1 }).await.unwrap();
        let sequence = d.database().feed_head();
        let after = tokio::task::spawn_local(async { 7 }).await.unwrap();
        (local_task_thread, sequence, after)
    });
    let committed_on = threads.0.lock().unwrap().iter().find(|(s, _)| *s == sequence).map(|(_, t)| *t).unwrap();
    assert_eq!(committed_on, local_task_thread, "the commit ran on the block_on thread, as documented");
    assert_eq!(after, 7, "a local task spawned after the commit runs");
    rt.block_on(db.close()).unwrap();
}
