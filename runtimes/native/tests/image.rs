//! The `FROM scratch` image of the static musl build (`native_image` in
//! tests/lib/images.sh) runs jobs under Docker with the container hardening
//! of DESIGN §8 (no network, no capabilities, read-only root, user 65534,
//! read-only inputs) and reports exactly the step records, checkpoints and
//! final weights of the binary built here: the same bits for the glibc
//! debug build and the musl release build.
//!
//! Needs Docker and the image, so it is ignored by default; run it with
//! `. tests/lib/images.sh && docker_up && native_image_test`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use artha_core::protocol::RuntimeEvent;
use common::{Job, blobs, read_predictions};

fn image() -> String {
    std::env::var("ARTHA_NATIVE_IMAGE")
        .ok()
        .filter(|t| !t.is_empty())
        .expect("ARTHA_NATIVE_IMAGE must name the image (tests/lib/images.sh native_image)")
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Runs the image on `job`'s mounts with `env` (the protocol variables
/// other than the fixed mount paths); returns the exit code and events.
fn docker_run(
    job: &Job,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Option<i32>, Vec<RuntimeEvent>, String) {
    let events = job.artha.join("events.jsonl");
    let _ = std::fs::remove_file(&events);
    let mut cmd = Command::new("docker");
    cmd.args([
        "run",
        "--rm",
        "--network",
        "none",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--read-only",
        "--pids-limit",
        "64",
        "--memory",
        "512m",
    ]);
    for (dir, mount, mode) in [
        (&job.model, "/model", ":ro"),
        (&job.data, "/data", ":ro"),
        (&job.checkpoints, "/checkpoints", ""),
        (&job.artha, "/artha", ""),
    ] {
        cmd.arg("-v")
            .arg(format!("{}:{mount}{mode}", dir.display()));
    }
    for (k, v) in env {
        cmd.arg("-e").arg(format!("{k}={v}"));
    }
    let out = cmd.arg(image()).args(args).output().unwrap();
    let text = std::fs::read_to_string(&events).unwrap_or_default();
    let evs = text
        .lines()
        .enumerate()
        .map(|(i, l)| RuntimeEvent::parse_line(i as u64 + 1, l).unwrap())
        .collect();
    (
        out.status.code(),
        evs,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn proof(evs: &[RuntimeEvent]) -> Vec<RuntimeEvent> {
    evs.iter()
        .filter(|e| !matches!(e, RuntimeEvent::Log { .. }))
        .cloned()
        .collect()
}

#[test]
#[ignore = "needs Docker and ARTHA_NATIVE_IMAGE: run `. tests/lib/images.sh && docker_up && native_image_test`"]
fn the_musl_image_runs_jobs_bit_for_bit_like_the_host_build() {
    let train = blobs(41, 256, 16, 4, 2.0);
    let mut job = Job::new();
    job.data_file("train.csv", &train.csv());
    // The container runs as user 65534: it reads the inputs and writes
    // the checkpoints and events.
    chmod(job.root.path(), 0o755);
    for d in [&job.model, &job.data] {
        chmod(d, 0o755);
    }
    for d in [&job.checkpoints, &job.artha] {
        chmod(d, 0o777);
    }
    let settings = [
        ("ARTHA_JOB_ID", "image-test"),
        ("EPOCHS", "2"),
        ("BATCH_SIZE", "32"),
        ("LEARNING_RATE", "0.005"),
        ("ARTHA_SEED", "5"),
        ("ARTHA_PROOF_WINDOW", "5"),
        ("ARTHA_HIDDEN", "64,32"),
    ];
    job.set(&settings);

    // Host build first.
    let host = job.run_ok(&[]);
    assert_eq!(host.steps().len(), 16);
    let host_final = job.checkpoint_bytes("final.safetensors");
    for e in std::fs::read_dir(&job.checkpoints).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }

    // The image, on the fixed mounts.
    let (code, evs, stderr) = docker_run(&job, &["train"], &settings);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(proof(&evs), host.proof_events());
    assert!(job.checkpoint_bytes("final.safetensors") == host_final);
    let owner = std::fs::metadata(job.checkpoints.join("final.safetensors")).unwrap();
    assert_eq!(owner.uid(), 65534, "the image runs as nobody");

    // Inference in the image from the trained weights.
    let server = Job::new();
    std::fs::rename(
        job.checkpoints.join("final.safetensors"),
        server.model.join("final.safetensors"),
    )
    .unwrap();
    chmod(server.model.join("final.safetensors").as_path(), 0o644);
    let test = blobs(42, 40, 16, 4, 2.0);
    server.data_file("inputs.csv", &test.inputs_csv());
    chmod(server.root.path(), 0o755);
    for d in [&server.model, &server.data] {
        chmod(d, 0o755);
    }
    for d in [&server.checkpoints, &server.artha] {
        chmod(d, 0o777);
    }
    let (code, evs, stderr) = docker_run(&server, &["infer"], &[("BATCH_SIZE", "16")]);
    assert_eq!(code, Some(0), "{stderr}");
    let host_infer = server.run_with(&["infer"], &[("BATCH_SIZE", "16")]);
    host_infer.assert_ok();
    assert_eq!(proof(&evs), host_infer.proof_events());
    assert_eq!(host_infer.infers().len(), 3);
    let (_, rows) = read_predictions(&server.checkpoints.join("predictions.csv"));
    assert_eq!(rows.len(), 40);

    // Bad input in the image: an error event and exit 2, no step.
    let empty = Job::new();
    chmod(empty.root.path(), 0o755);
    for d in [&empty.model, &empty.data] {
        chmod(d, 0o755);
    }
    for d in [&empty.checkpoints, &empty.artha] {
        chmod(d, 0o777);
    }
    let (code, evs, _) = docker_run(&empty, &[], &settings);
    assert_eq!(code, Some(2));
    assert!(
        matches!(evs.as_slice(), [RuntimeEvent::Error { message }] if message.contains("no data file")),
        "{evs:?}"
    );
}
