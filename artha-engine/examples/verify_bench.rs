//! bench/verify.sh: what an audit by replay costs against the training it
//! checks, and how long a dispute takes from challenge to resolution on
//! the embedded chain.
//!
//! `verify_bench HOME ROWS EPOCHS WINDOW HIDDEN [CHEAT]` trains one job of
//! `EPOCHS × ⌈ROWS / 32⌉` steps in windows of `WINDOW` on the native
//! runtime (an MLP with hidden layers `HIDDEN`, e.g. `256,256`), then audits it with 8 and 44 windows drawn from the chain's
//! seed and with every window, printing one line per run:
//! `what windows replayed_steps wall_ms ratio_to_training`. With `CHEAT`
//! (the `artha-cheat` binary) it also runs a job that fakes every second
//! window on a second home and times `challenge` + `adjudicate` (three
//! jurors, each replaying the disputed window).

use std::path::{Path, PathBuf};
use std::time::Instant;

use artha_core::{Amount, Error, InputRef, JobId, JobKind, JobPhase, JobSpec, Runtime};
use artha_engine::Engine;
use artha_engine::engine::{DatasetMeta, DockerChoice};
use artha_engine::verify::AuditOptions;

async fn engine(home: &Path, runtime: Option<&Path>) -> Result<Engine, Error> {
    let mut b = Engine::builder().home(home).docker(DockerChoice::Off);
    if let Some(rt) = runtime {
        b = b.native_runtime(rt, &[]);
    }
    b.build().await
}

async fn train(
    e: &Engine,
    dir: &Path,
    (rows, epochs, window, hidden): (usize, u32, u32, &str),
    cheat: &str,
) -> Result<(JobId, u64), Error> {
    let data = dir.join("data.csv");
    std::fs::write(&data, artha_engine::quickstart::synthetic_dataset(7, rows))
        .map_err(|e| Error::invalid("HOME", e.to_string()))?;
    let ds = e
        .register_dataset_path(&data, &DatasetMeta::named("bench"))
        .await?;
    let mut spec = JobSpec::new(JobKind::Train, Runtime::Native("mlp".into()), Amount::ZERO);
    spec.dataset = Some(InputRef::Id(ds.id));
    spec.hyper.epochs = epochs;
    spec.hyper.batch_size = 32;
    spec.hyper.learning_rate = 0.05;
    spec.resources.gpus = 1;
    spec.resources.gpu_memory_mib = 512;
    spec.resources.max_duration_secs = 3600;
    spec.proof_window = window;
    spec.hyper
        .extra
        .insert("hidden".into(), serde_json::json!(hidden));
    if !cheat.is_empty() {
        spec.hyper
            .extra
            .insert("cheat".into(), serde_json::json!(cheat));
    }
    spec.budget = e.cost_model().estimate(&spec)?.cost;
    let job = e.submit(spec).await?.id();
    let r = e.job(&job)?.wait_for(JobPhase::is_terminal).await?;
    if r.phase != JobPhase::Completed {
        return Err(Error::invalid(
            "job",
            format!("ended {:?}: {:?}", r.phase, r.reason),
        ));
    }
    let at = |p: JobPhase| r.history.iter().find(|t| t.phase == p).map(|t| t.at_ms);
    let ms = match (at(JobPhase::Running), at(JobPhase::Proving)) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => 0,
    };
    Ok((job, ms.max(1)))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = || {
        Error::invalid(
            "args",
            "verify_bench HOME ROWS EPOCHS WINDOW HIDDEN [CHEAT]",
        )
    };
    if args.len() < 5 {
        return Err(usage());
    }
    let home = PathBuf::from(&args[0]);
    let rows: usize = args[1].parse().map_err(|_| usage())?;
    let epochs: u32 = args[2].parse().map_err(|_| usage())?;
    let window: u32 = args[3].parse().map_err(|_| usage())?;
    let shape = (rows, epochs, window, args[4].as_str());
    std::fs::create_dir_all(&home).map_err(|e| Error::invalid("HOME", e.to_string()))?;

    let e = engine(&home.join("honest"), None).await?;
    let (job, train_ms) = train(&e, &home, shape, "").await?;
    let steps = e.proofs(&job).await?.steps;
    println!(
        "training {} steps {steps} wall_ms {train_ms} ratio 1",
        steps.div_ceil(u64::from(window))
    );
    for (what, opts) in [
        (
            "audit-8",
            AuditOptions {
                sample: Some(8),
                windows: None,
            },
        ),
        (
            "audit-44",
            AuditOptions {
                sample: Some(44),
                windows: None,
            },
        ),
        (
            "audit-all",
            AuditOptions {
                sample: None,
                windows: None,
            },
        ),
    ] {
        let t = Instant::now();
        let a = e.verify(&job, &opts).await?;
        let ms = t.elapsed().as_millis() as u64;
        println!(
            "{what} windows {} replayed_steps {} wall_ms {ms} ratio {:.4} verdict {:?}",
            a.windows.len(),
            a.replayed_steps,
            ms as f64 / train_ms as f64,
            a.verdict
        );
    }
    e.shutdown().await;

    if let Some(cheat) = args.get(5) {
        let e = engine(&home.join("cheat"), Some(Path::new(cheat))).await?;
        let (job, _) = train(&e, &home, shape, "fake-every=2").await?;
        let a = e
            .verify(
                &job,
                &AuditOptions {
                    sample: None,
                    windows: Some(vec![1]),
                },
            )
            .await?;
        let t = Instant::now();
        let id = e.challenge(&a).await?;
        let d = e.adjudicate(id).await?;
        println!(
            "dispute challenge_to_resolution_ms {} verdict {:?} job {:?}",
            t.elapsed().as_millis(),
            d.challenge.verdict,
            d.job_status
        );
        e.shutdown().await;
    }
    Ok(())
}
