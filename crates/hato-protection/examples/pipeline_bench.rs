//! The content pipeline's speed per core, for `bench/content.sh` part 2a: per message what the
//! SMTP path (`hato_transport::content`) does on its blocking steps — one parse of the message
//! (`RuleMessage::parser`) shared by the built-in malware scan (`Scanner::scan_builtin_parsed`)
//! and the rules' view of the message (`RuleMessage::from_parsed` with the envelope's sender,
//! the recipient and the client's IP), the tenant's transport rules
//! (`RuleSet::evaluate`, the rules of RULES_JSON, compiled once as the server's cache does) and
//! the malware decision under the default policy (`decide`) — on one thread, RUNS times. Prints
//! per run the messages, the malware verdicts that were not clean, the messages some rule
//! matched, the messages rejected, the wall time and the thread's CPU time, and the messages per
//! CPU-second (= per core).
//!
//! Not measured here (the server's share, in part 2b): reading the tenant's policies and rules
//! from the store (cached), the SMTP session, the commit. The directory the rules ask
//! (`FromScope`, `SentToScope`, group membership, attributes) is a small in-memory map of the
//! tenant's recipients, groups and attributes, as `hato_directory`'s index answers in memory.
//!
//! Usage: pipeline_bench SIGNATURE_DIR CORPUS_DIR RULES_JSON [RUNS [LIMIT]]
//!   RULES_JSON: a `hato rule export` document (`{"rules": [...]}`), as `hato rule import`
//!   takes; LIMIT: only the first LIMIT files (sorted by path), 0 = all.

#[path = "shared/bench.rs"]
mod shared;

use hato_core::{Clock, SystemClock};
use hato_protection::malware::{MalwarePolicy, MalwareVerdict, Scanner, decide};
use hato_protection::rules::{Rule, RuleDirectory, RuleMessage, RuleSet, validate_all};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

/// The envelope every message has, the same as `bench/content_helper.py` sends over SMTP.
const ENVELOPE_FROM: &str = "sender@example.org";
const RECIPIENT: &str = "user@bench.test";
const CLIENT_IP: [u8; 4] = [127, 0, 0, 1];

/// The tenant's directory as the rules see it: its accepted domain, its recipients (mailboxes
/// and groups, the ones `bench/content.sh` creates and the rules name), group members and
/// directory attributes. Same answers as `hato_directory::rules::RuleDirectoryView`.
struct MapDirectory {
    accepted_domains: HashSet<String>,
    recipients: HashSet<String>,
    members: HashMap<String, HashSet<String>>,
    attributes: HashMap<(String, String), String>,
}

fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map_or("", |(_, d)| d)
}

impl MapDirectory {
    fn bench() -> Self {
        let own = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<HashSet<_>>();
        let mut members = HashMap::new();
        members.insert(
            "executives@bench.test".to_owned(),
            own(&["ceo@bench.test", "cfo@bench.test"]),
        );
        let mut attributes = HashMap::new();
        attributes.insert(
            ("cfo@bench.test".to_owned(), "Department".to_owned()),
            "Finance".to_owned(),
        );
        MapDirectory {
            accepted_domains: own(&["bench.test"]),
            recipients: own(&[
                "user@bench.test",
                "records@bench.test",
                "security@bench.test",
                "audit@bench.test",
                "support@bench.test",
                "ceo@bench.test",
                "cfo@bench.test",
                "executives@bench.test",
            ]),
            members,
            attributes,
        }
    }
}

impl RuleDirectory for MapDirectory {
    fn sender_in_organization(&self, address: &str, authenticated: bool) -> bool {
        self.recipients.contains(address)
            || (authenticated && self.accepted_domains.contains(domain_of(address)))
    }
    fn recipient_in_organization(&self, address: &str) -> bool {
        self.recipients.contains(address) || self.accepted_domains.contains(domain_of(address))
    }
    fn is_member_of(&self, address: &str, group: &str) -> bool {
        self.members.get(group).is_some_and(|m| m.contains(address))
    }
    fn attribute(&self, address: &str, attribute: &str) -> Option<String> {
        self.attributes
            .get(&(address.to_owned(), attribute.to_owned()))
            .cloned()
    }
}

/// The rules of an export document, checked as `hato rule import` checks them.
fn load_rules(path: &str) -> Result<Vec<Rule>, Box<dyn std::error::Error>> {
    #[derive(serde::Deserialize)]
    struct Export {
        rules: Vec<Rule>,
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let mut rules = serde_json::from_str::<Export>(&text)
        .map_err(|e| format!("{path}: not a rule export: {e}"))?
        .rules;
    validate_all(&mut rules).map_err(|e| format!("{path}: {e}"))?;
    Ok(rules)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(sigs), Some(corpus), Some(rules_json)) = (args.get(1), args.get(2), args.get(3))
    else {
        return Err(
            "usage: pipeline_bench SIGNATURE_DIR CORPUS_DIR RULES_JSON [RUNS [LIMIT]]".into(),
        );
    };
    let runs: usize = args.get(4).map(|r| r.parse()).transpose()?.unwrap_or(5);
    let limit: usize = args.get(5).map(|r| r.parse()).transpose()?.unwrap_or(0);
    let store = shared::signatures(sigs)?;
    let rules = load_rules(rules_json)?;
    let count = rules.len();
    let set = RuleSet::compile(rules)?;
    eprintln!("rules: {count} from {rules_json}");
    let messages = shared::corpus(corpus, limit)?;
    let scanner = Scanner {
        signatures: Arc::new(store),
        ..Scanner::default()
    };
    let policy = MalwarePolicy::default();
    let directory = MapDirectory::bench();
    let clock = SystemClock;
    let ip = Some(IpAddr::from(CLIENT_IP));
    // How often each rule matched in the first run, to show what the set does with the corpus.
    let mut hits: HashMap<String, usize> = HashMap::new();
    for run in 1..=runs {
        let cpu0 = shared::cpu_ns();
        let t0 = Instant::now();
        let (mut malware, mut matched, mut rejected) = (0usize, 0usize, 0usize);
        for raw in &messages {
            let parsed = RuleMessage::parser().parse(raw.as_slice());
            let report = scanner.scan_builtin_parsed(raw, parsed.as_ref());
            let m = RuleMessage::from_parsed(
                raw,
                parsed.as_ref(),
                Some(ENVELOPE_FROM.to_owned()),
                vec![RECIPIENT.to_owned()],
                ip,
            );
            let evaluation = set.evaluate(&m, &directory, clock.now());
            let decision = decide(&report, &policy);
            if !matches!(decision.verdict, MalwareVerdict::Clean) {
                malware += 1;
            }
            if evaluation.recipients.iter().any(|r| !r.hits.is_empty()) {
                matched += 1;
            }
            if run == 1 {
                for hit in evaluation.recipients.iter().flat_map(|r| &r.hits) {
                    *hits.entry(hit.rule.clone()).or_default() += 1;
                }
            }
            if evaluation
                .recipients
                .iter()
                .any(|r| r.rejection().is_some())
            {
                rejected += 1;
            }
        }
        let wall = t0.elapsed().as_secs_f64();
        let cpu = (shared::cpu_ns() - cpu0) as f64 / 1e9;
        println!(
            "run {run}: messages {} malware_or_blocked {malware} rule_matched {matched} rule_rejected {rejected} wall_s {wall:.3} cpu_s {cpu:.3} msgs_per_cpu_s {:.0}",
            messages.len(),
            messages.len() as f64 / cpu.max(1e-9)
        );
        if run == 1 {
            let mut hits: Vec<_> = hits.iter().collect();
            hits.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let list: Vec<String> = hits.iter().map(|(r, n)| format!("{r} {n}")).collect();
            eprintln!(
                "rules that matched in run 1 ({} of {count}), messages each: {}",
                hits.len(),
                list.join("; ")
            );
        }
    }
    Ok(())
}
