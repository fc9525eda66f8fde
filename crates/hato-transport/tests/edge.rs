//! The edge policy in process: the real session, the real commit (`Inbound`) and the real store;
//! the directory is a stand-in that knows two tenants, and small test checks stand in for the
//! provider's block list (a refusal a tenant's allow list overrides) and a DNS block list (a
//! final refusal, and a note when a zone "times out").

use hato_core::clock::ManualClock;
use hato_core::directory::{Route, TenantId};
use hato_core::reason::FigureValue;
use hato_core::reply::{self, Reply};
use hato_core::{
    Address, ClientContext, MessageContext, Reason, Refusal, Stage, Timestamp, TlsInfo,
};
use hato_protection::connection_filter::is_allow_listed;
use hato_protection::helo::HeloCheck;
use hato_protection::{BoxFuture, ConnectCheck, ConnectChecks, Outcome, ready};
use hato_smtp::server::Submitter;
use hato_smtp::{
    AcceptedRecipient, DataVerdict, Decision, Output, RcptVerdict, Session, SessionConfig,
    SmtpPolicy,
};
use hato_store::*;
use hato_transport::delivery::DeliveryAgent;
use hato_transport::edge::EdgePolicy;
use hato_transport::inbound::Inbound;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// The directory stand-in: `contoso.test` and `fabrikam.test` are two tenants' domains, every
/// address in them is a mailbox but `nobody@`; other domains are not accepted. At end-of-data it
/// keeps, for each recipient, whether the edge marked it allow-listed (what the spam stage
/// will read).
struct Tenants {
    contoso: TenantId,
    fabrikam: TenantId,
    allow_listed: Mutex<Vec<(String, bool)>>,
}

impl SmtpPolicy for Tenants {
    fn rcpt(
        &self,
        _: &ClientContext,
        _: Option<&Address>,
        rcpt: &Address,
    ) -> Decision<RcptVerdict> {
        let tenant = match rcpt.domain() {
            "contoso.test" => self.contoso,
            "fabrikam.test" => self.fabrikam,
            _ => {
                return Decision::Ready(RcptVerdict::Reject(Refusal::new(
                    reply::UNABLE_TO_RELAY,
                    Reason::new(Stage::Recipient, "not accepted"),
                )));
            }
        };
        if rcpt.local() == "nobody" {
            return Decision::Ready(RcptVerdict::Reject(Refusal::new(
                reply::RECIPIENT_REJECTED,
                Reason::new(Stage::Recipient, "no such recipient"),
            )));
        }
        // Asynchronous, as the real directory's decision is.
        let accepted = AcceptedRecipient {
            address: rcpt.clone(),
            tenant_id: tenant,
            route: Route::Local(1),
        };
        Decision::later(async move { RcptVerdict::Accept(accepted) })
    }

    fn end_of_data(&self, message: MessageContext) -> Decision<DataVerdict> {
        if let Ok(mut seen) = self.allow_listed.lock() {
            for r in &message.envelope.recipients {
                seen.push((r.address.to_string(), is_allow_listed(r)));
            }
        }
        Decision::Ready(DataVerdict::accept(message))
    }
}

/// A check of `stage` that refuses the `refused` addresses with `reply`, and notes `note` for
/// the `noted` ones.
struct TestCheck {
    stage: Stage,
    reply: Reply,
    refused: Vec<IpAddr>,
    noted: Vec<IpAddr>,
}

impl ConnectCheck for TestCheck {
    fn stage(&self) -> Stage {
        self.stage
    }

    fn check(&self, client: &ClientContext, _: Timestamp) -> BoxFuture<Outcome> {
        let ip = client.ip();
        if self.refused.contains(&ip) {
            return ready(Outcome::Refuse(Refusal::new(
                self.reply.clone(),
                Reason::new(self.stage, format!("{ip} is listed (test)")).rule("test list"),
            )));
        }
        if self.noted.contains(&ip) {
            return ready(Outcome::Note(
                Reason::new(
                    self.stage,
                    "a zone did not answer in time; failed open (test)",
                )
                .rule("test zone"),
            ));
        }
        // Asynchronous like a DNS lookup.
        Box::pin(async { Outcome::Pass })
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The provider's list stand-in: refuses 192.0.2.66.
const PROVIDER_REPLY: Reply = Reply::new(
    550,
    "5.7.606",
    "Access denied, banned sending IP [192.0.2.66] (test stand-in)",
);
/// The DNS block list stand-in: refuses 192.0.2.99, notes a time-out for 192.0.2.55.
const DNSBL_REPLY: Reply = Reply::new(
    550,
    "5.7.1",
    "Service unavailable; Client host [192.0.2.99] blocked using test.zone (test stand-in)",
);

fn checks() -> ConnectChecks {
    // Added in the wrong order on purpose: the order is the crate's, not the caller's.
    ConnectChecks::new()
        .with(Arc::new(TestCheck {
            stage: Stage::DnsBlockList,
            reply: DNSBL_REPLY,
            refused: vec![ip("192.0.2.99")],
            noted: vec![ip("192.0.2.55")],
        }))
        .unwrap()
        .with(Arc::new(TestCheck {
            stage: Stage::ProviderBlockList,
            reply: PROVIDER_REPLY,
            refused: vec![ip("192.0.2.66")],
            noted: vec![],
        }))
        .unwrap()
}

struct World {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    clock: Arc<ManualClock>,
    policy: Arc<EdgePolicy<Tenants>>,
    inbound: Inbound,
    contoso: TenantId,
}

const T0: Timestamp = Timestamp(1_800_000_000_000_000);

async fn world() -> World {
    world_with(|policy| policy).await
}

/// The world with `more` added to the edge policy (a resolver, a throttle).
async fn world_with(more: impl FnOnce(EdgePolicy<Tenants>) -> EdgePolicy<Tenants>) -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let contoso = store.create_tenant("contoso").await.unwrap().id;
    let fabrikam = store.create_tenant("fabrikam").await.unwrap().id;
    let clock = Arc::new(ManualClock::new(T0));
    let dyn_store: Arc<dyn Store> = store.clone();
    let policy = EdgePolicy::new(
        Tenants {
            contoso,
            fabrikam,
            allow_listed: Mutex::new(Vec::new()),
        },
        dyn_store.clone(),
        clock.clone(),
    )
    .with_checks(checks())
    .with_helo_check(HeloCheck::new("mx.hato.test", []));
    let policy = more(policy);
    let inbound = Inbound::new(
        dyn_store,
        clock.clone(),
        "mx.hato.test".into(),
        Arc::new(Notify::new()),
    );
    World {
        _dir: dir,
        store,
        clock,
        policy: Arc::new(policy),
        inbound,
        contoso,
    }
}

impl World {
    async fn lists(&self, tenant: TenantId, allow: &[&str], block: &[&str]) {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        self.store
            .change_connection_filter(
                tenant,
                ConnectionFilterChange {
                    ip_allow_list_add: v(allow),
                    ip_block_list_add: v(block),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }

    /// A session from `peer` to 198.51.100.1:25 fed `input` (after `STARTTLS`, a pretend
    /// handshake, then `after_tls`): everything the server sent, and the trace ids queued.
    async fn talk(&self, peer: &str, input: &str, after_tls: &str) -> (String, Vec<String>) {
        let client = ClientContext::new(
            format!("{peer}:40000").parse().unwrap(),
            "198.51.100.1:25".parse().unwrap(),
        );
        let config = SessionConfig {
            hostname: "mx.hato.test".into(),
            tls_available: true,
            ..SessionConfig::default()
        };
        let mut session = Session::new(config, self.policy.clone(), client);
        let mut outs: std::collections::VecDeque<Output> = session.start().into();
        outs.extend(session.feed(input.as_bytes()));
        let mut text = String::new();
        let mut queued = Vec::new();
        while let Some(out) = outs.pop_front() {
            match out {
                Output::Send(b) => text.push_str(&String::from_utf8_lossy(&b)),
                Output::Decide(d) => outs.extend(session.decided(d.await)),
                Output::Submit(m) => {
                    let result = self.inbound.submit(*m).await;
                    if let Ok(id) = &result {
                        queued.push(id.clone());
                    }
                    outs.extend(session.submitted(result));
                }
                Output::StartTls => {
                    text.push_str("<TLS>\r\n");
                    session.tls_established(TlsInfo {
                        version: "TLS1.3".into(),
                        cipher: "TLS13_AES_128_GCM_SHA256".into(),
                    });
                    outs.extend(session.feed(after_tls.as_bytes()));
                }
                Output::Close => text.push_str("<CLOSE>\r\n"),
            }
        }
        (text, queued)
    }

    /// The connection log, once every row handed to the store before now is committed: a row
    /// of our own, written after them, is waited for (the writer commits in order).
    async fn log(&self) -> Vec<ConnectionRow> {
        let sentinel = NewConnectionRecord {
            time: Timestamp(0),
            ip: "0.0.0.0".into(),
            ptr: String::new(),
            helo: String::new(),
            tenant: None,
            reply: reply::OK,
            reason: Reason::new(Stage::Session, "sentinel"),
            notes: vec![],
        };
        self.store.log_connection(sentinel).await.unwrap();
        let mut rows = self
            .store
            .connections(&ConnectionQuery::default())
            .unwrap()
            .rows;
        rows.retain(|r| r.ip != "0.0.0.0");
        rows.reverse();
        rows
    }

    fn events(&self, trace_id: &str, rcpt: &str) -> Vec<TraceDetailRow> {
        self.store.trace_detail(None, trace_id, Some(rcpt)).unwrap()
    }
}

/// The replies' lines, without the EHLO extensions.
fn lines(text: &str) -> Vec<&str> {
    text.split("\r\n")
        .filter(|l| !l.is_empty() && !l.starts_with("250-"))
        .collect()
}

const MESSAGE: &str = "DATA\r\nSubject: hi\r\n\r\nhello\r\n.\r\n";

#[tokio::test]
async fn a_final_refusal_at_connect_replaces_the_banner_even_for_an_allow_listed_client() {
    let w = world().await;
    // A DNS block list is never lifted by an allow list (seed C3).
    w.lists(w.contoso, &["192.0.2.99"], &[]).await;
    let (text, queued) = w.talk("192.0.2.99", "EHLO client.test\r\n", "").await;
    assert_eq!(
        lines(&text),
        [
            "550 5.7.1 Service unavailable; Client host [192.0.2.99] blocked using test.zone (test stand-in)",
            "<CLOSE>"
        ]
    );
    assert!(queued.is_empty());
    let log = w.log().await;
    assert_eq!(log.len(), 1, "{log:?}");
    let row = &log[0];
    assert_eq!(
        (row.ip.as_str(), row.stage.as_str()),
        ("192.0.2.99", "dns_block_list")
    );
    assert_eq!(row.rule.as_deref(), Some("test list"));
    assert_eq!(row.reply, DNSBL_REPLY.to_string());
    assert_eq!(row.tenant, None);
    assert_eq!(row.time, T0.to_rfc3339());
}

#[tokio::test]
async fn a_provider_refusal_is_held_and_lifted_only_for_tenants_that_allow_list_the_client() {
    let w = world().await;
    w.lists(w.contoso, &["192.0.2.64/30"], &[]).await;
    let input = format!(
        "EHLO client.test\r\nMAIL FROM:<s@outside.test>\r\nRCPT TO:<alice@contoso.test>\r\n\
         RCPT TO:<bob@fabrikam.test>\r\nRCPT TO:<carol@fabrikam.test>\r\n{MESSAGE}QUIT\r\n"
    );
    let (text, queued) = w.talk("192.0.2.66", &input, "").await;
    let held = PROVIDER_REPLY.to_string();
    let l = lines(&text);
    // The banner (the refusal is held), then contoso's recipient in, fabrikam's refused with
    // the provider's reply, and the message for the one recipient queued.
    assert_eq!(l[0], "220 mx.hato.test ESMTP hato ready");
    assert_eq!(
        l[3..6],
        ["250 2.1.5 Recipient OK", held.as_str(), held.as_str()]
    );
    assert_eq!(queued.len(), 1, "{text}");
    assert!(l[7].starts_with("250 2.6.0 "), "{text}");
    // Alice's Receive event says why she got it: the tenant's allow list (IPV:CAL).
    let events = w.events(&queued[0], "alice@contoso.test");
    let kinds: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(kinds, ["Receive"], "{events:?}");
    let note = events[0].reason.as_ref().unwrap();
    assert_eq!(note.stage, Stage::ConnectionFilter);
    assert_eq!(note.rule.as_deref(), Some("IPAllowList"));
    assert_eq!(note.figure_value("ipv"), Some(&FigureValue::from("CAL")));
    assert_eq!(
        note.figure_value("entry"),
        Some(&FigureValue::from("192.0.2.64/30"))
    );
    assert_eq!(
        note.figure_value("cip"),
        Some(&FigureValue::from("192.0.2.66"))
    );
    // One row for the provider's refusal (the platform's, so no tenant), however many
    // recipients it refused.
    let log = w.log().await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(
        (log[0].stage.as_str(), log[0].tenant.as_ref()),
        ("provider_block_list", None)
    );
    assert_eq!(log[0].helo, "client.test");

    // STARTTLS does not shed it: the connection is the same.
    let (text, _) = w
        .talk(
            "192.0.2.66",
            "EHLO client.test\r\nSTARTTLS\r\n",
            "EHLO client.test\r\nMAIL FROM:<s@outside.test>\r\nRCPT TO:<bob@fabrikam.test>\r\n\
             RCPT TO:<alice@contoso.test>\r\nQUIT\r\n",
        )
        .await;
    let l = lines(&text);
    let at = l.iter().position(|x| *x == "<TLS>").expect("handshake");
    assert_eq!(
        l[at + 3..at + 5],
        [held.as_str(), "250 2.1.5 Recipient OK"],
        "{text}"
    );
}

#[tokio::test]
async fn the_tenant_block_list_refuses_at_rcpt_and_an_address_on_both_lists_is_allowed() {
    let w = world().await;
    w.lists(w.contoso, &["192.0.2.21"], &["192.0.2.20/30"])
        .await;
    let input = format!(
        "EHLO client.test\r\nMAIL FROM:<s@outside.test>\r\nRCPT TO:<alice@contoso.test>\r\n\
         RCPT TO:<bob@contoso.test>\r\nRCPT TO:<nobody@fabrikam.test>\r\nRCPT TO:<carol@fabrikam.test>\r\n\
         {MESSAGE}QUIT\r\n"
    );
    let (text, queued) = w.talk("192.0.2.22", &input, "").await;
    let l = lines(&text);
    let blocked = "550 5.7.513 Service unavailable, Client host [192.0.2.22] blocked by contoso.test using Customer Block list";
    // Contoso's recipients refused with Exchange's text; fabrikam's as its directory says.
    assert_eq!(
        l[3..7],
        [
            blocked,
            blocked,
            "550 5.4.1 Recipient address rejected: Access denied",
            "250 2.1.5 Recipient OK"
        ],
        "{text}"
    );
    assert_eq!(queued.len(), 1);
    // No message for contoso's recipients: none is in trace (Exchange: IP block list refusals
    // leave no trace); the one message has only fabrikam's recipient.
    let trace = w.store.trace(&TraceQuery::default()).unwrap().rows;
    let recipients: Vec<&str> = trace.iter().map(|r| r.recipient.as_str()).collect();
    assert_eq!(recipients, ["carol@fabrikam.test"]);
    // One connection-log row, contoso's, for both refusals; the directory's refusal is not the
    // edge's.
    let log = w.log().await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].stage, "connection_filter");
    assert_eq!(log[0].rule.as_deref(), Some("IPBlockList"));
    assert_eq!(log[0].tenant.as_deref(), Some("contoso"));
    assert_eq!(log[0].reply, blocked);
    let reason = log[0].reason.as_ref().unwrap();
    assert_eq!(
        reason.figure_value("entry"),
        Some(&FigureValue::from("192.0.2.20/30"))
    );

    // 192.0.2.21 is on both lists: allowed (Exchange: allow beats block).
    let (text, queued) = w
        .talk(
            "192.0.2.21",
            &format!(
                "EHLO c.test\r\nMAIL FROM:<s@o.test>\r\nRCPT TO:<alice@contoso.test>\r\n{MESSAGE}"
            ),
            "",
        )
        .await;
    assert_eq!(queued.len(), 1, "{text}");
    let events = w.events(&queued[0], "alice@contoso.test");
    let note = events[0].reason.as_ref().unwrap();
    assert_eq!(note.figure_value("ipv"), Some(&FigureValue::from("CAL")));
    assert_eq!(
        note.figure_value("also_on_block_list"),
        Some(&FigureValue::from("192.0.2.20/30"))
    );
}

#[tokio::test]
async fn every_accepted_recipient_gets_the_edge_notes_and_its_standing_with_its_tenant() {
    let w = world().await;
    w.lists(w.contoso, &["192.0.2.55"], &[]).await;
    let input = format!(
        "EHLO client.test\r\nMAIL FROM:<s@outside.test>\r\nRCPT TO:<alice@contoso.test>\r\n\
         RCPT TO:<bob@fabrikam.test>\r\n{MESSAGE}QUIT\r\n"
    );
    let (text, queued) = w.talk("192.0.2.55", &input, "").await;
    assert_eq!(queued.len(), 1, "{text}");
    let figures = |e: &TraceDetailRow| {
        let r = e.reason.as_ref().unwrap();
        (
            r.stage,
            r.figure_value("ipv").cloned(),
            r.figure_value("cip").cloned(),
        )
    };
    for (rcpt, ipv) in [("alice@contoso.test", "CAL"), ("bob@fabrikam.test", "NLI")] {
        let events = w.events(&queued[0], rcpt);
        let kinds: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(kinds, ["Receive"], "{rcpt}: {events:?}");
        // The Receive event's reason is the client's standing with the recipient's tenant,
        // with the note of the check at connect as a figure named after its stage.
        assert_eq!(
            events[0]
                .reason
                .as_ref()
                .unwrap()
                .figure_value("dns_block_list"),
            Some(&FigureValue::from(
                "a zone did not answer in time; failed open (test)"
            ))
        );
        assert_eq!(
            figures(&events[0]),
            (
                Stage::ConnectionFilter,
                Some(FigureValue::from(ipv)),
                Some(FigureValue::from("192.0.2.55"))
            ),
            "{rcpt}"
        );
        let ptr = events[0]
            .reason
            .as_ref()
            .unwrap()
            .figure_value("ptr")
            .cloned();
        assert_eq!(ptr, Some(FigureValue::from("")), "no PTR looked up yet");
    }
    assert_eq!(
        *w.policy.inner().allow_listed.lock().unwrap(),
        [
            ("alice@contoso.test".to_string(), true),
            ("bob@fabrikam.test".to_string(), false)
        ],
        "the spam stage sees who is allow-listed"
    );
    assert!(w.log().await.is_empty(), "nothing was refused");
}

#[tokio::test]
async fn a_helo_naming_this_server_is_refused_and_logged_once() {
    let w = world().await;
    let (text, _) = w
        .talk(
            "192.0.2.30",
            "EHLO mx.hato.test\r\nHELO [198.51.100.1]\r\nEHLO client.test\r\nQUIT\r\n",
            "",
        )
        .await;
    let l = lines(&text);
    let bad = "550 5.7.506 Access Denied, Bad HELO";
    assert_eq!(l[1..3], [bad, bad], "{text}");
    // Another name is fine.
    assert!(
        text.contains("\r\n250-mx.hato.test Hello [192.0.2.30]\r\n"),
        "{text}"
    );
    let log = w.log().await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(
        (log[0].stage.as_str(), log[0].helo.as_str()),
        ("helo", "mx.hato.test")
    );
    assert_eq!(log[0].rule.as_deref(), Some("edge.reject_bad_helo"));
    assert_eq!(log[0].reply, "550 5.7.506 Access Denied, Bad HELO");
}

/// The delivery agent's hourly retention takes connection log rows older than 30 days (or the
/// days it is told), as it does trace.
#[tokio::test]
async fn the_delivery_agent_purges_old_connection_log_rows() {
    let w = world().await;
    let old = |days: u32| NewConnectionRecord {
        time: T0.minus_days(days),
        ip: format!("192.0.2.{days}"),
        ptr: String::new(),
        helo: String::new(),
        tenant: None,
        reply: reply::BAD_HELO,
        reason: Reason::new(Stage::Helo, "test"),
        notes: vec![],
    };
    for days in [31, 29, 8, 6] {
        w.store.log_connection(old(days)).await.unwrap();
    }
    let store: Arc<dyn Store> = w.store.clone();
    let directory = Arc::new(hato_directory::Directory::new(store));
    let remaining = || -> Vec<String> {
        let rows = w
            .store
            .connections(&ConnectionQuery::default())
            .unwrap()
            .rows;
        rows.into_iter().map(|r| r.ip).collect()
    };
    let run = |days: Option<u32>| {
        let agent = DeliveryAgent::new(
            directory.clone(),
            w.clock.clone(),
            "mx.hato.test".into(),
            Arc::new(Notify::new()),
            90,
            None,
            hato_core::id::NodeId::new("node-test"),
        );
        if let Some(d) = days {
            agent.set_connection_log_retention_days(d);
        }
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        (tokio::spawn(agent.run(stop_rx)), stop)
    };
    for (days, want) in [
        (None, vec!["192.0.2.6", "192.0.2.8", "192.0.2.29"]),
        (Some(7), vec!["192.0.2.6"]),
    ] {
        let (task, stop) = run(days);
        let deadline = Instant::now() + Duration::from_secs(20);
        while remaining() != want {
            assert!(Instant::now() < deadline, "{days:?}: {:?}", remaining());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = stop.send(true);
        task.await.unwrap();
    }
}

#[tokio::test]
async fn the_clients_confirmed_name_goes_to_the_trace_the_received_header_and_the_log() {
    let dns = hato_dns::testing::TestDnsServer::start(&["in-addr.arpa", "client.test"])
        .await
        .unwrap();
    for (peer, name) in [
        ("192.0.2.70", "mail.client.test"),
        ("192.0.2.66", "bad.client.test"),
    ] {
        dns.add_ptr(ip(peer), 300, name).await.unwrap();
        let IpAddr::V4(v4) = ip(peer) else { panic!() };
        dns.add_a(name, 300, v4).await.unwrap();
    }
    // 192.0.2.71's PTR names a host that is not it.
    dns.add_ptr(ip("192.0.2.71"), 300, "mail.client.test")
        .await
        .unwrap();
    let resolver: Arc<dyn hato_core::dns::Resolver> = Arc::new(
        hato_dns::HickoryResolver::new(&hato_dns::DnsSettings {
            servers: vec![dns.addr().to_string()],
            timeout_ms: 3000,
            ..Default::default()
        })
        .unwrap(),
    );
    let w =
        world_with(|p| p.with_reverse_dns(hato_protection::reverse_dns::ReverseDns::new(resolver)))
            .await;
    let input = format!(
        "EHLO client.test\r\nMAIL FROM:<s@outside.test>\r\nRCPT TO:<alice@contoso.test>\r\n{MESSAGE}QUIT\r\n"
    );
    let (text, queued) = w.talk("192.0.2.70", &input, "").await;
    assert_eq!(queued.len(), 1, "{text}");
    let events = w.events(&queued[0], "alice@contoso.test");
    let standing = events[0].reason.as_ref().unwrap();
    assert_eq!(
        standing.figure_value("ptr"),
        Some(&FigureValue::from("mail.client.test"))
    );
    assert_eq!(standing.figure_value("reverse_dns"), None);

    // Not confirmed: unnamed, and the trace says why.
    let (_, queued) = w.talk("192.0.2.71", &input, "").await;
    let events = w.events(&queued[0], "alice@contoso.test");
    let standing = events[0].reason.as_ref().unwrap();
    assert_eq!(standing.figure_value("ptr"), Some(&FigureValue::from("")));
    let Some(FigureValue::Text(why)) = standing.figure_value("reverse_dns") else {
        panic!("{standing:?}")
    };
    assert!(why.contains("not forward-confirmed"), "{why}");

    // A refused client's row in the connection log has its name.
    let (text, _) = w
        .talk(
            "192.0.2.66",
            "EHLO client.test\r\nMAIL FROM:<s@outside.test>\r\nRCPT TO:<bob@fabrikam.test>\r\n",
            "",
        )
        .await;
    assert!(text.contains(&PROVIDER_REPLY.to_string()), "{text}");
    let log = w.log().await;
    let row = log.iter().find(|r| r.ip == "192.0.2.66").expect("a row");
    assert_eq!(row.ptr, "bad.client.test");
}

#[tokio::test]
async fn a_throttled_ip_is_let_in_again_when_its_throttle_decays() {
    let throttle = Arc::new(hato_protection::throttle::Throttle::new(
        hato_protection::throttle::ThrottleSettings {
            probation_recipients_per_hour: 1,
            throttle_minutes: 10,
            ..Default::default()
        },
    ));
    let t = throttle.clone();
    let w = world_with(move |p| {
        p.with_checks(checks().with(t.clone()).unwrap())
            .with_throttle(t)
    })
    .await;
    let input = format!(
        "EHLO client.test\r\nMAIL FROM:<s@outside.test>\r\nRCPT TO:<alice@contoso.test>\r\nRCPT TO:<bob@fabrikam.test>\r\n{MESSAGE}QUIT\r\n"
    );
    let (text, queued) = w.talk("192.0.2.80", &input, "").await;
    assert_eq!(queued.len(), 1, "{text}");
    // The edge told the throttle: one connection, two recipients.
    let status = throttle.status(ip("192.0.2.80"), hato_core::Clock::now(&*w.clock));
    assert_eq!(
        (status.connections_last_minute, status.recipients_last_hour),
        (1, 2)
    );
    let busy = "451 4.7.500 Server busy. Please try again later from [192.0.2.80]. (AS1)\r\n";
    let (text, queued) = w.talk("192.0.2.80", &input, "").await;
    assert!(text.starts_with(busy), "{text}");
    assert!(queued.is_empty());
    // Nine minutes on: still throttled. Eleven: the throttle has ended by itself.
    w.clock.advance_seconds(9 * 60);
    let (text, _) = w.talk("192.0.2.80", "QUIT\r\n", "").await;
    assert!(text.starts_with(busy), "{text}");
    w.clock.advance_seconds(2 * 60);
    let (text, _) = w.talk("192.0.2.80", "QUIT\r\n", "").await;
    assert!(text.starts_with("220 "), "{text}");
}
