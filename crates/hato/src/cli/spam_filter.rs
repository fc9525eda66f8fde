//! `hato spam-filter list|show|set|add|remove --tenant T [NAME]`: a tenant's anti-spam policies
//! (Exchange's `Get-`/`Set-`/`New-`/`Remove-HostedContentFilterPolicy` with their rules), every
//! parameter as a kebab-case flag of its Exchange name, with Exchange's defaults; `show` and
//! `set` without a name are about the default policy.

use super::client::Client;
use super::output::{enc, print_rows};
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

#[derive(Subcommand)]
pub(super) enum SpamFilterCmd {
    /// The policies in the order they are tried: custom ones by priority, then the default.
    List {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        json: bool,
    },
    /// One policy, every setting with its value (default: the default policy).
    Show {
        #[arg(long)]
        tenant: String,
        /// The policy's name (default: Default).
        name: Option<String>,
        /// The API's answer as it is.
        #[arg(long)]
        json: bool,
    },
    /// Change settings of a policy (default: the default policy); only those given change, and
    /// nothing changes when one is refused.
    Set {
        #[arg(long)]
        tenant: String,
        /// The policy's name (default: Default).
        name: Option<String>,
        #[command(flatten)]
        settings: Settings,
        #[arg(long)]
        json: bool,
    },
    /// Add a custom policy, tried before the default for the recipients its conditions name.
    Add {
        #[arg(long)]
        tenant: String,
        name: String,
        #[command(flatten)]
        settings: Settings,
        #[arg(long)]
        json: bool,
    },
    /// Remove a custom policy (the default stays).
    Remove {
        #[arg(long)]
        tenant: String,
        name: String,
    },
}

/// A list setting: replaced by `--X a,b` ("" clears it), or edited by `--add-X` / `--remove-X`
/// (Exchange's `@{Add=...; Remove=...}`).
#[derive(Args)]
pub(super) struct Settings {
    /// Priority (custom policies): 0 first; the others move to make room.
    #[arg(long)]
    priority: Option<u32>,
    /// The custom policy's rule is on (Enable-/Disable-HostedContentFilterRule).
    #[arg(long, value_name = "true|false")]
    enabled: Option<bool>,
    /// SentTo (custom policies): recipients, comma-separated ("" clears).
    #[arg(long, value_delimiter = ',', value_name = "A,A,...")]
    sent_to: Option<Vec<String>>,
    /// SentToMemberOf (custom policies): groups, comma-separated ("" clears).
    #[arg(long, value_delimiter = ',', value_name = "G,G,...")]
    sent_to_member_of: Option<Vec<String>>,
    /// RecipientDomainIs (custom policies): domains, comma-separated ("" clears).
    #[arg(long, value_delimiter = ',', value_name = "D,D,...")]
    recipient_domain_is: Option<Vec<String>>,
    /// ExceptIfSentTo (custom policies): recipients the policy does not apply to.
    #[arg(long, value_delimiter = ',', value_name = "A,A,...")]
    except_if_sent_to: Option<Vec<String>>,
    /// ExceptIfSentToMemberOf (custom policies): groups whose members it does not apply to.
    #[arg(long, value_delimiter = ',', value_name = "G,G,...")]
    except_if_sent_to_member_of: Option<Vec<String>>,
    /// ExceptIfRecipientDomainIs (custom policies): domains it does not apply to.
    #[arg(long, value_delimiter = ',', value_name = "D,D,...")]
    except_if_recipient_domain_is: Option<Vec<String>>,
    /// SpamAction (default move-to-jmf): move-to-jmf|add-x-header|modify-subject|redirect|delete|quarantine.
    #[arg(long, value_name = "ACTION")]
    spam_action: Option<String>,
    /// HighConfidenceSpamAction (default move-to-jmf).
    #[arg(long, value_name = "ACTION")]
    high_confidence_spam_action: Option<String>,
    /// PhishSpamAction (default move-to-jmf).
    #[arg(long, value_name = "ACTION")]
    phish_spam_action: Option<String>,
    /// HighConfidencePhishAction (default quarantine): quarantine|redirect.
    #[arg(long, value_name = "ACTION")]
    high_confidence_phish_action: Option<String>,
    /// BulkSpamAction (default move-to-jmf; also no-action).
    #[arg(long, value_name = "ACTION")]
    bulk_spam_action: Option<String>,
    /// BulkThreshold, 1-9 (default 7): the bulk verdict at BCL at or above it.
    #[arg(long, value_name = "1-9", allow_negative_numbers = true)]
    bulk_threshold: Option<i64>,
    /// MarkAsSpamBulkMail (default on): off only stamps the BCL.
    #[arg(long, value_name = "on|off")]
    mark_as_spam_bulk_mail: Option<String>,
    /// QuarantineRetentionPeriod, 1-30 days (default 15).
    #[arg(long, value_name = "DAYS", allow_negative_numbers = true)]
    quarantine_retention_period: Option<i64>,
    /// RedirectToRecipients: where redirect sends the message (comma-separated; "" clears).
    #[arg(long, value_delimiter = ',', value_name = "A,A,...")]
    redirect_to_recipients: Option<Vec<String>>,
    #[arg(long, value_delimiter = ',', value_name = "A,A,...")]
    add_redirect_to_recipients: Option<Vec<String>>,
    #[arg(long, value_delimiter = ',', value_name = "A,A,...")]
    remove_redirect_to_recipients: Option<Vec<String>>,
    /// ModifySubjectValue: put before the subject by modify-subject.
    #[arg(long, value_name = "TEXT")]
    modify_subject_value: Option<String>,
    /// AddXHeaderValue: the header name add-x-header adds (default X-This-Is-Spam).
    #[arg(long, value_name = "HEADER-NAME")]
    add_x_header_value: Option<String>,
    /// AllowedSenders: skip spam filtering, SFV:SKA (comma-separated; "" clears).
    #[arg(long, value_delimiter = ',', value_name = "A,A,...")]
    allowed_senders: Option<Vec<String>>,
    #[arg(long, value_delimiter = ',', value_name = "A,A,...")]
    add_allowed_senders: Option<Vec<String>>,
    #[arg(long, value_delimiter = ',', value_name = "A,A,...")]
    remove_allowed_senders: Option<Vec<String>>,
    /// AllowedSenderDomains (comma-separated; "" clears).
    #[arg(long, value_delimiter = ',', value_name = "D,D,...")]
    allowed_sender_domains: Option<Vec<String>>,
    #[arg(long, value_delimiter = ',', value_name = "D,D,...")]
    add_allowed_sender_domains: Option<Vec<String>>,
    #[arg(long, value_delimiter = ',', value_name = "D,D,...")]
    remove_allowed_sender_domains: Option<Vec<String>>,
    /// BlockedSenders: spam, SFV:SKB (comma-separated; "" clears).
    #[arg(long, value_delimiter = ',', value_name = "A,A,...")]
    blocked_senders: Option<Vec<String>>,
    #[arg(long, value_delimiter = ',', value_name = "A,A,...")]
    add_blocked_senders: Option<Vec<String>>,
    #[arg(long, value_delimiter = ',', value_name = "A,A,...")]
    remove_blocked_senders: Option<Vec<String>>,
    /// BlockedSenderDomains (comma-separated; "" clears).
    #[arg(long, value_delimiter = ',', value_name = "D,D,...")]
    blocked_sender_domains: Option<Vec<String>>,
    #[arg(long, value_delimiter = ',', value_name = "D,D,...")]
    add_blocked_sender_domains: Option<Vec<String>>,
    #[arg(long, value_delimiter = ',', value_name = "D,D,...")]
    remove_blocked_sender_domains: Option<Vec<String>>,
    #[command(flatten)]
    asf: AsfFlags,
    /// TestModeAction (default none): what an ASF option in test mode does.
    #[arg(long, value_name = "none|add-x-header")]
    test_mode_action: Option<String>,
    /// EnableLanguageBlockList (default false).
    #[arg(long, value_name = "true|false")]
    enable_language_block_list: Option<bool>,
    /// LanguageBlockList: ISO 639-1 codes (comma-separated; "" clears).
    #[arg(long, value_delimiter = ',', value_name = "LANG,...")]
    language_block_list: Option<Vec<String>>,
    #[arg(long, value_delimiter = ',', value_name = "LANG,...")]
    add_language_block_list: Option<Vec<String>>,
    #[arg(long, value_delimiter = ',', value_name = "LANG,...")]
    remove_language_block_list: Option<Vec<String>>,
    /// EnableRegionBlockList (default false).
    #[arg(long, value_name = "true|false")]
    enable_region_block_list: Option<bool>,
    /// RegionBlockList: ISO 3166-1 alpha-2 codes (comma-separated; "" clears).
    #[arg(long, value_delimiter = ',', value_name = "CC,...")]
    region_block_list: Option<Vec<String>>,
    #[arg(long, value_delimiter = ',', value_name = "CC,...")]
    add_region_block_list: Option<Vec<String>>,
    #[arg(long, value_delimiter = ',', value_name = "CC,...")]
    remove_region_block_list: Option<Vec<String>>,
    /// EnableEndUserSpamNotifications (default false).
    #[arg(long, value_name = "true|false")]
    enable_end_user_spam_notifications: Option<bool>,
    /// EndUserSpamNotificationFrequency, 1-15 days (default 3).
    #[arg(long, value_name = "DAYS", allow_negative_numbers = true)]
    end_user_spam_notification_frequency: Option<i64>,
    /// EndUserSpamNotificationLanguage (default "default"): default or a language code (en, ja).
    #[arg(long, value_name = "LANG")]
    end_user_spam_notification_language: Option<String>,
    /// SpamQuarantineTag: the quarantine policy of quarantined spam (default
    /// DefaultFullAccessPolicy; `hato quarantine-policy list`).
    #[arg(long, value_name = "POLICY")]
    spam_quarantine_tag: Option<String>,
    /// HighConfidenceSpamQuarantineTag (default DefaultFullAccessPolicy).
    #[arg(long, value_name = "POLICY")]
    high_confidence_spam_quarantine_tag: Option<String>,
    /// PhishQuarantineTag (default DefaultFullAccessPolicy).
    #[arg(long, value_name = "POLICY")]
    phish_quarantine_tag: Option<String>,
    /// HighConfidencePhishQuarantineTag (default AdminOnlyAccessPolicy; users never release
    /// these themselves: release becomes request-release).
    #[arg(long, value_name = "POLICY")]
    high_confidence_phish_quarantine_tag: Option<String>,
    /// BulkQuarantineTag (default DefaultFullAccessPolicy).
    #[arg(long, value_name = "POLICY")]
    bulk_quarantine_tag: Option<String>,
}

/// The ASF options (Exchange's `IncreaseScoreWith*` / `MarkAsSpam*`), each off (default), on or
/// test; the flag names are `hato_protection::spam::Asf::name()`.
#[derive(Args)]
pub(super) struct AsfFlags {
    #[arg(long = "increase-score-with-image-links", value_name = "off|on|test")]
    image_links: Option<String>,
    #[arg(long = "increase-score-with-numeric-ips", value_name = "off|on|test")]
    numeric_ips: Option<String>,
    #[arg(
        long = "increase-score-with-redirect-to-other-port",
        value_name = "off|on|test"
    )]
    redirect_to_other_port: Option<String>,
    #[arg(
        long = "increase-score-with-biz-or-info-urls",
        value_name = "off|on|test"
    )]
    biz_or_info_urls: Option<String>,
    #[arg(long = "mark-as-spam-empty-messages", value_name = "off|on|test")]
    empty_messages: Option<String>,
    #[arg(long = "mark-as-spam-javascript-in-html", value_name = "off|on|test")]
    javascript_in_html: Option<String>,
    #[arg(long = "mark-as-spam-frames-in-html", value_name = "off|on|test")]
    frames_in_html: Option<String>,
    #[arg(long = "mark-as-spam-object-tags-in-html", value_name = "off|on|test")]
    object_tags_in_html: Option<String>,
    #[arg(long = "mark-as-spam-embed-tags-in-html", value_name = "off|on|test")]
    embed_tags_in_html: Option<String>,
    #[arg(long = "mark-as-spam-form-tags-in-html", value_name = "off|on|test")]
    form_tags_in_html: Option<String>,
    #[arg(long = "mark-as-spam-web-bugs-in-html", value_name = "off|on|test")]
    web_bugs_in_html: Option<String>,
    #[arg(long = "mark-as-spam-sensitive-word-list", value_name = "off|on|test")]
    sensitive_word_list: Option<String>,
    #[arg(long = "mark-as-spam-spf-record-hard-fail", value_name = "off|on|test")]
    spf_record_hard_fail: Option<String>,
    #[arg(
        long = "mark-as-spam-from-address-auth-fail",
        value_name = "off|on|test"
    )]
    from_address_auth_fail: Option<String>,
    #[arg(long = "mark-as-spam-ndr-backscatter", value_name = "off|on|test")]
    ndr_backscatter: Option<String>,
}

impl AsfFlags {
    /// The API's `asf` object: option name → mode, only those given.
    fn body(self) -> Map<String, Value> {
        let given = [
            ("increase-score-with-image-links", self.image_links),
            ("increase-score-with-numeric-ips", self.numeric_ips),
            (
                "increase-score-with-redirect-to-other-port",
                self.redirect_to_other_port,
            ),
            (
                "increase-score-with-biz-or-info-urls",
                self.biz_or_info_urls,
            ),
            ("mark-as-spam-empty-messages", self.empty_messages),
            ("mark-as-spam-javascript-in-html", self.javascript_in_html),
            ("mark-as-spam-frames-in-html", self.frames_in_html),
            ("mark-as-spam-object-tags-in-html", self.object_tags_in_html),
            ("mark-as-spam-embed-tags-in-html", self.embed_tags_in_html),
            ("mark-as-spam-form-tags-in-html", self.form_tags_in_html),
            ("mark-as-spam-web-bugs-in-html", self.web_bugs_in_html),
            ("mark-as-spam-sensitive-word-list", self.sensitive_word_list),
            (
                "mark-as-spam-spf-record-hard-fail",
                self.spf_record_hard_fail,
            ),
            (
                "mark-as-spam-from-address-auth-fail",
                self.from_address_auth_fail,
            ),
            ("mark-as-spam-ndr-backscatter", self.ndr_backscatter),
        ];
        given
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), Value::String(v))))
            .collect()
    }
}

fn cleaned(items: Vec<String>) -> Vec<String> {
    items
        .iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// A list setting's change: the replacement, or `{add, remove}`; both at once is refused.
fn list_change(
    name: &str,
    replace: Option<Vec<String>>,
    add: Option<Vec<String>>,
    remove: Option<Vec<String>>,
) -> Result<Option<Value>, String> {
    match (replace, add.is_some() || remove.is_some()) {
        (Some(_), true) => Err(format!(
            "--{0} replaces the list; --add-{0} and --remove-{0} edit it: give one or the other",
            name.replace('_', "-")
        )),
        (Some(v), false) => Ok(Some(json!(cleaned(v)))),
        (None, true) => Ok(Some(json!({
            "add": cleaned(add.unwrap_or_default()),
            "remove": cleaned(remove.unwrap_or_default()),
        }))),
        (None, false) => Ok(None),
    }
}

impl Settings {
    /// The API's change object: only what was given.
    fn body(self) -> Result<Map<String, Value>, String> {
        let mut body = Map::new();
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                body.insert(k.into(), v);
            }
        };
        let list = |v: Option<Vec<String>>| v.map(|items| json!(cleaned(items)));
        put("priority", self.priority.map(Value::from));
        put("enabled", self.enabled.map(Value::Bool));
        put("sent_to", list(self.sent_to));
        put("sent_to_member_of", list(self.sent_to_member_of));
        put("recipient_domain_is", list(self.recipient_domain_is));
        put("except_if_sent_to", list(self.except_if_sent_to));
        put(
            "except_if_sent_to_member_of",
            list(self.except_if_sent_to_member_of),
        );
        put(
            "except_if_recipient_domain_is",
            list(self.except_if_recipient_domain_is),
        );
        for (k, v) in [
            ("spam_action", self.spam_action),
            (
                "high_confidence_spam_action",
                self.high_confidence_spam_action,
            ),
            ("phish_spam_action", self.phish_spam_action),
            (
                "high_confidence_phish_action",
                self.high_confidence_phish_action,
            ),
            ("bulk_spam_action", self.bulk_spam_action),
            ("mark_as_spam_bulk_mail", self.mark_as_spam_bulk_mail),
            ("modify_subject_value", self.modify_subject_value),
            ("add_x_header_value", self.add_x_header_value),
            ("test_mode_action", self.test_mode_action),
            (
                "end_user_spam_notification_language",
                self.end_user_spam_notification_language,
            ),
            ("spam_quarantine_tag", self.spam_quarantine_tag),
            (
                "high_confidence_spam_quarantine_tag",
                self.high_confidence_spam_quarantine_tag,
            ),
            ("phish_quarantine_tag", self.phish_quarantine_tag),
            (
                "high_confidence_phish_quarantine_tag",
                self.high_confidence_phish_quarantine_tag,
            ),
            ("bulk_quarantine_tag", self.bulk_quarantine_tag),
        ] {
            put(k, v.map(Value::String));
        }
        for (k, v) in [
            ("bulk_threshold", self.bulk_threshold),
            (
                "quarantine_retention_period",
                self.quarantine_retention_period,
            ),
            (
                "end_user_spam_notification_frequency",
                self.end_user_spam_notification_frequency,
            ),
        ] {
            put(k, v.map(Value::from));
        }
        for (k, v) in [
            (
                "enable_language_block_list",
                self.enable_language_block_list,
            ),
            ("enable_region_block_list", self.enable_region_block_list),
            (
                "enable_end_user_spam_notifications",
                self.enable_end_user_spam_notifications,
            ),
        ] {
            put(k, v.map(Value::Bool));
        }
        for (k, replace, add, remove) in [
            (
                "redirect_to_recipients",
                self.redirect_to_recipients,
                self.add_redirect_to_recipients,
                self.remove_redirect_to_recipients,
            ),
            (
                "allowed_senders",
                self.allowed_senders,
                self.add_allowed_senders,
                self.remove_allowed_senders,
            ),
            (
                "allowed_sender_domains",
                self.allowed_sender_domains,
                self.add_allowed_sender_domains,
                self.remove_allowed_sender_domains,
            ),
            (
                "blocked_senders",
                self.blocked_senders,
                self.add_blocked_senders,
                self.remove_blocked_senders,
            ),
            (
                "blocked_sender_domains",
                self.blocked_sender_domains,
                self.add_blocked_sender_domains,
                self.remove_blocked_sender_domains,
            ),
            (
                "language_block_list",
                self.language_block_list,
                self.add_language_block_list,
                self.remove_language_block_list,
            ),
            (
                "region_block_list",
                self.region_block_list,
                self.add_region_block_list,
                self.remove_region_block_list,
            ),
        ] {
            put(k, list_change(k, replace, add, remove)?);
        }
        let asf = self.asf.body();
        if !asf.is_empty() {
            put("asf", Some(Value::Object(asf)));
        }
        Ok(body)
    }
}

/// The settings in the order `show` prints them (the ASF options after `blocked-sender-domains`).
const SETTINGS: [&str; 39] = [
    "name",
    "priority",
    "enabled",
    "sent_to",
    "sent_to_member_of",
    "recipient_domain_is",
    "except_if_sent_to",
    "except_if_sent_to_member_of",
    "except_if_recipient_domain_is",
    "spam_action",
    "high_confidence_spam_action",
    "phish_spam_action",
    "high_confidence_phish_action",
    "bulk_spam_action",
    "bulk_threshold",
    "mark_as_spam_bulk_mail",
    "quarantine_retention_period",
    "redirect_to_recipients",
    "modify_subject_value",
    "add_x_header_value",
    "allowed_senders",
    "allowed_sender_domains",
    "blocked_senders",
    "blocked_sender_domains",
    "asf",
    "test_mode_action",
    "enable_language_block_list",
    "language_block_list",
    "enable_region_block_list",
    "region_block_list",
    "enable_end_user_spam_notifications",
    "end_user_spam_notification_frequency",
    "end_user_spam_notification_language",
    "spam_quarantine_tag",
    "high_confidence_spam_quarantine_tag",
    "phish_quarantine_tag",
    "high_confidence_phish_quarantine_tag",
    "bulk_quarantine_tag",
    "tenant",
];

fn policies(tenant: &str) -> String {
    format!("/api/v1/tenants/{}/spam-filter/policies", enc(tenant))
}

fn policy(tenant: &str, name: Option<&str>) -> String {
    format!(
        "{}/{}",
        policies(tenant),
        enc(name.unwrap_or(hato_store::DEFAULT_SPAM_FILTER))
    )
}

pub(super) fn run(c: &Client, cmd: SpamFilterCmd) -> Result<(), String> {
    let (v, json) = match cmd {
        SpamFilterCmd::List { tenant, json } => {
            let v = c.json("GET", &policies(&tenant), &[], None)?;
            if json {
                return print_rows(&v, &[], true);
            }
            let rows: Vec<Value> = v
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|p| {
                    let mut conditions = Vec::new();
                    for key in [
                        "sent_to",
                        "sent_to_member_of",
                        "recipient_domain_is",
                        "except_if_sent_to",
                        "except_if_sent_to_member_of",
                        "except_if_recipient_domain_is",
                    ] {
                        let values = joined(&p[key]);
                        if !values.is_empty() {
                            conditions.push(format!("{}={values}", key.replace('_', "-")));
                        }
                    }
                    json!({
                        "priority": p["priority"].as_u64().map_or("default".to_string(), |n| n.to_string()),
                        "name": p["name"],
                        "enabled": p["enabled"],
                        "conditions": conditions.join(" "),
                        "spam_action": p["spam_action"],
                        "bulk_threshold": p["bulk_threshold"],
                    })
                })
                .collect();
            return print_rows(
                &Value::Array(rows),
                &[
                    "priority",
                    "name",
                    "enabled",
                    "conditions",
                    "spam_action",
                    "bulk_threshold",
                ],
                false,
            );
        }
        SpamFilterCmd::Show { tenant, name, json } => (
            c.json("GET", &policy(&tenant, name.as_deref()), &[], None)?,
            json,
        ),
        SpamFilterCmd::Set {
            tenant,
            name,
            settings,
            json,
        } => {
            let body = settings.body()?;
            if body.is_empty() {
                return Err("nothing to change: give at least one setting (see --help)".into());
            }
            let v = c.json(
                "PATCH",
                &policy(&tenant, name.as_deref()),
                &[],
                Some(Value::Object(body)),
            )?;
            (v, json)
        }
        SpamFilterCmd::Add {
            tenant,
            name,
            settings,
            json,
        } => {
            let mut body = settings.body()?;
            body.insert("name".into(), Value::String(name));
            let v = c.json("POST", &policies(&tenant), &[], Some(Value::Object(body)))?;
            (v, json)
        }
        SpamFilterCmd::Remove { tenant, name } => {
            c.json("DELETE", &policy(&tenant, Some(&name)), &[], None)?;
            println!("removed anti-spam policy {name}");
            return Ok(());
        }
    };
    if json {
        return print_rows(&v, &[], true);
    }
    println!(
        "anti-spam policy of {}",
        v["tenant"].as_str().unwrap_or_default()
    );
    for key in SETTINGS {
        match key {
            "tenant" => continue,
            // Each ASF option on its own line, under its flag's name.
            "asf" => {
                if let Some(modes) = v["asf"].as_object() {
                    for (option, mode) in modes {
                        println!("{option}: {}", mode.as_str().unwrap_or_default());
                    }
                }
                continue;
            }
            _ => {}
        }
        let value = match &v[key] {
            Value::Null if key == "priority" => "default (after every custom policy)".into(),
            Value::Array(_) => joined(&v[key]),
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        println!("{}: {value}", key.replace('_', "-"));
    }
    Ok(())
}

fn joined(v: &Value) -> String {
    v.as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Args, Command};

    /// Every ASF option of the shared type is a flag of its kebab-case name, and every flag
    /// names a setting the API takes.
    #[test]
    fn every_asf_option_is_a_flag_of_its_name() {
        let cmd = Settings::augment_args(Command::new("set"));
        let flags: Vec<String> = cmd
            .get_arguments()
            .filter_map(|a| a.get_long().map(str::to_string))
            .collect();
        for option in hato_protection::spam::Asf::ALL {
            assert!(
                flags.iter().any(|f| f == option.name()),
                "--{} missing",
                option.name()
            );
        }
        let named = AsfFlags {
            image_links: Some("on".into()),
            numeric_ips: Some("on".into()),
            redirect_to_other_port: Some("on".into()),
            biz_or_info_urls: Some("on".into()),
            empty_messages: Some("on".into()),
            javascript_in_html: Some("on".into()),
            frames_in_html: Some("on".into()),
            object_tags_in_html: Some("on".into()),
            embed_tags_in_html: Some("on".into()),
            form_tags_in_html: Some("on".into()),
            web_bugs_in_html: Some("on".into()),
            sensitive_word_list: Some("on".into()),
            spf_record_hard_fail: Some("on".into()),
            from_address_auth_fail: Some("on".into()),
            ndr_backscatter: Some("on".into()),
        }
        .body();
        let names: Vec<&str> = hato_protection::spam::Asf::ALL
            .iter()
            .map(|a| a.name())
            .collect();
        assert_eq!(named.len(), names.len());
        assert!(
            named.keys().all(|k| names.contains(&k.as_str())),
            "{named:?}"
        );
    }
}
