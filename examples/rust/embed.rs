//! Example: embed the engine in a Rust program and run the quickstart flow
//! through the public API only — push a dataset, register it and a model,
//! submit a training job with a budget, follow its typed events, wait for
//! its outcome, check its proofs, and settle it on the embedded chain.
//!
//! Run: `cargo run -p artha-engine --example embed [HOME]` (a fresh
//! temporary home when none is given). It needs the native runtime
//! `artha-runtime` (built by `cargo build`; found next to this program, or
//! through `$ARTHA_NATIVE_RUNTIME`).

use std::path::PathBuf;

use artha_core::{Amount, InputRef, JobEvent, JobKind, JobOutcome, JobSpec, ProofChain, Runtime};
use artha_engine::Engine;
use artha_engine::engine::{DockerChoice, ModelRegistration};
use futures_util::StreamExt;

#[tokio::main]
async fn main() -> Result<(), artha_core::Error> {
    let tmp = std::env::temp_dir().join(format!("artha-embed-{}", std::process::id()));
    let given = std::env::args().nth(1).map(PathBuf::from);
    let home: PathBuf = given.clone().unwrap_or(tmp);
    let engine = Engine::builder()
        .home(&home)
        .docker(DockerChoice::Off)
        .build()
        .await?;
    println!("home      {}", engine.home().display());
    for (party, account) in engine.chain().accounts() {
        println!("{:<9} {account}", party.as_str());
    }

    // A small two-class dataset, pushed to the content-addressed store.
    let data = home.join("blobs.csv");
    let mut csv = String::from("x0,x1,label\n");
    for i in 0..128 {
        let (c, t) = ((i % 2) as f32, i as f32 / 128.0);
        csv.push_str(&format!(
            "{:.3},{:.3},{}\n",
            c * 2.0 - 1.0 + t,
            t - c,
            i % 2
        ));
    }
    std::fs::write(&data, csv).map_err(|e| artha_core::Error::invalid("data", e.to_string()))?;
    let dataset = engine
        .register_dataset_path(
            &data,
            &artha_engine::engine::DatasetMeta {
                name: "blobs".into(),
                tags: "example".into(),
                ..Default::default()
            },
        )
        .await?;
    println!("dataset   {} {}", dataset.id, dataset.uri);
    let weights = engine.push(&data).await?; // any stored content can be a model's
    let model = engine
        .register_model(
            &weights.uri,
            &ModelRegistration {
                name: "example-mlp".into(),
                architecture: "mlp".into(),
                ..ModelRegistration::default()
            },
        )
        .await?;
    println!("model     {}", model.id);

    // A training job with a budget that covers its estimate.
    let mut spec = JobSpec::new(JobKind::Train, Runtime::Native("mlp".into()), Amount::ZERO);
    spec.dataset = Some(InputRef::Id(dataset.id));
    spec.hyper.epochs = 2;
    spec.hyper.batch_size = 32;
    spec.hyper.learning_rate = 0.05;
    spec.proof_window = 4;
    spec.resources.max_duration_secs = 120;
    spec.budget = engine.cost_model().estimate(&spec)?.cost;
    let job = engine.submit(spec).await?;
    println!("job       {} (budget locked in escrow)", job.id());

    // Its life as typed events, until it has ended.
    let mut events = std::pin::pin!(job.events());
    while let Some(ev) = events.next().await {
        match ev? {
            JobEvent::Phase { phase, .. } => {
                println!("  phase   {phase}");
                if phase.is_terminal() {
                    break;
                }
            }
            JobEvent::Receipt(r) => {
                println!("  chain   {} in block {}", r.action, r.receipt.block_number)
            }
            JobEvent::Artifact(a) => println!("  stored  {} {}", a.kind, a.name),
            JobEvent::Progress(_) | JobEvent::Log(_) => {}
        }
    }
    let outcome = job.wait().await?;
    println!("outcome   {outcome:?}");
    if outcome != JobOutcome::Completed {
        return outcome.into_result(&job.id());
    }
    let proofs = engine.proofs(&job.id()).await?;
    println!(
        "proofs    {} steps in {} windows, root {}",
        proofs.steps,
        proofs.window_roots.len(),
        proofs.job_root
    );

    // Settlement after the challenge period (a development chain's clock
    // can be moved forward).
    let period = engine.chain().challenge_period_secs();
    engine.dev_advance_time(period + 1).await?;
    engine.settle_due().await?;
    let status = job.status()?;
    println!(
        "settled   {} — {} GPU-s cost {}",
        status.status,
        status.gpu_seconds.unwrap_or(0),
        status.cost.map_or_else(|| "?".into(), |c| c.to_string())
    );
    let escrow = engine.chain().escrow(&job.id()).await?;
    assert!(escrow.closed, "the escrow is closed");
    engine.shutdown().await;
    if given.is_none() {
        let _ = std::fs::remove_dir_all(&home);
    }
    Ok(())
}
