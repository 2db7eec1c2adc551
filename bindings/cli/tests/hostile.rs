//! Hostile jobs: a runtime the attacker controls, run by the real engine
//! (native processes and Docker containers), tries each hole of
//! `docs/SECURITY.md`; every attack must fail, the job must end with a
//! clear reason, the engine must stay within a memory bound, and the home
//! must stay usable. And a crash loop over the gap between a run's end and
//! its proofs: a finished job is always proved and settled.
//!
//! The hostile runtime is `artha-testrt` (tests/testrt), scripted through
//! the spec's `hyper.extra.script` (it reaches the runtime as
//! `ARTHA_SCRIPT`): natively it stands in for the `mlp` runtime; under
//! Docker it is the `FROM scratch` test image (`ARTHA_TESTRT_IMAGE`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use artha_core::{Amount, ErrorKind, InputRef, JobId, JobKind, JobSpec, ProofChain, Runtime};
use artha_core::{JobPhase, JobRecord};
use artha_engine::Engine;
use artha_engine::engine::DockerChoice;

#[allow(dead_code)]
mod common;

const ARTHAI: &str = env!("CARGO_BIN_EXE_arthai");

/// The `artha-testrt` binary of this build (tests/run.sh builds it).
fn testrt_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("artha-testrt");
    assert!(
        bin.exists(),
        "{} missing: run `cargo build -p artha-testrt` (tests/run.sh does)",
        bin.display()
    );
    bin
}

/// The test image, or `None` (test skipped) outside CI when unset.
fn testrt_image() -> Option<String> {
    match std::env::var("ARTHA_TESTRT_IMAGE") {
        Ok(t) if !t.is_empty() => Some(t),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "ARTHA_TESTRT_IMAGE is not set: under CI the hostile Docker jobs must run"
            );
            eprintln!("skipping: ARTHA_TESTRT_IMAGE not set (run via tests/run.sh)");
            None
        }
    }
}

async fn hostile_engine(home: &Path, docker: bool) -> Engine {
    Engine::builder()
        .home(home)
        .native_runtime(testrt_bin(), &[])
        .docker(if docker {
            DockerChoice::Required
        } else {
            DockerChoice::Off
        })
        .build()
        .await
        .unwrap()
}

/// A train spec whose runtime runs `script`.
fn spec(e: &Engine, dataset: artha_core::DatasetId, runtime: Runtime, script: &str) -> JobSpec {
    let mut s = JobSpec::new(JobKind::Train, runtime, Amount::ZERO);
    s.dataset = Some(InputRef::Id(dataset));
    s.hyper.epochs = 1;
    s.hyper.batch_size = 1;
    s.hyper
        .extra
        .insert("script".into(), serde_json::json!(script));
    s.resources.gpus = 1;
    s.resources.gpu_memory_mib = 512;
    s.resources.memory_mib = 256;
    s.resources.max_duration_secs = 120;
    s.proof_window = 4;
    s.budget = e.cost_model().estimate(&s).unwrap().cost;
    s
}

/// Registers a small dataset, submits `script` on `runtime`, waits for the
/// end; returns the engine, the job's record and the test's temp dir.
async fn run_hostile(
    docker: bool,
    runtime: impl Fn() -> Runtime,
    script: &str,
) -> (Engine, JobRecord, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let e = hostile_engine(&home, docker).await;
    let data = tmp.path().join("d.csv");
    // Four rows at batch 1: the spec implies the 4 steps the scripts run.
    std::fs::write(&data, "x,y\n1,2\n3,4\n5,6\n7,8\n").unwrap();
    let ds = e
        .register_dataset_path(&data, &artha_engine::engine::DatasetMeta::named("d"))
        .await
        .unwrap();
    // The host secret a link points at: created by the test, outside the home.
    std::fs::write(tmp.path().join("secret"), SECRET).unwrap();
    let script = script.replace("{tmp}", tmp.path().to_str().unwrap());
    let job = e
        .submit(spec(&e, ds.id, runtime(), &script))
        .await
        .unwrap()
        .id();
    let r = common::ended(&e, &job).await;
    (e, r, tmp)
}

const SECRET: &str = "host-secret-7f3a: root:$6$not-for-jobs";

/// No artifact of the job holds the host's secret, and the job's reason
/// names what was refused.
async fn assert_contained(e: &Engine, r: &JobRecord, tmp: &Path, reason_has: &str) {
    assert!(
        matches!(r.phase, JobPhase::Failed | JobPhase::Settled),
        "the hostile job must fail: {r:?}"
    );
    // The reason the job failed (a later transition, the refund at
    // settlement, has its own).
    let reasons: Vec<String> = r.history.iter().filter_map(|t| t.reason.clone()).collect();
    assert!(
        reasons.iter().any(|x| x.contains(reason_has)),
        "reasons {reasons:?} should say {reason_has:?}"
    );
    for (i, a) in r.artifacts.iter().enumerate() {
        let dest = tmp.join(format!("got-{i}"));
        e.store().get(&a.uri.parse().unwrap(), &dest).await.unwrap();
        let mut stack = vec![dest];
        while let Some(p) = stack.pop() {
            if p.is_dir() {
                stack.extend(std::fs::read_dir(&p).unwrap().map(|d| d.unwrap().path()));
            } else if let Ok(bytes) = std::fs::read(&p) {
                assert!(
                    !String::from_utf8_lossy(&bytes).contains("host-secret-7f3a"),
                    "artifact {a:?} holds the host's file"
                );
            }
        }
    }
    // The home stays usable: the engine answers and can run the next job.
    assert!(e.list().is_ok());
    assert!(e.store().verify().await.unwrap().is_ok());
}

/// Peak resident memory of this process (the engine runs in it), MiB.
fn peak_rss_mib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = s.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        / 1024
}

fn native() -> Runtime {
    Runtime::Native("mlp".into())
}

// ------------------------------------------------------------ 1. links

const LINK_SCRIPT: &str = "symlink {tmp}/secret $ARTHA_CHECKPOINT_DIR/leak.safetensors \
                           steps 2 checkpoint leak.safetensors 2 steps 2 complete";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_checkpoint_symlink_to_a_host_file_is_not_collected() {
    let (e, r, tmp) = run_hostile(false, native, LINK_SCRIPT).await;
    assert_contained(&e, &r, tmp.path(), "symlink").await;
    assert!(!r.artifacts.iter().any(|a| a.name == "leak.safetensors"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_checkpoint_symlink_to_a_host_file_is_not_collected() {
    let Some(image) = testrt_image() else { return };
    let script = "symlink {tmp}/secret /checkpoints/leak.safetensors \
                  steps 2 checkpoint leak.safetensors 2 steps 2 complete";
    let (e, r, tmp) = run_hostile(true, || Runtime::Image(image.clone()), script).await;
    assert_contained(&e, &r, tmp.path(), "symlink").await;
    assert!(!r.artifacts.iter().any(|a| a.name == "leak.safetensors"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_checkpoint_behind_a_linked_directory_is_not_collected() {
    let script =
        "symlink {tmp} $ARTHA_CHECKPOINT_DIR/up steps 2 checkpoint up/secret 2 steps 2 complete";
    let (e, r, tmp) = run_hostile(false, native, script).await;
    assert_contained(&e, &r, tmp.path(), "symlink").await;
}

// ------------------------------------------------------ 2. events floods

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_events_linked_to_dev_zero_fail_the_job_within_bounds() {
    let (e, r, tmp) =
        run_hostile(false, native, "events 2 events-link /dev/zero sleep 60000").await;
    assert_contained(&e, &r, tmp.path(), "events file").await;
    assert!(
        peak_rss_mib() < 1024,
        "engine memory {} MiB",
        peak_rss_mib()
    );
    // Every later read of the job is bounded too (no repeat of the flood).
    assert!(e.record(&r.id).is_ok());
    assert!(e.proofs(&r.id).await.is_err() || r.phase == JobPhase::Failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_events_linked_to_dev_zero_fail_the_job_within_bounds() {
    let Some(image) = testrt_image() else { return };
    let (e, r, tmp) = run_hostile(
        true,
        || Runtime::Image(image.clone()),
        "events 2 events-link /dev/zero sleep 60000",
    )
    .await;
    assert_contained(&e, &r, tmp.path(), "events file").await;
    assert!(
        peak_rss_mib() < 1024,
        "engine memory {} MiB",
        peak_rss_mib()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_event_line_without_end_fails_the_job() {
    let (e, r, tmp) = run_hostile(false, native, "events 2 flood 4 sleep 60000").await;
    assert_contained(&e, &r, tmp.path(), "longer than the limit").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_events_over_the_job_total_fail_the_job() {
    let mib = artha_engine::exec::MAX_EVENTS_BYTES / (1 << 20) + 8;
    let (e, r, tmp) = run_hostile(false, native, &format!("lines {mib} sleep 60000")).await;
    assert_contained(&e, &r, tmp.path(), "over the limit").await;
    assert!(
        peak_rss_mib() < 1024,
        "engine memory {} MiB",
        peak_rss_mib()
    );
}

// ------------------------------------------------- 3. native job identity

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_loader_variables_are_refused_at_submission() {
    let tmp = tempfile::tempdir().unwrap();
    let e = hostile_engine(&tmp.path().join("home"), false).await;
    let data = tmp.path().join("d.csv");
    // Four rows at batch 1: the spec implies the 4 steps the scripts run.
    std::fs::write(&data, "x,y\n1,2\n3,4\n5,6\n7,8\n").unwrap();
    let ds = e
        .register_dataset_path(&data, &artha_engine::engine::DatasetMeta::named("d"))
        .await
        .unwrap();
    for (k, v) in [
        ("LD_PRELOAD", "../data/evil.so"),
        ("LD_LIBRARY_PATH", "../data"),
        ("PATH", "../data"),
        ("PYTHONPATH", "../data"),
        ("GCONV_PATH", "../data"),
    ] {
        let mut s = spec(&e, ds.id, native(), "events 2");
        s.env.insert(k.into(), v.into());
        let err = e.submit(s).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{k}: {err}");
        assert!(err.to_string().contains(&format!("env.{k}")), "{err}");
    }
    assert!(e.list().unwrap().is_empty(), "nothing was created");
    // A user variable still passes.
    let mut s = spec(&e, ds.id, native(), "env OMP_NUM_THREADS events 2");
    s.env.insert("OMP_NUM_THREADS".into(), "1".into());
    let job = e.submit(s).await.unwrap().id();
    let r = common::ended(&e, &job).await;
    assert_eq!(r.phase, JobPhase::Completed, "{r:?}");
    let logs = e.logs(&job, 0).await.unwrap();
    assert!(
        logs.iter().any(|l| l.text == "OMP_NUM_THREADS=1"),
        "{logs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_jobs_run_unprivileged_and_write_only_their_own_directories() {
    if !nix_is_root() {
        eprintln!("skipping: the engine drops privileges only when it runs as root");
        return;
    }
    let script = "whoami write {tmp}/home/ledger-probe write /etc/artha-probe \
                  write ../process.json write $ARTHA_CHECKPOINT_DIR/ok events 2";
    let (e, r, tmp) = run_hostile(false, native, script).await;
    assert_eq!(r.phase, JobPhase::Completed, "{r:?}");
    let logs: Vec<String> = e
        .logs(&r.id, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.text)
        .collect();
    let uid = artha_engine::exec::process::JOB_UID;
    assert!(logs.contains(&format!("uid={uid}")), "{logs:?}");
    for denied in ["/home/ledger-probe", "/etc/artha-probe", "../process.json"] {
        assert!(
            logs.iter()
                .any(|l| l.ends_with(&format!("{denied} denied"))),
            "{denied}: {logs:?}"
        );
    }
    assert!(logs.iter().any(|l| l.ends_with("/ok ok")), "{logs:?}");
    assert!(!Path::new("/etc/artha-probe").exists());
    assert!(!tmp.path().join("home/ledger-probe").exists());
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
}

// ------------------------------------------- 5. crashes in the run-end gap

/// Each point between the runtime's exit and `proving` where the engine
/// writes something durable; `ARTHA_FAILPOINT` makes the engine kill
/// itself there with SIGKILL.
const GAP: &[&str] = &[
    "run-ended",
    "run-end-recorded",
    "run-billed",
    "run-removed",
    "run-closed",
];

/// 20 kills (4 per point of the gap): every time the next engine on the
/// home proves the finished job (all its steps), bills it once, keeps its
/// events and logs, and settles it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_in_the_run_end_gap_never_loses_a_finished_job() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("blobs.csv");
    std::fs::write(&data, artha_engine::quickstart::synthetic_dataset(7, 128)).unwrap();
    let mut n = 0;
    for round in 0..4 {
        for point in GAP {
            n += 1;
            let home = tmp.path().join(format!("home-{n}"));
            let out = Command::new(ARTHAI)
                .arg("--home")
                .arg(&home)
                .args([
                    "--json",
                    "dataset-register",
                    data.to_str().unwrap(),
                    "--name",
                    "b",
                ])
                .env_remove("ARTHA_NATIVE_RUNTIME")
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            let ds: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let epochs = (2 + round).to_string();
            let out = Command::new(ARTHAI)
                .arg("--home")
                .arg(&home)
                .args(["train", "--dataset", ds["id"].as_str().unwrap()])
                .args([
                    "--epochs",
                    &epochs,
                    "--batch-size",
                    "32",
                    "--proof-window",
                    "4",
                ])
                .env_remove("ARTHA_NATIVE_RUNTIME")
                .env("ARTHA_FAILPOINT", point)
                .output()
                .unwrap();
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(
                out.status.signal(),
                Some(9),
                "{point}: the engine should have been killed there: {out:?}"
            );
            let e = Engine::builder()
                .home(&home)
                .native_runtime(ARTHAI, &["runtime"])
                .docker(DockerChoice::Off)
                .build()
                .await
                .unwrap();
            let jobs = e.list().unwrap();
            assert_eq!(jobs.len(), 1, "{point}");
            let job: JobId = jobs[0].id;
            let r = common::ended(&e, &job).await;
            assert_eq!(r.phase, JobPhase::Completed, "{point}: {r:?}");
            let steps = e.proofs(&job).await.unwrap().steps;
            // 128 rows / batch 32 = 4 steps an epoch.
            assert_eq!(steps, 4 * (2 + round as u64), "{point}: all steps proved");
            if *point != "run-ended" {
                // Killed after the end was recorded: the measured run is
                // billed (before it, a re-attached run bills from the restart).
                assert!(r.gpu_seconds.unwrap_or(0) >= 1, "{point}: billed: {r:?}");
            }
            assert!(
                !e.logs(&job, 0).await.unwrap().is_empty(),
                "{point}: logs kept"
            );
            e.dev_advance_time(e.chain().challenge_period_secs() + 1)
                .await
                .unwrap();
            e.settle_due().await.unwrap();
            let got = tmp.path().join(format!("got-{n}"));
            std::fs::create_dir(&got).unwrap();
            common::check_settled_job(&e, &job, &got).await;
            e.shutdown().await;
        }
    }
    assert!(n >= 20);
}
