//! End-to-end: the `arthai` binary and the engine library on real parts —
//! the SVDB on disk, the contracts on the embedded EVM, the native runtime
//! (carried by `arthai runtime`) as real processes.
//!
//! (These live with the CLI because cargo builds the `arthai` binary for
//! its own tests; `tests/README.md` points here.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use artha_core::JobPhase;
use artha_core::{
    Amount, ChainJobStatus, ErrorKind, Escrow, InputRef, JobId, JobKind, JobSpec, ProofChain,
    Registry,
};
use artha_engine::Engine;
use artha_engine::policy::{Credential, Identity};

mod common;
use common::check_settled_job;

const ARTHAI: &str = env!("CARGO_BIN_EXE_arthai");

fn arthai(home: &Path, args: &[&str]) -> Output {
    Command::new(ARTHAI)
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("ARTHA_NATIVE_RUNTIME")
        .env_remove("ARTHA_RPC_URL")
        .output()
        .unwrap()
}

fn ok_json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "arthai failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

use common::engine;

/// An engine at `home` with the blobs dataset (written under `dir`)
/// registered.
async fn engine_with_blobs(
    home: &Path,
    dir: &Path,
) -> (Engine, artha_engine::engine::DatasetEntry) {
    let e = engine(home).await;
    let ds = e
        .register_dataset_path(
            &blobs_csv(dir),
            &artha_engine::engine::DatasetMeta::named("blobs"),
        )
        .await
        .unwrap();
    (e, ds)
}

fn blobs_csv(dir: &Path) -> PathBuf {
    let p = dir.join("blobs.csv");
    std::fs::write(&p, artha_engine::quickstart::synthetic_dataset(7, 512)).unwrap();
    p
}

/// A regression problem whose targets are large enough that SGD at
/// learning rate 10 diverges after a couple of steps.
fn diverging_csv(dir: &Path) -> PathBuf {
    let mut s = String::from("x0,x1,y\n");
    let mut rng = artha_engine::quickstart::SplitMix64::new(3);
    for _ in 0..256 {
        let (a, b) = (rng.next_normal(), rng.next_normal());
        s.push_str(&format!("{a:.4},{b:.4},{:.4}\n", 1000.0 * a - 500.0 * b));
    }
    let p = dir.join("reg.csv");
    std::fs::write(&p, s).unwrap();
    p
}

fn train_spec(dataset: artha_core::DatasetId, epochs: u32, window: u32) -> JobSpec {
    let mut spec = JobSpec::new(
        JobKind::Train,
        artha_core::Runtime::Native("mlp".into()),
        Amount::ZERO,
    );
    spec.dataset = Some(InputRef::Id(dataset));
    spec.hyper.epochs = epochs;
    spec.hyper.batch_size = 32;
    spec.hyper.learning_rate = 0.05;
    spec.hyper.seed = 11;
    spec.resources.gpus = 1;
    spec.resources.gpu_memory_mib = 512;
    spec.resources.max_duration_secs = 600;
    spec.proof_window = window;
    spec.budget =
        artha_core::CostModel::new(Amount::from_wei(artha_engine::engine::DEFAULT_RATE_WEI))
            .estimate(&spec)
            .unwrap()
            .cost;
    spec
}

/// `quickstart --lm`: the native runtime's language model is trained on a
/// generated text, its steps priced from the text's rows (the implied
/// steps are the steps run, so the node is paid its whole estimate), the
/// verifier replays every window valid, and registering its directory
/// under another architecture is refused, naming the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quickstart_lm_trains_the_language_model_and_replays_valid() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let v = ok_json(&arthai(&home, &["--json", "quickstart", "--lm"]));
    assert_eq!(v["status"], "settled", "{v:#}");
    let job: JobId = v["job_id"].as_str().unwrap().parse().unwrap();
    let steps = v["training"]["step"].as_u64().unwrap();
    let e = engine(&home).await;
    let r = e.record(&job).unwrap();
    drop(e);
    // 3 000 words of text in rows of 32 characters, 16 a batch, 2 epochs:
    // the engine counted the rows the runtime trained on.
    let text = artha_engine::quickstart::synthetic_text(42, 3000);
    let rows = (text.chars().count() as u64 - 1) / 32;
    assert_eq!(steps, 2 * rows.div_ceil(16));
    let price = r.price_per_step.unwrap().wei();
    assert!(price * u128::from(steps) <= r.spec.budget.wei());
    assert!(price * u128::from(steps) + u128::from(steps) > r.spec.budget.wei());
    let audit = ok_json(&arthai(
        &home,
        &["--json", "verify", &job.to_string(), "--all"],
    ));
    assert_eq!(audit["audit"]["verdict"], "valid", "{audit:#}");
    // The model directory declares llama: registering it as an MLP is refused.
    let out = arthai(
        &home,
        &[
            "model-register",
            home.join("quickstart-lm/model").to_str().unwrap(),
            "--architecture",
            "mlp",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("architecture") && err.contains("llama"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quickstart_runs_the_whole_flow_on_the_embedded_default() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let out = arthai(&home, &["--json", "quickstart"]);
    let v = ok_json(&out);
    assert_eq!(v["status"], "settled", "{v:#}");
    let kinds: Vec<&str> = v["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    for k in ["checkpoint", "proofs", "model"] {
        assert!(kinds.contains(&k), "{kinds:?}");
    }
    let actions: Vec<&str> = v["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["submit", "assign", "commit", "model_register", "finalize"]
    );
    let job: JobId = v["job_id"].as_str().unwrap().parse().unwrap();

    // The CLI has exited: the library opens the same home.
    let e = engine(&home).await;
    check_settled_job(&e, &job, tmp.path()).await;
    let r = e.record(&job).unwrap();
    assert!(r.gpu_seconds.unwrap() >= 1, "the GPU time is measured");
    let c = e.chain();
    let million = 1_000_000u128 * 10u128.pow(18);
    // Paid per committed step at the price fixed at submission (the
    // estimate spread over the 48 steps the spec implies): all of it for a
    // job that ran every step.
    let price = r.price_per_step.unwrap().wei();
    let paid = 48 * price;
    assert!(paid <= r.spec.budget.wei() && paid + 48 > r.spec.budget.wei());
    // Gas is free on the development chain, so balances are exact.
    assert_eq!(
        c.worker.balance().await.unwrap().wei(),
        million - c.worker.min_stake().wei() + paid
    );
    assert_eq!(c.submitter.balance().await.unwrap().wei(), million - paid);
    assert_eq!(c.job_status(&job).await.unwrap(), ChainJobStatus::Finalized);
    // The assignment is on AIJobManager; the node's record on
    // NodeCertRegistry (what placement scores) gained the finalized job.
    assert_eq!(c.job_node(&job).await.unwrap(), Some(e.node_id()));
    assert_eq!(r.node, Some(e.node_id()));
    let node = c.node(&e.node_id()).await.unwrap();
    assert!(node.active && node.certified);
    assert_eq!(node.operator, c.worker.account());
    assert_eq!(node.stake, c.worker.min_stake());
    assert_eq!(
        node.price_per_gpu_second.wei(),
        artha_engine::engine::DEFAULT_RATE_WEI
    );
    assert_eq!(node.reputation, 1, "one finalized job");

    // Proofs: 3 epochs × 16 steps in windows of 16, checkpoints with CIDs.
    let m = e.proofs(&job).await.unwrap();
    assert_eq!(m.steps, 48);
    assert_eq!(m.window_roots.len(), 3);
    assert!(m.checkpoints.iter().all(|c| c.cid.is_some()));

    // Lineage: the trained model's parent is the initial model.
    let trained = e.catalog().model_of_job(&job).unwrap().unwrap();
    let parent = trained.parent.unwrap();
    let chain_lineage = c.lineage(&trained.id).await.unwrap();
    assert_eq!(chain_lineage.len(), 2);
    assert_eq!(chain_lineage[1], parent);
    // … and it names the dataset and the job that produced it.
    let p = c.model(&trained.id).await.unwrap();
    let dataset = trained.dataset.expect("trained on a registered dataset");
    assert_eq!(p.dataset, Some(dataset));
    assert_eq!(p.job, Some(job));
    assert_eq!(p.parent, Some(parent));
    assert_eq!(trained.job, Some(job));
    let model_artifact = r
        .artifacts
        .iter()
        .find(|a| a.kind.as_str() == "model")
        .unwrap();
    let model_uri: artha_core::ArthaUri = model_artifact.uri.parse().unwrap();
    assert_eq!(p.content, *model_uri.cid());
    drop(e);

    // Anyone can audit it by replay, from what the chain holds: every
    // window, then a window that does not exist (invalid input, exit 2).
    let out = arthai(&home, &["--json", "verify", &job.to_string(), "--all"]);
    let v = ok_json(&out);
    assert_eq!(v["audit"]["verdict"], "valid", "{v:#}");
    assert_eq!(v["audit"]["windows"].as_array().unwrap().len(), 3);
    assert_eq!(v["audit"]["replayed_steps"], 48);
    let out = arthai(&home, &["verify", &job.to_string(), "--window", "7"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    // The verifier mode audits every committed job of the home, a line each.
    let mut follower = Command::new(ARTHAI)
        .arg("--home")
        .arg(&home)
        .args(["--json", "verify", "--follow", "--sample", "2"])
        .env_remove("ARTHA_NATIVE_RUNTIME")
        .env_remove("ARTHA_RPC_URL")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(follower.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    follower.kill().unwrap();
    follower.wait().unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["audit"]["job_id"], job.to_string(), "{v:#}");
    assert_eq!(v["audit"]["verdict"], "valid", "{v:#}");
    assert_eq!(v["audit"]["windows"].as_array().unwrap().len(), 2, "{v:#}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("windows"),
        "{out:?}"
    );

    // Inference with the trained model over the same rows.
    let data = blobs_csv(tmp.path());
    let out = arthai(
        &home,
        &[
            "--json",
            "infer",
            "--model",
            &trained.id.to_string(),
            "--dataset",
            data.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success(), "a path is not a dataset reference");
    let ds = ok_json(&arthai(
        &home,
        &[
            "--json",
            "dataset-register",
            data.to_str().unwrap(),
            "--name",
            "rows",
        ],
    ));
    let v = ok_json(&arthai(
        &home,
        &[
            "--json",
            "infer",
            "--model",
            &trained.id.to_string(),
            "--dataset",
            ds["id"].as_str().unwrap(),
        ],
    ));
    assert!(
        ["completed", "settled"].contains(&v["status"].as_str().unwrap()),
        "{v:#}"
    );
    let outputs = v["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "outputs")
        .expect("inference outputs stored");
    // Inference is audited by replaying its batches against the committed
    // input and output digests.
    let a = ok_json(&arthai(
        &home,
        &["--json", "verify", v["job_id"].as_str().unwrap()],
    ));
    assert_eq!(a["audit"]["verdict"], "valid", "{a:#}");
    assert!(a["audit"]["replayed_steps"].as_u64().unwrap() >= 1, "{a:#}");
    let e = engine(&home).await;
    let dest = tmp.path().join("outputs");
    e.store()
        .get(&outputs["uri"].as_str().unwrap().parse().unwrap(), &dest)
        .await
        .unwrap();
    let preds = std::fs::read_to_string(dest.join("predictions.csv")).unwrap();
    assert_eq!(preds.lines().count(), 513, "header + one line per row");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_are_refused_with_the_field_and_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");

    // Unknown ids.
    let out = arthai(
        &home,
        &[
            "train",
            "--dataset",
            "dataset-00000000000000000000000000000001",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("dataset"));
    let out = arthai(&home, &["train", "--dataset", "not-an-id"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");

    let (e, ds) = engine_with_blobs(&home, tmp.path()).await;

    // A budget below the estimate is insufficient funds (README: exit 6)
    // and names the field.
    let mut spec = train_spec(ds.id, 1, 16);
    spec.budget = Amount::from_wei(1);
    let err = e.submit(spec).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InsufficientFunds);
    assert!(err.to_string().contains("budget"), "{err}");

    // Credentials: forged, expired, over the cap, from an untrusted issuer.
    let me = Identity::from_seed([9; 32]);
    let local = e.credential().clone();
    let mut forged = local.clone();
    forged.credential.budget_cap = Amount::from_wei(u128::MAX);
    let err = e
        .submit_as(train_spec(ds.id, 1, 16), e.identity(), &forged)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");

    let stranger = me
        .issue(Credential {
            issuer: me.did().clone(),
            subject: me.did().clone(),
            budget_cap: Amount::from_wei(u128::MAX),
            rate_limit_per_minute: 10,
            not_before: 0,
            expires_at: u64::MAX,
        })
        .unwrap();
    let err = e
        .submit_as(train_spec(ds.id, 1, 16), me.did(), &stranger)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(err.to_string().contains("issuer"), "{err}");

    // Credentials the trusted local identity issued to another submitter:
    // expired, and with a cap below the job's budget.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let budget = train_spec(ds.id, 1, 16).budget;
    let issue = |cap: Amount, rate: u32, expires_at: u64| {
        e.issue_credential(Credential {
            issuer: me.did().clone(),
            subject: me.did().clone(),
            budget_cap: cap,
            rate_limit_per_minute: rate,
            not_before: 0,
            expires_at,
        })
        .unwrap()
    };
    let expired = issue(budget, 10, now - 60);
    let err = e
        .submit_as(train_spec(ds.id, 1, 16), me.did(), &expired)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert_eq!(err.context_value("field"), Some("credential.expires_at"));
    let small = issue(Amount::from_wei(budget.wei() - 1), 10, now + 3600);
    let err = e
        .submit_as(train_spec(ds.id, 1, 16), me.did(), &small)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert_eq!(err.context_value("field"), Some("budget"));
    let err = e
        .submit_as(train_spec(ds.id, 1, 16), e.identity(), &small)
        .await
        .unwrap_err();
    assert_eq!(err.context_value("field"), Some("credential.subject"));
    assert!(e.list().unwrap().is_empty(), "nothing was recorded");

    // One submission a minute: the second is refused, retryably.
    let once = issue(budget, 1, now + 3600);
    let job = e
        .submit_as(train_spec(ds.id, 1, 16), me.did(), &once)
        .await
        .unwrap()
        .id();
    let err = e
        .submit_as(train_spec(ds.id, 1, 16), me.did(), &once)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ResourceExhausted, "{err}");
    assert!(err.is_retryable() && err.to_string().contains("rate limit"));
    let r = common::ended(&e, &job).await;
    assert_eq!(r.phase, JobPhase::Completed, "{r:?}");
    assert_eq!(r.submitter, me.did().as_str());
    assert_eq!(e.list().unwrap().len(), 1, "only the admitted job");
    e.clone().shutdown().await;

    // A second engine on the same home: a clear error, in process and from
    // the CLI.
    let err = Engine::open(&home).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    let out = arthai(&home, &["train", "--dataset", &ds.id.to_string()]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("another engine"));
    // Reading too needs the engine (or its daemon, `arthai serve`), and
    // the error says so.
    let out = arthai(&home, &["--json", "job-list"]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("arthai serve"));
    drop(e);
    let e = engine(&home).await;
    assert_eq!(e.list().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_failing_mid_way_commits_its_steps_and_is_paid_only_for_them() {
    let tmp = tempfile::tempdir().unwrap();
    let e = engine(&tmp.path().join("home")).await;
    let ds = e
        .register_dataset_path(
            &diverging_csv(tmp.path()),
            &artha_engine::engine::DatasetMeta::named("reg"),
        )
        .await
        .unwrap();
    let mut spec = train_spec(ds.id, 5, 4);
    spec.hyper.learning_rate = 10.0;
    spec.hyper.batch_size = 16;
    spec.hyper
        .extra
        .insert("task".into(), serde_json::json!("regress"));
    spec.hyper
        .extra
        .insert("optimizer".into(), serde_json::json!("sgd"));
    let job = e.submit(spec).await.unwrap().id();
    let r = common::ended(&e, &job).await;
    assert_eq!(r.phase, JobPhase::Failed, "{r:?}");
    let reason = r.reason.clone().unwrap();
    assert!(reason.contains("not finite"), "{reason}");
    assert_eq!(e.free_gpus(), 4, "GPU freed");
    let m = e.proofs(&job).await.unwrap();
    assert!(m.steps >= 1 && m.steps < 80, "{}", m.steps);
    assert_eq!(
        e.chain().job_status(&job).await.unwrap(),
        ChainJobStatus::Committed
    );
    // The partial work is kept: the proof manifest and every checkpoint it
    // names are artifacts of the failed job.
    assert!(r.artifacts.iter().any(|a| a.kind.as_str() == "proofs"));
    for c in &m.checkpoints {
        assert!(
            r.artifacts
                .iter()
                .any(|a| a.kind.as_str() == "checkpoint" && a.name == c.path),
            "{c:?} kept"
        );
    }

    assert!(common::outbox_mentions(&e, &job), "its writes are recorded");
    // Read before the period ends, so no settlement can slip in between.
    let c = e.chain();
    let op_before = c.worker.balance().await.unwrap().wei();
    let sub_before = c.submitter.balance().await.unwrap().wei();
    e.dev_advance_time(c.challenge_period_secs() + 1)
        .await
        .unwrap();
    assert_eq!(e.settle_due().await.unwrap(), 1);
    let tmp2 = tmp.path().join("check");
    std::fs::create_dir_all(&tmp2).unwrap();
    check_settled_job(&e, &job, &tmp2).await;
    let r = e.record(&job).unwrap();
    assert!(r.history.iter().any(|t| t.phase == JobPhase::Failed));
    // Only the committed steps are paid, at the price fixed at submission
    // (gas is free on the development chain).
    let paid = u128::from(m.steps) * r.price_per_step.unwrap().wei();
    assert!(paid > 0 && paid < r.spec.budget.wei());
    assert_eq!(c.worker.balance().await.unwrap().wei() - op_before, paid);
    assert_eq!(
        c.submitter.balance().await.unwrap().wei() - sub_before,
        r.spec.budget.wei() - paid
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_failing_before_any_step_is_refunded_in_full() {
    let tmp = tempfile::tempdir().unwrap();
    let e = engine(&tmp.path().join("home")).await;
    let bad = tmp.path().join("bad.csv");
    std::fs::write(&bad, "x0,x1,label\n1.0,2.0,0\n3.0,oops,1\n").unwrap();
    let ds = e
        .register_dataset_path(&bad, &artha_engine::engine::DatasetMeta::named("bad"))
        .await
        .unwrap();
    let job = e.submit(train_spec(ds.id, 1, 16)).await.unwrap().id();
    let r = e
        .job(&job)
        .unwrap()
        .wait_for(|p| p == JobPhase::Settled)
        .await
        .unwrap();
    assert!(
        r.history.iter().any(|t| t.phase == JobPhase::Failed),
        "{:?}",
        r.history
    );
    let failed = r
        .history
        .iter()
        .find(|t| t.phase == JobPhase::Failed)
        .and_then(|t| t.reason.clone())
        .unwrap();
    assert!(
        failed.contains("line 3"),
        "the reason names the bad line: {failed}"
    );
    assert_eq!(
        r.receipts
            .iter()
            .map(|x| x.action.as_str())
            .collect::<Vec<_>>(),
        ["submit", "assign", "fail"]
    );
    // Its status still says it failed, with why, once refunded.
    let st = e.status(&job).unwrap();
    assert_eq!(st.status, JobPhase::Failed);
    assert_eq!(st.phase, JobPhase::Settled);
    assert!(st.settled);
    assert!(st.reason.as_deref().unwrap().contains("line 3"), "{st:?}");
    let v = serde_json::to_value(&st).unwrap();
    assert_eq!(v["status"], "failed");
    assert_eq!(v["receipts"][2]["type"], "Refund");
    assert_eq!(v["receipts"][2]["payout"], "0");
    assert_eq!(
        e.chain().job_status(&job).await.unwrap(),
        ChainJobStatus::Failed
    );
    let Escrow { held, closed } = e.chain().escrow(&job).await.unwrap();
    assert!(closed && held == Amount::ZERO);
    let c = e.chain();
    assert_eq!(
        c.submitter.balance().await.unwrap().wei(),
        1_000_000u128 * 10u128.pow(18),
        "refunded in full"
    );
    assert_eq!(e.free_gpus(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_while_staging_refunds_and_while_running_pays_committed_steps() {
    let tmp = tempfile::tempdir().unwrap();
    let (e, ds) = engine_with_blobs(&tmp.path().join("home"), tmp.path()).await;

    // Cancelled before it runs: no step, escrow refunded in full.
    let early = e.submit(train_spec(ds.id, 400, 64)).await.unwrap().id();
    e.job(&early).unwrap().cancel().await.unwrap();
    let r = e.record(&early).unwrap();
    let r = if r.phase == JobPhase::Cancelled {
        e.job(&early)
            .unwrap()
            .wait_for(|p| p == JobPhase::Settled)
            .await
            .unwrap()
    } else {
        r
    };
    assert!(
        r.history.iter().any(|t| t.phase == JobPhase::Cancelled),
        "{:?}",
        r.history
    );
    assert_eq!(r.phase, JobPhase::Settled);
    assert!(!r.receipts.iter().any(|x| x.action.as_str() == "commit"));
    let Escrow { held, closed } = e.chain().escrow(&early).await.unwrap();
    assert_eq!(held, Amount::ZERO);
    if r.receipts.iter().any(|x| x.action.as_str() == "submit") {
        // It reached the chain: escrow was locked, then refunded in full.
        assert!(closed);
        assert_eq!(
            e.chain().job_status(&early).await.unwrap(),
            ChainJobStatus::Failed
        );
    } else {
        // Cancelled before the chain heard of it: nothing was locked.
        assert!(e.chain().job_status(&early).await.is_err());
    }

    // Cancelled while running: its steps are committed.
    let job = e.submit(train_spec(ds.id, 400, 64)).await.unwrap().id();
    let handle = e.job(&job).unwrap();
    tokio::time::timeout(Duration::from_secs(120), async {
        while handle.status().unwrap().training.step < 70 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    e.job(&job).unwrap().cancel().await.unwrap();
    let r = e.record(&job).unwrap();
    assert_eq!(r.phase, JobPhase::Cancelled, "{:?}", r.history);
    assert_eq!(e.free_gpus(), 4);
    let m = e.proofs(&job).await.unwrap();
    assert!(m.steps >= 70 && m.steps < 400 * 16, "{}", m.steps);
    assert!(
        r.artifacts.iter().any(|a| a.kind.as_str() == "checkpoint"),
        "partial checkpoints kept"
    );
    assert_eq!(
        e.chain().job_status(&job).await.unwrap(),
        ChainJobStatus::Committed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_engine_runs_many_jobs_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (e, ds) = engine_with_blobs(&tmp.path().join("home"), tmp.path()).await;
    let mut jobs = Vec::new();
    for i in 0..6 {
        let mut s = train_spec(ds.id, 2, 8);
        s.hyper.seed = i;
        jobs.push(e.submit(s).await.unwrap().id());
    }
    for j in &jobs {
        let r = common::ended(&e, j).await;
        assert_eq!(r.phase, JobPhase::Completed, "{r:?}");
    }
    assert_eq!(e.free_gpus(), 4);
    let roots: std::collections::BTreeSet<_> = {
        let mut v = Vec::new();
        for j in &jobs {
            v.push(e.proofs(j).await.unwrap().job_root);
        }
        v.into_iter().collect()
    };
    assert_eq!(roots.len(), 6, "different seeds, different proofs");
}

/// A commit that reached the chain while the engine died before recording
/// its receipt (the outbox finds it on chain on restart) is still settled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_receipt_was_lost_is_still_settled() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let (e, ds) = engine_with_blobs(&home, tmp.path()).await;
    let job = e.submit(train_spec(ds.id, 1, 16)).await.unwrap().id();
    let r = common::ended(&e, &job).await;
    assert_eq!(r.phase, JobPhase::Completed, "{r:?}");
    e.shutdown().await;

    // The ledger as such a crash leaves it: no `commit` receipt.
    let db = rusqlite::Connection::open(home.join("jobs/ledger.db")).unwrap();
    let receipts: String = db
        .query_row(
            "SELECT receipts FROM jobs WHERE id = ?1",
            [job.to_string()],
            |row| row.get(0),
        )
        .unwrap();
    let mut list: Vec<serde_json::Value> = serde_json::from_str(&receipts).unwrap();
    list.retain(|x| x["action"] != "commit");
    db.execute(
        "UPDATE jobs SET receipts = ?1 WHERE id = ?2",
        [serde_json::to_string(&list).unwrap(), job.to_string()],
    )
    .unwrap();
    drop(db);

    let e = engine(&home).await;
    let r = e.record(&job).unwrap();
    assert!(!r.receipts.iter().any(|x| x.action.as_str() == "commit"));
    e.dev_advance_time(e.chain().challenge_period_secs() + 1)
        .await
        .unwrap();
    assert_eq!(e.settle_due().await.unwrap(), 1);
    assert_eq!(e.record(&job).unwrap().phase, JobPhase::Settled);
    assert_eq!(
        e.chain().job_status(&job).await.unwrap(),
        ChainJobStatus::Finalized
    );
}

/// A job that ended while the engine died before closing it (the ledger
/// says Failed, not Settled) is closed when the home is opened again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_job_a_crash_left_unclosed_is_closed_on_open() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let e = engine(&home).await;
    let bad = tmp.path().join("bad.csv");
    std::fs::write(&bad, "x0,x1,label\n1.0,2.0,0\n3.0,oops,1\n").unwrap();
    let ds = e
        .register_dataset_path(&bad, &artha_engine::engine::DatasetMeta::named("bad"))
        .await
        .unwrap();
    let job = e.submit(train_spec(ds.id, 1, 16)).await.unwrap().id();
    let r = common::ended(&e, &job).await;
    assert_eq!(r.phase, JobPhase::Settled, "{r:?}");
    e.shutdown().await;

    // The ledger as a crash between the failure and the close leaves it.
    let db = rusqlite::Connection::open(home.join("jobs/ledger.db")).unwrap();
    db.execute(
        "UPDATE jobs SET phase = 'failed' WHERE id = ?1",
        [job.to_string()],
    )
    .unwrap();
    drop(db);
    let e = engine(&home).await;
    let r = tokio::time::timeout(
        Duration::from_secs(60),
        e.job(&job).unwrap().wait_for(|p| p == JobPhase::Settled),
    )
    .await
    .expect("closed on open")
    .unwrap();
    assert_eq!(
        r.history.last().and_then(|t| t.reason.as_deref()),
        Some("nothing computed: escrow refunded")
    );
    let Escrow { held, closed } = e.chain().escrow(&job).await.unwrap();
    assert!(closed && held == Amount::ZERO);
}

/// A registration that reached the chain but not the catalog (a crash in
/// between) is completed by registering again, not refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_lost_from_the_catalog_registers_again() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let e = engine(&home).await;
    let data = blobs_csv(tmp.path());
    let ds = e
        .register_dataset_path(&data, &artha_engine::engine::DatasetMeta::named("blobs"))
        .await
        .unwrap();
    let uri: artha_core::ArthaUri = ds.uri.parse().unwrap();
    let reg = artha_engine::engine::ModelRegistration {
        name: "m".into(),
        architecture: "mlp".into(),
        dataset: Some(ds.id),
        ..Default::default()
    };
    let m = e.register_model(&uri, &reg).await.unwrap();
    e.shutdown().await;
    let db = rusqlite::Connection::open(home.join("jobs/catalog.db")).unwrap();
    db.execute("DELETE FROM models", []).unwrap();
    db.execute("DELETE FROM datasets", []).unwrap();
    drop(db);
    let e = engine(&home).await;
    assert!(e.catalog().dataset(&ds.id).unwrap().is_none());
    let again = e
        .register_dataset_path(&data, &artha_engine::engine::DatasetMeta::named("blobs"))
        .await
        .unwrap();
    assert_eq!(again.id, ds.id);
    let m2 = e.register_model(&uri, &reg).await.unwrap();
    assert_eq!(m2.id, m.id);
    assert!(e.catalog().model(&m.id).unwrap().is_some());
}

/// The job commands one by one, as a user types them: push, register,
/// submit detached, follow, list, logs, proofs; and their bad input.
#[test]
fn cli_job_commands_step_by_step_and_their_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let model_dir = tmp.path().join("model");
    std::fs::create_dir_all(&model_dir).unwrap();
    std::fs::write(
        model_dir.join("config.json"),
        r#"{"kind": "mlp", "task": "classify", "hidden": [16]}"#,
    )
    .unwrap();

    let pushed = ok_json(&arthai(
        &home,
        &["--json", "storage-push", model_dir.to_str().unwrap()],
    ));
    let model_uri = pushed["uri"].as_str().unwrap();
    assert!(model_uri.starts_with("artha://b3:"), "{pushed}");
    let model = ok_json(&arthai(
        &home,
        &[
            "--json",
            "model-register",
            model_uri,
            "--name",
            "base",
            "--architecture",
            "mlp",
        ],
    ));
    let model_id = model["id"].as_str().unwrap().to_string();
    let data = blobs_csv(tmp.path());
    let ds = ok_json(&arthai(
        &home,
        &[
            "--json",
            "dataset-register",
            data.to_str().unwrap(),
            "--name",
            "blobs",
            "--tags",
            "demo",
        ],
    ));
    let ds_id = ds["id"].as_str().unwrap().to_string();

    // Bad input: each names its field, exits with its code, records nothing.
    let bad: [(&[&str], i32, &str); 7] = [
        (
            &["train", "--dataset", &ds_id, "--epochs", "0"],
            2,
            "hyper.epochs",
        ),
        (
            &["train", "--dataset", &ds_id, "--hyper", "lr"],
            2,
            "--hyper",
        ),
        (
            &["train", "--dataset", &ds_id, "--budget", "lots"],
            2,
            "--budget",
        ),
        (
            &["train", "--model", "model-x", "--dataset", &ds_id],
            2,
            "model",
        ),
        (
            &[
                "model-register",
                model_uri,
                "--name",
                "m",
                "--architecture",
                "mlp",
                "--parent",
                "model-00000000000000000000000000000001",
            ],
            3,
            "parent",
        ),
        (
            &["job-status", "job-00000000000000000000000000000001"],
            3,
            "job",
        ),
        (
            &["storage-push", "/nonexistent/path"],
            3,
            "/nonexistent/path",
        ),
    ];
    for (args, code, field) in bad {
        let out = arthai(&home, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(field), "{args:?}: {err}");
    }
    let list = ok_json(&arthai(&home, &["--json", "job-list"]));
    assert_eq!(list.as_array().unwrap().len(), 0, "{list}");

    // Submit detached; the next command on the home drives it to its end.
    let sub = ok_json(&arthai(
        &home,
        &[
            "--json",
            "train",
            "--model",
            &model_id,
            "--dataset",
            &ds_id,
            "--epochs",
            "2",
            "--batch-size",
            "64",
            "--gpus",
            "1",
            "--proof-window",
            "4",
            "--detach",
        ],
    ));
    let job = sub["job_id"].as_str().unwrap().to_string();
    let v = ok_json(&arthai(&home, &["--json", "job-status", &job, "--wait"]));
    assert_eq!(v["status"], "completed", "{v:#}");
    assert_eq!(v["gpus"].as_array().unwrap().len(), 1);
    let list = ok_json(&arthai(&home, &["--json", "job-list"]));
    assert_eq!(list[0]["job_id"], job.as_str());
    let logs = ok_json(&arthai(&home, &["--json", "job-logs", &job]));
    assert!(
        logs.as_array()
            .unwrap()
            .iter()
            .any(|l| l["text"].as_str().unwrap().contains("Training complete")),
        "{logs}"
    );
    let text = arthai(&home, &["job-logs", &job, "--since", "1"]);
    assert!(text.status.success());
    let proofs = ok_json(&arthai(&home, &["--json", "proofs", &job]));
    assert_eq!(proofs["steps"], 2 * 8, "512 rows / 64 × 2 epochs");
    assert_eq!(proofs["window_roots"].as_array().unwrap().len(), 4);
    // A finished job cannot be cancelled.
    let out = arthai(&home, &["job-cancel", &job]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
}

/// Epochs of the jobs these tests interrupt: long enough (16 steps an
/// epoch) to still be running when they act, as the native runtime trains
/// this MLP at thousands of steps a second; not a multiple of 4, so the
/// last step (16 × 602) is not a window end (window 64) and the final
/// weights are the only checkpoint of that step.
const LONG_EPOCHS: u32 = 602;

/// `Engine::shutdown` mid-run unlocks the home; the next engine in the same
/// process re-attaches to the still-running runtime and completes the job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_mid_run_then_reopen_completes_the_job() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let (e, ds) = engine_with_blobs(&home, tmp.path()).await;
    let job = e
        .submit(train_spec(ds.id, LONG_EPOCHS, 64))
        .await
        .unwrap()
        .id();
    // Checkpoints reach the store as the runtime writes them, while it runs.
    let ckpt = loop {
        let r = e.record(&job).unwrap();
        assert!(!r.phase.is_terminal(), "finished too soon: {r:?}");
        if let Some(a) = r.artifacts.iter().find(|a| a.kind.as_str() == "checkpoint") {
            assert_eq!(r.phase, JobPhase::Running);
            break a.clone();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let dest = tmp.path().join("early-checkpoint");
    e.store()
        .get(&ckpt.uri.parse().unwrap(), &dest)
        .await
        .unwrap();
    assert!(std::fs::metadata(&dest).unwrap().len() > 0);
    e.shutdown().await;
    let e = engine(&home).await;
    let r = common::ended(&e, &job).await;
    assert_eq!(r.phase, JobPhase::Completed, "{r:?}");
    assert_eq!(
        e.proofs(&job).await.unwrap().steps,
        u64::from(LONG_EPOCHS) * 16
    );
    assert!(!home.join(format!("jobs/run/{job}/resumes")).exists());
    assert_eq!(e.free_gpus(), 4, "its GPU was freed");
}

/// `arthai train` on a long job as a child process; returns it and the job
/// once the run is past its third checkpoint (200 steps, window 64).
fn start_long_training(home: &Path, tmp: &Path) -> (std::process::Child, JobId) {
    let data = blobs_csv(tmp);
    let ds = ok_json(&arthai(
        home,
        &[
            "--json",
            "dataset-register",
            data.to_str().unwrap(),
            "--name",
            "blobs",
        ],
    ));
    let ds_id = ds["id"].as_str().unwrap().to_string();
    let args = [
        "train",
        "--dataset",
        &ds_id,
        "--epochs",
        &LONG_EPOCHS.to_string(),
        "--batch-size",
        "32",
        "--learning-rate",
        "0.05",
        "--seed",
        "5",
        "--proof-window",
        "64",
        "--max-duration",
        "600",
    ];
    let mut child = Command::new(ARTHAI)
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("ARTHA_NATIVE_RUNTIME")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let job = common::wait_for_steps(home, 200, &mut child);
    (child, job)
}

/// The runtime's process group, from the process executor's record.
fn runtime_pgid(home: &Path, job: &JobId) -> i32 {
    let rec = std::fs::read(home.join(format!("jobs/run/{job}/process.json"))).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&rec).unwrap();
    v["pid"].as_i64().unwrap() as i32
}

/// After a restart the job ends completed exactly once on chain, with the
/// same proofs as an uninterrupted run of the same spec.
async fn check_recovered_job(home: &Path, job: &JobId) {
    let v = ok_json(&arthai(
        home,
        &["--json", "job-status", &job.to_string(), "--wait"],
    ));
    assert_eq!(v["status"], "completed", "{v:#}");
    let actions: Vec<&str> = v["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["submit", "assign", "commit", "model_register"]);

    let e = engine(home).await;
    assert_eq!(
        e.chain().job_status(job).await.unwrap(),
        ChainJobStatus::Committed
    );
    // Exactly one escrow was locked for the job (no second submission).
    let Escrow { held, closed } = e.chain().escrow(job).await.unwrap();
    assert!(!closed && held == e.record(job).unwrap().spec.budget);
    let resumed = e.proofs(job).await.unwrap();
    assert_eq!(resumed.steps, u64::from(LONG_EPOCHS) * 16);
    let ckpt_steps: Vec<u64> = resumed.checkpoints.iter().map(|c| c.step).collect();
    let mut dedup = ckpt_steps.clone();
    dedup.dedup();
    assert_eq!(ckpt_steps, dedup, "no checkpoint recorded twice");

    let spec = e.record(job).unwrap().spec;
    let again = e.submit(spec).await.unwrap().id();
    let r = common::ended(&e, &again).await;
    assert_eq!(r.phase, JobPhase::Completed);
    let clean = e.proofs(&again).await.unwrap();
    assert_eq!(clean.job_root, resumed.job_root);
    assert_eq!(clean.final_weights, resumed.final_weights);
}

/// kill -9 of the engine mid-training: the runtime, in its own process
/// group, runs on; the restarted engine re-attaches to it (no relaunch).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_engine_mid_training_reattaches_to_the_runtime() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let (mut child, job) = start_long_training(&home, tmp.path());
    // From another shell while `arthai train` holds the home (no daemon):
    // refused with the way out (`arthai serve`; tests/serve.rs has the
    // shells sharing a served home).
    let out = arthai(&home, &["job-cancel", &job.to_string()]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("arthai serve"));
    nix_kill9(child.id());
    assert!(!child.wait().unwrap().success());
    let pgid = runtime_pgid(&home, &job);
    assert!(
        Command::new("kill")
            .args(["-0", &pgid.to_string()])
            .status()
            .unwrap()
            .success(),
        "the runtime outlives the engine"
    );
    check_recovered_job(&home, &job).await;
    assert!(
        !home.join(format!("jobs/run/{job}/resumes")).exists(),
        "re-attached, not relaunched"
    );
    // Nothing it printed while no engine watched it was lost.
    let logs = ok_json(&arthai(&home, &["--json", "job-logs", &job.to_string()]));
    let text: Vec<&str> = logs
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    let last = format!("Epoch {LONG_EPOCHS}/{LONG_EPOCHS}");
    assert!(text.iter().any(|t| t.contains(&last)), "{text:?}");
    assert!(
        text.iter().any(|t| t.contains("Training complete")),
        "{text:?}"
    );
}

/// kill -9 of the engine and of its runtime mid-training (a machine crash):
/// the restarted engine resumes the job from its last checkpoint, and the
/// deterministic runtime recomputes the same proofs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_engine_and_runtime_resumes_from_the_last_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let (mut child, job) = start_long_training(&home, tmp.path());
    nix_kill9(child.id());
    assert!(!child.wait().unwrap().success());
    let pgid = runtime_pgid(&home, &job);
    let st = Command::new("kill")
        .args(["-9", "--", &format!("-{pgid}")])
        .status()
        .unwrap();
    assert!(st.success());
    check_recovered_job(&home, &job).await;
    assert_eq!(
        std::fs::read_to_string(home.join(format!("jobs/run/{job}/resumes"))).unwrap(),
        "1",
        "resumed once from a checkpoint"
    );
}

fn nix_kill9(pid: u32) {
    let st = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}
