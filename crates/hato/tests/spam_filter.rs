//! Anti-spam policies through the CLI and the API against the real `hato serve` (every setting
//! as a flag, read back; defaults shown; bad values refused and nothing changed; custom policies
//! by priority; who may read and change), and users' junk / not-junk reports (stored once,
//! on the trace, counted for the sending IP, only one's own mail) and the Inbox / Junk Email
//! moves that make them.

mod common;

use common::{Server, trace_id_of};
use serde_json::{Value, json};

/// The field names the OpenAPI document gives schema `name`.
fn documented_fields(s: &Server, name: &str) -> std::collections::BTreeSet<String> {
    let (status, doc) = s.api("GET", "/api/v1/openapi.json", None);
    assert_eq!(status, 200);
    doc["components"]["schemas"][name]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("no schema {name}"))
        .keys()
        .cloned()
        .collect()
}

fn fields(v: &Value) -> std::collections::BTreeSet<String> {
    v.as_object().expect("an object").keys().cloned().collect()
}

fn login(s: &Server, address: &str, password: &str) -> String {
    let (status, v) = s.api(
        "POST",
        "/api/v1/auth/login",
        Some(json!({ "address": address, "password": password })),
    );
    assert_eq!(status, 200, "{v}");
    v["token"].as_str().expect("token").to_string()
}

fn admin_token(s: &Server, tenant: &str) -> String {
    let (status, v) = s.api(
        "POST",
        &format!("/api/v1/tenants/{tenant}/tokens"),
        Some(json!({})),
    );
    assert_eq!(status, 201, "{v}");
    v["token"].as_str().expect("token").to_string()
}

/// `show`'s lines as setting → value.
fn shown(out: &str) -> std::collections::BTreeMap<String, String> {
    out.lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .chain(
            // A setting with an empty value prints as "name: ".
            out.lines()
                .filter_map(|l| l.strip_suffix(':'))
                .map(|k| (k.to_string(), String::new())),
        )
        .collect()
}

const ASF: [&str; 15] = [
    "increase-score-with-image-links",
    "increase-score-with-numeric-ips",
    "increase-score-with-redirect-to-other-port",
    "increase-score-with-biz-or-info-urls",
    "mark-as-spam-empty-messages",
    "mark-as-spam-javascript-in-html",
    "mark-as-spam-frames-in-html",
    "mark-as-spam-object-tags-in-html",
    "mark-as-spam-embed-tags-in-html",
    "mark-as-spam-form-tags-in-html",
    "mark-as-spam-web-bugs-in-html",
    "mark-as-spam-sensitive-word-list",
    "mark-as-spam-spf-record-hard-fail",
    "mark-as-spam-from-address-auth-fail",
    "mark-as-spam-ndr-backscatter",
];

#[test]
fn every_setting_is_a_flag_shown_with_its_default_and_read_back() {
    let s = Server::start();
    s.tenant("contoso");
    s.mailbox("alice@contoso.test", &[]);
    s.mailbox("soc@contoso.test", &[]);

    let before = shown(&s.ok(&["spam-filter", "show", "--tenant", "contoso"]));
    for (k, v) in [
        ("name", "Default"),
        ("priority", "default (after every custom policy)"),
        ("spam-action", "move-to-jmf"),
        ("high-confidence-spam-action", "move-to-jmf"),
        ("phish-spam-action", "move-to-jmf"),
        ("high-confidence-phish-action", "quarantine"),
        ("bulk-spam-action", "move-to-jmf"),
        ("bulk-threshold", "7"),
        ("mark-as-spam-bulk-mail", "on"),
        ("quarantine-retention-period", "15"),
        ("redirect-to-recipients", ""),
        ("modify-subject-value", ""),
        ("add-x-header-value", ""),
        ("allowed-senders", ""),
        ("allowed-sender-domains", ""),
        ("blocked-senders", ""),
        ("blocked-sender-domains", ""),
        ("test-mode-action", "none"),
        ("enable-language-block-list", "false"),
        ("language-block-list", ""),
        ("enable-region-block-list", "false"),
        ("region-block-list", ""),
        ("enable-end-user-spam-notifications", "false"),
        ("end-user-spam-notification-frequency", "3"),
        ("end-user-spam-notification-language", "default"),
    ] {
        assert_eq!(
            before.get(k).map(String::as_str),
            Some(v),
            "{k} in {before:?}"
        );
    }
    for option in ASF {
        assert_eq!(
            before.get(option).map(String::as_str),
            Some("off"),
            "{option}"
        );
    }

    let mut args: Vec<String> = [
        "spam-filter",
        "set",
        "--tenant",
        "contoso",
        "--spam-action",
        "Quarantine",
        "--high-confidence-spam-action",
        "delete",
        "--phish-spam-action",
        "AddXHeader",
        "--high-confidence-phish-action",
        "redirect",
        "--bulk-spam-action",
        "no-action",
        "--bulk-threshold",
        "5",
        "--mark-as-spam-bulk-mail",
        "off",
        "--quarantine-retention-period",
        "30",
        "--redirect-to-recipients",
        "soc@contoso.test",
        "--modify-subject-value",
        "[SPAM]",
        "--add-x-header-value",
        "X-Contoso-Spam",
        "--allowed-senders",
        "Partner@Fabrikam.test,boss@partner.test",
        "--allowed-sender-domains",
        "partner.test",
        "--blocked-senders",
        "spammer@example.test",
        "--blocked-sender-domains",
        "spam.example,junk.example",
        "--test-mode-action",
        "add-x-header",
        "--enable-language-block-list",
        "true",
        "--language-block-list",
        "ru,ZH",
        "--enable-region-block-list",
        "true",
        "--region-block-list",
        "kp",
        "--enable-end-user-spam-notifications",
        "true",
        "--end-user-spam-notification-frequency",
        "7",
        "--end-user-spam-notification-language",
        "ja",
    ]
    .map(String::from)
    .to_vec();
    for (i, option) in ASF.iter().enumerate() {
        args.push(format!("--{option}"));
        args.push(if i % 2 == 0 { "on" } else { "test" }.into());
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let set = shown(&s.ok(&refs));
    let after = shown(&s.ok(&["spam-filter", "show", "--tenant", "contoso", "Default"]));
    assert_eq!(set, after);
    for (k, v) in [
        ("spam-action", "quarantine"),
        ("high-confidence-spam-action", "delete"),
        ("phish-spam-action", "add-x-header"),
        ("high-confidence-phish-action", "redirect"),
        ("bulk-spam-action", "no-action"),
        ("bulk-threshold", "5"),
        ("mark-as-spam-bulk-mail", "off"),
        ("quarantine-retention-period", "30"),
        ("redirect-to-recipients", "soc@contoso.test"),
        ("modify-subject-value", "[SPAM]"),
        ("add-x-header-value", "X-Contoso-Spam"),
        ("allowed-senders", "partner@fabrikam.test,boss@partner.test"),
        ("allowed-sender-domains", "partner.test"),
        ("blocked-senders", "spammer@example.test"),
        ("blocked-sender-domains", "spam.example,junk.example"),
        ("test-mode-action", "add-x-header"),
        ("enable-language-block-list", "true"),
        ("language-block-list", "ru,zh"),
        ("enable-region-block-list", "true"),
        ("region-block-list", "KP"),
        ("enable-end-user-spam-notifications", "true"),
        ("end-user-spam-notification-frequency", "7"),
        ("end-user-spam-notification-language", "ja"),
    ] {
        assert_eq!(
            after.get(k).map(String::as_str),
            Some(v),
            "{k} in {after:?}"
        );
    }
    for (i, option) in ASF.iter().enumerate() {
        let want = if i % 2 == 0 { "on" } else { "test" };
        assert_eq!(
            after.get(*option).map(String::as_str),
            Some(want),
            "{option}"
        );
    }

    // Lists are edited as Exchange's @{Add=...; Remove=...} does.
    let edited = shown(&s.ok(&[
        "spam-filter",
        "set",
        "--tenant",
        "contoso",
        "--add-allowed-senders",
        "new@partner.test,boss@partner.test",
        "--remove-allowed-senders",
        "partner@fabrikam.test",
        "--remove-blocked-sender-domains",
        "spam.example",
    ]));
    assert_eq!(
        edited["allowed-senders"],
        "boss@partner.test,new@partner.test"
    );
    assert_eq!(edited["blocked-sender-domains"], "junk.example");
    let json_before = s.ok(&["spam-filter", "show", "--tenant", "contoso", "--json"]);

    // Bad values are refused with the reason, and nothing changes.
    for (flags, message) in [
        (
            vec!["--spam-action", "junk"],
            "spam_action: \"junk\" is not one of move-to-jmf, add-x-header, modify-subject, redirect, delete, quarantine, no-action",
        ),
        (
            vec!["--bulk-threshold", "10"],
            "bulk-threshold must be between 1 and 9 (is 10)",
        ),
        (
            vec!["--quarantine-retention-period", "0"],
            "quarantine-retention-period must be between 1 and 30 days (is 0)",
        ),
        (
            vec!["--end-user-spam-notification-frequency", "16"],
            "end-user-spam-notification-frequency must be between 1 and 15 days (is 16)",
        ),
        (
            vec!["--high-confidence-phish-action", "move-to-jmf"],
            "high-confidence-phish-action cannot be move-to-jmf: allowed are quarantine, redirect",
        ),
        (
            vec!["--spam-action", "no-action"],
            "spam-action cannot be no-action",
        ),
        (
            vec!["--redirect-to-recipients", ""],
            "high-confidence-phish-action is redirect but redirect-to-recipients is empty",
        ),
        (
            vec![
                "--blocked-senders",
                "not-an-address",
                "--spam-action",
                "delete",
            ],
            "blocked_senders: \"not-an-address\" is not an address",
        ),
        (
            vec!["--mark-as-spam-frames-in-html", "maybe"],
            "mark-as-spam-frames-in-html: \"maybe\" is not one of off, on, test",
        ),
        (
            vec!["--region-block-list", "Japan"],
            "region_block_list: \"Japan\" is not an ISO 3166-1 alpha-2 country code",
        ),
        (
            vec![
                "--allowed-senders",
                "a@b.test",
                "--add-allowed-senders",
                "c@d.test",
            ],
            "--allowed-senders replaces the list; --add-allowed-senders and --remove-allowed-senders edit it",
        ),
    ] {
        let mut args = vec!["spam-filter", "set", "--tenant", "contoso"];
        args.extend(flags.iter().copied());
        let (ok, out, err) = s.cli(&args);
        assert!(!ok, "{flags:?} was accepted: {out}");
        assert!(err.contains(message), "{flags:?}: {err}");
    }
    assert_eq!(
        s.ok(&["spam-filter", "show", "--tenant", "contoso", "--json"]),
        json_before
    );
}

#[test]
fn custom_policies_take_places_by_priority_and_only_global_admins_see_them() {
    let s = Server::start();
    s.tenant("contoso");
    s.tenant("fabrikam");
    s.mailbox("alice@contoso.test", &["--password", "password-alice"]);
    s.mailbox("boss@contoso.test", &[]);

    let out = s.ok(&[
        "spam-filter",
        "add",
        "--tenant",
        "contoso",
        "Strict",
        "--sent-to",
        "alice@contoso.test",
        "--spam-action",
        "quarantine",
        "--bulk-threshold",
        "5",
    ]);
    let strict = shown(&out);
    assert_eq!(strict["priority"], "0");
    assert_eq!(strict["sent-to"], "alice@contoso.test");
    assert_eq!(strict["bulk-threshold"], "5");
    // The rest are Exchange's defaults, not the default policy's settings.
    assert_eq!(strict["quarantine-retention-period"], "15");
    s.ok(&[
        "spam-filter",
        "add",
        "--tenant",
        "contoso",
        "Everyone",
        "--priority",
        "0",
        "--recipient-domain-is",
        "contoso.test",
        "--except-if-sent-to",
        "boss@contoso.test",
    ]);
    let list = s.ok(&["spam-filter", "list", "--tenant", "contoso"]);
    let order: Vec<&str> = list
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(order, ["Everyone", "Strict", "Default"], "{list}");
    let all: Value =
        serde_json::from_str(&s.ok(&["spam-filter", "list", "--tenant", "contoso", "--json"]))
            .expect("JSON");
    assert_eq!(all[0]["recipient_domain_is"], json!(["contoso.test"]));
    assert_eq!(all[0]["except_if_sent_to"], json!(["boss@contoso.test"]));
    assert_eq!(all[1]["sent_to"], json!(["alice@contoso.test"]));

    // A custom policy needs a condition; conditions name the tenant's recipients.
    let (ok, _, err) = s.cli(&["spam-filter", "add", "--tenant", "contoso", "Empty"]);
    assert!(
        !ok && err.contains("a custom policy needs a condition"),
        "{err}"
    );
    let (ok, _, err) = s.cli(&[
        "spam-filter",
        "add",
        "--tenant",
        "contoso",
        "Nobody",
        "--sent-to",
        "nobody@contoso.test",
    ]);
    assert!(
        !ok && err.contains("\"nobody@contoso.test\" is not a recipient of this tenant"),
        "{err}"
    );
    let (ok, _, err) = s.cli(&["spam-filter", "remove", "--tenant", "contoso", "Default"]);
    assert!(!ok && err.contains("cannot be removed"), "{err}");
    s.ok(&["spam-filter", "remove", "--tenant", "contoso", "Everyone"]);
    let strict = shown(&s.ok(&["spam-filter", "show", "--tenant", "contoso", "strict"]));
    assert_eq!(strict["priority"], "0");

    // A user may neither read nor change policies; another tenant's admin sees none of them.
    let alice = login(&s, "alice@contoso.test", "password-alice");
    let path = "/api/v1/tenants/contoso/spam-filter/policies/Default";
    let (status, v) = s.api_as(&alice, "GET", path, None);
    assert_eq!(status, 403, "{v}");
    let (status, v) = s.api_as(&alice, "PATCH", path, Some(json!({"bulk_threshold": 3})));
    assert_eq!(status, 403, "{v}");
    let (ok, _, err) = s.cli_env(
        &["spam-filter", "show", "--tenant", "contoso"],
        &[("HATO_TOKEN", &alice)],
    );
    assert!(!ok && err.contains("global admin"), "{err}");
    let other = admin_token(&s, "fabrikam");
    let (status, v) = s.api_as(&other, "GET", path, None);
    assert_eq!(status, 404, "{v}");
    let own = admin_token(&s, "contoso");
    let (status, v) = s.api_as(&own, "PATCH", path, Some(json!({"bulk_threshold": 3})));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["bulk_threshold"], 3);
    assert_eq!(fields(&v), documented_fields(&s, "SpamFilterView"));
    // The API takes the list edit form too, and refuses unknown settings.
    let (status, v) = s.api_as(
        &own,
        "PATCH",
        path,
        Some(json!({"blocked_senders": {"add": ["x@spam.example"]}})),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["blocked_senders"], json!(["x@spam.example"]));
    let (status, v) = s.api_as(&own, "PATCH", path, Some(json!({"spam_actions": "delete"})));
    assert_eq!(status, 400, "{v}");
}

/// alice@ and bob@ of contoso (with passwords), one message to both from outside; returns its
/// trace id once both have it.
fn delivered_to_both(s: &Server) -> String {
    s.tenant("contoso");
    s.tenant("fabrikam");
    for m in ["alice", "bob"] {
        s.mailbox(
            &format!("{m}@contoso.test"),
            &["--password", &format!("password-{m}")],
        );
    }
    let mut c = s.smtp();
    assert!(c.read_reply().starts_with("220"));
    assert!(c.cmd("EHLO mx.example.test").starts_with("250"));
    let reply = c.send_mail(
        "offers@example.test",
        &["alice@contoso.test", "bob@contoso.test"],
        "From: offers@example.test\nTo: alice@contoso.test\nSubject: Minutes of the planning meeting\nMessage-ID: <w1@example.test>\nDate: Mon, 30 Nov 2026 21:00:00 +0000\n\nHi Alice,\n\nattached are the notes from Thursday's planning meeting. Could you check the\nbudget figures for the second quarter before we send them to the board?\n\nThanks,\nMartin\n",
    );
    assert!(reply.starts_with("250"), "{reply}");
    s.wait_for("delivery to both", || {
        s.mail("alice@contoso.test").len() == 1 && s.mail("bob@contoso.test").len() == 1
    });
    // The reports below start from ordinary mail the filter let through to the inbox.
    for m in ["alice@contoso.test", "bob@contoso.test"] {
        assert_eq!(s.mail(m)[0]["folder"], "inbox", "{m}: {}", s.mail(m)[0]);
    }
    trace_id_of(&reply)
}

fn agent_info(s: &Server, trace_id: &str, recipient: &str) -> Vec<String> {
    s.events(trace_id, recipient)
        .into_iter()
        .filter(|e| e["event"] == "AgentInfo")
        .filter_map(|e| e["detail"].as_str().map(str::to_string))
        .filter(|d| d.starts_with("Reported as"))
        .collect()
}

fn junk_history(s: &Server) -> u64 {
    let (status, v) = s.api("GET", "/api/v1/throttle/127.0.0.1", None);
    assert_eq!(status, 200, "{v}");
    v["figures"]["junk_history"].as_u64().expect("junk_history")
}

#[test]
fn a_junk_report_is_stored_once_traced_and_counted_for_the_sender() {
    let s = Server::start();
    let trace = delivered_to_both(&s);
    let alice = login(&s, "alice@contoso.test", "password-alice");
    let as_alice = [("HATO_TOKEN", alice.as_str())];
    assert_eq!(junk_history(&s), 0);

    let (ok, out, err) = s.cli_env(
        &[
            "report",
            "junk",
            &trace,
            "--recipient",
            "alice@contoso.test",
        ],
        &as_alice,
    );
    assert!(ok, "{err}");
    assert!(out.contains("reported as junk"), "{out}");
    // The same report again counts once.
    let (ok, out, err) = s.cli_env(
        &[
            "report",
            "junk",
            &trace,
            "--recipient",
            "alice@contoso.test",
        ],
        &as_alice,
    );
    assert!(ok, "{err}");
    assert!(out.contains("already reported as junk"), "{out}");
    assert_eq!(
        agent_info(&s, &trace, "alice@contoso.test"),
        ["Reported as junk by alice@contoso.test"]
    );
    assert_eq!(junk_history(&s), 1);

    // alice cannot report bob's copy, nor name another tenant: 404, as if there were none.
    for args in [
        vec!["report", "junk", &trace, "--recipient", "bob@contoso.test"],
        vec![
            "report",
            "junk",
            &trace,
            "--recipient",
            "alice@contoso.test",
            "--tenant",
            "fabrikam",
        ],
        vec![
            "report",
            "junk",
            "0190f000-0000-7000-8000-000000000000",
            "--recipient",
            "alice@contoso.test",
        ],
    ] {
        let (ok, out, err) = s.cli_env(&args, &as_alice);
        assert!(!ok, "{args:?}: {out}");
        assert!(
            err.contains("not found") || err.contains("that you may report"),
            "{args:?}: {err}"
        );
    }
    let (status, v) = s.api_as(
        &alice,
        "POST",
        "/api/v1/reports",
        Some(json!({"trace_id": trace, "recipient": "bob@contoso.test", "verdict": "junk"})),
    );
    assert_eq!(status, 404, "{v}");
    let (status, v) = s.api_as(
        &alice,
        "POST",
        "/api/v1/reports",
        Some(json!({"trace_id": trace, "recipient": "alice@contoso.test", "verdict": "spam"})),
    );
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"], "verdict: \"spam\" is not one of junk, not-junk");
    // fabrikam's admin cannot see contoso's mail either.
    let other = admin_token(&s, "fabrikam");
    let (status, v) = s.api_as(
        &other,
        "POST",
        "/api/v1/reports",
        Some(json!({"trace_id": trace, "recipient": "bob@contoso.test", "verdict": "junk"})),
    );
    assert_eq!(status, 404, "{v}");
    assert!(agent_info(&s, &trace, "bob@contoso.test").is_empty());
    assert_eq!(junk_history(&s), 1);

    // contoso's admin reports any recipient of the tenant.
    let admin = admin_token(&s, "contoso");
    let (ok, out, err) = s.cli_env(
        &[
            "report",
            "junk",
            &trace,
            "--recipient",
            "bob@contoso.test",
            "--json",
        ],
        &[("HATO_TOKEN", admin.as_str())],
    );
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["reporter"], "tenant-admin of contoso");
    assert_eq!(v["recorded"], true);
    assert_eq!(
        agent_info(&s, &trace, "bob@contoso.test"),
        ["Reported as junk by tenant-admin of contoso"]
    );
    assert_eq!(junk_history(&s), 2);
}

#[test]
fn moving_out_of_junk_email_is_a_not_junk_report() {
    let s = Server::start();
    let trace = delivered_to_both(&s);
    let alice = login(&s, "alice@contoso.test", "password-alice");
    let as_alice = [("HATO_TOKEN", alice.as_str())];
    let id = s.mail("alice@contoso.test")[0]["id"]
        .as_i64()
        .expect("id")
        .to_string();

    let (ok, out, err) = s.cli_env(
        &[
            "mail",
            "move",
            "alice@contoso.test",
            &id,
            "--folder",
            "junk",
        ],
        &as_alice,
    );
    assert!(ok, "{err}");
    assert!(out.contains("reported as junk"), "{out}");
    let (ok, out, err) = s.cli_env(
        &[
            "mail",
            "list",
            "alice@contoso.test",
            "--folder",
            "junk",
            "--json",
        ],
        &as_alice,
    );
    assert!(ok, "{err}");
    let junk: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(junk.as_array().map(Vec::len), Some(1), "{junk}");

    let (ok, out, err) = s.cli_env(
        &[
            "mail",
            "move",
            "alice@contoso.test",
            &id,
            "--folder",
            "inbox",
            "--json",
        ],
        &as_alice,
    );
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["message"]["folder"], "inbox");
    assert_eq!(v["report"]["verdict"], "not-junk");
    assert_eq!(v["report"]["replaces"], "junk");
    assert_eq!(v["report"]["trace_id"], trace.as_str());
    assert_eq!(fields(&v), documented_fields(&s, "Moved"));
    assert_eq!(
        fields(&v["report"]),
        documented_fields(&s, "SpamReportView")
    );
    assert_eq!(
        agent_info(&s, &trace, "alice@contoso.test"),
        [
            "Reported as junk by alice@contoso.test (moved from Inbox to Junk Email)",
            "Reported as not junk by alice@contoso.test (moved from Junk Email to Inbox)"
        ]
    );
    // bob's mailbox is not alice's to move in; a bad folder is named.
    let bob_id = s.mail("bob@contoso.test")[0]["id"].as_i64().expect("id");
    let (status, v) = s.api_as(
        &alice,
        "POST",
        &format!("/api/v1/mailboxes/bob@contoso.test/messages/{bob_id}/move"),
        Some(json!({"folder": "junk"})),
    );
    assert_eq!(status, 403, "{v}");
    let (status, v) = s.api_as(
        &alice,
        "POST",
        &format!("/api/v1/mailboxes/alice@contoso.test/messages/{id}/move"),
        Some(json!({"folder": "spam"})),
    );
    assert_eq!(status, 400, "{v}");
    assert!(agent_info(&s, &trace, "bob@contoso.test").is_empty());
}
