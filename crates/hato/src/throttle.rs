//! The throttle in `hato serve`: made at start from its snapshot (`data_dir/throttle.state`),
//! its exemption lists read from the store, and saved every `throttle.snapshot_interval_secs`
//! (the lists read again then, so a removed tenant's entries go too) and once more at shutdown,
//! after the listeners have stopped. A crash loses at most one interval.

use hato_protection::throttle::{Throttle, ThrottleSettings};
use hato_store::Store;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The snapshot's file in the data directory.
pub const STATE_FILE: &str = "throttle.state";

/// The throttle as it was saved; a fresh one when there is no snapshot, or when it is damaged
/// (then kept aside as `throttle.state.damaged` for a look, and said so in the log).
pub fn open(settings: &ThrottleSettings, data_dir: &Path, store: &dyn Store) -> Arc<Throttle> {
    let path = data_dir.join(STATE_FILE);
    let throttle = match Throttle::load(settings.clone(), &path) {
        Ok(Some(t)) => {
            tracing::info!(
                "throttle: {} IPs' records read from {}",
                t.tracked(),
                path.display()
            );
            t
        }
        Ok(None) => Throttle::new(settings.clone()),
        Err(e) => {
            let aside = data_dir.join(format!("{STATE_FILE}.damaged"));
            let kept = std::fs::rename(&path, &aside).is_ok();
            tracing::warn!(
                "throttle: {}: {e}; starting without its history{}",
                path.display(),
                if kept {
                    format!(" (the file is kept as {})", aside.display())
                } else {
                    String::new()
                }
            );
            Throttle::new(settings.clone())
        }
    };
    reload_exemptions(store, &throttle);
    Arc::new(throttle)
}

/// Hands the throttle every tenant's exemption entries from the store.
pub fn reload_exemptions(store: &dyn Store, throttle: &Throttle) {
    match store.throttle_exemptions(None) {
        Ok(rows) => {
            let skipped =
                throttle.set_exemption_texts(rows.into_iter().map(|r| (r.tenant, r.network)));
            if skipped > 0 {
                tracing::warn!("throttle: {skipped} stored exemption(s) do not parse; ignored");
            }
        }
        Err(e) => tracing::warn!("throttle: cannot read the exemption lists: {e}"),
    }
}

/// Saves a snapshot now (on the blocking pool: a million IPs are ~70 MB to write).
pub async fn save(throttle: Arc<Throttle>, path: PathBuf) {
    let shown = path.display().to_string();
    match tokio::task::spawn_blocking(move || throttle.save(&path)).await {
        Ok(Ok(n)) => tracing::debug!("throttle: {n} IPs' records saved to {shown}"),
        Ok(Err(e)) => tracing::error!("throttle: cannot save {shown}: {e}"),
        Err(e) => tracing::error!("throttle: saving {shown} failed: {e}"),
    }
}

/// Saves a snapshot every `every` and reads the exemption lists again, until `stop`; the last
/// snapshot is the caller's, once nothing records any more.
pub async fn keep(
    throttle: Arc<Throttle>,
    store: Arc<dyn Store>,
    path: PathBuf,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        save(throttle.clone(), path.clone()).await;
        let (t, s) = (throttle.clone(), store.clone());
        let _ = tokio::task::spawn_blocking(move || reload_exemptions(&*s, &t)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hato_core::{Clock, SystemClock};
    use hato_store::SqliteStore;

    /// Waits (in paused time, so no real waiting) until `done` holds, at most 1,000 s: a bit
    /// more than three snapshot intervals.
    async fn until(mut done: impl FnMut() -> bool) {
        for _ in 0..10_000 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("not within 1,000 s of paused time");
    }

    #[tokio::test(start_paused = true)]
    async fn the_state_is_saved_every_interval_and_read_back_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let settings = ThrottleSettings::default();
        let throttle = open(&settings, dir.path(), &*store);
        let path = dir.path().join(STATE_FILE);
        let (a, b) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        throttle.record_message(a, 3, SystemClock.now());
        let (stop_tx, stop_rx) = watch::channel(false);
        let keeper = tokio::spawn(keep(
            throttle.clone(),
            store.clone(),
            path.clone(),
            Duration::from_secs(300),
            stop_rx,
        ));
        let tracked = |ip| {
            Throttle::load(settings.clone(), &path)
                .ok()
                .flatten()
                .is_some_and(|t| t.status(ip, SystemClock.now()).tracked)
        };
        until(|| tracked(a)).await;
        // B comes after the first snapshot: a crash now would lose it, the next snapshot has it.
        throttle.record_message(b, 1, SystemClock.now());
        assert!(!tracked(b));
        until(|| tracked(b)).await;
        // An exemption added to the store reaches the throttle at the next interval.
        let t = store.create_tenant("contoso").await.unwrap();
        store
            .add_throttle_exemption(t.id, "192.0.2.0/24")
            .await
            .unwrap();
        until(|| !throttle.exemptions_of(a).is_empty()).await;
        stop_tx.send(true).unwrap();
        keeper.await.unwrap();
        // At start, the saved state is read back.
        let again = open(&settings, dir.path(), &*store);
        assert!(again.status(b, SystemClock.now()).tracked);
        assert_eq!(again.exemptions_of(b).len(), 1);
        // A damaged file is put aside, and the throttle starts afresh.
        std::fs::write(&path, b"HATOTHR1 cut short").unwrap();
        let fresh = open(&settings, dir.path(), &*store);
        assert_eq!(fresh.tracked(), 0);
        assert!(dir.path().join("throttle.state.damaged").exists());
        assert!(!path.exists());
    }
}
