//! The TypeScript API (wasm32 only): the only code that says `wasm_bindgen`.
//!
//! One file per exported class — [`store`] (`open`, `Store`), [`scope`]
//! (`Scope`), [`view`] (`ScopeView`), [`memory`] (`memoryStorage`,
//! `MemoryStorage`), [`storage`] (JS `StorageAdapter`s) — with every JS ⇄
//! Rust conversion in [`convert`] (input) and [`dto`] (output), and errors in
//! [`error`].
//!
//! Concurrency (wasm-bindgen #4440, PLATFORMS.md "Cloudflare Workers"): every
//! exported class holds only `Rc` handles. Async methods are plain `fn`s that
//! validate and copy their arguments synchronously, clone the handle and return
//! `future_to_promise(...)`, so no wasm-bindgen borrow of `self` (and no
//! `RefCell` borrow) is ever held across an `.await`. Overlapping calls from JS
//! queue on the scope's write lock in call order.
//!
//! Nothing runs at module load: no `start` function, no randomness or clock
//! reads until `open()` is called (Workers forbid them at global scope).

pub mod adapter;
pub mod convert;
pub mod dto;
pub mod error;
pub(crate) mod fast;
#[cfg(feature = "edge")]
pub mod durable_object;
#[cfg(feature = "idb")]
pub mod idb;
#[cfg(feature = "edge")]
pub mod kv;
pub mod memory;
pub mod registry;
pub mod run;
pub mod scope;
pub mod storage;
pub mod store;
pub mod view;

mod typings;
mod unavailable;

#[cfg(feature = "edge")]
pub use durable_object::{durable_object_storage, JsDoStorage};
#[cfg(feature = "idb")]
pub use idb::{indexed_db_storage, JsIdbStorage};
#[cfg(feature = "edge")]
pub use kv::{kv_storage, JsKvStorage};
pub use memory::{memory_storage, JsMemoryStorage};
pub use run::JsRun;
pub use scope::JsScope;
pub use storage::{Backend, JsAdapter};
pub use store::{open, JsStore};
pub use view::JsScopeView;
