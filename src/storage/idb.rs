//! The IndexedDB adapter (wasm32 only): browser pages, Web Workers and
//! extension service workers. On `web-sys` directly, with the small request
//! and transaction futures of idb/req.rs. This file holds the handle (open,
//! close, options, stats); the `Storage` methods are in idb/ops.rs.
//!
//! ```ignore
//! let storage = IdbStorage::open("my-app", IdbOptions::default()).await?;
//! let store = Store::open(storage.clone(), StoreOptions::default()).await?;
//! let _sub = storage.subscribe(|notice| { /* another tab wrote notice.keys */ });
//! ```
//!
//! # Layout
//! One object store, `kv`, with out-of-line keys. Schema version
//! [`SCHEMA_VERSION`]; the upgrade handler creates what is missing, so every
//! later version adds a step there. Values are `Uint8Array`s.
//!
//! **Keys are binary**: the UTF-8 bytes of the key, stored as an IndexedDB
//! binary key. IndexedDB compares *string* keys by UTF-16 code units, which
//! disagrees with the byte order of the [`Storage`] contract for characters
//! above U+FFFF against U+E000..U+FFFF (`"🦀" < "\u{FF01}"` in UTF-16, `>` in
//! UTF-8). Binary keys compare byte by byte, so `list` order is exactly the
//! contract's, and a prefix range is `[prefix, prefix ++ 0xFF)` (0xFF never
//! occurs in UTF-8).
//!
//! # Transactions (PLATFORMS.md "IndexedDB")
//! Every write — `put`, `delete`, `batch`, `put_if_absent` — is encoded into
//! JS values *before* any transaction opens, then queued. One writer task per
//! connection drains the queue: what is queued when it starts (calls made
//! in the same turn, plus everything that arrived while the previous
//! transaction was committing), up to a few hundred writes, goes into **one**
//! readwrite transaction that holds only IndexedDB requests, then `commit()`.
//! Nothing else is awaited inside it, so it cannot auto-commit early. This is
//! group commit. A larger burst goes in several such transactions, one after
//! another: while IndexedDB stores one, the scopes apply and answer the one
//! before (idb/group.rs, `MAX_GROUP_WRITES`).
//!
//! A group's transaction first goes out *optimistically*: every create is an
//! `add`, which fails when its key exists, so all of the group's requests are
//! issued at once and the main thread need not come back before IndexedDB
//! has written them. A create that finds its key taken (another tab won a
//! seq or a step claim) aborts that transaction with `ConstraintError`,
//! nothing of it written, and the group is redone with existence probes
//! first (`getKey`s; one `getAllKeys` for a run of ascending keys), then the
//! puts and deletes it decides on.
//!
//! Group semantics, per member, in arrival order:
//! - a `batch` is applied whole, in order (later members see its writes);
//! - a `put_if_absent` answers for itself: `false` when the key existed when
//!   the transaction began or was written by an earlier member of the group;
//! - the group commits or aborts as one IndexedDB transaction, so no member
//!   is ever half-applied. If the group aborts for any reason other than a
//!   lost connection, nothing of it was applied and each member is retried
//!   *alone*, in order, in its own transaction: a member fails only if it
//!   fails by itself (a quota error caused by one large batch does not fail
//!   its neighbours). No member's answer depends on a member that failed.
//! - Durability: the group is `strict` if any member asked for it (or the
//!   storage was opened strict); strengthening a relaxed member is harmless.
//! - `create_all` (the store's pipelining: a scope's queued transactions, one
//!   log record each) is one create member of several keys, created in order
//!   while absent.
//!
//! Readwrite transactions over one object store run one after another across
//! tabs and workers, so the existence probe and the create of `put_if_absent`
//! are atomic across contexts: this is what makes Waymark's seq claims and
//! step claims safe with several tabs open.
//!
//! `append_after` (the store's claim after losing a seq race) is the one
//! write that runs outside the queue, in its own readwrite transaction: it
//! reads the log tail, runs the store's synchronous `build` on it and `add`s
//! the record, so a writer racing a faster one cannot starve (idb/append.rs).
//!
//! # Connections (idb/conn.rs)
//! - `versionchange` (another context upgrades or deletes the database) and
//!   `close` (the browser dropped the connection) close ours; the next call
//!   reopens.
//! - An open blocked by another context that holds an older version open is a
//!   `STORAGE` error saying so (the pending open is closed when it resolves).
//! - A lost connection ("Connection to Indexed Database server lost",
//!   `UnknownError`, or a connection found closing) is reopened **once** and
//!   the call retried. A retried create whose key now holds exactly the bytes
//!   it meant to write counts as created: the lost transaction had committed.
//! - `QuotaExceededError` and every abort become `Error::Storage` with a
//!   message naming the database, the operation and the cause.
//!
//! # Change notification across contexts
//! After each committed write transaction the storage posts the written keys
//! on a `BroadcastChannel` named `waymark:idb:<db name>`. [`IdbStorage::subscribe`]
//! delivers the notices of *other* `IdbStorage` instances on the same database
//! (other tabs, workers, or other opens in this context), so a page can call
//! `scope.refresh()` for the scopes in [`ChangeNotice::scopes`]. Notices are a
//! hint: a context that was asleep misses them and simply refreshes on use.

mod append;
mod conn;
mod group;
mod notify;
mod ops;
mod req;
mod sync;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use web_sys::IdbObjectStore;

use crate::error::{Error, Result};

pub use notify::{ChangeNotice, Subscription};

use conn::Conn;
use group::{Member, Work};
use req::{req, Tx};

/// The object-store schema version this code opens and upgrades to.
pub const SCHEMA_VERSION: u32 = 1;
/// The one object store.
pub(crate) const STORE: &str = "kv";

/// How far a committed write is pushed before its promise resolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// IndexedDB `durability: "relaxed"`: committed once handed to the OS. A
    /// power cut may lose a whole recent transaction, never part of one.
    #[default]
    Relaxed,
    /// IndexedDB `durability: "strict"`: committed once flushed to disk.
    Strict,
}

/// Options of [`IdbStorage::open`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IdbOptions {
    /// The durability of every write transaction. Checkpoints are always
    /// strict ([`Storage::put_if_absent_durable`]).
    pub durability: Durability,
}

/// Counters, for tests and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IdbStats {
    /// Readwrite transactions committed.
    pub write_transactions: u64,
    /// Write calls (`put`, `delete`, `batch`, `put_if_absent`) answered by them.
    pub writes: u64,
    /// Connections opened after the first one (versionchange, lost connection).
    pub reopens: u64,
    /// Groups that aborted and were retried member by member.
    pub split_groups: u64,
    /// Groups whose optimistic `add`s found a key taken and that were redone
    /// with probes (a lost seq race or step claim).
    pub taken_keys: u64,
    /// `append_after` transactions (seq claims after a lost race).
    pub appends: u64,
}

/// Why one attempt failed: a lost connection is retried once on a new one.
#[derive(Debug)]
pub(crate) enum Fail {
    /// `at_commit`: the connection went while committing, so the transaction
    /// may have committed after all (the retry then recognises its own creates).
    Lost { msg: String, at_commit: bool },
    Other(Error),
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::Other(e)
    }
}

pub(crate) struct Inner {
    name: String,
    version: u32,
    opts: IdbOptions,
    conn: RefCell<Option<Conn>>,
    /// A connection was opened once already (later opens count as reopens).
    opened: Cell<bool>,
    opening: futures_util::lock::Mutex<()>,
    queue: RefCell<VecDeque<Member>>,
    flushing: Cell<bool>,
    closed: Cell<bool>,
    stats: Cell<IdbStats>,
    notifier: notify::Notifier,
    /// Test hook: a write to this key makes its transaction fail mid-way.
    fail_key: RefCell<Option<String>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(c) = self.conn.get_mut().take() {
            c.close();
        }
    }
}

/// A [`Storage`] on one IndexedDB database. Clones share the connection,
/// the write queue and the subscriptions.
#[derive(Clone)]
pub struct IdbStorage {
    inner: Rc<Inner>,
}

impl std::fmt::Debug for IdbStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdbStorage").field("name", &self.inner.name).field("opts", &self.inner.opts).finish()
    }
}

impl IdbStorage {
    /// Opens (creating or upgrading) the database `name`.
    pub async fn open(name: &str, opts: IdbOptions) -> Result<IdbStorage> {
        Self::open_at_version(name, opts, SCHEMA_VERSION).await
    }

    /// A storage on `name` that connects on first use (so a synchronous JS
    /// factory can hand it out; the first call reports open errors).
    pub fn new(name: &str, opts: IdbOptions) -> IdbStorage {
        Self::at_version(name, opts, SCHEMA_VERSION)
    }

    /// Opens at a given schema version: tests use it to play a newer Waymark
    /// upgrading the database while this one has it open.
    #[doc(hidden)]
    pub async fn open_at_version(name: &str, opts: IdbOptions, version: u32) -> Result<IdbStorage> {
        let s = Self::at_version(name, opts, version);
        s.connection().await?;
        Ok(s)
    }

    fn at_version(name: &str, opts: IdbOptions, version: u32) -> IdbStorage {
        let inner = Rc::new(Inner {
            name: name.to_string(),
            version,
            opts,
            conn: RefCell::new(None),
            opened: Cell::new(false),
            opening: futures_util::lock::Mutex::new(()),
            queue: RefCell::new(VecDeque::new()),
            flushing: Cell::new(false),
            closed: Cell::new(false),
            stats: Cell::new(IdbStats::default()),
            notifier: notify::Notifier::new(name),
            fail_key: RefCell::new(None),
        });
        IdbStorage { inner }
    }

    /// Deletes a database (tests and "forget everything" buttons). Open
    /// Waymark connections close themselves on the resulting `versionchange`.
    pub async fn delete_database(name: &str) -> Result<()> {
        let fail = |m: String| Error::Storage(format!("IndexedDB {name:?}: deleting the database failed: {m}"));
        let factory = conn::factory().map_err(|(_, m)| fail(m))?;
        let req = req(factory.delete_database(name).map(Into::into)).map_err(|e| fail(conn::js_parts(&e).1))?;
        req.result().await.map(drop).map_err(|e| fail(conn::js_parts(&e).1))
    }

    /// The database name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn options(&self) -> IdbOptions {
        self.inner.opts
    }

    pub fn stats(&self) -> IdbStats {
        self.inner.stats.get()
    }

    /// Closes the connection and the notification channel; later calls fail
    /// with `STORAGE`. Queued writes still complete first.
    pub fn close(&self) {
        self.inner.closed.set(true);
        if !self.inner.flushing.get() {
            if let Some(c) = self.inner.conn.borrow_mut().take() {
                c.close();
            }
        }
        self.inner.notifier.close();
    }

    /// Calls `f` with the keys every other `IdbStorage` on this database
    /// (other tabs, workers, or opens) commits. Dropping the returned
    /// [`Subscription`] unsubscribes.
    pub fn subscribe(&self, f: impl Fn(&ChangeNotice) + 'static) -> Subscription {
        self.inner.notifier.subscribe(Rc::new(f))
    }

    /// Test hook: every later write transaction that writes `key` fails after
    /// issuing its other requests (an `add` on an existing key aborts it).
    #[doc(hidden)]
    pub fn fail_writes_to(&self, key: Option<&str>) {
        *self.inner.fail_key.borrow_mut() = key.map(str::to_string);
    }

    /// Test hook: closes the connection behind the storage's back, the way a
    /// browser drops it, so the next call meets a closing connection.
    #[doc(hidden)]
    pub fn simulate_connection_loss(&self) {
        if let Some(c) = self.inner.conn.borrow().as_ref() {
            c.db.close();
        }
    }

    /// The `Error` an IndexedDB failure named `dom_name` becomes (tests check
    /// the messages of failures they cannot provoke, like a full disk).
    #[doc(hidden)]
    pub fn error_for(db: &str, what: &str, dom_name: &str, message: &str) -> Error {
        match conn::classify_parts(db, what, dom_name, message) {
            Fail::Lost { msg, .. } => Error::Storage(msg),
            Fail::Other(e) => e,
        }
    }

    fn err(&self, what: &str, msg: impl std::fmt::Display) -> Error {
        Error::Storage(format!("IndexedDB {:?}: {what} failed: {msg}", self.inner.name))
    }

    fn bump(&self, f: impl FnOnce(&mut IdbStats)) {
        let mut s = self.inner.stats.get();
        f(&mut s);
        self.inner.stats.set(s);
    }

    /// Queues a write and waits for its group to commit.
    async fn enqueue(&self, work: Work, strict: bool) -> Result<usize> {
        if self.inner.closed.get() {
            return Err(self.err("writing", "the storage was closed"));
        }
        let (tx, rx) = sync::oneshot();
        self.inner.queue.borrow_mut().push_back(Member { work, strict, reply: tx });
        if !self.inner.flushing.replace(true) {
            let me = self.clone();
            wasm_bindgen_futures::spawn_local(async move { me.flush_loop().await });
        }
        rx.await
    }

    /// Runs `f` in a readonly transaction; the transaction is aborted when
    /// `f` is done (nothing is left to read in it).
    async fn read_tx<T>(&self, what: &str, f: impl AsyncFn(&IdbObjectStore) -> std::result::Result<T, Fail>) -> Result<T> {
        self.with_retry(async |db, _| {
            let tx = Tx::read(db).map_err(|e| conn::classify_js(&self.inner.name, what, &e))?;
            f(&tx.store).await
        })
        .await
    }
}
