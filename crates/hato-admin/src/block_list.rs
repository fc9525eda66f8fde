//! The provider's block list as the server holds it: the check's in-memory snapshot
//! (`hato_protection::ProviderBlockList`), loaded from the store at start, reloaded after every
//! change made through the API or the delist page and after each purge, and the delist page's
//! request limits. `hato serve` makes one and hands its [`BlockListService::list`] to the edge.

use crate::delist_limit::{DelistLimiter, DelistLimits};
use hato_core::{Clock, Timestamp};
use hato_protection::{IpNetwork, ListedEntry, ProviderBlockList};
use hato_store::{Store, StoreError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How long a delist confirmation link works (Microsoft's delist portal: removal within 24 h).
pub const CONFIRMATION_SECS: i64 = 24 * 3600;
/// Delist requests are kept this long (they say who asked to delist what, and when).
pub const REQUEST_RETENTION_DAYS: u32 = 90;
/// How often expired entries and old requests are purged and the snapshot reloaded (which also
/// picks up changes another process made to the store).
pub const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(60);

pub struct BlockListService {
    list: Arc<ProviderBlockList>,
    limiter: DelistLimiter,
}

impl BlockListService {
    /// An empty list whose refusals send clients to `delist_url`; load it with
    /// [`BlockListService::reload`].
    pub fn new(delist_url: impl Into<String>, limits: DelistLimits, clock: Arc<dyn Clock>) -> Self {
        BlockListService {
            list: Arc::new(ProviderBlockList::new(delist_url)),
            limiter: DelistLimiter::new(limits, clock),
        }
    }

    /// The snapshot the edge checks (`ProviderBlockList::check`).
    pub fn list(&self) -> Arc<ProviderBlockList> {
        self.list.clone()
    }

    pub fn limiter(&self) -> &DelistLimiter {
        &self.limiter
    }

    /// The delist page's public address.
    pub fn delist_url(&self) -> &str {
        self.list.delist_url()
    }

    /// Reads the entries still in force at `now` and installs them as the snapshot. Blocks on
    /// the store: call it from blocking code. A stored entry that does not parse (written by
    /// another version) is left out and logged, not fatal.
    pub fn reload(&self, store: &dyn Store, now: Timestamp) -> Result<usize, StoreError> {
        self.list.reload_with(|| {
            Ok(store
                .block_entries(now)?
                .into_iter()
                .filter_map(|e| match IpNetwork::parse(&e.entry) {
                    Ok(network) => Some(ListedEntry {
                        network,
                        reason: e.reason,
                        added: e.added,
                        expires: e.expires,
                    }),
                    Err(err) => {
                        tracing::error!("block list entry {} left out: {err}", e.id);
                        None
                    }
                })
                .collect())
        })
    }

    /// Purges expired entries and old delist requests, then reloads the snapshot.
    pub async fn maintain(
        self: &Arc<Self>,
        store: &Arc<dyn Store>,
        clock: &Arc<dyn Clock>,
    ) -> Result<(), StoreError> {
        let now = clock.now();
        let (entries, requests) = store
            .purge_block_list(now, now.minus_days(REQUEST_RETENTION_DAYS))
            .await?;
        if entries + requests > 0 {
            tracing::info!(
                "block list: purged {entries} expired entr(y/ies) and {requests} delist request record(s)"
            );
        }
        let (service, store) = (self.clone(), store.clone());
        tokio::task::spawn_blocking(move || service.reload(&*store, now))
            .await
            .map_err(|e| StoreError::Database(format!("block list reload: {e}")))??;
        Ok(())
    }

    /// Runs [`BlockListService::maintain`] every [`MAINTENANCE_INTERVAL`] until `stop` turns true.
    pub async fn run_maintenance(
        self: Arc<Self>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(MAINTENANCE_INTERVAL);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
            if let Err(e) = self.maintain(&store, &clock).await {
                tracing::error!("block list maintenance failed: {e}");
            }
        }
    }
}
