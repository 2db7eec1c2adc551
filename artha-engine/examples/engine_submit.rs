//! Engine benchmark: what `Engine::submit` costs, and a whole job's life,
//! as the engine's history grows (bench/engine_submit.sh).
//!
//! `cargo run --release -p artha-engine --example engine_submit -- RUNTIME
//! [--points 10,2000] [--samples 20]` — RUNTIME is a native runtime program
//! that understands `hyper.extra.script` (`artha-testrt`): each job runs one
//! step and completes, so what is measured is the engine (policy, balance
//! read, input check, ledger insert; then scheduling, staging, the run,
//! proofs, commit on the embedded chain). Jobs are run one after the other;
//! every 100 jobs the chain clock moves past the challenge period and the
//! due jobs are settled, as a node would.

use std::time::{Duration, Instant};

use artha_core::{Amount, InputRef, JobKind, JobOutcome, JobSpec, ProofChain, Runtime};
use artha_engine::Engine;
use artha_engine::engine::DockerChoice;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v.get(v.len() / 2).map_or(0.0, |d| ms(*d))
}

#[tokio::main]
async fn main() -> artha_core::Result<()> {
    let mut args = std::env::args().skip(1);
    let runtime = args
        .next()
        .ok_or_else(|| artha_core::Error::invalid("RUNTIME", "give the artha-testrt program"))?;
    // Jobs run in their own directories: the program's absolute path.
    let runtime = std::path::absolute(&runtime)
        .map_err(|e| artha_core::Error::invalid("RUNTIME", e.to_string()))?;
    let (mut points, mut samples) = (vec![10u64, 2000], 20u64);
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_default();
        match a.as_str() {
            "--points" => points = v.split(',').filter_map(|p| p.parse().ok()).collect(),
            "--samples" => samples = v.parse().unwrap_or(20),
            other => return Err(artha_core::Error::invalid(other, "unknown argument")),
        }
    }
    let home = std::env::temp_dir().join(format!("artha-engine-submit-{}", std::process::id()));
    let engine = Engine::builder()
        .home(&home)
        .native_runtime(&runtime, &[])
        .docker(DockerChoice::Off)
        .settle_interval(Duration::from_secs(3600))
        .build()
        .await?;
    let data = home.join("d.csv");
    std::fs::write(&data, "x0,x1,label\n0,1,0\n1,0,1\n")
        .map_err(|e| artha_core::Error::invalid("data", e.to_string()))?;
    let ds = engine
        .register_dataset_path(&data, &artha_engine::engine::DatasetMeta::named("d"))
        .await?;
    let mut spec = JobSpec::new(JobKind::Train, Runtime::Native("mlp".into()), Amount::ZERO);
    spec.dataset = Some(InputRef::Id(ds.id));
    spec.hyper.epochs = 1;
    spec.hyper
        .extra
        .insert("script".into(), serde_json::json!("steps 1 complete"));
    spec.proof_window = 1;
    spec.resources.max_duration_secs = 60;
    spec.budget = engine.cost_model().estimate(&spec)?.cost;

    println!(
        "{:>7} | {:>16} | {:>16} | {:>9}",
        "prior", "submit ms median", "job ms median", "fill s"
    );
    let period = engine.chain().challenge_period_secs();
    let mut done = 0u64;
    // The local identity's own credential allows 600 submissions a minute;
    // the benchmark submits faster than that, so it gets one that allows
    // more (issued by the engine's identity, which the engine trusts).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let me = engine.identity().clone();
    let cred = engine.issue_credential(artha_engine::policy::Credential {
        issuer: me.clone(),
        subject: me.clone(),
        budget_cap: engine.credential().credential.budget_cap,
        rate_limit_per_minute: 1_000_000,
        not_before: now.saturating_sub(60),
        expires_at: now + 86_400,
    })?;
    // One job: its submission, then its whole life to `Completed`.
    let run_one = async || -> artha_core::Result<(Duration, Duration)> {
        let t = Instant::now();
        let job = engine.submit_as(spec.clone(), &me, &cred).await?;
        let submit = t.elapsed();
        let outcome = job.wait().await?;
        if outcome != JobOutcome::Completed {
            outcome.into_result(&job.id())?;
        }
        Ok((submit, t.elapsed()))
    };
    for &point in &points {
        let fill = Instant::now();
        while done < point {
            run_one().await?;
            done += 1;
            if done.is_multiple_of(100) {
                engine.dev_advance_time(period + 1).await?;
                engine.settle_due().await?;
            }
        }
        let fill = fill.elapsed();
        let (mut s, mut w) = (Vec::new(), Vec::new());
        for _ in 0..samples {
            let (a, b) = run_one().await?;
            s.push(a);
            w.push(b);
            done += 1;
        }
        println!(
            "{point:>7} | {:>16.2} | {:>16.1} | {:>9.1}",
            median(s),
            median(w),
            fill.as_secs_f64()
        );
    }
    engine.shutdown().await;
    let _ = std::fs::remove_dir_all(&home);
    Ok(())
}
