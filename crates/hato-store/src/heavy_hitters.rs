//! A heavy-hitters summary: Metwally, Agrawal and El Abbadi's Space-Saving ("Efficient
//! Computation of Frequent and Top-k Elements in Data Streams", ICDT 2005), for Home's top
//! senders and recipients. A fixed number of counters whatever the number of distinct
//! addresses: a spammer sending from 400,000 addresses costs the same memory, storage and read
//! time as one sending from ten.
//!
//! Each counter holds an upper bound (`count`) and how much of it may be borrowed from the
//! address it replaced (`error`), so `count - error <= true count <= count`. Every address whose
//! true count exceeds `n / capacity` (`n` the items offered) holds a counter. Summaries of
//! separate hours merge (Agarwal et al., "Mergeable Summaries", PODS 2012): an address absent
//! from a full summary may have had up to that summary's smallest count there.

use std::collections::{BTreeSet, HashMap};

/// One address's counter: `count - error <= true count <= count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counter {
    pub count: u64,
    pub error: u64,
}

/// A Space-Saving summary of at most `capacity` counters.
#[derive(Clone, Debug)]
pub struct SpaceSaving {
    capacity: usize,
    counters: HashMap<String, Counter>,
    /// The counters by count (ties: the greatest address first, so the smallest is found
    /// in O(log capacity) and the choice does not depend on a hash map's order).
    order: BTreeSet<(u64, std::cmp::Reverse<String>)>,
}

impl SpaceSaving {
    pub fn new(capacity: usize) -> Self {
        SpaceSaving {
            capacity: capacity.max(1),
            counters: HashMap::new(),
            order: BTreeSet::new(),
        }
    }

    /// A summary from stored counters; beyond `capacity` (a row too many), the largest kept.
    pub fn from_counters(
        capacity: usize,
        counters: impl IntoIterator<Item = (String, Counter)>,
    ) -> Self {
        let mut all: Vec<(String, Counter)> = counters.into_iter().collect();
        let capacity = capacity.max(1);
        if all.len() > capacity {
            all.sort_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(&b.0)));
            all.truncate(capacity);
        }
        let order = all
            .iter()
            .map(|(a, c)| (c.count, std::cmp::Reverse(a.clone())))
            .collect();
        SpaceSaving {
            capacity,
            counters: all.into_iter().collect(),
            order,
        }
    }

    /// Counts one occurrence of `item`; the address whose counter it took over, if any.
    /// O(log capacity).
    pub fn offer(&mut self, item: &str) -> Option<String> {
        if let Some(c) = self.counters.get_mut(item) {
            let key = std::cmp::Reverse(item.to_string());
            self.order.remove(&(c.count, key.clone()));
            c.count += 1;
            self.order.insert((c.count, key));
            return None;
        }
        let (count, error, victim) = if self.counters.len() < self.capacity {
            (1, 0, None)
        } else {
            // The smallest counter goes to the newcomer, which inherits its count as its
            // error (Space-Saving's replacement).
            let (min, std::cmp::Reverse(victim)) = self.order.pop_first()?;
            self.counters.remove(&victim);
            (min + 1, min, Some(victim))
        };
        self.counters
            .insert(item.to_string(), Counter { count, error });
        self.order
            .insert((count, std::cmp::Reverse(item.to_string())));
        victim
    }

    pub fn get(&self, item: &str) -> Option<Counter> {
        self.counters.get(item).copied()
    }

    pub fn len(&self) -> usize {
        self.counters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counters.is_empty()
    }

    pub fn counters(&self) -> impl Iterator<Item = (&str, Counter)> {
        self.counters.iter().map(|(k, c)| (k.as_str(), *c))
    }
}

/// One address's bounds over several summaries: `lower <= true count <= upper`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Merged {
    pub address: String,
    pub lower: u64,
    pub upper: u64,
}

/// The `limit` addresses with the largest guaranteed counts over `summaries` (each a list of
/// counters of one summary of `capacity`), most first (ties: the larger upper bound, then the
/// address). Ranked by the guaranteed count so that addresses which merely inherited a
/// spammer's counters (large `count`, as large an `error`) never push out ones that really sent.
pub fn merge_top(
    summaries: &[Vec<(String, Counter)>],
    capacity: usize,
    limit: usize,
) -> Vec<Merged> {
    // An address absent from a full summary may have had up to its smallest count there.
    let floors: Vec<u64> = summaries
        .iter()
        .map(|s| {
            if s.len() >= capacity {
                s.iter().map(|(_, c)| c.count).min().unwrap_or(0)
            } else {
                0
            }
        })
        .collect();
    let all_floors: u64 = floors.iter().sum();
    let mut by_address: HashMap<&str, (u64, u64, u64)> = HashMap::new();
    for (s, floor) in summaries.iter().zip(&floors) {
        for (address, c) in s {
            let e = by_address.entry(address.as_str()).or_default();
            e.0 += c.count.saturating_sub(c.error);
            e.1 += c.count;
            e.2 += floor;
        }
    }
    let mut out: Vec<Merged> = by_address
        .into_iter()
        .map(|(address, (lower, upper, floors_present))| Merged {
            address: address.to_string(),
            lower,
            upper: upper + (all_floors - floors_present),
        })
        .collect();
    out.sort_by(|a, b| {
        b.lower
            .cmp(&a.lower)
            .then_with(|| b.upper.cmp(&a.upper))
            .then_with(|| a.address.cmp(&b.address))
    });
    out.truncate(limit);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64*: a deterministic stream without a dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// A skewed stream: `heavy` senders with Zipf-like weights mixed at random with
    /// `distinct` addresses seen once each (a spammer's), and the exact counts.
    fn skewed(seed: u64, heavy: usize, distinct: usize) -> (Vec<String>, HashMap<String, u64>) {
        let mut rng = Rng(seed | 1);
        let mut items = Vec::new();
        for h in 0..heavy {
            for _ in 0..(800 / (h + 1) + rng.below(20) as usize) {
                items.push(format!("heavy{h}@real.test"));
            }
        }
        for d in 0..distinct {
            items.push(format!("s{d}@spam{}.test", rng.below(1000)));
        }
        // Fisher–Yates.
        for i in (1..items.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
        let mut exact = HashMap::new();
        for i in &items {
            *exact.entry(i.clone()).or_insert(0) += 1;
        }
        (items, exact)
    }

    #[test]
    fn an_exact_count_while_there_is_room() {
        let mut s = SpaceSaving::new(4);
        for i in ["a", "b", "a", "c", "a", "b"] {
            assert_eq!(s.offer(i), None);
        }
        assert_eq!(s.get("a"), Some(Counter { count: 3, error: 0 }));
        let top = merge_top(
            &[s.counters().map(|(k, c)| (k.to_string(), c)).collect()],
            4,
            2,
        );
        assert_eq!(
            top,
            [
                Merged {
                    address: "a".into(),
                    lower: 3,
                    upper: 3
                },
                Merged {
                    address: "b".into(),
                    lower: 2,
                    upper: 2
                }
            ]
        );
    }

    #[test]
    fn a_full_summary_replaces_its_smallest_counter() {
        let mut s = SpaceSaving::new(2);
        s.offer("a");
        s.offer("a");
        s.offer("b");
        assert_eq!(s.offer("c"), Some("b".into()));
        assert_eq!(s.get("c"), Some(Counter { count: 2, error: 1 }));
        assert_eq!(s.len(), 2);
    }

    /// The property, over many seeds, each stream split in hours merged back: the summary never
    /// holds more than its capacity; every bound holds; every address more frequent than
    /// `n / capacity` in an hour keeps its counter; and the top ten by guaranteed count are the
    /// real heavy senders in their real order, with counts within the bound's reach.
    #[test]
    fn bounded_and_right_on_skewed_streams() {
        const CAPACITY: usize = 64;
        for seed in 1..40u64 {
            let (items, exact) = skewed(seed * 7919, 10, 5_000 + (seed as usize % 7) * 1_000);
            let hours: Vec<&[String]> = items.chunks(items.len() / 6 + 1).collect();
            let mut summaries = Vec::new();
            for hour in &hours {
                let mut s = SpaceSaving::new(CAPACITY);
                let mut hour_exact: HashMap<&str, u64> = HashMap::new();
                for i in *hour {
                    s.offer(i);
                    *hour_exact.entry(i).or_default() += 1;
                    assert!(s.len() <= CAPACITY);
                }
                let n = hour.len() as u64;
                for (a, c) in s.counters() {
                    let t = hour_exact[a];
                    assert!(
                        c.count - c.error <= t && t <= c.count,
                        "seed {seed}: {a} {c:?} {t}"
                    );
                }
                for (a, t) in &hour_exact {
                    if *t > n / CAPACITY as u64 {
                        assert!(s.get(a).is_some(), "seed {seed}: {a} ({t} of {n}) lost");
                    }
                }
                summaries.push(
                    s.counters()
                        .map(|(k, c)| (k.to_string(), c))
                        .collect::<Vec<_>>(),
                );
            }
            let top = merge_top(&summaries, CAPACITY, 10);
            assert_eq!(top.len(), 10);
            for m in &top {
                let t = exact[&m.address];
                assert!(m.lower <= t && t <= m.upper, "seed {seed}: {m:?} vs {t}");
            }
            let mut real: Vec<(&String, &u64)> = exact.iter().collect();
            real.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
            // Space-Saving's bound, summed over the hours: every guaranteed count is short of
            // the truth by at most the stream's length over the capacity; so an address left
            // out sent at most that more than the tenth listed is sure of (a spammer's
            // single-use addresses never push out one that really sent more).
            let bound = items.len() as u64 / CAPACITY as u64;
            let got: Vec<&String> = top.iter().map(|m| &m.address).collect();
            for (a, t) in &real {
                if !got.contains(a) {
                    assert!(
                        **t <= top[9].lower + bound,
                        "seed {seed}: {a} ({t}) left out of {top:?}"
                    );
                }
            }
            // The two heaviest are far apart: in their order.
            assert_eq!(got[..2], [real[0].0, real[1].0], "seed {seed}");
            for m in &top {
                let t = exact[&m.address];
                assert!(
                    t - m.lower <= bound,
                    "seed {seed}: {m:?} vs {t} (bound {bound})"
                );
            }
        }
    }

    #[test]
    fn stored_counters_beyond_the_capacity_keep_the_largest() {
        let s = SpaceSaving::from_counters(
            2,
            [("a", 5), ("b", 1), ("c", 3)]
                .map(|(a, n)| (a.to_string(), Counter { count: n, error: 0 })),
        );
        assert_eq!(s.len(), 2);
        assert!(s.get("b").is_none());
    }
}
