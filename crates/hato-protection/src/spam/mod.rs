//! The spam filter (issue 9; `exchange-online-behaviour.md` §6): what a message *is* (the
//! classifier and the heuristics, computed once per message, policy-independent), who sent it
//! (sender authentication, once per message), and what each recipient's policy makes of both
//! (the verdict, the SCL, the action, per recipient).
//!
//! This module holds the types the three halves share, so each half can be built and tested on
//! its own and the content pipeline (`hato-transport`'s `content.rs`) joins them:
//!
//! - the classifier and the content heuristics produce a [`ContentSignals`];
//! - sender authentication (and the client's country) produce an [`AuthSignals`];
//! - the tenant's spam filter policy turns [`SpamSignals`] (both, plus what the pipeline already
//!   knows: the connection filter's allow list, a transport rule's SCL, the envelope) into a
//!   decision per recipient.
//!
//! Every signal carries its evidence as [`Reason`]s, so the decision explains itself (SCL with
//! the classifier's strongest features, each heuristic that fired and on what).

pub mod auth;
pub mod classifier;
pub mod country;
pub mod decide;
pub mod junk;
pub mod outbound;
pub mod policy;

pub use policy::{AsfMode, SpamAction, SpamFilterPolicy, SpamPolicyError};

use hato_core::Reason;
use serde::{Deserialize, Serialize};

/// Exchange's Advanced Spam Filter options (ASF, `exchange-online-behaviour.md` §6.3), as the
/// heuristics that detect them. The content heuristics report the ones they saw in the message
/// ([`ContentSignals::asf`]); sender authentication the SPF/From ones ([`AuthSignals::asf`]);
/// the policy decides, per option, `off` (ignored), `on` (acted on) or `test` (only an
/// `X-CustomSpam` header).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Asf {
    /// `IncreaseScoreWithImageLinks`: links to images on other sites.
    IncreaseScoreWithImageLinks,
    /// `IncreaseScoreWithNumericIps`: URLs whose host is an IP address.
    IncreaseScoreWithNumericIps,
    /// `IncreaseScoreWithRedirectToOtherPort`: URLs to a port other than 80/443.
    IncreaseScoreWithRedirectToOtherPort,
    /// `IncreaseScoreWithBizOrInfoUrls`: URLs in `.biz` or `.info`.
    IncreaseScoreWithBizOrInfoUrls,
    /// `MarkAsSpamEmptyMessages`: no subject and no body or attachment content.
    MarkAsSpamEmptyMessages,
    /// `MarkAsSpamJavaScriptInHtml`.
    MarkAsSpamJavaScriptInHtml,
    /// `MarkAsSpamFramesInHtml`.
    MarkAsSpamFramesInHtml,
    /// `MarkAsSpamObjectTagsInHtml`.
    MarkAsSpamObjectTagsInHtml,
    /// `MarkAsSpamEmbedTagsInHtml`.
    MarkAsSpamEmbedTagsInHtml,
    /// `MarkAsSpamFormTagsInHtml`.
    MarkAsSpamFormTagsInHtml,
    /// `MarkAsSpamWebBugsInHtml`: a tiny (≤ 2×2) remote image, the read-tracking pixel.
    MarkAsSpamWebBugsInHtml,
    /// `MarkAsSpamSensitiveWordList`: words from the built-in list of sensitive words.
    MarkAsSpamSensitiveWordList,
    /// `MarkAsSpamSpfRecordHardFail`: SPF `fail` (→ high confidence spam, `X-CustomSpam: SPF
    /// Record Fail`).
    MarkAsSpamSpfRecordHardFail,
    /// `MarkAsSpamFromAddressAuthFail`: the From domain fails SPF (→ `X-CustomSpam: SPF From
    /// Record Fail`).
    MarkAsSpamFromAddressAuthFail,
    /// `MarkAsSpamNdrBackscatter`: a bounce for a message this organisation never sent.
    MarkAsSpamNdrBackscatter,
}

impl Asf {
    pub const ALL: [Asf; 15] = [
        Asf::IncreaseScoreWithImageLinks,
        Asf::IncreaseScoreWithNumericIps,
        Asf::IncreaseScoreWithRedirectToOtherPort,
        Asf::IncreaseScoreWithBizOrInfoUrls,
        Asf::MarkAsSpamEmptyMessages,
        Asf::MarkAsSpamJavaScriptInHtml,
        Asf::MarkAsSpamFramesInHtml,
        Asf::MarkAsSpamObjectTagsInHtml,
        Asf::MarkAsSpamEmbedTagsInHtml,
        Asf::MarkAsSpamFormTagsInHtml,
        Asf::MarkAsSpamWebBugsInHtml,
        Asf::MarkAsSpamSensitiveWordList,
        Asf::MarkAsSpamSpfRecordHardFail,
        Asf::MarkAsSpamFromAddressAuthFail,
        Asf::MarkAsSpamNdrBackscatter,
    ];

    /// The kebab-case name (the CLI flag without `--`, and the serde name).
    pub fn name(self) -> &'static str {
        match self {
            Asf::IncreaseScoreWithImageLinks => "increase-score-with-image-links",
            Asf::IncreaseScoreWithNumericIps => "increase-score-with-numeric-ips",
            Asf::IncreaseScoreWithRedirectToOtherPort => {
                "increase-score-with-redirect-to-other-port"
            }
            Asf::IncreaseScoreWithBizOrInfoUrls => "increase-score-with-biz-or-info-urls",
            Asf::MarkAsSpamEmptyMessages => "mark-as-spam-empty-messages",
            Asf::MarkAsSpamJavaScriptInHtml => "mark-as-spam-javascript-in-html",
            Asf::MarkAsSpamFramesInHtml => "mark-as-spam-frames-in-html",
            Asf::MarkAsSpamObjectTagsInHtml => "mark-as-spam-object-tags-in-html",
            Asf::MarkAsSpamEmbedTagsInHtml => "mark-as-spam-embed-tags-in-html",
            Asf::MarkAsSpamFormTagsInHtml => "mark-as-spam-form-tags-in-html",
            Asf::MarkAsSpamWebBugsInHtml => "mark-as-spam-web-bugs-in-html",
            Asf::MarkAsSpamSensitiveWordList => "mark-as-spam-sensitive-word-list",
            Asf::MarkAsSpamSpfRecordHardFail => "mark-as-spam-spf-record-hard-fail",
            Asf::MarkAsSpamFromAddressAuthFail => "mark-as-spam-from-address-auth-fail",
            Asf::MarkAsSpamNdrBackscatter => "mark-as-spam-ndr-backscatter",
        }
    }

    /// `IncreaseScoreWith*` options raise the score (to spam); `MarkAsSpam*` ones make the
    /// message high confidence spam.
    pub fn marks_as_spam(self) -> bool {
        !matches!(
            self,
            Asf::IncreaseScoreWithImageLinks
                | Asf::IncreaseScoreWithNumericIps
                | Asf::IncreaseScoreWithRedirectToOtherPort
                | Asf::IncreaseScoreWithBizOrInfoUrls
        )
    }
}

/// One heuristic that fired, with what it saw (`href="http://198.51.100.7/login"`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AsfHit {
    pub option: Asf,
    pub evidence: String,
}

/// How sure the content is a phishing attempt (credential theft, disguised links, brand
/// imitation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhishLevel {
    #[default]
    None,
    Phish,
    HighConfidence,
}

/// What the classifier and the content heuristics found in one message: computed once per
/// message from its bytes (never from the envelope or the connection), the same for every
/// recipient. Per-tenant personalisation is applied by the classifier on top of the shipped
/// model when it scores for a tenant; this is the result for one tenant.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ContentSignals {
    /// The calibrated probability that the message is spam, 0–1.
    pub spam_probability: f64,
    /// The SCL the classifier gives on its own: 1 (not spam), 5–6 (spam), 7–9 (high
    /// confidence spam); never 2–4 (§6.1). 0 is not used by the classifier.
    pub scl: i8,
    /// The bulk complaint level, 0 (not bulk) to 9 (§6.2).
    pub bcl: u8,
    pub phish: PhishLevel,
    /// The message's main language, ISO 639-1 (`en`, `ja`), when it could be told.
    pub language: Option<String>,
    /// The ASF heuristics the content triggered (whatever the policy says of them).
    pub asf: Vec<AsfHit>,
    /// Why: the classifier's strongest features with their weights, the phish and bulk
    /// evidence. For the trace and `hato explain`.
    pub reasons: Vec<Reason>,
}

/// The result of one SPF, DKIM, DMARC or ARC check, with RFC 8601's result names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthResult {
    #[default]
    None,
    Pass,
    Fail,
    SoftFail,
    Neutral,
    TempError,
    PermError,
}

/// The DMARC policy the From domain publishes (RFC 7489 §6.3 `p=`/`sp=`), after `pct`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DmarcPolicy {
    #[default]
    None,
    Quarantine,
    Reject,
}

/// What sender authentication found (computed once per message) and the client's country.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AuthSignals {
    pub spf: AuthResult,
    pub dkim: AuthResult,
    pub dmarc: AuthResult,
    pub arc: AuthResult,
    /// The policy to apply when `dmarc` is `Fail` (`None` when the domain publishes none, or
    /// `pct` sampling chose not to apply it).
    pub dmarc_policy: DmarcPolicy,
    /// The RFC 5322.From domain, lower case.
    pub from_domain: Option<String>,
    /// The From domain when DMARC passed aligned (SPF or DKIM, RFC 7489 §3.1): the sender's
    /// domain is then an authenticated identity.
    pub authenticated_domain: Option<String>,
    /// The `Authentication-Results` header field value (RFC 8601), without the field name.
    pub authentication_results: String,
    /// The client's country (ISO 3166-1 alpha-2, upper case) from the bundled IP table.
    pub country: Option<String>,
    /// `MarkAsSpamSpfRecordHardFail` / `MarkAsSpamFromAddressAuthFail` when they apply.
    pub asf: Vec<AsfHit>,
    pub reasons: Vec<Reason>,
}

/// Everything the spam filter policy decides over, for one recipient.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SpamSignals {
    pub content: ContentSignals,
    pub auth: AuthSignals,
    /// The connection filter's IP allow list matched for this recipient's tenant (`IPV:CAL`):
    /// spam filtering is skipped (SCL −1).
    pub ip_allow_listed: bool,
    /// A transport rule's `SetSCL` for this recipient: −1 skips filtering (`SFV:SKN`), 5–9
    /// marks spam before filtering (`SFV:SKS`).
    pub rule_scl: Option<i8>,
    /// The envelope sender (`MAIL FROM`), lower case; `None` for the null reverse-path.
    pub envelope_sender: Option<String>,
    /// The RFC 5322.From address, lower case (allowed/blocked senders match it and the
    /// envelope sender).
    pub from_address: Option<String>,
    /// The From domain is one of the recipient tenant's accepted domains and the message did
    /// not authenticate (no aligned DMARC pass, no authenticated submission): `CAT:SPOOF`.
    pub spoofs_own_domain: bool,
}
