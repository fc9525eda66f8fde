//! A tenant's connection filter policy (Exchange's `HostedConnectionFilterPolicy`,
//! `exchange-online-behaviour.md` §3; seed B4): the IP allow list and the IP block list, decided
//! at RCPT once the recipient's tenant is known.
//!
//! - An address on the allow list is let in (a [`Outcome::Note`], Exchange's `IPV:CAL`): the
//!   spam stage skips it ([`is_allow_listed`]), the provider's block list is lifted for this
//!   tenant's recipients; DNS block lists and the malware filter still apply.
//! - An address on both lists is allowed: Exchange's rule, "allow beats block".
//! - An address on the block list only is refused: `550 5.7.513 Service unavailable, Client
//!   host [IP] blocked by DOMAIN using Customer Block list`, DOMAIN the recipient's.
//!
//! Every accepted recipient's `Receive` trace event gets the client's standing as its reason
//! ([`trace_note`]: `IPV:CAL` or `IPV:NLI`, the client IP, its PTR name), what the antispam
//! report header of a message shows (`X-Forefront-Antispam-Report`: `CIP`, `IPV`, `PTR`; §6.5).

use crate::Outcome;
use crate::ip::{IpEntry, IpEntryError, IpList};
use hato_core::message::Recipient;
use hato_core::reason::FigureValue;
use hato_core::reply;
use hato_core::{Reason, Refusal, Stage};
use std::net::IpAddr;

/// Exchange Online: at most 1,273 entries per list (`edge.connection_filter_max_entries`).
pub const MAX_ENTRIES_DEFAULT: usize = 1273;

/// The rule names: Exchange's parameter names.
pub const ALLOW_LIST: &str = "IPAllowList";
pub const BLOCK_LIST: &str = "IPBlockList";

/// The figure that says whether the client was on the tenant's allow list, and its values (the
/// `IPV` field of Exchange's antispam report: `CAL`, on a customer allow list; `NLI`, not
/// listed).
pub const IPV: &str = "ipv";
pub const IPV_CAL: &str = "CAL";
pub const IPV_NLI: &str = "NLI";

/// One tenant's lists, ready for lookups.
#[derive(Clone, Debug, Default)]
pub struct ConnectionFilter {
    allow: IpList,
    block: IpList,
}

impl ConnectionFilter {
    pub fn new(
        allow: impl IntoIterator<Item = IpEntry>,
        block: impl IntoIterator<Item = IpEntry>,
    ) -> Self {
        ConnectionFilter {
            allow: IpList::new(allow),
            block: IpList::new(block),
        }
    }

    /// The lists as stored (each entry in its canonical text). An entry that does not read as
    /// one (written by a newer hato, or by hand) is left out, and returned, so the caller can
    /// say so; the other entries still apply.
    pub fn from_stored(allow: &[String], block: &[String]) -> (Self, Vec<IpEntryError>) {
        let mut bad = Vec::new();
        let mut read = |texts: &[String]| -> Vec<IpEntry> {
            texts
                .iter()
                .filter_map(|t| IpEntry::parse(t).map_err(|e| bad.push(e)).ok())
                .collect()
        };
        let (allow, block) = (read(allow), read(block));
        (ConnectionFilter::new(allow, block), bad)
    }

    pub fn allow_list(&self) -> &IpList {
        &self.allow
    }

    pub fn block_list(&self) -> &IpList {
        &self.block
    }

    /// The decision for a client `ip` sending to a recipient of `domain` (the recipient's
    /// domain, as the reply names it).
    pub fn decide(&self, ip: IpAddr, domain: &str) -> Outcome {
        if let Some(entry) = self.allow.find(ip) {
            let mut reason = Reason::new(
                Stage::ConnectionFilter,
                format!(
                    "The client {ip} is on the tenant's IP allow list (entry {entry}): spam \
                     filtering is skipped and the provider's block list does not apply (IPV:CAL)"
                ),
            )
            .rule(ALLOW_LIST)
            .figure(IPV, IPV_CAL)
            .figure("entry", entry.to_string());
            if let Some(blocked) = self.block.find(ip) {
                // Exchange: an address on both lists is allowed.
                reason = reason.figure("also_on_block_list", blocked.to_string());
            }
            return Outcome::Note(reason);
        }
        if let Some(entry) = self.block.find(ip) {
            return Outcome::Refuse(Refusal::new(
                reply::customer_block_list(ip, domain),
                Reason::new(
                    Stage::ConnectionFilter,
                    format!("The client {ip} is on the tenant's IP block list (entry {entry})"),
                )
                .rule(BLOCK_LIST)
                .figure("entry", entry.to_string())
                .figure("domain", domain),
            ));
        }
        Outcome::Pass
    }
}

/// The note each accepted recipient's trace gets about the client (the reason of its `Receive`
/// event): on its tenant's allow list (`allowed`, the note [`ConnectionFilter::decide`] made) or
/// not, with the client's IP and PTR name (empty when it has no confirmed one), the fields of
/// the antispam report header; then what the checks at connect noted (`notes`: a DNS block
/// list that failed open, an exemption from throttling, a PTR that did not resolve back), each
/// as a figure named after its stage, so the `Receive` event holds every reason the edge had.
pub fn trace_note(
    ip: IpAddr,
    ptr: Option<&str>,
    allowed: Option<&Reason>,
    notes: &[Reason],
) -> Reason {
    let mut reason = match allowed {
        Some(note) => note.clone(),
        None => Reason::new(
            Stage::ConnectionFilter,
            format!("The client {ip} is on no IP allow list of the tenant (IPV:NLI)"),
        )
        .figure(IPV, IPV_NLI),
    };
    if reason.figure_value(IPV).is_none() {
        reason = reason.figure(IPV, IPV_CAL);
    }
    reason = reason
        .figure("cip", ip.to_string())
        .figure("ptr", ptr.unwrap_or_default());
    for note in notes {
        reason = reason.figure(note.stage.as_str(), note.text.clone());
    }
    reason
}

/// Whether `reason` is a [`trace_note`]: the client's standing with a recipient's tenant (the
/// commit makes it the reason of the recipient's `Receive` event).
pub fn is_standing(reason: &Reason) -> bool {
    reason.stage == Stage::ConnectionFilter && reason.figure_value(IPV).is_some()
}

/// Whether the connection filter allow-listed the client for this recipient (a verdict with
/// `ipv` = `CAL` recorded in its slot): the spam stage skips such recipients.
pub fn is_allow_listed(recipient: &Recipient) -> bool {
    recipient.verdicts.iter().any(|v| {
        is_standing(&v.reason) && v.reason.figure_value(IPV) == Some(&FigureValue::from(IPV_CAL))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hato_core::Address;
    use hato_core::directory::Route;
    use hato_core::message::{Action, RecipientVerdict};

    fn filter(allow: &[&str], block: &[&str]) -> ConnectionFilter {
        let texts = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (f, bad) = ConnectionFilter::from_stored(&texts(allow), &texts(block));
        assert!(bad.is_empty(), "{bad:?}");
        f
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocked_allowed_both_and_neither() {
        let f = filter(
            &["192.0.2.0/24", "2001:db8::/48"],
            &["192.0.2.7", "198.51.100.0/24"],
        );
        // Blocked only: Exchange's 5.7.513 with the recipient's domain.
        let Outcome::Refuse(r) = f.decide(ip("198.51.100.9"), "contoso.test") else {
            panic!("not refused")
        };
        assert_eq!(
            r.reply.to_string(),
            "550 5.7.513 Service unavailable, Client host [198.51.100.9] blocked by contoso.test using Customer Block list"
        );
        assert_eq!(r.reason.stage, Stage::ConnectionFilter);
        assert_eq!(r.reason.rule.as_deref(), Some(BLOCK_LIST));
        assert_eq!(
            r.reason.figure_value("entry"),
            Some(&FigureValue::from("198.51.100.0/24"))
        );
        // On both lists: allowed.
        let Outcome::Note(n) = f.decide(ip("192.0.2.7"), "contoso.test") else {
            panic!("not allowed")
        };
        assert_eq!(n.rule.as_deref(), Some(ALLOW_LIST));
        assert_eq!(n.figure_value(IPV), Some(&FigureValue::from(IPV_CAL)));
        assert_eq!(
            n.figure_value("also_on_block_list"),
            Some(&FigureValue::from("192.0.2.7"))
        );
        // Allowed only, IPv6 too; an IPv4 client on a dual-stack socket.
        assert!(matches!(
            f.decide(ip("2001:db8:0:1::5"), "x.test"),
            Outcome::Note(_)
        ));
        assert!(matches!(
            f.decide(ip("::ffff:192.0.2.1"), "x.test"),
            Outcome::Note(_)
        ));
        // Neither.
        assert_eq!(f.decide(ip("203.0.113.1"), "contoso.test"), Outcome::Pass);
        assert_eq!(
            ConnectionFilter::default().decide(ip("192.0.2.7"), "x"),
            Outcome::Pass
        );
    }

    #[test]
    fn a_stored_entry_that_does_not_read_is_left_out_and_reported() {
        let (f, bad) = ConnectionFilter::from_stored(
            &["192.0.2.0/24".into(), "10.0.0.0/8".into()],
            &["nonsense".into()],
        );
        assert_eq!(bad.len(), 2);
        assert_eq!(f.allow_list().len(), 1);
        assert!(f.block_list().is_empty());
    }

    #[test]
    fn the_trace_note_says_cal_or_nli_with_the_client_and_marks_the_recipient() {
        let f = filter(&["192.0.2.0/24"], &[]);
        let Outcome::Note(allowed) = f.decide(ip("192.0.2.7"), "contoso.test") else {
            panic!()
        };
        let exempt = Reason::new(Stage::Throttling, "exempt from throttling").rule("exemption");
        let cal = trace_note(
            ip("192.0.2.7"),
            Some("mail.fabrikam.test"),
            Some(&allowed),
            std::slice::from_ref(&exempt),
        );
        assert_eq!(
            cal.figure_value("throttling"),
            Some(&FigureValue::from("exempt from throttling"))
        );
        assert_eq!(cal.figure_value(IPV), Some(&FigureValue::from("CAL")));
        assert_eq!(
            cal.figure_value("cip"),
            Some(&FigureValue::from("192.0.2.7"))
        );
        assert_eq!(
            cal.figure_value("ptr"),
            Some(&FigureValue::from("mail.fabrikam.test"))
        );
        let nli = trace_note(ip("203.0.113.1"), None, None, &[]);
        assert!(is_standing(&cal) && is_standing(&nli));
        assert!(!is_standing(&Reason::new(
            Stage::ConnectionFilter,
            "blocked"
        )));
        assert_eq!(nli.figure_value(IPV), Some(&FigureValue::from("NLI")));
        assert_eq!(nli.figure_value("ptr"), Some(&FigureValue::from("")));
        assert_eq!(
            nli.text,
            "The client 203.0.113.1 is on no IP allow list of the tenant (IPV:NLI)"
        );

        let mut r = Recipient {
            address: Address::parse("bob@contoso.test").unwrap(),
            tenant_id: 1,
            route: Route::Local(1),
            verdicts: vec![],
            content: Default::default(),
            dsn: Default::default(),
        };
        let verdict = |reason| RecipientVerdict {
            action: Action::Deliver,
            reason,
        };
        r.verdicts.push(verdict(nli));
        assert!(!is_allow_listed(&r));
        r.verdicts.push(verdict(cal));
        assert!(is_allow_listed(&r));
    }
}
