//! The run registry: a compact index of runs, kept beside the facts so that
//! listing, filtering, stats and cleanup never load a run's history.
//!
//! ```text
//! r/i/<run>                               RunSummary (status, times, step counts)
//! r/c/<newest-first created>/<run>        every run, newest first (empty value)
//! r/s/<status>/<newest-first created>/<run>   runs by status, newest first (empty value)
//! ```
//!
//! On eventually consistent storage (Workers KV) the registry uses the event
//! layout of `registry_events.rs` instead: no key is rewritten per step.
//!
//! `<run>` is a digest of (scope, workflow, id). The authoritative state is
//! in the facts; the summary is derived from it after every change, and
//! rewritten whenever a run is opened, so a crash between the two heals.

use serde::{Deserialize, Serialize};

use crate::core::wire::{put_f64, put_opt_str, put_str, put_u64, Reader, Wire, WireError};
use sha2::{Digest, Sha256};

use crate::core::codec;
use crate::core::dims::Dims;
use crate::core::workflow::{RunStatus, StepState};
use crate::error::Result;
use crate::storage::{keys, list_all, BatchOp, Storage};

use super::run::Run;
use super::Store;

pub(crate) const INFO_PREFIX: &str = "r/i/";
pub(crate) const CREATED_PREFIX: &str = "r/c/";

/// What the registry keeps of one run (`RunInfo` in TypeScript, plus step counts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub workflow: String,
    pub id: String,
    pub scope: Vec<(String, String)>,
    pub status: RunStatus,
    pub created_at: f64,
    pub updated_at: f64,
    pub error: Option<String>,
    /// Steps per state, in `StepState::ALL` order.
    pub steps: [u32; 5],
}

impl Wire for RunSummary {
    fn put(&self, w: &mut Vec<u8>) {
        put_str(w, &self.workflow);
        put_str(w, &self.id);
        self.scope.put(w);
        w.push(match self.status {
            RunStatus::Running => 0,
            RunStatus::Paused => 1,
            RunStatus::Completed => 2,
            RunStatus::Failed => 3,
        });
        put_f64(w, self.created_at);
        put_f64(w, self.updated_at);
        put_opt_str(w, self.error.as_deref());
        for n in self.steps {
            put_u64(w, n.into());
        }
    }
    fn take(r: &mut Reader<'_>) -> std::result::Result<Self, WireError> {
        Ok(RunSummary {
            workflow: r.string()?,
            id: r.string()?,
            scope: Wire::take(r)?,
            status: match r.u32()? {
                0 => RunStatus::Running,
                1 => RunStatus::Paused,
                2 => RunStatus::Completed,
                3 => RunStatus::Failed,
                _ => return Err("a run status is unknown"),
            },
            created_at: r.f64()?,
            updated_at: r.f64()?,
            error: r.option(Reader::string)?,
            steps: [r.u32()?, r.u32()?, r.u32()?, r.u32()?, r.u32()?],
        })
    }
}

impl RunSummary {
    pub fn scope_dims(&self) -> Dims {
        Dims::new(self.scope.iter().cloned())
    }

    pub fn steps_in(&self, s: StepState) -> u32 {
        self.steps[StepState::ALL.iter().position(|x| *x == s).unwrap_or(0)]
    }
}

/// The registry key segment of a run.
pub(crate) fn run_key(scope_key: &str, workflow: &str, id: &str) -> String {
    let mut h = Sha256::new();
    for part in [scope_key, workflow, id] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    keys::hex(&h.finalize()[..16])
}

/// Creation times as fixed-width hex that sorts newest first. The whole f64
/// counts, fractions of a millisecond included (clocks such as
/// `performance.now()` or the native one return them): non-negative floats
/// order like their bit patterns. Negative and NaN times sort as 0.
fn newest_first(created_at: f64) -> String {
    let t = if created_at > 0.0 { created_at.min(f64::MAX) } else { 0.0 };
    format!("{:016x}", u64::MAX - t.to_bits())
}

pub(crate) fn info_key(run: &str) -> String {
    format!("{INFO_PREFIX}{run}")
}

fn created_key(s: &RunSummary, run: &str) -> String {
    format!("{CREATED_PREFIX}{}/{run}", newest_first(s.created_at))
}

pub(crate) fn status_prefix(status: RunStatus) -> String {
    format!("r/s/{}/", status.as_str())
}

fn status_key(s: &RunSummary, run: &str) -> String {
    format!("{}{}/{run}", status_prefix(s.status), newest_first(s.created_at))
}

/// The run key at the end of an index key.
pub(crate) fn run_of(index_key: &str) -> &str {
    index_key.rsplit('/').next().unwrap_or("")
}

/// The writes that move the registry from `old` to `new`.
pub(crate) fn update_ops(run: &str, old: Option<&RunSummary>, new: &RunSummary) -> Vec<BatchOp> {
    let mut ops = vec![BatchOp::Put(info_key(run), codec::encode_record(new))];
    match old {
        Some(o) if o.status == new.status && o.created_at == new.created_at => {}
        Some(o) => {
            ops.push(BatchOp::Delete(status_key(o, run)));
            if o.created_at != new.created_at {
                ops.push(BatchOp::Delete(created_key(o, run)));
                ops.push(BatchOp::Put(created_key(new, run), Vec::new()));
            }
            ops.push(BatchOp::Put(status_key(new, run), Vec::new()));
        }
        None => {
            ops.push(BatchOp::Put(created_key(new, run), Vec::new()));
            ops.push(BatchOp::Put(status_key(new, run), Vec::new()));
        }
    }
    ops
}

/// The writes that remove a run from the registry.
pub(crate) fn remove_ops(run: &str, s: &RunSummary) -> Vec<BatchOp> {
    vec![BatchOp::Delete(status_key(s, run)), BatchOp::Delete(created_key(s, run)), BatchOp::Delete(info_key(run))]
}

pub(crate) fn decode_summary(key: &str, bytes: &[u8]) -> Result<RunSummary> {
    codec::decode_record(key, bytes)
}

/// Filters of `store.runs()`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunFilter {
    pub status: Option<RunStatus>,
    pub workflow: Option<String>,
    /// Only runs created at or after this time.
    pub created_after: Option<f64>,
    /// Only runs created before this time.
    pub created_before: Option<f64>,
    pub limit: Option<usize>,
    pub offset: usize,
}

impl RunFilter {
    /// Whether `s` passes the workflow and creation-time filters (`status`
    /// is not checked here: the indexed layout lists by status already).
    pub(crate) fn keeps(&self, s: &RunSummary) -> bool {
        self.workflow.as_ref().is_none_or(|w| *w == s.workflow)
            && self.created_after.is_none_or(|t| s.created_at >= t)
            && self.created_before.is_none_or(|t| s.created_at < t)
    }
}

/// `store.stats()`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Runs by status, in `RunStatus::ALL` order.
    pub runs: [u64; 4],
    /// Steps by state, in `StepState::ALL` order.
    pub steps: [u64; 5],
    pub scopes: u64,
    pub facts: u64,
}

impl Stats {
    pub fn runs_total(&self) -> u64 {
        self.runs.iter().sum()
    }

    pub fn runs_in(&self, s: RunStatus) -> u64 {
        self.runs[RunStatus::ALL.iter().position(|x| *x == s).unwrap_or(0)]
    }

    pub fn steps_in(&self, s: StepState) -> u64 {
        self.steps[StepState::ALL.iter().position(|x| *x == s).unwrap_or(0)]
    }
}

impl<S: Storage> Store<S> {
    /// Reads the summaries behind index keys, in order.
    async fn summaries(&self, index_keys: &[String]) -> Result<Vec<(String, RunSummary)>> {
        let info: Vec<String> = index_keys.iter().map(|k| info_key(run_of(k))).collect();
        let vals = self.storage().get_many(&info).await?;
        let mut out = Vec::with_capacity(info.len());
        for (k, v) in info.into_iter().zip(vals) {
            // An index key whose summary is gone belongs to a run being removed.
            if let Some(v) = v {
                let s = decode_summary(&k, &v)?;
                out.push((run_of(&k).to_string(), s));
            }
        }
        Ok(out)
    }

    /// Runs, newest `createdAt` first, filtered, paginated. Reads only the
    /// index pages it needs (no run history is loaded).
    pub async fn runs(&self, f: &RunFilter) -> Result<Vec<RunSummary>> {
        self.check_open()?;
        if super::registry_events::events_layout(self.storage().capabilities()) {
            return self.runs_events(f).await;
        }
        const PAGE: usize = 200;
        let prefix = f.status.map_or_else(|| CREATED_PREFIX.to_string(), status_prefix);
        let limit = f.limit.unwrap_or(usize::MAX);
        let (mut out, mut skipped) = (Vec::new(), 0usize);
        let mut after: Option<String> = None;
        // The first page asks for what an unfiltered listing needs (20 keys,
        // not 200, for `limit: 20`); later pages are full.
        let mut size = f.offset.saturating_add(limit).clamp(1, PAGE);
        while out.len() < limit {
            let page = self.storage().list(&prefix, after.as_deref(), Some(size)).await?;
            let Some(last) = page.last().cloned() else { break };
            for (_, s) in self.summaries(&page).await? {
                if !f.keeps(&s) {
                    continue;
                }
                if skipped < f.offset {
                    skipped += 1;
                } else if out.len() < limit {
                    out.push(s);
                }
            }
            if page.len() < size {
                break;
            }
            after = Some(last);
            size = PAGE;
        }
        Ok(out)
    }

    /// Failed runs, newest first; with `within_ms`, only those whose
    /// `updatedAt` is at most that old.
    pub async fn failed_runs(&self, within_ms: Option<f64>) -> Result<Vec<RunSummary>> {
        self.check_open()?;
        if super::registry_events::events_layout(self.storage().capabilities()) {
            return self.failed_runs_events(within_ms).await;
        }
        let now = self.now();
        let ks = list_all(self.storage(), &status_prefix(RunStatus::Failed), None).await?;
        Ok(self
            .summaries(&ks)
            .await?
            .into_iter()
            .map(|(_, s)| s)
            .filter(|s| within_ms.is_none_or(|w| s.updated_at >= now - w))
            .collect())
    }

    /// Counts of runs by status, steps by state, scopes with a transaction,
    /// and currently visible facts. Facts are counted over every scope, so
    /// this loads every scope: an admin call, not a hot path.
    pub async fn stats(&self) -> Result<Stats> {
        self.check_open()?;
        if super::registry_events::events_layout(self.storage().capabilities()) {
            return self.stats_events().await;
        }
        let mut stats = Stats::default();
        let ks = list_all(self.storage(), INFO_PREFIX, None).await?;
        let vals = self.storage().get_many(&ks).await?;
        for (k, v) in ks.iter().zip(vals) {
            let Some(v) = v else { continue };
            let s = decode_summary(k, &v)?;
            if let Some(i) = RunStatus::ALL.iter().position(|x| *x == s.status) {
                stats.runs[i] += 1;
            }
            for (i, n) in s.steps.iter().enumerate() {
                stats.steps[i] += u64::from(*n);
            }
        }
        self.count_scopes(&mut stats).await?;
        Ok(stats)
    }

    /// `stats.scopes` and `stats.facts`, counted over every scope (both layouts).
    pub(super) async fn count_scopes(&self, stats: &mut Stats) -> Result<()> {
        let dims = self.scope_dims().await?;
        stats.scopes = dims.len() as u64;
        let now = self.now();
        for d in dims {
            let scope = self.scope(d).await?;
            stats.facts += scope.with_state(|st| st.visible_facts(now)) as u64;
        }
        Ok(())
    }

    /// Removes completed and failed runs whose `updatedAt` is older than
    /// `older_than_ms`; running and paused runs are kept. Returns how many
    /// were removed. Their facts are retracted (history stays in the log).
    pub async fn cleanup(&self, older_than_ms: f64) -> Result<usize> {
        self.check_open()?;
        if !older_than_ms.is_finite() || older_than_ms < 0.0 {
            return Err(crate::error::Error::invalid("olderThanMs must be a finite number >= 0"));
        }
        let cutoff = self.now() - older_than_ms;
        if super::registry_events::events_layout(self.storage().capabilities()) {
            return self.cleanup_events(cutoff).await;
        }
        let mut removed = 0;
        for status in [RunStatus::Completed, RunStatus::Failed] {
            let ks = list_all(self.storage(), &status_prefix(status), None).await?;
            for (_, s) in self.summaries(&ks).await? {
                if s.updated_at >= cutoff {
                    continue;
                }
                if self.remove_ended(&s).await? {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    /// Removes the run of `s` if its facts say it has ended (both layouts).
    /// The facts are authoritative: a run resumed elsewhere meanwhile is kept.
    pub(super) async fn remove_ended(&self, s: &RunSummary) -> Result<bool> {
        let scope = self.scope(s.scope_dims()).await?;
        scope.refresh().await?;
        let run = Run::handle(scope, s.workflow.clone(), s.id.clone(), self.options().lease_ms);
        if !run.status().is_terminal() {
            return Ok(false);
        }
        run.remove(s).await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run summary is stored by the hand-written wire format
    /// (`core::codec::encode_record`), which must write what postcard + serde
    /// wrote before it: the same bytes both ways.
    #[test]
    fn run_summaries_are_postcard() {
        use crate::core::codec::{decode_record, encode_record, FORMAT_VERSION};
        let pairs = vec![("project".to_string(), "acme".to_string()), ("w".to_string(), String::new())];
        for status in RunStatus::ALL {
            let s = RunSummary {
                workflow: "research".into(),
                id: "q1".into(),
                scope: pairs.clone(),
                status,
                created_at: 1.0,
                updated_at: 2.0,
                error: (status == RunStatus::Failed).then(|| "boom".into()),
                steps: [0, 1, 200, 3, 70_000],
            };
            // Records of other kinds start with the format version and b'X'.
            let theirs = postcard::to_extend(&s, vec![FORMAT_VERSION, b'X']).unwrap();
            assert_eq!(encode_record(&s), theirs);
            assert_eq!(decode_record::<RunSummary>("k", &theirs).unwrap(), s);
        }
    }

    #[test]
    fn newer_runs_sort_first() {
        let times = [0.0, 0.5, 1000.0, 1000.25, 1000.5, 1001.0, 1.7e12, 1.7e12 + 0.001, f64::MAX];
        for w in times.windows(2) {
            assert!(newest_first(w[1]) < newest_first(w[0]), "{} before {}", w[1], w[0]);
        }
        for t in [-5.0, -0.0, f64::NAN, f64::NEG_INFINITY] {
            assert_eq!(newest_first(t), newest_first(0.0), "{t}");
        }
        assert_eq!(newest_first(f64::INFINITY), newest_first(f64::MAX));
        assert!(times.iter().all(|t| newest_first(*t).len() == 16));
    }

    #[test]
    fn run_keys_separate_their_parts() {
        assert_ne!(run_key("s", "ab", "c"), run_key("s", "a", "bc"));
        assert_eq!(run_key("s", "a", "b").len(), 32);
    }
}
