//! hato's protection stages, in the manner of Exchange Online Protection: each stage is a pure
//! decision over a context (the client, the recipient's tenant, a policy, the time), returning a
//! verdict with its reasons (`hato_core::Reason`). No sockets, no HTTP: DNS and the clock reach
//! a stage through traits, and the SMTP server calls the stages from its hook points.
//!
//! The stage order is fixed (seed B1, C, D; `exchange-online-behaviour.md` §2, §3, §8):
//!
//! - **at connect**, before the banner ([`CONNECT_STAGES`], run by [`ConnectChecks`]): the
//!   provider's block list, DNS block lists, throttling by volume and reputation, the
//!   early-talker check ([`early_talker`]);
//! - **at EHLO/HELO**: a HELO claiming to be this server ([`helo`]);
//! - **at RCPT**, once the recipient's tenant is known: the tenant's connection filter policy
//!   ([`connection_filter`]: IP allow and block lists; an allowed IP also overrides the
//!   provider's block list for that tenant's recipients, never a DNS block list).
//!
//! A refusal at connect is of one of two kinds ([`RefusalKind`]): **final** (DNS block lists,
//! throttling, the early-talker check: the client gets it instead of the banner) or
//! **overridable by a tenant's IP allow list** (the provider's block list, seed C3: it is held
//! and given at RCPT to each recipient whose tenant does not allow-list the client).
//!
//! Nothing here needs the message body.
//!
//! Stages: `provider_block_list.rs` (the operator's own list of banned IPs, `550 5.7.606`),
//! `dnsbl.rs` (RFC 5782 zones, `550 5.7.1`), `throttle.rs` (volume and reputation,
//! `451 4.7.500 … (ASn)`); each implements [`ConnectCheck`]. Beside them, not a stage:
//! `reverse_dns.rs`, the client's forward-confirmed name, looked up while the checks run.

pub mod connection_filter;
pub mod connector;
pub mod dnsbl;
pub mod early_talker;
pub mod helo;
pub mod ip;
pub mod malware;
pub mod outbound_connector;
pub mod provider_block_list;
pub mod reverse_dns;
pub mod rules;
pub mod spam;
pub mod throttle;

pub use dnsbl::{Dnsbl, DnsblZone, DnsblZoneSettings};
pub use provider_block_list::{IpNetwork, ListedEntry, ProviderBlockList};

use hato_core::{ClientContext, Reason, Refusal, Stage, Timestamp};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// What one stage decided about a client. Every stage of this crate answers with one, so the
/// edge policy that runs them in order (in `hato-transport`) treats them alike: it stops at the
/// first final `Refuse`, and records every `Note` and `Refuse` with its reason (connection log,
/// the `Receive` trace event).
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Nothing to say: the next stage decides.
    Pass,
    /// Go on, and this is worth recording: an allow list matched (Exchange's `IPV:CAL`), a DNS
    /// check failed open, a new IP is on probation.
    Note(Reason),
    /// Refuse (a 5xx reply) or defer (a 4xx reply, e.g. throttling's `451 4.7.500`): the client
    /// gets the reply, the reason goes to the connection log.
    Refuse(Refusal),
}

impl Outcome {
    /// Whether the client is turned away.
    pub fn refuses(&self) -> bool {
        matches!(self, Outcome::Refuse(_))
    }
}

/// A future a check answers with; `'static`, so it owns what it needs (a DNS lookup's names).
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A check that runs when a client connects, before the banner. Asynchronous because some need
/// lookups (DNS block lists); a check that knows at once answers with a ready future
/// ([`ready`]). The check says which stage it is; the stage decides its place in the order and
/// the kind of its refusal ([`CONNECT_STAGES`]).
pub trait ConnectCheck: Send + Sync {
    fn stage(&self) -> Stage;
    fn check(&self, client: &ClientContext, now: Timestamp) -> BoxFuture<Outcome>;
}

/// An answer known at once, as a [`ConnectCheck`] gives it.
pub fn ready(outcome: Outcome) -> BoxFuture<Outcome> {
    Box::pin(std::future::ready(outcome))
}

/// What a refusal at connect means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusalKind {
    /// The client is refused at connect; no allow list lifts it (seed C3: a third-party block
    /// list "cannot be bypassed"; throttling happens "before mail reaches the system").
    Final,
    /// The refusal is held until the recipient's tenant is known: a tenant whose IP allow list
    /// has the client lets it in for its recipients (seed B4, C3: the provider's own block
    /// list); every other recipient gets the held reply.
    AllowListOverrides,
}

/// The stages that run at connect, in their fixed order, with the kind of their refusals: the
/// provider's list first (Exchange refuses banned IPs before anything else), then DNS block
/// lists, throttling (it counts only connections the lists let through), and last the
/// early-talker check (its evidence, talk before the banner, is gathered during the greeting
/// delay, before the others run).
pub const CONNECT_STAGES: [(Stage, RefusalKind); 4] = [
    (Stage::ProviderBlockList, RefusalKind::AllowListOverrides),
    (Stage::DnsBlockList, RefusalKind::Final),
    (Stage::Throttling, RefusalKind::Final),
    (Stage::EarlyTalker, RefusalKind::Final),
];

/// A check was given whose stage does not run at connect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0} is not a stage that runs at connect (those are provider_block_list, dns_block_list, throttling, early_talker)"
)]
pub struct NotAConnectStage(pub Stage);

/// The checks at connect, in [`CONNECT_STAGES`]' order whatever order they were added in
/// (checks of one stage in the order they were added), each with the kind of its refusals.
#[derive(Clone, Default)]
pub struct ConnectChecks {
    checks: Vec<(usize, Arc<dyn ConnectCheck>, RefusalKind)>,
}

/// What the checks at connect decided: the notes they made, in order, and either a final
/// refusal, or a refusal held for RCPT (or neither).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConnectOutcome {
    pub notes: Vec<Reason>,
    /// Refused now: the client gets this instead of the banner.
    pub refused: Option<Refusal>,
    /// The first refusal a tenant's IP allow list overrides: given at RCPT to the recipients of
    /// tenants that do not allow-list the client.
    pub held: Option<Refusal>,
}

impl ConnectChecks {
    pub fn new() -> Self {
        ConnectChecks::default()
    }

    /// Adds a check at its stage's place.
    pub fn with(mut self, check: Arc<dyn ConnectCheck>) -> Result<Self, NotAConnectStage> {
        let stage = check.stage();
        let (place, kind) = CONNECT_STAGES
            .iter()
            .enumerate()
            .find(|(_, (s, _))| *s == stage)
            .map(|(i, (_, k))| (i, *k))
            .ok_or(NotAConnectStage(stage))?;
        // After the checks of its own and earlier stages, before later ones.
        let at = self.checks.partition_point(|(p, _, _)| *p <= place);
        self.checks.insert(at, (place, check, kind));
        Ok(self)
    }

    /// The stages of the checks, in the order they run.
    pub fn stages(&self) -> Vec<(Stage, RefusalKind)> {
        self.checks
            .iter()
            .map(|(_, c, k)| (c.stage(), *k))
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.checks.is_empty()
    }

    /// Runs the checks in order, one after the other: a final refusal ends the run (the later
    /// checks never see the client); a refusal a tenant's allow list overrides is held and the
    /// run goes on, since a later final refusal (a DNS block list) must still apply to an
    /// allow-listed client.
    pub fn run(&self, client: &ClientContext, now: Timestamp) -> BoxFuture<ConnectOutcome> {
        let checks: Vec<(Arc<dyn ConnectCheck>, RefusalKind)> = self
            .checks
            .iter()
            .map(|(_, c, k)| (c.clone(), *k))
            .collect();
        let client = client.clone();
        Box::pin(async move {
            let mut out = ConnectOutcome::default();
            for (check, kind) in checks {
                match check.check(&client, now).await {
                    Outcome::Pass => {}
                    Outcome::Note(reason) => out.notes.push(reason),
                    Outcome::Refuse(refusal) => match kind {
                        RefusalKind::Final => {
                            out.refused = Some(refusal);
                            break;
                        }
                        RefusalKind::AllowListOverrides => {
                            if out.held.is_none() {
                                out.held = Some(refusal);
                            } else {
                                // Only the first is given; the others stay on record.
                                out.notes.push(*refusal.reason);
                            }
                        }
                    },
                }
            }
            out
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hato_core::reply::Reply;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A check of `stage` that answers `outcome` and counts how often it ran.
    struct Fixed {
        stage: Stage,
        outcome: Outcome,
        runs: AtomicUsize,
    }

    fn fixed(stage: Stage, outcome: Outcome) -> Arc<Fixed> {
        Arc::new(Fixed {
            stage,
            outcome,
            runs: AtomicUsize::new(0),
        })
    }

    impl ConnectCheck for Fixed {
        fn stage(&self) -> Stage {
            self.stage
        }
        fn check(&self, _: &ClientContext, _: Timestamp) -> BoxFuture<Outcome> {
            self.runs.fetch_add(1, Ordering::SeqCst);
            ready(self.outcome.clone())
        }
    }

    fn refuse(stage: Stage, text: &'static str) -> Outcome {
        Outcome::Refuse(Refusal::new(
            Reply::new(550, "5.7.1", text),
            Reason::new(stage, text),
        ))
    }

    fn client() -> ClientContext {
        ClientContext::new(
            "192.0.2.7:40000".parse().unwrap(),
            "198.51.100.1:25".parse().unwrap(),
        )
    }

    fn run(checks: &ConnectChecks) -> ConnectOutcome {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(checks.run(&client(), Timestamp(0)))
    }

    #[test]
    fn checks_run_in_the_fixed_order_whatever_order_they_are_added_in() {
        let checks = ConnectChecks::new()
            .with(fixed(Stage::EarlyTalker, Outcome::Pass))
            .unwrap()
            .with(fixed(Stage::Throttling, Outcome::Pass))
            .unwrap()
            .with(fixed(Stage::DnsBlockList, Outcome::Pass))
            .unwrap()
            .with(fixed(Stage::ProviderBlockList, Outcome::Pass))
            .unwrap()
            .with(fixed(Stage::DnsBlockList, Outcome::Pass))
            .unwrap();
        assert_eq!(
            checks.stages(),
            [
                (Stage::ProviderBlockList, RefusalKind::AllowListOverrides),
                (Stage::DnsBlockList, RefusalKind::Final),
                (Stage::DnsBlockList, RefusalKind::Final),
                (Stage::Throttling, RefusalKind::Final),
                (Stage::EarlyTalker, RefusalKind::Final),
            ]
        );
        assert_eq!(
            ConnectChecks::new()
                .with(fixed(Stage::Spam, Outcome::Pass))
                .err(),
            Some(NotAConnectStage(Stage::Spam))
        );
    }

    #[test]
    fn a_final_refusal_ends_the_run_and_an_overridable_one_is_held() {
        let provider = fixed(
            Stage::ProviderBlockList,
            refuse(Stage::ProviderBlockList, "banned"),
        );
        let note = Reason::new(Stage::DnsBlockList, "zone timed out; failed open");
        let dnsbl = fixed(Stage::DnsBlockList, Outcome::Note(note.clone()));
        let throttle = fixed(Stage::Throttling, refuse(Stage::Throttling, "busy"));
        let late = fixed(Stage::EarlyTalker, Outcome::Pass);
        let checks = ConnectChecks::new()
            .with(late.clone())
            .unwrap()
            .with(throttle.clone())
            .unwrap()
            .with(dnsbl.clone())
            .unwrap()
            .with(provider.clone())
            .unwrap();
        let out = run(&checks);
        // The provider's refusal is held, the run goes on, the note is kept, throttling
        // refuses for good, and the early-talker check never runs.
        assert_eq!(
            out.held.map(|r| r.reply.text.to_string()).as_deref(),
            Some("banned")
        );
        assert_eq!(out.notes, [note]);
        assert_eq!(
            out.refused.map(|r| r.reply.text.to_string()).as_deref(),
            Some("busy")
        );
        assert_eq!(late.runs.load(Ordering::SeqCst), 0);
        assert_eq!(provider.runs.load(Ordering::SeqCst), 1);

        // Without a final refusal, only the held one.
        let checks = ConnectChecks::new()
            .with(provider)
            .unwrap()
            .with(late.clone())
            .unwrap();
        let out = run(&checks);
        assert!(out.refused.is_none() && out.held.is_some());
        assert_eq!(late.runs.load(Ordering::SeqCst), 1);
        assert_eq!(run(&ConnectChecks::new()), ConnectOutcome::default());
    }
}
