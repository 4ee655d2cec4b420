//! Loading a scope from storage: the latest snapshot, then the log tail,
//! then the checkpoints. Every decoding failure names its key.

use crate::core::codec;
use crate::core::dims::Dims;
use crate::core::state::ScopeState;
use crate::core::tx::TxRecord;
use crate::error::{Error, Result};
use crate::storage::{keys, list_all, Storage};

use super::SnapStats;

pub(crate) fn encode_header(dims: &Dims) -> Vec<u8> {
    codec::encode_record(&dims.clone().into_pairs())
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
    let snaps = list_all(s, &keys::snapshot_prefix(key), None).await?;
    let mut snap = SnapStats::default();
    let mut st = match snaps.last() {
        Some(k) => {
            let bytes = s.get(k).await?.ok_or_else(|| Error::corrupt(k.as_str(), "the snapshot was listed but is missing"))?;
            let st = codec::decode_snapshot(k, &bytes)?;
            if st.dims() != dims {
                return Err(Error::corrupt(k.as_str(), "the snapshot belongs to another scope"));
            }
            if st.seq() != keys::seq_of(k)? {
                return Err(Error::corrupt(k.as_str(), "the snapshot's seq does not match its key"));
            }
            snap.base_seq = st.seq();
            snap.base_bytes = bytes.len();
            st
        }
        None => ScopeState::new(dims.clone()),
    };
    let tail = fetch_tail(s, key, st.seq()).await?;
    snap.tail_bytes = apply_tail(&mut st, tail)?;
    load_checkpoints(s, key, &mut st).await?;
    Ok((st, snap))
}

/// Log records after `seq`, with their keys and sizes, in order.
pub(crate) async fn fetch_tail<S: Storage>(s: &S, key: &str, seq: u64) -> Result<Vec<(String, usize, TxRecord)>> {
    let after = keys::log(key, seq);
    let ks = list_all(s, &keys::log_prefix(key), Some(&after)).await?;
    let vals = s.get_many(&ks).await?;
    let mut out = Vec::with_capacity(ks.len());
    for (k, v) in ks.into_iter().zip(vals) {
        let Some(v) = v else {
            // Listed then deleted: only cleanup deletes log keys, never live ones.
            return Err(Error::corrupt(k, "the log record was listed but is missing"));
        };
        let rec = codec::decode_tx(&k, &v)?;
        if keys::seq_of(&k)? != rec.seq {
            return Err(Error::corrupt(k, format!("the record holds seq {}", rec.seq)));
        }
        out.push((k, v.len(), rec));
    }
    Ok(out)
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

pub(crate) async fn load_checkpoints<S: Storage>(s: &S, key: &str, st: &mut ScopeState) -> Result<()> {
    let ks = list_all(s, &keys::checkpoint_prefix(key), None).await?;
    let vals = s.get_many(&ks).await?;
    let mut cps = Vec::with_capacity(ks.len());
    for (k, v) in ks.iter().zip(vals) {
        if let Some(v) = v {
            cps.push(codec::decode_checkpoint(k, &v)?);
        }
    }
    // Creation order among equal seqs follows creation time, then name.
    cps.sort_by(|a, b| a.seq.cmp(&b.seq).then(a.at.total_cmp(&b.at)).then_with(|| a.name.cmp(&b.name)));
    for cp in cps {
        if st.checkpoint(&cp.name).is_none() {
            st.add_checkpoint(cp)?;
        }
    }
    Ok(())
}
