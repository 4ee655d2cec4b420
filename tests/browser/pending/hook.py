# PENDING (phase 2, after the "Bindings:" commit): wires indexedDbStorage into the
# bindings. Usage: cp tests/browser/pending/bindings_idb.rs src/bindings/idb.rs &&
#   python3 tests/browser/pending/hook.py .   (adds Backend::Idb, claim, delegation, mod/pub use)
# Adds the IndexedDB variant to the bindings' storage Backend (minimal hook).
import re, sys
root = sys.argv[1]
p = root + '/src/bindings/storage.rs'
s = open(p).read()
if 'Backend::Idb' in s:
    print('already hooked'); sys.exit(0)
s = s.replace('''pub enum Backend {
    Memory(MemoryStorage),
    Js(JsAdapter),
}''', '''pub enum Backend {
    Memory(MemoryStorage),
    Js(JsAdapter),
    /// `indexedDbStorage(dbName)` (super::idb).
    Idb(crate::storage::idb::IdbStorage),
}''', 1)
s = s.replace('''        if let Some(m) = JsMemoryStorage::claim(v) {
            return Ok(Backend::Memory(m));
        }''', '''        if let Some(m) = JsMemoryStorage::claim(v) {
            return Ok(Backend::Memory(m));
        }
        if let Some(i) = super::idb::JsIdbStorage::claim(v) {
            return Ok(Backend::Idb(i));
        }''', 1)
# every `Backend::Js(j) => j.X,` arm gets an Idb twin
s, n = re.subn(r'(\n(\s*)Backend::Js\(j\) => j\.([^\n]*?),?\n)', lambda m: m.group(1) + m.group(2) + 'Backend::Idb(i) => i.' + m.group(3).rstrip(',') + ',\n', s)
print('arms added:', n)
# checkpoints are strict on IndexedDB: delegate put_if_absent_durable
s = s.replace('''    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        match self {''', '''    async fn put_if_absent_durable(&self, key: &str, value: Vec<u8>) -> Result<bool> {
        match self {
            Backend::Idb(i) => i.put_if_absent_durable(key, value).await,
            other => other.put_if_absent(key, value).await,
        }
    }
    async fn append_after(
        &self,
        prefix: &str,
        after: &str,
        build: &mut dyn FnMut(Vec<(String, Vec<u8>)>) -> Result<Vec<(String, Vec<u8>)>>,
    ) -> Result<bool> {
        match self {
            Backend::Idb(i) => i.append_after(prefix, after, build).await,
            _ => Ok(false),
        }
    }
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        match self {''', 1)
open(p, 'w').write(s)
p = root + '/src/bindings/mod.rs'
s = open(p).read()
if 'pub mod idb;' not in s:
    s = s.replace('pub mod error;\n', 'pub mod error;\npub mod idb;\n', 1)
    s = s.replace('pub use storage::', 'pub use idb::{indexed_db_storage, JsIdbStorage};\npub use storage::', 1)
open(p, 'w').write(s)
