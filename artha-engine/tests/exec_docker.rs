//! The Docker executor against a real dockerd and the `FROM scratch`
//! `artha-testrt` image (built by tests/run.sh; see tests/lib/images.sh):
//! the public executor suite (`artha_engine::testing::executor`, one test
//! per scenario), plus hardening, failure reasons, GPUs and rediscovery.
#![cfg(feature = "docker")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod exec_support;

use std::sync::Arc;
use std::time::Duration;

use artha_core::protocol::RuntimeEvent;
use artha_core::{ErrorKind, ExecState, Executor, ExitReason, Runtime};
use artha_engine::exec::docker::container_name;
use artha_engine::exec::{
    DockerConfig, DockerExecutor, EVENTS_FILE, GpuAllocator, GpuInventory, InventorySource,
    supervise,
};
use artha_engine::testing::ExecutorFixture;
use bollard::Docker;
use exec_support::*;

async fn setup() -> Option<(tempfile::TempDir, DockerExecutor, Runtime)> {
    let image = testrt_image()?;
    let tmp = tempfile::tempdir().unwrap();
    let ex = DockerExecutor::connect(DockerConfig::new(tmp.path()))
        .await
        .unwrap();
    Some((tmp, ex, Runtime::Image(image)))
}

async fn suite_setup() -> Option<(tempfile::TempDir, DockerExecutor, ExecutorFixture)> {
    let (tmp, ex, runtime) = setup().await?;
    let fx = ExecutorFixture {
        runtime,
        jobs_root: tmp.path().to_path_buf(),
        stop_grace: Duration::from_secs(1),
    };
    Some((tmp, ex, fx))
}

executor_scenarios!(suite_setup);

async fn run(ex: &DockerExecutor, spec: artha_core::LaunchSpec) -> artha_engine::exec::Supervised {
    let events = spec.mounts.artha.join(EVENTS_FILE);
    let h = ex.launch(spec).await.unwrap();
    let out = supervise(ex, &h, &events, Duration::from_millis(100))
        .await
        .unwrap();
    let logs = ex.logs(&h, 0).await.unwrap();
    ex.remove(&h).await.unwrap();
    let mut out = out;
    out.events.push(RuntimeEvent::Log {
        message: logs
            .iter()
            .map(|l| l.text.clone())
            .collect::<Vec<_>>()
            .join("\n"),
    });
    out
}

fn logs_of(out: &artha_engine::exec::Supervised) -> String {
    match out.events.last() {
        Some(RuntimeEvent::Log { message }) => message.clone(),
        _ => String::new(),
    }
}

#[tokio::test]
async fn containers_are_hardened_and_speak_the_protocol() {
    let Some((tmp, ex, rt)) = setup().await else {
        return;
    };
    let jd = job_dir(tmp.path(), 1);
    let spec = launch_spec(
        &jd,
        rt,
        &[
            "whoami",
            "caps",
            "write",
            "/tmp/x",
            "write",
            "/data/x",
            "write",
            "/rootfs-file",
            "write",
            "/checkpoints/ck",
            "env",
            "EPOCHS",
            "env",
            "ARTHA_EVENTS",
            "events",
            "4",
        ],
    );
    let h = ex.launch(spec).await.unwrap();
    // Inspect the created container: every hardening setting, exactly four mounts.
    let docker = Docker::connect_with_local_defaults().unwrap();
    let info = docker
        .inspect_container(&container_name(&jd.job), None)
        .await
        .unwrap();
    let hc = info.host_config.clone().unwrap();
    assert_eq!(hc.network_mode.as_deref(), Some("none"));
    assert_eq!(hc.cap_drop, Some(vec!["ALL".to_string()]));
    assert_eq!(hc.security_opt, Some(vec!["no-new-privileges".to_string()]));
    assert_eq!(hc.readonly_rootfs, Some(true));
    assert_eq!(hc.privileged, Some(false));
    assert_eq!(hc.pids_limit, Some(64));
    assert_eq!(hc.memory, Some(256 << 20));
    assert_eq!(hc.memory_swap, Some(256 << 20));
    assert_eq!(hc.nano_cpus, Some(1_000_000_000));
    assert!(hc.tmpfs.unwrap()["/tmp"].contains("size=64m"));
    let binds = hc.binds.unwrap();
    assert_eq!(binds.len(), 3, "{binds:?}"); // no model in this job
    assert!(binds.iter().any(|b| b.ends_with(":/data:ro")));
    assert!(binds.iter().any(|b| b.ends_with(":/checkpoints:rw")));
    assert!(binds.iter().any(|b| b.ends_with(":/artha:rw")));
    let cfg = info.config.unwrap();
    assert_eq!(cfg.user.as_deref(), Some("65534:65534"));
    assert_eq!(cfg.labels.unwrap()["artha.job_id"], jd.job.to_string());

    let out = supervise(
        &ex,
        &h,
        &jd.mounts.artha.join(EVENTS_FILE),
        Duration::from_millis(100),
    )
    .await
    .unwrap();
    assert_eq!(out.failure, None);
    assert_eq!(
        out.events
            .iter()
            .filter(|e| matches!(e, RuntimeEvent::Step(_)))
            .count(),
        4
    );
    let logs: Vec<String> = ex
        .logs(&h, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.text)
        .collect();
    for want in [
        "uid=65534",
        "capeff=0000000000000000",
        "write /tmp/x ok",
        "write /data/x denied",
        "write /rootfs-file denied",
        "write /checkpoints/ck ok",
        "EPOCHS=2",
        "ARTHA_EVENTS=/artha/events.jsonl",
    ] {
        assert!(
            logs.iter().any(|l| l == want),
            "missing {want:?} in {logs:?}"
        );
    }
    assert!(jd.mounts.checkpoints.join("ck").exists());
    ex.remove(&h).await.unwrap();
    assert!(
        docker
            .inspect_container(&container_name(&jd.job), None)
            .await
            .is_err(),
        "removed"
    );
}

#[tokio::test]
async fn failures_have_clear_reasons() {
    let Some((tmp, ex, rt)) = setup().await else {
        return;
    };

    let out = run(
        &ex,
        launch_spec(
            &job_dir(tmp.path(), 2),
            rt.clone(),
            &["eecho", "boom", "exit", "3"],
        ),
    )
    .await;
    assert_eq!(out.failure.as_deref(), Some("runtime exited with code 3"));
    assert!(logs_of(&out).contains("boom"));

    let mut spec = launch_spec(
        &job_dir(tmp.path(), 3),
        rt.clone(),
        &["alloc", "512", "sleep", "100"],
    );
    spec.limits.memory_mib = 64;
    let out = run(&ex, spec).await;
    assert!(
        matches!(
            out.state,
            ExecState::Finished {
                reason: ExitReason::OutOfMemory,
                ..
            }
        ),
        "{:?}",
        out.state
    );

    let mut spec = launch_spec(&job_dir(tmp.path(), 4), rt.clone(), &["sleep", "60000"]);
    spec.limits.max_duration = Duration::from_secs(2);
    let out = run(&ex, spec).await;
    assert!(
        matches!(
            out.state,
            ExecState::Finished {
                reason: ExitReason::TimedOut,
                ..
            }
        ),
        "{:?}",
        out.state
    );

    let out = run(
        &ex,
        launch_spec(
            &job_dir(tmp.path(), 5),
            rt.clone(),
            &["events", "1", "malformed", "sleep", "60000"],
        ),
    )
    .await;
    assert!(out.failure.unwrap().contains("malformed event"));
}

#[tokio::test]
async fn bad_launches_leave_nothing_behind() {
    let Some((tmp, ex, rt)) = setup().await else {
        return;
    };
    let docker = Docker::connect_with_local_defaults().unwrap();

    let jd = job_dir(tmp.path(), 6);
    let e = ex
        .launch(launch_spec(
            &jd,
            Runtime::Image("artha/does-not-exist:1".into()),
            &[],
        ))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("never pulled"), "{e}");

    let mut spec = launch_spec(&jd, rt.clone(), &[]);
    spec.mounts.data = Some(std::path::PathBuf::from("/etc"));
    let e = ex.launch(spec).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    assert!(
        docker
            .inspect_container(&container_name(&jd.job), None)
            .await
            .is_err(),
        "nothing created"
    );

    let e = ex
        .launch(launch_spec(&jd, Runtime::Native("mlp".into()), &[]))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);

    // A daemon that is down: no socket, or a socket nobody answers on.
    let e = DockerExecutor::connect_unix("/nonexistent/docker.sock", DockerConfig::new(tmp.path()))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(e.is_retryable());
    let dead = tmp.path().join("dead.sock");
    drop(std::os::unix::net::UnixListener::bind(&dead).unwrap());
    let e = DockerExecutor::connect_unix(dead.to_str().unwrap(), DockerConfig::new(tmp.path()))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
}

#[tokio::test]
async fn run_job_frees_gpus_and_leaves_no_container_on_any_path() {
    let Some((tmp, ex, rt)) = setup().await else {
        return;
    };
    let gpus = GpuAllocator::new(GpuInventory::simulated(8, 16_384));
    let poll = Duration::from_millis(100);
    // Runtime failure (OOM) after the GPUs were handed out.
    let jd = job_dir(tmp.path(), 300);
    let mut spec = launch_spec(&jd, rt.clone(), &["env", "ARTHA_GPUS", "alloc", "512"]);
    spec.limits.memory_mib = 64;
    let out = artha_engine::exec::run_job(&ex, &gpus, spec, 3, 1024, poll)
        .await
        .unwrap();
    assert!(out.failure.unwrap().contains("out of memory"));
    // Launch failure (missing image).
    let jd2 = job_dir(tmp.path(), 301);
    let spec = launch_spec(&jd2, Runtime::Image("artha/missing:0".into()), &[]);
    assert!(
        artha_engine::exec::run_job(&ex, &gpus, spec, 2, 1024, poll)
            .await
            .is_err()
    );
    // Not enough GPUs: refused before anything starts.
    let jd3 = job_dir(tmp.path(), 302);
    let e = artha_engine::exec::run_job(&ex, &gpus, launch_spec(&jd3, rt, &[]), 9, 1, poll)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ResourceExhausted);
    assert_eq!(gpus.free_count(), 8, "every index is free again");
    let docker = Docker::connect_with_local_defaults().unwrap();
    for j in [&jd.job, &jd2.job, &jd3.job] {
        assert!(
            docker
                .inspect_container(&container_name(j), None)
                .await
                .is_err(),
            "no container left"
        );
    }
}

#[tokio::test]
async fn stop_and_rediscovery_by_label() {
    let Some((tmp, ex, rt)) = setup().await else {
        return;
    };
    let jd = job_dir(tmp.path(), 7);
    let h = ex
        .launch(launch_spec(&jd, rt, &["sleep", "60000"]))
        .await
        .unwrap();
    // A second executor (an engine restart) finds the container by label.
    let again = DockerExecutor::connect(DockerConfig::new(tmp.path()))
        .await
        .unwrap();
    assert!(again.list().await.unwrap().contains(&h));
    assert_eq!(again.state(&h).await.unwrap(), ExecState::Running);
    let stats = ex.stats(&h).await.unwrap();
    assert!(stats.memory_limit_bytes > 0 && stats.pids >= 1, "{stats:?}");
    ex.stop(&h, Duration::from_secs(1)).await.unwrap();
    let st = ex.wait(&h).await.unwrap();
    assert!(
        matches!(
            st,
            ExecState::Finished {
                reason: ExitReason::Stopped,
                ..
            }
        ),
        "{st:?}"
    );
    ex.stop(&h, Duration::from_secs(1)).await.unwrap();
    ex.remove(&h).await.unwrap();
    assert!(!again.list().await.unwrap().contains(&h));
}

#[tokio::test]
async fn gpu_indices_reach_jobs_without_collisions() {
    let Some((tmp, ex, rt)) = setup().await else {
        return;
    };
    let gpus = Arc::new(GpuAllocator::new(GpuInventory::simulated(8, 16_384)));
    let ex = Arc::new(ex);
    let mut tasks = Vec::new();
    for n in 0..4u64 {
        let (ex, gpus, rt) = (ex.clone(), gpus.clone(), rt.clone());
        let jd = job_dir(tmp.path(), 100 + n);
        tasks.push(tokio::spawn(async move {
            let idx = gpus.allocate(&jd.job, 2, 1024).unwrap();
            let mut spec = launch_spec(&jd, rt, &["env", "ARTHA_GPUS", "sleep", "300"]);
            spec.gpus = idx.clone();
            let out = run(&ex, spec).await;
            gpus.release(&jd.job).unwrap();
            (idx, logs_of(&out))
        }));
    }
    let mut seen = Vec::new();
    for t in tasks {
        let (idx, logs) = t.await.unwrap();
        let want = format!(
            "ARTHA_GPUS={}",
            idx.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
        );
        assert!(logs.contains(&want), "{logs}");
        seen.extend(idx);
    }
    seen.sort();
    assert_eq!(
        seen,
        (0..8).collect::<Vec<u32>>(),
        "8 distinct indices for 4 concurrent 2-GPU jobs"
    );
    assert_eq!(gpus.free_count(), 8);

    // With a real (NVML) inventory the same indices become a DeviceRequest.
    let mut cfg = DockerConfig::new(tmp.path());
    cfg.gpu_source = InventorySource::Nvml;
    let nv = DockerExecutor::connect(cfg).await.unwrap();
    let jd = job_dir(tmp.path(), 200);
    let mut spec = launch_spec(&jd, Runtime::Image("x:y".into()), &[]);
    spec.gpus = vec![3, 5];
    let body = nv.container_body(&spec).unwrap();
    let req = &body.host_config.unwrap().device_requests.unwrap()[0];
    assert_eq!(req.device_ids, Some(vec!["3".to_string(), "5".to_string()]));
    assert_eq!(req.capabilities, Some(vec![vec!["gpu".to_string()]]));
}
