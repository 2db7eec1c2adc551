//! Verifiable compute end to end (issue 15): honest and cheating nodes run
//! real training jobs on the native runtime, commit on the embedded chain,
//! and an audit by replay (with the verifier's own runtime) and a jury of
//! staked verifiers decide. The cheating node's runtime is `artha-cheat`
//! (tests/testrt), which wraps the honest runtime and rewrites what it
//! reports; the verifier replays with `arthai runtime`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use artha_core::{
    Amount, ChainJobStatus, InputRef, JobId, JobKind, JobPhase, JobSpec, ProofChain, Registry,
};
use artha_engine::Engine;
use artha_engine::chain::contracts::Vote;
use artha_engine::verify::{AuditOptions, Verdict};

/// `target/<profile>/<name>`, built with the workspace; a missing binary
/// fails under CI and skips elsewhere.
fn sibling_binary(name: &str) -> Option<PathBuf> {
    let me = PathBuf::from(env!("CARGO_BIN_EXE_arthai"));
    let p = me.parent().unwrap().join(name);
    if p.is_file() {
        return Some(p);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{} is not built (cargo build --workspace)",
        p.display()
    );
    eprintln!("skipping: {} is not built", p.display());
    None
}

/// An engine whose jobs run on `artha-cheat` (a cheating node when the
/// spec's `ARTHA_CHEAT` says so) and whose audits replay with this build's
/// `arthai runtime`.
async fn node(home: &Path) -> Option<Engine> {
    let cheat = sibling_binary("artha-cheat")?;
    sibling_binary("artha-runtime")?;
    Some(
        Engine::builder()
            .home(home)
            .native_runtime(&cheat, &[])
            .replay_runtime(env!("CARGO_BIN_EXE_arthai"), &["runtime"])
            .docker(artha_engine::engine::DockerChoice::Off)
            .build()
            .await
            .unwrap(),
    )
}

/// 3 epochs × 8 steps (256 rows, batch 32) in windows of 4: 24 steps, 6
/// windows, checkpoints every window.
async fn job(e: &Engine, dir: &Path, cheat: &str, seed: u64) -> JobId {
    job_with(e, dir, cheat, seed, None).await
}

/// [`job`], with `ARTHA_CHEAT_STEPS` (what `fabricate` claims).
async fn job_with(e: &Engine, dir: &Path, cheat: &str, seed: u64, steps: Option<u64>) -> JobId {
    let data = dir.join("blobs.csv");
    if !data.exists() {
        std::fs::write(&data, artha_engine::quickstart::synthetic_dataset(7, 256)).unwrap();
    }
    let ds = e
        .register_dataset_path(&data, &artha_engine::engine::DatasetMeta::named("blobs"))
        .await
        .unwrap();
    let mut spec = JobSpec::new(
        JobKind::Train,
        artha_core::Runtime::Native("mlp".into()),
        Amount::ZERO,
    );
    spec.dataset = Some(InputRef::Id(ds.id));
    spec.hyper.epochs = 3;
    spec.hyper.batch_size = 32;
    spec.hyper.learning_rate = 0.05;
    spec.hyper.seed = seed;
    spec.resources.gpus = 1;
    spec.resources.gpu_memory_mib = 512;
    spec.resources.max_duration_secs = 600;
    spec.proof_window = 4;
    // `ARTHA_CHEAT` for the cheating runtime (free-form hyper-parameters
    // reach a runtime as `ARTHA_<KEY>`; the honest runtime ignores it).
    spec.hyper
        .extra
        .insert("cheat".into(), serde_json::json!(cheat));
    if let Some(n) = steps {
        spec.hyper
            .extra
            .insert("cheat_steps".into(), serde_json::json!(n));
    }
    spec.budget = e.cost_model().estimate(&spec).unwrap().cost;
    let id = e.submit(spec).await.unwrap().id();
    common::ended(e, &id).await;
    id
}

fn all() -> AuditOptions {
    AuditOptions {
        sample: None,
        windows: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_jobs_verify_and_are_paid_per_committed_step() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(e) = node(&tmp.path().join("home")).await else {
        return;
    };
    // Several seeds, every window replayed: an honest job is never fraud.
    let mut jobs = Vec::new();
    for seed in [1, 2, 3] {
        let j = job(&e, tmp.path(), "honest", seed).await;
        let r = e.record(&j).unwrap();
        assert_eq!(r.phase, JobPhase::Completed, "{r:?}");
        let a = e.verify(&j, &all()).await.unwrap();
        assert_eq!(a.verdict, Verdict::Valid, "{a:#?}");
        assert_eq!((a.windows.len(), a.replayed_steps), (6, 24), "{a:#?}");
        jobs.push(j);
    }
    // The default audit: 8 windows drawn from the chain's seed (all 6
    // here), the seed the contract derives.
    let a = e.verify(&jobs[0], &AuditOptions::default()).await.unwrap();
    assert_eq!(a.verdict, Verdict::Valid);
    assert!(a.seed.is_some());
    // One window, chosen.
    let a = e
        .verify(
            &jobs[1],
            &AuditOptions {
                sample: None,
                windows: Some(vec![3]),
            },
        )
        .await
        .unwrap();
    assert_eq!((a.verdict, a.windows[0].steps), (Verdict::Valid, (13, 16)));
    // A window that does not exist names the field.
    let err = e
        .verify(
            &jobs[1],
            &AuditOptions {
                sample: None,
                windows: Some(vec![6]),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.context_value("field"), Some("windows"), "{err}");
    // Contradictory or empty requests (what `POST /verify/{job_id}` takes)
    // name their field.
    use artha_engine::dispute::VerifyRequest;
    for (req, field) in [
        (
            VerifyRequest {
                all: true,
                sample: Some(2),
                ..Default::default()
            },
            "sample",
        ),
        (
            VerifyRequest {
                sample: Some(0),
                ..Default::default()
            },
            "sample",
        ),
        (
            VerifyRequest {
                windows: Some(Vec::new()),
                ..Default::default()
            },
            "windows",
        ),
    ] {
        let err = e.verify_job(&jobs[1], &req).await.unwrap_err();
        assert_eq!(err.context_value("field"), Some(field), "{req:?}: {err}");
    }

    // A node that sleeps is paid for its steps, not its clock: the same
    // price × 24 steps as the honest job.
    let slow = job(&e, tmp.path(), "sleep=2500", 1).await;
    let (fast_r, slow_r) = (e.record(&jobs[0]).unwrap(), e.record(&slow).unwrap());
    assert!(slow_r.gpu_seconds.unwrap() > fast_r.gpu_seconds.unwrap());
    let c = e.chain();
    let (w0, s0) = (
        c.worker.balance().await.unwrap().wei(),
        c.submitter.balance().await.unwrap().wei(),
    );
    e.dev_advance_time(c.challenge_period_secs() + 1)
        .await
        .unwrap();
    assert_eq!(e.settle_due().await.unwrap(), 4);
    let price = slow_r.price_per_step.unwrap().wei();
    assert_eq!(price, fast_r.price_per_step.unwrap().wei());
    let paid = c.worker.balance().await.unwrap().wei() - w0;
    assert_eq!(paid, 4 * 24 * price, "4 jobs × 24 steps × the price");
    let refunded = c.submitter.balance().await.unwrap().wei() - s0;
    assert_eq!(paid + refunded, 4 * slow_r.spec.budget.wei());
    for j in jobs.iter().chain([&slow]) {
        assert_eq!(c.job_status(j).await.unwrap(), ChainJobStatus::Finalized);
    }
}

/// Runs a cheating job, audits every window, and returns the engine, the
/// job and the audit.
async fn cheat(
    mode: &str,
) -> Option<(
    tempfile::TempDir,
    Engine,
    JobId,
    artha_engine::verify::AuditReport,
)> {
    let tmp = tempfile::tempdir().unwrap();
    let e = node(&tmp.path().join("home")).await?;
    // A fabricator claims the 24 steps the spec implies.
    let j = job_with(&e, tmp.path(), mode, 1, Some(24)).await;
    let r = e.record(&j).unwrap();
    assert_eq!(r.phase, JobPhase::Completed, "{mode}: {r:?}");
    let a = e.verify(&j, &all()).await.unwrap();
    Some((tmp, e, j, a))
}

/// A caught cheat goes before the jury, is slashed, and the submitter is
/// refunded; settling skips the slashed job and the engine reopens.
async fn slashed(tmp: &Path, e: Engine, j: JobId, a: &artha_engine::verify::AuditReport) {
    let c = e.chain();
    let s0 = c.submitter.balance().await.unwrap().wei();
    let stake0 = c.node(&e.node_id()).await.unwrap().stake;
    let id = e.challenge(a).await.unwrap();
    assert_eq!(c.job_status(&j).await.unwrap(), ChainJobStatus::Challenged);
    // Settling skips a challenged job (and fails nothing).
    e.settle_due().await.unwrap();
    let d = e.adjudicate(id).await.unwrap();
    assert_eq!(d.jury.len(), 3, "{d:?}");
    assert!(d.votes.iter().all(|(_, v)| *v == Vote::Fraud), "{d:?}");
    assert_eq!(d.challenge.verdict, Some(Vote::Fraud));
    assert_eq!(d.job_status, ChainJobStatus::Slashed);
    let budget = e.record(&j).unwrap().spec.budget.wei();
    assert_eq!(
        c.submitter.balance().await.unwrap().wei() - s0,
        budget,
        "full refund"
    );
    let n = c.node(&e.node_id()).await.unwrap();
    assert!(!n.certified && n.stake < stake0, "{n:?}");
    // Settlement marks the slashed job settled and goes on.
    e.settle_due().await.unwrap();
    assert_eq!(e.record(&j).unwrap().phase, JobPhase::Settled);
    // The engine opens after its node was slashed, and keeps serving reads.
    e.shutdown().await;
    let e = node(&tmp.join("home")).await.unwrap();
    assert_eq!(e.record(&j).unwrap().phase, JobPhase::Settled);
    assert_eq!(
        e.chain().job_status(&j).await.unwrap(),
        ChainJobStatus::Slashed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faked_windows_are_caught_and_slashed_by_a_jury() {
    let Some((tmp, e, j, a)) = cheat("fake-every=2").await else {
        return;
    };
    assert_eq!(a.verdict, Verdict::Fraud, "{a:#?}");
    // Windows 1, 3 and 5 are faked; every one of them is found, at its
    // first step, with a proof under the committed root.
    let faked: Vec<u64> = a
        .windows
        .iter()
        .filter(|w| w.verdict == Verdict::Fraud)
        .map(|w| w.window)
        .collect();
    assert_eq!(faked, [1, 3, 5], "{a:#?}");
    let m = a.evidence().unwrap();
    assert_eq!(m.committed.step, 5);
    let root = e.chain().commitment(&j).await.unwrap().unwrap().job_root;
    assert!(m.proof.verify(&root, &m.committed.leaf()));
    slashed(tmp.path(), e, j, &a).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fabricated_work_is_caught_and_slashed() {
    let Some((tmp, e, j, a)) = cheat("fabricate").await else {
        return;
    };
    assert_eq!(a.verdict, Verdict::Fraud, "{a:#?}");
    // Window 0 replays from the initial weights and differs at step 1.
    assert_eq!(a.evidence().unwrap().committed.step, 1);
    slashed(tmp.path(), e, j, &a).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skipped_window_and_other_data_are_caught() {
    let Some((tmp, e, j, a)) = cheat("skip-window=2").await else {
        return;
    };
    assert_eq!(a.verdict, Verdict::Fraud, "{a:#?}");
    assert_eq!(
        a.evidence().unwrap().committed.step,
        9,
        "window 2 starts at step 9"
    );
    slashed(tmp.path(), e, j, &a).await;

    let Some((tmp, e, j, a)) = cheat("other-data").await else {
        return;
    };
    assert_eq!(a.verdict, Verdict::Fraud, "{a:#?}");
    // Other batches from the first step on: the batch digest differs.
    let m = a.evidence().unwrap();
    assert_eq!(m.committed.step, 1);
    assert_ne!(m.committed.batch_digest, m.replayed.batch_digest);
    slashed(tmp.path(), e, j, &a).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inflated_step_counts_are_refused_and_not_paid() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(e) = node(&tmp.path().join("home")).await else {
        return;
    };
    // Real steps padded with copies to 3×: the engine's own check of the
    // events refuses them (the copies' epochs go back) — nothing commits.
    let padded = job(&e, tmp.path(), "inflate=3", 1).await;
    // 96 self-consistent fabricated steps where the spec implies 24: the
    // contract refuses the commitment (`StepsOverMax`).
    let claimed = job_with(&e, tmp.path(), "fabricate", 1, Some(96)).await;
    let c = e.chain();
    for (j, why) in [(padded, "epoch went back"), (claimed, "StepsOverMax")] {
        let r = e.record(&j).unwrap();
        assert!(
            r.history
                .iter()
                .any(|t| t.reason.as_deref().is_some_and(|x| x.contains(why))),
            "{why}: {r:?}"
        );
        assert_eq!(c.job_status(&j).await.unwrap(), ChainJobStatus::Failed);
        let esc = c.escrow(&j).await.unwrap();
        assert!(esc.closed && esc.held == Amount::ZERO, "refunded in full");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_checkpoint_is_found_and_slashed_by_a_data_challenge() {
    let Some((tmp, e, j, a)) = cheat("old-checkpoint").await else {
        return;
    };
    // The checkpoint committed for step 8 holds step 4: the replay of the
    // window after it resumes at step 5.
    assert_eq!(a.verdict, Verdict::Fraud, "{a:#?}");
    let w = a
        .windows
        .iter()
        .find(|w| w.verdict == Verdict::Fraud)
        .unwrap();
    assert_eq!(w.window, 2, "{a:#?}");
    assert!(
        w.reason.as_deref().unwrap().contains("holds another step"),
        "{w:?}"
    );
    // No step record differs: the challenge is about the data, and the
    // jurors' whole audits find it.
    assert!(a.evidence().is_none());
    slashed(tmp.path(), e, j, &a).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_data_is_unverifiable_never_fraud() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(e) = node(&tmp.path().join("home")).await else {
        return;
    };
    let j = job(&e, tmp.path(), "honest", 1).await;
    // The job is pinned to the code of the runtime its submitter trusts
    // (`arthai runtime`); a verifier with another build does not judge it.
    e.shutdown().await;
    let other = Engine::builder()
        .home(tmp.path().join("home"))
        .native_runtime(sibling_binary("artha-cheat").unwrap(), &[])
        .replay_runtime(sibling_binary("artha-runtime").unwrap(), &[])
        .docker(artha_engine::engine::DockerChoice::Off)
        .build()
        .await
        .unwrap();
    let a = other.verify(&j, &all()).await.unwrap();
    assert_eq!(a.verdict, Verdict::Unverifiable, "{a:#?}");
    assert!(
        a.reason
            .as_deref()
            .unwrap()
            .contains("pinned to runtime code"),
        "{a:#?}"
    );
    other.shutdown().await;
    let e = node(&tmp.path().join("home")).await.unwrap();
    let m = e.proofs(&j).await.unwrap();
    // The checkpoint window 1 replays from is gone: window 0 still checks
    // out, window 1 cannot be judged — and nothing is called fraud.
    let ckpt = m.checkpoints.iter().find(|c| c.step == 4).unwrap();
    e.store()
        .backend()
        .delete(&ckpt.cid.unwrap())
        .await
        .unwrap();
    let a = e.verify(&j, &all()).await.unwrap();
    assert_eq!(a.verdict, Verdict::Unverifiable, "{a:#?}");
    assert_eq!(a.windows[0].verdict, Verdict::Valid);
    assert_eq!(a.windows[1].verdict, Verdict::Unverifiable);
    assert!(
        a.windows[1]
            .reason
            .as_deref()
            .unwrap()
            .contains("cannot be fetched"),
        "{a:#?}"
    );
    // Without the step log nothing is replayed.
    e.store()
        .backend()
        .delete(&m.step_log.unwrap())
        .await
        .unwrap();
    let a = e.verify(&j, &all()).await.unwrap();
    assert_eq!(a.verdict, Verdict::Unverifiable, "{a:#?}");
    assert!(a.windows.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_pointed_catalog_entry_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let Some(e) = node(&home).await else {
        return;
    };
    let j = job(&e, tmp.path(), "honest", 1).await;
    let spec = e.record(&j).unwrap().spec;
    let ds = spec.dataset.clone().unwrap();
    let other = tmp.path().join("other.csv");
    std::fs::write(&other, artha_engine::quickstart::synthetic_dataset(9, 256)).unwrap();
    let pushed = e
        .store()
        .push_path(&other, &Default::default())
        .await
        .unwrap();
    e.shutdown().await;
    // Someone with the home's files re-points the local catalog entry.
    let db = rusqlite::Connection::open(home.join("jobs").join("catalog.db")).unwrap();
    let n = db
        .execute(
            "UPDATE datasets SET uri = ?1 WHERE id = ?2",
            [pushed.uri.to_string(), ds.to_string()],
        )
        .unwrap();
    assert_eq!(n, 1);
    drop(db);
    // The same spec again: refused at submission, naming the field, and
    // nothing is created.
    let e = node(&home).await.unwrap();
    let before = e.list().unwrap().len();
    let err = e.submit(spec).await.unwrap_err();
    assert_eq!(err.kind(), artha_core::ErrorKind::Corrupted, "{err}");
    assert_eq!(err.context_value("field"), Some("dataset"), "{err}");
    assert!(
        err.to_string()
            .contains("other content than the chain registered")
    );
    assert_eq!(e.list().unwrap().len(), before);
}
