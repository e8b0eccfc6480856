//! Transaction-layer benchmarks, next to raw sled and SQLite (rusqlite,
//! bundled, WAL mode) doing the same work on the same documents in the same
//! run:
//!
//! - `doc_insert`, `doc_update` (read, modify, write back), `doc_delete`:
//!   single-document operations, each its own transaction;
//! - `tx3`: the study's "transaction (3 ops)": read two accounts, write both
//!   back with a moved amount, insert a ledger entry — atomically.
//!
//! Aurora runs in `Balanced` (acknowledged once in the OS; survives process
//! crashes) next to SQLite `synchronous=NORMAL` (the same promise in WAL
//! mode), and in `Strict` next to SQLite `synchronous=FULL`. sled has no
//! per-commit durability short of `flush`, so it is shown without.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use aurora_benches::user;
use aurora_core::{doc, DocId, Document, Value};
use aurora_index::{Collections, IndexConfig, Schema};
use aurora_storage::{format, DocumentStore, DocumentStoreConfig, Durability, StoreConfig};
use aurora_txn::Database;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use rusqlite::{params, Connection};

const ACCOUNTS: u64 = 1000;

fn aurora(dir: &std::path::Path, durability: Durability) -> Database {
    let store = StoreConfig { durability, ..StoreConfig::default() };
    let docs = DocumentStore::open(dir, store, DocumentStoreConfig::default()).unwrap();
    let collections = Collections::open(docs, IndexConfig::default()).unwrap();
    collections.create_collection("users", Schema::new()).unwrap();
    collections.create_collection("ledger", Schema::new()).unwrap();
    Database::without_sink(collections)
}

fn sqlite(dir: &std::path::Path, synchronous: &str) -> Connection {
    let conn = Connection::open(dir.join("bench.sqlite")).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", synchronous).unwrap();
    conn.execute_batch(
        "CREATE TABLE users (id TEXT PRIMARY KEY, body BLOB NOT NULL);
         CREATE TABLE ledger (id TEXT PRIMARY KEY, body BLOB NOT NULL);",
    )
    .unwrap();
    conn
}

fn key(d: &Document) -> String {
    d.id.to_string()
}

fn with_balance(d: &Document, delta: i64) -> Document {
    let mut d = d.clone();
    let b = d.get("age").and_then(Value::as_i64).unwrap_or(0);
    d.set("age", b + delta);
    d
}

fn seed_accounts(db: &Database, conn: &Connection, sled_db: &sled::Db) {
    db.transaction(|tx| {
        for i in 0..ACCOUNTS {
            tx.upsert("users", user(i))?;
        }
        Ok(())
    })
    .unwrap();
    let t = conn.unchecked_transaction().unwrap();
    for i in 0..ACCOUNTS {
        let d = user(i);
        t.execute("INSERT OR REPLACE INTO users VALUES (?1, ?2)", params![key(&d), format::encode(&d).unwrap()])
            .unwrap();
    }
    t.commit().unwrap();
    for i in 0..ACCOUNTS {
        let d = user(i);
        sled_db.insert(key(&d), format::encode(&d).unwrap()).unwrap();
    }
}

fn workloads(c: &mut Criterion) {
    for (mode, sync) in [(Durability::Balanced, "NORMAL"), (Durability::Strict, "FULL")] {
        let tag = if mode == Durability::Strict { "strict" } else { "balanced" };
        let (adir, sdir, ldir) =
            (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let db = aurora(adir.path(), mode);
        let conn = sqlite(sdir.path(), sync);
        let sled_db = sled::Config::new().path(ldir.path()).open().unwrap();
        seed_accounts(&db, &conn, &sled_db);
        let mut n = 1_000_000u64;

        let mut g = c.benchmark_group(format!("doc_insert_{tag}"));
        g.throughput(Throughput::Elements(1));
        g.bench_function("aurora", |b| {
            b.iter(|| {
                n += 1;
                db.transaction(|tx| tx.insert("users", user(n))).unwrap()
            })
        });
        g.bench_function("sqlite", |b| {
            b.iter(|| {
                n += 1;
                let d = user(n);
                conn.execute("INSERT INTO users VALUES (?1, ?2)", params![key(&d), format::encode(&d).unwrap()])
                    .unwrap()
            })
        });
        if mode == Durability::Balanced {
            g.bench_function("sled", |b| {
                b.iter(|| {
                    n += 1;
                    let d = user(n);
                    sled_db.insert(key(&d), format::encode(&d).unwrap()).unwrap()
                })
            });
        }
        g.finish();

        let mut g = c.benchmark_group(format!("doc_update_{tag}"));
        g.throughput(Throughput::Elements(1));
        let mut i = 0u64;
        let mut next = move || {
            i = (i + 7) % ACCOUNTS;
            i
        };
        g.bench_function("aurora", |b| {
            b.iter(|| {
                let id = user(next()).id;
                db.transaction(|tx| {
                    let d = tx.get("users", &id)?.unwrap();
                    tx.upsert("users", with_balance(&d, 1))
                })
                .unwrap()
            })
        });
        g.bench_function("sqlite", |b| {
            b.iter(|| {
                let id = key(&user(next()));
                let t = conn.unchecked_transaction().unwrap();
                let body: Vec<u8> =
                    t.query_row("SELECT body FROM users WHERE id = ?1", params![id], |r| r.get(0)).unwrap();
                let d: Document = format::decode(b"", &body).unwrap();
                t.execute(
                    "UPDATE users SET body = ?2 WHERE id = ?1",
                    params![id, format::encode(&with_balance(&d, 1)).unwrap()],
                )
                .unwrap();
                t.commit().unwrap();
            })
        });
        if mode == Durability::Balanced {
            g.bench_function("sled", |b| {
                b.iter(|| {
                    let id = key(&user(next()));
                    let d: Document = format::decode(b"", &sled_db.get(&id).unwrap().unwrap()).unwrap();
                    sled_db.insert(id, format::encode(&with_balance(&d, 1)).unwrap()).unwrap()
                })
            });
        }
        g.finish();

        // Each delete removes a document its engine inserted in the
        // (untimed) setup of the same iteration.
        let mut g = c.benchmark_group(format!("doc_delete_{tag}"));
        g.throughput(Throughput::Elements(1));
        g.bench_function("aurora", |b| {
            b.iter_batched(
                || {
                    n += 1;
                    db.transaction(|tx| tx.insert("users", user(n))).unwrap()
                },
                |id| assert!(db.transaction(|tx| tx.delete("users", &id)).unwrap()),
                BatchSize::SmallInput,
            )
        });
        g.bench_function("sqlite", |b| {
            b.iter_batched(
                || {
                    n += 1;
                    let d = user(n);
                    conn.execute("INSERT INTO users VALUES (?1, ?2)", params![key(&d), format::encode(&d).unwrap()])
                        .unwrap();
                    key(&d)
                },
                |id| assert_eq!(conn.execute("DELETE FROM users WHERE id = ?1", params![id]).unwrap(), 1),
                BatchSize::SmallInput,
            )
        });
        if mode == Durability::Balanced {
            g.bench_function("sled", |b| {
                b.iter_batched(
                    || {
                        n += 1;
                        let d = user(n);
                        sled_db.insert(key(&d), format::encode(&d).unwrap()).unwrap();
                        key(&d)
                    },
                    |id| assert!(sled_db.remove(id).unwrap().is_some()),
                    BatchSize::SmallInput,
                )
            });
        }
        g.finish();

        let mut g = c.benchmark_group(format!("tx3_{tag}"));
        g.throughput(Throughput::Elements(1));
        let mut t = 0u64;
        let mut pair = move || {
            t += 1;
            ((t * 7) % ACCOUNTS, (t * 13 + 1) % ACCOUNTS, t)
        };
        g.bench_function(BenchmarkId::from_parameter("aurora"), |b| {
            b.iter(|| {
                let (x, y, t) = pair();
                if x == y {
                    return;
                }
                let (ix, iy) = (user(x).id, user(y).id);
                db.transaction(|tx| {
                    let a = tx.get("users", &ix)?.unwrap();
                    let c = tx.get("users", &iy)?.unwrap();
                    tx.upsert("users", with_balance(&a, -1))?;
                    tx.upsert("users", with_balance(&c, 1))?;
                    tx.insert(
                        "ledger",
                        doc! { "from": x as i64, "to": y as i64 }.id(DocId::text(&format!("l{t}-{tag}")).unwrap()),
                    )?;
                    Ok(())
                })
                .unwrap();
            })
        });
        g.bench_function(BenchmarkId::from_parameter("sqlite"), |b| {
            b.iter(|| {
                let (x, y, t) = pair();
                if x == y {
                    return;
                }
                let tr = conn.unchecked_transaction().unwrap();
                for (id, delta) in [(key(&user(x)), -1), (key(&user(y)), 1)] {
                    let body: Vec<u8> =
                        tr.query_row("SELECT body FROM users WHERE id = ?1", params![id], |r| r.get(0)).unwrap();
                    let d: Document = format::decode(b"", &body).unwrap();
                    tr.execute(
                        "UPDATE users SET body = ?2 WHERE id = ?1",
                        params![id, format::encode(&with_balance(&d, delta)).unwrap()],
                    )
                    .unwrap();
                }
                let entry = doc! { "from": x as i64, "to": y as i64 };
                tr.execute(
                    "INSERT INTO ledger VALUES (?1, ?2)",
                    params![format!("l{t}"), format::encode(&entry).unwrap()],
                )
                .unwrap();
                tr.commit().unwrap();
            })
        });
        if mode == Durability::Balanced {
            g.bench_function(BenchmarkId::from_parameter("sled"), |b| {
                b.iter(|| {
                    let (x, y, t) = pair();
                    if x == y {
                        return;
                    }
                    let (kx, ky) = (key(&user(x)), key(&user(y)));
                    sled_db
                        .transaction(|tree| {
                            for (id, delta) in [(&kx, -1), (&ky, 1)] {
                                let raw = tree.get(id.as_bytes())?.unwrap_or_default();
                                let d: Document = format::decode(b"", &raw).unwrap();
                                tree.insert(id.as_bytes(), format::encode(&with_balance(&d, delta)).unwrap())?;
                            }
                            let entry = doc! { "from": x as i64, "to": y as i64 };
                            tree.insert(format!("l{t}").as_bytes(), format::encode(&entry).unwrap())?;
                            Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
                        })
                        .unwrap();
                })
            });
        }
        g.finish();
        db.collections().documents().store().close().unwrap();
    }
}

criterion_group!(benches, workloads);
criterion_main!(benches);
