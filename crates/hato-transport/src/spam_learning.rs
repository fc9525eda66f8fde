//! Users' junk / not-junk reports become each tenant's personalised classifier (issue 9:
//! "online updates from each tenant's users' reports, per-tenant personalisation on top of the
//! shipped model").
//!
//! A background task looks for new reports every few seconds. A tenant with new ones gets its
//! model rebuilt from its reports in order (the message each names, read from its blob, its
//! features extracted as at arrival), each learned until the tenant's classifier agrees with
//! the user (at most [`PASSES`] steps: a user who says "junk" expects the next message like it
//! in Junk), and stored; the content pipeline reads it with the tenant's other policies (its
//! version is one of the tenant's content versions). Rebuilding rather than adding makes it
//! idempotent (a restart relearns nothing twice) and lets a later opposite report replace an
//! earlier one.

use hato_core::directory::TenantId;
use hato_protection::spam::classifier::{Classifier, TenantModel};
use hato_store::{SpamReportVerdict, Store, StoreError};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The most reports a tenant's model is built from (the first ones; a bound on the work of one
/// rebuild, about a millisecond a report).
pub const MAX_REPORTS: usize = 5_000;
/// The most learning steps for one report.
pub const PASSES: usize = 8;
/// How often new reports are looked for.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// Builds tenants' personalised models from their reports.
pub struct ReportLearner {
    store: Arc<dyn Store>,
    classifier: Arc<Classifier>,
    /// Per tenant, the newest report its stored model was built from.
    learned: HashMap<TenantId, i64>,
}

impl ReportLearner {
    pub fn new(store: Arc<dyn Store>, classifier: Arc<Classifier>) -> Self {
        ReportLearner {
            store,
            classifier,
            learned: HashMap::new(),
        }
    }

    /// Runs until `stop` changes.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(INTERVAL);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => break,
            }
            let store = self.store.clone();
            let tenants = match tokio::task::spawn_blocking(move || store.tenants()).await {
                Ok(Ok(t)) => t,
                Ok(Err(e)) => {
                    tracing::warn!("spam reports: the tenants could not be read: {e}");
                    continue;
                }
                Err(_) => continue,
            };
            for tenant in tenants {
                if let Err(e) = self.learn_tenant(tenant.id).await {
                    tracing::warn!("spam reports of tenant {}: {e}", tenant.id);
                }
            }
        }
    }

    /// Rebuilds the tenant's model when it has reports newer than the last build; returns
    /// whether it did.
    pub async fn learn_tenant(&mut self, tenant: TenantId) -> Result<bool, StoreError> {
        let learned = self.learned.get(&tenant).copied().unwrap_or(0);
        let store = self.store.clone();
        let classifier = self.classifier.clone();
        let built = tokio::task::spawn_blocking(move || {
            build(store.as_ref(), &classifier, tenant, learned)
        })
        .await
        .map_err(|e| StoreError::Io(format!("the report learner was lost: {e}")))??;
        let Some((newest, model)) = built else {
            return Ok(false);
        };
        self.store
            .set_spam_tenant_model(tenant, model.to_bytes())
            .await?;
        self.learned.insert(tenant, newest);
        Ok(true)
    }
}

/// The tenant's model from its reports, when it has one newer than `learned`.
fn build(
    store: &dyn Store,
    classifier: &Classifier,
    tenant: TenantId,
    learned: i64,
) -> Result<Option<(i64, TenantModel)>, StoreError> {
    let reports = store.spam_reports_after(tenant, 0, MAX_REPORTS)?;
    let Some(newest) = reports.last().map(|r| r.id) else {
        return Ok(None);
    };
    if newest <= learned {
        return Ok(None);
    }
    let mut model = TenantModel::new(classifier);
    for report in &reports {
        let raw = match store.blob(&report.blob) {
            Ok(raw) => raw,
            Err(e) => {
                tracing::warn!(
                    "the message of spam report {} cannot be read ({e}); it is not learned",
                    report.id
                );
                continue;
            }
        };
        let features = classifier.extract(&raw);
        let junk = report.verdict == SpamReportVerdict::Junk;
        for _ in 0..PASSES {
            let scl = classifier.signals(&features, Some(&model)).scl;
            if (scl >= 5) == junk {
                break;
            }
            model.learn(classifier, &features, junk);
        }
    }
    Ok(Some((newest, model)))
}
