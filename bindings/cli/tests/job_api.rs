//! The typed Job API on the real engine (native runtime, embedded chain):
//! a job's event stream in order, its status and outcome, a failed job's
//! outcome, and the status the next engine on the home reads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use artha_core::{
    Amount, ArtifactKind, ChainAction, InputRef, JobEvent, JobKind, JobOutcome, JobPhase, JobSpec,
    Runtime,
};
use artha_engine::Engine;
use futures_util::StreamExt;

#[allow(dead_code)]
mod common;
use common::engine;

fn spec(e: &Engine, dataset: artha_core::DatasetId, epochs: u32) -> JobSpec {
    let mut s = JobSpec::new(JobKind::Train, Runtime::Native("mlp".into()), Amount::ZERO);
    s.dataset = Some(InputRef::Id(dataset));
    s.hyper.epochs = epochs;
    s.hyper.batch_size = 16;
    s.hyper.learning_rate = 0.05;
    s.proof_window = 4;
    s.resources.max_duration_secs = 120;
    s.budget = e.cost_model().estimate(&s).unwrap().cost;
    s
}

fn data(dir: &Path) -> std::path::PathBuf {
    let mut csv = String::from("x0,x1,label\n");
    for i in 0..64 {
        let c = i % 2;
        csv.push_str(&format!("{}.{},{}.5,{c}\n", c * 2, i % 7, 1 - c));
    }
    let p = dir.join("d.csv");
    std::fs::write(&p, csv).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jobs_events_come_in_lifecycle_order_and_end_with_its_outcome() {
    let tmp = tempfile::tempdir().unwrap();
    let e = engine(&tmp.path().join("home")).await;
    let ds = e
        .register_dataset_path(
            &data(tmp.path()),
            &artha_engine::engine::DatasetMeta::named("d"),
        )
        .await
        .unwrap();
    let job = e.submit(spec(&e, ds.id, 2)).await.unwrap();

    let events: Vec<JobEvent> = job.events().map(|ev| ev.unwrap()).collect().await;
    let phases: Vec<JobPhase> = events
        .iter()
        .filter_map(|ev| match ev {
            JobEvent::Phase { phase, .. } => Some(*phase),
            _ => None,
        })
        .collect();
    assert_eq!(
        phases,
        [
            JobPhase::Submitted,
            JobPhase::Accepted,
            JobPhase::Scheduled,
            JobPhase::Staging,
            JobPhase::Running,
            JobPhase::Proving,
            JobPhase::Completed,
        ],
        "{events:?}"
    );
    // Progress only moves forward and reaches the last step (64 rows / 16
    // per batch × 2 epochs).
    let steps: Vec<u64> = events
        .iter()
        .filter_map(|ev| match ev {
            JobEvent::Progress(p) => Some(p.step),
            _ => None,
        })
        .collect();
    assert!(steps.windows(2).all(|w| w[0] <= w[1]), "{steps:?}");
    assert_eq!(steps.last(), Some(&8), "{steps:?}");
    let actions: Vec<ChainAction> = events
        .iter()
        .filter_map(|ev| match ev {
            JobEvent::Receipt(r) => Some(r.action),
            _ => None,
        })
        .collect();
    for a in [
        ChainAction::Submit,
        ChainAction::Assign,
        ChainAction::Commit,
    ] {
        assert!(actions.contains(&a), "{actions:?}");
    }
    let kinds: Vec<ArtifactKind> = events
        .iter()
        .filter_map(|ev| match ev {
            JobEvent::Artifact(a) => Some(a.kind),
            _ => None,
        })
        .collect();
    for k in [
        ArtifactKind::Checkpoint,
        ArtifactKind::Proofs,
        ArtifactKind::Model,
    ] {
        assert!(kinds.contains(&k), "{kinds:?}");
    }
    // The commit receipt comes before the phase that says so.
    let commit_at = events
        .iter()
        .position(|ev| matches!(ev, JobEvent::Receipt(r) if r.action == ChainAction::Commit))
        .unwrap();
    let completed_at = events
        .iter()
        .position(|ev| {
            matches!(
                ev,
                JobEvent::Phase {
                    phase: JobPhase::Completed,
                    ..
                }
            )
        })
        .unwrap();
    assert!(commit_at < completed_at);

    assert_eq!(job.wait().await.unwrap(), JobOutcome::Completed);
    let st = job.status().unwrap();
    assert_eq!(st.status, JobPhase::Completed);
    assert_eq!(st.outcome, Some(JobOutcome::Completed));
    assert_eq!(st.training.step, 8);
    assert_eq!(st.progress, 1.0);
    assert!(st.cost.is_some() && st.gpu_seconds.is_some());
    // The JSON shape keeps the reference's fields.
    let v = serde_json::to_value(&st).unwrap();
    for k in [
        "job_id",
        "status",
        "progress",
        "cost",
        "artifacts",
        "receipts",
        "history",
        "started_at",
        "completed_at",
        "duration_secs",
        "assigned_node",
        "gpu_allocated",
        "training",
    ] {
        assert!(v.get(k).is_some(), "{k} in {v}");
    }
    let types: Vec<&str> = v["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"TrainProof"), "{types:?}");
    let proof = v["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["type"] == "TrainProof")
        .unwrap();
    assert_eq!(proof["step"], 8, "{proof}");
    assert!(st.started_at.is_some() && st.completed_at.is_some());
    e.shutdown().await;

    // The next engine on the home: the persisted progress and outcome.
    let id = job.id();
    drop(job);
    let e = engine(&tmp.path().join("home")).await;
    let seen = e.status(&id).unwrap();
    e.shutdown().await;
    assert_eq!(seen.training.step, 8);
    assert_eq!(seen.outcome, Some(JobOutcome::Completed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_job_has_a_failed_outcome_with_its_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let e = engine(&tmp.path().join("home")).await;
    // Data the native runtime cannot read: the run fails.
    let bad = tmp.path().join("bad.csv");
    std::fs::write(&bad, "x0,x1,label\nfoo,1,0\n").unwrap();
    let ds = e
        .register_dataset_path(&bad, &artha_engine::engine::DatasetMeta::named("bad"))
        .await
        .unwrap();
    let job = e.submit(spec(&e, ds.id, 2)).await.unwrap();
    match job.wait().await.unwrap() {
        JobOutcome::Failed { kind, reason } => {
            assert_eq!(kind, "job_failed");
            assert!(!reason.is_empty());
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    let err = job
        .wait()
        .await
        .unwrap()
        .into_result(&job.id())
        .unwrap_err();
    assert_eq!(err.kind(), artha_core::ErrorKind::JobFailed);
    assert_eq!(
        err.context_value("job_id"),
        Some(job.id().to_string().as_str())
    );
    // Cancelling an ended job is a conflict and changes nothing.
    let c = job.cancel().await.unwrap_err();
    assert_eq!(c.kind(), artha_core::ErrorKind::Conflict);
    e.shutdown().await;
}

/// A held job (`submit_held`, like `sbatch --hold`) is checked and
/// recorded but starts only when released — also across a restart — and a
/// held job can be cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_job_starts_only_when_released() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let e = engine(&home).await;
    let meta = artha_engine::engine::DatasetMeta::named("d");
    let ds = e
        .register_dataset_path(&data(tmp.path()), &meta)
        .await
        .unwrap();
    let held = e.submit_held(spec(&e, ds.id, 1)).await.unwrap().id();
    let other = e.submit_held(spec(&e, ds.id, 1)).await.unwrap().id();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let st = e.status(&held).unwrap();
    assert_eq!(st.status, JobPhase::Accepted, "{st:?}");
    assert!(
        st.reason.as_deref().unwrap_or("").starts_with("held"),
        "{st:?}"
    );
    e.shutdown().await;

    // Still held after a restart; release starts it, once.
    let e = engine(&home).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(e.status(&held).unwrap().status, JobPhase::Accepted);
    e.release(&held).await.unwrap();
    let again = e.release(&held).await.unwrap_err();
    assert_eq!(again.kind(), artha_core::ErrorKind::Conflict, "{again}");
    assert_eq!(
        e.job(&held).unwrap().wait().await.unwrap(),
        JobOutcome::Completed
    );
    // Cancelling a held job ends it without running it.
    let st = e.job(&other).unwrap().cancel().await.unwrap();
    assert_eq!(st.status, JobPhase::Cancelled, "{st:?}");
    assert_eq!(st.training.step, 0);
    e.shutdown().await;
}
