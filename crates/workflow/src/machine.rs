//! Custom state machines: declared states, an initial state, terminal states and
//! a table of allowed transitions, each with an optional guard.
//!
//! ```ts
//! // The shape a binding exposes (illustrative):
//! const m = machine({
//!   states: ["draft", "review", "published"],
//!   initial: "draft",
//!   terminal: ["published"],
//!   transitions: [["draft", "review"], ["review", "draft"],
//!                 ["review", "published", (c) => c.context.approved === true]],
//! });
//! m.transition("review", "published", { approved: false });   // throws INVALID_TRANSITION
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use waymark_core::value::Value;
use waymark_core::error::{Error, Result};

/// What a guard sees: the transition asked for and the caller's context payload.
#[derive(Debug, Clone, Copy)]
pub struct GuardContext<'a> {
    /// The current state.
    pub from: &'a str,
    /// The state asked for.
    pub to: &'a str,
    /// Whatever the caller passed along (JSON).
    pub context: &'a Value,
}

/// A guard: `true` lets the transition happen.
pub type Guard = Box<dyn Fn(&GuardContext<'_>) -> bool>;

/// A validated state machine. Build one with [`Machine::builder`].
pub struct Machine {
    /// Declared states, in declaration order.
    states: Vec<String>,
    initial: String,
    terminal: BTreeSet<String>,
    /// from → to → optional guard.
    table: BTreeMap<String, BTreeMap<String, Option<Guard>>>,
}

impl fmt::Debug for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let edges: Vec<(&str, &str, bool)> = self
            .table
            .iter()
            .flat_map(|(from, tos)| tos.iter().map(move |(to, g)| (from.as_str(), to.as_str(), g.is_some())))
            .collect();
        f.debug_struct("Machine")
            .field("states", &self.states)
            .field("initial", &self.initial)
            .field("terminal", &self.terminal)
            .field("transitions (from, to, guarded)", &edges)
            .finish()
    }
}

impl Machine {
    /// Starts declaring a machine.
    pub fn builder() -> MachineBuilder {
        MachineBuilder::default()
    }

    /// The built-in step machine: `pending → in_progress`, `in_progress →
    /// review | completed | failed`, `review → completed | pending | failed`,
    /// `failed → pending`, `completed → pending`. Initial `pending`; no terminal
    /// state, since a failed step may be retried and a completed one may expire.
    pub fn standard_step() -> Machine {
        const EDGES: [(&str, &str); 9] = [
            ("pending", "in_progress"),
            ("in_progress", "review"),
            ("in_progress", "completed"),
            ("in_progress", "failed"),
            ("review", "completed"),
            ("review", "pending"),
            ("review", "failed"),
            ("failed", "pending"),
            ("completed", "pending"),
        ];
        let mut b = Machine::builder()
            .states(["pending", "in_progress", "review", "completed", "failed"])
            .initial("pending");
        for (from, to) in EDGES {
            b = b.transition(from, to);
        }
        // The declaration above is a constant, so it is valid; keep `build` total anyway.
        match b.build() {
            Ok(m) => m,
            Err(e) => unreachable!("the standard step machine is valid: {e}"),
        }
    }

    /// Declared states, in declaration order.
    pub fn states(&self) -> impl Iterator<Item = &str> {
        self.states.iter().map(String::as_str)
    }

    /// The initial state.
    pub fn initial(&self) -> &str {
        &self.initial
    }

    /// Whether `state` was declared.
    pub fn has_state(&self, state: &str) -> bool {
        self.states.iter().any(|s| s == state)
    }

    /// Whether `state` is terminal (no transition leaves it).
    pub fn is_terminal(&self, state: &str) -> bool {
        self.terminal.contains(state)
    }

    /// Whether the table holds `from → to`, ignoring guards.
    pub fn allows(&self, from: &str, to: &str) -> bool {
        self.table.get(from).is_some_and(|tos| tos.contains_key(to))
    }

    /// The states reachable from `from` in one transition (ignoring guards), sorted.
    pub fn targets(&self, from: &str) -> impl Iterator<Item = &str> {
        self.table
            .get(from)
            .into_iter()
            .flat_map(|tos| tos.keys().map(String::as_str))
    }

    /// Checks `current → to` with `context` for the guard. `INVALID_INPUT` for an
    /// undeclared state; `INVALID_TRANSITION` naming both states when the table
    /// has no such transition or its guard refuses.
    pub fn transition(&self, current: &str, to: &str, context: &Value) -> Result<()> {
        for state in [current, to] {
            if !self.has_state(state) {
                return Err(Error::invalid(format!("unknown state {state:?}")));
            }
        }
        let Some(guard) = self.table.get(current).and_then(|tos| tos.get(to)) else {
            let why = if self.is_terminal(current) {
                format!(" ({current:?} is terminal)")
            } else {
                String::new()
            };
            return Err(Error::InvalidTransition(format!(
                "cannot go from {current:?} to {to:?}{why}"
            )));
        };
        match guard {
            Some(g)
                if !g(&GuardContext {
                    from: current,
                    to,
                    context,
                }) =>
            {
                Err(Error::InvalidTransition(format!(
                    "cannot go from {current:?} to {to:?}: guard refused"
                )))
            }
            _ => Ok(()),
        }
    }
}

/// Declares a [`Machine`]; [`MachineBuilder::build`] validates it.
#[derive(Default)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct MachineBuilder {
    states: Vec<String>,
    initial: Option<String>,
    terminal: Vec<String>,
    transitions: Vec<(String, String, Option<Guard>)>,
}

impl MachineBuilder {
    /// Declares a state.
    pub fn state(mut self, name: impl Into<String>) -> Self {
        self.states.push(name.into());
        self
    }

    /// Declares several states.
    pub fn states<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.states.extend(names.into_iter().map(Into::into));
        self
    }

    /// Sets the initial state (required).
    pub fn initial(mut self, name: impl Into<String>) -> Self {
        self.initial = Some(name.into());
        self
    }

    /// Marks a state terminal: no transition may leave it.
    pub fn terminal(mut self, name: impl Into<String>) -> Self {
        self.terminal.push(name.into());
        self
    }

    /// Allows `from → to` unconditionally.
    pub fn transition(mut self, from: impl Into<String>, to: impl Into<String>) -> Self {
        self.transitions.push((from.into(), to.into(), None));
        self
    }

    /// Allows `from → to` when `guard` returns `true`.
    pub fn guarded(
        mut self,
        from: impl Into<String>,
        to: impl Into<String>,
        guard: impl Fn(&GuardContext<'_>) -> bool + 'static,
    ) -> Self {
        self.transitions.push((from.into(), to.into(), Some(Box::new(guard))));
        self
    }

    /// Validates and builds. `INVALID_INPUT` when a state name is empty or declared
    /// twice, the initial state is missing or undeclared, a terminal or transition
    /// state is undeclared, a transition is declared twice, or a transition leaves
    /// a terminal state.
    pub fn build(self) -> Result<Machine> {
        let mut seen = BTreeSet::new();
        for s in &self.states {
            if s.is_empty() {
                return Err(Error::invalid("state names must not be empty"));
            }
            if !seen.insert(s.as_str()) {
                return Err(Error::invalid(format!("state {s:?} is declared twice")));
            }
        }
        let declared = |what: &str, s: &str| {
            if seen.contains(s) {
                Ok(())
            } else {
                Err(Error::invalid(format!("{what} {s:?} is not a declared state")))
            }
        };
        let initial = self
            .initial
            .ok_or_else(|| Error::invalid("a machine needs an initial state"))?;
        declared("initial state", &initial)?;
        let mut terminal = BTreeSet::new();
        for t in self.terminal {
            declared("terminal state", &t)?;
            terminal.insert(t);
        }
        let mut table: BTreeMap<String, BTreeMap<String, Option<Guard>>> = BTreeMap::new();
        for (from, to, guard) in self.transitions {
            declared("transition source", &from)?;
            declared("transition target", &to)?;
            if terminal.contains(&from) {
                return Err(Error::invalid(format!(
                    "transition {from:?} -> {to:?} leaves terminal state {from:?}"
                )));
            }
            let tos = table.entry(from.clone()).or_default();
            if tos.contains_key(&to) {
                return Err(Error::invalid(format!(
                    "transition {from:?} -> {to:?} is declared twice"
                )));
            }
            tos.insert(to, guard);
        }
        Ok(Machine {
            states: self.states,
            initial,
            terminal,
            table,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retry::RetryPolicy;
    use crate::step::{self, Begin, StepRecord};
    use crate::StepState;

    fn code(r: Result<()>) -> &'static str {
        r.map_or_else(|e| e.code().as_str(), |()| "OK")
    }

    fn publishing() -> Machine {
        Machine::builder()
            .states(["draft", "review", "published"])
            .initial("draft")
            .terminal("published")
            .transition("draft", "review")
            .transition("review", "draft")
            .guarded("review", "published", |c| {
                c.context.get("approved").and_then(Value::as_bool) == Some(true)
            })
            .build()
            .expect("valid machine")
    }

    #[test]
    fn a_guard_decides_with_the_context() {
        let m = publishing();
        let yes = Value::object([("approved", Value::from(true))]);
        let no = Value::object([("approved", Value::from(false))]);
        assert_eq!(code(m.transition("review", "published", &yes)), "OK");
        let err = m.transition("review", "published", &no).expect_err("guard says no");
        assert_eq!(err.code().as_str(), "INVALID_TRANSITION");
        let msg = err.to_string();
        assert!(
            msg.contains("\"review\"") && msg.contains("\"published\"") && msg.contains("guard refused"),
            "{msg}"
        );
    }

    #[test]
    fn the_guard_sees_from_and_to() {
        let m = Machine::builder()
            .states(["a", "b"])
            .initial("a")
            .guarded("a", "b", |c| c.from == "a" && c.to == "b" && c.context == &Value::Null)
            .build()
            .expect("valid machine");
        assert_eq!(code(m.transition("a", "b", &Value::Null)), "OK");
    }

    #[test]
    fn unknown_states_and_missing_transitions() {
        let m = publishing();
        assert_eq!(code(m.transition("draft", "archived", &Value::Null)), "INVALID_INPUT");
        assert_eq!(code(m.transition("nope", "draft", &Value::Null)), "INVALID_INPUT");
        let err = m
            .transition("draft", "published", &Value::Null)
            .expect_err("not in table");
        assert_eq!(err.code().as_str(), "INVALID_TRANSITION");
        assert!(
            err.to_string().contains("\"draft\"") && err.to_string().contains("\"published\""),
            "{err}"
        );
        let err = m.transition("published", "draft", &Value::Null).expect_err("terminal");
        assert!(err.to_string().contains("terminal"), "{err}");
        assert!(m.is_terminal("published") && !m.is_terminal("draft"));
        assert_eq!(m.initial(), "draft");
        assert_eq!(m.targets("review").collect::<Vec<_>>(), ["draft", "published"]);
    }

    #[test]
    fn build_rejects_inconsistent_declarations() {
        let base = || Machine::builder().states(["a", "b"]).initial("a");
        let bad = [
            ("no initial", Machine::builder().states(["a"])),
            ("undeclared initial", Machine::builder().states(["a"]).initial("z")),
            ("empty name", Machine::builder().states(["a", ""]).initial("a")),
            ("twice", Machine::builder().states(["a", "a"]).initial("a")),
            ("undeclared terminal", base().terminal("z")),
            ("undeclared source", base().transition("z", "a")),
            ("undeclared target", base().transition("a", "z")),
            ("duplicate edge", base().transition("a", "b").transition("a", "b")),
            ("leaves terminal", base().terminal("b").transition("b", "a")),
        ];
        for (why, b) in bad {
            let err = b.build().expect_err(why);
            assert_eq!(err.code().as_str(), "INVALID_INPUT", "{why}");
        }
        assert!(base().terminal("b").transition("a", "b").build().is_ok());
    }

    #[test]
    fn standard_step_is_the_builtin_table_for_every_pair() {
        let m = Machine::standard_step();
        assert_eq!(m.initial(), "pending");
        let names: Vec<_> = StepState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(m.states().collect::<Vec<_>>(), names);
        for from in StepState::ALL {
            assert!(!m.is_terminal(from.as_str()));
            for to in StepState::ALL {
                let r = m.transition(from.as_str(), to.as_str(), &Value::Null);
                let want = if from.can_go(to) { "OK" } else { "INVALID_TRANSITION" };
                assert_eq!(code(r), want, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn every_transition_step_rs_performs_is_allowed() {
        let m = Machine::standard_step();
        let p = RetryPolicy {
            max: 2,
            ..RetryPolicy::default()
        };
        let mut log = Vec::new();
        let start = |rec: &StepRecord, now: f64, log: &mut Vec<step::Transition>| -> StepRecord {
            match step::begin(rec, now, "h", 10.0, &p).expect("begin") {
                Begin::Start(o) | Begin::Exhausted(o) => {
                    log.extend(o.transitions);
                    o.record
                }
                Begin::Memoized(_) => rec.clone(),
            }
        };
        // Every path: run, fail, retry, review, reject, reject to failure, manual
        // retry, lapse, exhaust by lapse, complete, expire, complete via review.
        let mut r = start(&StepRecord::new("s"), 0.0, &mut log);
        let f = step::fail(&r, 1.0, "x".into(), true, &p).expect("fail");
        log.extend(f.outcome.transitions);
        r = start(&f.outcome.record, 2.0, &mut log);
        let o = step::succeed(&r, 3.0, Value::Null, true, None).expect("review");
        log.extend(o.transitions);
        let rej = step::review_reject(&o.record, 4.0, &p).expect("reject");
        log.extend(rej.outcome.transitions);
        r = start(&start(&rej.outcome.record, 5.0, &mut log), 100.0, &mut log); // lapse → exhausted
        r = start(&r, 200.0, &mut log); // manual retry
        r = start(&r, 300.0, &mut log); // lapse → retry
        let o = step::succeed(&r, 301.0, Value::Null, false, Some(5.0)).expect("done");
        log.extend(o.transitions);
        r = start(&o.record, 400.0, &mut log); // expired → new series
        for now in [401.0, 403.0] {
            let o = step::succeed(&r, now, Value::Null, true, None).expect("review");
            log.extend(o.transitions);
            let rej = step::review_reject(&o.record, now + 1.0, &p).expect("reject"); // → pending, then → failed
            log.extend(rej.outcome.transitions);
            r = start(&rej.outcome.record, now + 2.0, &mut log);
        }
        let o = step::succeed(&r, 406.0, Value::Null, true, None).expect("review");
        log.extend(o.transitions);
        let o = step::review_accept(&o.record, 407.0, Value::Null, None).expect("accept");
        log.extend(o.transitions);
        let seen: BTreeSet<_> = log.iter().map(|t| (t.from, t.to)).collect();
        for (from, to) in &seen {
            assert_eq!(
                code(m.transition(from.as_str(), to.as_str(), &Value::Null)),
                "OK",
                "{from} -> {to}"
            );
        }
        let all_legal = StepState::ALL
            .iter()
            .flat_map(|&a| StepState::ALL.map(|b| (a, b)))
            .filter(|(a, b)| a.can_go(*b));
        for edge in all_legal {
            assert!(
                seen.contains(&edge),
                "the walk never exercised {} -> {}",
                edge.0,
                edge.1
            );
        }
    }
}
