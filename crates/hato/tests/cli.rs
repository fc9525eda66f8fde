//! The `hato` command line against a real `hato serve`: init, tenants, domains, mailboxes, mail,
//! message trace, errors, and acting as a tenant admin.

mod common;
use common::*;

use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

/// Runs `hato --config <server's file> ARGS` with `env`; returns (exit code, stdout, stderr).
fn run(s: &Server, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.arg("--config")
        .arg(&s.config)
        .args(args)
        .env_remove("HATO_TOKEN");
    for (k, v) in env {
        cmd.env(k, v);
    }
    output(&mut cmd)
}

fn output(cmd: &mut Command) -> (Option<i32>, String, String) {
    let out = cmd.output().expect("run hato");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Asserts a failed command: exit status 1, nothing on stdout, one line on stderr starting with
/// `error: `; returns that line.
#[track_caller]
fn assert_error((code, out, err): (Option<i32>, String, String)) -> String {
    assert_eq!(code, Some(1), "exit status; stdout: {out}; stderr: {err}");
    assert_eq!(out, "", "nothing on stdout");
    assert!(err.starts_with("error: "), "{err:?}");
    assert!(err.ends_with('\n'), "{err:?}");
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    err.trim_end().to_string()
}

/// Runs the CLI with `--json` output and parses it.
#[track_caller]
fn json_of(s: &Server, args: &[&str]) -> Value {
    let out = s.ok(args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("hato {args:?}: not JSON ({e}): {out}"))
}

/// The words of a table's header row.
fn header(out: &str) -> Vec<String> {
    out.lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Domains without their verification records (random), each checked to be one.
fn without_records(mut v: Value) -> Value {
    for d in v.as_array_mut().into_iter().flatten() {
        let record = d
            .as_object_mut()
            .and_then(|o| o.remove("verification_record"))
            .unwrap_or_default();
        assert!(
            record
                .as_str()
                .is_some_and(|r| r.starts_with("hato-verification=")),
            "{record}"
        );
    }
    v
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
    k.sort();
    k
}

fn send(s: &Server, from: &str, to: &[&str], subject: &str, message_id: &str) -> String {
    let mut c = s.smtp();
    assert!(c.read_reply().starts_with("220"));
    assert!(c.cmd("EHLO client.example").starts_with("250"));
    let content = format!(
        "From: <{from}>\nTo: <{}>\nSubject: {subject}\nMessage-ID: {message_id}\n\nBody of {subject}.\n",
        to[0]
    );
    let reply = c.send_mail(from, to, &content);
    assert!(reply.starts_with("250"), "{reply}");
    c.cmd("QUIT");
    let trace_id = trace_id_of(&reply);
    s.wait_for("delivery", || {
        let rows = s.trace(&format!("trace_id={trace_id}"));
        rows.len() == to.len() && rows.iter().all(|r| r["status"] == "Delivered")
    });
    trace_id
}

// ----- init -----------------------------------------------------------------------------------

#[test]
fn init_writes_a_commented_settings_file_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let init = |extra: &[&str]| {
        output(
            Command::new(BIN)
                .arg("init")
                .args(extra)
                .current_dir(dir.path())
                .env_remove("HATO_TOKEN"),
        )
    };
    let (code, out, err) = init(&[]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "wrote ./hato.toml\n");
    let file = dir.path().join("hato.toml");
    let text = std::fs::read_to_string(&file).expect("hato.toml written");
    for section in ["[server]", "[smtp]", "[admin]", "[trace]", "[dns]"] {
        assert!(
            text.lines().any(|l| l.trim() == section),
            "{section} missing:\n{text}"
        );
    }
    // Commented: every setting appears, commented out, with its default.
    for setting in [
        "#hostname = \"localhost\"",
        "#data_dir = \"hato-data\"",
        "#listen = [\"127.0.0.1:2525\"]",
        "#max_message_size = 36700160",
        "#max_recipients = 500",
        "#max_connections = 2000",
        "#max_connections_per_ip = 50",
        "#idle_timeout_secs = 300",
        "#data_timeout_secs = 600",
        "#session_timeout_secs = 1800",
        "#tls_cert = \"\"",
        "#tls_key = \"\"",
        "#listen = \"127.0.0.1:8025\"",
        "#retention_days = 90",
        "#servers = []",
        "#timeout_ms = 5000",
        "#cache_size = 10000",
    ] {
        assert!(text.contains(setting), "{setting} missing:\n{text}");
    }
    // The file is accepted as a settings file: the CLI gets past reading it, to the token that a
    // server started with it would write (relative to the file's directory).
    let (code, _, err) = output(
        Command::new(BIN)
            .args(["--config", "hato.toml", "tenant", "list"])
            .current_dir(dir.path())
            .env_remove("HATO_TOKEN"),
    );
    assert_eq!(code, Some(1));
    assert!(
        err.starts_with("error: cannot read the API token from "),
        "{err}"
    );
    assert!(err.contains("hato-data/operator.token"), "{err}");

    // A second init refuses and leaves the file alone.
    std::fs::write(&file, "# mine\n").expect("write");
    let err = assert_error(init(&[]));
    assert!(
        err.contains("hato.toml") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&file).expect("read"), "# mine\n");
    // --force overwrites, even a file that does not parse.
    std::fs::write(&file, "this is [not toml\n").expect("write");
    let (code, _, err) = init(&["--force"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(std::fs::read_to_string(&file).expect("read"), text);
}

#[test]
fn a_bad_settings_file_is_one_error_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[smtp]\nlisten_on = 1\n").expect("write");
    let mut cmd = Command::new(BIN);
    cmd.arg("--config")
        .arg(&file)
        .args(["tenant", "list"])
        .env("HATO_TOKEN", "x");
    let err = assert_error(output(&mut cmd));
    assert!(
        err.contains("bad.toml") && err.contains("listen_on") && err.contains("line 2"),
        "{err}"
    );
    let missing = dir.path().join("missing.toml");
    let mut cmd = Command::new(BIN);
    cmd.arg("--config")
        .arg(&missing)
        .args(["tenant", "list"])
        .env("HATO_TOKEN", "x");
    let err = assert_error(output(&mut cmd));
    assert!(err.contains("missing.toml"), "{err}");
}

// ----- tenants and domains ----------------------------------------------------------------------

#[test]
fn tenants_and_domains() {
    let s = Server::start();
    assert_eq!(s.ok(&["tenant", "list"]), "NAME\n(none)\n");
    assert_eq!(json_of(&s, &["tenant", "list", "--json"]), json!([]));
    assert_eq!(
        s.ok(&["tenant", "add", "contoso"]),
        "tenant contoso added\n"
    );
    s.ok(&["tenant", "add", "fabrikam"]);
    let out = s.ok(&["tenant", "list"]);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["NAME", "contoso", "fabrikam"]
    );
    let v = json_of(&s, &["tenant", "list", "--json"]);
    let names: Vec<&str> = v
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, ["contoso", "fabrikam"]);
    let err = assert_error(run(&s, &["tenant", "add", "contoso"], &[]));
    assert!(err.contains("contoso") && err.contains("409"), "{err}");

    // Domains, with both types.
    assert_eq!(
        s.ok(&["domain", "add", "contoso.test", "--tenant", "contoso"]),
        "domain contoso.test added to tenant contoso (authoritative)\n"
    );
    assert_eq!(
        s.ok(&[
            "domain",
            "add",
            "Relay.Contoso.TEST",
            "--tenant",
            "contoso",
            "--type",
            "internal-relay"
        ]),
        "domain relay.contoso.test added to tenant contoso (internal-relay)\n"
    );
    s.ok(&[
        "domain",
        "add",
        "fabrikam.test",
        "--tenant",
        "fabrikam",
        "--type",
        "authoritative",
    ]);
    let out = s.ok(&["domain", "list"]);
    assert_eq!(
        header(&out),
        ["DOMAIN", "TENANT", "TYPE", "STATUS", "VERIFICATION_RECORD"]
    );
    let rows: Vec<Vec<&str>> = out
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().take(4).collect())
        .collect();
    // The operator's domains are verified at once.
    assert_eq!(
        rows,
        [
            vec!["contoso.test", "contoso", "authoritative", "verified"],
            vec!["fabrikam.test", "fabrikam", "authoritative", "verified"],
            vec![
                "relay.contoso.test",
                "contoso",
                "internal-relay",
                "verified"
            ],
        ]
    );
    assert_eq!(
        without_records(json_of(
            &s,
            &["domain", "list", "--tenant", "contoso", "--json"]
        )),
        json!([
            {"domain": "contoso.test", "tenant": "contoso", "type": "authoritative", "status": "verified"},
            {"domain": "relay.contoso.test", "tenant": "contoso", "type": "internal-relay", "status": "verified"},
        ])
    );
    assert_eq!(
        json_of(&s, &["domain", "list", "--tenant", "fabrikam", "--json"])
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let err = assert_error(run(
        &s,
        &["domain", "add", "contoso.test", "--tenant", "fabrikam"],
        &[],
    ));
    assert!(err.contains("contoso.test") && err.contains("409"), "{err}");

    // Remove a domain, then a tenant (with everything in it).
    assert_eq!(
        s.ok(&["domain", "remove", "relay.contoso.test"]),
        "domain relay.contoso.test removed\n"
    );
    let err = assert_error(run(&s, &["domain", "remove", "relay.contoso.test"], &[]));
    assert!(
        err.contains("relay.contoso.test") && err.contains("404"),
        "{err}"
    );
    s.mailbox("bob@fabrikam.test", &[]);
    assert_eq!(
        s.ok(&["tenant", "remove", "fabrikam"]),
        "tenant fabrikam removed\n"
    );
    assert_eq!(
        s.ok(&["tenant", "list"]).lines().collect::<Vec<_>>(),
        ["NAME", "contoso"]
    );
    assert_eq!(
        without_records(json_of(&s, &["domain", "list", "--json"])),
        json!([{"domain": "contoso.test", "tenant": "contoso", "type": "authoritative",
                "status": "verified"}])
    );
    assert_error(run(&s, &["mailbox", "show", "bob@fabrikam.test"], &[]));
    let err = assert_error(run(&s, &["tenant", "remove", "fabrikam"], &[]));
    assert!(err.contains("fabrikam") && err.contains("404"), "{err}");
}

// ----- mailboxes --------------------------------------------------------------------------------

#[test]
fn mailbox_add_show_set_list() {
    let s = Server::start();
    s.tenant("contoso");
    let out = s.ok(&[
        "mailbox",
        "add",
        "FrontDesk@Contoso.test",
        "--name",
        "Front Desk",
        "--type",
        "shared",
        "--department",
        "Facilities",
        "--office",
        "Building 7",
        "--company",
        "Contoso Ltd",
        "--city",
        "Redmond",
        "--title",
        "Reception",
        "--custom1",
        "first",
        "--custom15",
        "last",
        "--alias",
        "reception@contoso.test",
        "--alias",
        "lobby@contoso.test",
        "--quota-mb",
        "2048",
    ]);
    assert_eq!(
        out,
        "mailbox frontdesk@contoso.test added to tenant contoso\n"
    );
    s.mailbox(
        "alice@contoso.test",
        &["--name", "Alice Example", "--department", "Sales"],
    );

    let v = json_of(&s, &["mailbox", "show", "frontdesk@contoso.test", "--json"]);
    let mut expected = json!({
        "address": "frontdesk@contoso.test",
        "tenant": "contoso",
        "display_name": "Front Desk",
        "type": "shared",
        "aliases": ["lobby@contoso.test", "reception@contoso.test"],
        "department": "Facilities",
        "company": "Contoso Ltd",
        "office": "Building 7",
        "city": "Redmond",
        "state_or_province": "",
        "country_or_region": "",
        "title": "Reception",
        "quota_mb": 2048,
        "smtp_client_authentication_disabled": false,
        "used_bytes": 0,
    });
    for i in 1..=15 {
        expected[format!("custom_attribute_{i}")] = json!("");
    }
    expected["custom_attribute_1"] = json!("first");
    expected["custom_attribute_15"] = json!("last");
    assert_eq!(v, expected);
    // By alias and in any case.
    assert_eq!(
        json_of(&s, &["mailbox", "show", "Reception@CONTOSO.test", "--json"]),
        expected
    );

    // The human form: one "field value" line per non-empty field.
    let out = s.ok(&["mailbox", "show", "frontdesk@contoso.test"]);
    let line = |field: &str| -> String {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(field))
            .unwrap_or_else(|| panic!("no {field} line in:\n{out}"))
            .split_whitespace()
            .skip(1)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(line("address"), "frontdesk@contoso.test");
    assert_eq!(line("display_name"), "Front Desk");
    assert_eq!(
        line("aliases"),
        "lobby@contoso.test, reception@contoso.test"
    );
    assert_eq!(line("custom_attribute_15"), "last");
    assert_eq!(line("quota_mb"), "2048");
    assert_eq!(line("smtp_client_authentication_disabled"), "false");
    assert!(
        !out.contains("custom_attribute_2 "),
        "empty fields are left out:\n{out}"
    );

    // set changes only the given fields; --alias replaces the list.
    assert_eq!(
        s.ok(&[
            "mailbox",
            "set",
            "lobby@contoso.test",
            "--department",
            "Operations",
            "--custom7",
            "seven",
            "--type",
            "user"
        ]),
        "mailbox lobby@contoso.test changed\n"
    );
    let mut after = expected.clone();
    after["department"] = json!("Operations");
    after["custom_attribute_7"] = json!("seven");
    after["type"] = json!("user");
    assert_eq!(
        json_of(&s, &["mailbox", "show", "frontdesk@contoso.test", "--json"]),
        after
    );
    s.ok(&[
        "mailbox",
        "set",
        "frontdesk@contoso.test",
        "--alias",
        "desk@contoso.test",
        "--quota-mb",
        "10",
    ]);
    after["aliases"] = json!(["desk@contoso.test"]);
    after["quota_mb"] = json!(10);
    assert_eq!(
        json_of(&s, &["mailbox", "show", "desk@contoso.test", "--json"]),
        after
    );
    assert_error(run(&s, &["mailbox", "show", "lobby@contoso.test"], &[]));
    let err = assert_error(run(&s, &["mailbox", "set", "frontdesk@contoso.test"], &[]));
    assert!(err.contains("nothing to change"), "{err}");
    let err = assert_error(run(
        &s,
        &[
            "mailbox",
            "set",
            "frontdesk@contoso.test",
            "--alias",
            "alice@contoso.test",
        ],
        &[],
    ));
    assert!(err.contains("409"), "{err}");
    let err = assert_error(run(&s, &["mailbox", "add", "alice@contoso.test"], &[]));
    assert!(
        err.contains("alice@contoso.test") && err.contains("409"),
        "{err}"
    );

    // list: table and JSON.
    let out = s.ok(&["mailbox", "list"]);
    assert_eq!(
        header(&out),
        [
            "ADDRESS",
            "DISPLAY_NAME",
            "TYPE",
            "TENANT",
            "DEPARTMENT",
            "QUOTA_MB",
            "USED_BYTES"
        ]
    );
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("alice@contoso.test")
            && l.contains("Alice Example")
            && l.contains("Sales")),
        "{out}"
    );
    let list = json_of(&s, &["mailbox", "list", "--json"]);
    let list = list.as_array().expect("list");
    assert_eq!(list.len(), 2);
    let front = list
        .iter()
        .find(|m| m["address"] == "frontdesk@contoso.test")
        .expect("frontdesk listed");
    assert_eq!(front, &after);
    let alice = list
        .iter()
        .find(|m| m["address"] == "alice@contoso.test")
        .expect("alice listed");
    assert_eq!(alice["display_name"], "Alice Example");
    assert_eq!(alice["type"], "user");
    assert_eq!(alice["quota_mb"], 51200);
    assert_eq!(
        json_of(&s, &["mailbox", "list", "--tenant", "contoso", "--json"])
            .as_array()
            .map(Vec::len),
        Some(2)
    );

    // remove
    assert_eq!(
        s.ok(&["mailbox", "remove", "desk@contoso.test"]),
        "mailbox desk@contoso.test removed\n"
    );
    assert_error(run(&s, &["mailbox", "show", "frontdesk@contoso.test"], &[]));
    let list = json_of(&s, &["mailbox", "list", "--json"]);
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    // A domain still holding a mailbox cannot be removed.
    let err = assert_error(run(&s, &["domain", "remove", "contoso.test"], &[]));
    assert!(err.contains("contoso.test") && err.contains("400"), "{err}");
}

/// Addresses and names with characters a URL path gives a meaning to (`/ ? # %`), that a form
/// reads as something else (`+`), spaces, quotes, sub-delims and non-ASCII: the CLI puts each
/// in a path segment, and the API finds exactly that object and gives it back unchanged.
#[test]
fn reserved_and_non_ascii_characters_go_through_the_cli_to_the_api_and_back() {
    let s = Server::start();
    s.tenant("contoso");
    s.ok(&["domain", "add", "Bücher.test", "--tenant", "contoso"]);
    // `%41` would be read as `A` if `%` were not escaped: a mailbox `a@` stands ready to answer.
    s.mailbox("a@contoso.test", &[]);
    let addresses = [
        "a+tag@contoso.test",
        "a/b@contoso.test",
        "100%@contoso.test",
        "%41@contoso.test",
        "what?@contoso.test",
        "no#1@contoso.test",
        "\"john smith\"@contoso.test",
        "jürgen@bücher.test",
        "用户@bücher.test",
        "o'brien!$&*=~@contoso.test",
        "\"a(b),c;d:e\"@contoso.test",
        "x{y}|z^`@contoso.test",
    ];
    for address in addresses {
        s.mailbox(address, &[]);
        let v = json_of(&s, &["mailbox", "show", address, "--json"]);
        assert_eq!(v["address"], address, "{v}");
        s.ok(&["mailbox", "set", address, "--department", "R&D / 50%"]);
        let v = json_of(&s, &["mailbox", "show", address, "--json"]);
        assert_eq!(
            (v["address"].as_str(), v["department"].as_str()),
            (Some(address), Some("R&D / 50%"))
        );
        assert_eq!(json_of(&s, &["mail", "list", address, "--json"]), json!([]));
        s.ok(&[
            "mailbox",
            "permission",
            "add",
            address,
            "--user",
            "a@contoso.test",
            "--right",
            "send-as",
        ]);
        let v = json_of(&s, &["mailbox", "permission", "list", address, "--json"]);
        assert_eq!(v, json!([{"user": "a@contoso.test", "right": "send-as"}]));
    }
    // The mailbox the `%41` one would have been mistaken for is untouched.
    let v = json_of(&s, &["mailbox", "show", "a@contoso.test", "--json"]);
    assert_eq!(v["department"], "", "{v}");

    // A group's name is a path segment too.
    let name = "Sales / EMEA? #1 50% +x ü";
    s.ok(&[
        "group",
        "add",
        name,
        "--type",
        "security",
        "--tenant",
        "contoso",
        "--owner",
        "a+tag@contoso.test",
    ]);
    s.ok(&[
        "group",
        "members",
        "add",
        name,
        "a/b@contoso.test",
        "用户@bücher.test",
    ]);
    let v = json_of(&s, &["group", "show", name, "--json"]);
    assert_eq!(v["name"], name, "{v}");
    let mut members = v["members"].clone();
    members
        .as_array_mut()
        .expect("members")
        .sort_by_key(|m| m.to_string());
    assert_eq!(members, json!(["a/b@contoso.test", "用户@bücher.test"]));
    s.ok(&["group", "remove", name]);

    // So is a contact's address.
    let contact = "out/side?#%+1@example.net";
    s.ok(&["contact", "add", contact, "--tenant", "contoso"]);
    s.ok(&["contact", "remove", contact]);
    assert_eq!(json_of(&s, &["contact", "list", "--json"]), json!([]));

    for address in addresses {
        s.ok(&["mailbox", "remove", address]);
        let err = assert_error(run(&s, &["mailbox", "show", address], &[]));
        assert!(err.contains("404"), "{err}");
    }
    let v = json_of(&s, &["mailbox", "list", "--json"]);
    assert_eq!(names_of(&v, "address"), ["a@contoso.test"]);
    s.ok(&["domain", "remove", "bücher.test"]);
    let v = json_of(&s, &["domain", "list", "--json"]);
    assert_eq!(names_of(&v, "domain"), ["contoso.test"]);
}

fn names_of(v: &Value, field: &str) -> Vec<String> {
    v.as_array()
        .expect("a list")
        .iter()
        .map(|x| x[field].as_str().unwrap_or_default().to_string())
        .collect()
}

// ----- mail and message trace -----------------------------------------------------------------

#[test]
fn mail_list_and_show() {
    let s = Server::start();
    s.tenant("contoso");
    s.mailbox("alice@contoso.test", &["--alias", "al@contoso.test"]);
    assert_eq!(
        json_of(&s, &["mail", "list", "alice@contoso.test", "--json"]),
        json!([])
    );
    assert_eq!(
        s.ok(&["mail", "list", "alice@contoso.test"]),
        "ID  RECEIVED  FROM  SUBJECT  SIZE  FOLDER\n(none)\n"
    );
    send(
        &s,
        "first@example.net",
        &["alice@contoso.test"],
        "First",
        "<m1@example.net>",
    );
    send(
        &s,
        "second@example.net",
        &["al@contoso.test"],
        "Second",
        "<m2@example.net>",
    );

    let list = json_of(&s, &["mail", "list", "alice@contoso.test", "--json"]);
    let list = list.as_array().expect("list").clone();
    assert_eq!(list.len(), 2);
    for m in &list {
        assert_eq!(
            keys(m),
            ["folder", "from", "id", "received", "size", "subject"]
        );
        assert_eq!(m["folder"], "inbox");
        assert!(m["id"].is_i64());
        assert!(m["size"].as_u64().unwrap_or(0) > 50);
        assert!(m["received"].as_str().unwrap_or_default().ends_with('Z'));
    }
    // Newest first.
    assert_eq!(list[0]["subject"], "Second");
    assert_eq!(list[0]["from"], "second@example.net");
    assert_eq!(list[1]["subject"], "First");
    assert!(list[0]["received"].as_str() >= list[1]["received"].as_str());
    // The same through an alias, and with --folder.
    assert_eq!(
        json_of(&s, &["mail", "list", "al@contoso.test", "--json"]),
        Value::Array(list.clone())
    );
    assert_eq!(
        json_of(
            &s,
            &[
                "mail",
                "list",
                "alice@contoso.test",
                "--folder",
                "inbox",
                "--json"
            ]
        ),
        Value::Array(list.clone())
    );
    assert_eq!(
        json_of(
            &s,
            &[
                "mail",
                "list",
                "alice@contoso.test",
                "--folder",
                "junk",
                "--json"
            ]
        ),
        json!([])
    );
    // The table.
    let out = s.ok(&["mail", "list", "alice@contoso.test"]);
    assert_eq!(
        header(&out),
        ["ID", "RECEIVED", "FROM", "SUBJECT", "SIZE", "FOLDER"]
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[1].contains("Second") && lines[2].contains("First"),
        "{out}"
    );
    assert!(lines[1].starts_with(&list[0]["id"].to_string()), "{out}");

    // show: the raw message as stored, trace fields first.
    let id = list[1]["id"].to_string();
    let raw = s.ok(&["mail", "show", "alice@contoso.test", &id]);
    assert!(
        raw.starts_with("Return-Path: <first@example.net>\r\nReceived: from "),
        "{raw}"
    );
    assert!(raw.contains("\r\nSubject: First\r\n"), "{raw}");
    assert!(raw.contains("\r\n\r\nBody of First.\r\n"), "{raw}");
    assert_eq!(raw.len() as u64, list[1]["size"].as_u64().unwrap_or(0));
    assert_eq!(
        raw,
        s.raw_mail("alice@contoso.test", list[1]["id"].as_i64().unwrap_or(0))
    );
    let err = assert_error(run(
        &s,
        &["mail", "show", "alice@contoso.test", "999999"],
        &[],
    ));
    assert!(err.contains("999999") && err.contains("404"), "{err}");
    let err = assert_error(run(&s, &["mail", "list", "nobody@contoso.test"], &[]));
    assert!(
        err.contains("nobody@contoso.test") && err.contains("404"),
        "{err}"
    );
    // used_bytes counts both messages.
    let mb = json_of(&s, &["mailbox", "show", "alice@contoso.test", "--json"]);
    let total: u64 = list.iter().map(|m| m["size"].as_u64().unwrap_or(0)).sum();
    assert_eq!(mb["used_bytes"].as_u64(), Some(total));
}

#[test]
fn trace_json_filters_and_detail() {
    let s = Server::start();
    s.tenant("contoso");
    s.mailbox("alice@contoso.test", &[]);
    s.mailbox("bob@contoso.test", &[]);
    let t1 = send(
        &s,
        "news@example.net",
        &["alice@contoso.test"],
        "Weekly report: sales",
        "<r1@example.net>",
    );
    let t2 = send(
        &s,
        "boss@example.org",
        &["alice@contoso.test", "bob@contoso.test"],
        "Re: Weekly report",
        "<r2@example.org>",
    );

    let all = json_of(&s, &["trace", "--json"]);
    assert_eq!(
        (&all["page"], &all["page_size"], &all["more"]),
        (&json!(1), &json!(1000), &json!(false))
    );
    let all = all["rows"].as_array().expect("rows").clone();
    assert_eq!(all.len(), 3);
    for row in &all {
        assert_eq!(
            keys(row),
            [
                "from_ip",
                "message_id",
                "received",
                "recipient",
                "sender",
                "size",
                "status",
                "subject",
                "trace_id"
            ]
        );
        assert_eq!(row["status"], "Delivered");
        assert_eq!(row["from_ip"], "127.0.0.1");
        assert!(row["size"].as_u64().unwrap_or(0) > 50);
    }
    assert_eq!(all[0]["trace_id"], t2.as_str(), "newest first");
    let r1 = all
        .iter()
        .find(|r| r["trace_id"] == t1.as_str())
        .expect("t1");
    assert_eq!(r1["sender"], "news@example.net");
    assert_eq!(r1["recipient"], "alice@contoso.test");
    assert_eq!(r1["subject"], "Weekly report: sales");
    assert_eq!(r1["message_id"], "<r1@example.net>");

    let rows = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["trace", "--json"];
        a.extend_from_slice(args);
        let v = json_of(&s, &a);
        let mut out: Vec<String> = v["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| {
                format!(
                    "{} {}",
                    r["trace_id"].as_str().unwrap_or_default(),
                    r["recipient"].as_str().unwrap_or_default()
                )
            })
            .collect();
        out.sort();
        out
    };
    let a1 = format!("{t1} alice@contoso.test");
    let a2 = format!("{t2} alice@contoso.test");
    let b2 = format!("{t2} bob@contoso.test");
    let mut all_three = vec![a1.clone(), a2.clone(), b2.clone()];
    all_three.sort();
    let none: Vec<String> = Vec::new();

    assert_eq!(rows(&["--sender", "news@example.net"]), [a1.as_str()]);
    assert_eq!(rows(&["--sender", "nobody@example.net"]), none);
    assert_eq!(rows(&["--recipient", "bob@contoso.test"]), [b2.as_str()]);
    assert_eq!(rows(&["--status", "Delivered"]), all_three);
    assert_eq!(rows(&["--status", "Failed"]), none);
    assert_eq!(rows(&["--subject", "report"]), all_three);
    assert_eq!(rows(&["--subject", "Weekly"]), all_three);
    assert_eq!(
        rows(&["--subject", "Weekly", "--subject-starts-with"]),
        [a1.as_str()]
    );
    assert_eq!(
        rows(&["--subject", "Re: Weekly", "--subject-starts-with"]).len(),
        2
    );
    assert_eq!(rows(&["--message-id", "r1@example.net"]), [a1.as_str()]);
    assert_eq!(rows(&["--message-id", "<r2@example.org>"]).len(), 2);
    assert_eq!(rows(&["--trace-id", &t1]), [a1.as_str()]);
    assert_eq!(rows(&["--from-ip", "127.0.0.1"]), all_three);
    assert_eq!(rows(&["--from-ip", "192.0.2.9"]), none);
    let now = chrono::Utc::now();
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let past = fmt(now - chrono::Duration::minutes(5));
    let future = fmt(now + chrono::Duration::minutes(5));
    assert_eq!(rows(&["--start", &past, "--end", &future]), all_three);
    assert_eq!(rows(&["--start", &future]), none);
    assert_eq!(rows(&["--end", &past]), none);
    assert_eq!(rows(&["--start", "2000-01-01"]), all_three);
    assert_eq!(
        rows(&[
            "--sender",
            "boss@example.org",
            "--recipient",
            "alice@contoso.test"
        ]),
        [a2.as_str()]
    );

    // Bad values are one error line.
    let err = assert_error(run(&s, &["trace", "--status", "Lost"], &[]));
    assert!(
        err.contains("Lost") && err.contains("Delivered") && err.contains("FilteredAsSpam"),
        "{err}"
    );
    let err = assert_error(run(&s, &["trace", "--start", "yesterday"], &[]));
    assert!(err.contains("start"), "{err}");
    let err = assert_error(run(&s, &["trace", "--start", &future, "--end", &past], &[]));
    assert!(err.contains("start is after end"), "{err}");

    // The table.
    let out = s.ok(&["trace", "--recipient", "bob@contoso.test"]);
    assert_eq!(
        header(&out),
        [
            "RECEIVED",
            "SENDER",
            "RECIPIENT",
            "SUBJECT",
            "STATUS",
            "TRACE_ID"
        ]
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[1].contains("boss@example.org")
            && lines[1].contains("Delivered")
            && lines[1].ends_with(&t2),
        "{out}"
    );
    assert_eq!(
        s.ok(&["trace", "--sender", "nobody@example.net"])
            .lines()
            .nth(1),
        Some("(none)")
    );

    // Detail.
    let events = json_of(&s, &["trace", "detail", &t2, "--json"]);
    let events = events.as_array().expect("events").clone();
    for e in &events {
        assert_eq!(
            keys(e),
            [
                "detail",
                "enhanced_status",
                "event",
                "reason",
                "recipient",
                "remote_host",
                "status",
                "time"
            ]
        );
    }
    for r in ["alice@contoso.test", "bob@contoso.test"] {
        let kinds: Vec<&str> = events
            .iter()
            .filter(|e| e["recipient"] == r)
            .filter_map(|e| e["event"].as_str())
            .collect();
        assert_eq!(kinds.first(), Some(&"Receive"), "{r}: {kinds:?}");
        assert!(kinds.contains(&"Deliver"), "{r}: {kinds:?}");
    }
    let bob = json_of(
        &s,
        &[
            "trace",
            "detail",
            &t2,
            "--recipient",
            "bob@contoso.test",
            "--json",
        ],
    );
    let bob = bob.as_array().expect("events").clone();
    assert!(!bob.is_empty());
    assert!(
        bob.iter().all(|e| e["recipient"] == "bob@contoso.test"),
        "{bob:?}"
    );
    assert_eq!(bob.len() * 2, events.len());
    let out = s.ok(&["trace", "detail", &t1]);
    assert_eq!(
        header(&out),
        [
            "TIME",
            "RECIPIENT",
            "EVENT",
            "STATUS",
            "REMOTE_HOST",
            "DETAIL",
            "REASON"
        ]
    );
    assert!(
        out.lines().nth(1).unwrap_or_default().contains("Receive"),
        "{out}"
    );
    assert!(out.lines().any(|l| l.contains("Deliver")), "{out}");
    let err = assert_error(run(&s, &["trace", "detail", "nosuchtraceid"], &[]));
    assert!(
        err.contains("nosuchtraceid") && err.contains("404"),
        "{err}"
    );
}

// ----- errors -----------------------------------------------------------------------------------

#[test]
fn trace_pages_with_page_size_and_page() {
    let s = Server::start();
    s.tenant("contoso");
    s.mailbox("alice@contoso.test", &[]);
    let mut c = s.smtp();
    assert!(c.read_reply().starts_with("220"));
    assert!(c.cmd("EHLO client.example").starts_with("250"));
    let mut sent = Vec::new();
    for i in 0..5 {
        let reply = c.send_mail(
            "news@example.net",
            &["alice@contoso.test"],
            &format!("Subject: page {i}\n\nBody.\n"),
        );
        assert!(reply.starts_with("250"), "{reply}");
        sent.push(trace_id_of(&reply));
    }
    c.cmd("QUIT");
    sent.reverse();

    let page = |n: &str| {
        let v = json_of(&s, &["trace", "--page-size", "2", "--page", n, "--json"]);
        let ids: Vec<String> = v["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| r["trace_id"].as_str().unwrap_or_default().to_string())
            .collect();
        (ids, v["more"].clone(), v["page_size"].clone())
    };
    assert_eq!(page("1"), (sent[..2].to_vec(), json!(true), json!(2)));
    assert_eq!(page("2"), (sent[2..4].to_vec(), json!(true), json!(2)));
    assert_eq!(page("3"), (sent[4..].to_vec(), json!(false), json!(2)));

    // The table says on stderr that more rows follow, and how to get them.
    let (code, out, err) = run(&s, &["trace", "--page-size", "2"], &[]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.lines().count(), 3, "header and two rows: {out}");
    assert_eq!(
        err,
        "more rows follow: run the same command with --page 2\n"
    );
    let (code, out, err) = run(&s, &["trace", "--page-size", "2", "--page", "3"], &[]);
    assert_eq!((code, out.lines().count(), err.as_str()), (Some(0), 2, ""));

    // Out of range: one error line naming the flag and its limits.
    for (args, limit) in [
        (["--page-size", "5001"], "1..=5000"),
        (["--page-size", "0"], "1..=5000"),
        (["--page", "1001"], "1..=1000"),
        (["--page", "0"], "1..=1000"),
    ] {
        let err = assert_error(run(&s, &["trace", args[0], args[1]], &[]));
        assert!(err.contains(args[0]) && err.contains(limit), "{err}");
    }
}

#[test]
fn errors_are_one_line_and_exit_1() {
    let s = Server::start();
    s.tenant("contoso");
    let err = assert_error(run(
        &s,
        &["domain", "add", "x.test", "--tenant", "nosuch"],
        &[],
    ));
    assert_eq!(err, "error: tenant nosuch not found (HTTP 404)");
    let err = assert_error(run(&s, &["mailbox", "add", "alice@unknown.test"], &[]));
    assert!(
        err.contains("unknown.test is not an accepted domain"),
        "{err}"
    );
    let err = assert_error(run(&s, &["mailbox", "show", "nobody@contoso.test"], &[]));
    assert_eq!(
        err,
        "error: mailbox nobody@contoso.test not found (HTTP 404)"
    );
    let err = assert_error(run(&s, &["trace", "--status", "Bogus"], &[]));
    assert!(err.starts_with("error: unknown status Bogus"), "{err}");
    let err = assert_error(run(&s, &["mailbox", "add", "not-an-address"], &[]));
    assert!(err.contains("400"), "{err}");
    let err = assert_error(run(&s, &["tenant", "add", "bad name"], &[]));
    assert!(err.contains("400"), "{err}");
    // Nothing was created by the failures.
    assert_eq!(json_of(&s, &["mailbox", "list", "--json"]), json!([]));
    assert_eq!(
        json_of(&s, &["tenant", "list", "--json"])
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // A token file that does not exist.
    let missing = s.dir.path().join("no-such-token");
    let missing = missing.to_str().expect("path");
    let err = assert_error(run(&s, &["--as", missing, "tenant", "list"], &[]));
    assert!(
        err.starts_with("error: cannot read the API token from ") && err.contains("no-such-token"),
        "{err}"
    );
    // A token the server does not know.
    let err = assert_error(run(
        &s,
        &["tenant", "list"],
        &[("HATO_TOKEN", "bogus-token")],
    ));
    assert!(err.contains("401"), "{err}");

    // An API that nobody answers.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("hato.toml");
    std::fs::write(&config, format!("[admin]\nlisten = \"{closed}\"\n")).expect("write");
    let mut cmd = Command::new(BIN);
    cmd.arg("--config")
        .arg(&config)
        .args(["tenant", "list"])
        .env("HATO_TOKEN", &s.token);
    let err = assert_error(output(&mut cmd));
    assert!(
        err.starts_with(&format!(
            "error: cannot reach the admin API at http://{closed}"
        )),
        "{err}"
    );
    // No operator token at all (no server ever ran with this file).
    let mut cmd = Command::new(BIN);
    cmd.arg("--config")
        .arg(&config)
        .args(["tenant", "list"])
        .env_remove("HATO_TOKEN");
    let err = assert_error(output(&mut cmd));
    assert!(err.contains("operator.token"), "{err}");
}

// ----- acting as a tenant admin -------------------------------------------------------------------

fn write_token(dir: &Path, name: &str, token: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("{token}\n")).expect("write token");
    path.to_str().expect("path").to_string()
}

#[test]
fn as_and_hato_token_act_as_a_tenant_admin() {
    let s = Server::start();
    s.tenant("contoso");
    s.tenant("fabrikam");
    s.mailbox("alice@contoso.test", &[]);
    s.mailbox("bob@fabrikam.test", &[]);
    let contoso = s
        .ok(&["token", "create", "--tenant", "contoso"])
        .trim()
        .to_string();
    let fabrikam = s
        .ok(&["token", "create", "--tenant", "fabrikam"])
        .trim()
        .to_string();
    assert!(
        contoso.len() >= 20 && !contoso.contains(char::is_whitespace),
        "{contoso:?}"
    );
    assert_ne!(contoso, fabrikam);
    let err = assert_error(run(&s, &["token", "create", "--tenant", "nosuch"], &[]));
    assert!(err.contains("404"), "{err}");
    let file = write_token(s.dir.path(), "contoso.token", &contoso);

    let as_file = |args: &[&str]| {
        let mut a = vec!["--as", file.as_str()];
        a.extend_from_slice(args);
        run(&s, &a, &[])
    };
    let as_env = |args: &[&str]| run(&s, args, &[("HATO_TOKEN", contoso.as_str())]);
    for act in [
        &as_file as &dyn Fn(&[&str]) -> (Option<i32>, String, String),
        &as_env,
    ] {
        // Its own tenant's mailbox is there.
        let (code, out, err) = act(&["mailbox", "show", "alice@contoso.test", "--json"]);
        assert_eq!(code, Some(0), "{err}");
        let v: Value = serde_json::from_str(&out).expect("json");
        assert_eq!(v["address"], "alice@contoso.test");
        // The other tenant's is not.
        let err = assert_error(act(&["mailbox", "show", "bob@fabrikam.test"]));
        assert_eq!(err, "error: mailbox bob@fabrikam.test not found (HTTP 404)");
        assert_error(act(&[
            "mailbox",
            "set",
            "bob@fabrikam.test",
            "--department",
            "x",
        ]));
        assert_error(act(&["mailbox", "remove", "bob@fabrikam.test"]));
        assert_error(act(&["mailbox", "add", "eve@fabrikam.test"]));
        assert_error(act(&["mail", "list", "bob@fabrikam.test"]));
        assert_error(act(&["mailbox", "list", "--tenant", "fabrikam"]));
        assert_error(act(&["domain", "remove", "fabrikam.test"]));
        // Listings hold only its own objects.
        let (code, out, _) = act(&["mailbox", "list", "--json"]);
        assert_eq!(code, Some(0));
        let v: Value = serde_json::from_str(&out).expect("json");
        let addrs: Vec<&str> = v
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|m| m["address"].as_str())
            .collect();
        assert_eq!(addrs, ["alice@contoso.test"]);
        let (_, out, _) = act(&["tenant", "list"]);
        assert_eq!(out.lines().collect::<Vec<_>>(), ["NAME", "contoso"]);
        let (_, out, _) = act(&["domain", "list", "--json"]);
        let v: Value = serde_json::from_str(&out).expect("json");
        assert_eq!(
            without_records(v),
            json!([{"domain": "contoso.test", "tenant": "contoso", "type": "authoritative",
                    "status": "verified"}])
        );
        // Operator-only commands.
        let err = assert_error(act(&["tenant", "add", "evil"]));
        assert!(err.contains("403"), "{err}");
        let err = assert_error(act(&["token", "create", "--tenant", "contoso"]));
        assert!(err.contains("403"), "{err}");
    }
    // A tenant admin manages its own tenant.
    let (code, _, err) = as_env(&[
        "mailbox",
        "add",
        "carol@contoso.test",
        "--department",
        "Legal",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = as_file(&[
        "mailbox",
        "set",
        "carol@contoso.test",
        "--department",
        "Finance",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        json_of(&s, &["mailbox", "show", "carol@contoso.test", "--json"])["department"],
        "Finance"
    );
    // The other tenant's objects are untouched; the operator still sees everything.
    assert_eq!(
        json_of(&s, &["mailbox", "list", "--json"])
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    assert_eq!(
        json_of(&s, &["mailbox", "show", "bob@fabrikam.test", "--json"])["department"],
        ""
    );
    // --as wins over HATO_TOKEN.
    let (code, out, err) = run(
        &s,
        &["--as", &file, "mailbox", "list", "--json"],
        &[("HATO_TOKEN", fabrikam.as_str())],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("alice@contoso.test") && !out.contains("bob@fabrikam.test"),
        "{out}"
    );
    // And HATO_TOKEN wins over the operator token.
    let (code, out, _) = run(
        &s,
        &["mailbox", "list", "--json"],
        &[("HATO_TOKEN", fabrikam.as_str())],
    );
    assert_eq!(code, Some(0));
    assert!(
        out.contains("bob@fabrikam.test") && !out.contains("alice@contoso.test"),
        "{out}"
    );
    // Message trace is confined too.
    let t = send(
        &s,
        "x@example.net",
        &["alice@contoso.test", "bob@fabrikam.test"],
        "Both",
        "<both@example.net>",
    );
    let (code, out, _) = as_file(&["trace", "--json"]);
    assert_eq!(code, Some(0));
    let v: Value = serde_json::from_str(&out).expect("json");
    let rcpts: Vec<&str> = v["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|r| r["recipient"].as_str())
        .collect();
    assert_eq!(rcpts, ["alice@contoso.test"]);
    let (code, out, _) = as_file(&["trace", "detail", &t, "--json"]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("alice@contoso.test") && !out.contains("bob@fabrikam.test"),
        "{out}"
    );
    assert_error(as_file(&[
        "trace",
        "detail",
        &t,
        "--recipient",
        "bob@fabrikam.test",
    ]));
    assert_eq!(
        json_of(&s, &["trace", "--json"])["rows"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
}
