//! Hostile review (p11) of the change-event hub's shared runs (pending.rs),
//! the per-listener queue (queue.rs) and the listener's read paths: many
//! publishers racing many readers of every kind (per event, per commit,
//! `Stream`, mixed), listeners coming and going mid-publish, `close` racing
//! publish and receive, filtered listeners sharing commits with unfiltered
//! ones, tiny buffers against commits of thousands of events, and
//! `resume_with` backlogs overlapping live commits.
//!
//! Every concurrent test checks, per listener: commits arrive in order
//! (per publisher), a commit's events in their original order, no event
//! twice, only events that pass the filter, never an empty commit, and
//! received + reported-lagged == published-and-passing; every listener ends
//! with `Closed`; nothing waits forever (timeouts).
//!
//! Size: `AURORA_PROPTEST_CASES` scales the number of commits (default 64).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use aurora_core::{doc, DocId, Filter};
use aurora_pubsub::{ChangeCause, ChangeEvent, ChangeType, CommitEvents, EventFilter, Listener, PubSub, RecvError};
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn scale() -> u64 {
    std::env::var("AURORA_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64).max(1)
}

const PUBLISHERS: u64 = 3;

/// One event: `i` is its index in the commit, `room` drives filters.
fn event(collection: &str, sequence: u64, i: usize, room: i64, kind: u8) -> ChangeEvent {
    let id = DocId::new();
    let version = |room: i64| {
        let mut d = doc! { "room": room, "i": i as i64 };
        d.id = id.clone();
        Arc::new(d)
    };
    let (change_type, old, new) = match kind {
        0 => (ChangeType::Insert, None, Some(version(room))),
        1 => (ChangeType::Update, Some(version(room + 1)), Some(version(room))),
        _ => (ChangeType::Delete, Some(version(room)), None),
    };
    ChangeEvent {
        collection: collection.into(),
        change_type,
        id,
        document: new,
        old_document: old,
        sequence,
        transaction_id: sequence,
        cause: ChangeCause::Write,
    }
}

fn index_of(e: &ChangeEvent) -> i64 {
    let d = e.document.as_deref().or(e.old_document.as_deref()).unwrap();
    match d.get("i") {
        Some(aurora_core::Value::Int(i)) => *i,
        other => panic!("no index in {other:?}"),
    }
}

/// A commit of publisher `t`: its `k`th, with a sequence unique to it and
/// increasing per publisher (`k * PUBLISHERS + t + 1`), events in the
/// publisher's two collections; now and then thousands of events.
fn commit(rng: &mut fastrand::Rng, t: u64, k: u64) -> Vec<ChangeEvent> {
    let sequence = k * PUBLISHERS + t + 1;
    let n = match rng.u64(..40) {
        0 => 1500 + rng.u64(..1000) as usize,
        1..=5 => 20 + rng.u64(..50) as usize,
        _ => 1 + rng.u64(..6) as usize,
    };
    (0..n)
        .map(|i| {
            let c = if rng.u64(..3) == 0 { format!("d{t}") } else { format!("c{t}") };
            event(&c, sequence, i, rng.u64(..3) as i64, rng.u64(..3) as u8)
        })
        .collect()
}

#[derive(Clone, Copy, Debug)]
enum Read {
    Event,
    Commit,
    Stream,
    Mixed,
}

#[derive(Clone, Debug)]
struct Spec {
    /// `None`: listen_all.
    collection: Option<String>,
    filter: EventFilter,
    buffered: Option<usize>,
    read: Read,
}

fn specs() -> Vec<Spec> {
    let filters = [
        EventFilter::All,
        EventFilter::field_equals("room", 1),
        EventFilter::Matches(Filter::Ne("room".into(), 0.into())),
        EventFilter::ChangeType(ChangeType::Update),
        EventFilter::FieldChanged("room".into()),
    ];
    let reads = [Read::Event, Read::Commit, Read::Stream, Read::Mixed];
    let mut out = Vec::new();
    let mut n = 0;
    for collection in [None, Some("c0"), Some("d1"), Some("c2"), Some("c1")] {
        for filter in &filters {
            out.push(Spec {
                collection: collection.map(str::to_string),
                filter: filter.clone(),
                buffered: None,
                read: reads[n % reads.len()],
            });
            n += 1;
        }
    }
    for (c, cap) in [("c0", 1), ("c1", 1), ("d2", 3), ("c2", 7)] {
        out.push(Spec {
            collection: Some(c.into()),
            filter: EventFilter::All,
            buffered: Some(cap),
            read: reads[n % 4],
        });
        n += 1;
    }
    out
}

fn open(hub: &PubSub, s: &Spec) -> Listener {
    match (&s.collection, s.buffered) {
        (Some(c), Some(cap)) => hub.listen_buffered(c, cap),
        (Some(c), None) => hub.listen(c, s.filter.clone()).unwrap(),
        (None, _) => hub.listen_all(s.filter.clone()).unwrap(),
    }
}

/// What one listener got.
#[derive(Default, Debug)]
struct Got {
    events: u64,
    lagged: u64,
    closed: bool,
}

/// Checks each delivered event against the listener's spec and the order so
/// far: per publisher, (sequence, index) strictly increases.
struct Checker {
    spec: Spec,
    last: HashMap<u64, (u64, i64)>,
    got: Got,
}

impl Checker {
    fn event(&mut self, e: &ChangeEvent) {
        assert!(self.spec.filter.matches(e), "{:?} got an event its filter rejects: {e:?}", self.spec);
        if let Some(c) = &self.spec.collection {
            assert_eq!(&e.collection, c, "{:?} got another collection's event", self.spec);
        }
        let t = (e.sequence - 1) % PUBLISHERS;
        let at = (e.sequence, index_of(e));
        if let Some(prev) = self.last.get(&t) {
            assert!(at > *prev, "{:?}: event {at:?} after {prev:?} (duplicated or reordered)", self.spec);
        }
        self.last.insert(t, at);
        self.got.events += 1;
    }

    fn commit(&mut self, c: &CommitEvents) {
        assert!(!c.events.is_empty(), "{:?}: an empty commit {}", self.spec, c.sequence);
        for e in &c.events {
            assert_eq!(e.sequence, c.sequence);
            self.event(e);
        }
    }

    fn lag(&mut self, n: u64) {
        assert!(n > 0, "Lagged(0)");
        self.got.lagged += n;
    }
}

async fn next_stream(l: &mut Listener) -> Option<Result<ChangeEvent, RecvError>> {
    std::future::poll_fn(|cx| futures_core::Stream::poll_next(Pin::new(&mut *l), cx)).await
}

/// Reads until `Closed`, checking as it goes; `stop_after`: drop the
/// listener after this many reads instead.
async fn drain(mut l: Listener, spec: Spec, seed: u64, stop_after: Option<u64>) -> Got {
    let mut ck = Checker { spec: spec.clone(), last: HashMap::new(), got: Got::default() };
    let mut rng = fastrand::Rng::with_seed(seed | 1);
    let mut reads = 0u64;
    loop {
        if stop_after.is_some_and(|n| reads >= n) {
            return ck.got;
        }
        reads += 1;
        if rng.u64(..50) == 0 {
            tokio::task::yield_now().await;
        }
        let per_commit = match spec.read {
            Read::Commit => true,
            Read::Mixed => rng.u64(..2) == 0,
            Read::Event | Read::Stream => false,
        };
        if per_commit {
            match l.recv_commit().await {
                Ok(c) => ck.commit(&c),
                Err(RecvError::Lagged(n)) => ck.lag(n),
                Err(_) => break,
            }
        } else if matches!(spec.read, Read::Stream) {
            match next_stream(&mut l).await {
                Some(Ok(e)) => ck.event(&e),
                Some(Err(RecvError::Lagged(n))) => ck.lag(n),
                Some(Err(e)) => panic!("the stream yields Closed as None, not {e}"),
                None => break,
            }
        } else {
            match l.recv().await {
                Ok(e) => ck.event(&e),
                Err(RecvError::Lagged(n)) => ck.lag(n),
                Err(_) => break,
            }
        }
    }
    ck.got.closed = true;
    // Closed stays closed.
    assert_eq!(l.try_recv().map(|r| r.err()), Some(Some(RecvError::Closed)));
    assert_eq!(l.try_recv_commit().map(|r| r.err()), Some(Some(RecvError::Closed)));
    ck.got
}

fn passing(spec: &Spec, log: &[Vec<ChangeEvent>]) -> u64 {
    log.iter()
        .flatten()
        .filter(|e| spec.collection.as_ref().is_none_or(|c| &e.collection == c) && spec.filter.matches(e))
        .count() as u64
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(3).enable_all().build().unwrap()
}

/// Publisher threads; each returns its commits (in its order). `done[t]`
/// counts commits whose `publish` returned.
fn publishers(
    hub: &PubSub,
    commits: u64,
    stop: &Arc<AtomicBool>,
    done: &Arc<Vec<AtomicU64>>,
) -> Vec<std::thread::JoinHandle<Vec<Vec<ChangeEvent>>>> {
    (0..PUBLISHERS)
        .map(|t| {
            let (hub, stop, done) = (hub.clone(), Arc::clone(stop), Arc::clone(done));
            std::thread::spawn(move || {
                let mut rng = fastrand::Rng::with_seed(0x9E37_79B9_7F4A_7C15 ^ ((t + 1) * 7919));
                let mut log = Vec::new();
                for k in 0..commits {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let c = commit(&mut rng, t, k);
                    log.push(c.clone());
                    hub.publish(c);
                    done[t as usize].fetch_add(1, Ordering::Release);
                    if rng.u64(..8) == 0 {
                        std::thread::yield_now();
                    }
                }
                log
            })
        })
        .collect()
}

/// Publishers on three threads race readers of every kind; close after the
/// last publish: every listener accounts exactly for every passing event.
#[test]
fn racing_publishers_and_readers_lose_duplicate_and_reorder_nothing() {
    let rt = runtime();
    for round in 0..2u64 {
        let hub = PubSub::new(if round == 0 { 64 } else { 4096 });
        let specs = specs();
        let tasks: Vec<_> = specs
            .iter()
            .enumerate()
            .map(|(n, s)| {
                let l = open(&hub, s);
                rt.spawn(drain(l, s.clone(), n as u64 * 31 + round, None))
            })
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new((0..PUBLISHERS).map(|_| AtomicU64::new(0)).collect::<Vec<_>>());
        let log: Vec<Vec<ChangeEvent>> =
            publishers(&hub, scale() * 4, &stop, &done).into_iter().flat_map(|h| h.join().unwrap()).collect();
        hub.close();
        let mut lagged_total = 0;
        for (s, task) in specs.iter().zip(tasks) {
            let got = rt
                .block_on(async { tokio::time::timeout(Duration::from_secs(60), task).await })
                .unwrap_or_else(|_| panic!("{s:?}: no Closed within 60 s (deadlock or lost wake-up)"))
                .unwrap();
            assert!(got.closed);
            assert_eq!(
                got.events + got.lagged,
                passing(s, &log),
                "{s:?}: received {} lagged {}",
                got.events,
                got.lagged
            );
            lagged_total += got.lagged;
        }
        assert_eq!(hub.stats().events_dropped, lagged_total);
        assert_eq!(hub.stats().listeners, 0, "close ends every group");
    }
}

/// Listeners are opened and dropped (some mid-read, some never read) while
/// three publishers run; the long-lived ones still account exactly.
#[test]
fn listeners_coming_and_going_mid_publish_disturb_no_other_listener() {
    let rt = runtime();
    let hub = PubSub::new(256);
    let specs = specs();
    let steady: Vec<_> = specs
        .iter()
        .enumerate()
        .filter(|(n, _)| n % 3 == 0)
        .map(|(n, s)| (s.clone(), rt.spawn(drain(open(&hub, s), s.clone(), n as u64 + 5, None))))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new((0..PUBLISHERS).map(|_| AtomicU64::new(0)).collect::<Vec<_>>());
    let pubs = publishers(&hub, scale() * 4, &stop, &done);
    let churn = {
        let (hub, specs, handle) = (hub.clone(), specs.clone(), rt.handle().clone());
        std::thread::spawn(move || {
            let mut rng = fastrand::Rng::with_seed(77);
            let mut held = Vec::new();
            let mut readers = Vec::new();
            for round in 0..scale() * 8 {
                let s = &specs[rng.u64(..specs.len() as u64) as usize];
                match rng.u64(..3) {
                    0 => held.push(open(&hub, s)),
                    1 => {
                        // Reads a few, then is dropped (or given up on
                        // when no event comes: the future and its
                        // listener are dropped mid-wait).
                        let reader = drain(open(&hub, s), s.clone(), round, Some(rng.u64(..40)));
                        readers.push(handle.spawn(async move {
                            let _ = tokio::time::timeout(Duration::from_millis(300), reader).await;
                        }));
                    }
                    _ => {
                        if !held.is_empty() {
                            let i = rng.u64(..held.len() as u64) as usize;
                            drop(held.swap_remove(i));
                        }
                    }
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            drop(held);
            readers
        })
    };
    let log: Vec<Vec<ChangeEvent>> = pubs.into_iter().flat_map(|h| h.join().unwrap()).collect();
    let readers = churn.join().unwrap();
    for r in readers {
        rt.block_on(async { tokio::time::timeout(Duration::from_secs(60), r).await })
            .expect("a churn reader hung")
            .unwrap();
    }
    assert_eq!(hub.stats().listeners, steady.len(), "dropped listeners leave their groups");
    hub.close();
    for (s, task) in steady {
        let got = rt
            .block_on(async { tokio::time::timeout(Duration::from_secs(60), task).await })
            .unwrap_or_else(|_| panic!("{s:?}: hung"))
            .unwrap();
        assert_eq!(got.events + got.lagged, passing(&s, &log), "{s:?}");
    }
    assert_eq!(hub.channel_count(), 0);
}

/// `close` while publishers and readers run: every listener ends with
/// `Closed`, every commit whose `publish` returned before `close` began is
/// accounted for, nothing is invented, and later publishes and listeners go
/// nowhere.
#[test]
fn close_racing_publish_and_receive_ends_every_listener() {
    let rt = runtime();
    for round in 0..4u64 {
        let hub = PubSub::new(128);
        let specs = specs();
        let tasks: Vec<_> = specs
            .iter()
            .enumerate()
            .map(|(n, s)| rt.spawn(drain(open(&hub, s), s.clone(), n as u64 + round * 100, None)))
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new((0..PUBLISHERS).map(|_| AtomicU64::new(0)).collect::<Vec<_>>());
        let pubs = publishers(&hub, scale() * 8, &stop, &done);
        std::thread::sleep(Duration::from_millis(5 + round * 7));
        let before: Vec<u64> = done.iter().map(|d| d.load(Ordering::Acquire)).collect();
        hub.close();
        stop.store(true, Ordering::Relaxed);
        let logs: Vec<Vec<Vec<ChangeEvent>>> = pubs.into_iter().map(|h| h.join().unwrap()).collect();
        let surely: Vec<Vec<ChangeEvent>> =
            logs.iter().zip(&before).flat_map(|(log, n)| log[..*n as usize].iter().cloned()).collect();
        let all: Vec<Vec<ChangeEvent>> = logs.into_iter().flatten().collect();
        for (s, task) in specs.iter().zip(tasks) {
            let got = rt
                .block_on(async { tokio::time::timeout(Duration::from_secs(60), task).await })
                .unwrap_or_else(|_| panic!("{s:?}: no Closed after close"))
                .unwrap();
            assert!(got.closed);
            let total = got.events + got.lagged;
            assert!(total >= passing(s, &surely), "{s:?}: {total} < what was published before close");
            assert!(total <= passing(s, &all), "{s:?}: {total} > what was ever published");
        }
        let mut late = hub.listen_all_unfiltered();
        hub.publish(vec![event("c0", 1 << 40, 0, 0, 0)]);
        assert_eq!(late.try_recv().map(|r| r.err()), Some(Some(RecvError::Closed)));
        assert_eq!(hub.stats().listeners, 0);
    }
}

/// A filtered listener shares commits with an unfiltered one: it never sees
/// an event its filter rejects, and the unfiltered one's events are not
/// moved out from under it (every slot of a shared run is still there).
/// Changing a received document (copy on write) is invisible to the other.
#[test]
fn filtered_and_unfiltered_listeners_share_runs_without_observable_aliasing() {
    let hub = PubSub::new(1 << 20);
    let mut all = hub.listen_unfiltered("c0");
    let mut all2 = hub.listen_all_unfiltered();
    let mut room1 = hub.listen("c0", EventFilter::field_equals("room", 1)).unwrap();
    let mut not0 = hub.listen_all(EventFilter::Matches(Filter::Ne("room".into(), 0.into()))).unwrap();
    let mut rng = fastrand::Rng::with_seed(5);
    let mut published = Vec::new();
    for k in 0..scale() {
        let events: Vec<ChangeEvent> =
            (0..(1 + rng.u64(..3000) as usize)).map(|i| event("c0", k + 1, i, rng.u64(..3) as i64, 0)).collect();
        published.push(events.clone());
        hub.publish(events);
    }
    let expect = |keep: &dyn Fn(&ChangeEvent) -> bool| -> Vec<(u64, DocId)> {
        published.iter().flatten().filter(|e| keep(e)).map(|e| (e.sequence, e.id.clone())).collect()
    };
    let room = |e: &ChangeEvent| e.document.as_ref().unwrap().get("room").cloned();
    // Read the filtered ones first, per event, then mutate what they got.
    let mut got1 = Vec::new();
    while let Some(r) = room1.try_recv() {
        let mut e = r.unwrap();
        assert_eq!(room(&e), Some(1.into()));
        got1.push((e.sequence, e.id.clone()));
        Arc::make_mut(e.document.as_mut().unwrap()).set("room", 99);
    }
    assert_eq!(got1, expect(&|e| room(e) == Some(1.into())));
    let mut got_not0 = Vec::new();
    while let Some(r) = not0.try_recv_commit() {
        let c = r.unwrap();
        assert!(!c.events.is_empty());
        for mut e in c.events {
            assert_ne!(room(&e), Some(0.into()));
            got_not0.push((e.sequence, e.id.clone()));
            Arc::make_mut(e.document.as_mut().unwrap()).set("room", 98);
        }
    }
    assert_eq!(got_not0, expect(&|e| room(e) != Some(0.into())));
    // The unfiltered ones read half per event, half per commit.
    for (l, name) in [(&mut all, "collection"), (&mut all2, "global")] {
        let mut got = Vec::new();
        let mut flip = false;
        loop {
            flip = !flip;
            let r = if flip {
                l.try_recv().map(|r| r.map(|e| vec![e]))
            } else {
                l.try_recv_commit().map(|r| r.map(|c| c.events))
            };
            let Some(r) = r else { break };
            let events = r.unwrap();
            assert!(!events.is_empty(), "{name}: an empty commit");
            for e in events {
                let r = room(&e).unwrap();
                assert!(
                    r == 0.into() || r == 1.into() || r == 2.into(),
                    "{name}: saw a document another listener changed: {r:?}"
                );
                got.push((e.sequence, e.id.clone()));
            }
        }
        assert_eq!(got, expect(&|_| true), "{name}");
    }
}

/// `listen_buffered(…, 1)` against commits of thousands of events: the
/// newest commit is kept whole, older ones go as whole commits, and the lag
/// counts exactly what went — also when the oldest commit was half read.
#[test]
fn a_one_event_buffer_keeps_the_newest_commit_whole_and_counts_the_rest() {
    let hub = PubSub::new(4);
    let mut l = hub.listen_buffered("c0", 1);
    let mut rng = fastrand::Rng::with_seed(11);
    let (mut published, mut received, mut lagged) = (0u64, 0u64, 0u64);
    for k in 0..scale() {
        let n = 1 + rng.u64(..4000) as usize;
        hub.publish((0..n).map(|i| event("c0", k + 1, i, 0, 0)).collect());
        published += n as u64;
        // Read a few events of it (so the commit dropped next is half read).
        for _ in 0..rng.u64(..3) {
            match l.try_recv() {
                Some(Ok(e)) => {
                    assert_eq!(e.sequence, k + 1, "only the newest commit is buffered");
                    received += 1;
                }
                Some(Err(RecvError::Lagged(n))) => lagged += n,
                other => panic!("{other:?}"),
            }
        }
        assert!(hub.stats().buffered_events <= n);
    }
    hub.close();
    loop {
        match l.try_recv_commit() {
            Some(Ok(c)) => {
                assert!(!c.events.is_empty());
                assert_eq!(c.sequence, scale(), "only the newest commit is left");
                received += c.events.len() as u64;
            }
            Some(Err(RecvError::Lagged(n))) => lagged += n,
            Some(Err(_)) => break,
            None => panic!("closed hub left the listener pending"),
        }
    }
    assert_eq!(received + lagged, published);
    assert_eq!(hub.stats().events_dropped, lagged);
}

/// A multi-collection commit: each collection listener gets its own
/// collection's events as one commit, the global one all of them, in the
/// commit's order, and per-commit reads of a half-read commit give exactly
/// the rest.
#[test]
fn multi_collection_commits_split_per_collection_and_whole_for_global() {
    let hub = PubSub::new(1 << 20);
    let mut a = hub.listen_unfiltered("a");
    let mut b = hub.listen("b", EventFilter::ChangeType(ChangeType::Insert)).unwrap();
    let mut g = hub.listen_all_unfiltered();
    let mut rng = fastrand::Rng::with_seed(3);
    let mut published = Vec::new();
    for k in 0..scale() {
        let events: Vec<ChangeEvent> = (0..(2 + rng.u64(..200) as usize))
            .map(|i| event(["a", "b", "z"][rng.u64(..3) as usize], k + 1, i, 0, rng.u64(..2) as u8))
            .collect();
        published.push(events.clone());
        hub.publish(events);
    }
    for (l, keep) in [
        (&mut a, &(|e: &ChangeEvent| e.collection == "a") as &dyn Fn(&ChangeEvent) -> bool),
        (&mut b, &|e: &ChangeEvent| e.collection == "b" && e.change_type == ChangeType::Insert),
        (&mut g, &|_: &ChangeEvent| true),
    ] {
        for commit in &published {
            let want: Vec<DocId> = commit.iter().filter(|e| keep(e)).map(|e| e.id.clone()).collect();
            if want.is_empty() {
                continue;
            }
            // A commit of several: the first per event, the rest per commit.
            let mut got = Vec::new();
            if want.len() > 1 {
                got.push(l.try_recv().unwrap().unwrap().id);
            }
            let rest = l.try_recv_commit().unwrap().unwrap();
            assert_eq!(rest.sequence, commit[0].sequence);
            got.extend(rest.events.into_iter().map(|e| e.id));
            assert_eq!(got, want);
        }
    }
}

/// FINDING: a backlog commit read to its end with `recv` is handed out
/// again by `recv_commit` as an empty `CommitEvents` (same sequence, no
/// events). `poll_next_event` leaves an exhausted backlog `Pending` at the
/// front of `backlog` (it is removed only by the *next* per-event read),
/// and `poll_next_commit` pops it and returns `into_commit()` of nothing
/// (listener.rs, `poll_next_commit`: `if let Some(p) =
/// self.backlog.pop_front() { return … p.into_commit() }`). The live queue
/// pops a finished commit at once (`if done { q.pop() }`), so only resumed
/// listeners (`Aurora::listen_from`) see it.
#[test]
fn a_backlog_commit_read_by_events_is_not_delivered_again_empty() {
    let hub = PubSub::new(16);
    let backlog_commit = |sequence: u64, n: usize| CommitEvents {
        sequence,
        transaction_id: sequence,
        events: (0..n).map(|i| event("c0", sequence, i, 0, 0)).collect(),
    };
    let l = hub.listen_unfiltered("c0");
    let mut l = l.resume_with(vec![backlog_commit(3, 1), backlog_commit(4, 2)], 2);
    hub.publish((0..2).map(|i| event("c0", 5, i, 0, 0)).collect());
    assert_eq!(l.try_recv().unwrap().unwrap().sequence, 3);
    let next = l.try_recv_commit().unwrap().unwrap();
    assert!(!next.events.is_empty(), "commit {} delivered again with no events", next.sequence);
    assert_eq!(next.sequence, 4);
}

/// FINDING: lag reports overcount for a resumed listener. Live commits the
/// backlog already replayed still sit in the live queue, count against its
/// capacity and, when dropped for lag, are reported as `Lagged(n)` events
/// the listener "missed" — though it received every one of them from the
/// backlog (hub.rs `Subscriber::offer` counts `q.lost += old.len()` for any
/// commit; listener.rs skips replayed commits only when *delivering*,
/// `p.sequence > self.replayed_through`). Here nothing at all was missed,
/// yet the listener is told it missed 4 events: received + lagged ≠
/// passing. (`Aurora::listen_from` builds such listeners: a busy database
/// between the subscription and the end of the history read.)
#[test]
fn a_resumed_listener_is_not_told_it_missed_events_the_backlog_replayed() {
    let hub = PubSub::new(2);
    let l = hub.listen_unfiltered("c0");
    // Six commits while the history is read: the live queue keeps 5 and 6.
    let commits: Vec<Vec<ChangeEvent>> = (1..=6).map(|s| vec![event("c0", s, 0, 0, 0)]).collect();
    for c in &commits {
        hub.publish(c.clone());
    }
    let backlog = commits.iter().map(|c| CommitEvents {
        sequence: c[0].sequence,
        transaction_id: c[0].transaction_id,
        events: c.clone(),
    });
    let mut l = l.resume_with(backlog.collect(), 0);
    let (mut got, mut lagged) = (Vec::new(), 0);
    while let Some(r) = l.try_recv() {
        match r {
            Ok(e) => got.push(e.sequence),
            Err(RecvError::Lagged(n)) => lagged += n,
            Err(_) => break,
        }
    }
    assert_eq!(got, [1, 2, 3, 4, 5, 6], "every commit, once");
    assert_eq!(lagged, 0, "nothing was missed, yet Lagged({lagged}) was reported");
}

/// A backlog overlapping live commits, with live commits arriving while it
/// is read by a mix of per-event and per-commit reads: every commit once,
/// in order (a per-commit read of a half-read backlog commit gives the rest).
#[test]
fn resume_with_a_backlog_overlapping_live_commits_has_no_gap_and_no_duplicate() {
    let mut rng = fastrand::Rng::with_seed(21);
    for round in 0..scale() {
        let hub = PubSub::new(1 << 20);
        let filter = if round % 2 == 0 { EventFilter::All } else { EventFilter::field_equals("room", 1) };
        let l = hub.listen_all(filter.clone()).unwrap();
        let mut log: Vec<Vec<ChangeEvent>> = Vec::new();
        let publish = |hub: &PubSub, log: &mut Vec<Vec<ChangeEvent>>, rng: &mut fastrand::Rng| {
            let s = log.len() as u64 + 1;
            let c: Vec<ChangeEvent> =
                (0..(1 + rng.u64(..5) as usize)).map(|i| event("c0", s, i, rng.u64(..2) as i64, 0)).collect();
            log.push(c.clone());
            hub.publish(c);
        };
        // History: commits 1..=h; the listener subscribed after commit `sub`.
        let h = 2 + rng.u64(..10);
        let through = rng.u64(..h);
        for _ in 0..h {
            publish(&hub, &mut log, &mut rng);
        }
        let backlog: Vec<CommitEvents> = log
            .iter()
            .filter(|c| c[0].sequence > through)
            .map(|c| CommitEvents { sequence: c[0].sequence, transaction_id: c[0].sequence, events: c.clone() })
            .collect();
        let mut l = l.resume_with(backlog, through);
        let mut got: Vec<(u64, DocId)> = Vec::new();
        for _ in 0..(h * 8) {
            if rng.u64(..3) == 0 {
                publish(&hub, &mut log, &mut rng);
            }
            if rng.u64(..2) == 0 {
                if let Some(r) = l.try_recv() {
                    let e = r.unwrap();
                    assert!(filter.matches(&e));
                    got.push((e.sequence, e.id));
                }
            } else if let Some(r) = l.try_recv_commit() {
                let c = r.unwrap();
                for e in c.events {
                    assert!(filter.matches(&e));
                    got.push((e.sequence, e.id));
                }
            }
        }
        hub.close();
        loop {
            match l.try_recv() {
                Some(Ok(e)) => got.push((e.sequence, e.id)),
                Some(Err(_)) => break,
                other => panic!("{other:?}"),
            }
        }
        let want: Vec<(u64, DocId)> = log
            .iter()
            .flatten()
            .filter(|e| e.sequence > through && filter.matches(e))
            .map(|e| (e.sequence, e.id.clone()))
            .collect();
        assert_eq!(got, want, "round {round}");
    }
}

/// Listeners dropped on other threads while a publisher fans a commit of
/// thousands of events out: no deadlock on the groups lock.
#[test]
fn dropping_listeners_during_big_publishes_does_not_deadlock() {
    let hub = PubSub::new(64);
    let stop = Arc::new(AtomicBool::new(false));
    let made = Arc::new(Mutex::new(0u64));
    let droppers: Vec<_> = (0..2)
        .map(|t| {
            let (hub, stop, made) = (hub.clone(), Arc::clone(&stop), Arc::clone(&made));
            std::thread::spawn(move || {
                let mut rng = fastrand::Rng::with_seed(t + 9);
                while !stop.load(Ordering::Relaxed) {
                    let mut ls: Vec<Listener> = (0..8)
                        .map(|i| match i % 3 {
                            0 => hub.listen_all_unfiltered(),
                            1 => hub.listen("c0", EventFilter::field_equals("room", 1)).unwrap(),
                            _ => hub.listen_buffered("c0", 1),
                        })
                        .collect();
                    for l in &mut ls {
                        for _ in 0..rng.u64(..3) {
                            let _ = l.try_recv();
                        }
                    }
                    *made.lock().unwrap() += 8;
                }
            })
        })
        .collect();
    let (tx, rx) = std::sync::mpsc::channel();
    let publisher = {
        let hub = hub.clone();
        std::thread::spawn(move || {
            for k in 0..scale() {
                hub.publish((0..2000).map(|i| event("c0", k + 1, i, (i % 3) as i64, 0)).collect());
            }
            tx.send(()).unwrap();
        })
    };
    rx.recv_timeout(Duration::from_secs(60)).expect("publishing hung while listeners were dropped");
    stop.store(true, Ordering::Relaxed);
    publisher.join().unwrap();
    for d in droppers {
        d.join().unwrap();
    }
    assert!(*made.lock().unwrap() > 0);
    assert_eq!(hub.stats().listeners, 0);
    assert_eq!(hub.channel_count(), 0);
}
