//! Loading a scope from storage: the latest snapshot, then the log tail,
//! then the checkpoints. Every decoding failure names its key.

use crate::core::codec;
use crate::core::dims::Dims;
use crate::core::state::{FactKey, Hist, ScopeState};
use crate::core::tx::TxRecord;
use crate::core::wire::{put_str, Reader, Wire, WireError};
use crate::error::{Error, Result};
use crate::storage::{keys, list_all, Storage};

use super::SnapStats;

pub(crate) fn encode_header(dims: &Dims) -> Vec<u8> {
    codec::encode_record(&dims.clone().into_pairs())
}

/// Who founded a scope's history (`s/<scope>/g`, created atomically).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) enum Genesis {
    /// Its first transaction.
    Log,
    /// A fork, whose base snapshot is at this key.
    Fork { base: String },
}

impl Wire for Genesis {
    fn put(&self, w: &mut Vec<u8>) {
        match self {
            Genesis::Log => w.push(0),
            Genesis::Fork { base } => {
                w.push(1);
                put_str(w, base);
            }
        }
    }
    fn take(r: &mut Reader<'_>) -> std::result::Result<Self, WireError> {
        match r.u32()? {
            0 => Ok(Genesis::Log),
            1 => Ok(Genesis::Fork { base: r.string()? }),
            _ => Err("the genesis record has an unknown kind"),
        }
    }
}

pub(crate) async fn read_genesis<S: Storage>(s: &S, scope: &str) -> Result<Option<Genesis>> {
    let key = keys::genesis(scope);
    match s.get(&key).await? {
        Some(bytes) => Ok(Some(codec::decode_record(&key, &bytes)?)),
        None => Ok(None),
    }
}

pub(crate) fn decode_header(key: &str, bytes: &[u8]) -> Result<Dims> {
    let pairs: Vec<(String, String)> = codec::decode_record(key, bytes)?;
    Ok(Dims::new(pairs))
}

pub(crate) async fn load_scope<S: Storage>(s: &S, dims: &Dims, key: &str) -> Result<(ScopeState, SnapStats)> {
    let header_key = keys::scope_header(key);
    if let Some(bytes) = s.get(&header_key).await? {
        if decode_header(&header_key, &bytes)? != *dims {
            return Err(Error::corrupt(header_key, "the stored scope has other dimensions (digest collision)"));
        }
    }
    let mut snaps = list_all(s, &keys::snapshot_prefix(key), None).await?;
    // A fork's base counts only when the genesis record names it (a fork
    // that lost the genesis race leaves nothing that loads).
    if let Some(Genesis::Fork { base }) = read_genesis(s, key).await? {
        let base_seq = keys::fork_base_seq(&base)?;
        let newest = match snaps.last() {
            Some(k) => keys::seq_of(k)?,
            None => 0,
        };
        if snaps.is_empty() || base_seq > newest {
            snaps.push(base);
        }
    }
    let mut snap = SnapStats::default();
    // The snapshot's facts wait outside the state until the tail's writes
    // join them: the fact map is built once (`codec::Replay::with_base`).
    let (mut st, base) = match snaps.last() {
        Some(k) => {
            let bytes = s.get(k).await?.ok_or_else(|| Error::corrupt(k.as_str(), "the snapshot was listed but is missing"))?;
            let (st, base) = codec::decode_snapshot_base(k, &bytes)?;
            if st.dims() != dims {
                return Err(Error::corrupt(k.as_str(), "the snapshot belongs to another scope"));
            }
            // A byte scan, not `str::contains`: a `&str` pattern compiles the
            // two-way substring searcher (~1.5 KB of wasm).
            let fork_base = k.as_bytes().windows(3).any(|w| w == b"/b/");
            let key_seq = if fork_base { keys::fork_base_seq(k)? } else { keys::seq_of(k)? };
            if st.seq() != key_seq {
                return Err(Error::corrupt(k.as_str(), "the snapshot's seq does not match its key"));
            }
            snap.base_seq = st.seq();
            snap.base_bytes = bytes.len();
            (st, base)
        }
        None => (ScopeState::new(dims.clone()), Vec::new()),
    };
    let tail = fetch_tail_bytes(s, key, st.seq()).await?;
    let first_tail_key = tail.first().map(|(k, _)| k.clone());
    snap.tail_bytes = replay_tail(&mut st, base, &tail).map_err(|e| match e {
        // The first record after a snapshot may be fine and the snapshot wrong:
        // name both keys.
        Error::Corrupt { key: k, reason } if snaps.last().is_some() && Some(&k) == first_tail_key.as_ref() => {
            let snap_key = snaps.last().map(String::as_str).unwrap_or_default();
            Error::Corrupt { key: k, reason: format!("{reason} (it follows the snapshot at key {snap_key:?})") }
        }
        other => other,
    })?;
    load_checkpoints(s, key, &mut st).await?;
    Ok((st, snap))
}

/// The stored log records after `seq`, with their keys, in order.
async fn fetch_tail_bytes<S: Storage>(s: &S, key: &str, seq: u64) -> Result<Vec<(String, Vec<u8>)>> {
    let after = keys::log(key, seq);
    let ks = list_all(s, &keys::log_prefix(key), Some(&after)).await?;
    let vals = s.get_many(&ks).await?;
    ks.into_iter()
        .zip(vals)
        .map(|(k, v)| match v {
            Some(v) => Ok((k, v)),
            // Listed then deleted: only cleanup deletes log keys, never live ones.
            None => Err(Error::corrupt(k, "the log record was listed but is missing")),
        })
        .collect()
}

/// Log records after `seq`, decoded, with their keys and sizes, in order.
pub(crate) async fn fetch_tail<S: Storage>(s: &S, key: &str, seq: u64) -> Result<Vec<(String, usize, TxRecord)>> {
    let mut out = Vec::new();
    for (k, v) in fetch_tail_bytes(s, key, seq).await? {
        let rec = codec::decode_tx(&k, &v)?;
        if keys::seq_of(&k)? != rec.seq {
            return Err(Error::corrupt(k, format!("the record holds seq {}", rec.seq)));
        }
        out.push((k, v.len(), rec));
    }
    Ok(out)
}

/// Replays fetched records into a state being loaded (in bulk, see
/// `codec::Replay`) whose fact map is empty and whose facts are `base`
/// (sorted); returns the records' total size.
fn replay_tail(st: &mut ScopeState, base: Vec<(FactKey, Hist)>, tail: &[(String, Vec<u8>)]) -> Result<usize> {
    let mut replay = codec::Replay::with_base(st, base);
    let mut bytes = 0;
    for (k, v) in tail {
        replay.record(k, keys::seq_of(k)?, v)?;
        bytes += v.len();
    }
    replay.finish();
    Ok(bytes)
}

/// Applies fetched records in order; returns their total size.
pub(crate) fn apply_tail(st: &mut ScopeState, tail: Vec<(String, usize, TxRecord)>) -> Result<usize> {
    let mut bytes = 0;
    for (k, len, rec) in tail {
        if rec.seq <= st.seq() {
            continue; // already applied (a concurrent catch-up got there first)
        }
        if rec.seq != st.seq() + 1 {
            return Err(Error::corrupt(k, format!("the log has a gap: expected seq {}", st.seq() + 1)));
        }
        st.apply(&rec).map_err(|e| Error::corrupt(k.as_str(), e))?;
        bytes += len;
    }
    Ok(bytes)
}

/// Reads every checkpoint of the scope and replaces the loaded list with
/// them, in stored creation order (the same order after a reopen, a refresh
/// or in the writer that created them).
pub(crate) async fn load_checkpoints<S: Storage>(s: &S, key: &str, st: &mut ScopeState) -> Result<()> {
    let ks = list_all(s, &keys::checkpoint_prefix(key), None).await?;
    let vals = s.get_many(&ks).await?;
    let mut cps = Vec::with_capacity(ks.len());
    for (k, v) in ks.iter().zip(vals) {
        if let Some(v) = v {
            let (cp, ord) = codec::decode_checkpoint(k, &v)?;
            // The key is derived from the name: a record under another name's
            // key would otherwise show up twice or shadow a real checkpoint.
            if keys::checkpoint(key, &cp.name).ok().as_deref() != Some(k.as_str()) {
                return Err(Error::corrupt(k.as_str(), format!("the checkpoint record is named {:?}, not after its key", cp.name)));
            }
            if !cp.at.is_finite() {
                return Err(Error::corrupt(k.as_str(), "the checkpoint time is not finite"));
            }
            cps.push((cp, ord));
        }
    }
    // Concurrent writers may share an ordinal: then creation time, then name.
    crate::core::sort::sort_by(&mut cps, |(a, x), (b, y)| {
        a.seq.cmp(&b.seq).then(x.cmp(y)).then(a.at.total_cmp(&b.at)).then_with(|| a.name.cmp(&b.name))
    });
    st.checkpoints = cps.into_iter().map(|(cp, _)| cp).collect();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written encoding is postcard's (which wrote it before).
    #[test]
    fn genesis_is_postcard() {
        for g in [Genesis::Log, Genesis::Fork { base: "s/x/snap".into() }] {
            let theirs = postcard::to_extend(&g, vec![codec::FORMAT_VERSION, b'X']).unwrap();
            assert_eq!(codec::encode_record(&g), theirs);
            assert_eq!(codec::decode_record::<Genesis>("k", &theirs).unwrap(), g);
        }
    }
}
