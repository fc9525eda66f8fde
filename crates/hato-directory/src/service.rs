//! The directory as the server uses it: a per-tenant [`DirectoryIndex`] cached until the store's
//! directory version changes.
//!
//! Rebuilding a tenant's index reads its whole directory (183 ms for 100,000 recipients), so when
//! many sessions need a stale index at the same moment, one of them rebuilds it and the others
//! wait for that build (single flight) instead of each reading the directory again.

use crate::index::DirectoryIndex;
use hato_core::directory::{DomainEntry, TenantId};
use hato_store::{GenerationCache, Store, StoreError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

pub struct Directory {
    store: Arc<dyn Store>,
    cache: Mutex<HashMap<TenantId, Arc<DirectoryIndex>>>,
    /// One lock per tenant, held while that tenant's index is rebuilt.
    builds: Mutex<HashMap<TenantId, Arc<Mutex<()>>>>,
    rebuilt: AtomicU64,
    /// The store's policy generation at which each tenant's cached index was last confirmed
    /// current (read before its version was): while the generation stays there, no directory
    /// change has committed since (every one moves it), and the version need not be read again.
    confirmed: Mutex<HashMap<TenantId, u64>>,
    /// Accepted domains by name as the store answered under its current policy generation
    /// (every domain change moves it: `bump_directory`), so that a RCPT decides from memory.
    /// Bounded: an outside sender chooses the recipient domains looked up.
    domains: GenerationCache<String, Option<DomainEntry>>,
}

/// How many recipient domains' answers are kept (when full the cache starts again empty).
const DOMAIN_CACHE: usize = 4096;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The maps stay consistent whatever a panicking holder was doing: every change is one insert.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Directory {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Directory {
            store,
            cache: Mutex::new(HashMap::new()),
            builds: Mutex::new(HashMap::new()),
            rebuilt: AtomicU64::new(0),
            confirmed: Mutex::new(HashMap::new()),
            domains: GenerationCache::new(DOMAIN_CACHE),
        }
    }

    /// The accepted domain `domain`, as [`hato_store::TenantStore::domain_entry`] answers it now.
    /// Blocks on a miss (a store read): call it from blocking code.
    pub fn domain_entry(&self, domain: &str) -> Result<Option<DomainEntry>, StoreError> {
        // Read before the store is: a change committed meanwhile moves it past this one, and
        // the answer is kept under the older generation, never served.
        let generation = self.store.content_policy_generation();
        if let Some(entry) = self.domains.get(generation, &domain.to_string()) {
            return Ok(entry);
        }
        let entry = self.store.domain_entry(domain)?;
        self.domains
            .insert(generation, domain.to_string(), entry.clone());
        Ok(entry)
    }

    /// [`Directory::domain_entry`] if it is known without a store read.
    pub fn cached_domain_entry(&self, domain: &str) -> Option<Option<DomainEntry>> {
        self.domains
            .get(self.store.content_policy_generation(), &domain.to_string())
    }

    /// [`Directory::index`] if it is known current without a store read.
    pub fn cached_index(&self, tenant: TenantId) -> Option<Arc<DirectoryIndex>> {
        let generation = self.store.content_policy_generation()?;
        if lock(&self.confirmed).get(&tenant) != Some(&generation) {
            return None;
        }
        lock(&self.cache).get(&tenant).cloned()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// How many tenant indexes were built since start (a figure for operators and tests).
    pub fn rebuilds(&self) -> u64 {
        self.rebuilt.load(Ordering::Relaxed)
    }

    /// The cached index of `tenant` if it is at least as new as `version`.
    fn cached(&self, tenant: TenantId, version: i64) -> Option<Arc<DirectoryIndex>> {
        lock(&self.cache)
            .get(&tenant)
            .filter(|ix| ix.version() >= version)
            .cloned()
    }

    /// The tenant's directory as it is now. Blocks (store reads, perhaps a rebuild): call it
    /// from blocking code, not from an async worker.
    pub fn index(&self, tenant: TenantId) -> Result<Arc<DirectoryIndex>, StoreError> {
        if let Some(ix) = self.cached_index(tenant) {
            return Ok(ix);
        }
        let generation = self.store.content_policy_generation();
        let ix = self.index_at(tenant)?;
        if let Some(g) = generation {
            let mut confirmed = lock(&self.confirmed);
            if confirmed.get(&tenant).is_none_or(|c| *c < g) {
                confirmed.insert(tenant, g);
            }
        }
        Ok(ix)
    }

    /// [`Directory::index`] by the store's directory version.
    fn index_at(&self, tenant: TenantId) -> Result<Arc<DirectoryIndex>, StoreError> {
        let version = self.store.directory_version(tenant)?;
        if let Some(ix) = self.cached(tenant, version) {
            return Ok(ix);
        }
        let gate = lock(&self.builds).entry(tenant).or_default().clone();
        let _building = lock(&gate);
        // Whoever held the gate before us may have built what we need.
        if let Some(ix) = self.cached(tenant, version) {
            return Ok(ix);
        }
        let ix = Arc::new(DirectoryIndex::new(self.store.tenant_directory(tenant)?));
        self.rebuilt.fetch_add(1, Ordering::Relaxed);
        let mut cache = lock(&self.cache);
        // Never replace a newer index with an older one.
        if cache
            .get(&tenant)
            .is_none_or(|current| current.version() <= ix.version())
        {
            cache.insert(tenant, ix.clone());
        }
        Ok(ix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hato_core::directory::{DomainType, MailboxAttributes, MailboxType};
    use hato_store::{NewMailbox, SqliteStore};

    /// Many threads need a stale index at the same moment: it is built once, and they all get it.
    #[test]
    fn a_stale_index_is_rebuilt_once_for_many_callers() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let t = store.create_tenant("contoso").wait().unwrap();
        store
            .add_domain("contoso.test", t.id, DomainType::Authoritative)
            .wait()
            .unwrap();
        // Enough mailboxes that a build takes a while, so that the callers overlap.
        let created: Vec<_> = (0..1500)
            .map(|i| {
                store.create_mailbox(NewMailbox {
                    tenant_id: t.id,
                    address: format!("user{i}@contoso.test"),
                    display_name: format!("User {i}"),
                    mailbox_type: MailboxType::User,
                    aliases: vec![],
                    attributes: MailboxAttributes::default(),
                    quota_bytes: 1 << 20,
                })
            })
            .collect();
        for c in created {
            c.wait().unwrap();
        }
        let directory = Arc::new(Directory::new(store.clone()));
        for round in 1..=3u64 {
            let barrier = Arc::new(std::sync::Barrier::new(16));
            let threads: Vec<_> = (0..16)
                .map(|_| {
                    let (directory, barrier) = (directory.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        directory.index(t.id).unwrap()
                    })
                })
                .collect();
            let indexes: Vec<_> = threads.into_iter().map(|h| h.join().unwrap()).collect();
            assert_eq!(directory.rebuilds(), round, "round {round}");
            assert!(indexes.iter().all(|ix| Arc::ptr_eq(ix, &indexes[0])));
            // A change makes the cached index stale for the next round.
            store
                .create_mailbox(NewMailbox {
                    tenant_id: t.id,
                    address: format!("new{round}@contoso.test"),
                    display_name: String::new(),
                    mailbox_type: MailboxType::User,
                    aliases: vec![],
                    attributes: MailboxAttributes::default(),
                    quota_bytes: 1 << 20,
                })
                .wait()
                .unwrap();
        }
    }
}
