//! Example: plug your own parts into the engine. A user-written
//! [`Executor`] runs jobs of the native runtime `linreg` inside this
//! process (a tokio task fitting `y = a·x + b` by gradient descent and
//! speaking the runtime protocol: step events with tensor digests,
//! checkpoints, `complete`), and a user-written [`Scheduler`] places jobs
//! on the cheapest eligible node. The engine drives a real job through
//! them to settlement on the embedded chain.
//!
//! Run: `cargo run -p artha-engine --example custom_parts`

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use artha_core::{
    Amount, Error, ErrorKind, ExecHandle, ExecState, Executor, ExitReason, InputRef, JobId,
    JobKind, JobOutcome, JobSpec, LaunchSpec, LogLine, NodeView, Placement, PlacementRequest,
    ProofChain, Result, Runtime, RuntimeEvent, Scheduler, StepRecord, tensor_digest_f32,
};
use artha_engine::Engine;
use async_trait::async_trait;

/// Runs `linreg` jobs as tasks of this process.
#[derive(Default)]
struct InProcess {
    jobs: Mutex<HashMap<JobId, Run>>,
}

struct Run {
    handle: ExecHandle,
    task: tokio::task::JoinHandle<std::result::Result<(), String>>,
    started: Instant,
    logs: Arc<Mutex<Vec<LogLine>>>,
}

/// The training itself: full-batch gradient descent on `y = 3x + 1`,
/// reporting every step as the runtime protocol asks.
fn train(spec: &LaunchSpec, logs: &Mutex<Vec<LogLine>>) -> std::result::Result<(), String> {
    let env = |k: &str| spec.env.get(k).cloned().unwrap_or_default();
    let epochs: u64 = env("EPOCHS").parse().unwrap_or(1);
    let lr: f32 = env("LEARNING_RATE").parse().unwrap_or(0.05);
    let window: u64 = env("ARTHA_PROOF_WINDOW").parse().unwrap_or(8).max(1);
    let xs: Vec<f32> = (0..32).map(|i| i as f32 / 16.0).collect();
    let ys: Vec<f32> = xs.iter().map(|x| 3.0 * x + 1.0).collect();
    let batch = tensor_digest_f32(&[32], &xs).map_err(|e| e.to_string())?;
    let events_path = spec.mounts.artha.join("events.jsonl");
    let mut events = std::fs::File::create(&events_path).map_err(|e| e.to_string())?;
    let mut emit = |ev: &RuntimeEvent| -> std::result::Result<(), String> {
        let line = serde_json::to_string(ev).map_err(|e| e.to_string())?;
        writeln!(events, "{line}").map_err(|e| e.to_string())
    };
    let (mut a, mut b) = (0.0f32, 0.0f32);
    for step in 1..=epochs * 4 {
        let n = xs.len() as f32;
        let (mut ga, mut gb, mut loss) = (0.0f32, 0.0f32, 0.0f32);
        for (x, y) in xs.iter().zip(&ys) {
            let err = a * x + b - y;
            ga += 2.0 * err * x / n;
            gb += 2.0 * err / n;
            loss += err * err / n;
        }
        a -= lr * ga;
        b -= lr * gb;
        let digest = |v: &[f32]| tensor_digest_f32(&[2], v).map_err(|e| e.to_string());
        emit(&RuntimeEvent::Step(StepRecord {
            step,
            epoch: ((step - 1) / 4) as u32,
            loss: f64::from(loss),
            grad_digest: digest(&[ga, gb])?,
            weight_digest: digest(&[a, b])?,
            batch_digest: batch,
        }))?;
        if step % window == 0 {
            let path = format!("step-{step}.bin");
            let bytes = [a.to_le_bytes(), b.to_le_bytes()].concat();
            std::fs::write(spec.mounts.checkpoints.join(&path), bytes)
                .map_err(|e| e.to_string())?;
            emit(&RuntimeEvent::Checkpoint { path, step })?;
        }
    }
    let text = format!("fitted y = {a:.3}·x + {b:.3}");
    let mut l = logs.lock().map_err(|_| "poisoned".to_string())?;
    let seq = l.len() as u64;
    l.push(LogLine {
        seq,
        stderr: false,
        text,
    });
    drop(l);
    emit(&RuntimeEvent::Complete {
        steps: epochs * 4,
        final_weights: tensor_digest_f32(&[2], &[a, b]).map_err(|e| e.to_string())?,
    })
}

impl InProcess {
    fn run<T>(&self, job: &JobId, f: impl FnOnce(&mut Run) -> T) -> Result<T> {
        let mut jobs = self
            .jobs
            .lock()
            .map_err(|_| Error::new(ErrorKind::Internal, "poisoned"))?;
        let run = jobs
            .get_mut(job)
            .ok_or_else(|| Error::new(ErrorKind::NotFound, "no such run"))?;
        Ok(f(run))
    }
}

#[async_trait]
impl Executor for InProcess {
    async fn launch(&self, spec: LaunchSpec) -> Result<ExecHandle> {
        let handle = ExecHandle {
            job_id: spec.job_id,
            backend_id: format!("task:{}", spec.job_id),
        };
        let logs = Arc::new(Mutex::new(Vec::new()));
        let task = {
            let logs = logs.clone();
            tokio::task::spawn_blocking(move || train(&spec, &logs))
        };
        let run = Run {
            handle: handle.clone(),
            task,
            started: Instant::now(),
            logs,
        };
        self.jobs
            .lock()
            .map_err(|_| Error::new(ErrorKind::Internal, "poisoned"))?
            .insert(handle.job_id, run);
        Ok(handle)
    }

    async fn state(&self, h: &ExecHandle) -> Result<ExecState> {
        self.run(&h.job_id, |r| {
            if r.task.is_finished() {
                ExecState::Finished {
                    reason: ExitReason::Exited { code: 0 },
                    wall_seconds: r.started.elapsed().as_secs(),
                }
            } else {
                ExecState::Running
            }
        })
    }

    async fn wait(&self, h: &ExecHandle) -> Result<ExecState> {
        loop {
            let done = self.run(&h.job_id, |r| r.task.is_finished())?;
            if done {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (task, secs) = {
            let mut jobs = self
                .jobs
                .lock()
                .map_err(|_| Error::new(ErrorKind::Internal, "poisoned"))?;
            let r = jobs
                .get_mut(&h.job_id)
                .ok_or_else(|| Error::new(ErrorKind::NotFound, "no such run"))?;
            let task = std::mem::replace(&mut r.task, tokio::task::spawn(async { Ok(()) }));
            (task, r.started.elapsed().as_secs())
        };
        let code = match task.await {
            Ok(Ok(())) => 0,
            _ => 1,
        };
        Ok(ExecState::Finished {
            reason: ExitReason::Exited { code },
            wall_seconds: secs,
        })
    }

    async fn stop(&self, h: &ExecHandle, _grace: Duration) -> Result<()> {
        // A blocking task cannot be interrupted; this one is short.
        let _ = self.run(&h.job_id, |r| r.task.abort());
        Ok(())
    }

    async fn logs(&self, h: &ExecHandle, since: u64) -> Result<Vec<LogLine>> {
        let logs = self.run(&h.job_id, |r| r.logs.clone())?;
        let l = logs
            .lock()
            .map_err(|_| Error::new(ErrorKind::Internal, "poisoned"))?;
        Ok(l.iter().filter(|x| x.seq >= since).cloned().collect())
    }

    async fn remove(&self, h: &ExecHandle) -> Result<()> {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.remove(&h.job_id);
        }
        Ok(())
    }

    async fn list(&self) -> Result<Vec<ExecHandle>> {
        let jobs = self
            .jobs
            .lock()
            .map_err(|_| Error::new(ErrorKind::Internal, "poisoned"))?;
        Ok(jobs.values().map(|r| r.handle.clone()).collect())
    }

    fn supports(&self, runtime: &Runtime) -> bool {
        matches!(runtime, Runtime::Native(id) if id == "linreg")
    }

    fn runtimes(&self) -> Vec<String> {
        vec!["linreg".into()]
    }
}

/// Places a job on the cheapest node that meets its hard constraints.
struct Cheapest;

#[async_trait]
impl Scheduler for Cheapest {
    async fn place(&self, job: &PlacementRequest, nodes: &[NodeView]) -> Result<Placement> {
        let r = &job.spec.resources;
        nodes
            .iter()
            .filter(|n| n.certified && n.stake >= job.min_stake)
            .filter(|n| n.gpus_free >= r.gpus && n.gpu_memory_mib >= r.gpu_memory_mib)
            .min_by_key(|n| (n.price_per_gpu_second, n.id))
            .map(|n| Placement {
                node: n.id,
                score: 1.0,
            })
            .ok_or_else(|| Error::new(ErrorKind::ResourceExhausted, "no node fits"))
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let home = std::env::temp_dir().join(format!("artha-custom-{}", std::process::id()));
    let engine = Engine::builder()
        .home(&home)
        .executor(Arc::new(InProcess::default()))
        .without_default_executors()
        .scheduler(Arc::new(Cheapest))
        .build()
        .await?;
    // The 32 points the runtime fits, in 4 batches of 8: the 4 steps per
    // epoch the engine prices and the node commits.
    let data = home.join("points.csv");
    let mut csv = String::from("x,y\n");
    for i in 0..32 {
        let x = i as f32 / 16.0;
        csv.push_str(&format!("{x},{}\n", 3.0 * x + 1.0));
    }
    std::fs::write(&data, csv).map_err(|e| Error::invalid("data", e.to_string()))?;
    let dataset = engine
        .register_dataset_path(&data, &artha_engine::engine::DatasetMeta::named("points"))
        .await?;

    let mut spec = JobSpec::new(
        JobKind::Train,
        Runtime::Native("linreg".into()),
        Amount::ZERO,
    );
    spec.dataset = Some(InputRef::Id(dataset.id));
    spec.hyper.epochs = 8;
    spec.hyper.batch_size = 8;
    spec.hyper.learning_rate = 0.1;
    spec.proof_window = 8;
    spec.resources.max_duration_secs = 60;
    spec.budget = engine.cost_model().estimate(&spec)?.cost;
    let job = engine.submit(spec).await?;
    let outcome = job.wait().await?;
    println!("job {} {outcome:?}", job.id());
    for line in job.logs(0).await? {
        println!("  {}", line.text);
    }
    if outcome != JobOutcome::Completed {
        return outcome.into_result(&job.id());
    }
    let proofs = engine.proofs(&job.id()).await?;
    println!("proofs: {} steps, root {}", proofs.steps, proofs.job_root);
    assert_eq!(proofs.steps, 32);

    engine
        .dev_advance_time(engine.chain().challenge_period_secs() + 1)
        .await?;
    engine.settle_due().await?;
    let status = job.status()?;
    println!("settled: {} ({:?})", status.status, status.outcome);
    assert!(engine.chain().escrow(&job.id()).await?.closed);
    engine.shutdown().await;
    let _ = std::fs::remove_dir_all(&home);
    Ok(())
}
