//! The heuristics model: gradient-boosted decision trees over the named heuristics.
//!
//! Friedman's gradient boosting ("Greedy function approximation", 2001) on the logistic loss,
//! each tree grown on the gradient and hessian of the loss with second-order leaf values and an
//! L2 penalty as in XGBoost (Chen & Guestrin, 2016). Trees rather than a linear model because
//! the heuristics say most in combination: a List-Id with an unsubscribe link is a mailing
//! list, the same link without the List-Id is bulk mail; a Re: subject is a reply only with
//! In-Reply-To. A linear model can weigh each only once.
//!
//! Deterministic: thresholds from the sorted values, histograms summed in sample order, the
//! first best split wins ties. Scoring walks `trees × depth` nodes (600 comparisons with the
//! defaults), nothing next to extraction.

use super::heuristics as hs;
use super::model::{ModelError, Reader};

/// Settings of the boosting.
#[derive(Clone, Debug, PartialEq)]
pub struct BoostOptions {
    pub trees: usize,
    pub depth: usize,
    /// Each tree's output is scaled by this (the learning rate).
    pub shrinkage: f32,
    /// L2 penalty on leaf values.
    pub lambda: f64,
    /// Least hessian (≈ weighted sample count × p(1−p)) on each side of a split.
    pub min_hessian: f64,
    /// Candidate thresholds per heuristic (quantiles of its values; binary ones have one).
    pub bins: usize,
}

impl Default for BoostOptions {
    fn default() -> Self {
        BoostOptions {
            trees: 200,
            depth: 3,
            shrinkage: 0.1,
            lambda: 1.0,
            min_hessian: 1.0,
            bins: 16,
        }
    }
}

/// Most trees and nodes per tree a stored model may hold (a damaged length must not make the
/// loader allocate without bound).
const MAX_TREES: u32 = 4096;
const MAX_NODES: u32 = 1023;
/// `feature` of a leaf.
const LEAF: u16 = u16::MAX;

/// One node. Nodes are stored parent first, so children always have higher indices (a walk
/// ends); `value` is what the node would output as a leaf, so a split's effect on the score is
/// the child's value minus the parent's (how a reason names the heuristics that mattered).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Node {
    feature: u16,
    threshold: f32,
    left: u16,
    right: u16,
    value: f32,
}

/// The boosted trees.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Forest {
    pub base: f32,
    pub trees: Vec<Vec<Node>>,
}

impl Forest {
    /// The score (log-odds of spam) of a message's heuristic values.
    pub fn predict(&self, x: &[f32; hs::COUNT]) -> f32 {
        let mut z = self.base;
        for t in &self.trees {
            z += walk(t, x, |_, _| {});
        }
        z
    }

    /// Each heuristic's share of the score (Saabas' path attribution: along the path of each
    /// tree, a split's change of value is its heuristic's). They sum to the score minus
    /// `base` and the roots' values.
    pub fn attribute(&self, x: &[f32; hs::COUNT]) -> [f32; hs::COUNT] {
        let mut out = [0f32; hs::COUNT];
        for t in &self.trees {
            walk(t, x, |feature, delta| {
                if let Some(o) = out.get_mut(feature) {
                    *o += delta;
                }
            });
        }
        out
    }

    /// Trains on `samples` (their heuristics and labels), deterministic.
    pub fn train(xs: &[&[f32; hs::COUNT]], y: &[bool], o: &BoostOptions) -> Forest {
        let n = xs.len();
        let pos = y.iter().filter(|s| **s).count();
        if n == 0 || pos == 0 || pos == n {
            let base = if pos == 0 { -4.0 } else { 4.0 };
            return Forest {
                base: if n == 0 { 0.0 } else { base },
                trees: Vec::new(),
            };
        }
        let base = (pos as f32 / (n - pos) as f32).ln();
        let thresholds = thresholds(xs, o.bins);
        // Each sample's bin per heuristic: the number of thresholds below its value.
        let bins: Vec<[u8; hs::COUNT]> = xs
            .iter()
            .map(|x| {
                let mut b = [0u8; hs::COUNT];
                for (f, t) in thresholds.iter().enumerate() {
                    b[f] = t.partition_point(|th| *th < x[f]) as u8;
                }
                b
            })
            .collect();
        let mut z = vec![base; n];
        let mut trees = Vec::with_capacity(o.trees);
        let mut g = vec![0f64; n];
        let mut h = vec![0f64; n];
        for _ in 0..o.trees {
            for i in 0..n {
                let p = 1.0 / (1.0 + (-f64::from(z[i]).clamp(-40.0, 40.0)).exp());
                g[i] = p - if y[i] { 1.0 } else { 0.0 };
                h[i] = (p * (1.0 - p)).max(1e-6);
            }
            let mut nodes = Vec::new();
            let grower = Grower {
                o,
                g: &g,
                h: &h,
                bins: &bins,
                thresholds: &thresholds,
            };
            grower.grow(&mut nodes, (0..n).collect(), 0);
            for (i, x) in xs.iter().enumerate() {
                z[i] += walk(&nodes, x, |_, _| {});
            }
            trees.push(nodes);
        }
        Forest { base, trees }
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.base.to_le_bytes());
        out.extend_from_slice(&(self.trees.len() as u32).to_le_bytes());
        for t in &self.trees {
            out.extend_from_slice(&(t.len() as u32).to_le_bytes());
            for n in t {
                out.extend_from_slice(&n.feature.to_le_bytes());
                out.extend_from_slice(&n.left.to_le_bytes());
                out.extend_from_slice(&n.right.to_le_bytes());
                out.extend_from_slice(&n.threshold.to_le_bytes());
                out.extend_from_slice(&n.value.to_le_bytes());
            }
        }
    }

    /// Reads what [`Forest::write`] wrote, checking that every walk stays inside its tree.
    pub fn read(r: &mut Reader<'_>) -> Result<Forest, ModelError> {
        let base = r.f32()?;
        let count = r.u32()?;
        if count > MAX_TREES {
            return Err(ModelError::Length("too many trees"));
        }
        let mut trees = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let len = r.u32()?;
            if len == 0 || len > MAX_NODES {
                return Err(ModelError::Length("bad tree size"));
            }
            let mut nodes = Vec::with_capacity(len as usize);
            for at in 0..len {
                let feature = r.u16()?;
                let left = r.u16()?;
                let right = r.u16()?;
                let threshold = r.f32()?;
                let value = r.f32()?;
                if feature != LEAF {
                    let inside = |c: u16| u32::from(c) > at && u32::from(c) < len;
                    if usize::from(feature) >= hs::COUNT || !inside(left) || !inside(right) {
                        return Err(ModelError::Length("bad tree node"));
                    }
                }
                nodes.push(Node {
                    feature,
                    threshold,
                    left,
                    right,
                    value,
                });
            }
            trees.push(nodes);
        }
        Ok(Forest { base, trees })
    }
}

/// Walks one tree to its leaf, telling `split` each split's heuristic and change of value;
/// returns the leaf's value. Children have higher indices than their parent (checked on load),
/// so the walk ends; a missing node ends it too.
fn walk(nodes: &[Node], x: &[f32; hs::COUNT], mut split: impl FnMut(usize, f32)) -> f32 {
    let mut at = 0usize;
    loop {
        let Some(n) = nodes.get(at) else {
            return 0.0;
        };
        if n.feature == LEAF {
            return n.value;
        }
        let f = usize::from(n.feature);
        let v = x.get(f).copied().unwrap_or(0.0);
        let next = usize::from(if v <= n.threshold { n.left } else { n.right });
        if next <= at {
            return n.value;
        }
        if let Some(c) = nodes.get(next) {
            split(f, c.value - n.value);
        }
        at = next;
    }
}

/// Candidate thresholds per heuristic: midpoints between its distinct values, or between
/// quantiles when there are more than `bins` of them.
fn thresholds(xs: &[&[f32; hs::COUNT]], bins: usize) -> Vec<Vec<f32>> {
    let bins = bins.clamp(2, 255);
    (0..hs::COUNT)
        .map(|f| {
            let mut v: Vec<f32> = xs.iter().map(|x| x[f]).collect();
            v.sort_by(f32::total_cmp);
            v.dedup();
            let mut t = Vec::new();
            if v.len() <= bins {
                for w in v.windows(2) {
                    t.push((w[0] + w[1]) / 2.0);
                }
            } else {
                for k in 1..bins {
                    let a = v[k * v.len() / bins - 1];
                    let b = v[k * v.len() / bins];
                    t.push((a + b) / 2.0);
                }
                t.dedup();
            }
            t
        })
        .collect()
}

struct Grower<'a> {
    o: &'a BoostOptions,
    g: &'a [f64],
    h: &'a [f64],
    bins: &'a [[u8; hs::COUNT]],
    thresholds: &'a [Vec<f32>],
}

impl Grower<'_> {
    /// Grows the subtree of the samples `idx` at `depth`; returns its root's index.
    fn grow(&self, nodes: &mut Vec<Node>, idx: Vec<usize>, depth: usize) -> u16 {
        let gs: f64 = idx.iter().map(|i| self.g[*i]).sum();
        let hs_: f64 = idx.iter().map(|i| self.h[*i]).sum();
        let me = nodes.len();
        let value = (-gs / (hs_ + self.o.lambda)) as f32 * self.o.shrinkage;
        nodes.push(Node {
            feature: LEAF,
            threshold: 0.0,
            left: 0,
            right: 0,
            value,
        });
        // Two more levels must fit the u16 indices and the stored-size cap.
        if depth >= self.o.depth || nodes.len() + 2 > MAX_NODES as usize {
            return me as u16;
        }
        let parent = gs * gs / (hs_ + self.o.lambda);
        let mut best: Option<(f64, usize, usize)> = None;
        let mut hist_g = Vec::new();
        let mut hist_h = Vec::new();
        for (f, ths) in self.thresholds.iter().enumerate() {
            let nb = ths.len() + 1;
            if nb < 2 {
                continue;
            }
            hist_g.clear();
            hist_g.resize(nb, 0f64);
            hist_h.clear();
            hist_h.resize(nb, 0f64);
            for &i in &idx {
                let b = usize::from(self.bins[i][f]);
                hist_g[b] += self.g[i];
                hist_h[b] += self.h[i];
            }
            let (mut gl, mut hl) = (0f64, 0f64);
            for b in 0..nb - 1 {
                gl += hist_g[b];
                hl += hist_h[b];
                let (gr, hr) = (gs - gl, hs_ - hl);
                if hl < self.o.min_hessian || hr < self.o.min_hessian {
                    continue;
                }
                let gain = gl * gl / (hl + self.o.lambda) + gr * gr / (hr + self.o.lambda) - parent;
                if gain > best.map_or(1e-9, |b| b.0) {
                    best = Some((gain, f, b));
                }
            }
        }
        let Some((_, f, b)) = best else {
            return me as u16;
        };
        let (li, ri): (Vec<usize>, Vec<usize>) = idx
            .into_iter()
            .partition(|i| usize::from(self.bins[*i][f]) <= b);
        let left = self.grow(nodes, li, depth + 1);
        let right = self.grow(nodes, ri, depth + 1);
        nodes[me] = Node {
            feature: f as u16,
            threshold: self.thresholds[f][b],
            left,
            right,
            value,
        };
        me as u16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x(values: &[(hs::H, f32)]) -> [f32; hs::COUNT] {
        let mut v = [0f32; hs::COUNT];
        for (h, val) in values {
            v[*h as usize] = *val;
        }
        v
    }

    #[test]
    fn trees_learn_an_interaction_a_linear_model_cannot() {
        use hs::H;
        // Spam: an unsubscribe link without a List-Id (bulk mail), or a List-Id without the
        // link; ham: both (a mailing list's footer) or neither (exclusive or: no weight per
        // heuristic separates them). Unequal counts, so the first split has a gain.
        let mut xs = Vec::new();
        let mut y = Vec::new();
        for (a, b, n, spam) in [
            (1, 0, 60, true),
            (0, 1, 20, true),
            (1, 1, 40, false),
            (0, 0, 80, false),
        ] {
            for _ in 0..n {
                xs.push(x(&[(H::UrlUnsubscribe, a as f32), (H::ListId, b as f32)]));
                y.push(spam);
            }
        }
        let refs: Vec<&[f32; hs::COUNT]> = xs.iter().collect();
        let f = Forest::train(&refs, &y, &BoostOptions::default());
        for (v, spam) in xs.iter().zip(&y) {
            let s = f.predict(v);
            assert_eq!(s > 0.0, *spam, "{v:?} scored {s}");
        }
        // The attributions name the two heuristics and add up to the score.
        let v = &xs[0];
        let a = f.attribute(v);
        let roots: f32 = f.trees.iter().map(|t| t[0].value).sum();
        let total: f32 = a.iter().sum::<f32>() + f.base + roots;
        assert!(
            (total - f.predict(v)).abs() < 1e-3,
            "{total} vs {}",
            f.predict(v)
        );
        assert!(a[H::UrlUnsubscribe as usize] != 0.0 || a[H::ListId as usize] != 0.0);
    }

    #[test]
    fn a_stored_forest_reads_back_and_bad_nodes_are_refused() {
        let mut xs = vec![[0f32; hs::COUNT]; 40];
        let mut y = vec![false; 40];
        for i in 0..20 {
            xs[i][3] = 1.0;
            y[i] = true;
        }
        let refs: Vec<&[f32; hs::COUNT]> = xs.iter().collect();
        let f = Forest::train(&refs, &y, &BoostOptions::default());
        let mut bytes = Vec::new();
        f.write(&mut bytes);
        let back = Forest::read(&mut Reader { b: &bytes, at: 0 }).unwrap();
        assert_eq!(back, f);
        // A child that points back at its parent would loop: refused.
        let tree = &f.trees[0];
        assert_ne!(tree[0].feature, LEAF, "the first tree splits");
        let left_at = 4 + 4 + 4 + 2; // base, count, size, feature
        let mut bad = bytes.clone();
        bad[left_at..left_at + 2].copy_from_slice(&0u16.to_le_bytes());
        assert_eq!(
            Forest::read(&mut Reader { b: &bad, at: 0 }),
            Err(ModelError::Length("bad tree node"))
        );
        let mut huge = bytes.clone();
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            Forest::read(&mut Reader { b: &huge, at: 0 }),
            Err(ModelError::Length("too many trees"))
        );
    }
}
