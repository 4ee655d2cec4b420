//! Everything observable of a scope, compared with the naive model (`main.rs`).

use super::*;

/// Compares one read-only view (current or as-of) with the model at (s, now).
macro_rules! check_view {
    ($view:expr, $m:expr, $s:expr, $now:expr, $what:expr) => {{
        let (view, m, s, now, what) = ($view, $m, $s, $now, $what);
        prop_assert_eq!(view.entities(), m.entities(s, now), "entities, {}", what);
        for e in ENTS {
            prop_assert_eq!(view.entity(e), m.entity(e, s, now), "entity {}, {}", e, what);
            for a in ATTRS {
                prop_assert_eq!(view.value(e, a), m.value(e, a, s, now), "value {}.{}, {}", e, a, what);
                prop_assert_eq!(view.why(e, a), m.why(e, a, s, now), "why {}.{}, {}", e, a, what);
            }
        }
        let mut queries = vec![Query::default(), Query { ty: Some("nope".into()), where_: vec![] }];
        for t in TYPES {
            queries.push(Query { ty: Some(t.into()), where_: vec![] });
            queries.push(Query { ty: Some(t.into()), where_: vec![("a0".into(), pool_value(1))] });
        }
        for val in [1, 3, 5] {
            queries.push(Query { ty: None, where_: vec![("a1".into(), pool_value(val))] });
            queries.push(Query { ty: None, where_: vec![("T".into(), pool_value(val)), ("a0".into(), pool_value(2))] });
        }
        for q in &queries {
            prop_assert_eq!(view.find(q), m.find(q, s, now), "find {:?}, {}", q, what);
        }
    }};
}

/// Compares everything observable about `scope` with `m`. Leaves the clock as it found it.
pub fn compare(scope: &Scope<MemoryStorage>, m: &Model, clock: &Cell<f64>, what: &str) -> Result<(), TestCaseError> {
    let saved = clock.get();
    let latest = m.seq();
    prop_assert_eq!(scope.seq(), latest, "seq, {}", what);
    prop_assert_eq!(scope.checkpoints(), m.cps.clone(), "checkpoints, {}", what);
    let times = m.interesting_times(saved);

    // Current state, judged at many times (the reads use the store's clock).
    for &t in &times {
        clock.set(t);
        check_view!(scope, m, latest, t, &format!("now = {t}, {what}"));
        for w in [0.0, 10.0, 100.0] {
            prop_assert_eq!(scope.expiring(w), m.expiring(t, w), "expiring({}) at {}, {}", w, t, what);
        }
    }
    clock.set(saved);

    // As of every seq, judging expiry at that transaction's time.
    for s in 0..=latest {
        let view = scope.as_of(AsOf::Seq(s)).unwrap();
        let (ms, now) = m.as_of_seq(s);
        prop_assert_eq!((view.seq(), view.at()), (ms, now), "as of seq {}, {}", s, what);
        check_view!(&view, m, ms, now, &format!("as of seq {s}, {what}"));
    }
    prop_assert_eq!(scope.as_of(AsOf::Seq(latest + 1)).err().map(|e| e.code().as_str()), Some("NOT_FOUND"));

    // As of a time: the transactions with at <= t, expiry judged at t.
    for &t in times.iter().chain(&[f64::NEG_INFINITY, f64::INFINITY]) {
        let view = scope.as_of(AsOf::At(t)).unwrap();
        let (ms, now) = m.as_of_at(t);
        prop_assert_eq!(view.seq(), ms, "as of time {}, {}", t, what);
        check_view!(&view, m, ms, now, &format!("as of time {t}, {what}"));
    }

    for e in ENTS {
        for a in ATTRS {
            prop_assert_eq!(scope.history(e, a), m.history(e, a), "history {}.{}, {}", e, a, what);
        }
    }

    // Diff between every pair of seqs, and from/to every checkpoint name.
    for a in 0..=latest {
        for b in a..=latest {
            prop_assert_eq!(
                scope.diff(&Point::Seq(a), Some(&Point::Seq(b))).unwrap(),
                m.diff(a, b),
                "diff({}, {}), {}",
                a,
                b,
                what
            );
        }
    }
    if latest > 0 {
        let err = scope.diff(&Point::Seq(latest), Some(&Point::Seq(0))).unwrap_err();
        prop_assert_eq!(err.code().as_str(), "INVALID_INPUT");
    }
    for cp in &m.cps {
        let name = Point::Name(cp.name.clone());
        prop_assert_eq!(scope.diff(&name, None).unwrap(), m.diff(cp.seq, latest), "diff({}), {}", cp.name, what);
        prop_assert_eq!(
            scope.diff(&Point::Seq(0), Some(&name)).unwrap(),
            m.diff(0, cp.seq),
            "diff(0, {}), {}",
            cp.name,
            what
        );
    }
    Ok(())
}

/// Entity, attribute and the stored (value, validUntil) of each.
pub type Stored = Vec<(String, String, Option<(Value, Option<f64>)>)>;

/// The stored (value, validUntil) of every attribute, expiry ignored.
pub fn stored_state(scope: &Scope<MemoryStorage>) -> Stored {
    let mut out = Vec::new();
    for e in ENTS {
        for a in ATTRS {
            let last = scope.history(e, a).pop().filter(|v| !v.retracted).map(|v| (v.value.unwrap(), v.valid_until));
            out.push((e.to_string(), a.to_string(), last));
        }
    }
    out
}

pub fn model_stored_state(m: &Model, s: u64) -> Stored {
    let mut out = Vec::new();
    for e in ENTS {
        for a in ATTRS {
            let w = m.stored(e, a, s).filter(|w| w.value.is_some()).map(|w| (w.value.clone().unwrap(), w.vu));
            out.push((e.to_string(), a.to_string(), w));
        }
    }
    out
}
