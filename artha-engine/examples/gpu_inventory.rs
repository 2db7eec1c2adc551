//! The engine's GPU discovery, printed as JSON (tests/gpu.sh, docs/GPU.md).
//!
//! ```sh
//! cargo run --release -p artha-engine --no-default-features --features gpu,docker \
//!     --example gpu_inventory                       # the NVML inventory
//! cargo run ... --example gpu_inventory -- docker IMAGE [CMD ARG...]
//! ```
//!
//! Without arguments it reads the inventory the way an engine with
//! `gpus.source = "nvml"` does ([`GpuInventory::from_nvml`]) and prints
//! `{"source": "nvml", "devices": [{"index", "name", "memory_mib", "uuid"}]}`;
//! exit 0, or 1 with `{"error": …}` when NVML does not answer (no driver,
//! no `libnvidia-ml.so.1`). NVML is loaded at run time, so the binary builds
//! and starts on machines without a GPU.
//!
//! `docker IMAGE [CMD…]` runs one job through the engine's own
//! [`DockerExecutor`] with an NVML inventory: every discovered GPU is
//! allocated to the job ([`GpuAllocator`]) and reaches the container as the
//! executor's `DeviceRequest` (driver `nvidia`, the allocated indices,
//! capability `gpu`), with the executor's usual hardening (no network, all
//! capabilities dropped, read-only root, user 65534). It prints the device
//! request that was sent, the container's final state and its output, and
//! exits 0 when the container exited 0, 1 otherwise. Images are never
//! pulled.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use artha_core::{
    ExecState, Executor, ExitReason, JobId, LaunchSpec, Limits, Mounts, NodeId, Runtime,
};
use artha_engine::exec::{
    DockerConfig, DockerExecutor, GpuAllocator, GpuInventory, InventorySource,
};
use serde_json::json;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let inventory = match GpuInventory::from_nvml() {
        Ok(inv) => inv,
        Err(e) => {
            println!("{}", json!({ "error": e.to_string() }));
            return ExitCode::from(1);
        }
    };
    match args.first().map(String::as_str) {
        None => {
            println!("{}", json!(inventory));
            ExitCode::SUCCESS
        }
        Some("docker") if args.len() >= 2 => {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    println!("{}", json!({ "error": format!("tokio: {e}") }));
                    return ExitCode::from(1);
                }
            };
            match rt.block_on(docker_job(inventory, &args[1], &args[2..])) {
                Ok((report, ok)) => {
                    println!("{report}");
                    if ok {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    }
                }
                Err(e) => {
                    println!("{}", json!({ "error": e }));
                    ExitCode::from(1)
                }
            }
        }
        _ => {
            eprintln!("usage: gpu_inventory [docker IMAGE [CMD ARG...]]");
            ExitCode::from(2)
        }
    }
}

/// One container through the engine's Docker executor with every NVML GPU
/// allocated to it; the report and whether it exited 0.
async fn docker_job(
    inventory: GpuInventory,
    image: &str,
    cmd: &[String],
) -> Result<(serde_json::Value, bool), String> {
    let count = u32::try_from(inventory.devices.len()).map_err(|e| e.to_string())?;
    if count == 0 {
        return Err("NVML answered but found no GPU".into());
    }
    let root = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
    let job = JobId::derive(&[b"gpu-check", root.path().to_string_lossy().as_bytes()]);
    let dir = root.path().join(job.to_string());
    for d in ["checkpoints", "artha"] {
        std::fs::create_dir_all(dir.join(d)).map_err(|e| format!("job directory: {e}"))?;
    }
    let gpus = GpuAllocator::new(inventory);
    let indices = gpus.allocate(&job, count, 0).map_err(|e| e.to_string())?;
    let mut cfg = DockerConfig::new(root.path());
    cfg.gpu_source = InventorySource::Nvml;
    let ex = DockerExecutor::connect(cfg)
        .await
        .map_err(|e| e.to_string())?;
    let spec = LaunchSpec {
        job_id: job,
        node_id: NodeId::from_bytes([7; 16]),
        runtime: Runtime::Image(image.to_string()),
        args: cmd.to_vec(),
        env: BTreeMap::new(),
        mounts: Mounts {
            model: None,
            data: None,
            checkpoints: dir.join("checkpoints"),
            artha: dir.join("artha"),
        },
        gpus: indices.clone(),
        limits: Limits {
            cpu_millis: 1000,
            memory_mib: 512,
            pids: 64,
            max_duration: Duration::from_secs(120),
        },
        network: false,
    };
    let request = ex
        .container_body(&spec)
        .map_err(|e| e.to_string())?
        .host_config
        .and_then(|h| h.device_requests)
        .unwrap_or_default();
    let request = serde_json::to_value(&request).map_err(|e| e.to_string())?;
    let handle = ex.launch(spec).await.map_err(|e| e.to_string())?;
    let state = ex.wait(&handle).await.map_err(|e| e.to_string());
    let logs = ex.logs(&handle, 0).await.unwrap_or_default();
    let _ = ex.remove(&handle).await;
    let _ = gpus.release(&job);
    let state = state?;
    let ok = matches!(
        state,
        ExecState::Finished {
            reason: ExitReason::Exited { code: 0 },
            ..
        }
    );
    let report = json!({
        "image": image,
        "gpus": indices,
        "device_requests": request,
        "state": state,
        "logs": logs.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(),
    });
    Ok((report, ok))
}
