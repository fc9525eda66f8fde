//! The queue runner: delivers queued recipients to local mailboxes, fails what cannot be
//! delivered, sends NDRs, and applies trace retention.
//!
//! Delivery is idempotent: a message's stored form (Return-Path + content) is written to the
//! content-addressed blob directory first, then one transaction files it in each mailbox and
//! marks the recipients delivered. A crash between the two only leaves a blob that the retried
//! delivery writes again under the same name, so every acknowledged message is delivered once.

use crate::ndr::{self, NdrInput};
use crate::routing::{Resolution, resolve};
use crate::summarize;
use hato_core::directory::Route;
use hato_core::reply;
use hato_core::trace::TraceEvent;
use hato_core::{Address, Clock, Timestamp, id};
use hato_store::{
    DeliveryOutcome, Folder, NdrWork, NewMessage, NewRecipient, QueuedMessage, RecipientOutcome,
    Store, StoreError,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};

pub struct DeliveryAgent {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    hostname: String,
    queued: Arc<Notify>,
    trace_retention_days: u32,
}

const BATCH: usize = 512;

impl DeliveryAgent {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        hostname: String,
        queued: Arc<Notify>,
        trace_retention_days: u32,
    ) -> Arc<Self> {
        Arc::new(DeliveryAgent {
            store,
            clock,
            hostname,
            queued,
            trace_retention_days,
        })
    }

    /// Runs until `shutdown` turns true.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut last_purge: Option<Timestamp> = None;
        loop {
            let worked = match self.clone().step().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!("delivery step failed: {e}");
                    0
                }
            };
            let now = self.clock.now();
            if last_purge.is_none_or(|t| now.0 - t.0 > 3_600_000_000) {
                last_purge = Some(now);
                match self
                    .store
                    .purge_trace(now.minus_days(self.trace_retention_days))
                    .await
                {
                    Ok(n) if n > 0 => tracing::info!("trace retention: removed {n} old message(s)"),
                    Ok(_) => {}
                    Err(e) => tracing::error!("trace retention failed: {e}"),
                }
            }
            if worked == 0 {
                tokio::select! {
                    _ = self.queued.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.changed() => return,
                }
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }

    /// One pass: a batch of deliveries, then the NDRs they caused. Returns how much it did.
    pub async fn step(self: Arc<Self>) -> Result<usize, StoreError> {
        let this = self.clone();
        let (outcomes, n) = tokio::task::spawn_blocking(move || this.prepare_deliveries())
            .await
            .map_err(|e| StoreError::Io(e.to_string()))??;
        if !outcomes.is_empty() {
            self.store
                .complete_deliveries(outcomes, self.clock.now())
                .await?;
        }
        let ndrs = self.store.due_ndrs(BATCH)?;
        let m = ndrs.len();
        for work in ndrs {
            let message = self.ndr_message(&work)?;
            self.store.enqueue(message).await?;
        }
        if m > 0 {
            // The NDRs themselves may be local deliveries.
            self.queued.notify_one();
        }
        Ok(n + m)
    }

    fn prepare_deliveries(&self) -> Result<(Vec<DeliveryOutcome>, usize), StoreError> {
        let due = self.store.due_deliveries(self.clock.now(), BATCH)?;
        let n = due.len();
        let mut outcomes = Vec::with_capacity(n);
        for message in due {
            outcomes.push(self.deliver(message)?);
        }
        Ok((outcomes, n))
    }

    fn deliver(&self, m: QueuedMessage) -> Result<DeliveryOutcome, StoreError> {
        // RFC 5321 §4.4: the final delivery adds Return-Path with the envelope sender.
        let mut stored = format!("Return-Path: <{}>\r\n", m.sender).into_bytes();
        stored.extend_from_slice(&m.content);
        let summary = summarize(&m.content);
        let size = stored.len() as u64;
        let blob = self.store.stage_blob(stored)?;
        let mut recipients = Vec::with_capacity(m.recipients.len());
        for r in &m.recipients {
            let outcome = match r.route {
                Route::Local(mailbox) => RecipientOutcome::Store {
                    mailbox,
                    folder: Folder::Inbox,
                },
                Route::Relay | Route::Remote => self.relay_outcome(&r.address)?,
            };
            recipients.push((r.id, outcome));
        }
        Ok(DeliveryOutcome {
            message_id: m.id,
            blob,
            size,
            from_header: summary.from,
            subject: summary.subject,
            null_sender: m.sender.is_empty(),
            recipients,
        })
    }

    /// A recipient queued for relay: the directory is asked again (a mailbox may exist by now);
    /// otherwise it fails, as no outbound connector can take it yet.
    fn relay_outcome(&self, address: &str) -> Result<RecipientOutcome, StoreError> {
        let Ok(addr) = Address::parse(address) else {
            return Ok(RecipientOutcome::Fail {
                reply: reply::RECIPIENT_NOT_FOUND.to_string(),
            });
        };
        Ok(match resolve(self.store.as_ref(), &addr)? {
            Resolution::Mailbox { mailbox, .. } => RecipientOutcome::Store {
                mailbox,
                folder: Folder::Inbox,
            },
            Resolution::UnknownInRelayDomain { .. } => RecipientOutcome::Fail {
                reply: format!(
                    "{} (domain {} is internal-relay and hato has no outbound delivery yet)",
                    reply::NO_ROUTE_INTERNAL_RELAY,
                    addr.domain()
                ),
            },
            Resolution::UnknownInAuthoritativeDomain { .. } | Resolution::NotAccepted => {
                RecipientOutcome::Fail {
                    reply: reply::RECIPIENT_NOT_FOUND.to_string(),
                }
            }
        })
    }

    /// The NDR for `work`, addressed to the original sender, with a null reverse-path so that
    /// it can never cause another NDR (RFC 5321 §4.5.5).
    fn ndr_message(&self, work: &NdrWork) -> Result<NewMessage, StoreError> {
        let now = self.clock.now();
        let trace_id = id::new_trace_id();
        let tenant = work.failed.first().map(|f| f.tenant_id).unwrap_or_default();
        let (route, tenant_id, extra_events) = match Address::parse(&work.sender) {
            Ok(addr) => match resolve(self.store.as_ref(), &addr)? {
                Resolution::Mailbox { tenant, mailbox } => (Route::Local(mailbox), tenant, vec![]),
                Resolution::UnknownInRelayDomain { tenant } | Resolution::UnknownInAuthoritativeDomain { tenant } => {
                    (Route::Relay, tenant, vec![])
                }
                Resolution::NotAccepted => (
                    Route::Remote,
                    tenant,
                    vec![(
                        TraceEvent::Defer,
                        "Waiting for outbound delivery to the sender's domain; hato cannot send to outside \
                         domains yet, so this NDR stays queued"
                            .to_string(),
                    )],
                ),
            },
            Err(_) => (Route::Remote, tenant, vec![]),
        };
        let content = ndr::build(&NdrInput {
            hostname: &self.hostname,
            sender: &work.sender,
            original_trace_id: &work.trace_id,
            original_received: work.received,
            original_content: &work.content,
            failed: &work.failed,
            now,
            ndr_trace_id: &trace_id,
        });
        let mut received = format!(
            "Received: from localhost by {} (hato) with local id {trace_id};\r\n\t{}\r\n",
            self.hostname,
            now.to_rfc5322()
        )
        .into_bytes();
        received.extend_from_slice(&content);
        let summary = summarize(&received);
        Ok(NewMessage {
            trace_id,
            received: now,
            sender: String::new(),
            client_ip: "127.0.0.1".into(),
            helo: self.hostname.clone(),
            message_id: Some(summary.message_id),
            subject: Some(summary.subject),
            content: received,
            recipients: vec![NewRecipient {
                address: work.sender.clone(),
                tenant_id,
                route,
                extra_events,
            }],
            receive_detail: format!(
                "Non-delivery report generated by {} for message {}",
                self.hostname, work.trace_id
            ),
            reports_on: work.failed.iter().map(|f| f.id).collect(),
        })
    }
}
