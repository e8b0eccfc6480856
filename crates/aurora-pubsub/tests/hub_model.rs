//! The hub against a model: listeners of every kind (a collection's, global,
//! filtered, indexed by a required value, with buffers of their own) come
//! and go while commits of one or two collections are published and events
//! are read one at a time or a commit at a time. The model keeps, per
//! listener, the plain list of whole commits of passing events, drops the
//! oldest whole commits past the buffer and counts what it dropped; the hub
//! must deliver exactly what the model does, lag reports included, and its
//! statistics must agree.
//!
//! Cases: `AURORA_PROPTEST_CASES` (default 64).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use aurora_core::{doc, DocId, Filter};
use aurora_pubsub::{ChangeCause, ChangeEvent, ChangeType, EventFilter, Listener, PubSub, RecvError};
use proptest::prelude::*;
use std::collections::VecDeque;
use std::sync::Arc;

const HUB_CAPACITY: usize = 5;
const COLLECTIONS: [&str; 2] = ["a", "b"];

fn cases() -> u32 {
    std::env::var("AURORA_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)
}

#[derive(Debug, Clone)]
enum Kind {
    Unfiltered,
    Inserts,
    /// Indexed by the hub (the filter requires `room == r`).
    Room(i64),
    /// Not indexable: `room != r`.
    NotRoom(i64),
    Buffered(usize),
}

#[derive(Debug, Clone)]
enum Op {
    Listen {
        kind: Kind,
        collection: Option<usize>,
    },
    Drop(usize),
    /// Events: (collection, change type 0..3, room before, room after).
    Publish(Vec<(usize, u8, i64, i64)>),
    RecvEvent(usize),
    RecvCommit(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let kind = prop_oneof![
        Just(Kind::Unfiltered),
        Just(Kind::Inserts),
        (0i64..3).prop_map(Kind::Room),
        (0i64..3).prop_map(Kind::NotRoom),
        (1usize..8).prop_map(Kind::Buffered),
    ];
    let collection = prop_oneof![3 => (0usize..2).prop_map(Some), 1 => Just(None)];
    prop_oneof![
        2 => (kind, collection).prop_map(|(kind, collection)| Op::Listen { kind, collection }),
        1 => (0usize..8).prop_map(Op::Drop),
        5 => proptest::collection::vec((0usize..2, 0u8..3, 0i64..3, 0i64..3), 1..5).prop_map(Op::Publish),
        4 => (0usize..8).prop_map(Op::RecvEvent),
        3 => (0usize..8).prop_map(Op::RecvCommit),
    ]
}

/// What the model says one listener holds.
struct Model {
    filter: EventFilter,
    /// `None`: every collection.
    collection: Option<&'static str>,
    capacity: usize,
    commits: VecDeque<(u64, VecDeque<Arc<ChangeEvent>>)>,
    lost: u64,
}

impl Model {
    fn len(&self) -> usize {
        self.commits.iter().map(|(_, e)| e.len()).sum()
    }

    fn offer(&mut self, sequence: u64, events: &[Arc<ChangeEvent>]) -> u64 {
        let passing: VecDeque<_> = events
            .iter()
            .filter(|e| self.collection.is_none_or(|c| e.collection == c) && self.filter.matches(e))
            .cloned()
            .collect();
        if passing.is_empty() {
            return 0;
        }
        self.commits.push_back((sequence, passing));
        let mut dropped = 0;
        while self.len() > self.capacity && self.commits.len() > 1 {
            let (_, old) = self.commits.pop_front().unwrap();
            dropped += old.len() as u64;
        }
        self.lost += dropped;
        dropped
    }

    fn lag(&mut self) -> Option<u64> {
        (self.lost > 0).then(|| std::mem::take(&mut self.lost))
    }

    fn recv_event(&mut self) -> Option<Result<(u64, DocId), u64>> {
        if let Some(lost) = self.lag() {
            return Some(Err(lost));
        }
        let (_, events) = self.commits.front_mut()?;
        let e = events.pop_front().unwrap();
        if events.is_empty() {
            self.commits.pop_front();
        }
        Some(Ok((e.sequence, e.id.clone())))
    }

    fn recv_commit(&mut self) -> Option<Result<(u64, Vec<DocId>), u64>> {
        if let Some(lost) = self.lag() {
            return Some(Err(lost));
        }
        let (sequence, events) = self.commits.pop_front()?;
        Some(Ok((sequence, events.iter().map(|e| e.id.clone()).collect())))
    }
}

fn event(sequence: u64, collection: usize, kind: u8, before: i64, after: i64) -> ChangeEvent {
    let id = DocId::new();
    let version = |room: i64| {
        let mut d = doc! { "room": room };
        d.id = id.clone();
        Arc::new(d)
    };
    let (change_type, old, new) = match kind {
        0 => (ChangeType::Insert, None, Some(version(after))),
        1 => (ChangeType::Update, Some(version(before)), Some(version(after))),
        _ => (ChangeType::Delete, Some(version(before)), None),
    };
    ChangeEvent {
        collection: COLLECTIONS[collection].into(),
        change_type,
        id,
        document: new,
        old_document: old,
        sequence,
        transaction_id: sequence,
        cause: ChangeCause::Write,
    }
}

fn listen(hub: &PubSub, kind: &Kind, collection: Option<&'static str>) -> (Listener, Model) {
    let (filter, capacity) = match kind {
        Kind::Unfiltered | Kind::Buffered(_) => (EventFilter::All, HUB_CAPACITY),
        Kind::Inserts => (EventFilter::ChangeType(ChangeType::Insert), HUB_CAPACITY),
        Kind::Room(r) => (EventFilter::field_equals("room", *r), HUB_CAPACITY),
        Kind::NotRoom(r) => (EventFilter::Matches(Filter::Ne("room".into(), (*r).into())), HUB_CAPACITY),
    };
    let listener = match (kind, collection) {
        (Kind::Buffered(n), Some(c)) => hub.listen_buffered(c, *n),
        (_, Some(c)) => hub.listen(c, filter.clone()).unwrap(),
        (_, None) => hub.listen_all(filter.clone()).unwrap(),
    };
    let capacity = match (kind, collection) {
        (Kind::Buffered(n), Some(_)) => *n,
        _ => capacity,
    };
    let model = Model { filter, collection, capacity, commits: VecDeque::new(), lost: 0 };
    (listener, model)
}

fn run(ops: Vec<Op>) {
    let hub = PubSub::new(HUB_CAPACITY);
    let mut open: Vec<(Listener, Model)> = Vec::new();
    let (mut sequence, mut commits, mut dropped) = (0u64, 0u64, 0u64);
    for op in ops {
        match op {
            Op::Listen { kind, collection } => open.push(listen(&hub, &kind, collection.map(|c| COLLECTIONS[c]))),
            Op::Drop(i) if !open.is_empty() => {
                open.remove(i % open.len());
            }
            Op::Publish(events) => {
                sequence += 1;
                commits += 1;
                let events: Vec<ChangeEvent> =
                    events.into_iter().map(|(c, k, before, after)| event(sequence, c, k, before, after)).collect();
                let shared: Vec<Arc<ChangeEvent>> = events.iter().cloned().map(Arc::new).collect();
                for (_, model) in &mut open {
                    dropped += model.offer(sequence, &shared);
                }
                hub.publish(events);
            }
            Op::RecvEvent(i) if !open.is_empty() => {
                let n = open.len();
                let (listener, model) = &mut open[i % n];
                let got = listener.try_recv().map(|r| match r {
                    Ok(e) => Ok((e.sequence, e.id)),
                    Err(RecvError::Lagged(n)) => Err(n),
                    Err(other) => panic!("{other} while the hub is open"),
                });
                assert_eq!(got, model.recv_event(), "event read by listener {} of {n}", i % n);
            }
            Op::RecvCommit(i) if !open.is_empty() => {
                let n = open.len();
                let (listener, model) = &mut open[i % n];
                let got = listener.try_recv_commit().map(|r| match r {
                    Ok(c) => {
                        assert!(c.events.iter().all(|e| e.sequence == c.sequence));
                        Ok((c.sequence, c.events.into_iter().map(|e| e.id).collect()))
                    }
                    Err(RecvError::Lagged(n)) => Err(n),
                    Err(other) => panic!("{other} while the hub is open"),
                });
                assert_eq!(got, model.recv_commit(), "commit read by listener {} of {n}", i % n);
            }
            _ => {}
        }
        let stats = hub.stats();
        assert_eq!(stats.listeners, open.len());
        assert_eq!(stats.buffered_events, open.iter().map(|(_, m)| m.len()).sum::<usize>());
        assert_eq!(stats.max_listener_lag, open.iter().map(|(_, m)| m.len()).max().unwrap_or(0));
        assert_eq!(stats.commits_published, commits);
        assert_eq!(stats.events_dropped, dropped);
    }
    // Closing delivers what is buffered, then `Closed`.
    hub.close();
    for (mut listener, mut model) in open {
        while let Some(expected) = model.recv_event() {
            let got = listener.try_recv().unwrap().map(|e| (e.sequence, e.id)).map_err(|e| match e {
                RecvError::Lagged(n) => n,
                other => panic!("{other} before its buffered events"),
            });
            assert_eq!(got, expected);
        }
        assert_eq!(listener.try_recv().map(|r| r.err()), Some(Some(RecvError::Closed)));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn the_hub_delivers_what_the_model_does(ops in proptest::collection::vec(op(), 1..120)) {
        run(ops);
    }
}
