//! The early-talker check (Postfix postscreen's pregreet test; Exchange has none): with a
//! greeting delay (`edge.greeting_delay_ms`), the server waits before its banner, and a client
//! that sends anything meanwhile has not waited for it, as RFC 5321 §4.3.1 requires and as
//! spambots that fire their whole dialogue at once do not. It is refused instead of the banner
//! (`554 5.5.1`) and the connection closed.
//!
//! The SMTP server's I/O loop watches for the talk and puts it in the client context
//! ([`hato_core::Pregreet`]); this check only decides.

use crate::{BoxFuture, ConnectCheck, Outcome, ready};
use hato_core::reply;
use hato_core::{ClientContext, Reason, Refusal, Stage, Timestamp};

/// The setting whose delay the client did not wait out, named in the reasons.
pub const SETTING: &str = "edge.greeting_delay_ms";

/// The decision for a client: refused when it talked before the banner.
pub fn early_talker(client: &ClientContext) -> Outcome {
    let Some(p) = client.pregreet else {
        return Outcome::Pass;
    };
    Outcome::Refuse(Refusal::new(
        reply::EARLY_TALKER,
        Reason::new(
            Stage::EarlyTalker,
            format!(
                "The client {} sent {} byte(s) {} ms after connecting, before the greeting",
                client.ip(),
                p.bytes,
                p.after_ms
            ),
        )
        .rule(SETTING)
        .figure("bytes", p.bytes)
        .figure("after_ms", p.after_ms),
    ))
}

/// [`early_talker`] as the last check at connect.
#[derive(Clone, Copy, Debug, Default)]
pub struct EarlyTalker;

impl ConnectCheck for EarlyTalker {
    fn stage(&self) -> Stage {
        Stage::EarlyTalker
    }

    fn check(&self, client: &ClientContext, _: Timestamp) -> BoxFuture<Outcome> {
        ready(early_talker(client))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hato_core::Pregreet;

    #[test]
    fn a_client_that_talked_before_the_banner_is_refused() {
        let mut client = ClientContext::new(
            "192.0.2.7:40000".parse().unwrap(),
            "198.51.100.1:25".parse().unwrap(),
        );
        assert_eq!(early_talker(&client), Outcome::Pass);
        client.pregreet = Some(Pregreet {
            bytes: 17,
            after_ms: 3,
        });
        let Outcome::Refuse(r) = early_talker(&client) else {
            panic!("passed")
        };
        assert_eq!(
            r.reply.to_string(),
            "554 5.5.1 Protocol error: the client sent data before the greeting"
        );
        assert_eq!(r.reason.stage, Stage::EarlyTalker);
        assert_eq!(r.reason.rule.as_deref(), Some(SETTING));
        assert_eq!(
            r.reason.text,
            "The client 192.0.2.7 sent 17 byte(s) 3 ms after connecting, before the greeting"
        );
    }
}
