//! The random actions of the model-based tests (`main.rs`) and their strategies.

use super::*;

// ---- actions ----------------------------------------------------------------

#[derive(Debug, Clone)]
pub enum MExpiry {
    None,
    Ttl(f64),
    /// validUntil relative to the clock when the op is built.
    Until(f64),
}

#[derive(Debug, Clone)]
pub enum MOp {
    Set { e: usize, ty: Option<usize>, attrs: Vec<(usize, usize)>, exp: MExpiry },
    Unset { e: usize, attrs: Vec<usize> },
    Delete { e: usize },
}

#[derive(Debug, Clone)]
pub enum Target {
    /// The i-th existing checkpoint (by name), if any; else seq 0.
    Cp(usize),
    /// A seq, as a fraction of the latest.
    Seq(f64),
}

#[derive(Debug, Clone)]
pub enum Action {
    Tx { ops: Vec<MOp>, cause: usize, actor: bool, note: bool },
    Clock(f64),
    Checkpoint(usize),
    Restore(Target),
    Reopen,
}

pub fn expiry() -> impl Strategy<Value = MExpiry> {
    prop_oneof![
        3 => Just(MExpiry::None),
        1 => prop_oneof![Just(0.0), Just(10.0), Just(50.0), Just(200.0)].prop_map(MExpiry::Ttl),
        1 => prop_oneof![Just(-10.0), Just(0.0), Just(20.0), Just(100.0)].prop_map(MExpiry::Until),
    ]
}

pub fn op() -> impl Strategy<Value = MOp> {
    prop_oneof![
        5 => (0..ENTS.len(), proptest::option::weighted(0.4, 0..TYPES.len()),
              proptest::collection::vec((0..ATTRS.len(), 0..9usize), 0..3), expiry())
            .prop_map(|(e, ty, attrs, exp)| MOp::Set { e, ty, attrs, exp }),
        2 => (0..ENTS.len(), proptest::collection::vec(0..ATTRS.len(), 0..3)).prop_map(|(e, attrs)| MOp::Unset { e, attrs }),
        1 => (0..ENTS.len()).prop_map(|e| MOp::Delete { e }),
    ]
}

pub fn target() -> impl Strategy<Value = Target> {
    prop_oneof![(0..CPS.len()).prop_map(Target::Cp), (0.0..=1.0f64).prop_map(Target::Seq)]
}

pub fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        10 => (proptest::collection::vec(op(), 0..4), 0..3usize, any::<bool>(), any::<bool>())
            .prop_map(|(ops, cause, actor, note)| Action::Tx { ops, cause, actor, note }),
        // Mostly forwards; sometimes backwards (tx times must still never decrease).
        4 => prop_oneof![3 => 0.0..120.0f64, 1 => -40.0..0.0f64].prop_map(|d| Action::Clock(d.round())),
        2 => (0..CPS.len()).prop_map(Action::Checkpoint),
        1 => target().prop_map(Action::Restore),
        1 => Just(Action::Reopen),
    ]
}

/// (snapshot_min_bytes, snapshot_factor): every commit, once, now and then, never.
pub fn snapshot_policy() -> impl Strategy<Value = (usize, f64)> {
    prop_oneof![Just((0, 0.0)), Just((1, 1e9)), Just((200, 0.5)), Just((64 * 1024, 4.0))]
}
