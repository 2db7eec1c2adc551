//! The Rust side of bench/bindings.sh: the calls a binding makes, on
//! `Connection::Local` in-process — `push` of N small files one call each,
//! and `status` of one job N times — so the Python and Node figures of
//! the same calls show what a binding call adds.
//!
//! `binding_bench HOME FILES_DIR [--status N]` prints one line per call:
//! `call calls total_s per_call_us`.

use std::path::PathBuf;
use std::time::Instant;

use artha_core::{Error, JobKind, JobRequest};
use artha_engine::engine::DockerChoice;
use artha_engine::{Connection, Engine};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let usage = || Error::invalid("args", "binding_bench HOME FILES_DIR [--status N]");
    let home = PathBuf::from(args.next().ok_or_else(usage)?);
    let files = PathBuf::from(args.next().ok_or_else(usage)?);
    let mut status_calls = 10_000usize;
    if let (Some(flag), Some(n)) = (args.next(), args.next()) {
        if flag != "--status" {
            return Err(usage());
        }
        status_calls = n.parse().map_err(|_| usage())?;
    }
    let engine = Engine::builder()
        .home(&home)
        .docker(DockerChoice::Off)
        .build()
        .await?;
    let c = Connection::Local(engine);

    let mut paths: Vec<PathBuf> = std::fs::read_dir(&files)
        .map_err(|e| Error::invalid("FILES_DIR", e.to_string()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    paths.sort();
    let t = Instant::now();
    let mut first = None;
    for p in &paths {
        let r = c.push(p).await?;
        first.get_or_insert(r.uri);
    }
    report("store.push", paths.len(), t.elapsed().as_secs_f64());

    let uri = first.ok_or_else(|| Error::invalid("FILES_DIR", "is empty"))?;
    let req = JobRequest {
        dataset: Some(uri.to_string()),
        ..JobRequest::default()
    };
    let job = c
        .submit_held(req.apply(JobKind::Train, None)?)
        .await?
        .job_id;
    let t = Instant::now();
    for _ in 0..status_calls {
        c.status(&job).await?;
    }
    report("job.status", status_calls, t.elapsed().as_secs_f64());
    c.close().await;
    Ok(())
}

fn report(call: &str, n: usize, secs: f64) {
    println!(
        "{call:<12} {n:>7} {secs:>9.3} {:>12.1}",
        secs * 1e6 / n.max(1) as f64
    );
}
