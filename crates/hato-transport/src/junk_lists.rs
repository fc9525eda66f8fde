//! Mailboxes' safe and blocked senders as the spam stage reads them: an in-memory cache of
//! each recipient mailbox's lists (`hato_protection::spam::junk::UserJunkLists`, sets), kept
//! while the store's policy generation stays — every change of a junk email configuration
//! moves it (`JunkEmailStore::set_junk_email_config`), so a change applies to the next
//! message. A miss is one indexed read of that mailbox's entries, never a scan.

use hato_core::directory::MailboxId;
use hato_protection::spam::junk::UserJunkLists;
use hato_store::{Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Mailboxes whose lists are kept at most (more starts over: a cache, not a bound).
const CACHED: usize = 100_000;

/// The generation the kept lists are current at, and the lists.
type Kept = (Option<u64>, HashMap<MailboxId, Arc<UserJunkLists>>);

#[derive(Default)]
pub(crate) struct JunkListCache {
    inner: Mutex<Kept>,
}

impl JunkListCache {
    /// The mailbox's lists when kept and current at `generation` (no store read).
    pub(crate) fn cached(
        &self,
        generation: Option<u64>,
        mailbox: MailboxId,
    ) -> Option<Arc<UserJunkLists>> {
        let generation = generation?;
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.0 != Some(generation) {
            return None;
        }
        inner.1.get(&mailbox).cloned()
    }

    /// The mailbox's lists: kept ones while current, else read (blocks: one store read). A
    /// mailbox gone since has none.
    pub(crate) fn lists(
        &self,
        store: &dyn Store,
        mailbox: MailboxId,
    ) -> Result<Arc<UserJunkLists>, StoreError> {
        // Read before the lists: a change committed after this read moves it again, so lists
        // read before that change are never kept as current.
        let generation = store.content_policy_generation();
        if let Some(l) = self.cached(generation, mailbox) {
            return Ok(l);
        }
        let lists = match store.junk_email_config(mailbox) {
            Ok(c) => UserJunkLists {
                enabled: c.enabled,
                trusted: c.trusted_senders_and_domains.into_iter().collect(),
                blocked: c.blocked_senders_and_domains.into_iter().collect(),
            },
            Err(StoreError::NotFound(_)) => UserJunkLists::default(),
            Err(e) => return Err(e),
        };
        let lists = Arc::new(lists);
        if let Some(g) = generation {
            let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            // Lists read at an older generation than the kept ones are not kept.
            if inner.0 < Some(g) || inner.1.len() >= CACHED {
                *inner = (Some(g), HashMap::new());
            }
            if inner.0 == Some(g) {
                inner.1.insert(mailbox, lists.clone());
            }
        }
        Ok(lists)
    }
}
