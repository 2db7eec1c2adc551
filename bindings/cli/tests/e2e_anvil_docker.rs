//! End-to-end on the other parts: the contracts on a real anvil over
//! JSON-RPC, and PyTorch training jobs in the locally built torch image
//! under Docker — a whole job settled on anvil, and a kill -9 of the engine
//! mid-run that re-attaches to the running container (tests/run.sh starts
//! anvil and dockerd and exports `ARTHA_TEST_ANVIL_URL` and
//! `ARTHA_TORCH_IMAGE`; under `CI=true` both must be there).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use artha_core::JobPhase;
use artha_core::{
    Amount, ChainJobStatus, CostModel, InputRef, JobKind, JobSpec, ProofChain, Runtime,
};
use artha_engine::Engine;
use artha_engine::engine::{DEFAULT_RATE_WEI, DockerChoice};

mod common;
use common::{anvil_party_keys, check_settled_job, write_keys_file};

const ARTHAI: &str = env!("CARGO_BIN_EXE_arthai");

fn required(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{var} is not set: under CI this suite must run (tests/run.sh sets it)"
            );
            eprintln!("skipping: {var} not set (run via tests/run.sh)");
            None
        }
    }
}

fn blobs_csv(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("blobs.csv");
    std::fs::write(&p, artha_engine::quickstart::synthetic_dataset(21, 256)).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torch_job_in_docker_settles_on_anvil() {
    let (Some(url), Some(image)) = (
        required("ARTHA_TEST_ANVIL_URL"),
        required("ARTHA_TORCH_IMAGE"),
    ) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    // anvil's keys 0–4: admin, scheduler, worker, submitter, verifier.
    let e = Engine::builder()
        .home(tmp.path().join("home"))
        .rpc_chain(url.clone(), anvil_party_keys(0, true))
        .docker(DockerChoice::Required)
        .native_runtime(ARTHAI, &["runtime"])
        // Settlement only when the test asks (it measures balances around it).
        .settle_interval(std::time::Duration::from_secs(3600))
        .build()
        .await
        .unwrap();
    let c = e.chain();
    // The escrow holder (DealMarket), from the deployment saved in the home.
    let market_balance = async || {
        use artha_engine::chain::EvmBackend;
        let dir = e.home().join("chain");
        let saved = std::fs::read_dir(&dir)
            .unwrap()
            .map(|f| f.unwrap().path())
            .find(|p| p.to_string_lossy().contains("deployment-rpc-"))
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(saved).unwrap()).unwrap();
        let market = v["deployment"]["market"].as_str().unwrap().parse().unwrap();
        let rpc = artha_engine::chain::rpc::RpcChain::connect(&url, &common::ANVIL_KEYS[..1])
            .await
            .unwrap();
        rpc.balance(market).await.unwrap()
    };
    let market_before = market_balance().await;

    let ds = e
        .register_dataset_path(
            &blobs_csv(tmp.path()),
            &artha_engine::engine::DatasetMeta {
                name: "blobs".into(),
                tags: "torch".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut spec = JobSpec::new(JobKind::Train, Runtime::Image(image), Amount::ZERO);
    spec.dataset = Some(InputRef::Id(ds.id));
    spec.hyper.epochs = 2;
    spec.hyper.batch_size = 32;
    spec.hyper.learning_rate = 0.05;
    spec.hyper.seed = 3;
    spec.resources.gpus = 1;
    spec.resources.gpu_memory_mib = 512;
    spec.resources.memory_mib = 2048;
    spec.resources.max_duration_secs = 300;
    spec.proof_window = 8;
    spec.budget = CostModel::new(Amount::from_wei(DEFAULT_RATE_WEI))
        .estimate(&spec)
        .unwrap()
        .cost;
    let job = e.submit(spec).await.unwrap().id();
    let r = common::ended(&e, &job).await;
    let logs = e.logs(&job, 0).await.unwrap();
    assert_eq!(
        r.phase,
        JobPhase::Completed,
        "{:?}\n{}",
        r.reason,
        logs.iter()
            .map(|l| l.text.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        logs.iter().any(|l| l.text.contains("loss")),
        "the script reports progress"
    );
    let m = e.proofs(&job).await.unwrap();
    assert_eq!(m.steps, 2 * 8, "256 rows / 32 per batch × 2 epochs");
    assert_eq!(c.job_status(&job).await.unwrap(), ChainJobStatus::Committed);

    // anvil's evm_increaseTime past the challenge period, then settle.
    e.dev_advance_time(c.challenge_period_secs() + 1)
        .await
        .unwrap();
    // `finalize` is sent by the worker (the node's operator): the
    // submitter's balance change across it is the refund exactly, the
    // worker's the payout less the transaction's fee.
    let keys = anvil_party_keys(0, true);
    let worker = artha_engine::chain::rpc::key_address("worker", &keys.worker).unwrap();
    let submitter = artha_engine::chain::rpc::key_address("submitter", &keys.submitter).unwrap();
    assert_eq!(
        c.worker.account(),
        worker.to_string(),
        "the worker's client"
    );
    assert_eq!(c.submitter.account(), submitter.to_string());
    let op_before = c.worker.balance().await.unwrap().wei();
    let sub_before = c.submitter.balance().await.unwrap().wei();
    assert_eq!(e.settle_due().await.unwrap(), 1);
    let r = e.record(&job).unwrap();
    assert_eq!(r.phase, JobPhase::Settled);
    assert_eq!(c.job_status(&job).await.unwrap(), ChainJobStatus::Finalized);
    // Every artifact retrievable and verified, every receipt mined on anvil,
    // the escrow closed.
    check_settled_job(&e, &job, tmp.path()).await;
    let actions: Vec<&str> = r.receipts.iter().map(|x| x.action.as_str()).collect();
    assert_eq!(
        actions,
        ["submit", "assign", "commit", "model_register", "finalize"]
    );
    let kinds: Vec<&str> = r.artifacts.iter().map(|a| a.kind.as_str()).collect();
    for k in ["checkpoint", "proofs", "model"] {
        assert!(kinds.contains(&k), "{kinds:?}");
    }
    // The torch runtime's checkpoints every proof window (8 steps) and its
    // final weights, each in the store and in the manifest with its CID.
    assert_eq!(m.checkpoints.len(), 16 / 8 + 1, "{:?}", m.checkpoints);
    assert!(m.checkpoints.iter().all(|c| c.cid.is_some()));
    // Escrow: locked at submission, all of it paid out or refunded; the
    // node was paid its committed steps × the price fixed at submission.
    assert_eq!(market_balance().await, market_before);
    assert!(r.gpu_seconds.unwrap() >= 1, "the GPU time is measured");
    let paid = u128::from(m.steps) * r.price_per_step.unwrap().wei();
    let op_after = c.worker.balance().await.unwrap().wei();
    let sub_after = c.submitter.balance().await.unwrap().wei();
    let fee = paid - (op_after - op_before);
    assert!(
        fee > 0 && fee < 10u128.pow(16),
        "node paid its committed steps × price, less its finalize fee ({fee} wei)"
    );
    assert_eq!(
        sub_after - sub_before,
        r.spec.budget.wei() - paid,
        "the rest refunded"
    );
    let trained = e.catalog().model_of_job(&job).unwrap().unwrap();
    assert_eq!(trained.dataset, Some(ds.id));
}

/// `arthai` opens an anvil chain with a keys file of one key per party:
/// with the admin key it deploys the contracts and certifies its node;
/// without it, it uses that deployment and has nobody to certify a node.
#[test]
fn a_keys_file_of_five_parties_opens_the_chain() {
    let Some(url) = required("ARTHA_TEST_ANVIL_URL") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    // anvil's keys 5–9: the torch test sends from 0–4 meanwhile.
    let with_admin = write_keys_file(&tmp.path().join("keys"), &anvil_party_keys(5, true));
    let without = write_keys_file(&tmp.path().join("keys-2"), &anvil_party_keys(5, false));
    let arthai = |home: &str, keys: &Path| {
        std::process::Command::new(ARTHAI)
            .arg("--home")
            .arg(tmp.path().join(home))
            .args(["--json", "--rpc-url", &url, "--rpc-keys-file"])
            .arg(keys)
            .arg("settle")
            .env_remove("ARTHA_RPC_KEYS")
            .env_remove("ARTHA_RPC_KEYS_FILE")
            .output()
            .unwrap()
    };
    let out = arthai("home", &without);
    assert!(!out.status.success(), "nothing deployed yet: {out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("admin key"),
        "{out:?}"
    );
    let out = arthai("home", &with_admin);
    assert!(out.status.success(), "{out:?}");
    let out = arthai("home", &without);
    assert!(
        out.status.success(),
        "the saved deployment is used: {out:?}"
    );
}

/// kill -9 of `arthai train` while its torch job runs in a container: the
/// container runs on under dockerd, and the next command on the home
/// re-attaches to the same container (no relaunch) and completes the job.
#[test]
fn kill_9_of_the_engine_reattaches_to_the_running_container() {
    let Some(image) = required("ARTHA_TORCH_IMAGE") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let arthai = |args: &[&str]| {
        std::process::Command::new(ARTHAI)
            .arg("--home")
            .arg(&home)
            .args(args)
            .env_remove("ARTHA_RPC_URL")
            .output()
            .unwrap()
    };
    let out = arthai(&[
        "--json",
        "dataset-register",
        blobs_csv(tmp.path()).to_str().unwrap(),
        "--name",
        "blobs",
    ]);
    assert!(out.status.success(), "{out:?}");
    let ds: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let runtime = format!("image:{image}");
    let mut child = std::process::Command::new(ARTHAI)
        .arg("--home")
        .arg(&home)
        .args([
            "train",
            "--runtime",
            &runtime,
            "--dataset",
            ds["id"].as_str().unwrap(),
            "--epochs",
            "400",
            "--batch-size",
            "32",
            "--learning-rate",
            "0.05",
            "--proof-window",
            "64",
            "--max-duration",
            "600",
        ])
        .env_remove("ARTHA_RPC_URL")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let runs = home.join("jobs").join("run");
    let job = common::wait_for_steps(&home, 100, &mut child).to_string();
    let st = std::process::Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    assert!(!child.wait().unwrap().success());

    // The container is still running, labelled with the job.
    let ps = std::process::Command::new("docker")
        .args([
            "ps",
            "-q",
            "--filter",
            &format!("label={}={job}", artha_engine::exec::LABEL_JOB),
        ])
        .output()
        .unwrap();
    let before = String::from_utf8_lossy(&ps.stdout).trim().to_string();
    assert!(!before.is_empty(), "the container outlives the engine");

    let out = arthai(&["--json", "job-status", &job, "--wait"]);
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "completed", "{v:#}");
    assert!(
        !runs.join(&job).join("resumes").exists(),
        "re-attached, not relaunched"
    );
    let steps = v["training"]["step"].as_u64().unwrap_or(0);
    let out = arthai(&["--json", "proofs", &job]);
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(m["steps"], 400 * 8, "every step once (progress {steps})");
}
