//! # Waymark
//!
//! Durable state for AI agents that run outside a server — in browsers,
//! extensions and on Cloudflare Workers. A scoped entity-attribute fact store
//! with provenance, time-to-live, full history, as-of reads, checkpoints,
//! diffs, restore and fork; durable workflows on top.
//!
//! The crate is layered:
//! - [`core`]: the pure, synchronous engine (no IO, no clock, no randomness);
//! - [`storage`]: the small async [`storage::Storage`] trait, the key layout,
//!   the in-memory adapter and the conformance suite every adapter runs;
//! - [`store`]: the async store that binds the two (loading, committing,
//!   snapshots, concurrency);
//! - `bindings` (wasm32 only): the TypeScript API.

/// The engine (`crates/core`, `waymark-core`) and, as `core::workflow`, the
/// workflow state machine (`crates/workflow`, `waymark-workflow`): separate
/// crates so that the release build optimises the engine for speed and the
/// rest for size (`Cargo.toml`).
pub mod core {
    pub use waymark_core::*;
    pub use waymark_workflow as workflow;
}
pub use waymark_core::error;
pub mod storage;
pub mod store;

#[cfg(target_arch = "wasm32")]
pub mod bindings;

pub use crate::core::dims::Dims;
pub use crate::core::diff::Change;
pub use crate::core::read::{AsOf, Entity, FactVersion, Query};
pub use crate::core::state::{Checkpoint, Point};
pub use crate::core::tx::{Expiry, Op, Provenance, TxInfo};
pub use crate::core::value::Value;
pub use crate::error::{Error, ErrorCode, Result};
