//! Transport rules against a real `hato serve`: the CLI's add, list, show, set, enable,
//! disable, remove, test, export and import; refusals naming the flag and the value; the API's
//! tenant isolation and roles.

mod common;
use common::*;

use serde_json::{Value, json};

const EXE_MAIL: &str = concat!(
    "From: Mallory <x@fabrikam.test>\r\n",
    "To: bob@contoso.test, alice@contoso.test\r\n",
    "Subject: Your invoice\r\n",
    "MIME-Version: 1.0\r\n",
    "Content-Type: multipart/mixed; boundary=b\r\n",
    "\r\n",
    "--b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n",
    "--b\r\nContent-Type: application/octet-stream\r\n",
    "Content-Disposition: attachment; filename=setup.exe\r\n",
    "Content-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA\r\n",
    "--b--\r\n",
);

const PLAIN_MAIL: &str = concat!(
    "From: x@fabrikam.test\r\n",
    "To: bob@contoso.test\r\n",
    "Subject: Lunch?\r\n",
    "\r\n",
    "Are you free today?\r\n",
);

fn setup() -> Server {
    let s = Server::start();
    s.tenant("contoso");
    s.mailbox("alice@contoso.test", &[]);
    s.mailbox("bob@contoso.test", &[]);
    s.ok(&[
        "group",
        "add",
        "sales@contoso.test",
        "--type",
        "distribution",
        "--tenant",
        "contoso",
        "--owner",
        "alice@contoso.test",
        "--member",
        "bob@contoso.test",
    ]);
    s
}

/// The rules' (priority, name, state) as `rule list --json` gives them.
fn listed(s: &Server) -> Vec<(u64, String, bool)> {
    let out = s.ok(&["rule", "list", "--tenant", "contoso", "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["priority"].as_u64().unwrap(),
                r["name"].as_str().unwrap().to_string(),
                r["enabled"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn names(s: &Server) -> Vec<String> {
    listed(s).into_iter().map(|(_, n, _)| n).collect()
}

/// `rule test` on a message; the summary lines.
fn test(s: &Server, eml: &str, to: &[&str]) -> String {
    let path = s.dir.path().join("test.eml");
    std::fs::write(&path, eml).unwrap();
    let mut args = vec![
        "rule",
        "test",
        "--tenant",
        "contoso",
        "--eml",
        path.to_str().unwrap(),
        "--from",
        "x@fabrikam.test",
        "--ip",
        "192.0.2.7",
    ];
    for t in to {
        args.extend_from_slice(&["--to", t]);
    }
    s.ok(&args)
}

#[test]
fn rules_are_added_listed_changed_tested_and_removed_with_the_cli() {
    let s = setup();
    s.ok(&[
        "rule",
        "add",
        "External tag",
        "--tenant",
        "contoso",
        "--from-scope",
        "not-in-organization",
        "--prepend-subject",
        "[EXT]",
    ]);
    s.ok(&[
        "rule",
        "add",
        "Block exe",
        "--tenant",
        "contoso",
        "--priority",
        "0",
        "--attachment-extension-matches-words",
        "exe",
        "--attachment-extension-matches-words",
        "scr",
        "--reject-message-reason-text",
        "Executables are not accepted",
        "--reject-message-enhanced-status-code",
        "5.7.901",
    ]);
    s.ok(&[
        "rule",
        "add",
        "Sales copy",
        "--tenant",
        "contoso",
        "--sent-to-member-of",
        "sales@contoso.test",
        "--blind-copy-to",
        "alice@contoso.test",
        "--mode",
        "audit",
        "--set-scl",
        "-1",
    ]);
    // Inserting at 0 shifted the first rule down.
    assert_eq!(names(&s), ["Block exe", "External tag", "Sales copy"]);
    let table = s.ok(&["rule", "list", "--tenant", "contoso"]);
    assert!(
        table.contains("PRIORITY") && table.contains("audit"),
        "{table}"
    );

    // What would happen, per recipient, without sending: the reject ends processing for both.
    let out = test(&s, EXE_MAIL, &["bob@contoso.test", "alice@contoso.test"]);
    assert!(
        out.contains(
            "bob@contoso.test: rules Block exe; reject 550 5.7.901 Executables are not accepted"
        ),
        "{out}"
    );
    assert!(
        out.contains("alice@contoso.test: rules Block exe; reject"),
        "{out}"
    );
    // A plain message: the tag for everyone, the audit-mode rule only for the group's member.
    let out = test(&s, PLAIN_MAIL, &["bob@contoso.test", "alice@contoso.test"]);
    assert!(
        out.contains("bob@contoso.test: rules External tag, Sales copy; prepend-subject, audit"),
        "{out}"
    );
    assert!(
        out.contains("alice@contoso.test: rules External tag; prepend-subject"),
        "{out}"
    );
    // Nothing was sent.
    assert!(s.mail("bob@contoso.test").is_empty());

    // The JSON answer names the condition and the value that matched.
    let path = s.dir.path().join("exe.eml");
    std::fs::write(&path, EXE_MAIL).unwrap();
    let v: Value = serde_json::from_str(&s.ok(&[
        "rule",
        "test",
        "--tenant",
        "contoso",
        "--eml",
        path.to_str().unwrap(),
        "--to",
        "bob@contoso.test",
        "--json",
    ]))
    .unwrap();
    let hit = &v["evaluation"]["recipients"][0]["hits"][0];
    assert_eq!(hit["rule"], "Block exe");
    assert_eq!(
        hit["matched"][0],
        json!(["attachment-extension-matches-words", "exe"])
    );
    let decision = &v["evaluation"]["recipients"][0]["decisions"][0];
    assert_eq!(decision["action"], "reject");
    assert_eq!(decision["reason"]["stage"], "transport_rule");

    // Set: move to the top, add an exception; show has them.
    s.ok(&[
        "rule",
        "set",
        "External tag",
        "--tenant",
        "contoso",
        "--priority",
        "0",
        "--except-if-sender-domain-is",
        "fabrikam.test",
    ]);
    assert_eq!(names(&s), ["External tag", "Block exe", "Sales copy"]);
    let shown = s.ok(&["rule", "show", "External tag", "--tenant", "contoso"]);
    assert!(shown.contains("\"sender_domain_is\""), "{shown}");
    assert!(shown.contains("priority 0, enabled"), "{shown}");
    let out = test(&s, PLAIN_MAIL, &["alice@contoso.test"]);
    assert_eq!(out.trim(), "alice@contoso.test: no rule matches; delivered");
    s.ok(&[
        "rule",
        "set",
        "External tag",
        "--tenant",
        "contoso",
        "--clear",
        "except-if-sender-domain-is",
        "--name",
        "Outside tag",
    ]);
    assert_eq!(names(&s), ["Outside tag", "Block exe", "Sales copy"]);

    // Disable keeps the place; the rule stops matching; enable brings it back.
    s.ok(&["rule", "disable", "Block exe", "--tenant", "contoso"]);
    assert_eq!(listed(&s)[1], (1, "Block exe".into(), false));
    let out = test(&s, EXE_MAIL, &["alice@contoso.test"]);
    assert!(!out.contains("Block exe"), "{out}");
    s.ok(&["rule", "enable", "Block exe", "--tenant", "contoso"]);
    assert_eq!(listed(&s)[1], (1, "Block exe".into(), true));

    // Export, remove everything, import: the same rules, in the same order.
    let exported = s.ok(&["rule", "export", "--tenant", "contoso"]);
    let file = s.dir.path().join("rules.json");
    std::fs::write(&file, &exported).unwrap();
    let before = listed(&s);
    for n in names(&s) {
        s.ok(&["rule", "remove", &n, "--tenant", "contoso"]);
    }
    assert!(names(&s).is_empty());
    s.ok(&[
        "rule",
        "import",
        file.to_str().unwrap(),
        "--tenant",
        "contoso",
    ]);
    assert_eq!(listed(&s), before);

    // Removing closes the gap.
    s.ok(&["rule", "remove", "Block exe", "--tenant", "contoso"]);
    assert_eq!(
        listed(&s),
        [
            (0, "Outside tag".into(), true),
            (1, "Sales copy".into(), true)
        ]
    );
    let (ok, _, err) = s.cli(&["rule", "remove", "Block exe", "--tenant", "contoso"]);
    assert!(!ok && err.contains("not found"), "{err}");
}

#[test]
fn bad_rules_are_refused_naming_the_flag_and_the_value_and_change_nothing() {
    let s = setup();
    s.ok(&[
        "rule",
        "add",
        "Keep",
        "--tenant",
        "contoso",
        "--set-scl",
        "1",
    ]);
    let refused: &[(&[&str], &[&str])] = &[
        (&["--set-scl", "10"], &["--set-scl", "10"]),
        (
            &["--scl-over", "12", "--set-scl", "1"],
            &["--scl-over", "12"],
        ),
        (
            &["--reject-message-enhanced-status-code", "5.7.2"],
            &["--reject-message-enhanced-status-code", "5.7.2"],
        ),
        (
            &[
                "--subject-matches-patterns",
                "(a{1000}){1000}",
                "--delete-message",
            ],
            &[
                "--subject-matches-patterns",
                "(a{1000}){1000}",
                "compiles to more than",
            ],
        ),
        (
            &[
                "--subject-matches-patterns",
                "(unclosed",
                "--delete-message",
            ],
            &["--subject-matches-patterns", "(unclosed"],
        ),
        (
            &["--except-if-from", "not an address", "--delete-message"],
            &["--except-if-from", "not an address"],
        ),
        (
            &["--message-size-over", "10XB", "--quarantine"],
            &["--message-size-over", "10XB"],
        ),
        (
            &["--from-scope", "outside", "--quarantine"],
            &["--from-scope", "outside"],
        ),
        (&["--sent-to", "bob@contoso.test"], &["action"]),
        (&["--priority", "5", "--quarantine"], &["priority 5"]),
    ];
    for (flags, says) in refused {
        let mut args = vec!["rule", "add", "Bad", "--tenant", "contoso"];
        args.extend_from_slice(flags);
        let (ok, out, err) = s.cli(&args);
        assert!(!ok, "{flags:?} should be refused: {out}");
        for word in *says {
            assert!(err.contains(word), "{flags:?}: {err:?} should say {word:?}");
        }
    }
    let (ok, _, err) = s.cli(&["rule", "add", "keep", "--tenant", "contoso", "--quarantine"]);
    assert!(!ok && err.contains("already exists"), "{err}");
    assert_eq!(names(&s), ["Keep"]);

    // An import with one bad rule changes nothing, and names the rule, flag and value.
    let file = s.dir.path().join("bad.json");
    std::fs::write(
        &file,
        json!({ "rules": [
            { "name": "Fine", "actions": { "quarantine": true } },
            { "name": "Broken", "actions": { "set_scl": 11 } }
        ]})
        .to_string(),
    )
    .unwrap();
    let (ok, _, err) = s.cli(&[
        "rule",
        "import",
        file.to_str().unwrap(),
        "--tenant",
        "contoso",
    ]);
    assert!(!ok, "a bad import must fail");
    assert!(
        err.contains("rule 2 (\"Broken\")") && err.contains("--set-scl \"11\""),
        "{err}"
    );
    assert_eq!(names(&s), ["Keep"]);
    // Merge keeps the others.
    std::fs::write(
        &file,
        json!({ "rules": [{ "name": "Added", "actions": { "quarantine": true } }] }).to_string(),
    )
    .unwrap();
    s.ok(&[
        "rule",
        "import",
        file.to_str().unwrap(),
        "--tenant",
        "contoso",
        "--mode",
        "merge",
    ]);
    assert_eq!(names(&s), ["Keep", "Added"]);
}

/// A token of `role` for `tenant`, created by the operator.
fn token(s: &Server, tenant: &str, role: &str) -> String {
    let (status, v) = s.api(
        "POST",
        &format!("/api/v1/tenants/{tenant}/tokens"),
        Some(json!({ "role": role })),
    );
    assert_eq!(status, 201, "{v}");
    v["token"].as_str().unwrap().to_string()
}

#[test]
fn another_tenants_rules_are_404_and_a_recipient_admin_may_not_manage_rules() {
    let s = setup();
    s.tenant("fabrikam");
    let rule = json!({ "name": "Tag", "actions": { "prepend_subject": "[EXT]" } });
    let (status, v) = s.api("POST", "/api/v1/tenants/contoso/rules", Some(rule.clone()));
    assert_eq!(status, 201, "{v}");
    assert_eq!(
        (v["priority"].as_u64(), v["hits"].as_u64()),
        (Some(0), Some(0))
    );

    let fabrikam = token(&s, "fabrikam", "global-admin");
    for (method, path, body) in [
        ("GET", "/api/v1/tenants/contoso/rules", None),
        ("GET", "/api/v1/tenants/contoso/rules/Tag", None),
        ("POST", "/api/v1/tenants/contoso/rules", Some(rule.clone())),
        (
            "PATCH",
            "/api/v1/tenants/contoso/rules/Tag",
            Some(json!({ "enabled": false })),
        ),
        ("DELETE", "/api/v1/tenants/contoso/rules/Tag", None),
        ("POST", "/api/v1/tenants/contoso/rules/Tag/disable", None),
        ("GET", "/api/v1/tenants/contoso/rules/export", None),
        (
            "POST",
            "/api/v1/tenants/contoso/rules/import",
            Some(json!({ "rules": [] })),
        ),
    ] {
        let (status, v) = s.api_as(&fabrikam, method, path, body);
        assert_eq!(status, 404, "{method} {path}: {v}");
    }
    // Its own tenant it manages.
    let (status, _) = s.api_as(&fabrikam, "GET", "/api/v1/tenants/fabrikam/rules", None);
    assert_eq!(status, 200);

    let recipient_admin = token(&s, "contoso", "recipient-admin");
    for (method, path, body) in [
        ("GET", "/api/v1/tenants/contoso/rules", None),
        ("POST", "/api/v1/tenants/contoso/rules", Some(rule.clone())),
        ("DELETE", "/api/v1/tenants/contoso/rules/Tag", None),
    ] {
        let (status, v) = s.api_as(&recipient_admin, method, path, body);
        assert_eq!(status, 403, "{method} {path}: {v}");
    }
    let global = token(&s, "contoso", "global-admin");
    let (status, v) = s.api_as(
        &global,
        "PATCH",
        "/api/v1/tenants/contoso/rules/Tag",
        Some(json!({ "conditions": { "subject_matches_patterns": ["[z-a]"] } })),
    );
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("--subject-matches-patterns \"[z-a]\""),
        "{v}"
    );
    let (status, _) = s.api_as(&global, "GET", "/api/v1/tenants/contoso/rules/Nope", None);
    assert_eq!(status, 404);
    // The collection's own operations are not rule names.
    let (status, v) = s.api_as(
        &global,
        "POST",
        "/api/v1/tenants/contoso/rules",
        Some(json!({ "name": "Test", "actions": { "quarantine": true } })),
    );
    assert_eq!(status, 400, "{v}");
    let (status, v) = s.api_as(
        &global,
        "POST",
        "/api/v1/tenants/contoso/rules/Tag/disable",
        None,
    );
    assert_eq!((status, v["enabled"].as_bool()), (200, Some(false)));
}

/// The properties the OpenAPI document gives schema `name`.
fn documented(doc: &Value, name: &str) -> Vec<String> {
    let mut keys: Vec<String> = doc["components"]["schemas"][name]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("schema {name}"))
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
    k.sort();
    k
}

#[test]
fn the_documented_rule_schemas_are_the_shapes_of_the_answers() {
    let s = setup();
    let (status, doc) = s.api("GET", "/api/v1/openapi.json", None);
    assert_eq!(status, 200);
    for path in [
        "/api/v1/tenants/{tenant}/rules",
        "/api/v1/tenants/{tenant}/rules/{name}",
        "/api/v1/tenants/{tenant}/rules/{name}/enable",
        "/api/v1/tenants/{tenant}/rules/{name}/disable",
        "/api/v1/tenants/{tenant}/rules/export",
        "/api/v1/tenants/{tenant}/rules/import",
        "/api/v1/tenants/{tenant}/rules/test",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
    let (status, v) = s.api(
        "POST",
        "/api/v1/tenants/contoso/rules",
        Some(json!({ "name": "Tag", "actions": { "prepend_subject": "[EXT]" } })),
    );
    assert_eq!(status, 201, "{v}");
    assert_eq!(keys(&v), documented(&doc, "RuleView"));
    let (_, v) = s.api("GET", "/api/v1/tenants/contoso/rules/export", None);
    assert_eq!(keys(&v), documented(&doc, "RuleCollection"));
    assert_eq!(v["rules"][0]["actions"]["prepend_subject"], "[EXT]");
    let (status, bytes) = http_raw(
        s.admin,
        "POST",
        "/api/v1/tenants/contoso/rules/test?to=bob@contoso.test&from=x@fabrikam.test",
        &format!(
            "Authorization: Bearer {}\r\nContent-Type: message/rfc822\r\n",
            s.token
        ),
        PLAIN_MAIL,
    );
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(keys(&v), documented(&doc, "TestResult"));
    assert_eq!(
        v["summary"][0],
        "bob@contoso.test: rules Tag; prepend-subject"
    );
}
