//! Pipelining (src/store/scope/pipeline.rs): transactions of one scope that
//! queue on its write lock commit together in one `Storage::create_all`,
//! each still its own atomic log record with a contiguous seq and its own
//! answer. The storage here yields on every call, so joined transactions
//! really queue, and records every `create_all`.

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use common::{block_on, code, prov, v, yield_now};
use futures_util::future::{join, join_all};
use waymark::storage::{BatchOp, Capabilities, MemoryStorage, Storage};
use waymark::store::{Store, StoreOptions};
use waymark::{Dims, Error, Op, Result, Value};

type Probe = Box<dyn Fn() -> u64>;

/// A memory storage that yields before and after every call and logs each
/// `create_all` as (records asked, records created).
#[derive(Clone, Default)]
struct Pipe {
    mem: MemoryStorage,
    runs: Rc<RefCell<Vec<(usize, usize)>>>,
    /// Fails the `create_all` after this many more have succeeded.
    fail_run: Rc<Cell<Option<usize>>>,
    /// `Some((r, k))`: after `r` more `create_all`s, "another writer"
    /// creates the k-th key of the next one first (with that record's own bytes).
    steal: Rc<Cell<Option<(usize, usize)>>>,
    /// The scope's seq, read at the start and at the end of each
    /// `create_all` into `seen` (when set by a test).
    probe: Rc<RefCell<Option<Probe>>>,
    seen: Rc<RefCell<Vec<(u64, u64)>>>,
    /// Behave like a backend without `create_all` (the default `None`).
    unsupported: bool,
}

impl Pipe {
    fn runs(&self) -> Vec<(usize, usize)> {
        self.runs.borrow().clone()
    }
}

impl Storage for Pipe {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        yield_now().await;
        self.mem.get(key).await
    }
    async fn put(&self, key: &str, value: Vec<u8>) -> Result<()> {
        yield_now().await;
        self.mem.put(key, value).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        yield_now().await;
        self.mem.delete(key).await
    }
    async fn list(&self, prefix: &str, after: Option<&str>, limit: Option<usize>) -> Result<Vec<String>> {
        yield_now().await;
        self.mem.list(prefix, after, limit).await
    }
    async fn batch(&self, ops: Vec<BatchOp>) -> Result<()> {
        yield_now().await;
        self.mem.batch(ops).await
    }
    async fn put_if_absent(&self, key: &str, value: Vec<u8>) -> Result<bool> {
        yield_now().await;
        let r = self.mem.put_if_absent(key, value).await;
        yield_now().await;
        r
    }
    async fn create_all(&self, entries: Vec<(String, Vec<u8>)>) -> Result<Option<usize>> {
        if self.unsupported {
            return Ok(None);
        }
        let probe = || self.probe.borrow().as_ref().map_or(0, |f| f());
        let at_start = probe();
        yield_now().await;
        match self.fail_run.get() {
            Some(0) => {
                self.fail_run.set(None);
                return Err(Error::Storage("injected create_all failure".into()));
            }
            Some(n) => self.fail_run.set(Some(n - 1)),
            None => {}
        }
        let asked = entries.len();
        match self.steal.get() {
            Some((0, k)) => {
                self.steal.set(None);
                if let Some((k, v)) = entries.get(k) {
                    self.mem.raw_put(k, v.clone());
                }
            }
            Some((r, k)) => self.steal.set(Some((r - 1, k))),
            None => {}
        }
        let r = self.mem.create_all(entries).await;
        if let Ok(Some(n)) = r {
            self.runs.borrow_mut().push((asked, n));
        }
        yield_now().await;
        self.seen.borrow_mut().push((at_start, probe()));
        r
    }
    fn capabilities(&self) -> Capabilities {
        self.mem.capabilities()
    }
}

fn dims() -> Dims {
    Dims::new([("test", "pipeline")])
}

fn tx(i: i32) -> Vec<Op> {
    // Two ops: a partly applied transaction would show as a mismatch.
    vec![Op::set("e", [("a", v(i)), ("b", v(i))]), Op::set(format!("f:{i}"), [("v", v(i))])]
}

/// Reopens a store on `mem` and checks that its log is whole: seq `n`, and
/// transaction k (k ≥ 2) set `a` = `b` = the value its cause names.
fn check_log(mem: &MemoryStorage, n: u64) {
    block_on(async {
        let store = Store::open(mem.clone(), StoreOptions::default()).await.unwrap();
        let scope = store.scope(dims()).await.unwrap();
        assert_eq!(scope.seq(), n, "the reopened scope holds every committed transaction");
        let a = scope.history("e", "a");
        let b = scope.history("e", "b");
        assert_eq!(a.len(), b.len(), "every transaction set both attributes");
        for (x, y) in a.iter().zip(&b) {
            assert_eq!((x.seq, &x.value), (y.seq, &y.value), "a and b were written by the same transaction");
            let i: i32 = x.cause.trim_start_matches("c").parse().unwrap();
            assert_eq!(x.value, Some(v(i)), "seq {} holds the transaction its cause names", x.seq);
            assert_eq!(scope.value(&format!("f:{i}"), "v"), Some(v(i)), "the second op of {} is there", x.cause);
        }
        let seqs: Vec<u64> = a.iter().map(|x| x.seq).collect();
        assert_eq!(seqs, (1..=n).collect::<Vec<_>>(), "seqs are contiguous");
    });
}

#[test]
fn queued_transactions_commit_together_in_call_order() {
    let pipe = Pipe::default();
    block_on(async {
        let store = Store::open(pipe.clone(), StoreOptions::default()).await.unwrap();
        let scope = store.scope(dims()).await.unwrap();
        scope.transact(tx(0), prov("c0")).await.unwrap();
        let txs = join_all((1..=50).map(|i| scope.transact(tx(i), prov(&format!("c{i}"))))).await;
        for (i, t) in txs.iter().enumerate() {
            let t = t.as_ref().unwrap();
            assert_eq!(t.seq, i as u64 + 2, "seqs follow call order");
            assert_eq!(t.cause, format!("c{}", i + 1), "each caller gets its own TxInfo");
        }
        assert_eq!(scope.seq(), 51);
        assert_eq!(scope.value("e", "a"), Some(v(50)));
    });
    assert_eq!(pipe.runs(), [(50, 50)], "50 transactions issued together: one create_all");
    check_log(&pipe.mem, 51);
}

#[test]
fn each_transaction_of_a_run_answers_for_itself() {
    let pipe = Pipe::default();
    block_on(async {
        let store = Store::open(pipe.clone(), StoreOptions::default()).await.unwrap();
        let scope = store.scope(dims()).await.unwrap();
        scope.transact(tx(0), prov("c0")).await.unwrap();
        let huge = Value::from("x".repeat(65 * 1024 * 1024));
        let (small, big) = join(
            join_all((1..=6).map(|i| scope.transact(tx(i), prov(&format!("c{i}"))))),
            scope.transact(vec![Op::set("big", [("v", huge)])], prov("big")),
        )
        .await;
        assert_eq!(code(&big.unwrap_err()), "TOO_LARGE", "the oversized transaction fails alone");
        let seqs: Vec<u64> = small.into_iter().map(|t| t.unwrap().seq).collect();
        assert_eq!(seqs, (2..=7).collect::<Vec<_>>(), "the others commit with contiguous seqs");
    });
    check_log(&pipe.mem, 7);
}

#[test]
fn a_failed_run_fails_each_of_its_transactions_and_applies_nothing() {
    let pipe = Pipe::default();
    block_on(async {
        let store = Store::open(pipe.clone(), StoreOptions::default()).await.unwrap();
        let scope = store.scope(dims()).await.unwrap();
        scope.transact(tx(0), prov("c0")).await.unwrap();
        pipe.fail_run.set(Some(0));
        // Issued together, the ten go in one run, and it fails.
        let txs = join_all((1..=10).map(|i| scope.transact(tx(i), prov(&format!("c{i}"))))).await;
        for t in &txs {
            assert_eq!(code(t.as_ref().unwrap_err()), "STORAGE", "every transaction of the failed run gets the error");
        }
        assert_eq!(scope.seq(), 1, "nothing of the failed run is visible");
        assert_eq!(scope.entity("f:5"), None);
        let next = join_all((11..=12).map(|i| scope.transact(tx(i), prov(&format!("c{i}"))))).await;
        assert_eq!(next.iter().map(|t| t.as_ref().unwrap().seq).collect::<Vec<_>>(), [2, 3], "the next transactions take the next seqs");
    });
    assert_eq!(pipe.runs(), [(2, 2)], "the failed run wrote nothing; the next one wrote both");
    check_log(&pipe.mem, 3);
}

#[test]
fn two_stores_racing_on_one_storage_lose_nothing() {
    let pipe = Pipe::default();
    let total = block_on(async {
        let a = Store::open(pipe.clone(), StoreOptions::default()).await.unwrap();
        let b = Store::open(pipe.clone(), StoreOptions::default()).await.unwrap();
        let (sa, sb) = (a.scope(dims()).await.unwrap(), b.scope(dims()).await.unwrap());
        let write = |scope: waymark::store::Scope<Pipe>, from: i32| async move {
            let mut seqs = Vec::new();
            // Bursts of ten queued transactions, five times.
            for burst in 0..5 {
                let base = from + burst * 10;
                let txs = join_all((base..base + 10).map(|i| scope.transact(tx(i), prov(&format!("c{i}"))))).await;
                seqs.extend(txs.into_iter().map(|t| t.unwrap().seq));
            }
            seqs
        };
        let (x, y) = join(write(sa.clone(), 1000), write(sb.clone(), 2000)).await;
        let mut all: Vec<u64> = x.iter().chain(&y).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (1..=100).collect::<Vec<_>>(), "every transaction got its own seq");
        assert!(x.windows(2).all(|w| w[0] < w[1]) && y.windows(2).all(|w| w[0] < w[1]), "each store's seqs follow its call order");
        assert_eq!(sa.refresh().await.unwrap(), 100);
        assert_eq!(sb.refresh().await.unwrap(), 100);
        all.len() as u64
    });
    let runs = pipe.runs();
    assert!(runs.iter().any(|r| r.1 > 1), "some transactions were committed together: {runs:?}");
    check_log(&pipe.mem, total);
}

#[test]
fn without_create_all_queued_transactions_commit_one_by_one() {
    let pipe = Pipe { unsupported: true, ..Pipe::default() };
    block_on(async {
        let store = Store::open(pipe.clone(), StoreOptions::default()).await.unwrap();
        let scope = store.scope(dims()).await.unwrap();
        let txs = join_all((1..=20).map(|i| scope.transact(tx(i), prov(&format!("c{i}"))))).await;
        let seqs: Vec<u64> = txs.into_iter().map(|t| t.unwrap().seq).collect();
        assert_eq!(seqs, (1..=20).collect::<Vec<_>>());
    });
    assert!(pipe.runs().is_empty());
    check_log(&pipe.mem, 20);
}

#[test]
fn restores_and_checkpoints_interleave_with_queued_transactions() {
    let pipe = Pipe::default();
    block_on(async {
        let store = Store::open(pipe.clone(), StoreOptions::default()).await.unwrap();
        let scope = store.scope(dims()).await.unwrap();
        scope.transact(tx(0), prov("c0")).await.unwrap();
        scope.checkpoint("start").await.unwrap();
        let (before, (restored, after)) = join(
            join_all((1..=10).map(|i| scope.transact(tx(i), prov(&format!("c{i}"))))),
            join(
                scope.restore(&waymark::Point::Name("start".into()), prov("restore")),
                join_all((11..=20).map(|i| scope.transact(tx(i), prov(&format!("c{i}"))))),
            ),
        )
        .await;
        // Call order: c1..c10, the restore, c11..c20.
        let seqs = |txs: &[waymark::Result<waymark::TxInfo>]| txs.iter().map(|t| t.as_ref().unwrap().seq).collect::<Vec<_>>();
        assert_eq!(seqs(&before), (2..=11).collect::<Vec<_>>());
        assert_eq!(restored.unwrap().seq, 12, "the restore commits after the transactions issued before it");
        assert_eq!(seqs(&after), (13..=22).collect::<Vec<_>>());
        assert_eq!(scope.value("e", "a"), Some(v(20)));
        assert_eq!(scope.as_of(waymark::AsOf::Seq(12)).unwrap().value("e", "a"), Some(v(0)), "the restore put back c0's value");
    });
}

#[test]
fn checkpoints_and_refreshes_keep_call_order_with_queued_transactions() {
    let pipe = Pipe::default();
    block_on(async {
        let store = Store::open(pipe.clone(), StoreOptions::default()).await.unwrap();
        let scope = store.scope(dims()).await.unwrap();
        scope.transact(tx(0), prov("c0")).await.unwrap();
        let (before, (cp, (seen, after))) = join(
            join_all((1..=10).map(|i| scope.transact(tx(i), prov(&format!("c{i}"))))),
            join(scope.checkpoint("mid"), join(scope.refresh(), join_all((11..=20).map(|i| scope.transact(tx(i), prov(&format!("c{i}"))))))),
        )
        .await;
        assert!(before.iter().chain(&after).all(|t| t.is_ok()));
        assert_eq!(cp.unwrap().seq, 11, "the checkpoint sits between the transactions issued before and after it");
        assert_eq!(seen.unwrap(), 11, "refresh waits for the transactions issued before it, not after");
        assert_eq!(scope.diff(&waymark::Point::Name("mid".into()), None).unwrap().iter().find(|c| c.entity == "e" && c.attribute == "a").unwrap().after, Some(v(20)));
    });
    check_log(&pipe.mem, 21);
}

#[test]
fn callers_that_go_away_never_block_the_queue() {
    use std::future::Future;
    use std::task::{Context, Waker};
    let poll_once = |f: std::pin::Pin<&mut dyn Future<Output = ()>>| {
        let _ = f.poll(&mut Context::from_waker(Waker::noop()));
    };
    let pipe = Pipe::default();
    block_on(async {
        let store = Store::open(pipe.clone(), StoreOptions::default()).await.unwrap();
        let scope = store.scope(dims()).await.unwrap();
        scope.transact(tx(0), prov("c0")).await.unwrap();
        // A transaction polled once (it queued, took the lock and yielded),
        // then dropped: it stays queued and is committed with the next run.
        let mut t = Box::pin(async { drop(scope.transact(tx(1), prov("c1")).await) });
        poll_once(t.as_mut());
        drop(t);
        // A checkpoint polled once (queued its turn, took the lock, started
        // committing the transaction ahead of it), then dropped mid-commit.
        let mut c = Box::pin(async { drop(scope.checkpoint("gone").await) });
        poll_once(c.as_mut());
        drop(c);
        // A turn queued behind a dropped one, and transactions: all go through.
        let (cp, txs) = join(scope.checkpoint("kept"), join_all((2..=4).map(|i| scope.transact(tx(i), prov(&format!("c{i}")))))).await;
        cp.unwrap();
        for t in &txs {
            t.as_ref().unwrap();
        }
        assert_eq!(scope.refresh().await.unwrap(), scope.seq());
        let n = scope.seq();
        assert!(n >= 4, "c0, c2, c3 and c4 committed (c1 may have been, too): seq {n}");
    });
    let n = block_on(async { Store::open(pipe.mem.clone(), StoreOptions::default()).await.unwrap().scope(dims()).await.unwrap().seq() });
    check_log(&pipe.mem, n);
}

#[test]
fn runs_stop_at_4_mib_and_the_rest_follow() {
    let pipe = Pipe::default();
    block_on(async {
        let store = Store::open(pipe.clone(), StoreOptions::default()).await.unwrap();
        let scope = store.scope(dims()).await.unwrap();
        scope.transact(tx(0), prov("c0")).await.unwrap();
        let big = |i: i32| {
            let mut ops = tx(i);
            ops.push(Op::set(format!("blob:{i}"), [("v", Value::from("x".repeat(1024 * 1024)))]));
            ops
        };
        let txs = join_all((1..=6).map(|i| scope.transact(big(i), prov(&format!("c{i}"))))).await;
        let seqs: Vec<u64> = txs.into_iter().map(|t| t.unwrap().seq).collect();
        assert_eq!(seqs, (2..=7).collect::<Vec<_>>());
        for i in 1..=6 {
            assert_eq!(scope.value(&format!("blob:{i}"), "v").map(|v| v == Value::from("x".repeat(1024 * 1024))), Some(true));
        }
    });
    let runs = pipe.runs();
    assert!(runs.len() >= 2 && runs.iter().all(|r| r.0 == r.1 && r.0 <= 4), "1 MiB transactions, at most 4 MiB per run: {runs:?}");
    assert_eq!(runs.iter().map(|r| r.1).sum::<usize>(), 6);
    check_log(&pipe.mem, 7);
}

#[test]
fn a_run_cut_short_by_another_writer_finishes_one_by_one() {
    let pipe = Pipe::default();
    block_on(async {
        let store = Store::open(pipe.clone(), StoreOptions::default()).await.unwrap();
        let scope = store.scope(dims()).await.unwrap();
        scope.transact(tx(0), prov("c0")).await.unwrap();
        // The run is c1..c10 at seqs 2..11; seq 5 is taken before it lands.
        pipe.steal.set(Some((0, 3)));
        let txs = join_all((1..=10).map(|i| scope.transact(tx(i), prov(&format!("c{i}"))))).await;
        let seqs: Vec<u64> = txs.into_iter().map(|t| t.unwrap().seq).collect();
        assert_eq!(seqs, [2, 3, 4, 6, 7, 8, 9, 10, 11, 12], "the created prefix keeps its seqs; the rest follow the other writer's");
        assert_eq!(scope.seq(), 12);
        assert_eq!(scope.value("e", "a"), Some(v(10)));
    });
    assert_eq!(pipe.runs()[0], (10, 3), "the run created its first three records");
    check_log(&pipe.mem, 12);
}

/// Issues `n` transactions c1..cn at once on a scope that already holds c0,
/// with `pipe.probe` reading the scope's seq; returns their answers.
fn burst(pipe: &Pipe, n: i32, before: impl FnOnce(&Pipe)) -> Vec<Result<waymark::TxInfo>> {
    block_on(async {
        let store = Store::open(pipe.clone(), StoreOptions::default()).await.unwrap();
        let scope = store.scope(dims()).await.unwrap();
        scope.transact(tx(0), prov("c0")).await.unwrap();
        let s = scope.clone();
        *pipe.probe.borrow_mut() = Some(Box::new(move || s.seq()));
        before(pipe);
        join_all((1..=n).map(|i| scope.transact(tx(i), prov(&format!("c{i}"))))).await
    })
}

#[test]
fn a_long_run_goes_in_chunks_each_applied_while_the_next_is_stored() {
    let pipe = Pipe::default();
    let txs = burst(&pipe, 600, |_| {});
    let seqs: Vec<u64> = txs.into_iter().map(|t| t.unwrap().seq).collect();
    assert_eq!(seqs, (2..=601).collect::<Vec<_>>(), "seqs follow call order across chunks");
    assert_eq!(pipe.runs(), [(250, 250), (250, 250), (100, 100)], "chunks of 250 records");
    // Each chunk's create_all starts before the chunk ahead of it is applied,
    // and by the time it is stored that chunk has been applied.
    assert_eq!(*pipe.seen.borrow(), [(1, 1), (1, 251), (251, 501)]);
    check_log(&pipe.mem, 601);
}

#[test]
fn a_failed_chunk_fails_alone_and_the_chunks_around_it_commit() {
    let pipe = Pipe::default();
    let txs = burst(&pipe, 600, |p| p.fail_run.set(Some(1)));
    for (i, t) in txs.iter().enumerate() {
        match i {
            0..250 => assert_eq!(t.as_ref().unwrap().seq, i as u64 + 2, "the first chunk was stored and answered"),
            250..500 => assert_eq!(code(t.as_ref().unwrap_err()), "STORAGE", "c{} was in the failed chunk", i + 1),
            _ => assert_eq!(t.as_ref().unwrap().seq, i as u64 + 2 - 250, "c{} was built after the failed chunk and went next", i + 1),
        }
    }
    assert_eq!(pipe.runs(), [(250, 250), (100, 100)], "the failed chunk wrote nothing");
    check_log(&pipe.mem, 351);
}

#[test]
fn a_chunk_cut_short_by_another_writer_leaves_a_prefix_and_the_rest_follow_one_by_one() {
    let pipe = Pipe::default();
    // The first chunk goes through; "another writer" takes the 11th key of
    // the second one (seq 262) just before it lands.
    let txs = burst(&pipe, 600, |p| p.steal.set(Some((1, 10))));
    let seqs: Vec<u64> = txs.into_iter().map(|t| t.unwrap().seq).collect();
    let want: Vec<u64> = (2..=261).chain(263..=602).collect();
    assert_eq!(seqs, want, "the created prefix keeps its seqs; the rest follow the other writer's");
    assert_eq!(pipe.runs()[..2], [(250, 250), (250, 10)]);
    check_log(&pipe.mem, 602);
}

// ---- Memory storage: a transaction with nothing ahead of it commits at once
// (`Scope::commits_now`, `commit_alone`), without the queue.

#[test]
fn on_memory_storage_a_lone_transaction_commits_in_its_first_poll() {
    let mem = MemoryStorage::new();
    block_on(async {
        let store = Store::open(mem.clone(), StoreOptions::default()).await.unwrap();
        let scope = store.scope(dims()).await.unwrap();
        // The first transaction also writes the scope's header and genesis
        // record: on memory storage that completes at once as well.
        for i in 1..=20 {
            assert!(scope.commits_now());
            // `ready` fails unless the future completes in its first poll.
            let t = common::ready(scope.transact(tx(i), prov(&format!("c{i}")))).unwrap();
            assert_eq!(t.seq, i as u64);
        }
        // Transactions issued together still answer in call order.
        let both = join(scope.transact(tx(21), prov("c21")), scope.transact(tx(22), prov("c22"))).await;
        assert_eq!((both.0.unwrap().seq, both.1.unwrap().seq), (21, 22));
    });
    check_log(&mem, 22);
}

#[test]
fn on_memory_storage_a_writer_behind_another_catches_up_and_loses_nothing() {
    let mem = MemoryStorage::new();
    let (clock, opts) = common::clock(1_000.0);
    block_on(async {
        let a = Store::open(mem.clone(), opts.clone()).await.unwrap();
        let b = Store::open(mem.clone(), opts).await.unwrap();
        let sa = a.scope(dims()).await.unwrap();
        sa.transact(tx(1), prov("c1")).await.unwrap();
        let sb = b.scope(dims()).await.unwrap();
        assert_eq!(sb.seq(), 1);
        let mut seqs = Vec::new();
        for i in 2..=21 {
            clock.set(clock.get() + 10.0);
            // Each store is one transaction behind the other: every commit
            // of `b` after the first, and of `a` after that, finds its seq
            // taken, gives its record back and takes the catching-up path.
            let scope = if i % 2 == 0 { &sa } else { &sb };
            assert!(scope.commits_now());
            let mut ops = tx(i);
            ops.push(Op::Set { entity: "ttl".into(), ty: None, attrs: vec![(format!("t{i}"), v(i))], expiry: Some(waymark::Expiry::TtlMs(500.0)) });
            let t = common::ready(scope.transact(ops, prov(&format!("c{i}")))).unwrap();
            // The expiry of a retried record is counted from its own time.
            let why = scope.why("ttl", &format!("t{i}")).unwrap();
            assert_eq!((why.seq, why.valid_until), (t.seq, Some(t.at + 500.0)));
            seqs.push(t.seq);
        }
        assert_eq!(seqs, (2..=21).collect::<Vec<u64>>(), "one seq each, in call order");
        assert_eq!(sa.refresh().await.unwrap(), 21);
        assert_eq!(sb.seq(), 21);
    });
    check_log(&mem, 21);
}

// ---- Packed transactions (the JS package's fast path, `core::packed`):
// on memory storage they commit at once from their bytes; otherwise, and
// when another writer took the seq, they take the general path.

/// `tx(i)` as `writes.js` packs it: cause, no actor or note, then each op's
/// entity, type, delete, unset, ttlMs, validUntil and set.
fn packed_tx(i: i32) -> waymark::core::packed::Packed {
    use waymark::core::wire::{put_bool, put_f64, put_str, put_u64};
    let mut w = Vec::new();
    put_str(&mut w, &format!("c{i}"));
    w.extend_from_slice(&[0, 0]); // no actor, no note
    put_u64(&mut w, 2);
    for (entity, attrs) in [("e".to_string(), vec!["a", "b"]), (format!("f:{i}"), vec!["v"])] {
        put_str(&mut w, &entity);
        w.extend_from_slice(&[0, 0, 0, 0, 0]); // type, delete, unset, ttlMs, validUntil
        put_bool(&mut w, true);
        put_u64(&mut w, attrs.len() as u64);
        for a in attrs {
            put_str(&mut w, a);
            w.push(2); // a number, as JS sends every number
            put_f64(&mut w, f64::from(i));
        }
    }
    waymark::core::packed::pack(&w).expect("packs")
}

#[test]
fn packed_transactions_commit_at_once_and_store_what_transact_stores() {
    let packed = MemoryStorage::new();
    let plain = MemoryStorage::new();
    block_on(async {
        let (_, opts) = common::clock(1_000.0);
        let sp = Store::open(packed.clone(), opts.clone()).await.unwrap().scope(dims()).await.unwrap();
        let sq = Store::open(plain.clone(), opts).await.unwrap().scope(dims()).await.unwrap();
        // The first transaction of a scope also writes its header (the
        // one-at-a-time path): at once as well.
        for i in 1..=20 {
            assert!(sp.commits_now());
            // `ready` fails unless the commit completes in its first poll.
            assert_eq!(common::ready(sp.commit_packed(packed_tx(i))).unwrap(), (i as u64, 1_000.0));
            sq.transact(tx(i), prov(&format!("c{i}"))).await.unwrap();
        }
        // Issued together with a transaction ahead of it: in call order.
        let both = join(sp.transact(tx(21), prov("c21")), sp.commit_packed(packed_tx(22))).await;
        assert_eq!((both.0.unwrap().seq, both.1.unwrap().0), (21, 22));
        sq.transact(tx(21), prov("c21")).await.unwrap();
        sq.transact(tx(22), prov("c22")).await.unwrap();
        assert_eq!(sp.entities(), sq.entities());
    });
    assert_eq!(common::dump(&packed), common::dump(&plain), "the same bytes, key for key");
    check_log(&packed, 22);
}

#[test]
fn a_packed_transaction_whose_seq_was_taken_commits_after_the_other() {
    let mem = MemoryStorage::new();
    block_on(async {
        let a = Store::open(mem.clone(), StoreOptions::default()).await.unwrap();
        let b = Store::open(mem.clone(), StoreOptions::default()).await.unwrap();
        let sa = a.scope(dims()).await.unwrap();
        sa.transact(tx(1), prov("c1")).await.unwrap();
        let sb = b.scope(dims()).await.unwrap();
        let mut seqs = Vec::new();
        for i in 2..=21 {
            // Each store is one transaction behind the other: every packed
            // commit after the first finds its seq taken and catches up.
            let scope = if i % 2 == 0 { &sa } else { &sb };
            assert!(scope.commits_now());
            seqs.push(common::ready(scope.commit_packed(packed_tx(i))).unwrap().0);
        }
        assert_eq!(seqs, (2..=21).collect::<Vec<u64>>());
        assert_eq!(sa.refresh().await.unwrap(), 21);
    });
    check_log(&mem, 21);
}

#[test]
fn packed_transactions_on_storage_that_waits_take_the_queue() {
    let pipe = Pipe::default();
    block_on(async {
        let store = Store::open(pipe.clone(), StoreOptions::default()).await.unwrap();
        let scope = store.scope(dims()).await.unwrap();
        scope.transact(tx(1), prov("c1")).await.unwrap();
        assert!(!scope.commits_now(), "this storage yields: nothing commits at once");
        let answers = join_all((2..=11).map(|i| scope.commit_packed(packed_tx(i)))).await;
        let seqs: Vec<u64> = answers.into_iter().map(|r| r.unwrap().0).collect();
        assert_eq!(seqs, (2..=11).collect::<Vec<u64>>());
        assert_eq!(pipe.runs().last(), Some(&(10, 10)), "the ten went through the queue together");
        store.close();
        assert_eq!(code(&scope.commit_packed(packed_tx(12)).await.unwrap_err()), "CLOSED");
    });
    check_log(&pipe.mem, 11);
}
