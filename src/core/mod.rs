//! The pure, synchronous, sans-IO engine: values, scopes, transactions,
//! state with history, time views, diffs, checkpoints and the stored format.
//! Nothing here touches storage, a clock, randomness, wasm or JS: time and ids
//! are passed in.

mod bulk;
pub mod codec;
pub mod diff;
pub mod dims;
mod hist;
mod names;
pub mod read;
pub mod sort;
pub mod state;
mod touched;
pub mod tx;
pub mod value;
pub mod wire;
pub mod workflow;

#[cfg(test)]
mod tests;
