//! The storage conformance suite. Every adapter runs it (natively, in
//! Chromium, in workerd): `run_all(|| async { MyStorage::fresh() }).await`.
//! Each check gets a fresh, empty storage from `make` and panics with a
//! message naming the broken rule.

use std::future::Future;

use super::{list_all, BatchOp, Storage};

/// Runs every check against fresh storages made by `make`.
pub async fn run_all<S, F, Fut>(make: F)
where
    S: Storage + Clone,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    get_put_delete(&make().await).await;
    binary_and_empty_values(&make().await).await;
    list_order_prefix_after_limit(&make().await).await;
    list_pages_through_many_keys(&make().await).await;
    batch_applies_in_order(&make().await).await;
    put_if_absent_creates_once(&make().await).await;
    create_all_creates_a_prefix(&make().await).await;
    get_many_matches_get(&make().await).await;
    unicode_keys(&make().await).await;
    store_level_round_trip(make().await).await;
}

async fn get_put_delete<S: Storage>(s: &S) {
    assert_eq!(s.get("a").await.unwrap(), None, "get of a missing key is None");
    s.put("a", b"1".to_vec()).await.unwrap();
    assert_eq!(s.get("a").await.unwrap().as_deref(), Some(&b"1"[..]), "get returns what put wrote");
    s.put("a", b"2".to_vec()).await.unwrap();
    assert_eq!(s.get("a").await.unwrap().as_deref(), Some(&b"2"[..]), "put replaces");
    s.delete("a").await.unwrap();
    assert_eq!(s.get("a").await.unwrap(), None, "delete removes");
    s.delete("a").await.unwrap();
}

async fn binary_and_empty_values<S: Storage>(s: &S) {
    let bytes: Vec<u8> = (0..=255u8).collect();
    s.put("bin", bytes.clone()).await.unwrap();
    assert_eq!(s.get("bin").await.unwrap(), Some(bytes), "every byte value round-trips");
    s.put("empty", Vec::new()).await.unwrap();
    assert_eq!(s.get("empty").await.unwrap(), Some(Vec::new()), "an empty value is a value, not a missing key");
    let big = vec![7u8; 3 * 1024 * 1024 + 5];
    s.put("big", big.clone()).await.unwrap();
    assert_eq!(s.get("big").await.unwrap().map(|v| v.len()), Some(big.len()), "a 3 MiB value round-trips");
}

async fn list_order_prefix_after_limit<S: Storage>(s: &S) {
    for k in ["p/b", "p/a", "p/c", "q/a", "p", "o/z", "p/a/x"] {
        s.put(k, vec![1]).await.unwrap();
    }
    let all = s.list("p/", None, None).await.unwrap();
    assert_eq!(all, ["p/a", "p/a/x", "p/b", "p/c"], "list returns the prefix's keys in byte order");
    let after = s.list("p/", Some("p/a/x"), None).await.unwrap();
    assert_eq!(after, ["p/b", "p/c"], "after is exclusive");
    let limited = s.list("p/", None, Some(2)).await.unwrap();
    assert_eq!(limited, ["p/a", "p/a/x"], "limit caps the page");
    let none = s.list("zz/", None, None).await.unwrap();
    assert!(none.is_empty(), "an unknown prefix lists nothing");
    let every = s.list("", None, None).await.unwrap();
    assert_eq!(every.len(), 7, "the empty prefix lists everything");
}

async fn list_pages_through_many_keys<S: Storage>(s: &S) {
    let ops: Vec<BatchOp> = (0..2500).map(|i| BatchOp::Put(format!("k/{i:05}"), vec![0])).collect();
    s.batch(ops).await.unwrap();
    let keys = list_all(s, "k/", None).await.unwrap();
    assert_eq!(keys.len(), 2500, "paging reaches every key");
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "pages stay in ascending order");
}

async fn batch_applies_in_order<S: Storage>(s: &S) {
    s.put("x", vec![1]).await.unwrap();
    s.batch(vec![
        BatchOp::Put("y".into(), vec![2]),
        BatchOp::Delete("x".into()),
        BatchOp::Put("y".into(), vec![3]),
    ])
    .await
    .unwrap();
    assert_eq!(s.get("x").await.unwrap(), None, "batch deletes");
    assert_eq!(s.get("y").await.unwrap(), Some(vec![3]), "batch applies ops in order");
}

async fn put_if_absent_creates_once<S: Storage>(s: &S) {
    assert!(s.put_if_absent("once", vec![1]).await.unwrap(), "the first create writes");
    assert!(!s.put_if_absent("once", vec![2]).await.unwrap(), "the second create reports the key exists");
    assert_eq!(s.get("once").await.unwrap(), Some(vec![1]), "a refused create changes nothing");
}

async fn create_all_creates_a_prefix<S: Storage>(s: &S) {
    let e = |k: &str, v: u8| (k.to_string(), vec![v]);
    match s.create_all(vec![e("c/1", 1), e("c/2", 2)]).await.unwrap() {
        None => {
            assert!(s.list("c/", None, None).await.unwrap().is_empty(), "an unsupported create_all writes nothing");
            return;
        }
        Some(n) => assert_eq!(n, 2, "create_all creates every absent key"),
    }
    s.put("c/4", vec![40]).await.unwrap();
    let n = s.create_all(vec![e("c/3", 3), e("c/4", 4), e("c/5", 5)]).await.unwrap();
    assert_eq!(n, Some(1), "create_all stops at the first key that exists");
    assert_eq!(s.get("c/3").await.unwrap(), Some(vec![3]), "create_all writes the keys before it");
    assert_eq!(s.get("c/4").await.unwrap(), Some(vec![40]), "create_all never overwrites");
    assert_eq!(s.get("c/5").await.unwrap(), None, "create_all writes nothing after the first existing key");
    // Longer runs of ascending keys (a scope's log records), with another
    // key inside their range.
    s.put("r/2x", vec![0]).await.unwrap();
    s.put("r/3", vec![30]).await.unwrap();
    let run = vec![e("r/1", 1), e("r/2", 2), e("r/3", 3), e("r/4", 4), e("r/5", 5)];
    assert_eq!(s.create_all(run).await.unwrap(), Some(2), "create_all stops at the first existing key of a long run");
    assert_eq!(s.list("r/", None, None).await.unwrap(), ["r/1", "r/2", "r/2x", "r/3"], "and creates exactly the keys before it");
    assert_eq!(s.get("r/3").await.unwrap(), Some(vec![30]));
    let run = vec![e("r/6", 6), e("r/7", 7), e("r/8", 8), e("r/9", 9)];
    assert_eq!(s.create_all(run).await.unwrap(), Some(4), "a long run of absent keys is created whole");
    let n = s.create_all(vec![e("d", 1), e("d", 2)]).await.unwrap();
    assert_eq!(n, Some(1), "a key repeated within create_all exists by the time it repeats");
    assert_eq!(s.get("d").await.unwrap(), Some(vec![1]), "the first of a repeated key wins");
}

async fn get_many_matches_get<S: Storage>(s: &S) {
    s.put("m/1", vec![1]).await.unwrap();
    s.put("m/3", vec![3]).await.unwrap();
    let got = s.get_many(&["m/1".into(), "m/2".into(), "m/3".into()]).await.unwrap();
    assert_eq!(got, vec![Some(vec![1]), None, Some(vec![3])], "get_many keeps order and reports missing keys");
}

async fn unicode_keys<S: Storage>(s: &S) {
    for k in ["u/é", "u/🦀", "u/a b", "u/\u{7f}"] {
        s.put(k, k.as_bytes().to_vec()).await.unwrap();
        assert_eq!(s.get(k).await.unwrap().as_deref(), Some(k.as_bytes()), "key {k:?} round-trips");
    }
    let listed = s.list("u/", None, None).await.unwrap();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(listed, sorted, "unicode keys list in byte order");
}

/// A Waymark store on this adapter keeps what it acknowledged across a reopen.
async fn store_level_round_trip<S: Storage + Clone>(s: S) {
    use crate::core::value::Value;
    use crate::store::{Store, StoreOptions};
    use crate::{Dims, Op, Provenance};
    let clock = || 1_000.0;
    let dims = Dims::new([("project", "conformance")]);
    {
        let store = Store::open(s.clone(), StoreOptions::with_clock(clock)).await.unwrap();
        let scope = store.scope(dims.clone()).await.unwrap();
        for i in 0..40 {
            scope.transact(vec![Op::set("e", [("n", Value::from(i))])], Provenance::new(format!("t{i}"))).await.unwrap();
        }
        scope.checkpoint("cp").await.unwrap();
    }
    let store = Store::open(s, StoreOptions::with_clock(clock)).await.unwrap();
    let scope = store.scope(dims).await.unwrap();
    assert_eq!(scope.seq(), 40, "reopen sees every acknowledged transaction");
    assert_eq!(scope.value("e", "n"), Some(Value::from(39)), "reopen sees the latest value");
    assert_eq!(scope.history("e", "n").len(), 40, "reopen keeps history");
    assert_eq!(scope.checkpoints().len(), 1, "reopen keeps checkpoints");
}
