//! What the integrator keeps between messages: each tenant's compiled rules, current while the
//! store's version of its rules stays ([`RuleSetCache`]), and the hit counts not yet written
//! ([`HitBatch`], flushed with one store write for many messages).

use super::Rule;
use super::eval::{Evaluation, RuleSet};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Tenants' compilations that may run at once (each tenant always takes the same turn).
const COMPILE_TURNS: usize = 16;

/// Compiled rule sets by tenant, each with the version it was compiled at.
#[derive(Default)]
pub struct RuleSetCache {
    sets: Mutex<HashMap<i64, (i64, Arc<RuleSet>)>>,
    /// One compilation at a time per tenant: the messages that arrive while a tenant's rules
    /// compile (after a start or a change, under load: every session's next message) wait for
    /// that one compilation and take its set, instead of each compiling the same rules — 50
    /// rules take milliseconds of CPU, twenty of them at once starved the server for seconds.
    turns: [Mutex<()>; COMPILE_TURNS],
}

impl RuleSetCache {
    pub fn new() -> Self {
        RuleSetCache::default()
    }

    fn cached(&self, tenant: i64, version: i64) -> Option<Arc<RuleSet>> {
        let sets = self.sets.lock().ok()?;
        let (v, set) = sets.get(&tenant)?;
        (*v == version).then(|| set.clone())
    }

    /// The tenant's rules at `version` (the store's `transport_rules_version`): the cached set
    /// when it is that version's, else `load`ed (store id, rule) and compiled once.
    pub fn get<E>(
        &self,
        tenant: i64,
        version: i64,
        load: impl FnOnce() -> Result<Vec<(i64, Rule)>, E>,
    ) -> Result<Arc<RuleSet>, E> {
        if let Some(set) = self.cached(tenant, version) {
            return Ok(set);
        }
        // Compiled outside the cache's lock: other tenants' messages do not wait for it
        // (only those of tenants sharing the turn, while it compiles).
        let turn = &self.turns[tenant.rem_euclid(COMPILE_TURNS as i64) as usize];
        let _turn = turn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Compiled by the message that had the turn before this one.
        if let Some(set) = self.cached(tenant, version) {
            return Ok(set);
        }
        let set = Arc::new(RuleSet::from_stored(load()?));
        if let Ok(mut sets) = self.sets.lock() {
            sets.insert(tenant, (version, set.clone()));
        }
        Ok(set)
    }
}

/// Hit counts gathered from evaluations, taken for one store write
/// (`count_transport_rule_hits`).
#[derive(Default)]
pub struct HitBatch {
    counts: Mutex<HashMap<i64, u64>>,
}

impl HitBatch {
    pub fn new() -> Self {
        HitBatch::default()
    }

    /// Counts the rules an evaluation matched (once per message).
    pub fn add(&self, evaluation: &Evaluation) {
        if let Ok(mut counts) = self.counts.lock() {
            for (id, n) in evaluation.hit_counts() {
                *counts.entry(id).or_default() += n;
            }
        }
    }

    /// The counts so far, emptied.
    pub fn take(&self) -> Vec<(i64, u64)> {
        let mut out: Vec<(i64, u64)> = self
            .counts
            .lock()
            .map(|mut c| c.drain().collect())
            .unwrap_or_default();
        out.sort_unstable();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{NoDirectory, RuleMessage};
    use hato_core::Timestamp;
    use std::cell::Cell;

    fn rule(name: &str) -> Rule {
        let mut r = Rule::named(name);
        r.actions.set_scl = Some(1);
        r
    }

    #[test]
    fn a_tenants_rules_are_compiled_once_per_version_and_hits_are_batched() {
        let cache = RuleSetCache::new();
        let loads = Cell::new(0);
        let load = |rules: Vec<(i64, Rule)>| {
            loads.set(loads.get() + 1);
            Ok::<_, ()>(rules)
        };
        let a = cache.get(1, 5, || load(vec![(10, rule("a"))])).unwrap();
        let again = cache.get(1, 5, || load(vec![])).unwrap();
        assert!(Arc::ptr_eq(&a, &again));
        assert_eq!(loads.get(), 1);
        // A new version, or another tenant, loads again.
        let b = cache
            .get(1, 6, || load(vec![(10, rule("a")), (11, rule("b"))]))
            .unwrap();
        assert_eq!(b.len(), 2);
        cache.get(2, 5, || load(vec![])).unwrap();
        assert_eq!(loads.get(), 3);
        assert_eq!(
            cache.get(3, 1, || Err::<Vec<(i64, Rule)>, _>("down")).err(),
            Some("down")
        );

        // Many threads asking at once for a version not compiled yet: compiled once.
        let loads = std::sync::atomic::AtomicUsize::new(0);
        let sets: Vec<Arc<RuleSet>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        cache
                            .get(1, 7, || {
                                loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                // Long enough for the others to arrive while it compiles.
                                std::thread::sleep(std::time::Duration::from_millis(50));
                                Ok::<_, ()>(vec![(10, rule("a"))])
                            })
                            .unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(sets.iter().all(|s| Arc::ptr_eq(s, &sets[0])));

        let batch = HitBatch::new();
        let m = RuleMessage {
            recipients: vec!["a@contoso.test".into(), "b@contoso.test".into()],
            ..RuleMessage::default()
        };
        for _ in 0..3 {
            batch.add(&b.evaluate(&m, &NoDirectory, Timestamp(0)));
        }
        assert_eq!(batch.take(), [(10, 3), (11, 3)]);
        assert!(batch.take().is_empty());
    }
}
