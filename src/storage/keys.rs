//! The key layout of stored format version 1.
//!
//! ```text
//! wm/meta                      store metadata (format version, creation time)
//! sc/<scope>                   scope header: its dimensions (one per scope with a transaction)
//! s/<scope>/t/<seq>            log record of transaction <seq>, written once, never rewritten
//! s/<scope>/p/<seq>            snapshot of the whole scope state as of <seq>
//! s/<scope>/c/<name>           checkpoint, created atomically (names are unique)
//! s/<scope>/g                  genesis: who founded the scope's history — its first
//!                              writer ("log") or a fork (naming its base snapshot);
//!                              created atomically, so a fork and a first
//!                              transaction can never both succeed
//! s/<scope>/b/<seq>.<holder>   a fork's base snapshot (trusted only when genesis names it)
//! r/...                        workflow run registry (see `store::registry`)
//! ```
//!
//! On storage without an atomic create (Workers KV) the log and snapshots
//! use writer-unique keys instead — `s/<scope>/t/<claim>.<writer>`,
//! `s/<scope>/p/<n>.<c>.<last>` — merged on read (`store::merge`), and the
//! run registry is a set of immutable events `r/e/<run>/…` with summaries in
//! key metadata (`store::registry_events`). Every key stays below 480 bytes
//! (Workers KV allows 512).
//!
//! `<scope>` is the 32-hex-digit digest of the scope's canonical dimensions,
//! `<seq>` is zero-padded to 12 digits so that byte order is numeric order,
//! and `<name>` is hex-encoded so that any string is a safe key segment.
//! No segment contains `/`, so one scope's prefix never covers another's.

use crate::error::{Error, Result};

pub const META: &str = "wm/meta";
pub const SCOPES: &str = "sc/";

const SEQ_WIDTH: usize = 12;
/// Checkpoint names longer than this are refused (keys stay under platform limits).
pub const MAX_NAME_BYTES: usize = 200;

pub fn scope_header(scope: &str) -> String {
    format!("{SCOPES}{scope}")
}

pub fn log_prefix(scope: &str) -> String {
    format!("s/{scope}/t/")
}

pub fn log(scope: &str, seq: u64) -> String {
    let mut key = String::new();
    log_into(&mut key, scope, seq);
    key
}

/// [`log`] written into `key` (cleared first), whose buffer a committer
/// reuses from one transaction to the next.
pub fn log_into(key: &mut String, scope: &str, seq: u64) {
    let mut buf = [0u8; 20];
    let digits = crate::core::wire::decimal(seq, &mut buf);
    key.clear();
    key.reserve(scope.len() + 5 + SEQ_WIDTH.max(digits.len()));
    key.push_str("s/");
    key.push_str(scope);
    key.push_str("/t/");
    key.push_str(&"00000000000000000000"[..SEQ_WIDTH.saturating_sub(digits.len())]);
    key.push_str(digits);
}

pub fn snapshot_prefix(scope: &str) -> String {
    format!("s/{scope}/p/")
}

pub fn snapshot(scope: &str, seq: u64) -> String {
    format!("s/{scope}/p/{seq:0SEQ_WIDTH$}")
}

pub fn genesis(scope: &str) -> String {
    format!("s/{scope}/g")
}

/// A fork's base snapshot; `holder` makes concurrent forks write different keys.
pub fn fork_base(scope: &str, seq: u64, holder: &str) -> String {
    format!("s/{scope}/b/{seq:0SEQ_WIDTH$}.{holder}")
}

/// The seq of a fork base key.
pub fn fork_base_seq(key: &str) -> Result<u64> {
    key.rsplit('/')
        .next()
        .and_then(|s| s.split('.').next())
        .filter(|s| s.len() == SEQ_WIDTH)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::corrupt(key, "the key is not a fork base key"))
}

pub fn checkpoint_prefix(scope: &str) -> String {
    format!("s/{scope}/c/")
}

pub fn checkpoint(scope: &str, name: &str) -> Result<String> {
    if name.len() > MAX_NAME_BYTES {
        return Err(Error::invalid(format!("checkpoint names are at most {MAX_NAME_BYTES} bytes")));
    }
    Ok(format!("s/{scope}/c/{}", hex(name.as_bytes())))
}

/// Everything stored for one scope (log, snapshots, checkpoints).
pub fn scope_prefix(scope: &str) -> String {
    format!("s/{scope}/")
}

/// The seq at the end of a log or snapshot key.
pub fn seq_of(key: &str) -> Result<u64> {
    key.rsplit('/')
        .next()
        .filter(|s| s.len() == SEQ_WIDTH)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::corrupt(key, "the key does not end in a 12-digit seq"))
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_keys_sort_numerically() {
        let a = log("x", 9);
        let b = log("x", 10);
        assert!(a < b);
        assert_eq!(seq_of(&b).unwrap(), 10);
        assert!(seq_of("s/x/t/abc").is_err());
        assert_eq!(log("x", 0), "s/x/t/000000000000");
        assert_eq!(log("x", 1_234_567), "s/x/t/000001234567");
        assert_eq!(log("x", u64::MAX), format!("s/x/t/{}", u64::MAX));
        for seq in [1, 99, 100, u64::from(u32::MAX), 999_999_999_999] {
            assert_eq!(seq_of(&log("s", seq)).unwrap(), seq);
        }
    }

    #[test]
    fn checkpoint_names_are_safe_segments() {
        let k = checkpoint("x", "a/b\u{0}").unwrap();
        assert_eq!(k, "s/x/c/612f6200");
        assert!(checkpoint("x", &"n".repeat(201)).is_err());
    }
}
