//! The run registry on eventually consistent storage (Workers KV).
//!
//! The indexed layout (`registry.rs`) rewrites `r/i/<run>` after every step
//! transition and moves index keys when a status changes. On KV that is a
//! hot key (1 write per second per key, last write wins, writes cost 10×
//! reads), so there the registry is a set of immutable events instead:
//!
//! ```text
//! r/e/<run>/<updated>.<seq>.<writer>   RunSummary as of a change of status,
//!                                      creation time or error; key metadata
//!                                      holds the same summary (hex), so
//!                                      listing runs reads no value
//! ```
//!
//! - An event is written when a run is created or changes status (pause,
//!   resume, complete, fail), never per step: a step costs its log record and
//!   nothing else. So on this layout `RunInfo.updatedAt` of a running run is
//!   the time of its last status change (`run.steps()` has the live state),
//!   and `stats().steps` is counted from the facts.
//! - The newest event of a run (largest key) is its summary; two isolates
//!   racing produce two events and readers agree on the newest.
//! - Superseded events are left in place (a reader elsewhere may not see the
//!   newer one yet) and removed by `cleanup()`.
//! - `runs()` lists every event (one KV list per 1,000 keys, metadata only),
//!   then filters and sorts in memory.

use std::collections::HashMap;

use crate::core::codec;
use crate::core::workflow::RunStatus;
use crate::error::{Error, Result};
use crate::storage::{keys, Capabilities, Consistency, Storage, MAX_META_BYTES};

use super::registry::{decode_summary, RunFilter, RunSummary, Stats};
use super::run::Run;
use super::Store;

pub(crate) const EVENTS_PREFIX: &str = "r/e/";

/// Whether a store on storage with these capabilities uses the event layout.
pub(crate) fn events_layout(caps: Capabilities) -> bool {
    caps.consistency == Consistency::Eventual
}

/// The last event this store wrote or read, per run key.
pub(crate) type EventCache = std::cell::RefCell<HashMap<String, (String, RunSummary)>>;

fn run_prefix(run: &str) -> String {
    format!("{EVENTS_PREFIX}{run}/")
}

/// Non-negative times as hex that sorts like the numbers.
fn increasing(t: f64) -> String {
    let t = if t > 0.0 { t.min(f64::MAX) } else { 0.0 };
    format!("{:016x}", t.to_bits())
}

fn event_key(run: &str, s: &RunSummary, seq: u64, writer: &str) -> String {
    format!("{}{}.{seq:012}.{writer}", run_prefix(run), increasing(s.updated_at))
}

/// The run key of an event key.
fn run_of(key: &str) -> Option<&str> {
    key.strip_prefix(EVENTS_PREFIX)?.split('/').next()
}

/// Whether two summaries would make the same event (step counts and
/// `updated_at` change per step and are not kept current here).
fn same_event(a: &RunSummary, b: &RunSummary) -> bool {
    a.status == b.status
        && a.created_at == b.created_at
        && a.error == b.error
        && a.workflow == b.workflow
        && a.id == b.id
        && a.scope == b.scope
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// The summary an event's metadata holds, if it holds one.
fn from_meta(key: &str, meta: Option<&str>) -> Result<Option<RunSummary>> {
    let Some(bytes) = meta.filter(|m| !m.is_empty()).map(|m| unhex(m).ok_or_else(|| Error::corrupt(key, "the event metadata is not hex")))
    else {
        return Ok(None);
    };
    decode_summary(key, &bytes?).map(Some)
}

impl<S: Storage> Store<S> {
    /// The newest event of every run, and the superseded events' keys.
    async fn latest_events(&self) -> Result<(Vec<(String, RunSummary)>, Vec<String>)> {
        const PAGE: usize = 1000;
        let mut listed: Vec<(String, Option<String>)> = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.storage().list_meta(EVENTS_PREFIX, after.as_deref(), Some(PAGE)).await?;
            let done = page.len() < PAGE;
            after = page.last().map(|(k, _)| k.clone()).or(after);
            listed.extend(page);
            if done {
                break;
            }
        }
        let mut newest: Vec<(String, Option<String>)> = Vec::new();
        let mut superseded = Vec::new();
        for (k, m) in listed {
            match newest.last_mut() {
                Some(last) if run_of(&last.0) == run_of(&k) => superseded.push(std::mem::replace(last, (k, m)).0),
                _ => newest.push((k, m)),
            }
        }
        let mut out = Vec::with_capacity(newest.len());
        let mut missing = Vec::new();
        for (k, m) in newest {
            match from_meta(&k, m.as_deref())? {
                Some(s) => out.push((k, s)),
                None => missing.push(k),
            }
        }
        let vals = self.storage().get_many(&missing).await?;
        for (k, v) in missing.into_iter().zip(vals) {
            // Listed but gone: removed by a concurrent cleanup.
            if let Some(v) = v {
                let s = decode_summary(&k, &v)?;
                out.push((k, s));
            }
        }
        Ok((out, superseded))
    }

    /// `runs()` on the event layout.
    pub(crate) async fn runs_events(&self, f: &RunFilter) -> Result<Vec<RunSummary>> {
        let (all, _) = self.latest_events().await?;
        let mut runs: Vec<(String, RunSummary)> = all
            .into_iter()
            .filter(|(_, s)| f.status.is_none_or(|st| st == s.status) && f.keeps(s))
            .collect();
        crate::core::sort::sort_by(&mut runs, |(ka, a), (kb, b)| b.created_at.total_cmp(&a.created_at).then_with(|| ka.cmp(kb)));
        Ok(runs.into_iter().map(|(_, s)| s).skip(f.offset).take(f.limit.unwrap_or(usize::MAX)).collect())
    }

    /// `failedRuns()` on the event layout.
    pub(crate) async fn failed_runs_events(&self, within_ms: Option<f64>) -> Result<Vec<RunSummary>> {
        let now = self.now();
        let f = RunFilter { status: Some(RunStatus::Failed), ..RunFilter::default() };
        Ok(self.runs_events(&f).await?.into_iter().filter(|s| within_ms.is_none_or(|w| s.updated_at >= now - w)).collect())
    }

    /// `stats()` on the event layout: runs from the events, steps and facts
    /// from the scopes (loaded anyway to count facts).
    pub(crate) async fn stats_events(&self) -> Result<Stats> {
        let mut stats = Stats::default();
        let (all, _) = self.latest_events().await?;
        for (_, s) in &all {
            if let Some(i) = RunStatus::ALL.iter().position(|x| *x == s.status) {
                stats.runs[i] += 1;
            }
            let scope = self.scope(s.scope_dims()).await?;
            let run = Run::handle(scope, s.workflow.clone(), s.id.clone(), self.options().lease_ms);
            for rec in run.steps() {
                if let Some(i) = crate::core::workflow::StepState::ALL.iter().position(|x| *x == rec.state) {
                    stats.steps[i] += 1;
                }
            }
        }
        self.count_scopes(&mut stats).await?;
        Ok(stats)
    }

    /// `cleanup()` on the event layout; also removes superseded events.
    pub(crate) async fn cleanup_events(&self, cutoff: f64) -> Result<usize> {
        let (all, superseded) = self.latest_events().await?;
        for k in superseded {
            self.storage().delete(&k).await?;
        }
        let mut removed = 0;
        for (_, s) in all {
            if !s.status.is_terminal() || s.updated_at > cutoff {
                continue;
            }
            if self.remove_ended(&s).await? {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

impl<S: Storage> Run<S> {
    /// The newest event of this run (listed, and remembered).
    pub(crate) async fn latest_event(&self) -> Result<Option<RunSummary>> {
        let store = self.scope().store();
        let ks = store.storage().list_meta(&run_prefix(self.run_key()), None, None).await?;
        let Some((k, m)) = ks.last() else {
            store.inner.events.borrow_mut().remove(self.run_key());
            return Ok(None);
        };
        let s = match from_meta(k, m.as_deref())? {
            Some(s) => s,
            None => match store.storage().get(k).await? {
                Some(v) => decode_summary(k, &v)?,
                None => return Ok(None),
            },
        };
        store.inner.events.borrow_mut().insert(self.run_key().to_string(), (k.clone(), s.clone()));
        Ok(Some(s))
    }

    /// Writes an event when the run's status, creation time or error differ
    /// from its newest known event. No storage access per step.
    pub(crate) async fn sync_events(&self) -> Result<()> {
        let store = self.scope().store();
        let (new, seq) = self.scope().with_state(|st| (self.summary_in(st), st.seq()));
        let known = store.inner.events.borrow().get(self.run_key()).map(|(_, s)| s.clone());
        let known = match known {
            Some(s) => Some(s),
            None => self.latest_event().await?,
        };
        if known.is_some_and(|k| same_event(&k, &new)) {
            return Ok(());
        }
        let key = event_key(self.run_key(), &new, seq, &store.inner.writer);
        let value = codec::encode_record(&new);
        let meta = keys::hex(&value);
        if meta.len() <= MAX_META_BYTES {
            store.storage().put_meta(&key, value, &meta).await?;
        } else {
            store.storage().put(&key, value).await?;
        }
        store.inner.events.borrow_mut().insert(self.run_key().to_string(), (key, new));
        Ok(())
    }

    /// Deletes every event of the run.
    pub(crate) async fn remove_events(&self) -> Result<()> {
        let store = self.scope().store();
        for k in store.storage().list(&run_prefix(self.run_key()), None, None).await? {
            store.storage().delete(&k).await?;
        }
        store.inner.events.borrow_mut().remove(self.run_key());
        Ok(())
    }
}
