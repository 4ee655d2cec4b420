//! The run registry against a naive model (issue 3): random runs in random
//! workflows and scopes, created at random times, with random status changes
//! and steps; `runs()` filters and pagination, `failed_runs()`, `stats()` and
//! `cleanup()` must agree with a plain `Vec` of runs after every operation.

mod common;

use std::cell::Cell;
use std::collections::BTreeMap;

use common::{block_on, cases, clock};
use proptest::prelude::*;
use waymark::core::workflow::{RunStatus, StepState};
use waymark::storage::MemoryStorage;
use waymark::store::{Failure, RunFilter, RunSpec, RunSummary, StepError, StepOptions, Store};
use waymark::{Dims, Value};

const WORKFLOWS: [&str; 2] = ["research", "report"];
const IDS: [&str; 4] = ["a", "b", "c", "d"];
const SCOPES: usize = 3;
const STEPS: [&str; 2] = ["fetch", "write"];

#[derive(Debug, Clone)]
enum Op {
    /// Opens (creating if absent) a run, `dt` ms later.
    Create { scope: usize, workflow: usize, id: usize, dt: f64 },
    /// pause / resume / complete / fail on the `pick`-th live run.
    Control { pick: usize, what: usize, dt: f64 },
    Step { pick: usize, step: usize, ok: bool, dt: f64 },
    Advance { dt: f64 },
    /// `snap`: take `created_after` / `created_before` from the creation
    /// times of model runs, to hit the window's edges exactly.
    Query { filter: RunFilter, snap: (Option<usize>, Option<usize>) },
    /// `snap`: measure `within` to the `updatedAt` of a model run exactly.
    Failed { within: Option<f64>, snap: Option<usize> },
    Cleanup { older_than: f64, snap: Option<usize> },
    Reopen,
}

fn dt() -> impl Strategy<Value = f64> {
    prop_oneof![Just(0.0), Just(0.25), Just(1.0), Just(2.5), (1u32..5).prop_map(f64::from)]
}

fn time() -> impl Strategy<Value = Option<f64>> {
    proptest::option::of((0u32..90).prop_map(|t| 1000.0 + f64::from(t)))
}

fn snap() -> impl Strategy<Value = Option<usize>> {
    proptest::option::weighted(0.5, any::<usize>())
}

fn filter() -> impl Strategy<Value = RunFilter> {
    let status = proptest::option::of(proptest::sample::select(RunStatus::ALL.to_vec()));
    let workflow = proptest::option::of(proptest::sample::select(WORKFLOWS.to_vec()).prop_map(String::from));
    (status, workflow, time(), time(), proptest::option::of(0usize..6), 0usize..6).prop_map(
        |(status, workflow, created_after, created_before, limit, offset)| RunFilter {
            status,
            workflow,
            created_after,
            created_before,
            limit,
            offset,
        },
    )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..SCOPES, 0..WORKFLOWS.len(), 0..IDS.len(), dt())
            .prop_map(|(scope, workflow, id, dt)| Op::Create { scope, workflow, id, dt }),
        5 => (any::<usize>(), 0usize..4, dt()).prop_map(|(pick, what, dt)| Op::Control { pick, what, dt }),
        3 => (any::<usize>(), 0..STEPS.len(), any::<bool>(), dt())
            .prop_map(|(pick, step, ok, dt)| Op::Step { pick, step, ok, dt }),
        1 => (0u32..30).prop_map(|t| Op::Advance { dt: f64::from(t) }),
        3 => (filter(), snap(), snap()).prop_map(|(filter, a, b)| Op::Query { filter, snap: (a, b) }),
        1 => (proptest::option::of((0u32..40).prop_map(f64::from)), snap())
            .prop_map(|(within, snap)| Op::Failed { within, snap }),
        1 => ((0u32..40).prop_map(f64::from), snap()).prop_map(|(older_than, snap)| Op::Cleanup { older_than, snap }),
        1 => Just(Op::Reopen),
    ]
}

/// What the model knows of a run.
#[derive(Debug, Clone, PartialEq)]
struct ModelRun {
    scope: usize,
    workflow: String,
    id: String,
    status: RunStatus,
    created: f64,
    updated: f64,
    error: Option<String>,
    steps: BTreeMap<String, StepState>,
}

impl ModelRun {
    fn facts(&self) -> u64 {
        // workflow, id, status, input, createdAt, updatedAt, steps (+ output or error);
        // each step: run, name, state, attempts, startedAt, endedAt, transitions, result or error.
        let end = u64::from(self.status.is_terminal());
        7 + end + 8 * self.steps.len() as u64
    }
}

/// A run as comparable data: (scope, workflow, id, status, created, updated, error, steps).
type Row = (Vec<(String, String)>, String, String, &'static str, u64, u64, Option<String>, [u32; 5]);

fn dims(scope: usize) -> Dims {
    match scope {
        0 => Dims::new::<&str, &str>([]),
        n => Dims::new([("tenant", format!("t{n}"))]),
    }
}

fn row_of_model(m: &ModelRun) -> Row {
    let mut steps = [0u32; 5];
    for s in m.steps.values() {
        steps[StepState::ALL.iter().position(|x| x == s).unwrap()] += 1;
    }
    let scope = dims(m.scope).iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    (scope, m.workflow.clone(), m.id.clone(), m.status.as_str(), m.created.to_bits(), m.updated.to_bits(), m.error.clone(), steps)
}

fn row_of(s: &RunSummary) -> Row {
    let status = s.status.as_str();
    (s.scope.clone(), s.workflow.clone(), s.id.clone(), status, s.created_at.to_bits(), s.updated_at.to_bits(), s.error.clone(), s.steps)
}

/// Checks a registry listing against the model's matching runs: newest
/// `createdAt` first (ties in any order), the same runs, and `offset`/`limit`
/// cutting the full listing.
fn check_listing(full: &[RunSummary], page: &[RunSummary], model: Vec<&ModelRun>, offset: usize, limit: Option<usize>) {
    assert!(full.windows(2).all(|w| w[0].created_at >= w[1].created_at), "newest first: {full:?}");
    let mut got: Vec<Row> = full.iter().map(row_of).collect();
    let mut want: Vec<Row> = model.into_iter().map(row_of_model).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    let start = offset.min(full.len());
    let end = limit.map_or(full.len(), |l| (start + l).min(full.len()));
    assert_eq!(page, &full[start..end], "offset {offset}, limit {limit:?}");
}

/// Runs `ops` against a store and the model, checking after each; returns
/// what each `cleanup` removed.
fn run_ops(ops: Vec<Op>) -> Vec<usize> {
    let storage = MemoryStorage::new();
    let (clock, opts) = clock(1000.0);
    let tick = |dt: f64| clock.set(clock.get() + dt);
    let mut model: Vec<ModelRun> = Vec::new();
    let mut ever_scopes = [false; SCOPES];
    let mut cleaned = Vec::new();
    block_on(async {
        let mut store = Store::open(storage.clone(), opts.clone()).await.unwrap();
        let spec = |m: &ModelRun| RunSpec {
            workflow: m.workflow.clone(),
            id: m.id.clone(),
            scope: dims(m.scope),
            input: None,
            lease_ms: None,
        };
        for op in ops {
            let now = clock.get();
            match op {
                Op::Create { scope, workflow, id, dt } => {
                    tick(dt);
                    let m = ModelRun {
                        scope,
                        workflow: WORKFLOWS[workflow].into(),
                        id: IDS[id].into(),
                        status: RunStatus::Running,
                        created: clock.get(),
                        updated: clock.get(),
                        error: None,
                        steps: BTreeMap::new(),
                    };
                    let run = store.run(spec(&m)).await.unwrap();
                    ever_scopes[scope] = true;
                    let known = model.iter().find(|r| (r.scope, &r.workflow, &r.id) == (scope, &m.workflow, &m.id));
                    match known {
                        Some(k) => assert_eq!(run.status(), k.status, "an existing run is opened, not reset"),
                        None => model.push(m),
                    }
                }
                Op::Control { pick, what, dt } if !model.is_empty() => {
                    tick(dt);
                    let i = pick % model.len();
                    let run = store.run(spec(&model[i])).await.unwrap();
                    let (r, next) = match what {
                        0 => (run.pause().await, model[i].status.pause()),
                        1 => (run.resume().await, model[i].status.resume()),
                        2 => (run.complete(Value::from("out")).await, model[i].status.complete()),
                        _ => (run.fail("broke").await, model[i].status.fail()),
                    };
                    match (r, next) {
                        (Ok(()), Ok(status)) => {
                            let m = &mut model[i];
                            (m.status, m.updated) = (status, clock.get());
                            if what == 3 {
                                m.error = Some("broke".into());
                            }
                        }
                        (Err(e), Err(_)) => assert_eq!(e.code().as_str(), "INVALID_TRANSITION"),
                        (r, next) => panic!("{what}: store {r:?}, model {next:?}"),
                    }
                    assert_eq!(run.status(), model[i].status);
                }
                Op::Step { pick, step, ok, dt } if !model.is_empty() => {
                    tick(dt);
                    let i = pick % model.len();
                    let run = store.run(spec(&model[i])).await.unwrap();
                    let name = STEPS[step];
                    let ran = Cell::new(false);
                    let f = || {
                        ran.set(true);
                        std::future::ready(if ok { Ok(Value::from(name)) } else { Err(Failure::new("nope".to_string())) })
                    };
                    let r = run.step(name, &StepOptions::default(), f, None, None).await;
                    let m = &mut model[i];
                    let before = m.steps.get(name).copied();
                    match (&r, m.status) {
                        (Err(StepError::Waymark(e)), s) if s != RunStatus::Running => {
                            assert_eq!(e.code().as_str(), "INVALID_TRANSITION");
                            assert!(!ran.get());
                        }
                        (Ok(_), RunStatus::Running) if before == Some(StepState::Completed) => assert!(!ran.get()),
                        (Ok(_), RunStatus::Running) if ok => {
                            m.steps.insert(name.into(), StepState::Completed);
                            m.updated = clock.get();
                        }
                        (Err(StepError::Step(_)), RunStatus::Running) if !ok => {
                            m.steps.insert(name.into(), StepState::Failed);
                            m.updated = clock.get();
                        }
                        _ => panic!("step {name} on {m:?} (ok {ok}): {r:?}"),
                    }
                }
                Op::Advance { dt } => tick(dt),
                Op::Query { mut filter, snap } => {
                    let created = |p: Option<usize>| p.filter(|_| !model.is_empty()).map(|p| model[p % model.len()].created);
                    filter.created_after = created(snap.0).or(filter.created_after);
                    filter.created_before = created(snap.1).or(filter.created_before);
                    let all = RunFilter { limit: None, offset: 0, ..filter.clone() };
                    let full = store.runs(&all).await.unwrap();
                    let page = store.runs(&filter).await.unwrap();
                    let matching = model
                        .iter()
                        .filter(|m| filter.status.is_none_or(|s| s == m.status))
                        .filter(|m| filter.workflow.as_ref().is_none_or(|w| *w == m.workflow))
                        .filter(|m| filter.created_after.is_none_or(|t| m.created >= t))
                        .filter(|m| filter.created_before.is_none_or(|t| m.created < t))
                        .collect();
                    check_listing(&full, &page, matching, filter.offset, filter.limit);
                }
                Op::Failed { mut within, snap } => {
                    if let (Some(p), false) = (snap, model.is_empty()) {
                        within = Some(now - model[p % model.len()].updated);
                    }
                    let got = store.failed_runs(within).await.unwrap();
                    let want = model
                        .iter()
                        .filter(|m| m.status == RunStatus::Failed)
                        .filter(|m| within.is_none_or(|w| m.updated >= now - w))
                        .collect();
                    check_listing(&got, &got, want, 0, None);
                }
                Op::Cleanup { mut older_than, snap } => {
                    if let (Some(p), false) = (snap, model.is_empty()) {
                        older_than = now - model[p % model.len()].updated;
                    }
                    let removed = store.cleanup(older_than).await.unwrap();
                    let before = model.len();
                    model.retain(|m| !(m.status.is_terminal() && m.updated < now - older_than));
                    assert_eq!(removed, before - model.len(), "cleanup({older_than}) at {now}");
                    cleaned.push(removed);
                }
                Op::Reopen => store = Store::open(storage.clone(), opts.clone()).await.unwrap(),
                Op::Control { .. } | Op::Step { .. } => {}
            }
            check_stats(&store, &model, ever_scopes.iter().filter(|s| **s).count() as u64).await;
        }
    });
    cleaned
}

async fn check_stats(store: &Store<MemoryStorage>, model: &[ModelRun], scopes: u64) {
    let stats = store.stats().await.unwrap();
    for s in RunStatus::ALL {
        assert_eq!(stats.runs_in(s), model.iter().filter(|m| m.status == s).count() as u64, "{s} runs");
    }
    assert_eq!(stats.runs_total(), model.len() as u64);
    for s in StepState::ALL {
        let n: usize = model.iter().map(|m| m.steps.values().filter(|x| **x == s).count()).sum();
        assert_eq!(stats.steps_in(s), n as u64, "{s} steps");
    }
    assert_eq!((stats.scopes, stats.facts), (scopes, model.iter().map(ModelRun::facts).sum()));
}

proptest! {
    // PROPTEST_CASES=2000 for a longer soak.
    #![proptest_config(ProptestConfig { cases: cases(64), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_registry_agrees_with_a_naive_model(ops in proptest::collection::vec(op(), 1..70)) {
        run_ops(ops);
    }
}

#[test]
fn runs_created_within_one_millisecond_are_listed_newest_first() {
    use Op::*;
    let q = RunFilter::default();
    run_ops(vec![
        Create { scope: 1, workflow: 0, id: 0, dt: 0.25 },
        Create { scope: 1, workflow: 0, id: 1, dt: 0.25 },
        Create { scope: 2, workflow: 0, id: 2, dt: 0.25 },
        Query { filter: q.clone(), snap: (None, None) },
        Query { filter: RunFilter { created_after: Some(1000.5), ..q }, snap: (None, None) },
    ]);
}

#[test]
fn cleanup_keeps_running_and_paused_runs_and_a_removed_id_can_be_created_again() {
    use Op::*;
    let q = RunFilter::default();
    let mut ops = Vec::new();
    for id in 0..4 {
        ops.push(Create { scope: 1, workflow: 0, id, dt: 1.0 });
    }
    // a: paused, b: completed, c: failed, d: running.
    ops.extend([
        Step { pick: 1, step: 0, ok: true, dt: 0.0 },
        Control { pick: 0, what: 0, dt: 0.0 },
        Control { pick: 1, what: 2, dt: 0.0 },
        Control { pick: 2, what: 3, dt: 0.0 },
        Advance { dt: 100.0 },
        Cleanup { older_than: 10.0, snap: None },
        Query { filter: q.clone(), snap: (None, None) },
        Create { scope: 1, workflow: 0, id: 1, dt: 1.0 },
        Create { scope: 1, workflow: 0, id: 2, dt: 1.0 },
        Query { filter: q, snap: (None, None) },
        Cleanup { older_than: 0.0, snap: None },
    ]);
    assert_eq!(run_ops(ops), [2, 0]);
}
