//! `/metrics` in the Prometheus text format (version 0.0.4): the engine's
//! gauges (jobs by phase, GPU slots in use, proof commits, outbox depth,
//! store bytes) and a latency histogram per route and method.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use axum::http::{Method, StatusCode};

use crate::api::Stats;

/// Upper bounds of the latency buckets, seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Debug, Default)]
struct Series {
    counts: [u64; BUCKETS.len()],
    total: u64,
    sum_secs: f64,
}

/// Request counters and latencies, by route.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    latency: Mutex<BTreeMap<(String, String), Series>>,
    responses: Mutex<BTreeMap<(String, String, u16), u64>>,
}

impl Metrics {
    /// Records one request.
    pub(crate) fn observe(&self, method: &Method, route: &str, status: StatusCode, took: Duration) {
        let secs = took.as_secs_f64();
        let key = (method.to_string(), route.to_string());
        {
            let mut l = self
                .latency
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let s = l.entry(key.clone()).or_default();
            for (i, b) in BUCKETS.iter().enumerate() {
                if secs <= *b {
                    s.counts[i] += 1;
                }
            }
            s.total += 1;
            s.sum_secs += secs;
        }
        let mut r = self
            .responses
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *r.entry((key.0, key.1, status.as_u16())).or_insert(0) += 1;
    }

    /// The whole exposition: `stats` as gauges, then the request series.
    pub(crate) fn render(&self, stats: &Stats) -> String {
        let mut o = String::new();
        gauge_header(&mut o, "artha_jobs", "Jobs by the phase they are in.");
        for (phase, n) in &stats.jobs_by_phase {
            let _ = writeln!(o, "artha_jobs{{phase=\"{phase}\"}} {n}");
        }
        for (name, help, v) in [
            (
                "artha_gpus_total",
                "GPUs in the inventory.",
                stats.gpus_total,
            ),
            ("artha_gpus_in_use", "GPUs held by jobs.", stats.gpus_in_use),
            (
                "artha_outbox_depth",
                "Chain writes recorded, not yet confirmed.",
                stats.outbox_depth,
            ),
            (
                "artha_store_bytes",
                "Logical bytes pinned in the store.",
                stats.store_bytes,
            ),
        ] {
            gauge_header(&mut o, name, help);
            let _ = writeln!(o, "{name} {v}");
        }
        for (name, help, v) in [
            (
                "artha_proof_commits_total",
                "Proof commitments on chain.",
                stats.proof_commits,
            ),
            (
                "artha_steps_committed_total",
                "Training steps covered by commitments.",
                stats.steps_committed,
            ),
            (
                "artha_jobs_finalized_total",
                "Jobs paid out.",
                stats.finalized,
            ),
            (
                "artha_gas_used_total",
                "Gas used by job transactions.",
                stats.gas_used,
            ),
            (
                "artha_gpu_seconds_total",
                "GPU-seconds measured.",
                stats.gpu_seconds,
            ),
        ] {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        }
        let _ = writeln!(
            o,
            "# HELP artha_http_responses_total Responses by route, method and status.\n\
             # TYPE artha_http_responses_total counter"
        );
        for ((m, route, status), n) in self
            .responses
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                o,
                "artha_http_responses_total{{method=\"{m}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }
        let _ = writeln!(
            o,
            "# HELP artha_http_request_duration_seconds Request latency by route and method.\n\
             # TYPE artha_http_request_duration_seconds histogram"
        );
        for ((m, route), s) in self
            .latency
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            let labels = format!("method=\"{m}\",route=\"{}\"", escape(route));
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    o,
                    "artha_http_request_duration_seconds_bucket{{{labels},le=\"{b}\"}} {}",
                    s.counts[i]
                );
            }
            let _ = writeln!(
                o,
                "artha_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}\n\
                 artha_http_request_duration_seconds_sum{{{labels}}} {}\n\
                 artha_http_request_duration_seconds_count{{{labels}}} {}",
                s.total, s.sum_secs, s.total
            );
        }
        o
    }
}

fn gauge_header(o: &mut String, name: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge");
}

/// A label value as the text format wants it.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
