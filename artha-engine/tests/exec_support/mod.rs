//! Shared set-up for the executor tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use artha_core::{JobId, LaunchSpec, Limits, Mounts, NodeId, Runtime};

/// The `artha-testrt` binary built next to this test binary.
pub fn testrt_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join("artha-testrt");
    assert!(
        bin.exists(),
        "{} missing: run `cargo build -p artha-testrt` (the test entry point does)",
        bin.display()
    );
    bin
}

/// The `FROM scratch` test image tag, from `ARTHA_TESTRT_IMAGE` (set by
/// tests/run.sh). `None` outside CI when unset (the test is skipped with a
/// message); under `CI=true` a missing image fails the test.
pub fn testrt_image() -> Option<String> {
    match std::env::var("ARTHA_TESTRT_IMAGE") {
        Ok(t) if !t.is_empty() => Some(t),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "ARTHA_TESTRT_IMAGE is not set: under CI the Docker executor suite must run"
            );
            eprintln!("skipping: ARTHA_TESTRT_IMAGE not set (run via tests/run.sh)");
            None
        }
    }
}

/// A job directory with data, checkpoints and artha subdirectories.
pub struct JobDir {
    pub job: JobId,
    pub dir: PathBuf,
    pub mounts: Mounts,
}

pub fn job_dir(root: &Path, n: u64) -> JobDir {
    let job = JobId::derive(&[
        b"exec-test",
        &n.to_le_bytes(),
        root.to_string_lossy().as_bytes(),
    ]);
    let dir = root.join(job.to_string());
    for d in ["data", "checkpoints", "artha"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::write(dir.join("data/input.csv"), "x,y\n1,2\n").unwrap();
    let mounts = Mounts {
        model: None,
        data: Some(dir.join("data")),
        checkpoints: dir.join("checkpoints"),
        artha: dir.join("artha"),
    };
    JobDir { job, dir, mounts }
}

pub fn launch_spec(jd: &JobDir, runtime: Runtime, args: &[&str]) -> LaunchSpec {
    LaunchSpec {
        job_id: jd.job,
        node_id: NodeId::from_bytes([9; 16]),
        runtime,
        args: args.iter().map(|s| s.to_string()).collect(),
        env: BTreeMap::from([("EPOCHS".to_string(), "2".to_string())]),
        mounts: jd.mounts.clone(),
        gpus: vec![],
        limits: Limits {
            cpu_millis: 1000,
            memory_mib: 256,
            pids: 64,
            max_duration: Duration::from_secs(60),
        },
        network: false,
    }
}
