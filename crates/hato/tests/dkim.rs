//! DKIM signing end to end on a real `hato serve`: `hato dkim add` makes the keys and prints the
//! records; served by a DNS server on loopback, a message `hato dkim sign` signed (the signer
//! outbound delivery uses) passes hato's own inbound DKIM verification (the spam stage's
//! Authentication-Results says dkim=pass), and fails once changed. The commands' refusals, the
//! tenant isolation, enabling, rotation and removal.

mod common;

use common::{Dns, Server};
use serde_json::{Value, json};

fn setup() -> (Dns, Server) {
    let dns = Dns::start(&["test"]);
    let s = Server::start_with_config(
        "",
        "",
        &format!("[dns]\nservers = [\"{}\"]\ntimeout_ms = 2000\n", dns.addr()),
    );
    s.tenant("contoso");
    s.tenant("fabrikam");
    s.mailbox("alice@contoso.test", &[]);
    s.mailbox("bob@fabrikam.test", &[]);
    (dns, s)
}

fn admin_token(s: &Server, tenant: &str) -> String {
    let (status, v) = s.api(
        "POST",
        &format!("/api/v1/tenants/{tenant}/tokens"),
        Some(json!({ "role": "global-admin" })),
    );
    assert_eq!(status, 201, "{v}");
    v["token"].as_str().expect("token").to_string()
}

fn show(s: &Server, domain: &str, tenant: &str) -> Value {
    let out = s.ok(&["dkim", "show", domain, "--tenant", tenant, "--json"]);
    serde_json::from_str(&out).expect("json")
}

/// Publishes a config's records as `hato dkim show` gives them.
fn publish(dns: &Dns, config: &Value) {
    for sel in config["selectors"].as_array().unwrap() {
        let strings: Vec<&str> = sel["record_strings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        dns.txt_strings(sel["record_name"].as_str().unwrap(), &strings);
    }
}

/// Every message in the mailbox (Inbox and Junk), raw, once `n` are there.
fn raw_messages(s: &Server, address: &str, n: usize) -> Vec<String> {
    let list = |s: &Server| -> Vec<Value> {
        ["inbox", "junk"]
            .iter()
            .flat_map(|f| {
                let (status, v) = s.api(
                    "GET",
                    &format!("/api/v1/mailboxes/{address}/messages?folder={f}"),
                    None,
                );
                assert_eq!(status, 200, "{v}");
                v.as_array().cloned().unwrap_or_default()
            })
            .collect()
    };
    s.wait_for(&format!("{n} messages for {address}"), || {
        list(s).len() >= n
    });
    list(s)
        .iter()
        .map(|m| s.raw_mail(address, m["id"].as_i64().unwrap()))
        .collect()
}

const MESSAGE: &str = "From: Alice <alice@contoso.test>\r\nTo: bob@fabrikam.test\r\n\
Subject: the minutes\r\nDate: Tue, 1 Dec 2026 06:00:00 +0000\r\n\
Message-ID: <minutes-1@contoso.test>\r\nMIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\n\
Hi Bob,\r\n\r\nthe minutes of Tuesday's meeting are on the wiki page.\r\n\r\nAlice\r\n";

#[test]
fn a_message_signed_with_the_printed_records_passes_hatos_inbound_dkim() {
    let (dns, s) = setup();
    let out = s.ok(&["dkim", "add", "contoso.test", "--tenant", "contoso"]);
    assert!(
        out.contains("signing selector: selector1 (rsa 2048)"),
        "{out}"
    );
    assert!(
        out.contains("selector1._domainkey.contoso.test. IN TXT \"v=DKIM1; k=rsa; p=MII"),
        "{out}"
    );
    assert!(
        out.contains("selector2._domainkey.contoso.test. IN TXT \"v=DKIM1; k=rsa; p="),
        "{out}"
    );
    let config = show(&s, "contoso.test", "contoso");
    assert_eq!(config["enabled"], true);
    publish(&dns, &config);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.eml");
    std::fs::write(&file, MESSAGE).unwrap();
    let signed = s.ok(&[
        "dkim",
        "sign",
        "--tenant",
        "contoso",
        file.to_str().unwrap(),
    ]);
    assert!(signed.starts_with("DKIM-Signature: "), "{signed}");
    assert!(
        signed.contains("d=contoso.test") && signed.contains("s=selector1"),
        "{signed}"
    );

    let mut c = s.smtp();
    assert!(c.read_reply().starts_with("220"));
    assert!(c.cmd("EHLO client.fabrikam.test").starts_with("250"));
    let reply = c.send_mail("alice@contoso.test", &["bob@fabrikam.test"], &signed);
    assert!(reply.starts_with("250"), "{reply}");
    let changed = signed.replace("wiki page", "wiki site");
    let reply = c.send_mail("alice@contoso.test", &["bob@fabrikam.test"], &changed);
    assert!(reply.starts_with("250"), "{reply}");
    let raws = raw_messages(&s, "bob@fabrikam.test", 2);
    let ar = |r: &String| {
        r.lines()
            .find(|l| l.starts_with("Authentication-Results: mx.hato.test;"))
            .map(str::to_string)
            .unwrap_or_else(|| panic!("no Authentication-Results: {r}"))
    };
    let intact = raws.iter().find(|r| r.contains("wiki page")).unwrap();
    let tampered = raws.iter().find(|r| r.contains("wiki site")).unwrap();
    assert!(
        intact.contains("dkim=pass (signature was verified) header.d=contoso.test"),
        "{}",
        ar(intact)
    );
    assert!(
        tampered.contains("dkim=fail (body hash did not verify) header.d=contoso.test"),
        "{}",
        ar(tampered)
    );
}

#[test]
fn only_the_tenants_verified_domains_get_a_config_with_a_clear_refusal() {
    let (_dns, s) = setup();
    for (args, says) in [
        (
            vec!["dkim", "add", "nowhere.test", "--tenant", "contoso"],
            "nowhere.test is not an accepted domain of this tenant",
        ),
        (
            vec!["dkim", "add", "fabrikam.test", "--tenant", "contoso"],
            "fabrikam.test is not an accepted domain of this tenant",
        ),
        (
            vec![
                "dkim",
                "add",
                "contoso.test",
                "--tenant",
                "contoso",
                "--key-size",
                "1024",
            ],
            "key size 1024 is not supported",
        ),
        (
            vec![
                "dkim",
                "add",
                "contoso.test",
                "--tenant",
                "contoso",
                "--key-type",
                "dsa",
            ],
            "key-type \"dsa\": rsa or ed25519",
        ),
    ] {
        let (ok, _, err) = s.cli(&args);
        assert!(!ok, "{args:?}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    s.ok(&[
        "dkim",
        "add",
        "contoso.test",
        "--tenant",
        "contoso",
        "--key-type",
        "ed25519",
        "--enabled",
        "false",
    ]);
    let (ok, _, err) = s.cli(&["dkim", "add", "contoso.test", "--tenant", "contoso"]);
    assert!(!ok && err.contains("already exists"), "{err}");
    let c = show(&s, "contoso.test", "contoso");
    assert_eq!(c["enabled"], false);
    assert_eq!(c["key_type"], "ed25519");
    assert!(
        c["selectors"][0]["record"]
            .as_str()
            .unwrap()
            .starts_with("v=DKIM1; k=ed25519; p="),
        "{c}"
    );
    // Another tenant's admin sees nothing of it; its own admin does.
    let fabrikam = admin_token(&s, "fabrikam");
    let (status, _) = s.api_as(
        &fabrikam,
        "GET",
        "/api/v1/tenants/contoso/dkim/contoso.test",
        None,
    );
    assert_eq!(status, 404);
    let (status, v) = s.api_as(
        &fabrikam,
        "POST",
        "/api/v1/tenants/fabrikam/dkim",
        Some(json!({"domain": "contoso.test"})),
    );
    assert_eq!(status, 400, "{v}");
    let contoso = admin_token(&s, "contoso");
    let (status, v) = s.api_as(&contoso, "GET", "/api/v1/tenants/contoso/dkim", None);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v.as_array().unwrap().len(), 1);
    // Private keys never leave the server.
    assert!(!v.to_string().contains("private"), "{v}");
}

#[test]
fn set_rotate_list_and_remove() {
    let (_dns, s) = setup();
    s.ok(&[
        "dkim",
        "add",
        "contoso.test",
        "--tenant",
        "contoso",
        "--key-type",
        "ed25519",
    ]);
    let before = show(&s, "contoso.test", "contoso");
    let out = s.ok(&[
        "dkim",
        "set",
        "contoso.test",
        "--tenant",
        "contoso",
        "--enabled",
        "false",
    ]);
    assert!(out.contains("enabled: false"), "{out}");
    let out = s.ok(&["dkim", "rotate", "contoso.test", "--tenant", "contoso"]);
    assert!(out.contains("signing selector: selector2"), "{out}");
    let after = show(&s, "contoso.test", "contoso");
    assert_eq!(after["active_selector"], "selector2");
    assert!(after["rotated"].is_string());
    // selector2's record is unchanged (it is published already); selector1 has a new key.
    assert_eq!(
        after["selectors"][1]["record"],
        before["selectors"][1]["record"]
    );
    assert_ne!(
        after["selectors"][0]["record"],
        before["selectors"][0]["record"]
    );
    let list = s.ok(&["dkim", "list", "--tenant", "contoso"]);
    assert!(
        list.contains("contoso.test") && list.contains("selector2"),
        "{list}"
    );
    s.ok(&["dkim", "remove", "contoso.test", "--tenant", "contoso"]);
    let (ok, _, err) = s.cli(&["dkim", "show", "contoso.test", "--tenant", "contoso"]);
    assert!(!ok && err.contains("not found"), "{err}");
    // Signing a message of a domain without a config says so.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.eml");
    std::fs::write(&file, MESSAGE).unwrap();
    let (ok, _, err) = s.cli(&[
        "dkim",
        "sign",
        "--tenant",
        "contoso",
        file.to_str().unwrap(),
    ]);
    assert!(
        !ok && err.contains("no DKIM signing config for contoso.test"),
        "{err}"
    );
}

#[test]
fn the_documented_schemas_are_the_answers_shapes() {
    let (_dns, s) = setup();
    let (status, doc) = s.api("GET", "/api/v1/openapi.json", None);
    assert_eq!(status, 200);
    for path in [
        "/api/v1/tenants/{tenant}/dkim",
        "/api/v1/tenants/{tenant}/dkim/{domain}",
        "/api/v1/tenants/{tenant}/dkim/{domain}/rotate",
        "/api/v1/tenants/{tenant}/dkim-sign",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
    s.ok(&[
        "dkim",
        "add",
        "contoso.test",
        "--tenant",
        "contoso",
        "--key-type",
        "ed25519",
    ]);
    let v = show(&s, "contoso.test", "contoso");
    let fields = |schema: &str| -> Vec<String> {
        let mut f: Vec<String> = doc["components"]["schemas"][schema]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{schema} in the document"))
            .keys()
            .cloned()
            .collect();
        f.sort();
        f
    };
    let keys = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(fields("DkimConfigView"), keys(&v));
    assert_eq!(fields("DkimSelectorView"), keys(&v["selectors"][0]));
}
