//! Answers read from the store, kept in memory while the store's policy generation stays
//! ([`crate::MalwareFilterStore::content_policy_generation`]): the generation moves after
//! every committed change to what these answers come from, before the writer tells the change's
//! caller, so an answer kept under the current generation is the answer a read would give now.
//! A store that cannot know of every change (another process may write) has no generation, and
//! nothing is kept: every lookup reads.
//!
//! This takes the store reads (and the hop to a blocking thread each needs) off the per-message
//! path of relayed and submitted mail: the sender's domain at MAIL FROM, the recipient's domain
//! at RCPT, whether the sender is restricted, the tenant's outbound spam policy at the end of
//! DATA (`bench/relay.sh`).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};

/// A map from `K` to `V` valid for one generation; bounded (an outside sender chooses the keys
/// some caches are looked up by: the domain of MAIL FROM): when full it starts again empty.
pub struct GenerationCache<K, V> {
    held: Mutex<Held<K, V>>,
    capacity: usize,
}

struct Held<K, V> {
    generation: Option<u64>,
    map: HashMap<K, V>,
}

impl<K: Eq + Hash, V: Clone> GenerationCache<K, V> {
    pub fn new(capacity: usize) -> Self {
        GenerationCache {
            held: Mutex::new(Held {
                generation: None,
                map: HashMap::new(),
            }),
            capacity: capacity.max(1),
        }
    }

    /// The answer kept for `key` under `generation` (read before the lookup), if any.
    pub fn get(&self, generation: Option<u64>, key: &K) -> Option<V> {
        let generation = generation?;
        let held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if held.generation != Some(generation) {
            return None;
        }
        held.map.get(key).cloned()
    }

    /// Keeps `value`, read after `generation` was: if the generation has moved meanwhile, the
    /// entry is kept under the older one and never served.
    pub fn insert(&self, generation: Option<u64>, key: K, value: V) {
        self.merge(generation, key, value, |kept, new| *kept = new);
    }

    /// Runs `f` on the answer kept for `key` under `generation`, under the cache's lock (so
    /// what `f` does is ordered with every other update of the cache); `None` when there is
    /// none.
    pub fn update<R>(
        &self,
        generation: Option<u64>,
        key: &K,
        f: impl FnOnce(&mut V) -> R,
    ) -> Option<R> {
        let generation = generation?;
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if held.generation != Some(generation) {
            return None;
        }
        held.map.get_mut(key).map(f)
    }

    /// Keeps `value` as [`GenerationCache::insert`] does, but when an answer is kept for `key`
    /// under the same generation already, `combine` decides what stays (two lookups that raced).
    pub fn merge(
        &self,
        generation: Option<u64>,
        key: K,
        value: V,
        combine: impl FnOnce(&mut V, V),
    ) {
        let Some(generation) = generation else {
            return;
        };
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if held.generation != Some(generation) {
            if held.generation.is_some_and(|g| g > generation) {
                // A newer generation's answers are there already; this one is older.
                return;
            }
            held.generation = Some(generation);
            held.map.clear();
        }
        if let Some(kept) = held.map.get_mut(&key) {
            combine(kept, value);
            return;
        }
        if held.map.len() >= self.capacity {
            held.map.clear();
        }
        held.map.insert(key, value);
    }

    /// Forgets the answer kept for `key`, whatever its generation.
    pub fn remove(&self, key: &K) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.map.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_served_only_under_its_generation() {
        let cache = GenerationCache::new(8);
        cache.insert(Some(3), "a", 1);
        assert_eq!(cache.get(Some(3), &"a"), Some(1));
        assert_eq!(
            cache.get(Some(4), &"a"),
            None,
            "a change moved the generation"
        );
        cache.insert(Some(4), "b", 2);
        assert_eq!(cache.get(Some(4), &"a"), None, "the older answers are gone");
        assert_eq!(cache.get(Some(4), &"b"), Some(2));
        // Read before a change, kept after: never served under the newer generation.
        cache.insert(Some(3), "a", 9);
        assert_eq!(cache.get(Some(4), &"a"), None);
        assert_eq!(cache.get(Some(3), &"a"), None);
    }

    #[test]
    fn an_update_changes_only_an_answer_of_the_current_generation() {
        let cache = GenerationCache::new(8);
        assert_eq!(cache.update(Some(1), &"a", |v| *v += 1), None);
        cache.insert(Some(1), "a", 1);
        assert_eq!(
            cache.update(Some(1), &"a", |v| {
                *v += 1;
                *v
            }),
            Some(2)
        );
        assert_eq!(cache.get(Some(1), &"a"), Some(2));
        assert_eq!(cache.update(Some(2), &"a", |v| *v += 1), None);
        assert_eq!(cache.update(None, &"a", |v| *v += 1), None);
        cache.merge(Some(1), "a", 5, |kept, new| *kept = (*kept).max(new));
        assert_eq!(cache.get(Some(1), &"a"), Some(5));
        cache.merge(Some(1), "a", 3, |kept, new| *kept = (*kept).max(new));
        assert_eq!(cache.get(Some(1), &"a"), Some(5), "the larger stays");
        cache.remove(&"a");
        assert_eq!(cache.get(Some(1), &"a"), None);
    }

    #[test]
    fn a_store_without_a_generation_keeps_nothing() {
        let cache = GenerationCache::new(8);
        cache.insert(None, "a", 1);
        assert_eq!(cache.get(None, &"a"), None);
        assert_eq!(cache.get(Some(0), &"a"), None);
    }

    #[test]
    fn it_never_holds_more_than_its_capacity() {
        let cache = GenerationCache::new(4);
        for i in 0..1000 {
            cache.insert(Some(1), i, i);
            assert!(cache.held.lock().unwrap().map.len() <= 4);
        }
        assert_eq!(cache.get(Some(1), &999), Some(999));
    }
}
