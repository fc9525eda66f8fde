//! The directory as the server uses it: a per-tenant [`DirectoryIndex`] cached until the store's
//! directory version changes.

use crate::index::DirectoryIndex;
use hato_core::directory::TenantId;
use hato_store::{Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub struct Directory {
    store: Arc<dyn Store>,
    cache: Mutex<HashMap<TenantId, Arc<DirectoryIndex>>>,
}

impl Directory {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Directory {
            store,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The tenant's directory as it is now.
    pub fn index(&self, tenant: TenantId) -> Result<Arc<DirectoryIndex>, StoreError> {
        let version = self.store.directory_version(tenant)?;
        if let Ok(cache) = self.cache.lock()
            && let Some(ix) = cache.get(&tenant)
            && ix.version() == version
        {
            return Ok(ix.clone());
        }
        let ix = Arc::new(DirectoryIndex::new(self.store.tenant_directory(tenant)?));
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(tenant, ix.clone());
        }
        Ok(ix)
    }
}
