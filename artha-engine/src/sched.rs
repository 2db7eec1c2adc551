//! Placement: hard constraints, then a weighted score (DESIGN §3 `sched`).
//!
//! A node is **feasible** for a job when it is certified, holds at least the
//! required stake, has enough free GPUs with enough memory each, and supports
//! the job's runtime (its image reference or native id). Among feasible
//! nodes the highest score wins:
//!
//! | term | weight | value in [0, 1] |
//! |---|---|---|
//! | locality | 0.35 | fraction of the job's inputs the node already holds; when the job names a region, the mean of that and 1/0 for a region match |
//! | GPU fit | 0.25 | best fit: mean of requested/free GPU count and requested/available GPU memory (1 = nothing wasted); a CPU-only job fits best on a node with no free GPUs (1 / (1 + free)) |
//! | SLA | 0.20 | the node's delivered uptime fraction |
//! | price | 0.10 | cheapest feasible price / this node's price (1 for the cheapest) |
//! | reputation | 0.10 | the node's reputation ([`reputation_score`] of `NodeCertRegistry`'s count) |
//!
//! The engine builds each node's view from `NodeCertRegistry` (certified,
//! active, stake, price, reputation) and from its GPU allocator (free
//! GPUs). The registry holds no uptime record yet, so SLA is 1.0 for every
//! registered node until SLA attestations exist.
//!
//! Ties break towards the lower price, then the lower node id, so a
//! placement is a deterministic function of (job, nodes). The scorer keeps
//! nodes in a flat table ([`NodeTable`]) with runtimes interned into a
//! bitmask and inputs as sorted 64-bit keys, so one placement over 10 000
//! nodes is a linear scan of plain numbers (see docs/BENCHMARKS.md).

use std::collections::BTreeMap;

use artha_core::{
    Amount, Cid, Error, ErrorKind, JobSpec, NodeId, NodeView, Placement, PlacementRequest, Result,
    Runtime, Scheduler,
};
use async_trait::async_trait;

/// Weight of the locality term.
pub const W_LOCALITY: f64 = 0.35;
/// Weight of the GPU-fit term.
pub const W_GPU_FIT: f64 = 0.25;
/// Weight of the SLA term.
pub const W_SLA: f64 = 0.20;
/// Weight of the price term.
pub const W_PRICE: f64 = 0.10;
/// Weight of the reputation term.
pub const W_REPUTATION: f64 = 0.10;

/// The locality term: `held` of `inputs` cached, and whether the region matches
/// (`None` when the job names no region).
pub fn locality(held: usize, inputs: usize, region_match: Option<bool>) -> f64 {
    let cached = if inputs == 0 {
        1.0
    } else {
        held as f64 / inputs as f64
    };
    match region_match {
        None => cached,
        Some(m) => 0.5 * cached + 0.5 * f64::from(u8::from(m)),
    }
}

/// The GPU-fit term for a job asking `req_gpus` of `req_mem` MiB on a node
/// with `free_gpus` free GPUs of `node_mem` MiB.
pub fn gpu_fit(req_gpus: u32, req_mem: u64, free_gpus: u32, node_mem: u64) -> f64 {
    if req_gpus == 0 {
        return 1.0 / (1.0 + f64::from(free_gpus));
    }
    let count = f64::from(req_gpus) / f64::from(free_gpus.max(1));
    let mem = if node_mem == 0 {
        0.0
    } else {
        req_mem as f64 / node_mem as f64
    };
    (count.min(1.0) + mem.min(1.0)) / 2.0
}

/// The price term: `cheapest / price` (1 when the price is zero).
pub fn price_term(cheapest: u128, price: u128) -> f64 {
    if price == 0 {
        1.0
    } else {
        cheapest as f64 / price as f64
    }
}

/// The weighted sum of the five terms (each clamped to [0, 1]).
pub fn weighted(locality: f64, gpu_fit: f64, sla: f64, price: f64, reputation: f64) -> f64 {
    let c = |x: f64| if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) };
    W_LOCALITY * c(locality)
        + W_GPU_FIT * c(gpu_fit)
        + W_SLA * c(sla)
        + W_PRICE * c(price)
        + W_REPUTATION * c(reputation)
}

fn cid_key(c: &Cid) -> u64 {
    let b = c.as_bytes();
    u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

fn runtime_key(r: &Runtime) -> &str {
    match r {
        Runtime::Image(s) | Runtime::Native(s) => s,
    }
}

/// Nodes laid out for fast scoring; updated as placements consume GPUs.
#[derive(Debug, Clone, Default)]
pub struct NodeTable {
    ids: Vec<NodeId>,
    regions: Vec<u32>,
    free: Vec<u32>,
    mem: Vec<u64>,
    runtimes: Vec<u64>,
    /// Runtime id → nodes supporting it, in index order.
    by_runtime: Vec<Vec<usize>>,
    price: Vec<u128>,
    /// The job-independent part of the score: W_SLA·sla + W_REPUTATION·reputation.
    fixed: Vec<f64>,
    eligible: Vec<bool>,
    stake: Vec<u128>,
    /// Input key → nodes holding it, in index order.
    holders: BTreeMap<u64, Vec<usize>>,
    runtime_ids: BTreeMap<String, u32>,
    region_ids: BTreeMap<String, u32>,
}

/// Why no node was chosen, for the error message.
#[derive(Debug, Default)]
struct Rejections {
    uncertified: usize,
    stake: usize,
    gpus: usize,
    memory: usize,
    runtime: usize,
}

impl NodeTable {
    /// Builds the table; at most 64 distinct runtimes are indexed (others
    /// are dropped from the nodes that list them, with no effect on nodes
    /// that list indexed ones).
    pub fn new(nodes: &[NodeView]) -> Self {
        let mut t = NodeTable::default();
        for n in nodes {
            let mut mask = 0u64;
            for r in &n.runtimes {
                let next = t.runtime_ids.len() as u32;
                let id = *t.runtime_ids.entry(r.clone()).or_insert(next);
                if id < 64 {
                    mask |= 1 << id;
                }
            }
            let next = t.region_ids.len() as u32;
            let region = *t.region_ids.entry(n.region.clone()).or_insert(next);
            let index = t.ids.len();
            for c in &n.cached {
                t.holders.entry(cid_key(c)).or_default().push(index);
            }
            t.ids.push(n.id);
            t.regions.push(region);
            t.free.push(n.gpus_free.min(n.gpus_total));
            t.mem.push(n.gpu_memory_mib);
            t.runtimes.push(mask);
            for id in 0..64usize {
                if mask & (1 << id) != 0 {
                    if t.by_runtime.len() <= id {
                        t.by_runtime.resize(id + 1, Vec::new());
                    }
                    t.by_runtime[id].push(index);
                }
            }
            t.price.push(n.price_per_gpu_second.wei());
            t.fixed.push(weighted(0.0, 0.0, n.sla, 0.0, n.reputation));
            t.eligible.push(n.certified);
            t.stake.push(n.stake.wei());
        }
        t
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Free GPUs of node `i`.
    pub fn free_gpus(&self, i: usize) -> u32 {
        self.free[i]
    }

    /// Chooses the best node for `req` (see the module docs), without
    /// changing the table. `ResourceExhausted` with a count of rejections
    /// per constraint when none fits.
    ///
    /// One pass over the table checks the constraints and scores every term
    /// but price; a second pass over the feasible nodes adds the price term
    /// (which needs the cheapest feasible price) and picks the winner.
    pub fn best(&self, req: &PlacementRequest) -> Result<(usize, f64)> {
        let spec: &JobSpec = &req.spec;
        let (need, need_mem) = (spec.resources.gpus, spec.resources.gpu_memory_mib);
        let min_stake = req.min_stake.wei();
        let rt_id = self
            .runtime_ids
            .get(runtime_key(&spec.runtime))
            .copied()
            .filter(|id| *id < 64);
        let rt_bit = rt_id.map_or(0, |id| 1u64 << id);
        let supporting: &[usize] = rt_id
            .and_then(|id| self.by_runtime.get(id as usize))
            .map_or(&[], Vec::as_slice);
        let region = req.region.as_ref().map(|r| self.region_ids.get(r).copied());
        let mut inputs: Vec<u64> = req.inputs.iter().map(cid_key).collect();
        inputs.sort_unstable();
        inputs.dedup();
        // Nodes holding at least one input, with how many, in index order.
        let mut holders: Vec<(usize, usize)> = Vec::new();
        for k in &inputs {
            if let Some(list) = self.holders.get(k) {
                holders.extend(list.iter().map(|&i| (i, 1)));
            }
        }
        holders.sort_unstable();
        holders.dedup_by(|b, a| {
            let same = a.0 == b.0;
            if same {
                a.1 += b.1;
            }
            same
        });

        let mut candidates: Vec<(usize, f64)> = Vec::with_capacity(supporting.len());
        let mut cheapest = u128::MAX;
        let mut next_holder = 0;
        for &i in supporting {
            let feasible = self.eligible[i]
                && self.stake[i] >= min_stake
                && self.free[i] >= need
                && (need == 0 || self.mem[i] >= need_mem);
            if !feasible {
                continue;
            }
            while next_holder < holders.len() && holders[next_holder].0 < i {
                next_holder += 1;
            }
            let held = match holders.get(next_holder) {
                Some(&(j, n)) if j == i => n,
                _ => 0,
            };
            let region_match = region.map(|r| r == Some(self.regions[i]));
            let partial = self.fixed[i]
                + weighted(
                    locality(held, inputs.len(), region_match),
                    gpu_fit(need, need_mem, self.free[i], self.mem[i]),
                    0.0,
                    0.0,
                    0.0,
                );
            cheapest = cheapest.min(self.price[i]);
            candidates.push((i, partial));
        }
        let mut best: Option<(usize, f64)> = None;
        for (i, partial) in candidates {
            let s = partial + W_PRICE * price_term(cheapest, self.price[i]);
            let better = match best {
                None => true,
                Some((j, bs)) => {
                    s > bs
                        || (s == bs && (self.price[i], self.ids[i]) < (self.price[j], self.ids[j]))
                }
            };
            if better {
                best = Some((i, s));
            }
        }
        best.ok_or_else(|| self.no_fit(req, rt_bit))
    }

    /// The error for a job no node fits, counting each node under the first
    /// constraint it fails.
    fn no_fit(&self, req: &PlacementRequest, rt_bit: u64) -> Error {
        let spec = &req.spec;
        let (need, need_mem) = (spec.resources.gpus, spec.resources.gpu_memory_mib);
        let mut why = Rejections::default();
        for i in 0..self.len() {
            if !self.eligible[i] {
                why.uncertified += 1;
            } else if self.stake[i] < req.min_stake.wei() {
                why.stake += 1;
            } else if self.free[i] < need {
                why.gpus += 1;
            } else if need > 0 && self.mem[i] < need_mem {
                why.memory += 1;
            } else if self.runtimes[i] & rt_bit == 0 {
                why.runtime += 1;
            }
        }
        Error::new(
            ErrorKind::ResourceExhausted,
            format!(
                "no node fits: {} uncertified, {} under the stake, {} without {need} free GPU(s), \
                 {} with < {need_mem} MiB per GPU, {} without runtime `{}` (of {} nodes)",
                why.uncertified,
                why.stake,
                why.gpus,
                why.memory,
                why.runtime,
                runtime_key(&spec.runtime),
                self.len()
            ),
        )
        .with_context("job_id", req.job_id.to_string())
    }

    /// [`best`](Self::best), then takes the job's GPUs from the chosen node.
    pub fn place(&mut self, req: &PlacementRequest) -> Result<Placement> {
        let (i, score) = self.best(req)?;
        self.free[i] -= req.spec.resources.gpus;
        Ok(Placement {
            node: self.ids[i],
            score,
        })
    }
}

/// The weighted scheduler as an [`artha_core::Scheduler`].
#[derive(Debug, Clone, Copy, Default)]
pub struct WeightedScheduler;

#[async_trait]
impl Scheduler for WeightedScheduler {
    async fn place(&self, job: &PlacementRequest, nodes: &[NodeView]) -> Result<Placement> {
        let (i, score) = NodeTable::new(nodes).best(job)?;
        Ok(Placement {
            node: nodes[i].id,
            score,
        })
    }
}

/// How many finalized jobs make a reputation score of 0.5.
pub const REPUTATION_HALF: u32 = 10;

/// `NodeCertRegistry`'s reputation (finalized jobs, minus 10 per upheld
/// challenge) as a score in [0, 1): `r / (r + REPUTATION_HALF)`, so a new
/// node starts at 0, ten good jobs give 0.5, and the score saturates.
pub fn reputation_score(r: u32) -> f64 {
    f64::from(r) / (f64::from(r) + f64::from(REPUTATION_HALF))
}

/// Convenience for tests and examples: a certified node with `gpus` free
/// GPUs of `mem` MiB, running `runtimes`, at `price` per GPU-second.
pub fn node_view(id: NodeId, gpus: u32, mem: u64, runtimes: &[&str], price: Amount) -> NodeView {
    NodeView {
        id,
        region: "local".into(),
        gpus_total: gpus,
        gpus_free: gpus,
        gpu_memory_mib: mem,
        runtimes: runtimes.iter().map(|s| s.to_string()).collect(),
        price_per_gpu_second: price,
        sla: 1.0,
        reputation: 0.5,
        certified: true,
        stake: Amount::ZERO,
        cached: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use artha_core::{JobId, JobKind};

    fn nid(n: u8) -> NodeId {
        NodeId::from_bytes([n; 16])
    }

    fn req(gpus: u32, mem: u64) -> PlacementRequest {
        let mut spec = JobSpec::new(
            JobKind::Train,
            Runtime::Native("mlp".into()),
            Amount::from_wei(1),
        );
        spec.resources.gpus = gpus;
        spec.resources.gpu_memory_mib = mem;
        PlacementRequest {
            job_id: JobId::from_bytes([1; 16]),
            spec,
            inputs: vec![],
            region: None,
            min_stake: Amount::ZERO,
        }
    }

    fn wei(n: u128) -> Amount {
        Amount::from_wei(n)
    }

    #[test]
    fn reputation_score_starts_at_zero_halves_at_ten_and_saturates() {
        assert_eq!(reputation_score(0), 0.0);
        assert_eq!(reputation_score(REPUTATION_HALF), 0.5);
        assert!(reputation_score(u32::MAX) < 1.0 && reputation_score(u32::MAX) > 0.999_999);
        assert!(reputation_score(11) > reputation_score(10));
    }

    #[test]
    fn terms() {
        assert_eq!(locality(0, 0, None), 1.0);
        assert_eq!(locality(1, 2, None), 0.5);
        assert_eq!(locality(2, 2, Some(false)), 0.5);
        assert_eq!(locality(0, 2, Some(true)), 0.5);
        assert_eq!(gpu_fit(2, 40_000, 2, 80_000), 0.75);
        assert_eq!(gpu_fit(1, 80_000, 8, 80_000), (0.125 + 1.0) / 2.0);
        assert_eq!(gpu_fit(0, 0, 0, 80_000), 1.0);
        assert_eq!(gpu_fit(0, 0, 3, 80_000), 0.25);
        assert_eq!(price_term(5, 10), 0.5);
        assert_eq!(price_term(0, 0), 1.0);
        assert!((weighted(1.0, 1.0, 1.0, 1.0, 1.0) - 1.0).abs() < 1e-12);
        assert_eq!(weighted(f64::NAN, 2.0, -1.0, 0.0, 0.0), W_GPU_FIT);
        assert!((W_LOCALITY + W_GPU_FIT + W_SLA + W_PRICE + W_REPUTATION - 1.0).abs() < 1e-12);
    }

    #[test]
    fn hard_constraints_filter_and_explain() {
        let mut nodes = vec![
            node_view(nid(1), 8, 80_000, &["mlp"], wei(1)),
            node_view(nid(2), 1, 80_000, &["mlp"], wei(1)),
            node_view(nid(3), 8, 16_000, &["mlp"], wei(1)),
            node_view(nid(4), 8, 80_000, &["torch"], wei(1)),
            node_view(nid(5), 8, 80_000, &["mlp"], wei(1)),
        ];
        for n in &mut nodes {
            n.stake = wei(10);
        }
        nodes[0].certified = false;
        nodes[4].stake = wei(5);
        let mut r = req(2, 40_000);
        r.min_stake = wei(10);
        let e = NodeTable::new(&nodes).best(&r).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ResourceExhausted);
        for part in [
            "1 uncertified",
            "1 under the stake",
            "1 without 2 free",
            "1 with < 40000",
            "1 without runtime `mlp`",
        ] {
            assert!(e.to_string().contains(part), "{e}");
        }
        r.min_stake = wei(5);
        assert_eq!(
            NodeTable::new(&nodes).best(&r).unwrap().0,
            4,
            "the only feasible node"
        );
    }

    #[test]
    fn each_term_moves_the_choice() {
        // GPU fit: the exact-size node beats the big one.
        let nodes = vec![
            node_view(nid(1), 8, 80_000, &["mlp"], wei(1)),
            node_view(nid(2), 2, 40_000, &["mlp"], wei(1)),
        ];
        assert_eq!(NodeTable::new(&nodes).best(&req(2, 40_000)).unwrap().0, 1);
        // Price: the cheaper of two equal nodes.
        let nodes = vec![
            node_view(nid(1), 2, 40_000, &["mlp"], wei(3)),
            node_view(nid(2), 2, 40_000, &["mlp"], wei(2)),
        ];
        assert_eq!(NodeTable::new(&nodes).best(&req(2, 40_000)).unwrap().0, 1);
        // SLA outweighs price: 0.2 × 0.5 > 0.1 × (1 − 1/3).
        let mut nodes = vec![
            node_view(nid(1), 2, 40_000, &["mlp"], wei(3)),
            node_view(nid(2), 2, 40_000, &["mlp"], wei(1)),
        ];
        nodes[1].sla = 0.5;
        assert_eq!(NodeTable::new(&nodes).best(&req(2, 40_000)).unwrap().0, 0);
        // Reputation.
        let mut nodes = vec![
            node_view(nid(1), 2, 40_000, &["mlp"], wei(1)),
            node_view(nid(2), 2, 40_000, &["mlp"], wei(1)),
        ];
        nodes[1].reputation = 0.9;
        assert_eq!(NodeTable::new(&nodes).best(&req(2, 40_000)).unwrap().0, 1);
        // Locality: the node holding the input wins over a cheaper one.
        let data = Cid::of(b"dataset");
        let mut nodes = vec![
            node_view(nid(1), 2, 40_000, &["mlp"], wei(1)),
            node_view(nid(2), 2, 40_000, &["mlp"], wei(2)),
        ];
        nodes[1].cached.insert(data);
        let mut r = req(2, 40_000);
        r.inputs = vec![data];
        assert_eq!(NodeTable::new(&nodes).best(&r).unwrap().0, 1);
        // Region.
        let mut nodes = vec![
            node_view(nid(1), 2, 40_000, &["mlp"], wei(1)),
            node_view(nid(2), 2, 40_000, &["mlp"], wei(1)),
        ];
        nodes[1].region = "eu-west".into();
        let mut r = req(2, 40_000);
        r.region = Some("eu-west".into());
        assert_eq!(NodeTable::new(&nodes).best(&r).unwrap().0, 1);
    }

    #[test]
    fn ties_break_deterministically_and_placement_consumes_gpus() {
        let nodes = vec![
            node_view(nid(9), 2, 40_000, &["mlp"], wei(1)),
            node_view(nid(3), 2, 40_000, &["mlp"], wei(1)),
        ];
        let mut t = NodeTable::new(&nodes);
        assert_eq!(
            t.place(&req(2, 1)).unwrap().node,
            nid(3),
            "lower id wins a tie"
        );
        assert_eq!(
            t.place(&req(2, 1)).unwrap().node,
            nid(9),
            "then the other node"
        );
        assert!(t.place(&req(1, 1)).is_err(), "all GPUs taken");
    }

    #[tokio::test]
    async fn trait_impl_matches_table() {
        let nodes = vec![
            node_view(nid(1), 8, 80_000, &["mlp"], wei(1)),
            node_view(nid(2), 2, 40_000, &["mlp"], wei(1)),
        ];
        let p = WeightedScheduler
            .place(&req(2, 40_000), &nodes)
            .await
            .unwrap();
        assert_eq!(p.node, nid(2));
        assert!(p.score > 0.0 && p.score <= 1.0);
    }
}
