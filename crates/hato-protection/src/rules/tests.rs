//! Tests of transport rules: every condition and its exception, every action, priorities,
//! stop-processing, audit mode, dates, validation, the regex limits, and a property test of the
//! condition logic against a reference evaluator.

use super::*;
use hato_core::Timestamp;
use proptest::prelude::*;

/// contoso.test is the organisation; b@ is in sales@, a@fabrikam.test in partners@.
struct Dir;

impl RuleDirectory for Dir {
    fn sender_in_organization(&self, address: &str, authenticated: bool) -> bool {
        address.ends_with("@contoso.test") && authenticated
    }
    fn recipient_in_organization(&self, address: &str) -> bool {
        address.ends_with("@contoso.test")
    }
    fn is_member_of(&self, address: &str, group: &str) -> bool {
        matches!(
            (address, group),
            ("b@contoso.test", "sales@contoso.test") | ("a@fabrikam.test", "partners@contoso.test")
        )
    }
    fn attribute(&self, address: &str, attribute: &str) -> Option<String> {
        (address == "a@fabrikam.test" && attribute == "Department").then(|| "Sales Ops".into())
    }
}

const NOW: Timestamp = Timestamp(1_780_000_000_000_000);

fn message() -> RuleMessage {
    RuleMessage {
        envelope_from: Some("a@fabrikam.test".into()),
        header_from: vec!["a@fabrikam.test".into()],
        recipients: vec!["b@contoso.test".into(), "c@contoso.test".into()],
        to_cc: vec!["b@contoso.test".into(), "c@contoso.test".into()],
        subject: "Quarterly report".into(),
        body_text: "Please see the attached invoice.".into(),
        headers: vec![
            ("X-Tag".into(), "alpha beta".into()),
            ("Subject".into(), "Quarterly report".into()),
        ],
        attachments: vec![AttachmentFacts {
            name: "invoice.pdf".into(),
            size: 2000,
            executable: false,
            password_protected: false,
            text: "total amount due".into(),
        }],
        size: 5000,
        scl: Some(3),
        message_types: vec![],
        client_ip: Some("192.0.2.10".parse().unwrap()),
        authenticated: false,
    }
}

fn rule(name: &str, priority: u32) -> Rule {
    let mut r = Rule::named(name);
    r.priority = priority;
    r.actions.set_scl = Some(5);
    r
}

/// The names of the recipients a set of rules hit with `name`.
fn hit(rules: Vec<Rule>, m: &RuleMessage, name: &str) -> Vec<String> {
    let set = RuleSet::compile(rules).unwrap();
    set.evaluate(m, &Dir, NOW)
        .recipients
        .into_iter()
        .filter(|r| r.hits.iter().any(|h| h.rule == name))
        .map(|r| r.recipient)
        .collect()
}

type Set = fn(&mut Conditions);
type Spoil = fn(&mut RuleMessage);

/// Every condition: how to set it so the base message matches, how to change the message so it
/// no longer does, and which recipients it selects (None: the message, so both).
fn cases() -> Vec<(&'static str, Set, Spoil, Option<&'static str>)> {
    vec![
        (
            "from",
            |c| c.from = vec!["A@fabrikam.test".into(), "x@y.test".into()],
            |m| m.header_from = vec!["z@fabrikam.test".into()],
            None,
        ),
        (
            "from_scope in",
            |c| c.from_scope = Some(Scope::InOrganization),
            |m| m.header_from = vec!["z@fabrikam.test".into()],
            None,
        ),
        (
            "from_scope out",
            |c| c.from_scope = Some(Scope::NotInOrganization),
            |m| {
                m.header_from = vec!["z@contoso.test".into()];
                m.authenticated = true;
            },
            None,
        ),
        (
            "from_member_of",
            |c| c.from_member_of = vec!["partners@contoso.test".into()],
            |m| m.header_from = vec!["z@fabrikam.test".into()],
            None,
        ),
        (
            "from_address_contains_words",
            |c| c.from_address_contains_words = vec!["FABRIKAM".into()],
            |m| m.header_from = vec!["a@fabrikamx.test".into()],
            None,
        ),
        (
            "from_address_matches_patterns",
            |c| c.from_address_matches_patterns = vec![r"^a@.*\.test$".into()],
            |m| m.header_from = vec!["b@fabrikam.example".into()],
            None,
        ),
        (
            "sender_domain_is",
            |c| c.sender_domain_is = vec!["fabrikam.test".into()],
            |m| m.header_from = vec!["a@sub.fabrikam.test".into()],
            None,
        ),
        (
            "sender_ip_ranges",
            |c| {
                c.sender_ip_ranges = vec!["192.0.2.0/24".into(), "198.51.100.1-198.51.100.9".into()]
            },
            |m| m.client_ip = Some("198.51.100.10".parse().unwrap()),
            None,
        ),
        (
            "sender_ad_attribute_contains_words",
            |c| c.sender_ad_attribute_contains_words = vec!["department:sales,finance".into()],
            |m| m.header_from = vec!["z@fabrikam.test".into()],
            None,
        ),
        (
            "sent_to",
            |c| c.sent_to = vec!["b@contoso.test".into()],
            |m| m.recipients = vec!["c@contoso.test".into()],
            Some("b@contoso.test"),
        ),
        (
            "sent_to_scope",
            |c| c.sent_to_scope = Some(Scope::InOrganization),
            |m| m.recipients = vec!["c@tailspin.test".into()],
            None,
        ),
        (
            "sent_to_member_of",
            |c| c.sent_to_member_of = vec!["sales@contoso.test".into()],
            |m| m.recipients = vec!["c@contoso.test".into()],
            Some("b@contoso.test"),
        ),
        (
            "recipient_domain_is",
            |c| c.recipient_domain_is = vec!["contoso.test".into()],
            |m| m.recipients = vec!["c@sub.contoso.test".into()],
            None,
        ),
        (
            "recipient_address_contains_words",
            |c| c.recipient_address_contains_words = vec!["c".into()],
            |m| m.recipients = vec!["b@contoso.test".into()],
            Some("c@contoso.test"),
        ),
        (
            "any_of_to_cc_header",
            |c| c.any_of_to_cc_header = vec!["c@contoso.test".into()],
            |m| m.to_cc = vec!["b@contoso.test".into()],
            None,
        ),
        (
            "subject_contains_words",
            |c| c.subject_contains_words = vec!["REPORT".into()],
            |m| m.subject = "Quarterly reports".into(),
            None,
        ),
        (
            "subject_matches_patterns",
            |c| c.subject_matches_patterns = vec![r"(?i)^quarter\w+ rep".into()],
            |m| m.subject = "A quarterly report".into(),
            None,
        ),
        (
            "subject_or_body_contains_words (subject)",
            |c| c.subject_or_body_contains_words = vec!["quarterly".into()],
            |m| m.subject = "x".into(),
            None,
        ),
        (
            "subject_or_body_contains_words (body)",
            |c| c.subject_or_body_contains_words = vec!["invoice".into()],
            |m| m.body_text = "invoices".into(),
            None,
        ),
        (
            "subject_or_body_matches_patterns",
            |c| c.subject_or_body_matches_patterns = vec![r"attach\w+ inv".into()],
            |m| m.body_text = "nothing".into(),
            None,
        ),
        (
            "attachment_name_matches_patterns",
            |c| c.attachment_name_matches_patterns = vec![r"(?i)\.pdf$".into()],
            |m| m.attachments[0].name = "invoice.pdf.txt".into(),
            None,
        ),
        (
            "attachment_extension_matches_words",
            |c| c.attachment_extension_matches_words = vec![".PDF".into(), "exe".into()],
            |m| m.attachments[0].name = "pdf".into(),
            None,
        ),
        (
            "attachment_contains_words",
            |c| c.attachment_contains_words = vec!["amount due".into()],
            |m| m.attachments[0].text = "amount paid".into(),
            None,
        ),
        (
            "attachment_has_executable_content",
            |c| c.attachment_has_executable_content = true,
            |m| m.attachments[0].executable = false,
            None,
        ),
        (
            "attachment_is_password_protected",
            |c| c.attachment_is_password_protected = true,
            |m| m.attachments[0].password_protected = false,
            None,
        ),
        (
            "attachment_size_over",
            |c| c.attachment_size_over = Some(2000),
            |m| m.attachments[0].size = 1999,
            None,
        ),
        (
            "message_size_over",
            |c| c.message_size_over = Some(5000),
            |m| m.size = 4999,
            None,
        ),
        (
            "header_contains_words",
            |c| {
                c.header_contains_message_header = Some("x-tag".into());
                c.header_contains_words = vec!["BETA".into()];
            },
            |m| m.headers[0].1 = "alphabeta".into(),
            None,
        ),
        (
            "header_matches_patterns",
            |c| {
                c.header_matches_message_header = Some("X-Tag".into());
                c.header_matches_patterns = vec![r"^alpha\s".into()];
            },
            |m| m.headers[0].1 = "gamma".into(),
            None,
        ),
        (
            "scl_over",
            |c| c.scl_over = Some(3),
            |m| m.scl = Some(2),
            None,
        ),
        (
            "message_type_matches",
            |c| c.message_type_matches = Some(MessageType::Calendaring),
            |m| m.message_types = vec![MessageType::Oof],
            None,
        ),
    ]
}

/// The base message, with what the cases need that the plain message lacks.
fn base(name: &str) -> RuleMessage {
    let mut m = message();
    match name {
        "from_scope in" => m.authenticated = true,
        "from_scope out" => {}
        "attachment_has_executable_content" => m.attachments[0].executable = true,
        "attachment_is_password_protected" => m.attachments[0].password_protected = true,
        "message_type_matches" => m.message_types = vec![MessageType::Calendaring],
        _ => {}
    }
    if name == "from_scope in" {
        m.header_from = vec!["a@contoso.test".into()];
    }
    m
}

#[test]
fn every_condition_matches_its_value_and_not_a_near_miss() {
    for (name, set, spoil, only) in cases() {
        let mut r = rule("r", 0);
        set(&mut r.conditions);
        r.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
        let m = base(name);
        let want: Vec<String> = match only {
            Some(one) => vec![one.to_string()],
            None => m.recipients.clone(),
        };
        assert_eq!(hit(vec![r.clone()], &m, "r"), want, "{name} should match");
        let mut spoiled = m.clone();
        spoil(&mut spoiled);
        assert!(
            hit(vec![r], &spoiled, "r").is_empty(),
            "{name} should not match"
        );
    }
}

#[test]
fn every_exception_exempts_what_its_condition_would_match() {
    for (name, set, spoil, only) in cases() {
        let mut r = rule("r", 0);
        set(&mut r.exceptions);
        r.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
        let m = base(name);
        let exempt: Vec<String> = match only {
            Some(one) => vec![one.to_string()],
            None => m.recipients.clone(),
        };
        let want: Vec<String> = m
            .recipients
            .iter()
            .filter(|r| !exempt.contains(r))
            .cloned()
            .collect();
        assert_eq!(hit(vec![r.clone()], &m, "r"), want, "except-if {name}");
        let mut spoiled = m.clone();
        spoil(&mut spoiled);
        assert_eq!(
            hit(vec![r], &spoiled, "r"),
            spoiled.recipients,
            "except-if {name} no longer exempts"
        );
    }
}

#[test]
fn the_matched_condition_and_value_are_the_reasons_figures() {
    let mut r = rule("Tag partners", 0);
    r.conditions.subject_contains_words = vec!["nothing".into(), "report".into()];
    r.conditions.sender_domain_is = vec!["fabrikam.test".into()];
    let set = RuleSet::compile(vec![r]).unwrap();
    let out = set.evaluate(&message(), &Dir, NOW);
    let d = &out.recipients[0].decisions[0];
    assert_eq!(d.action, RuleAction::SetScl { scl: 5 });
    assert_eq!(d.reason.stage, hato_core::Stage::TransportRule);
    assert_eq!(d.reason.rule.as_deref(), Some("Tag partners"));
    let fig = |n: &str| d.reason.figure_value(n).map(|v| v.to_string());
    assert_eq!(fig("subject-contains-words").as_deref(), Some("report"));
    assert_eq!(fig("sender-domain-is").as_deref(), Some("fabrikam.test"));
    assert_eq!(fig("action").as_deref(), Some("set-scl"));
    assert_eq!(fig("mode").as_deref(), Some("enforce"));
    assert_eq!(out.hit_counts(), vec![]);
}

#[test]
fn sender_address_location_picks_header_envelope_or_either() {
    let mut m = message();
    m.envelope_from = Some("bounce@mailer.test".into());
    for (loc, want) in [
        (SenderAddressLocation::Header, [true, false]),
        (SenderAddressLocation::Envelope, [false, true]),
        (SenderAddressLocation::HeaderOrEnvelope, [true, true]),
    ] {
        for (i, domain) in ["fabrikam.test", "mailer.test"].iter().enumerate() {
            let mut r = rule("r", 0);
            r.sender_address_location = loc;
            r.conditions.sender_domain_is = vec![domain.to_string()];
            assert_eq!(
                !hit(vec![r], &m, "r").is_empty(),
                want[i],
                "{loc:?} {domain}"
            );
        }
    }
}

#[test]
fn every_action_becomes_its_decision() {
    type SetA = fn(&mut Actions);
    let table: Vec<(SetA, RuleAction)> = vec![
        (|a| a.set_scl = Some(-1), RuleAction::SetScl { scl: -1 }),
        (
            |a| a.reject_message_reason_text = Some("No thanks".into()),
            RuleAction::Reject {
                code: 550,
                enhanced_code: "5.7.1".into(),
                text: "No thanks".into(),
            },
        ),
        (
            |a| a.reject_message_enhanced_status_code = Some("5.7.950".into()),
            RuleAction::Reject {
                code: 550,
                enhanced_code: "5.7.950".into(),
                text: DEFAULT_REJECT_TEXT.into(),
            },
        ),
        (|a| a.delete_message = true, RuleAction::Delete),
        (
            |a| a.redirect_message_to = vec!["Boss@Contoso.test".into()],
            RuleAction::Redirect {
                to: vec!["boss@contoso.test".into()],
            },
        ),
        (
            |a| a.blind_copy_to = vec!["audit@contoso.test".into()],
            RuleAction::BlindCopyTo {
                to: vec!["audit@contoso.test".into()],
            },
        ),
        (
            |a| a.add_to_recipients = vec!["x@contoso.test".into()],
            RuleAction::AddToRecipients {
                to: vec!["x@contoso.test".into()],
            },
        ),
        (
            |a| a.copy_to = vec!["y@contoso.test".into()],
            RuleAction::CopyTo {
                to: vec!["y@contoso.test".into()],
            },
        ),
        (
            |a| a.prepend_subject = Some("[EXT]".into()),
            RuleAction::PrependSubject {
                text: "[EXT]".into(),
            },
        ),
        (
            |a| {
                a.set_header_name = Some("X-Flag".into());
                a.set_header_value = Some("on".into());
            },
            RuleAction::SetHeader {
                name: "X-Flag".into(),
                value: "on".into(),
            },
        ),
        (
            |a| a.remove_header = Some("X-Tag".into()),
            RuleAction::RemoveHeader {
                name: "X-Tag".into(),
            },
        ),
        (
            |a| a.apply_html_disclaimer_text = Some("<b>Confidential</b>".into()),
            RuleAction::Disclaimer {
                text: "<b>Confidential</b>".into(),
                location: DisclaimerLocation::Append,
                fallback: DisclaimerFallback::Wrap,
            },
        ),
        (
            |a| {
                a.apply_html_disclaimer_text = Some("d".into());
                a.apply_html_disclaimer_location = Some(DisclaimerLocation::Prepend);
                a.apply_html_disclaimer_fallback_action = Some(DisclaimerFallback::Reject);
            },
            RuleAction::Disclaimer {
                text: "d".into(),
                location: DisclaimerLocation::Prepend,
                fallback: DisclaimerFallback::Reject,
            },
        ),
        (|a| a.quarantine = true, RuleAction::Quarantine),
        (
            |a| a.route_message_outbound_connector = Some("Partner TLS".into()),
            RuleAction::RouteOutboundConnector {
                connector: "Partner TLS".into(),
            },
        ),
        (
            |a| a.generate_incident_report = Some("soc@contoso.test".into()),
            RuleAction::IncidentReport {
                to: "soc@contoso.test".into(),
            },
        ),
    ];
    for (set, want) in table {
        let mut r = Rule::named("r");
        set(&mut r.actions);
        r.validate().unwrap_or_else(|e| panic!("{want:?}: {e}"));
        let out = RuleSet::compile(vec![r])
            .unwrap()
            .evaluate(&message(), &Dir, NOW);
        for rcpt in &out.recipients {
            let actions: Vec<&RuleAction> = rcpt.decisions.iter().map(|d| &d.action).collect();
            assert_eq!(actions, vec![&want]);
        }
    }
}

#[test]
fn priorities_order_the_rules_and_stop_processing_ends_them() {
    let mut a = rule("a", 2);
    a.actions = Actions {
        prepend_subject: Some("A".into()),
        ..Actions::default()
    };
    let mut b = rule("b", 0);
    b.actions = Actions {
        prepend_subject: Some("B".into()),
        ..Actions::default()
    };
    let mut c = rule("c", 1);
    c.actions = Actions {
        prepend_subject: Some("C".into()),
        ..Actions::default()
    };
    let set = RuleSet::compile(vec![a.clone(), b.clone(), c.clone()]).unwrap();
    let out = set.evaluate(&message(), &Dir, NOW);
    let names: Vec<&str> = out.recipients[0]
        .hits
        .iter()
        .map(|h| h.rule.as_str())
        .collect();
    assert_eq!(names, ["b", "c", "a"]);

    // c stops processing for the recipients it matched (only c@ here): a runs for b@ only.
    c.stop_rule_processing = true;
    c.conditions.sent_to = vec!["c@contoso.test".into()];
    let out = RuleSet::compile(vec![a.clone(), b.clone(), c.clone()])
        .unwrap()
        .evaluate(&message(), &Dir, NOW);
    let names = |i: usize| -> Vec<String> {
        out.recipients[i]
            .hits
            .iter()
            .map(|h| h.rule.clone())
            .collect()
    };
    assert_eq!(names(0), ["b", "a"]);
    assert_eq!(names(1), ["b", "c"]);

    // Reject, delete and quarantine end processing too (reference §5.1).
    for set_action in [
        (|x: &mut Actions| x.quarantine = true) as fn(&mut Actions),
        |x| x.delete_message = true,
        |x| x.reject_message_reason_text = Some("no".into()),
    ] {
        let mut first = rule("first", 0);
        first.actions = Actions::default();
        set_action(&mut first.actions);
        let out = RuleSet::compile(vec![first, a.clone()])
            .unwrap()
            .evaluate(&message(), &Dir, NOW);
        assert_eq!(out.recipients[0].hits.len(), 1);
    }
}

#[test]
fn audit_mode_records_without_effect_except_the_incident_report() {
    let mut r = rule("watch", 0);
    r.mode = Mode::Audit;
    r.actions.reject_message_reason_text = Some("no".into());
    r.actions.generate_incident_report = Some("soc@contoso.test".into());
    let mut later = rule("later", 1);
    later.actions = Actions {
        prepend_subject: Some("L".into()),
        ..Actions::default()
    };
    let out = RuleSet::compile(vec![r, later])
        .unwrap()
        .evaluate(&message(), &Dir, NOW);
    let d = &out.recipients[0].decisions;
    assert_eq!(
        d[0].action,
        RuleAction::Audited {
            actions: vec![
                "reject-message".into(),
                "set-scl".into(),
                "generate-incident-report".into()
            ]
        }
    );
    assert_eq!(
        d[1].action,
        RuleAction::IncidentReport {
            to: "soc@contoso.test".into()
        }
    );
    assert_eq!(d[2].action, RuleAction::PrependSubject { text: "L".into() });
    assert!(out.recipients[0].rejection().is_none());
    assert_eq!(out.recipients[0].hits[0].mode, Mode::Audit);
}

#[test]
fn activation_and_expiry_dates_bound_a_rule_and_disabled_rules_do_not_run() {
    let at = |s: &str| Timestamp::parse_human(s).unwrap();
    let mut r = rule("window", 0);
    r.activation_date = Some("2026-12-01".into());
    r.expiry_date = Some("2026-12-31 12:00".into());
    r.validate().unwrap();
    assert_eq!(r.activation_date.as_deref(), Some("2026-12-01T00:00:00Z"));
    let set = RuleSet::compile(vec![r.clone()]).unwrap();
    let runs = |now: Timestamp| {
        !set.evaluate(&message(), &Dir, now).recipients[0]
            .hits
            .is_empty()
    };
    assert!(!runs(at("2026-11-30T23:59:59Z")));
    assert!(runs(at("2026-12-01T00:00:00Z")));
    assert!(runs(at("2026-12-31T11:59:59Z")));
    assert!(!runs(at("2026-12-31T12:00:00Z")));
    r.enabled = false;
    let set = RuleSet::compile(vec![r]).unwrap();
    assert!(
        set.evaluate(&message(), &Dir, at("2026-12-10")).recipients[0]
            .hits
            .is_empty()
    );
}

#[test]
fn a_rule_without_conditions_applies_to_every_message() {
    assert_eq!(hit(vec![rule("all", 0)], &message(), "all").len(), 2);
}

#[test]
fn a_stored_rule_that_does_not_compile_is_skipped_or_defers_by_its_rule_error_action() {
    let mut bad = rule("bad", 0);
    bad.conditions.subject_matches_patterns = vec!["(".into()];
    let good = rule("good", 1);
    let set = RuleSet::from_stored(vec![(7, bad.clone()), (8, good.clone())]);
    let out = set.evaluate(&message(), &Dir, NOW);
    assert_eq!(out.skipped.len(), 1);
    assert!(out.defer.is_none());
    assert_eq!(out.recipients[0].hits[0].id, 8);
    assert_eq!(out.hit_counts(), vec![(8, 1)]);
    bad.rule_error_action = RuleErrorAction::Defer;
    let out = RuleSet::from_stored(vec![(7, bad), (8, good)]).evaluate(&message(), &Dir, NOW);
    assert_eq!(
        out.defer.as_ref().and_then(|r| r.rule.as_deref()),
        Some("bad")
    );
}

#[test]
fn words_match_whole_words_case_insensitively_in_any_script() {
    let cases: &[(&str, &str, bool)] = &[
        ("contoso", "Visit Contoso, today", true),
        ("contoso", "Acontoso", false),
        ("contoso", "contosos", false),
        ("contoso.com", "mail me at ceo@contoso.com!", true),
        ("free money", "Get FREE   money", false),
        ("free money", "Get FREE MONEY now", true),
        ("müller", "Herr MÜLLER schreibt", true),
        ("müller", "Müllerstraße 5", false),
        ("é", "café", false),
        ("機密", "これは機密です", true),
        ("invoice", "invoice", true),
        ("a.b", "axb", false),
        // ASCII words in text that is not ASCII: the fast search rules texts out only where
        // the regex could not match either. U+212A KELVIN SIGN and U+017F LONG S fold with
        // `k` and `s` (Unicode simple case folding): found as the regex finds them.
        ("invoice", "Ihre Rechnung (invoice) für März", true),
        ("invoice", "Ihre Rechnung für März", false),
        ("kilo", "ein \u{212A}ILO Äpfel", true),
        ("kilo", "ein \u{212A}IL Äpfel", false),
        ("secret", "\u{17F}ecret – geheim", true),
        ("bank", "банк bank банк", true),
        ("bank", "банкbank", false),
    ];
    for (word, text, want) in cases {
        let w = matcher::Words::new(&[word.to_string()]).unwrap().unwrap();
        assert_eq!(
            w.find(text, &matcher::Scanned::default()).is_some(),
            *want,
            "{word:?} in {text:?}"
        );
    }
}

#[test]
fn bad_values_are_refused_naming_the_flag_and_the_value() {
    type SetR = fn(&mut Rule);
    let cases: Vec<(SetR, &str, &str)> = vec![
        (|r| r.actions.set_scl = Some(10), "--set-scl", "10"),
        (|r| r.conditions.scl_over = Some(-2), "--scl-over", "-2"),
        (
            |r| r.actions.reject_message_enhanced_status_code = Some("5.7.2".into()),
            "--reject-message-enhanced-status-code",
            "5.7.2",
        ),
        (
            |r| r.actions.reject_message_enhanced_status_code = Some("5.7.899".into()),
            "--reject-message-enhanced-status-code",
            "5.7.899",
        ),
        (
            |r| r.actions.reject_message_enhanced_status_code = Some("4.7.900".into()),
            "--reject-message-enhanced-status-code",
            "4.7.900",
        ),
        (
            |r| r.conditions.subject_matches_patterns = vec!["(unclosed".into()],
            "--subject-matches-patterns",
            "(unclosed",
        ),
        (
            |r| r.exceptions.subject_matches_patterns = vec!["[z-a]".into()],
            "--except-if-subject-matches-patterns",
            "[z-a]",
        ),
        (
            |r| r.conditions.from = vec!["not an address".into()],
            "--from",
            "not an address",
        ),
        (
            |r| r.conditions.sender_ip_ranges = vec!["10.0.0.0/33".into()],
            "--sender-ip-ranges",
            "10.0.0.0/33",
        ),
        (
            |r| r.conditions.header_contains_words = vec!["x".into()],
            "--header-contains-message-header",
            "",
        ),
        (
            |r| r.actions.set_header_name = Some("X-A".into()),
            "--set-header-value",
            "",
        ),
        (
            |r| {
                r.actions.set_header_name = Some("Bad:Name".into());
                r.actions.set_header_value = Some("v".into());
            },
            "--set-header-name",
            "Bad:Name",
        ),
        (
            |r| r.actions.reject_message_reason_text = Some("two\r\nlines".into()),
            "--reject-message-reason-text",
            "two",
        ),
        (
            |r| r.activation_date = Some("someday".into()),
            "--activation-date",
            "someday",
        ),
        (
            |r| {
                r.activation_date = Some("2026-12-02".into());
                r.expiry_date = Some("2026-12-01".into());
            },
            "--expiry-date",
            "2026-12-01",
        ),
        (
            |r| r.conditions.sender_ad_attribute_contains_words = vec!["Shoe:size".into()],
            "--sender-ad-attribute-contains-words",
            "Shoe:size",
        ),
        (|r| r.actions = Actions::default(), "actions", ""),
        (|r| r.name = "  ".into(), "--name", ""),
    ];
    for (set, flag, value) in cases {
        let mut r = rule("r", 0);
        set(&mut r);
        let e = r.validate().expect_err(flag).to_string();
        assert!(e.starts_with(flag) || e.contains(flag), "{e}");
        assert!(e.contains(value), "{e} should name {value}");
    }
    for ok in ["5.7.1", "5.7.900", "5.7.999"] {
        let mut r = rule("r", 0);
        r.actions.reject_message_enhanced_status_code = Some(ok.into());
        r.validate().unwrap();
    }
}

#[test]
fn huge_or_catastrophic_patterns_are_refused_or_bounded() {
    // Exponential growth at compile time: refused by the size limit, naming the flag.
    for p in [
        r"(a{1000}){1000}",
        r"\w{1000}\w{1000}",
        r"(?:(?:(?:a{100}){100}){100})",
    ] {
        let mut r = rule("r", 0);
        r.conditions.subject_matches_patterns = vec![p.into()];
        let e = r.validate().unwrap_err();
        assert_eq!(e.field, "subject-matches-patterns", "{p}: {e}");
        assert!(e.problem.contains("compiles to more than"), "{p}: {e}");
    }
    // Longer than Exchange's 128 characters.
    let mut r = rule("r", 0);
    r.conditions.subject_matches_patterns = vec!["a".repeat(129)];
    assert!(r.validate().unwrap_err().problem.contains("128"));

    // Patterns that backtrack exponentially elsewhere, over a 35 MB subject the sender chose:
    // each text is read once per condition (the counter), never once per word, pattern or
    // position.
    let mut r = rule("r", 0);
    r.conditions.subject_matches_patterns =
        vec![r"^(a+)+$".into(), r"(a|aa)*c".into(), r"(\w+\s?)*!".into()];
    r.conditions.subject_contains_words = (0..200).map(|i| format!("word{i}")).collect();
    r.validate().unwrap();
    let mut m = message();
    m.subject = "a".repeat(35 * 1024 * 1024) + "b";
    let len = m.subject.len() as u64;
    let out = RuleSet::compile(vec![r]).unwrap().evaluate(&m, &Dir, NOW);
    assert!(out.recipients[0].hits.is_empty());
    assert!(
        out.scanned_bytes <= 2 * len,
        "{} > 2 × {len}",
        out.scanned_bytes
    );
    assert!(out.scanned_bytes >= len);
}

#[test]
fn the_words_of_many_rules_are_searched_once_per_text() {
    // Fifty rules with words conditions over the subject and body (Exchange's
    // SubjectOrBodyContainsWords), as a tenant's rule set has: the body is read once for all of
    // them, and only the rules whose words occur look closer.
    let rules: Vec<Rule> = (0..50)
        .map(|i| {
            let mut r = rule(&format!("r{i}"), i);
            r.conditions.subject_or_body_contains_words =
                vec![format!("codeword{i}"), format!("Secret Project {i}")];
            r
        })
        .collect();
    let set = RuleSet::compile(rules).unwrap();
    let mut m = message();
    m.body_text =
        "lorem ipsum dolor sit amet ".repeat(40_000) + "about SECRET project 7, and codeword42.";
    let len = m.body_text.len() as u64;
    let out = set.evaluate(&m, &Dir, NOW);
    let mut names: Vec<String> = out.recipients[0]
        .hits
        .iter()
        .map(|h| h.rule.clone())
        .collect();
    names.sort();
    assert_eq!(names, ["r42", "r7"]);
    // One pass for all fifty, plus the rules that look closer (r7, r42, and r4, whose
    // "codeword4" is inside "codeword42"): not fifty passes.
    assert!(
        out.scanned_bytes <= 5 * len,
        "{} > 5 × {len}",
        out.scanned_bytes
    );
    // A word inside another word is no word (the closer look decides).
    m.body_text = "xcodeword3x".into();
    assert!(set.evaluate(&m, &Dir, NOW).recipients[0].hits.is_empty());
    // A body that is not ASCII (accented Latin, as most European mail) is read once for all
    // of them too, not once per rule with the slower Unicode search.
    m.body_text = "lorem ipsum dolor sit amet, café ".repeat(40_000) + "über SECRET project 7, ça.";
    let len = m.body_text.len() as u64;
    let out = set.evaluate(&m, &Dir, NOW);
    let names: Vec<&str> = out.recipients[0]
        .hits
        .iter()
        .map(|h| h.rule.as_str())
        .collect();
    assert_eq!(names, ["r7"]);
    assert!(
        out.scanned_bytes <= 3 * len,
        "{} > 3 × {len}",
        out.scanned_bytes
    );
}

#[test]
fn a_tenants_rules_are_limited_in_number_names_and_pattern_text() {
    let mut rules: Vec<Rule> = (0..=RULES_MAX as u32)
        .map(|i| rule(&format!("r{i}"), i))
        .collect();
    assert!(
        validate_all(&mut rules)
            .unwrap_err()
            .problem
            .contains("300")
    );
    let mut rules = vec![rule("Same", 0), rule("same", 1)];
    assert!(
        validate_all(&mut rules)
            .unwrap_err()
            .problem
            .contains("two rules")
    );
    let mut rules: Vec<Rule> = (0..200)
        .map(|i| {
            let mut r = rule(&format!("r{i}"), i);
            r.conditions.subject_matches_patterns = vec!["x".repeat(120)];
            r
        })
        .collect();
    assert_eq!(validate_all(&mut rules).unwrap_err().field, "patterns");
}

#[test]
fn a_rule_round_trips_through_json_with_exchanges_defaults() {
    let r: Rule = serde_json::from_str(r#"{"name":"n","actions":{"set_scl":-1}}"#).unwrap();
    assert_eq!(r.mode, Mode::Enforce);
    assert!(r.enabled);
    assert_eq!(r.sender_address_location, SenderAddressLocation::Header);
    assert_eq!(r.rule_error_action, RuleErrorAction::Ignore);
    let back: Rule = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
    assert_eq!(back, r);
    let e = serde_json::from_str::<Rule>(r#"{"name":"n","conditions":{"sent_too":[]}}"#);
    assert!(e.unwrap_err().to_string().contains("sent_too"));
    let m: Rule = serde_json::from_str(r#"{"name":"n","mode":"audit-and-notify"}"#).unwrap();
    assert_eq!(m.mode, Mode::AuditAndNotify);
}

// ---- content actions ----

fn apply(
    header: &str,
    body: &str,
    actions: &[RuleAction],
) -> (String, String, Option<DisclaimerOutcome>) {
    let m = apply_content_actions(header.as_bytes(), body.as_bytes(), actions);
    (
        String::from_utf8(m.header).unwrap(),
        String::from_utf8(m.body).unwrap(),
        m.disclaimer,
    )
}

#[test]
fn added_recipients_are_added_to_the_to_and_cc_fields() {
    let h = "From: a@fabrikam.test\r\nTo: b@contoso.test,\r\n c@contoso.test\r\nSubject: Hi\r\n";
    let (out, _, _) = apply(
        h,
        "",
        &[
            RuleAction::AddToRecipients {
                to: vec!["d@contoso.test".into()],
            },
            RuleAction::CopyTo {
                to: vec!["e@contoso.test".into(), "f@contoso.test".into()],
            },
        ],
    );
    assert_eq!(
        out,
        "From: a@fabrikam.test\r\nTo: b@contoso.test,\r\n c@contoso.test,\r\n d@contoso.test\r\nSubject: Hi\r\nCc: e@contoso.test,\r\n f@contoso.test\r\n"
    );
    // Blind copies leave the header alone.
    let (out, _, _) = apply(
        h,
        "",
        &[RuleAction::BlindCopyTo {
            to: vec!["g@contoso.test".into()],
        }],
    );
    assert_eq!(out, h);
}

#[test]
fn header_and_subject_actions_change_the_header_block() {
    let h = "From: a@fabrikam.test\r\nSubject: Hello\r\nX-Tag: one\r\nx-tag: two\r\n";
    let (out, _, _) = apply(
        h,
        "",
        &[RuleAction::SetHeader {
            name: "X-Tag".into(),
            value: "new".into(),
        }],
    );
    assert_eq!(
        out,
        "From: a@fabrikam.test\r\nSubject: Hello\r\nX-Tag: new\r\n"
    );
    let (out, _, _) = apply(
        h,
        "",
        &[RuleAction::RemoveHeader {
            name: "x-TAG".into(),
        }],
    );
    assert_eq!(out, "From: a@fabrikam.test\r\nSubject: Hello\r\n");
    let (out, _, _) = apply(
        h,
        "",
        &[RuleAction::PrependSubject {
            text: "[EXT]".into(),
        }],
    );
    assert!(out.contains("Subject: [EXT] Hello\r\n"), "{out}");
    let (out, _, _) = apply(
        "From: a@b.test\r\n",
        "",
        &[RuleAction::PrependSubject {
            text: "Außen:".into(),
        }],
    );
    assert!(
        out.contains("Subject: =?utf-8?B?QXXDn2VuOg==?=\r\n"),
        "{out}"
    );
    let (out, _, _) = apply(
        h,
        "",
        &[RuleAction::SetHeader {
            name: "X-Note".into(),
            value: "café".into(),
        }],
    );
    assert!(out.ends_with("X-Note: =?utf-8?B?Y2Fmw6k=?=\r\n"), "{out}");
    // Other actions leave the message alone.
    let (out, body, d) = apply(
        h,
        "b\r\n",
        &[RuleAction::Delete, RuleAction::SetScl { scl: 1 }],
    );
    assert_eq!((out.as_str(), body.as_str(), d), (h, "b\r\n", None));
}

#[test]
fn the_disclaimer_goes_into_plain_and_html_bodies_or_falls_back() {
    let d = |location, fallback| RuleAction::Disclaimer {
        text: "<p>Confidential &amp; private</p>".into(),
        location,
        fallback,
    };
    let plain = "Content-Type: text/plain; charset=utf-8\r\n";
    let (_, body, o) = apply(
        plain,
        "Hi\r\n",
        &[d(DisclaimerLocation::Append, DisclaimerFallback::Wrap)],
    );
    assert_eq!(body, "Hi\r\n\r\nConfidential & private\r\n");
    assert_eq!(o, Some(DisclaimerOutcome::Inserted));
    let (_, body, _) = apply(
        "",
        "Hi\r\n",
        &[d(DisclaimerLocation::Prepend, DisclaimerFallback::Wrap)],
    );
    assert_eq!(body, "Confidential & private\r\n\r\nHi\r\n");

    let html = "Content-Type: text/html\r\n";
    let page = "<html><body class=x><p>Hi</p></body></html>\r\n";
    let (_, body, _) = apply(
        html,
        page,
        &[d(DisclaimerLocation::Append, DisclaimerFallback::Wrap)],
    );
    assert_eq!(
        body,
        "<html><body class=x><p>Hi</p><div><p>Confidential &amp; private</p></div></body></html>\r\n"
    );
    let (_, body, _) = apply(
        html,
        page,
        &[d(DisclaimerLocation::Prepend, DisclaimerFallback::Wrap)],
    );
    assert_eq!(
        body,
        "<html><body class=x><div><p>Confidential &amp; private</p></div><p>Hi</p></body></html>\r\n"
    );

    // Not text, or signed: not changed in place; the fallback decides.
    let b64 =
        "Subject: s\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n";
    let (h, body, o) = apply(
        b64,
        "SGk=\r\n",
        &[d(DisclaimerLocation::Append, DisclaimerFallback::Wrap)],
    );
    assert_eq!(o, Some(DisclaimerOutcome::Wrapped));
    assert!(h.starts_with("Subject: s\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"hato-disclaimer-"), "{h}");
    assert!(body.contains("Content-Type: message/rfc822\r\n"));
    assert!(body.contains("Content-Transfer-Encoding: base64\r\n\r\nSGk=\r\n--hato-disclaimer-"));
    assert!(body.contains("<div><p>Confidential &amp; private</p></div>"));
    let (h, body, o) = apply(
        b64,
        "SGk=\r\n",
        &[d(DisclaimerLocation::Append, DisclaimerFallback::Ignore)],
    );
    assert_eq!(
        (h.as_str(), body.as_str(), o),
        (b64, "SGk=\r\n", Some(DisclaimerOutcome::Ignored))
    );
    let signed = "Content-Type: multipart/signed; boundary=q\r\n";
    let (_, _, o) = apply(
        signed,
        "--q\r\nContent-Type: text/plain\r\n\r\nHi\r\n--q--\r\n",
        &[d(DisclaimerLocation::Append, DisclaimerFallback::Reject)],
    );
    assert_eq!(o, Some(DisclaimerOutcome::Reject));
}

#[test]
fn the_disclaimer_goes_into_encoded_parts_and_the_text_of_multiparts() {
    let d = |text: &str| RuleAction::Disclaimer {
        text: text.into(),
        location: DisclaimerLocation::Append,
        fallback: DisclaimerFallback::Ignore,
    };
    // Base64 and quoted-printable parts are decoded, changed and encoded again.
    let h = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n";
    let (_, body, o) = apply(h, "SGk=\r\n", &[d("Bye")]);
    assert_eq!(o, Some(DisclaimerOutcome::Inserted));
    assert_eq!(body, "SGkNCg0KQnllDQo=\r\n"); // "Hi\r\n\r\nBye\r\n"
    let h = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n";
    let (_, body, _) = apply(h, "caf=C3=A9 =3D ok=\r\n!\r\n", &[d("Grüße")]);
    assert_eq!(body, "caf=C3=A9 =3D ok!\r\n\r\nGr=C3=BC=C3=9Fe\r\n");
    // A 7bit part that gets 8-bit text becomes quoted-printable.
    let (h2, body, _) = apply(
        "Content-Type: text/plain; charset=utf-8\r\n",
        "Hi\r\n",
        &[d("Grüße")],
    );
    assert!(
        h2.contains("Content-Transfer-Encoding: quoted-printable\r\n"),
        "{h2}"
    );
    assert_eq!(body, "Hi\r\n\r\nGr=C3=BC=C3=9Fe\r\n");
    // Another charset cannot take a non-ASCII disclaimer.
    let (_, _, o) = apply(
        "Content-Type: text/plain; charset=iso-8859-1\r\n",
        "Hi\r\n",
        &[d("Grüße")],
    );
    assert_eq!(o, Some(DisclaimerOutcome::Ignored));

    // multipart/mixed: the first part (an alternative: both its texts), not the attachment.
    let h = "Content-Type: multipart/mixed; boundary=\"m\"\r\n";
    let body = concat!(
        "preamble\r\n",
        "--m\r\nContent-Type: multipart/alternative; boundary=a\r\n\r\n",
        "--a\r\nContent-Type: text/plain\r\n\r\nHi\r\n",
        "--a\r\nContent-Type: text/html\r\n\r\n<body>Hi</body>\r\n",
        "--a--\r\n",
        "--m\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=a.txt\r\n\r\nfile\r\n",
        "--m--\r\nepilogue\r\n",
    );
    let (_, out, o) = apply(h, body, &[d("<b>Note</b>")]);
    assert_eq!(o, Some(DisclaimerOutcome::Inserted));
    assert_eq!(
        out,
        concat!(
            "preamble\r\n",
            "--m\r\nContent-Type: multipart/alternative; boundary=a\r\n\r\n",
            "--a\r\nContent-Type: text/plain\r\n\r\nHi\r\n\r\nNote\r\n\r\n",
            "--a\r\nContent-Type: text/html\r\n\r\n<body>Hi<div><b>Note</b></div></body>\r\n",
            "--a--\r\n",
            "--m\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=a.txt\r\n\r\nfile\r\n",
            "--m--\r\nepilogue\r\n",
        )
    );
    // Nesting deeper than MAX_DEPTH is not followed: a bounded walk.
    let mut nested = String::from("--b0\r\n");
    for i in 1..50 {
        nested.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n"
        ));
    }
    nested.push_str("Content-Type: text/plain\r\n\r\nHi\r\n");
    let (_, _, o) = apply(
        "Content-Type: multipart/mixed; boundary=b0\r\n",
        &nested,
        &[d("x")],
    );
    assert_eq!(o, Some(DisclaimerOutcome::Ignored));
}

// ---- building the facts from a message ----

#[test]
fn a_rule_message_is_built_from_a_whole_message() {
    let eml = concat!(
        "From: Alice <Alice@Fabrikam.test>\r\n",
        "To: b@contoso.test, Carol <c@contoso.test>\r\n",
        "Cc: d@contoso.test\r\n",
        "Subject: =?utf-8?Q?Gr=C3=BC=C3=9Fe?=\r\n",
        "Auto-Submitted: auto-replied\r\n",
        "MIME-Version: 1.0\r\n",
        "Content-Type: multipart/mixed; boundary=b\r\n",
        "\r\n",
        "--b\r\nContent-Type: text/plain\r\n\r\nHello there\r\n",
        "--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=notes.txt\r\nContent-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA\r\n",
        "--b\r\nContent-Type: application/zip\r\nContent-Disposition: attachment; filename=\"secret.zip\"\r\nContent-Transfer-Encoding: base64\r\n\r\nUEsDBBQAAQAIAAAAAAA=\r\n",
        "--b\r\nContent-Type: text/calendar\r\nContent-Disposition: attachment; filename=invite.ics\r\n\r\nBEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n",
        "--b--\r\n"
    );
    let m = RuleMessage::from_message(
        eml.as_bytes(),
        Some("bounce@fabrikam.test".into()),
        vec!["b@contoso.test".into()],
        Some("192.0.2.1".parse().unwrap()),
    );
    assert_eq!(m.subject, "Grüße");
    assert_eq!(m.header_from, ["alice@fabrikam.test"]);
    assert_eq!(
        m.to_cc,
        ["b@contoso.test", "c@contoso.test", "d@contoso.test"]
    );
    assert!(m.body_text.contains("Hello there"));
    let names: Vec<&str> = m.attachments.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["notes.txt", "secret.zip", "invite.ics"]);
    assert!(
        m.attachments[0].executable,
        "MZ renamed .txt is still executable"
    );
    assert!(!m.attachments[1].executable);
    assert!(m.attachments[1].password_protected);
    assert!(m.attachments[2].text.contains("BEGIN:VCALENDAR"));
    assert_eq!(
        m.message_types,
        [MessageType::Oof, MessageType::Calendaring]
    );
    assert_eq!(m.size, eml.len() as u64);
    assert_eq!(
        m.header_values("auto-submitted").collect::<Vec<_>>(),
        ["auto-replied"]
    );
}

#[test]
fn the_body_text_and_attachment_text_are_bounded() {
    let big = "word ".repeat(BODY_TEXT_MAX / 2);
    let eml = format!("Subject: s\r\nContent-Type: text/plain\r\n\r\n{big}\r\n");
    let m = RuleMessage::from_message(eml.as_bytes(), None, vec![], None);
    assert!(m.body_text.len() <= BODY_TEXT_MAX);
    assert!(m.body_text.len() > BODY_TEXT_MAX / 2);
}

// ---- the condition logic against a reference evaluator ----

/// Conditions whose each value is made to match the base message or not: (set with values).
fn atom(i: usize, values: &[bool], c: &mut Conditions) {
    let pick = |yes: &str, no: &str| -> Vec<String> {
        values
            .iter()
            .enumerate()
            .map(|(k, v)| {
                if *v {
                    yes.to_string()
                } else {
                    format!("{no}{k}")
                }
            })
            .collect()
    };
    match i {
        0 => c.subject_contains_words = pick("report", "zebra"),
        1 => c.sender_domain_is = pick("fabrikam.test", "nowhere.test"),
        2 => c.from_address_matches_patterns = pick("^a@", "^zz"),
        3 => {
            c.sender_ip_ranges = values
                .iter()
                .enumerate()
                .map(|(k, v)| {
                    if *v {
                        "192.0.2.0/24".into()
                    } else {
                        format!("203.0.113.{k}")
                    }
                })
                .collect()
        }
        4 => c.attachment_extension_matches_words = pick("pdf", "exe"),
        5 => c.recipient_domain_is = pick("contoso.test", "tailspin.test"),
        _ => c.subject_or_body_matches_patterns = pick("invoice", "^nothing"),
    }
}

proptest! {
    #[test]
    fn condition_logic_agrees_with_a_reference_evaluator(
        conds in proptest::collection::vec(proptest::collection::vec(any::<bool>(), 0..3), 7),
        excepts in proptest::collection::vec(proptest::collection::vec(any::<bool>(), 0..3), 7),
    ) {
        let mut r = rule("p", 0);
        for (i, v) in conds.iter().enumerate() {
            if !v.is_empty() { atom(i, v, &mut r.conditions); }
        }
        for (i, v) in excepts.iter().enumerate() {
            if !v.is_empty() { atom(i, v, &mut r.exceptions); }
        }
        r.validate().unwrap();
        // Reference: every present condition has a matching value (OR within, AND across);
        // no present exception has one (OR across exceptions).
        let holds = |v: &Vec<bool>| v.iter().any(|x| *x);
        let want = conds.iter().filter(|v| !v.is_empty()).all(holds)
            && !excepts.iter().filter(|v| !v.is_empty()).any(holds);
        let got = !hit(vec![r], &message(), "p").is_empty();
        prop_assert_eq!(got, want);
    }
}

/// Pieces a sender's MIME structure is made of, to build hostile bodies from.
const PIECES: [&str; 14] = [
    "--b\r\n",
    "--b--\r\n",
    "--a\r\n",
    "Content-Type: multipart/alternative; boundary=a\r\n",
    "Content-Type: multipart/mixed; boundary=b\r\n",
    "Content-Type: text/plain; charset=utf-8\r\n",
    "Content-Type: text/html\r\n",
    "Content-Transfer-Encoding: quoted-printable\r\n",
    "Content-Transfer-Encoding: base64\r\n",
    "\r\n",
    "=C3=A9=\r\n",
    "SGVsbG8=",
    "<body>x</body>",
    "=",
];

proptest! {
    #[test]
    fn content_actions_on_any_mime_structure_stay_bounded(
        head in proptest::collection::vec(0..PIECES.len(), 0..6),
        body in proptest::collection::vec(0..PIECES.len(), 0..60),
        fallback in 0..3usize,
    ) {
        let header: String = head.iter().map(|i| PIECES[*i]).filter(|p| p.contains(':')).collect();
        let body: String = body.iter().map(|i| PIECES[*i]).collect();
        let fallback = [DisclaimerFallback::Wrap, DisclaimerFallback::Ignore, DisclaimerFallback::Reject][fallback];
        let text = "Vertraulich – nur für Empfänger";
        let m = apply_content_actions(
            header.as_bytes(),
            body.as_bytes(),
            &[
                RuleAction::Disclaimer { text: text.into(), location: DisclaimerLocation::Append, fallback },
                RuleAction::PrependSubject { text: "[EXT]".into() },
            ],
        );
        // Every part is encoded at most once (quoted-printable at most triples a byte), plus
        // the disclaimer and framing once per part.
        let parts = body.matches("--").count() + 1;
        let bound = 3 * (header.len() + body.len()) + parts * (4 * text.len() + 128) + 512;
        prop_assert!(m.header.len() + m.body.len() <= bound);
        prop_assert!(m.disclaimer.is_some());
        prop_assert!(String::from_utf8_lossy(&m.header).contains("Subject: [EXT]"));
    }
}
