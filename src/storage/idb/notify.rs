//! Cross-context change notification over a `BroadcastChannel` named
//! `waymark:idb:<db name>` (available in windows, dedicated, shared and
//! service workers — PLATFORMS.md "Browser extensions").
//!
//! Message: `{ v: 1, keys: string[] | null }`; `null` means "more keys than
//! are worth listing: refresh everything". A channel object never receives
//! its own messages, so subscribers hear only other `IdbStorage` instances.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use js_sys::{Array, Object, Reflect};
use wasm_bindgen::prelude::*;

/// Above this many keys a notice says "everything" instead of listing them.
const MAX_LISTED_KEYS: usize = 4096;

/// Keys another context committed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChangeNotice {
    /// The written (put or deleted) keys; empty when `all` is set.
    pub keys: Vec<String>,
    /// Too many keys were written to list: treat everything as changed.
    pub all: bool,
}

impl ChangeNotice {
    /// The scope digests (`Dims::key()`) whose log, snapshots, checkpoints or
    /// header the writes touched, sorted and deduplicated.
    pub fn scopes(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .keys
            .iter()
            .filter_map(|k| {
                let rest = k.strip_prefix("s/").or_else(|| k.strip_prefix(crate::storage::keys::SCOPES))?;
                Some(rest.split('/').next().unwrap_or(rest).to_string())
            })
            .collect();
        crate::core::sort::sort_dedup(&mut out);
        out
    }

    /// Whether the workflow run registry changed.
    pub fn touches_runs(&self) -> bool {
        self.all || self.keys.iter().any(|k| k.starts_with("r/"))
    }
}

type Callback = Rc<dyn Fn(&ChangeNotice)>;
type Subscribers = RefCell<Vec<(u64, Callback)>>;

/// The `message` listener of a [`Notifier`]'s channel.
type Listener = Closure<dyn FnMut(web_sys::MessageEvent)>;

pub(crate) struct Notifier {
    channel: Option<web_sys::BroadcastChannel>,
    subs: Rc<Subscribers>,
    next_id: Cell<u64>,
    listening: RefCell<Option<Listener>>,
}

/// A live subscription; dropping it unsubscribes.
pub struct Subscription {
    subs: Weak<Subscribers>,
    id: u64,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(subs) = self.subs.upgrade() {
            subs.borrow_mut().retain(|(id, _)| *id != self.id);
        }
    }
}

impl Notifier {
    pub(crate) fn new(db_name: &str) -> Self {
        // Without BroadcastChannel (very old engines) notices are simply off.
        let channel = web_sys::BroadcastChannel::new(&format!("waymark:idb:{db_name}")).ok();
        Notifier { channel, subs: Rc::new(RefCell::new(Vec::new())), next_id: Cell::new(0), listening: RefCell::new(None) }
    }

    pub(crate) fn subscribe(&self, f: Callback) -> Subscription {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        self.subs.borrow_mut().push((id, f));
        let listening = self.listening.borrow().is_some();
        if let (Some(ch), false) = (&self.channel, listening) {
            let subs = Rc::downgrade(&self.subs);
            let on_message = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
                let Some(subs) = subs.upgrade() else { return };
                let Some(notice) = decode(&e.data()) else { return };
                // Call outside the borrow: a callback may subscribe or unsubscribe.
                let callbacks: Vec<Callback> = subs.borrow().iter().map(|(_, f)| f.clone()).collect();
                for f in callbacks {
                    f(&notice);
                }
            });
            ch.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
            *self.listening.borrow_mut() = Some(on_message);
        }
        Subscription { subs: Rc::downgrade(&self.subs), id }
    }

    /// Announces committed keys. Never fails: notices are a hint.
    pub(crate) fn post(&self, keys: &[&str]) {
        let Some(ch) = &self.channel else { return };
        if keys.is_empty() {
            return;
        }
        let msg = Object::new();
        let _ = Reflect::set(&msg, &"v".into(), &1.into());
        let list: JsValue = if keys.len() > MAX_LISTED_KEYS {
            JsValue::NULL
        } else {
            keys.iter().map(|k| JsValue::from_str(k)).collect::<Array>().into()
        };
        let _ = Reflect::set(&msg, &"keys".into(), &list);
        let _ = ch.post_message(&msg);
    }

    pub(crate) fn close(&self) {
        if let Some(ch) = &self.channel {
            ch.set_onmessage(None);
            ch.close();
        }
        if let Some(cb) = self.listening.borrow_mut().take() {
            wasm_bindgen_futures::spawn_local(async move { drop(cb) });
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.close();
    }
}

fn decode(data: &JsValue) -> Option<ChangeNotice> {
    if Reflect::get(data, &"v".into()).ok()?.as_f64()? != 1.0 {
        return None;
    }
    let keys = Reflect::get(data, &"keys".into()).ok()?;
    if keys.is_null() {
        return Some(ChangeNotice { keys: Vec::new(), all: true });
    }
    let arr: Array = keys.dyn_into().ok()?;
    Some(ChangeNotice { keys: arr.iter().filter_map(|k| k.as_string()).collect(), all: false })
}
