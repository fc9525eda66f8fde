//! `bench/content-rules.json`, the 50 transport rules `bench/content.sh` measures (part 2a
//! evaluates them in `examples/pipeline_bench.rs`, part 2b imports them with `hato rule
//! import`): they stay a valid import (the benchmark would measure nothing if the server refused
//! them), the mix an admin writes, and they act on mail as their names say.

use hato_core::{Clock, SystemClock};
use hato_protection::rules::{
    NoDirectory, Rule, RuleAction, RuleMessage, RuleSet, Scope, validate_all,
};

fn rules() -> Vec<Rule> {
    #[derive(serde::Deserialize)]
    struct Export {
        rules: Vec<Rule>,
    }
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../bench/content-rules.json"
    );
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str::<Export>(&text).unwrap().rules
}

#[test]
fn the_bench_rules_are_fifty_valid_rules_of_every_kind() {
    let mut rules = rules();
    assert_eq!(rules.len(), 50);
    validate_all(&mut rules).unwrap();
    let any = |f: &dyn Fn(&Rule) -> bool| rules.iter().any(f);
    assert!(any(&|r| !r.conditions.sender_domain_is.is_empty()));
    assert!(any(
        &|r| r.conditions.from_scope == Some(Scope::NotInOrganization)
    ));
    assert!(any(&|r| !r.conditions.subject_contains_words.is_empty()));
    assert!(any(&|r| !r
        .conditions
        .subject_or_body_contains_words
        .is_empty()));
    assert!(any(&|r| !r.conditions.subject_matches_patterns.is_empty()));
    assert!(any(&|r| !r
        .conditions
        .subject_or_body_matches_patterns
        .is_empty()));
    assert!(any(&|r| !r
        .conditions
        .attachment_extension_matches_words
        .is_empty()));
    assert!(any(&|r| !r
        .conditions
        .attachment_name_matches_patterns
        .is_empty()));
    assert!(any(&|r| !r.conditions.header_contains_words.is_empty()));
    assert!(any(&|r| !r.conditions.header_matches_patterns.is_empty()));
    assert!(any(&|r| r.conditions.message_size_over.is_some()));
    assert!(any(&|r| !r.conditions.recipient_domain_is.is_empty()));
    assert!(any(&|r| !r.exceptions.is_empty()));
    assert!(any(&|r| r.mode != hato_protection::rules::Mode::Enforce));
    // Compiles as the server compiles a tenant's rules.
    RuleSet::compile(rules).unwrap();
}

fn evaluate(raw: &str) -> Vec<RuleAction> {
    evaluate_from(raw, [127, 0, 0, 1])
}

fn evaluate_from(raw: &str, ip: [u8; 4]) -> Vec<RuleAction> {
    let set = RuleSet::compile(rules()).unwrap();
    let m = RuleMessage::from_message(
        raw.replace('\n', "\r\n").as_bytes(),
        Some("sender@example.org".into()),
        vec!["user@bench.test".into()],
        Some(ip.into()),
    );
    let e = set.evaluate(&m, &NoDirectory, SystemClock.now());
    e.recipients[0]
        .decisions
        .iter()
        .map(|d| d.action.clone())
        .collect()
}

#[test]
fn the_bench_rules_act_on_mail_as_named() {
    // Outside mail is tagged; a Precedence: bulk newsletter too.
    let plain = evaluate(
        "From: a@example.org\nTo: user@bench.test\nSubject: Lunch\nPrecedence: bulk\n\nSee you at noon.\n",
    );
    assert!(plain.contains(&RuleAction::SetHeader {
        name: "X-Bench-External".into(),
        value: "yes".into()
    }));
    assert!(plain.contains(&RuleAction::SetHeader {
        name: "X-Bench-Bulk".into(),
        value: "yes".into()
    }));
    assert!(!plain.contains(&RuleAction::Quarantine));

    // Pharmacy spam from outside is quarantined.
    let spam = evaluate(
        "From: deals@example.org\nTo: user@bench.test\nSubject: Cheap VIAGRA today\n\nBuy now.\n",
    );
    assert!(spam.contains(&RuleAction::Quarantine), "{spam:?}");

    // An executable attachment is refused with the rule's own code.
    let exe = evaluate(concat!(
        "From: a@example.org\nTo: user@bench.test\nSubject: tool\nMIME-Version: 1.0\n",
        "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nhere\n",
        "--b\nContent-Type: application/octet-stream\n",
        "Content-Disposition: attachment; filename=setup.exe\n",
        "Content-Transfer-Encoding: base64\n\nAAAA\n--b--\n",
    ));
    assert!(
        exe.iter().any(|a| matches!(
            a,
            RuleAction::Reject { enhanced_code, .. } if enhanced_code == "5.7.902"
        )),
        "{exe:?}"
    );

    // The trusted partner, from its network, bypasses filtering and stops the rules after it;
    // the same sender from elsewhere is filtered as anyone.
    let partner = "From: pay@payroll-partner.example\nTo: user@bench.test\nSubject: viagra\n\nx\n";
    let trusted = evaluate_from(partner, [203, 0, 113, 7]);
    assert_eq!(trusted, vec![RuleAction::SetScl { scl: -1 }]);
    assert!(evaluate(partner).contains(&RuleAction::Quarantine));
}
