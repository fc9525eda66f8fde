//! hato's protection stages, in the manner of Exchange Online Protection: each stage is a pure
//! decision over a context (the client, the recipient's tenant, a policy, the time), returning a
//! verdict with its reasons (`hato_core::Reason`). No sockets, no HTTP: DNS and the clock reach
//! a stage through traits, and the SMTP server calls the stages from its hook points.
//!
//! The stage order is fixed (seed B1, C, D; `exchange-online-behaviour.md` §2, §3, §8):
//!
//! - **at connect**, before the banner: the provider's block list, DNS block lists, throttling
//!   by volume and reputation, the early-talker check;
//! - **at EHLO/HELO**: a HELO claiming to be this server;
//! - **at RCPT**, once the recipient's tenant is known: the tenant's connection filter policy
//!   (IP allow and block lists; an allowed IP also overrides the provider's block list for that
//!   tenant's recipients, never a DNS block list).
//!
//! Nothing here needs the message body.

pub mod dnsbl;

pub use dnsbl::{Dnsbl, DnsblZone, DnsblZoneSettings};

use hato_core::{Reason, Refusal};

/// What one stage decided about a client. Every stage of this crate answers with one, so the
/// edge policy that runs them in order (in `hato-transport`) treats them alike: it stops at the
/// first `Refuse`, and records every `Note` and `Refuse` with its reason (connection log, the
/// `Receive` trace event).
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
