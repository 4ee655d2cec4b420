//! The async store: binds the pure core to a [`Storage`] backend.
//!
//! - A scope is loaded once per store (latest snapshot + log tail +
//!   checkpoints) and then served from memory; every [`Scope`] handle of the
//!   same dimensions shares one [`ScopeCell`].
//! - Writes of one scope are serialised by an async lock; no `RefCell` borrow
//!   is ever held across an `.await` (wasm-bindgen #4440).
//! - A transaction claims its seq with `put_if_absent` on its log key; a
//!   writer that loses the race (another tab, worker or isolate) reads the
//!   winner's records, applies them and claims the next seq. Transactions are
//!   blind writes, so rebasing them is always valid.

mod load;
mod machine;
mod merge;
mod registry;
mod registry_events;
mod run;
mod run_control;
mod scope;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use crate::core::codec;
use crate::core::dims::Dims;
use crate::error::{Error, Result};
use crate::storage::{keys, list_all, Storage};

pub use registry::{RunFilter, RunSummary, Stats};
pub use run::{Failure, Run, RunSpec, Sleeper, StepError, StepOptions, TransitionInfo};
pub use scope::{Scope, ScopeView};

/// How a store behaves. Build with [`StoreOptions::with_clock`] or `default()`.
#[derive(Clone)]
pub struct StoreOptions {
    /// Milliseconds since the epoch. Injected so tests can drive TTLs.
    pub clock: Rc<dyn Fn() -> f64>,
    /// Default lease of an in-progress workflow step.
    pub lease_ms: f64,
    /// A new snapshot is written once the log tail since the last one holds
    /// `snapshot_factor` times the last snapshot's bytes (and at least
    /// `snapshot_min_bytes`). Larger factors write less, reopen reads more.
    pub snapshot_factor: f64,
    pub snapshot_min_bytes: usize,
    /// Identifies this store instance as a lease holder; random by default.
    pub holder: String,
}

impl StoreOptions {
    pub fn with_clock(clock: impl Fn() -> f64 + 'static) -> Self {
        StoreOptions { clock: Rc::new(clock), ..Self::default() }
    }
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            clock: Rc::new(system_now),
            lease_ms: 30_000.0,
            snapshot_factor: 4.0,
            snapshot_min_bytes: 64 * 1024,
            holder: random_id(),
        }
    }
}

/// The wall clock: `Date.now()` on wasm, `SystemTime` natively.
pub fn system_now() -> f64 {
    #[cfg(target_arch = "wasm32")]
    {
        js_sys::Date::now()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0)
    }
}

/// 16 random hex digits (called lazily, never at module load: Workers forbid
/// randomness at global scope).
pub fn random_id() -> String {
    let mut b = [0u8; 8];
    // Without an entropy source the id only needs to differ between live
    // holders; fall back to the clock's bits rather than failing.
    if getrandom::fill(&mut b).is_err() {
        b = system_now().to_bits().to_le_bytes();
    }
    keys::hex(&b)
}

/// Snapshot bookkeeping of one loaded scope.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SnapStats {
    pub(crate) base_seq: u64,
    pub(crate) base_bytes: usize,
    pub(crate) tail_bytes: usize,
}

/// One loaded scope, shared by every handle on it.
pub(crate) struct ScopeCell {
    pub(crate) key: String,
    pub(crate) state: StateCell,
    pub(crate) write: futures_util::lock::Mutex<()>,
    pub(crate) snap: Cell<SnapStats>,
    /// Which log keys the state holds, on storage without an atomic create
    /// (`merge`); unused otherwise.
    pub(crate) merge: RefCell<merge::MergeLog>,
    /// Transactions waiting for the write lock, committed together by
    /// whoever holds it (`scope::pipeline`).
    pub(crate) queue: scope::Queue,
    /// The buffer of the log key being created (`scope::pipeline`'s
    /// `commit_alone` and `commit_packed`), kept between commits; taken
    /// while in use.
    pub(crate) log_key: Cell<String>,
}

impl ScopeCell {
    /// Counts `len` more bytes of log since the snapshot.
    pub(crate) fn tail_grew(&self, len: usize) {
        let mut snap = self.snap.get();
        snap.tail_bytes += len;
        self.snap.set(snap);
    }
}

/// A scope's loaded state with a generation number that changes whenever a
/// mutable borrow is taken, so a cache of reads (the JS package's value
/// cache, `src/bindings/js/reads.js`) knows when to drop its entries without
/// asking what changed.
pub(crate) struct StateCell {
    cell: RefCell<crate::core::state::ScopeState>,
    generation: Cell<u32>,
}

impl StateCell {
    fn new(state: crate::core::state::ScopeState) -> Self {
        StateCell { cell: RefCell::new(state), generation: Cell::new(0) }
    }

    pub(crate) fn borrow(&self) -> std::cell::Ref<'_, crate::core::state::ScopeState> {
        self.cell.borrow()
    }

    /// Every mutable borrow counts as a change (wrapping: a cache compares
    /// for equality only, and 2^32 changes between two reads of one cache
    /// entry cannot happen in practice).
    pub(crate) fn borrow_mut(&self) -> std::cell::RefMut<'_, crate::core::state::ScopeState> {
        self.generation.set(self.generation.get().wrapping_add(1));
        self.cell.borrow_mut()
    }

    pub(crate) fn generation(&self) -> u32 {
        self.generation.get()
    }
}

pub(crate) struct StoreInner<S> {
    pub(crate) storage: S,
    pub(crate) opts: StoreOptions,
    scopes: RefCell<HashMap<String, Rc<ScopeCell>>>,
    closed: Cell<bool>,
    /// Names this store instance's log records on storage without an atomic
    /// create (`merge`): random per open, so two isolates never share it even
    /// when they share a `holder`.
    pub(crate) writer: String,
    /// The newest run-registry event per run, on eventually consistent storage.
    pub(crate) events: registry_events::EventCache,
}

/// A Waymark store over a storage backend.
pub struct Store<S: Storage> {
    pub(crate) inner: Rc<StoreInner<S>>,
}

impl<S: Storage> Clone for Store<S> {
    fn clone(&self) -> Self {
        Store { inner: self.inner.clone() }
    }
}

impl<S: Storage> Store<S> {
    /// Opens a store: checks (or writes) the store metadata.
    pub async fn open(storage: S, opts: StoreOptions) -> Result<Self> {
        match storage.get(keys::META).await? {
            Some(bytes) => {
                codec::decode_meta(keys::META, &bytes)?;
            }
            None => {
                let meta = codec::StoreMeta { created_at: (opts.clock)() };
                if let Err(e) = storage.put_if_absent(keys::META, codec::encode_meta(&meta)).await {
                    // Two first opens at once on storage without an atomic
                    // create (Workers KV refuses a second write to a key within
                    // a second): fine if the other one wrote it.
                    if storage.get(keys::META).await?.is_none() {
                        return Err(e);
                    }
                }
            }
        }
        Ok(Store {
            inner: Rc::new(StoreInner {
                storage,
                opts,
                scopes: RefCell::new(HashMap::new()),
                closed: Cell::new(false),
                writer: random_id(),
                events: Default::default(),
            }),
        })
    }

    /// The store's clock.
    pub fn now(&self) -> f64 {
        (self.inner.opts.clock)()
    }

    pub fn options(&self) -> &StoreOptions {
        &self.inner.opts
    }

    pub fn storage(&self) -> &S {
        &self.inner.storage
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.inner.closed.get() {
            return Err(Error::Closed);
        }
        Ok(())
    }

    pub fn is_closed(&self) -> bool {
        self.inner.closed.get()
    }

    /// Closes the store: later calls fail with `CLOSED`. Committed data stays in storage.
    pub fn close(&self) {
        self.inner.closed.set(true);
        self.inner.scopes.borrow_mut().clear();
    }

    /// Opens (loading on first use) the scope with these dimensions.
    pub async fn scope(&self, dims: Dims) -> Result<Scope<S>> {
        self.check_open()?;
        let key = dims.key();
        if let Some(cell) = self.inner.scopes.borrow().get(&key) {
            return Ok(Scope::new(self.clone(), cell.clone()));
        }
        let (state, snap, merge) = if self.inner.storage.capabilities().atomic_create {
            let (state, snap) = load::load_scope(&self.inner.storage, &dims, &key).await?;
            (state, snap, merge::MergeLog::default())
        } else {
            merge::load(&self.inner.storage, &dims, &key).await?
        };
        self.check_open()?;
        let cell = self
            .inner
            .scopes
            .borrow_mut()
            .entry(key.clone())
            .or_insert_with(|| {
                Rc::new(ScopeCell {
                    key,
                    state: StateCell::new(state),
                    write: futures_util::lock::Mutex::new(()),
                    snap: Cell::new(snap),
                    merge: RefCell::new(merge),
                    queue: Default::default(),
                    log_key: Cell::default(),
                })
            })
            .clone();
        Ok(Scope::new(self.clone(), cell))
    }

    /// Number of scopes that hold at least one transaction.
    pub async fn scope_count(&self) -> Result<usize> {
        self.check_open()?;
        Ok(list_all(&self.inner.storage, keys::SCOPES, None).await?.len())
    }

    /// The dimensions of every scope that holds a transaction.
    pub async fn scope_dims(&self) -> Result<Vec<Dims>> {
        self.check_open()?;
        let ks = list_all(&self.inner.storage, keys::SCOPES, None).await?;
        let vals = self.inner.storage.get_many(&ks).await?;
        ks.iter()
            .zip(vals)
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .map(|(k, v)| load::decode_header(k, &v))
            .collect()
    }
}
