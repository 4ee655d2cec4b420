//! Either Cloudflare adapter behind one type ([`CloudflareStorage`]), so the
//! bindings and the workerd tests add one storage variant, not two.

use super::durable_object::DoStorage;
use super::kv::KvStorage;
use super::{BatchOp, Capabilities, Storage};
use crate::error::Result;

/// Workers KV or Durable Object storage.
#[derive(Clone, Debug)]
pub enum CloudflareStorage {
    Kv(KvStorage),
    Do(DoStorage),
}

macro_rules! both {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            CloudflareStorage::Kv($s) => $e,
            CloudflareStorage::Do($s) => $e,
        }
    };
}

impl Storage for CloudflareStorage {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        both!(self, s => s.get(key).await)
    }
    async fn put(&self, key: &str, value: Vec<u8>) -> Result<()> {
        both!(self, s => s.put(key, value).await)
    }
    async fn delete(&self, key: &str) -> Result<()> {
        both!(self, s => s.delete(key).await)
    }
    async fn list(&self, prefix: &str, after: Option<&str>, limit: Option<usize>) -> Result<Vec<String>> {
        both!(self, s => s.list(prefix, after, limit).await)
    }
    async fn batch(&self, ops: Vec<BatchOp>) -> Result<()> {
        both!(self, s => s.batch(ops).await)
    }
    async fn put_if_absent(&self, key: &str, value: Vec<u8>) -> Result<bool> {
        both!(self, s => s.put_if_absent(key, value).await)
    }
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        both!(self, s => s.get_many(keys).await)
    }
    async fn put_meta(&self, key: &str, value: Vec<u8>, meta: &str) -> Result<()> {
        both!(self, s => s.put_meta(key, value, meta).await)
    }
    async fn list_meta(&self, prefix: &str, after: Option<&str>, limit: Option<usize>) -> Result<Vec<(String, Option<String>)>> {
        both!(self, s => s.list_meta(prefix, after, limit).await)
    }
    fn capabilities(&self) -> Capabilities {
        both!(self, s => s.capabilities())
    }
}
