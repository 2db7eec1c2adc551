//! The embedded side of bench/serve.sh: the same calls the REST API
//! serves, made on the engine in-process — `Engine::status` of a finished
//! job (`GET /job/{id}/status`) and a held submission
//! (`POST /ai/train?hold=true`: checked, estimated, recorded, not started) —
//! by C concurrent callers, with their rate and latency percentiles.
//!
//! `api_bench HOME RUNTIME [--status N] [--submits N] [--callers C]`
//! prints one line per call kind: `kind callers requests rps p50_ms p99_ms`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use artha_core::{Amount, Error, InputRef, JobKind, JobSpec, Runtime};
use artha_engine::Engine;
use artha_engine::engine::DockerChoice;

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

async fn run<F, Fut>(label: &str, callers: usize, total: usize, f: F) -> artha_core::Result<()>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = artha_core::Result<()>> + Send,
{
    let f = Arc::new(f);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..callers {
        let f = f.clone();
        let n = total / callers + usize::from(c < total % callers);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(n);
            for _ in 0..n {
                let t = Instant::now();
                f().await?;
                lat.push(t.elapsed());
            }
            Ok::<_, Error>(lat)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(
            t.await
                .map_err(|e| Error::new(artha_core::ErrorKind::Internal, e.to_string()))??,
        );
    }
    let secs = started.elapsed().as_secs_f64();
    all.sort();
    println!(
        "{label:<14} {callers:>7} {:>8} {:>9.0} {:>8.3} {:>8.3}",
        all.len(),
        all.len() as f64 / secs,
        pct(&all, 0.5),
        pct(&all, 0.99)
    );
    Ok(())
}

#[tokio::main]
async fn main() -> artha_core::Result<()> {
    let mut args = std::env::args().skip(1);
    let home = args
        .next()
        .ok_or_else(|| Error::invalid("HOME", "give a home directory"))?;
    let runtime = args
        .next()
        .ok_or_else(|| Error::invalid("RUNTIME", "give the native runtime program"))?;
    let runtime =
        std::path::absolute(&runtime).map_err(|e| Error::invalid("RUNTIME", e.to_string()))?;
    let (mut status_n, mut submits, mut callers) = (20_000usize, 500usize, 1usize);
    while let Some(a) = args.next() {
        let v: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        match a.as_str() {
            "--status" => status_n = v,
            "--submits" => submits = v,
            "--callers" => callers = v.max(1),
            other => return Err(Error::invalid(other, "unknown argument")),
        }
    }
    let engine = Engine::builder()
        .home(&home)
        .native_runtime(&runtime, &["runtime"])
        .docker(DockerChoice::Off)
        .build()
        .await?;
    let data = std::path::Path::new(&home).join("bench.csv");
    let mut csv = String::from("x0,x1,label\n");
    for i in 0..64 {
        csv.push_str(&format!(
            "{}.{},{}.5,{}\n",
            (i % 2) * 2,
            i % 7,
            1 - i % 2,
            i % 2
        ));
    }
    std::fs::write(&data, csv).map_err(|e| Error::invalid("data", e.to_string()))?;
    let meta = artha_engine::engine::DatasetMeta::named("bench");
    let ds = engine.register_dataset_path(&data, &meta).await?;
    let mut spec = JobSpec::new(JobKind::Train, Runtime::Native("mlp".into()), Amount::ZERO);
    spec.dataset = Some(InputRef::Id(ds.id));
    spec.hyper.epochs = 1;
    spec.hyper.batch_size = 16;
    spec.resources.max_duration_secs = 120;
    let done = engine.submit_estimated(spec.clone(), false).await?.job_id;
    engine.job(&done)?.wait().await?;
    println!(
        "{:<14} {:>7} {:>8} {:>9} {:>8} {:>8}",
        "call", "callers", "requests", "rps", "p50_ms", "p99_ms"
    );
    let e = engine.clone();
    run("status", callers, status_n, move || {
        let e = e.clone();
        async move { e.status(&done).map(|_| ()) }
    })
    .await?;
    let e = engine.clone();
    run("submit (held)", callers, submits, move || {
        let (e, s) = (e.clone(), spec.clone());
        async move { e.submit_estimated(s, true).await.map(|_| ()) }
    })
    .await?;
    engine.shutdown().await;
    Ok(())
}
