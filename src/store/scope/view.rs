//! `ScopeView`: a read-only view of a scope at a fixed seq and time.

use std::rc::Rc;

use crate::core::read::{Entity, FactVersion, Query, View};
use crate::core::value::Value;

use super::super::ScopeCell;

/// A read-only view of a scope at a fixed seq and time (`scope.asOf(...)`).
/// History is append-only, so the view never changes.
pub struct ScopeView {
    pub(super) cell: Rc<ScopeCell>,
    pub(super) seq: u64,
    pub(super) now: f64,
}

impl ScopeView {
    fn read<R>(&self, f: impl FnOnce(View<'_>) -> R) -> R {
        let st = self.cell.state.borrow();
        f(st.view_at(self.seq, self.now))
    }

    pub fn seq(&self) -> u64 {
        self.seq
    }

    pub fn at(&self) -> f64 {
        self.now
    }

    pub fn entity(&self, id: &str) -> Option<Entity> {
        self.read(|v| v.entity(id))
    }

    pub fn value(&self, entity: &str, attr: &str) -> Option<Value> {
        self.read(|v| v.value(entity, attr))
    }

    pub fn find(&self, q: &Query) -> Vec<Entity> {
        self.read(|v| v.find(q))
    }

    pub fn entities(&self) -> Vec<Entity> {
        self.read(|v| v.entities())
    }

    pub fn why(&self, entity: &str, attr: &str) -> Option<FactVersion> {
        self.read(|v| v.why(entity, attr))
    }
}
