//! Delivery status notification requests (RFC 3461): what a sender asks with `MAIL FROM`
//! (`RET`, `ENVID`) and with each `RCPT TO` (`NOTIFY`, `ORCPT`), how those parameters are parsed
//! from a command line, and xtext (RFC 3461 §4) both ways.
//!
//! No I/O: the SMTP session parses a command's parameters with [`parse_mail_parameters`] and
//! [`parse_rcpt_parameters`]; the queue stores what they say ([`Notify::as_stored`],
//! [`Ret::as_str`]); the reports quote ENVID and ORCPT (RFC 3464 `Original-Envelope-Id`,
//! `Original-Recipient`).

/// RFC 3461 §4.4: an ENVID is at most 100 characters (as sent, xtext-encoded).
pub const MAX_ENVID: usize = 100;
/// RFC 3461 §4.2: an ORCPT parameter's value is at most 500 characters.
pub const MAX_ORCPT: usize = 500;

/// `NOTIFY` (RFC 3461 §4.1): when the recipient's sender wants a report. All three false is
/// `NEVER`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Notify {
    pub success: bool,
    pub failure: bool,
    pub delay: bool,
}

impl Notify {
    pub const NEVER: Notify = Notify {
        success: false,
        failure: false,
        delay: false,
    };

    /// RFC 3461 §4.1: without NOTIFY, an MTA may act as if `FAILURE,DELAY` had been given;
    /// Exchange does, and so does hato.
    pub const DEFAULT: Notify = Notify {
        success: false,
        failure: true,
        delay: true,
    };

    /// The parameter's value as sent and stored: `NEVER`, or the keywords given, in the order
    /// `SUCCESS,FAILURE,DELAY`.
    pub fn as_stored(&self) -> String {
        if *self == Notify::NEVER {
            return "NEVER".into();
        }
        let mut words = Vec::new();
        if self.success {
            words.push("SUCCESS");
        }
        if self.failure {
            words.push("FAILURE");
        }
        if self.delay {
            words.push("DELAY");
        }
        words.join(",")
    }

    /// The value as [`Notify::as_stored`] wrote it (any case); `None` for anything else.
    pub fn from_stored(s: &str) -> Option<Notify> {
        parse_notify(s).ok()
    }

    /// What an optional NOTIFY means: the sender's words, or [`Notify::DEFAULT`].
    pub fn or_default(notify: Option<Notify>) -> Notify {
        notify.unwrap_or(Notify::DEFAULT)
    }
}

/// `RET` (RFC 3461 §4.3): what a failure report should return of the message. hato's reports
/// carry the original's header block whatever was asked (an outside sender must not make hato
/// store or send large content, issue 10 item 7): `FULL` is treated as `HDRS`, which §4.3 allows
/// ("the MTA MAY ... return only the headers").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ret {
    Full,
    Headers,
}

impl Ret {
    pub fn as_str(self) -> &'static str {
        match self {
            Ret::Full => "FULL",
            Ret::Headers => "HDRS",
        }
    }

    pub fn from_stored(s: &str) -> Option<Ret> {
        match s.to_ascii_uppercase().as_str() {
            "FULL" => Some(Ret::Full),
            "HDRS" => Some(Ret::Headers),
            _ => None,
        }
    }
}

/// What `MAIL FROM` asked: `RET` and `ENVID` (decoded from xtext).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageDsn {
    pub ret: Option<Ret>,
    pub envid: Option<String>,
}

/// What a `RCPT TO` asked: `NOTIFY` and `ORCPT`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecipientDsn {
    /// `None`: not given ([`Notify::DEFAULT`] applies).
    pub notify: Option<Notify>,
    pub orcpt: Option<Orcpt>,
}

impl RecipientDsn {
    /// The NOTIFY in force: the sender's, or the default.
    pub fn effective_notify(&self) -> Notify {
        Notify::or_default(self.notify)
    }
}

/// `ORCPT` (RFC 3461 §4.2): the recipient's original address, with its type (`rfc822`,
/// `utf-8`), decoded from xtext.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Orcpt {
    pub addr_type: String,
    pub address: String,
}

impl Orcpt {
    /// `type;address`, as stored and as RFC 3464's `Original-Recipient` field has it.
    pub fn as_stored(&self) -> String {
        format!("{};{}", self.addr_type, self.address)
    }

    pub fn from_stored(s: &str) -> Option<Orcpt> {
        let (t, a) = s.split_once(';')?;
        Some(Orcpt {
            addr_type: t.to_string(),
            address: a.to_string(),
        })
    }
}

/// Why a DSN parameter was refused: the parameter and a sentence for the client's 501.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{parameter}: {problem}")]
pub struct DsnError {
    pub parameter: &'static str,
    pub problem: &'static str,
}

fn err(parameter: &'static str, problem: &'static str) -> DsnError {
    DsnError { parameter, problem }
}

/// Decodes xtext (RFC 3461 §4): printable ASCII `!` to `~` except `+` and `=`, and `+XX` (two
/// upper-case hex digits) for any octet. The decoded octets must be ASCII (ENVID and ORCPT are
/// ASCII: §4.2, §4.4) and no control characters, so that a decoded value can never end a
/// header field it is quoted in. Linear in the input.
pub fn xtext_decode(s: &str, parameter: &'static str) -> Result<String, DsnError> {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                let hex = |b: u8| match b {
                    b'0'..=b'9' => Some(b - b'0'),
                    b'A'..=b'F' => Some(b - b'A' + 10),
                    _ => None,
                };
                let (Some(h), Some(l)) = (
                    bytes.get(i + 1).copied().and_then(hex),
                    bytes.get(i + 2).copied().and_then(hex),
                ) else {
                    return Err(err(
                        parameter,
                        "xtext: '+' must be followed by two upper-case hex digits",
                    ));
                };
                let octet = (h << 4) | l;
                if !(0x20..0x7f).contains(&octet) {
                    return Err(err(
                        parameter,
                        "xtext: encodes a control character or a non-ASCII octet",
                    ));
                }
                out.push(char::from(octet));
                i += 3;
            }
            b'=' => return Err(err(parameter, "xtext: '=' must be encoded as +3D")),
            b @ b'!'..=b'~' => {
                out.push(char::from(b));
                i += 1;
            }
            _ => {
                return Err(err(
                    parameter,
                    "xtext: only printable ASCII characters are allowed",
                ));
            }
        }
    }
    Ok(out)
}

/// Encodes as xtext (RFC 3461 §4): `+`, `=`, spaces, controls and octets beyond ASCII as `+XX`.
pub fn xtext_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

/// The esmtp-parameters of a MAIL or RCPT command line (what follows the path), split at
/// spaces: `(keyword, value)`. RFC 5321 §4.1.2: `esmtp-keyword ["=" esmtp-value]`.
fn parameters(params: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    params
        .split([' ', '\t'])
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (p, None),
        })
}

/// The DSN parameters of `MAIL FROM` (RFC 3461 §4.3, §4.4); `params` is the part of the line
/// after the reverse-path. Other parameters are left to the command's own parser. Each DSN
/// parameter may be given once (§4: "MUST NOT ... more than once").
pub fn parse_mail_parameters(params: &str) -> Result<MessageDsn, DsnError> {
    let mut dsn = MessageDsn::default();
    for (key, value) in parameters(params) {
        if key.eq_ignore_ascii_case("RET") {
            if dsn.ret.is_some() {
                return Err(err("RET", "given more than once"));
            }
            dsn.ret = Some(match value.map(str::to_ascii_uppercase).as_deref() {
                Some("FULL") => Ret::Full,
                Some("HDRS") => Ret::Headers,
                _ => return Err(err("RET", "must be FULL or HDRS")),
            });
        } else if key.eq_ignore_ascii_case("ENVID") {
            if dsn.envid.is_some() {
                return Err(err("ENVID", "given more than once"));
            }
            let value = value.unwrap_or("");
            if value.is_empty() {
                return Err(err("ENVID", "needs a value"));
            }
            if value.len() > MAX_ENVID {
                return Err(err("ENVID", "longer than 100 characters"));
            }
            dsn.envid = Some(xtext_decode(value, "ENVID")?);
        }
    }
    Ok(dsn)
}

/// The DSN parameters of `RCPT TO` (RFC 3461 §4.1, §4.2); `params` is the part of the line
/// after the forward-path.
pub fn parse_rcpt_parameters(params: &str) -> Result<RecipientDsn, DsnError> {
    let mut dsn = RecipientDsn::default();
    for (key, value) in parameters(params) {
        if key.eq_ignore_ascii_case("NOTIFY") {
            if dsn.notify.is_some() {
                return Err(err("NOTIFY", "given more than once"));
            }
            dsn.notify = Some(parse_notify(value.unwrap_or(""))?);
        } else if key.eq_ignore_ascii_case("ORCPT") {
            if dsn.orcpt.is_some() {
                return Err(err("ORCPT", "given more than once"));
            }
            let value = value.unwrap_or("");
            if value.len() > MAX_ORCPT {
                return Err(err("ORCPT", "longer than 500 characters"));
            }
            // RFC 3461 §4.2: orcpt-parameter = "ORCPT=" original-recipient-address;
            // original-recipient-address = addr-type ";" xtext; addr-type is an atom.
            let Some((addr_type, address)) = value.split_once(';') else {
                return Err(err(
                    "ORCPT",
                    "must be addr-type;xtext (rfc822;user@example.com)",
                ));
            };
            let atom = |s: &str| {
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b))
            };
            if !atom(addr_type) {
                return Err(err("ORCPT", "the address type must be an atom (rfc822)"));
            }
            if address.is_empty() {
                return Err(err("ORCPT", "needs an address after the type"));
            }
            dsn.orcpt = Some(Orcpt {
                addr_type: addr_type.to_ascii_lowercase(),
                address: xtext_decode(address, "ORCPT")?,
            });
        }
    }
    Ok(dsn)
}

/// `NEVER`, or a comma-separated list of `SUCCESS`, `FAILURE`, `DELAY` (each at most once);
/// RFC 3461 §4.1: NEVER may not be combined with the others.
fn parse_notify(value: &str) -> Result<Notify, DsnError> {
    if value.eq_ignore_ascii_case("NEVER") {
        return Ok(Notify::NEVER);
    }
    if value.is_empty() {
        return Err(err("NOTIFY", "needs NEVER or SUCCESS, FAILURE, DELAY"));
    }
    let mut n = Notify::NEVER;
    for word in value.split(',') {
        let flag = match word.to_ascii_uppercase().as_str() {
            "SUCCESS" => &mut n.success,
            "FAILURE" => &mut n.failure,
            "DELAY" => &mut n.delay,
            "NEVER" => return Err(err("NOTIFY", "NEVER cannot be combined with other values")),
            _ => {
                return Err(err(
                    "NOTIFY",
                    "must be NEVER or a list of SUCCESS, FAILURE, DELAY",
                ));
            }
        };
        if *flag {
            return Err(err("NOTIFY", "a value is given more than once"));
        }
        *flag = true;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xtext_round_trips_and_refuses_what_rfc_3461_does_not_allow() {
        assert_eq!(xtext_decode("a+2Bb+3Dc", "ENVID").unwrap(), "a+b=c");
        assert_eq!(xtext_encode("a+b=c d"), "a+2Bb+3Dc+20d");
        assert_eq!(
            xtext_decode(&xtext_encode("x y+z=é"), "E").map_err(|e| e.problem),
            Err("xtext: encodes a control character or a non-ASCII octet")
        );
        for bad in ["+", "+2", "+2b", "+ZZ", "a=b", "+0D+0A", "é"] {
            assert!(xtext_decode(bad, "ENVID").is_err(), "{bad}");
        }
    }

    #[test]
    fn mail_parameters() {
        assert_eq!(
            parse_mail_parameters(" SIZE=10 ret=hdrs ENVID=QQ+2B1").unwrap(),
            MessageDsn {
                ret: Some(Ret::Headers),
                envid: Some("QQ+1".into())
            }
        );
        assert_eq!(
            parse_mail_parameters("BODY=8BITMIME").unwrap(),
            MessageDsn::default()
        );
        let problem = |p: &str| parse_mail_parameters(p).unwrap_err().to_string();
        assert_eq!(problem("RET=FULL RET=HDRS"), "RET: given more than once");
        assert_eq!(problem("RET=ALL"), "RET: must be FULL or HDRS");
        assert_eq!(problem("RET"), "RET: must be FULL or HDRS");
        assert_eq!(problem("ENVID=a ENVID=b"), "ENVID: given more than once");
        assert_eq!(problem("ENVID="), "ENVID: needs a value");
        assert_eq!(
            problem(&format!("ENVID={}", "x".repeat(101))),
            "ENVID: longer than 100 characters"
        );
        assert!(parse_mail_parameters(&format!("ENVID={}", "x".repeat(100))).is_ok());
    }

    #[test]
    fn rcpt_parameters() {
        let d =
            parse_rcpt_parameters("NOTIFY=SUCCESS,DELAY ORCPT=rfc822;a+2Bb@example.com").unwrap();
        assert_eq!(
            d.notify,
            Some(Notify {
                success: true,
                failure: false,
                delay: true
            })
        );
        assert_eq!(d.orcpt.unwrap().as_stored(), "rfc822;a+b@example.com");
        assert_eq!(
            parse_rcpt_parameters("notify=never").unwrap().notify,
            Some(Notify::NEVER)
        );
        assert_eq!(
            parse_rcpt_parameters("").unwrap().effective_notify(),
            Notify::DEFAULT
        );
        let problem = |p: &str| parse_rcpt_parameters(p).unwrap_err().to_string();
        assert_eq!(
            problem("NOTIFY=NEVER,FAILURE"),
            "NOTIFY: NEVER cannot be combined with other values"
        );
        assert_eq!(
            problem("NOTIFY=FAILURE,NEVER"),
            "NOTIFY: NEVER cannot be combined with other values"
        );
        assert_eq!(
            problem("NOTIFY=FAILURE,FAILURE"),
            "NOTIFY: a value is given more than once"
        );
        assert_eq!(
            problem("NOTIFY=FAILURE NOTIFY=DELAY"),
            "NOTIFY: given more than once"
        );
        assert_eq!(
            problem("NOTIFY=SOMETIMES"),
            "NOTIFY: must be NEVER or a list of SUCCESS, FAILURE, DELAY"
        );
        assert_eq!(
            problem("ORCPT=a@b"),
            "ORCPT: must be addr-type;xtext (rfc822;user@example.com)"
        );
        assert_eq!(
            problem("ORCPT=;a@b"),
            "ORCPT: the address type must be an atom (rfc822)"
        );
        assert_eq!(
            problem(&format!("ORCPT=rfc822;{}@b", "x".repeat(500))),
            "ORCPT: longer than 500 characters"
        );
        assert!(problem("ORCPT=rfc822;a=b").starts_with("ORCPT: xtext"));
    }

    #[test]
    fn stored_forms_round_trip() {
        for n in [
            Notify::NEVER,
            Notify::DEFAULT,
            Notify {
                success: true,
                failure: true,
                delay: true,
            },
        ] {
            assert_eq!(Notify::from_stored(&n.as_stored()), Some(n));
        }
        assert_eq!(Ret::from_stored("hdrs"), Some(Ret::Headers));
        let o = Orcpt {
            addr_type: "rfc822".into(),
            address: "x@y".into(),
        };
        assert_eq!(Orcpt::from_stored(&o.as_stored()), Some(o));
    }
}
