//! The `ScopeView` class: a read-only view of a scope's past (`scope.asOf`).

use wasm_bindgen::prelude::*;

use super::convert::{self, At};
use super::dto;
use super::error::to_js;
use crate::error::Result;
use crate::store::ScopeView;

/// A read-only view of a scope at a fixed seq and time, from `scope.asOf`.
/// History is append-only, so a view never changes.
///
/// ```ts
/// const then = scope.asOf({ seq: 12 });
/// then.entity("task:q1");
/// then.value("task:q1", "status");
/// ```
#[wasm_bindgen(js_name = ScopeView)]
pub struct JsScopeView {
    inner: ScopeView,
}

impl From<ScopeView> for JsScopeView {
    fn from(inner: ScopeView) -> Self {
        JsScopeView { inner }
    }
}

type JsResult = std::result::Result<JsValue, JsValue>;

fn name(v: &JsValue, what: &'static str) -> Result<String> {
    convert::string(v, &At::root(what))
}

#[wasm_bindgen(js_class = ScopeView)]
impl JsScopeView {
    /// The seq this view shows.
    #[wasm_bindgen(getter)]
    pub fn seq(&self) -> f64 {
        self.inner.seq() as f64
    }

    /// The time (ms) at which this view judges expiry.
    #[wasm_bindgen(getter)]
    pub fn at(&self) -> f64 {
        self.inner.at()
    }

    /// The entity as it was, or `undefined`.
    ///
    /// ```ts
    /// scope.asOf({ seq: 3 }).entity("task:q1")?.attributes.status;
    /// ```
    #[wasm_bindgen(unchecked_return_type = "Entity | undefined")]
    pub fn entity(&self, #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue) -> JsResult {
        let id = name(&id, "id").map_err(to_js)?;
        Ok(self.inner.entity(&id).map_or(JsValue::UNDEFINED, |e| dto::build(|j| j.entity(&e))))
    }

    /// The value as it was, or `undefined`.
    ///
    /// ```ts
    /// scope.asOf({ seq: 3 }).value("task:q1", "status");
    /// ```
    #[wasm_bindgen(unchecked_return_type = "Json | undefined")]
    pub fn value(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] entity: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] attribute: JsValue,
    ) -> JsResult {
        let (e, a) = name(&entity, "entity").and_then(|e| Ok((e, name(&attribute, "attribute")?))).map_err(to_js)?;
        Ok(dto::opt_value(self.inner.value(&e, &a).as_ref()))
    }

    /// Entities as they were, filtered like `scope.find`, ordered by id.
    ///
    /// ```ts
    /// scope.asOf({ seq: 3 }).find({ type: "ResearchTask" });
    /// ```
    #[wasm_bindgen(unchecked_return_type = "Entity[]")]
    pub fn find(&self, #[wasm_bindgen(unchecked_optional_param_type = "Query")] query: JsValue) -> JsResult {
        let q = convert::query(&query).map_err(to_js)?;
        Ok(dto::build(|j| j.entities(&self.inner.find(&q))))
    }

    /// Every entity as it was, ordered by id.
    ///
    /// ```ts
    /// scope.asOf({ seq: 0 }).entities(); // []
    /// ```
    #[wasm_bindgen(unchecked_return_type = "Entity[]")]
    pub fn entities(&self) -> JsValue {
        dto::build(|j| j.entities(&self.inner.entities()))
    }

    /// The version behind the value as it was, or `undefined`.
    ///
    /// ```ts
    /// scope.asOf({ seq: 3 }).why("task:q1", "status")?.cause;
    /// ```
    #[wasm_bindgen(unchecked_return_type = "FactVersion | undefined")]
    pub fn why(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] entity: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] attribute: JsValue,
    ) -> JsResult {
        let (e, a) = name(&entity, "entity").and_then(|e| Ok((e, name(&attribute, "attribute")?))).map_err(to_js)?;
        Ok(self.inner.why(&e, &a).map_or(JsValue::UNDEFINED, |v| dto::build(|j| j.version(&v))))
    }
}
