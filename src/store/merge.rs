//! The log on storage without an atomic create (Workers KV, or a
//! `StorageAdapter` without `putIfAbsent`).
//!
//! With an atomic create, writers claim `s/<scope>/t/<seq>` and a loser
//! catches up (`load.rs`, `scope.rs`). Without one, two writers claiming the
//! same key would overwrite each other. So here every record gets a key no
//! other writer can produce:
//!
//! ```text
//! s/<scope>/t/<claim:012>.<writer>          one transaction, written once
//! s/<scope>/p/<n:012>.<c:012>.<last>        snapshot of the first n seqs, which
//!                                           cover the c log keys up to `<last>`
//!                                           (a log key suffix, or `-` for none)
//! ```
//!
//! `<writer>` is random per `Store::open`. `<claim>` is a Lamport clock: one
//! more than every claim (and every seq) the writer has seen, so a writer's
//! new record sorts after everything it knew. Byte order of the keys is
//! (claim, writer) order, and **that order is the log**: a loader lists every
//! log key and applies them in key order, numbering them 1, 2, 3 … (plus the
//! seq a fork started from). Any two readers that see the same keys build the
//! same state, whatever order the keys arrived in.
//!
//! What two isolates writing one scope at once get:
//! - no transaction is lost: every acknowledged record is under its own key
//!   and is part of every later load that lists it;
//! - seqs can be renumbered: a writer's `TxInfo.seq` is the record's place in
//!   the log as that writer saw it; a concurrent writer's records that sort
//!   earlier push it back when both are merged. Transaction times are made
//!   non-decreasing in merge order (a record never moves back in time before
//!   the one merged ahead of it);
//! - no read-modify-write safety: a transaction's ops are blind writes, applied
//!   in merge order, so the later record (by key) wins a conflicting attribute.
//!   Decisions taken inside a commit (a workflow step claim) saw only what the
//!   writer had loaded: the workflow engine refuses leases on eventually
//!   consistent storage (`run.rs`), and steps run at least once, not exactly
//!   once, when two isolates drive the same run at the same time;
//! - checkpoints name the seq their writer saw; a merge that renumbers
//!   earlier records moves what that seq covers.
//!
//! A snapshot stays usable only while no late record sorts at or before its
//! `<last>`: a loader checks that exactly `c` listed keys sort at or before
//! `<last>` and otherwise falls back to an older snapshot, or to the whole
//! log. On Workers KV the store also snapshots every [`MAX_TAIL_RECORDS`]
//! records, so loading a scope stays well inside KV's 1,000 operations per
//! invocation.

use crate::core::codec;
use crate::core::dims::Dims;
use crate::core::state::ScopeState;
use crate::core::tx::{OpRecord, Provenance, TxInfo, TxRecord, check_tx_size};
use crate::error::{Error, Result};
use crate::storage::{keys, list_all, Storage};

use super::load::{decode_header, encode_header, load_checkpoints};
use super::{ScopeCell, SnapStats, Store};

/// A snapshot is written at the latest once the tail holds this many records.
pub(crate) const MAX_TAIL_RECORDS: usize = 250;

const SEQ_WIDTH: usize = 12;

/// Which log keys a loaded scope holds.
#[derive(Debug, Clone, Default)]
pub(crate) struct MergeLog {
    /// Seq of the base minus the log keys it covers (a fork's starting seq).
    pub(crate) offset: u64,
    /// The last log key the base snapshot covers, and how many keys it covers.
    pub(crate) base_key: Option<String>,
    pub(crate) base_count: usize,
    /// The snapshot the state was loaded from (deleted when superseded,
    /// unless it is a fork's starting point).
    pub(crate) base_snapshot: Option<String>,
    pub(crate) keep_base_snapshot: bool,
    /// Log keys applied after the base, in order.
    pub(crate) tail: Vec<String>,
    /// The largest claim seen.
    pub(crate) max_claim: u64,
}

/// The claim of a log key (`…/t/<claim>` or `…/t/<claim>.<writer>`).
fn claim_of(prefix: &str, key: &str) -> Option<u64> {
    let rest = key.strip_prefix(prefix)?;
    let (digits, tail) = rest.split_at_checked(SEQ_WIDTH)?;
    if !(tail.is_empty() || tail.starts_with('.')) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

pub(crate) fn log_key(scope: &str, claim: u64, writer: &str) -> String {
    format!("{}{claim:0SEQ_WIDTH$}.{writer}", keys::log_prefix(scope))
}

/// The key of a snapshot of the first `n` seqs, covering the `c` log keys up
/// to `last`.
pub(crate) fn snapshot_key(scope: &str, n: u64, c: usize, last: Option<&str>) -> String {
    let lp = keys::log_prefix(scope);
    let last = last.and_then(|k| k.strip_prefix(&lp)).unwrap_or("-");
    format!("{}{n:0SEQ_WIDTH$}.{c:0SEQ_WIDTH$}.{last}", keys::snapshot_prefix(scope))
}

/// (n, c, last log key) of a snapshot key; a plain `p/<n>` key (written by the
/// atomic path) covers the log keys up to `t/<n>`.
fn parse_snapshot(scope: &str, key: &str) -> Option<(u64, usize, Option<String>)> {
    let rest = key.strip_prefix(&keys::snapshot_prefix(scope))?;
    let mut parts = rest.splitn(3, '.');
    let n: u64 = parts.next().filter(|p| p.len() == SEQ_WIDTH)?.parse().ok()?;
    match (parts.next(), parts.next()) {
        (None, _) => Some((n, n as usize, Some(keys::log(scope, n)))),
        (Some(c), Some(last)) if c.len() == SEQ_WIDTH => {
            let c: usize = c.parse().ok()?;
            let last = (last != "-").then(|| format!("{}{last}", keys::log_prefix(scope)));
            Some((n, c, last))
        }
        _ => None,
    }
}

/// Whether a snapshot covering `c` keys up to `last` agrees with the listed log.
fn covers(logs: &[String], c: usize, last: Option<&str>) -> bool {
    match last {
        None => c == 0,
        Some(k) => logs.partition_point(|x| x.as_str() <= k) == c && logs.binary_search_by(|x| x.as_str().cmp(k)).is_ok(),
    }
}

/// Applies a record at the next place of the merged log: renumbered, and its
/// time raised to the previous record's if it is earlier.
fn apply_merged(st: &mut ScopeState, key: &str, mut rec: TxRecord) -> Result<()> {
    rec.seq = st.seq() + 1;
    if let Some(last) = st.last_at() {
        rec.at = rec.at.max(last);
    }
    st.apply(&rec).map_err(|e| Error::corrupt(key, e))
}

/// Reads and applies `ks` in order. Stops before the first key that was
/// listed but cannot be read yet (eventual consistency): the state is then a
/// prefix of the merged log and a later refresh reads on. Returns the keys
/// applied and their bytes.
async fn apply_keys<S: Storage>(s: &S, st: &mut ScopeState, ks: &[String]) -> Result<(usize, usize)> {
    let vals = s.get_many(ks).await?;
    let (mut n, mut bytes) = (0, 0);
    for (k, v) in ks.iter().zip(vals) {
        let Some(v) = v else { break };
        let rec = codec::decode_tx(k, &v)?;
        apply_merged(st, k, rec)?;
        n += 1;
        bytes += v.len();
    }
    Ok((n, bytes))
}

/// Loads a scope: the newest snapshot that agrees with the listed log, then
/// every log key after it, then the checkpoints.
pub(crate) async fn load<S: Storage>(s: &S, dims: &Dims, key: &str) -> Result<(ScopeState, SnapStats, MergeLog)> {
    let header_key = keys::scope_header(key);
    if let Some(bytes) = s.get(&header_key).await? {
        if decode_header(&header_key, &bytes)? != *dims {
            return Err(Error::corrupt(header_key, "the stored scope has other dimensions (digest collision)"));
        }
    }
    let lp = keys::log_prefix(key);
    let logs = list_all(s, &lp, None).await?;
    let mut max_claim = 0;
    for k in &logs {
        let c = claim_of(&lp, k).ok_or_else(|| Error::corrupt(k.as_str(), "the log key does not end in a 12-digit claim"))?;
        max_claim = max_claim.max(c);
    }
    let snaps = list_all(s, &keys::snapshot_prefix(key), None).await?;
    let mut base: Option<(ScopeState, SnapStats, MergeLog)> = None;
    for sk in snaps.iter().rev() {
        let Some((n, c, last)) = parse_snapshot(key, sk) else { continue };
        if !covers(&logs, c, last.as_deref()) || (n as usize) < c {
            continue; // a late record sorts inside it: not this one
        }
        let Some(bytes) = s.get(sk).await? else { continue }; // superseded meanwhile
        let st = codec::decode_snapshot(sk, &bytes)?;
        if st.dims() != dims {
            return Err(Error::corrupt(sk.as_str(), "the snapshot belongs to another scope"));
        }
        if st.seq() != n {
            return Err(Error::corrupt(sk.as_str(), format!("the snapshot holds seq {}, its key says {n}", st.seq())));
        }
        let log = MergeLog {
            offset: n - c as u64,
            base_key: last,
            base_count: c,
            base_snapshot: Some(sk.clone()),
            keep_base_snapshot: c == 0,
            tail: Vec::new(),
            max_claim,
        };
        base = Some((st, SnapStats { base_seq: n, base_bytes: bytes.len(), tail_bytes: 0 }, log));
        break;
    }
    let (mut st, mut snap, mut log) =
        base.unwrap_or_else(|| (ScopeState::new(dims.clone()), SnapStats::default(), MergeLog { max_claim, ..MergeLog::default() }));
    max_claim = max_claim.max(st.seq());
    log.max_claim = max_claim;
    let tail = &logs[log.base_count..];
    let (n, bytes) = apply_keys(s, &mut st, tail).await?;
    log.tail = tail[..n].to_vec();
    snap.tail_bytes = bytes;
    load_checkpoints(s, key, &mut st).await?;
    Ok((st, snap, log))
}

/// Reads the records other writers added. When one of them sorts before
/// records already applied, the scope is loaded again (merge order is key
/// order). Caller holds the write lock. Returns the bytes read.
pub(crate) async fn catch_up<S: Storage>(s: &S, cell: &ScopeCell) -> Result<usize> {
    let lp = keys::log_prefix(&cell.key);
    let logs = list_all(s, &lp, None).await?;
    let consistent = {
        let m = cell.merge.borrow();
        covers(&logs, m.base_count, m.base_key.as_deref())
            && logs.len() >= m.base_count + m.tail.len()
            && logs[m.base_count..m.base_count + m.tail.len()] == m.tail[..]
    };
    if !consistent {
        let dims = cell.state.borrow().dims().clone();
        let (st, snap, log) = load(s, &dims, &cell.key).await?;
        *cell.state.borrow_mut() = st;
        cell.snap.set(snap);
        *cell.merge.borrow_mut() = log;
        return Ok(snap.tail_bytes);
    }
    let from = {
        let m = cell.merge.borrow();
        m.base_count + m.tail.len()
    };
    let fresh = &logs[from..];
    let mut max_claim = cell.merge.borrow().max_claim;
    for k in fresh {
        let c = claim_of(&lp, k).ok_or_else(|| Error::corrupt(k.as_str(), "the log key does not end in a 12-digit claim"))?;
        max_claim = max_claim.max(c);
    }
    cell.merge.borrow_mut().max_claim = max_claim;
    if fresh.is_empty() {
        return Ok(0);
    }
    // Applied to a copy: a corrupt record leaves the loaded state unchanged.
    let mut st = cell.state.borrow().clone();
    let (n, bytes) = apply_keys(s, &mut st, fresh).await?;
    *cell.state.borrow_mut() = st;
    cell.merge.borrow_mut().tail.extend_from_slice(&fresh[..n]);
    cell.tail_grew(bytes);
    Ok(bytes)
}

/// What `Scope::commit` builds a transaction with.
pub(crate) type Build<'a> = dyn Fn(&ScopeState, f64) -> Result<Option<(Provenance, Vec<OpRecord>)>> + 'a;

/// Commits one transaction under a fresh, writer-unique key. Never fails for
/// lack of a seq: there is nothing to claim. Caller holds the write lock.
pub(crate) async fn commit<S: Storage>(
    store: &Store<S>,
    cell: &ScopeCell,
    build: &Build<'_>,
) -> Result<Option<TxInfo>> {
    let storage = &store.inner.storage;
    let now = store.now();
    if !now.is_finite() {
        return Err(Error::invalid("the clock returned a non-finite time"));
    }
    let (rec, claim) = {
        let st = cell.state.borrow();
        let at = st.last_at().map_or(now, |last| now.max(last));
        let Some((prov, ops)) = build(&st, at)? else { return Ok(None) };
        let rec = TxRecord { seq: st.seq() + 1, at, cause: prov.cause, actor: prov.actor, note: prov.note, ops };
        let claim = cell.merge.borrow().max_claim.max(st.seq()) + 1;
        (rec, claim)
    };
    let bytes = codec::encode_tx(&rec);
    check_tx_size(bytes.len())?;
    let key = log_key(&cell.key, claim, &store.inner.writer);
    // Never reuse a claim, even when the write fails: a write whose answer
    // was lost may still have landed.
    cell.merge.borrow_mut().max_claim = claim;
    if rec.seq == 1 {
        write_header(storage, cell).await?;
    }
    let len = bytes.len();
    storage.put(&key, bytes).await?;
    cell.state.borrow_mut().apply(&rec)?;
    cell.merge.borrow_mut().tail.push(key);
    cell.tail_grew(len);
    maybe_snapshot(store, cell).await;
    Ok(Some(rec.info()))
}

/// Writes the scope header unless another writer already did: every writer
/// of a new scope writes the same bytes, and Workers KV refuses a second
/// write to one key within a second.
async fn write_header<S: Storage>(storage: &S, cell: &ScopeCell) -> Result<()> {
    let key = keys::scope_header(&cell.key);
    if storage.get(&key).await?.is_some() {
        return Ok(());
    }
    let header = encode_header(cell.state.borrow().dims());
    match storage.put(&key, header).await {
        Ok(()) => Ok(()),
        Err(e) => match storage.get(&key).await? {
            Some(_) => Ok(()),
            None => Err(e),
        },
    }
}

/// Writes a snapshot when the tail has grown enough (bytes, as on the atomic
/// path, or [`MAX_TAIL_RECORDS`] records). A failed snapshot is not an error.
async fn maybe_snapshot<S: Storage>(store: &Store<S>, cell: &ScopeCell) {
    let opts = &store.inner.opts;
    let snap = cell.snap.get();
    let threshold = (snap.base_bytes as f64 * opts.snapshot_factor).max(opts.snapshot_min_bytes as f64);
    let (count, last, old, keep) = {
        let m = cell.merge.borrow();
        (m.base_count + m.tail.len(), m.tail.last().cloned(), m.base_snapshot.clone(), m.keep_base_snapshot)
    };
    let records = cell.merge.borrow().tail.len();
    if last.is_none() || ((snap.tail_bytes as f64) < threshold && records < MAX_TAIL_RECORDS) {
        return;
    }
    let (seq, bytes) = {
        let st = cell.state.borrow();
        (st.seq(), codec::encode_snapshot(&st))
    };
    let key = snapshot_key(&cell.key, seq, count, last.as_deref());
    let storage = &store.inner.storage;
    let len = bytes.len();
    if storage.put(&key, bytes).await.is_err() {
        return;
    }
    if let Some(old) = old.filter(|o| !keep && *o != key) {
        let _ = storage.delete(&old).await;
    }
    {
        let mut m = cell.merge.borrow_mut();
        m.base_key = last;
        m.base_count = count;
        m.base_snapshot = Some(key);
        m.keep_base_snapshot = false;
        m.offset = seq - count as u64;
        m.tail.clear();
    }
    cell.snap.set(SnapStats { base_seq: seq, base_bytes: len, tail_bytes: 0 });
}

/// Records that a fork wrote `key`, a snapshot of `seq` seqs covering no log key.
pub(crate) fn set_fork_base(cell: &ScopeCell, seq: u64, key: String) {
    *cell.merge.borrow_mut() = MergeLog {
        offset: seq,
        base_key: None,
        base_count: 0,
        base_snapshot: Some(key),
        keep_base_snapshot: true,
        tail: Vec::new(),
        max_claim: seq,
    };
}

/// Refuses an explicit lease (`leaseMs` on `run` or `step`) on storage where
/// a step claim cannot be exclusive: on eventually consistent storage two
/// isolates can both see a step free and both claim it.
pub(crate) fn check_lease(caps: crate::storage::Capabilities, what: &str) -> Result<()> {
    if caps.consistency == crate::storage::Consistency::Eventual {
        return Err(Error::invalid(format!(
            "{what}: leaseMs asks for an exclusive step claim, which eventually consistent storage (Workers KV) \
             cannot give: two isolates may both claim the step. Use durableObjectStorage(this.ctx.storage) for \
             leases and exactly-once steps, or omit leaseMs to run steps at least once on KV"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
