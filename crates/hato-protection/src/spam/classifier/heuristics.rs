//! The named heuristics: what spam *does* (disguised links, obfuscated text, HTML tricks, odd
//! headers, bulk-mailer traits, money/urgency/credential phrases), each a feature the model
//! weighs. Their values are in 0–1 (a flag, or a count or share squashed into 0–1), so a weight
//! reads as "what this trait is worth at full strength".
//!
//! The order of [`H`] is part of the model file's format: the model stores one weight per
//! heuristic in this order and checks [`names_digest`] on load. Add new heuristics at the end
//! and retrain.

use crate::spam::Asf;

macro_rules! heuristics {
    ($( $variant:ident = $name:literal, $asf:expr, $doc:literal; )*) => {
        /// One heuristic feature (its index in the model's heuristic weights).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(usize)]
        pub enum H {
            $( #[doc = $doc] $variant, )*
        }

        impl H {
            pub const ALL: &'static [H] = &[ $( H::$variant, )* ];

            /// The readable name (in reasons, `hato spam eval`, the docs).
            pub fn name(self) -> &'static str {
                match self { $( H::$variant => $name, )* }
            }

            /// The ASF option this heuristic is, when it is one (reported as an `AsfHit`
            /// whatever its weight).
            pub fn asf(self) -> Option<Asf> {
                match self { $( H::$variant => $asf, )* }
            }

            /// What it means, for people.
            pub fn description(self) -> &'static str {
                match self { $( H::$variant => $doc, )* }
            }
        }
    };
}

heuristics! {
    UrlCount = "url-count", None, "how many links (squashed: 50 or more is 1)";
    UrlNumericIp = "url-numeric-ip", Some(Asf::IncreaseScoreWithNumericIps), "a link whose host is an IP address";
    UrlOtherPort = "url-other-port", Some(Asf::IncreaseScoreWithRedirectToOtherPort), "a link to a port other than 80/443";
    UrlBizInfo = "url-biz-or-info", Some(Asf::IncreaseScoreWithBizOrInfoUrls), "a link in .biz or .info";
    UrlShortener = "url-shortener", None, "a link through a URL shortener";
    UrlUserinfo = "url-at-sign", None, "a link with user@ before the host (http://bank.example@evil.example/)";
    UrlPunycode = "url-punycode", None, "a link host in punycode (xn--) or mixing scripts";
    UrlAnchorMismatch = "url-anchor-mismatch", None, "a link whose text shows one domain and whose target is another";
    UrlObfuscated = "url-obfuscated", None, "a link host written in %-escapes, or a decimal/hex IP";
    UrlManyDomains = "url-many-domains", None, "links to five or more different domains";
    UrlLoginPath = "url-login-path", None, "a link to a login/verify/account page";
    UrlRiskyTld = "url-risky-tld", None, "a link in a top-level domain mostly used for abuse";
    UrlUnsubscribe = "url-unsubscribe", None, "an unsubscribe/opt-out link";
    HtmlPresent = "html", None, "an HTML body";
    HtmlOnly = "html-only", None, "HTML without a plain-text alternative";
    HtmlScript = "html-script", Some(Asf::MarkAsSpamJavaScriptInHtml), "JavaScript in the HTML";
    HtmlFrame = "html-frame", Some(Asf::MarkAsSpamFramesInHtml), "a frame or iframe in the HTML";
    HtmlObject = "html-object", Some(Asf::MarkAsSpamObjectTagsInHtml), "an <object> tag in the HTML";
    HtmlEmbed = "html-embed", Some(Asf::MarkAsSpamEmbedTagsInHtml), "an <embed> tag in the HTML";
    HtmlForm = "html-form", Some(Asf::MarkAsSpamFormTagsInHtml), "a form in the HTML";
    HtmlWebBug = "html-web-bug", Some(Asf::MarkAsSpamWebBugsInHtml), "a remote image of at most 2x2 pixels (a tracking pixel)";
    HtmlRemoteImage = "html-remote-image", Some(Asf::IncreaseScoreWithImageLinks), "images loaded from other sites";
    HtmlImageOnly = "html-image-only", None, "images with almost no text";
    HtmlInvisibleText = "html-invisible-text", None, "text hidden from the reader (display:none, font-size:0, colour of the background)";
    HtmlTinyFont = "html-tiny-font", None, "text in a tiny font";
    HtmlEntitySoup = "html-entity-soup", None, "text written in character entities";
    HtmlCommentSplit = "html-comment-split", None, "HTML comments splitting words";
    HtmlLowTextRatio = "html-low-text-ratio", None, "much markup for little visible text";
    HtmlMetaRefresh = "html-meta-refresh", None, "a meta refresh (redirect)";
    HtmlBase64 = "html-base64", None, "the HTML body base64-encoded";
    TextZeroWidth = "text-zero-width", None, "zero-width or soft-hyphen characters inside the text";
    TextCaps = "text-capitals", None, "a high share of capital letters";
    TextExclamation = "text-exclamations", None, "many exclamation marks";
    TextLeet = "text-leet", None, "words mixing letters and digits (v1agra, fr33)";
    TextMoney = "text-money", None, "money phrases and amounts";
    TextUrgency = "text-urgency", None, "urgency phrases (act now, limited time)";
    TextCredential = "text-credential", None, "requests for passwords or account details";
    TextSensitive = "text-sensitive-words", Some(Asf::MarkAsSpamSensitiveWordList), "words from the built-in sensitive word list";
    TextEmpty = "empty-message", Some(Asf::MarkAsSpamEmptyMessages), "no subject and no body or attachment content";
    TextShort = "text-short", None, "almost no text";
    TextRemoval = "text-removal-phrases", None, "removal and opt-out boilerplate";
    TextNotSpam = "text-not-spam-claim", None, "claims of not being spam or of legal compliance";
    TextQuoted = "text-quoted-reply", None, "quoted lines of an earlier message";
    TextSignature = "text-signature", None, "a signature separator";
    SubjectMissing = "subject-missing", None, "no Subject";
    SubjectCaps = "subject-capitals", None, "a subject mostly in capitals";
    SubjectPunct = "subject-exclaim-money", None, "a subject with ! or $";
    SubjectReply = "subject-reply", None, "a subject starting Re:/Fwd:";
    SubjectTrailingId = "subject-trailing-id", None, "a subject ending in a random id or many spaces";
    DateMissing = "date-missing", None, "no Date";
    DateMalformed = "date-malformed", None, "a Date that does not parse or is implausible";
    MsgIdMissing = "message-id-missing", None, "no Message-ID";
    MsgIdMalformed = "message-id-malformed", None, "a malformed Message-ID";
    FromMissing = "from-missing", None, "no usable From address";
    FromNameOtherAddress = "from-name-other-address", None, "a From display name holding an address of another domain";
    FromNoName = "from-no-name", None, "a From without a display name";
    FromLocalDigits = "from-local-digits", None, "a From local part with many digits";
    FromFreemail = "from-freemail", None, "a From at a free mail provider";
    ReplyToOther = "reply-to-other-domain", None, "a Reply-To at another domain than From";
    ToMissing = "to-missing", None, "no To (or undisclosed recipients)";
    MimeVersionMissing = "mime-version-missing", None, "MIME parts without MIME-Version";
    MailerBulk = "x-mailer-bulk", None, "a mass-mailing program in X-Mailer";
    MailerMissing = "x-mailer-missing", None, "neither X-Mailer nor User-Agent";
    ListUnsubscribe = "list-unsubscribe", None, "a List-Unsubscribe header";
    ListId = "list-id", None, "a List-Id header (a mailing list)";
    PrecedenceBulk = "precedence-bulk", None, "Precedence: bulk, junk or list";
    AttachExecutable = "attachment-executable", None, "an executable attachment";
    AttachArchive = "attachment-archive", None, "an archive attachment";
    AttachImage = "attachment-image", None, "an image attachment";
    MimeManyParts = "mime-many-parts", None, "many MIME parts";
    Bounce = "bounce", Some(Asf::MarkAsSpamNdrBackscatter), "a delivery status notification (bounce)";
    CharsetMismatch = "charset-undeclared-8bit", None, "8-bit text without a charset parameter (RFC 2045 §5.2: US-ASCII)";
    UrlAllOffDomain = "url-all-off-domain", None, "links, none of them to the From domain";
    MsgIdFromDomain = "message-id-from-domain", None, "a Message-ID of the From domain";
    MimeLeak = "mime-leak", None, "MIME header lines or undecoded encoded-words in the visible text (broken MIME from a mass mailer)";
    DateOdd = "date-odd", None, "a Date whose weekday is not the date's, with a 2-digit year, or with a time zone by name or of odd minutes";
    CharsetUnused = "charset-declared-unused", None, "a text part declared in a non-Latin charset whose text is plain ASCII";
    HtmlBigFont = "html-big-font", None, "large fonts in the HTML";
    HtmlFontColours = "html-font-colours", None, "text in several colours";
    TextShortLink = "text-short-with-link", None, "a few lines of text and a link";
    SubjectFakeReply = "subject-fake-reply", None, "a Re: subject without In-Reply-To or References";
    FromNameShouting = "from-name-shouting", None, "a From display name in capitals or with ! or $";
    FromNameAddress = "from-name-is-address", None, "a From display name that is an address";
    FromLocalRandom = "from-local-random", None, "a From local part with a long run of consonants";
    TextTollFree = "text-toll-free", None, "toll-free phone numbers";
    TextBase64 = "text-base64", None, "the plain-text body base64-encoded";
    MailerRandom = "x-mailer-random", None, "an X-Mailer that is a generated token, not a program's name";
}

/// The number of heuristic features.
pub const COUNT: usize = H::ALL.len();

/// A digest of the heuristics' names in order: a model trained with another list is refused on
/// load instead of weighing the wrong features.
pub fn names_digest() -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for x in H::ALL {
        for b in x.name().bytes().chain([0u8]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// `n` squashed into 0–1, reaching 1 at `full`.
pub fn squash(n: usize, full: usize) -> f32 {
    if full == 0 {
        return 1.0;
    }
    (n.min(full) as f32) / (full as f32)
}

/// Phrases worth a feature, matched case-insensitively over the decoded text (ASCII folding).
pub const MONEY: &[&str] = &[
    "million dollars",
    "cash",
    "earn $",
    "income",
    "100% free",
    "no cost",
    "credit card",
    "mortgage",
    "refinance",
    "loan",
    "investment",
    "$$$",
    "winner",
    "you have won",
    "lottery",
    "prize",
    "casino",
    "debt",
    "save up to",
    "lowest price",
    "best price",
    "discount",
    "order now",
    "money back",
    "guarantee",
    "per week",
    "per month",
    "financial freedom",
    "work from home",
    "extra income",
    "wire transfer",
    "western union",
    "bitcoin",
];

pub const URGENCY: &[&str] = &[
    "act now",
    "limited time",
    "urgent",
    "immediately",
    "expires",
    "don't delay",
    "do not delay",
    "last chance",
    "call now",
    "today only",
    "hurry",
    "while supplies last",
    "within 24 hours",
    "within 48 hours",
    "final notice",
    "respond now",
    "click here",
    "click below",
];

pub const CREDENTIAL: &[&str] = &[
    "verify your account",
    "confirm your account",
    "verify your identity",
    "confirm your identity",
    "update your account",
    "update your information",
    "account has been suspended",
    "account will be suspended",
    "account has been locked",
    "unusual activity",
    "unauthorized access",
    "confirm your password",
    "enter your password",
    "reset your password",
    "your password",
    "login details",
    "log in to your account",
    "sign in to your account",
    "social security number",
    "bank account",
    "account number",
    "pin number",
    "billing information",
];

/// The built-in sensitive word list (`MarkAsSpamSensitiveWordList`: Exchange's list is of
/// sexually explicit and similarly offensive words; this is a small one of the same kind).
pub const SENSITIVE: &[&str] = &[
    "viagra",
    "cialis",
    "porn",
    "xxx",
    "nude",
    "naked",
    "penis",
    "erection",
    "orgasm",
    "horny",
    "sexy",
    "hardcore",
    "adult site",
    "adult entertainment",
    "enlargement",
    "escort",
];

pub const REMOVAL: &[&str] = &[
    "to be removed",
    "remove me",
    "removal instructions",
    "to unsubscribe",
    "opt-out",
    "opt out",
    "opted in",
    "opt-in",
    "you are receiving this",
    "you received this",
    "no longer wish to receive",
    "one-time mailing",
    "one time mailing",
    "mailing list",
    "bulk email",
];

pub const NOT_SPAM: &[&str] = &[
    "this is not spam",
    "this is not a spam",
    "not unsolicited",
    "is not spam",
    "s.1618",
    "s. 1618",
    "section 301",
    "can-spam",
    "in compliance with",
];

/// MIME and header syntax that a reader never sees in a well-formed message: its presence in the
/// visible text means the sending program broke the structure (or left RFC 2047 encoded-words
/// undecoded), a mass-mailer trait.
pub const MIME_LEAK: &[&str] = &[
    "content-type: text/",
    "content-type: multipart/",
    "content-transfer-encoding:",
    "mime-version: 1.0",
    "this is a multi-part message in mime format",
    "this is a multipart mime message",
    "=?iso-8859-",
    "=?gb2312?",
    "=?big5?",
    "=?utf-8?",
    "=?windows-125",
    "=?koi8-r?",
    "=?ks_c_5601",
    "=?euc-kr?",
    "=?iso-2022-jp?",
    "=?shift_jis?",
];

/// North American toll-free numbers (spam asks to call; mail between people rarely does).
pub const TOLL_FREE: &[&str] = &[
    "1-800",
    "1-888",
    "1-877",
    "1-866",
    "1 800 ",
    "1 888 ",
    "(800)",
    "(888)",
    "(877)",
    "(866)",
    "toll free",
    "toll-free",
];

/// Charsets of non-Latin scripts: a part declared in one of them holds text of that script.
pub const NON_LATIN_CHARSETS: &[&str] = &[
    "gb2312",
    "gbk",
    "gb18030",
    "big5",
    "ks_c_5601-1987",
    "euc-kr",
    "euc-jp",
    "iso-2022-jp",
    "shift_jis",
    "koi8-r",
    "koi8-u",
    "windows-1251",
    "iso-8859-5",
    "windows-1253",
    "iso-8859-7",
    "windows-1255",
    "iso-8859-8",
    "windows-1256",
    "iso-8859-6",
    "tis-620",
    "windows-874",
];

/// URL shorteners.
pub const SHORTENERS: &[&str] = &[
    "bit.ly",
    "tinyurl.com",
    "goo.gl",
    "t.co",
    "ow.ly",
    "is.gd",
    "buff.ly",
    "rebrand.ly",
    "cutt.ly",
    "tiny.cc",
    "shorturl.at",
    "rb.gy",
    "t.ly",
    "s.id",
];

/// Top-level domains mostly used for abuse (Spamhaus' and others' published "most abused"
/// lists, stable over years).
pub const RISKY_TLDS: &[&str] = &[
    "ru", "cn", "tk", "ml", "ga", "cf", "gq", "top", "xyz", "click", "work", "loan", "win", "bid",
    "ws", "su", "kr", "tw", "pw", "cc", "link", "rest", "zip", "mov",
];

/// Free mail providers (a From there says nothing of an organisation).
pub const FREEMAIL: &[&str] = &[
    "hotmail.com",
    "yahoo.com",
    "aol.com",
    "msn.com",
    "gmail.com",
    "outlook.com",
    "mail.com",
    "excite.com",
    "juno.com",
    "netscape.net",
    "lycos.com",
    "mail.ru",
    "yandex.ru",
    "163.com",
    "qq.com",
    "sina.com",
    "live.com",
    "icloud.com",
    "gmx.com",
    "gmx.net",
    "web.de",
    "yahoo.co.uk",
    "yahoo.co.jp",
];

/// Mass-mailing programs and email service providers seen in X-Mailer.
pub const BULK_MAILERS: &[&str] = &[
    "mailchimp",
    "constant contact",
    "sendgrid",
    "mailgun",
    "campaign",
    "group mail",
    "mass mail",
    "massmail",
    "bulk",
    "emailer",
    "e-mailer",
    "atlas mailer",
    "worldmerge",
    "advanced mass sender",
    "gold mailer",
    "extractor",
    "list builder",
    "newsletter",
    "broadcast",
    "dm mailer",
    "mailking",
    "stealth",
    "aureate",
];

/// Login-page words in a link's path.
pub const LOGIN_PATH: &[&str] = &[
    "login", "logon", "signin", "sign-in", "verify", "account", "secure", "update", "webscr",
    "banking", "password", "confirm",
];

/// Brands phishers imitate (their names in text with links elsewhere).
pub const BRANDS: &[(&str, &str)] = &[
    ("paypal", "paypal.com"),
    ("ebay", "ebay.com"),
    ("amazon", "amazon.com"),
    ("apple", "apple.com"),
    ("microsoft", "microsoft.com"),
    ("office 365", "microsoft.com"),
    ("netflix", "netflix.com"),
    ("wells fargo", "wellsfargo.com"),
    ("bank of america", "bankofamerica.com"),
    ("chase", "chase.com"),
    ("citibank", "citibank.com"),
    ("dhl", "dhl.com"),
    ("fedex", "fedex.com"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_kebab_and_asf_options_map_once() {
        let mut names: Vec<&str> = H::ALL.iter().map(|h| h.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), COUNT);
        for h in H::ALL {
            assert!(
                h.name()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{}",
                h.name()
            );
            assert_eq!(H::ALL[*h as usize], *h);
        }
        // Every content ASF option is a heuristic; SPF/From ones come from authentication.
        for asf in Asf::ALL {
            let n = H::ALL.iter().filter(|h| h.asf() == Some(asf)).count();
            let from_auth = matches!(
                asf,
                Asf::MarkAsSpamSpfRecordHardFail | Asf::MarkAsSpamFromAddressAuthFail
            );
            assert_eq!(n, usize::from(!from_auth), "{asf:?}");
        }
    }
}
