//! The pure, synchronous, sans-IO engine: values, scopes, transactions,
//! state with history, time views, diffs, checkpoints and the stored format.
//! Nothing here touches storage, a clock, randomness, wasm or JS: time and ids
//! are passed in.
//!
//! Used through the `waymark` crate, which re-exports it as `waymark::core`
//! (and its error type as `waymark::error`). It is a crate of its own only so
//! that the release build can optimise this hot code for speed while the rest
//! of the wasm is optimised for size (the root `Cargo.toml`).

mod bulk;
pub mod error;
pub mod codec;
pub mod diff;
pub mod dims;
#[doc(hidden)]
pub mod packed;
mod hist;
mod names;
pub mod read;
pub mod sort;
pub mod state;
mod touched;
pub mod tx;
pub mod value;
pub mod wire;

#[cfg(test)]
mod tests;
