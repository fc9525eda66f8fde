//! Tenants' transport rules in the embedded store: priorities unique and contiguous, shifting as
//! in Exchange, hit counters, versions, imports all or nothing.

use hato_store::*;
use std::sync::Arc;

fn new(name: &str, priority: Option<u32>) -> NewTransportRule {
    NewTransportRule {
        name: name.into(),
        priority,
        enabled: true,
        definition: format!(r#"{{"name":"{name}"}}"#),
    }
}

fn names(s: &SqliteStore, t: i64) -> Vec<(String, u32)> {
    s.transport_rules(t)
        .unwrap()
        .into_iter()
        .map(|r| (r.name, r.priority))
        .collect()
}

fn open() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(dir.path()).unwrap();
    (dir, s)
}

#[test]
fn inserting_at_a_priority_shifts_the_others_down_and_removing_closes_the_gap() {
    let (_d, s) = open();
    let t = s.create_tenant("contoso").wait().unwrap().id;
    assert_eq!(s.transport_rules_version(t).unwrap(), 0);
    s.add_transport_rule(t, new("a", None)).wait().unwrap();
    s.add_transport_rule(t, new("b", None)).wait().unwrap();
    let c = s.add_transport_rule(t, new("c", Some(0))).wait().unwrap();
    assert_eq!(c.priority, 0);
    s.add_transport_rule(t, new("d", Some(2))).wait().unwrap();
    let order = |v: &[(&str, u32)]| -> Vec<(String, u32)> {
        v.iter().map(|(n, p)| (n.to_string(), *p)).collect()
    };
    assert_eq!(
        names(&s, t),
        order(&[("c", 0), ("a", 1), ("d", 2), ("b", 3)])
    );
    // Beyond the last place: refused, naming the range.
    let e = s
        .add_transport_rule(t, new("e", Some(9)))
        .wait()
        .unwrap_err();
    assert_eq!(
        e,
        StoreError::Invalid("priority 9 of rule e: the tenant's rules take 0 to 4".into())
    );
    // Names are unique whatever their case.
    assert!(matches!(
        s.add_transport_rule(t, new("A", None)).wait().unwrap_err(),
        StoreError::Conflict(_)
    ));
    // Moving a rule shifts the ones between.
    s.change_transport_rule(
        t,
        "b",
        TransportRuleChange {
            priority: Some(0),
            ..Default::default()
        },
    )
    .wait()
    .unwrap();
    assert_eq!(
        names(&s, t),
        order(&[("b", 0), ("c", 1), ("a", 2), ("d", 3)])
    );
    s.change_transport_rule(
        t,
        "B",
        TransportRuleChange {
            priority: Some(3),
            enabled: Some(false),
            name: Some("bee".into()),
            ..Default::default()
        },
    )
    .wait()
    .unwrap();
    assert_eq!(
        names(&s, t),
        order(&[("c", 0), ("a", 1), ("d", 2), ("bee", 3)])
    );
    assert!(!s.transport_rule(t, "bee").unwrap().unwrap().enabled);
    s.remove_transport_rule(t, "a").wait().unwrap();
    assert_eq!(names(&s, t), order(&[("c", 0), ("d", 1), ("bee", 2)]));
    assert!(matches!(
        s.remove_transport_rule(t, "a").wait().unwrap_err(),
        StoreError::NotFound(_)
    ));
    assert!(s.transport_rules_version(t).unwrap() >= 7);
}

#[test]
fn rules_are_per_tenant_and_go_with_their_tenant() {
    let (_d, s) = open();
    let t = s.create_tenant("contoso").wait().unwrap().id;
    let u = s.create_tenant("fabrikam").wait().unwrap().id;
    s.add_transport_rule(t, new("same", None)).wait().unwrap();
    s.add_transport_rule(u, new("same", None)).wait().unwrap();
    assert_eq!(names(&s, u), [("same".to_string(), 0)]);
    assert!(s.remove_transport_rule(u, "other").wait().is_err());
    s.remove_tenant(t).wait().unwrap();
    assert!(s.transport_rules(t).unwrap().is_empty());
    assert_eq!(s.transport_rules(u).unwrap().len(), 1);
    assert!(matches!(
        s.add_transport_rule(t, new("x", None)).wait().unwrap_err(),
        StoreError::NotFound(_)
    ));
}

#[test]
fn concurrent_inserts_keep_priorities_unique_and_contiguous() {
    let (_d, s) = open();
    let s = Arc::new(s);
    let t = s.create_tenant("contoso").wait().unwrap().id;
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let s = s.clone();
            std::thread::spawn(move || {
                for j in 0..10 {
                    let at = if (i + j) % 2 == 0 { Some(0) } else { None };
                    s.add_transport_rule(t, new(&format!("r{i}-{j}"), at))
                        .wait()
                        .unwrap();
                }
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
    let prios: Vec<u32> = s
        .transport_rules(t)
        .unwrap()
        .iter()
        .map(|r| r.priority)
        .collect();
    assert_eq!(prios, (0..80).collect::<Vec<u32>>());
}

#[test]
fn a_tenant_holds_at_most_300_rules() {
    let (_d, s) = open();
    let t = s.create_tenant("contoso").wait().unwrap().id;
    let rules: Vec<NewTransportRule> = (0..TRANSPORT_RULES_MAX)
        .map(|i| new(&format!("r{i}"), None))
        .collect();
    s.import_transport_rules(t, rules, true).wait().unwrap();
    assert!(matches!(
        s.add_transport_rule(t, new("one more", None))
            .wait()
            .unwrap_err(),
        StoreError::Invalid(_)
    ));
}

#[test]
fn hits_are_counted_without_moving_the_version() {
    let (_d, s) = open();
    let t = s.create_tenant("contoso").wait().unwrap().id;
    let a = s.add_transport_rule(t, new("a", None)).wait().unwrap();
    let b = s.add_transport_rule(t, new("b", None)).wait().unwrap();
    let v = s.transport_rules_version(t).unwrap();
    s.count_transport_rule_hits(vec![(a.id, 3), (b.id, 1), (999, 5)])
        .wait()
        .unwrap();
    s.count_transport_rule_hits(vec![(a.id, 1)]).wait().unwrap();
    let hits: Vec<u64> = s
        .transport_rules(t)
        .unwrap()
        .iter()
        .map(|r| r.hits)
        .collect();
    assert_eq!(hits, [4, 1]);
    assert_eq!(s.transport_rules_version(t).unwrap(), v);
}

#[test]
fn imports_replace_or_merge_and_change_nothing_when_one_fails() {
    let (_d, s) = open();
    let t = s.create_tenant("contoso").wait().unwrap().id;
    s.add_transport_rule(t, new("keep", None)).wait().unwrap();
    s.add_transport_rule(t, new("update", None)).wait().unwrap();
    // Merge: "update" is replaced in place or moved, "new" goes to its priority.
    let mut changed = new("update", Some(0));
    changed.definition = r#"{"name":"update","comments":"v2"}"#.into();
    s.import_transport_rules(t, vec![changed, new("new", Some(1))], false)
        .wait()
        .unwrap();
    assert_eq!(
        names(&s, t),
        [("update".into(), 0), ("new".into(), 1), ("keep".into(), 2)]
    );
    assert!(
        s.transport_rule(t, "update")
            .unwrap()
            .unwrap()
            .definition
            .contains("v2")
    );
    // An import that fails part way (two rules of one name) leaves everything as it was.
    let before = s.transport_rules(t).unwrap();
    let v = s.transport_rules_version(t).unwrap();
    let e = s
        .import_transport_rules(t, vec![new("x", None), new("X", None)], true)
        .wait()
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e:?}");
    assert_eq!(s.transport_rules(t).unwrap(), before);
    assert_eq!(s.transport_rules_version(t).unwrap(), v);
    // Replace: exactly the imported rules.
    s.import_transport_rules(t, vec![new("z", None), new("y", Some(0))], true)
        .wait()
        .unwrap();
    assert_eq!(names(&s, t), [("y".into(), 0), ("z".into(), 1)]);
}
