//! The queue listing over the API and the CLI against a real `hato serve`: a message to a mail
//! contact through a group waits in the queue (hato cannot send out yet) with its attempts, next
//! attempt, expiry and last error; tenants see only their own recipients.

mod common;
use common::*;

use hato_core::Timestamp;
use serde_json::{Value, json};

fn time(v: &Value) -> Timestamp {
    v.as_str()
        .and_then(Timestamp::parse_human)
        .unwrap_or_else(|| panic!("not a time: {v}"))
}

/// The properties the document's schema `name` lists.
fn schema_fields(doc: &Value, name: &str) -> Vec<String> {
    let mut fields: Vec<String> = doc["components"]["schemas"][name]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("no schema {name}"))
        .keys()
        .cloned()
        .collect();
    fields.sort();
    fields
}

fn fields(v: &Value) -> Vec<String> {
    let mut fields: Vec<String> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect();
    fields.sort();
    fields
}

#[test]
fn a_message_to_a_contact_through_a_group_waits_in_the_queue_of_its_tenant() {
    let s = Server::start();
    s.tenant("contoso");
    s.tenant("fabrikam");
    s.mailbox("owner@contoso.test", &[]);
    s.ok(&[
        "contact",
        "add",
        "partner@outside.test",
        "--tenant",
        "contoso",
        "--name",
        "Partner",
    ]);
    s.ok(&[
        "group",
        "add",
        "partners@contoso.test",
        "--type",
        "distribution",
        "--tenant",
        "contoso",
        "--owner",
        "owner@contoso.test",
        "--member",
        "partner@outside.test",
        "--require-sender-authentication",
        "false",
    ]);
    let mut c = s.smtp();
    assert!(c.read_reply().starts_with("220"));
    c.cmd("EHLO client.test");
    let reply = c.send_mail(
        "someone@elsewhere.test",
        &["partners@contoso.test"],
        "Subject: for the partners\n\nhello\n",
    );
    let trace_id = trace_id_of(&reply);

    // The contact's row: deferred once (the harness's resolver never answers the MX lookup),
    // next attempt `outbound.retry_first_secs` (5 minutes) later, expiring two days after the
    // message arrived.
    let listing =
        |token: &str, query: &str| s.api_as(token, "GET", &format!("/api/v1/queue{query}"), None);
    s.wait_for("the first deferral", || {
        listing(&s.token, "?recipient=partner@outside.test").1["rows"][0]["attempts"] == 1
    });
    let (status, page) = listing(&s.token, "?recipient=partner@outside.test");
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        (&page["page"], &page["page_size"], &page["more"]),
        (&json!(1), &json!(1000), &json!(false))
    );
    let row = &page["rows"][0];
    assert_eq!(row["trace_id"], trace_id.as_str());
    assert_eq!(row["sender"], "someone@elsewhere.test");
    assert_eq!(
        (&row["route"], &row["status"]),
        (&json!("remote"), &json!("Retry"))
    );
    let received = time(&row["received"]);
    let wait = time(&row["next_attempt"]).0 - received.0;
    // The lookup waits out the resolver's 2 s timeout first.
    assert!(
        (300_000_000..=310_000_000).contains(&wait),
        "next attempt {wait} µs after arrival"
    );
    assert_eq!(time(&row["expires"]), received.plus_seconds(48 * 3600));
    assert_eq!(
        (&row["lease_owner"], &row["lease_until"]),
        (&Value::Null, &Value::Null)
    );
    let last = &row["last_error"];
    assert_eq!(
        (&last["status"], &last["enhanced_status"]),
        (&json!(450), &json!("4.4.312"))
    );
    assert_eq!(last["remote_host"], "");
    assert_eq!(last["reason"]["stage"], "delivery");
    assert!(
        last["reason"]["text"]
            .as_str()
            .is_some_and(|t| t.contains("The MX lookup of outside.test got no answer")),
        "{last}"
    );
    // Its shape is the documented one.
    let (_, doc) = s.api("GET", "/api/v1/openapi.json", None);
    assert_eq!(fields(&page), schema_fields(&doc, "QueuePage"));
    assert_eq!(fields(row), schema_fields(&doc, "QueueRow"));
    assert_eq!(fields(last), schema_fields(&doc, "QueueLastError"));

    // Filters: status, domain, trace id; the group itself was expanded and is not waiting.
    let recipients = |token: &str, query: &str| -> Vec<String> {
        let (status, page) = listing(token, query);
        assert_eq!(status, 200, "{query}: {page}");
        page["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["recipient"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        recipients(&s.token, &format!("?trace_id={trace_id}")),
        ["partner@outside.test"]
    );
    assert_eq!(
        recipients(&s.token, "?domain=Outside.Test&status=retry"),
        ["partner@outside.test"]
    );
    assert!(recipients(&s.token, "?status=Ready&domain=outside.test").is_empty());
    assert!(recipients(&s.token, "?tenant=fabrikam").is_empty());

    // A tenant admin sees its tenant's rows; the other tenant's admin does not, and asking for
    // that tenant is 404 as elsewhere.
    let token = |tenant: &str| -> String {
        let (status, v) = s.api(
            "POST",
            &format!("/api/v1/tenants/{tenant}/tokens"),
            Some(json!({})),
        );
        assert_eq!(status, 201, "{v}");
        v["token"].as_str().unwrap().to_string()
    };
    let (contoso, fabrikam) = (token("contoso"), token("fabrikam"));
    assert_eq!(recipients(&contoso, ""), ["partner@outside.test"]);
    assert!(recipients(&fabrikam, "").is_empty());
    assert!(recipients(&fabrikam, &format!("?trace_id={trace_id}")).is_empty());
    assert_eq!(listing(&fabrikam, "?tenant=contoso").0, 404);
    assert_eq!(listing(&s.token, "?tenant=nosuch").0, 404);
    // A user (not an admin) is refused; no token is 401; bad values are 400 naming the limits.
    let (status, _) = s.api(
        "POST",
        "/api/v1/mailboxes",
        Some(json!({"address": "user@contoso.test", "password": "correct horse battery"})),
    );
    assert_eq!(status, 201);
    let (status, user) = s.api_as(
        "",
        "POST",
        "/api/v1/auth/login",
        Some(json!({"address": "user@contoso.test", "password": "correct horse battery"})),
    );
    assert_eq!(status, 200, "{user}");
    assert_eq!(listing(user["token"].as_str().unwrap(), "").0, 403);
    assert_eq!(listing("", "").0, 401);
    let (status, err) = listing(&s.token, "?status=Delivered");
    assert_eq!(status, 400);
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .contains("Active, Ready, Retry"),
        "{err}"
    );
    let (status, err) = listing(&s.token, "?page_size=0");
    assert_eq!(status, 400);
    assert!(
        err["error"].as_str().unwrap().contains("1 to 5000"),
        "{err}"
    );
    assert_eq!(listing(&s.token, "?recipient=not%20an%20address").0, 400);
    assert_eq!(listing(&s.token, "?unknown=1").0, 400);

    // The CLI: a table, JSON, and the tenant admin's view.
    let out = s.ok(&["queue", "list", "--recipient", "partner@outside.test"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("RECEIVED") && lines[0].contains("NEXT_ATTEMPT"),
        "{out}"
    );
    assert!(
        lines[1].contains("partner@outside.test")
            && lines[1].contains("remote")
            && lines[1].contains("Retry")
            && lines[1].contains("450 4.4.312 DNS query failed"),
        "{out}"
    );
    let json_out: Value =
        serde_json::from_str(&s.ok(&["queue", "list", "--domain", "outside.test", "--json"]))
            .unwrap();
    assert_eq!(json_out["rows"][0]["attempts"], 1);
    assert_eq!(json_out["more"], false);
    let as_tenant = |token: &str, args: &[&str]| {
        let (ok, out, err) = s.cli_env(args, &[("HATO_TOKEN", token)]);
        assert!(ok, "{err}");
        out
    };
    assert!(as_tenant(&contoso, &["queue", "list"]).contains("partner@outside.test"));
    assert_eq!(
        as_tenant(&fabrikam, &["queue", "list"]).lines().nth(1),
        Some("(none)")
    );
    let (ok, _, err) = s.cli_env(
        &["queue", "list", "--tenant", "contoso"],
        &[("HATO_TOKEN", &fabrikam)],
    );
    assert!(!ok && err.contains("404"), "{err}");
    let (ok, _, err) = s.cli(&["queue", "list", "--page-size", "0"]);
    assert!(!ok && err.contains("0"), "{err}");
}

/// A message to an outside contact through a group: it waits in the queue (no outbound
/// delivery yet), deferred a minute at a time. Returns its trace id once deferred once.
fn waiting_message(s: &Server, subject: &str) -> String {
    let mut c = s.smtp();
    assert!(c.read_reply().starts_with("220"));
    c.cmd("EHLO client.test");
    let reply = c.send_mail(
        "someone@elsewhere.test",
        &["partners@contoso.test"],
        &format!("Subject: {subject}\n\nhello\n"),
    );
    let trace_id = trace_id_of(&reply);
    s.wait_for("the first deferral", || {
        s.api("GET", &format!("/api/v1/queue?trace_id={trace_id}"), None)
            .1["rows"][0]["attempts"]
            == 1
    });
    trace_id
}

#[test]
fn an_admin_retries_and_deletes_queued_mail() {
    let s = Server::start();
    s.tenant("contoso");
    s.mailbox("owner@contoso.test", &[]);
    s.ok(&[
        "contact",
        "add",
        "partner@outside.test",
        "--tenant",
        "contoso",
    ]);
    s.ok(&[
        "group",
        "add",
        "partners@contoso.test",
        "--type",
        "distribution",
        "--tenant",
        "contoso",
        "--owner",
        "owner@contoso.test",
        "--member",
        "partner@outside.test",
        "--require-sender-authentication",
        "false",
    ]);
    let row = |id: &str| {
        s.api("GET", &format!("/api/v1/queue?trace_id={id}"), None)
            .1["rows"][0]
            .clone()
    };

    // Retry: due now, not in a minute; the delivery agent takes it again at once.
    let first = waiting_message(&s, "first");
    let out = s.ok(&["queue", "retry", &first]);
    assert!(out.contains("retried 1 recipient(s)"), "{out}");
    s.wait_for("the second attempt", || row(&first)["attempts"] == 2);

    // Delete without an NDR: failed, traced as a Drop with Exchange's QUEUE.Admin text, gone
    // from the queue, nothing sent back.
    let out = s.ok(&[
        "queue",
        "delete",
        &first,
        "--recipient",
        "partner@outside.test",
    ]);
    assert!(out.contains("deleted 1 recipient(s)"), "{out}");
    assert_eq!(row(&first), Value::Null);
    let events = s.events(&first, "partner@outside.test");
    let last = events.last().expect("events");
    assert_eq!(last["event"], "Drop", "{events:?}");
    assert!(
        last.to_string()
            .contains("QUEUE.Admin; message deleted by administrative action"),
        "{last}"
    );
    // Nothing of it waits any more.
    let (status, v) = s.api(
        "POST",
        "/api/v1/queue/delete",
        Some(json!({"trace_id": first})),
    );
    assert_eq!(status, 404, "{v}");

    // Delete with an NDR (Exchange's -WithNDR): a Fail, and the sender is sent one.
    let second = waiting_message(&s, "second");
    s.ok(&["queue", "delete", &second, "--with-ndr"]);
    let events = s.events(&second, "partner@outside.test");
    assert_eq!(
        events.last().expect("events")["event"],
        "Fail",
        "{events:?}"
    );
    s.wait_for("the NDR to the sender", || {
        s.api(
            "GET",
            "/api/v1/queue?recipient=someone@elsewhere.test",
            None,
        )
        .1["rows"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["sender"] == ""))
    });

    // Deleting is a global admin's; a recipient admin may only look and retry.
    let (status, v) = s.api(
        "POST",
        "/api/v1/tenants/contoso/tokens",
        Some(json!({ "role": "recipient-admin" })),
    );
    assert_eq!(status, 201, "{v}");
    let token = v["token"].as_str().expect("token").to_string();
    let third = waiting_message(&s, "third");
    let (status, v) = s.api_as(
        &token,
        "POST",
        "/api/v1/queue/delete",
        Some(json!({"trace_id": third})),
    );
    assert_eq!(status, 403, "{v}");
    let (status, v) = s.api_as(
        &token,
        "POST",
        "/api/v1/queue/retry",
        Some(json!({"trace_id": third})),
    );
    assert_eq!((status, &v["changed"]), (200, &json!(1)), "{v}");
}
