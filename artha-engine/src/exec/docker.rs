//! [`DockerExecutor`]: runs jobs as hardened containers through the Docker
//! Engine API (bollard).
//!
//! Every container gets, unless the spec asks otherwise:
//! - network mode `none` (a spec's `network: true` gives the default bridge);
//! - all capabilities dropped and `no-new-privileges`;
//! - a read-only root filesystem with a 64 MiB `noexec,nosuid` tmpfs on `/tmp`;
//! - pids, memory (no extra swap) and CPU limits from the spec;
//! - a non-root user (`65534:65534` by default; configurable for images
//!   that need another);
//! - exactly four bind mounts: `/model` and `/data` read-only,
//!   `/checkpoints` and `/artha` read-write, all inside the job directory;
//! - GPU access through a `DeviceRequest` for exactly the allocated indices
//!   when the inventory is real (NVML); with a configured inventory the
//!   indices only travel in `ARTHA_GPUS`.
//!
//! Containers are named `artha-<job id>` and labelled with the job, node
//! and deadline, so a restarted engine finds them again ([`Executor::list`])
//! and keeps enforcing their maximum duration. Images are never pulled: a
//! missing image is a `NotFound` error (build it locally first).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use artha_core::protocol::{ARTHA_MOUNT, CHECKPOINT_MOUNT, DATA_MOUNT, EVENTS_PATH, MODEL_MOUNT};
use artha_core::{
    Error, ErrorKind, ExecHandle, ExecState, Executor, ExitReason, JobId, LaunchSpec, LogLine,
    Result, Runtime,
};
use async_trait::async_trait;
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, ContainerInspectResponse, DeviceRequest, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptions, KillContainerOptions, ListContainersOptions, LogsOptions,
    RemoveContainerOptions, StatsOptions,
};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::gpu::InventorySource;
use super::{LABEL_JOB, LABEL_MANAGED, LABEL_NODE, check_mounts};

/// Label holding a container's maximum duration in seconds.
pub const LABEL_MAX_DURATION: &str = "artha.max_duration_secs";

/// How the Docker executor creates containers.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    /// Directory holding one directory per job; mounts must lie inside.
    pub jobs_root: PathBuf,
    /// `uid:gid` to run as; `None` keeps the image's user.
    pub user: Option<String>,
    /// Size of the `/tmp` tmpfs, MiB.
    pub tmpfs_mib: u64,
    /// Where the GPU inventory came from (device requests only for NVML).
    pub gpu_source: InventorySource,
}

impl DockerConfig {
    /// Defaults: user `65534:65534`, 64 MiB `/tmp`, configured GPUs.
    pub fn new(jobs_root: impl Into<PathBuf>) -> Self {
        DockerConfig {
            jobs_root: jobs_root.into(),
            user: Some("65534:65534".into()),
            tmpfs_mib: 64,
            gpu_source: InventorySource::Configured,
        }
    }
}

/// Resource use of a running container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecStats {
    /// CPU use since the previous sample, in cores (1.0 = one full core).
    pub cpu_cores: f64,
    /// Resident memory, bytes.
    pub memory_bytes: u64,
    /// Memory limit, bytes.
    pub memory_limit_bytes: u64,
    /// Processes / threads.
    pub pids: u64,
}

/// Runs jobs as Docker containers.
#[derive(Debug, Clone)]
pub struct DockerExecutor {
    docker: Docker,
    cfg: DockerConfig,
    stopped: Arc<Mutex<HashSet<JobId>>>,
}

fn docker_error(what: &str, e: bollard::errors::Error) -> Error {
    use bollard::errors::Error as B;
    let kind = match &e {
        B::DockerResponseServerError {
            status_code: 404, ..
        } => ErrorKind::NotFound,
        B::DockerResponseServerError {
            status_code: 409, ..
        } => ErrorKind::Conflict,
        B::DockerResponseServerError {
            status_code: 400, ..
        } => ErrorKind::InvalidInput,
        B::DockerResponseServerError { .. } => ErrorKind::Internal,
        B::RequestTimeoutError => ErrorKind::Timeout,
        _ => ErrorKind::Unavailable,
    };
    Error::new(kind, format!("docker: cannot {what}")).with_source(e)
}

/// The container name of a job.
pub fn container_name(job: &JobId) -> String {
    format!("artha-{job}")
}

impl DockerExecutor {
    /// Connects to the local daemon (`DOCKER_HOST` or `/var/run/docker.sock`)
    /// and checks that it answers; `Unavailable` when it does not.
    pub async fn connect(cfg: DockerConfig) -> Result<Self> {
        let docker =
            Docker::connect_with_local_defaults().map_err(|e| docker_error("connect", e))?;
        Self::with_client(docker, cfg).await
    }

    /// Connects to the daemon listening on the unix socket `path`.
    pub async fn connect_unix(path: &str, cfg: DockerConfig) -> Result<Self> {
        let docker = Docker::connect_with_unix(path, 30, bollard::API_DEFAULT_VERSION)
            .map_err(|e| docker_error("connect", e).with_context("socket", path.to_string()))?;
        Self::with_client(docker, cfg).await
    }

    /// Uses an existing client (e.g. `Docker::connect_with_unix`).
    pub async fn with_client(docker: Docker, cfg: DockerConfig) -> Result<Self> {
        docker
            .ping()
            .await
            .map_err(|e| docker_error("reach the daemon", e))?;
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| docker_error("negotiate the API version", e))?;
        Ok(DockerExecutor {
            docker,
            cfg,
            stopped: Arc::new(Mutex::new(HashSet::new())),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &DockerConfig {
        &self.cfg
    }

    /// The container definition for `spec` (pure; exposed for inspection and tests).
    pub fn container_body(&self, spec: &LaunchSpec) -> Result<ContainerCreateBody> {
        container_body(&self.cfg, spec)
    }

    /// One sample of a running container's resource use.
    pub async fn stats(&self, handle: &ExecHandle) -> Result<ExecStats> {
        let opts = StatsOptions {
            stream: false,
            one_shot: false,
        };
        let mut s = self.docker.stats(&handle.backend_id, Some(opts));
        let st = s
            .next()
            .await
            .ok_or_else(|| Error::new(ErrorKind::Unavailable, "docker returned no stats"))?
            .map_err(|e| docker_error("read stats", e))?;
        let cpu = st.cpu_stats.as_ref();
        let pre = st.precpu_stats.as_ref();
        let total = |c: Option<&bollard::models::ContainerCpuStats>| {
            c.and_then(|c| c.cpu_usage.as_ref())
                .and_then(|u| u.total_usage)
                .unwrap_or(0)
        };
        let sys = |c: Option<&bollard::models::ContainerCpuStats>| {
            c.and_then(|c| c.system_cpu_usage).unwrap_or(0)
        };
        let online = cpu.and_then(|c| c.online_cpus).unwrap_or(1).max(1);
        let d_cpu = total(cpu).saturating_sub(total(pre)) as f64;
        let d_sys = sys(cpu).saturating_sub(sys(pre)) as f64;
        let cpu_cores = if d_sys > 0.0 {
            d_cpu / d_sys * f64::from(online)
        } else {
            0.0
        };
        let mem = st.memory_stats.as_ref();
        Ok(ExecStats {
            cpu_cores,
            memory_bytes: mem.and_then(|m| m.usage).unwrap_or(0),
            memory_limit_bytes: mem.and_then(|m| m.limit).unwrap_or(0),
            pids: st.pids_stats.as_ref().and_then(|p| p.current).unwrap_or(0),
        })
    }

    async fn inspect(&self, handle: &ExecHandle) -> Result<ContainerInspectResponse> {
        self.docker
            .inspect_container(&handle.backend_id, None)
            .await
            .map_err(|e| {
                docker_error("inspect the container", e)
                    .with_context("job_id", handle.job_id.to_string())
            })
    }

    fn was_stopped(&self, job: &JobId) -> bool {
        self.stopped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(job)
    }

    async fn kill(&self, handle: &ExecHandle) -> Result<()> {
        let opts = KillContainerOptions {
            signal: "SIGKILL".into(),
        };
        match self
            .docker
            .kill_container(&handle.backend_id, Some(opts))
            .await
        {
            Ok(()) => Ok(()),
            // 409: not running any more — the goal is reached.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(()),
            Err(e) => Err(docker_error("kill the container", e)),
        }
    }

    /// The executor state a container inspection implies.
    fn state_of(&self, job: &JobId, info: &ContainerInspectResponse) -> ExecState {
        let st = info.state.as_ref();
        let running = st.and_then(|s| s.running).unwrap_or(false);
        let started = st
            .and_then(|s| s.started_at.as_deref())
            .and_then(parse_rfc3339);
        if running {
            return ExecState::Running;
        }
        let Some(started) = started else {
            return ExecState::Starting;
        };
        let finished = st
            .and_then(|s| s.finished_at.as_deref())
            .and_then(parse_rfc3339)
            .unwrap_or(started);
        let wall_seconds = finished.saturating_sub(started);
        let max = label_max_duration(info);
        let code = st.and_then(|s| s.exit_code).unwrap_or(-1);
        let reason = if st.and_then(|s| s.oom_killed).unwrap_or(false) {
            ExitReason::OutOfMemory
        } else if self.was_stopped(job) {
            ExitReason::Stopped
        } else if code == 137 && max.is_some_and(|m| wall_seconds >= m) {
            ExitReason::TimedOut
        } else {
            ExitReason::Exited { code }
        };
        ExecState::Finished {
            reason,
            wall_seconds,
        }
    }
}

/// Seconds since the Unix epoch of an RFC 3339 timestamp as Docker writes
/// them (`2024-05-01T12:00:00.123456789Z`); `None` for the zero time.
fn parse_rfc3339(s: &str) -> Option<u64> {
    if s.starts_with("0001-") {
        return None;
    }
    let (date, rest) = s.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let time = rest.get(..8)?;
    let mut t = time.split(':').map(|x| x.parse::<i64>());
    let (hh, mm, ss) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

fn label_max_duration(info: &ContainerInspectResponse) -> Option<u64> {
    info.config
        .as_ref()
        .and_then(|c| c.labels.as_ref())
        .and_then(|l| l.get(LABEL_MAX_DURATION))
        .and_then(|v| v.parse().ok())
}

fn container_body(cfg: &DockerConfig, spec: &LaunchSpec) -> Result<ContainerCreateBody> {
    let Runtime::Image(image) = &spec.runtime else {
        return Err(Error::new(
            ErrorKind::Unsupported,
            "the Docker executor runs images only",
        )
        .with_context("field", "runtime"));
    };
    let m = &spec.mounts;
    let mut binds = Vec::new();
    let bind = |src: &std::path::Path, dst: &str, mode: &str| -> Result<String> {
        let s = src.to_str().filter(|s| !s.contains(':')).ok_or_else(|| {
            Error::invalid("mounts", "mount paths must be UTF-8 without `:`")
                .with_context("path", src.display().to_string())
        })?;
        Ok(format!("{s}:{dst}:{mode}"))
    };
    if let Some(p) = &m.model {
        binds.push(bind(p, MODEL_MOUNT, "ro")?);
    }
    if let Some(p) = &m.data {
        binds.push(bind(p, DATA_MOUNT, "ro")?);
    }
    binds.push(bind(&m.checkpoints, CHECKPOINT_MOUNT, "rw")?);
    binds.push(bind(&m.artha, ARTHA_MOUNT, "rw")?);

    let gpus = spec.gpus.iter().map(u32::to_string).collect::<Vec<_>>();
    let mut env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    env.push(format!("ARTHA_EVENTS={EVENTS_PATH}"));
    env.push(format!("ARTHA_GPUS={}", gpus.join(",")));
    let device_requests =
        (cfg.gpu_source == InventorySource::Nvml && !gpus.is_empty()).then(|| {
            vec![DeviceRequest {
                driver: Some("nvidia".into()),
                device_ids: Some(gpus.clone()),
                capabilities: Some(vec![vec!["gpu".into()]]),
                ..Default::default()
            }]
        });
    let memory = i64::try_from(spec.limits.memory_mib.saturating_mul(1 << 20))
        .map_err(|_| Error::invalid("resources.memory_mib", "too large"))?;
    let labels = HashMap::from([
        (LABEL_JOB.to_string(), spec.job_id.to_string()),
        (LABEL_NODE.to_string(), spec.node_id.to_string()),
        (LABEL_MANAGED.to_string(), "true".to_string()),
        (
            LABEL_MAX_DURATION.to_string(),
            spec.limits.max_duration.as_secs().to_string(),
        ),
    ]);
    Ok(ContainerCreateBody {
        image: Some(image.clone()),
        cmd: (!spec.args.is_empty()).then(|| spec.args.clone()),
        env: Some(env),
        labels: Some(labels),
        user: cfg.user.clone(),
        working_dir: Some(ARTHA_MOUNT.into()),
        network_disabled: Some(!spec.network),
        host_config: Some(HostConfig {
            binds: Some(binds),
            network_mode: Some(if spec.network { "bridge" } else { "none" }.into()),
            cap_drop: Some(vec!["ALL".into()]),
            security_opt: Some(vec!["no-new-privileges".into()]),
            readonly_rootfs: Some(true),
            tmpfs: Some(HashMap::from([(
                "/tmp".to_string(),
                format!("rw,noexec,nosuid,size={}m", cfg.tmpfs_mib),
            )])),
            pids_limit: Some(i64::from(spec.limits.pids)),
            memory: Some(memory),
            memory_swap: Some(memory),
            nano_cpus: Some(i64::from(spec.limits.cpu_millis) * 1_000_000),
            device_requests,
            privileged: Some(false),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// Gives the container user the writable mounts (only possible, and only
/// needed, when the engine runs as root with a non-root container user).
fn own_writable_mounts(cfg: &DockerConfig, spec: &LaunchSpec) -> Result<()> {
    let Some(user) = &cfg.user else { return Ok(()) };
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let mut parts = user.split(':');
    let uid = parts.next().and_then(|u| u.parse::<u32>().ok());
    let gid = parts.next().and_then(|g| g.parse::<u32>().ok());
    let (Some(uid), Some(gid)) = (uid, gid) else {
        return Err(
            Error::invalid("user", "must be numeric `uid:gid`").with_context("user", user.clone())
        );
    };
    for dir in [&spec.mounts.checkpoints, &spec.mounts.artha] {
        // The tree, not only the directory: a resumed run appends to files
        // the engine rewrote. Links are not followed.
        super::process::chown_tree(dir, uid, gid).map_err(|e| {
            Error::new(
                ErrorKind::PermissionDenied,
                "cannot hand a writable mount to the container user",
            )
            .with_context("path", dir.display().to_string())
            .with_source(e)
        })?;
    }
    Ok(())
}

#[async_trait]
impl Executor for DockerExecutor {
    async fn launch(&self, spec: LaunchSpec) -> Result<ExecHandle> {
        let body = container_body(&self.cfg, &spec)?;
        check_mounts(&self.cfg.jobs_root, &spec.job_id, &spec.mounts)?;
        let image = body.image.clone().unwrap_or_default();
        self.docker
            .inspect_image(&image)
            .await
            .map_err(|e| match e {
                bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                } => Error::new(
                    ErrorKind::NotFound,
                    "image is not present on this node (images are built locally, never pulled)",
                )
                .with_context("image", image.clone()),
                e => docker_error("inspect the image", e).with_context("image", image.clone()),
            })?;
        own_writable_mounts(&self.cfg, &spec)?;
        let name = container_name(&spec.job_id);
        let opts = CreateContainerOptions {
            name: Some(name.clone()),
            platform: String::new(),
        };
        let created = self
            .docker
            .create_container(Some(opts), body)
            .await
            .map_err(|e| {
                docker_error("create the container", e)
                    .with_context("job_id", spec.job_id.to_string())
            })?;
        if let Err(e) = self.docker.start_container(&created.id, None).await {
            let _ = self
                .docker
                .remove_container(
                    &created.id,
                    Some(RemoveContainerOptions {
                        force: true,
                        v: true,
                        link: false,
                    }),
                )
                .await;
            return Err(docker_error("start the container", e)
                .with_context("job_id", spec.job_id.to_string()));
        }
        let handle = ExecHandle {
            job_id: spec.job_id,
            backend_id: created.id,
        };
        // Watchdog: enforce the maximum duration even if nobody waits.
        let this = self.clone();
        let h = handle.clone();
        let max = spec.limits.max_duration;
        tokio::spawn(async move {
            tokio::time::sleep(max).await;
            if let Ok(ExecState::Running) = this.state(&h).await {
                let _ = this.kill(&h).await;
            }
        });
        Ok(handle)
    }

    async fn state(&self, handle: &ExecHandle) -> Result<ExecState> {
        let info = self.inspect(handle).await?;
        Ok(self.state_of(&handle.job_id, &info))
    }

    async fn wait(&self, handle: &ExecHandle) -> Result<ExecState> {
        loop {
            let info = match self.inspect(handle).await {
                Ok(i) => i,
                Err(e) if e.kind() == ErrorKind::Unavailable => {
                    return Ok(ExecState::Finished {
                        reason: ExitReason::Lost {
                            detail: format!("the docker daemon went away: {e}"),
                        },
                        wall_seconds: 0,
                    });
                }
                Err(e) => return Err(e),
            };
            let state = self.state_of(&handle.job_id, &info);
            if let ExecState::Finished { .. } = state {
                return Ok(state);
            }
            // Deadline from the container's own start time and label, so the
            // limit holds across engine restarts.
            let started = info
                .state
                .as_ref()
                .and_then(|s| s.started_at.as_deref())
                .and_then(parse_rfc3339);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let remaining = match (started, label_max_duration(&info)) {
                (Some(s), Some(m)) => (s + m).saturating_sub(now),
                _ => u64::MAX,
            };
            if remaining == 0 {
                self.kill(handle).await?;
                continue;
            }
            let mut waiter = self.docker.wait_container(&handle.backend_id, None);
            tokio::select! {
                _ = waiter.next() => {}
                () = tokio::time::sleep(Duration::from_secs(remaining.min(3600))) => {}
            }
        }
    }

    async fn stop(&self, handle: &ExecHandle, grace: Duration) -> Result<()> {
        if let ExecState::Finished { .. } = self.state(handle).await? {
            return Ok(());
        }
        self.stopped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(handle.job_id);
        let opts = bollard::query_parameters::StopContainerOptions {
            signal: None,
            t: Some(i32::try_from(grace.as_secs()).unwrap_or(i32::MAX)),
        };
        match self
            .docker
            .stop_container(&handle.backend_id, Some(opts))
            .await
        {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(docker_error("stop the container", e)),
        }
    }

    async fn logs(&self, handle: &ExecHandle, since: u64) -> Result<Vec<LogLine>> {
        let opts = LogsOptions {
            follow: false,
            stdout: true,
            stderr: true,
            since: 0,
            until: 0,
            timestamps: false,
            tail: "all".into(),
        };
        let mut stream = self.docker.logs(&handle.backend_id, Some(opts));
        let mut out = Vec::new();
        let mut seq = 0u64;
        let mut read = 0u64;
        while let Some(item) = stream.next().await {
            if read > super::MAX_LOG_BYTES {
                break; // the rest of a flood is not read (see MAX_LOG_BYTES)
            }
            let (stderr, bytes) = match item.map_err(|e| docker_error("read the logs", e))? {
                LogOutput::StdErr { message } => (true, message),
                LogOutput::StdOut { message } | LogOutput::Console { message } => (false, message),
                LogOutput::StdIn { .. } => continue,
            };
            read += bytes.len() as u64;
            for text in String::from_utf8_lossy(&bytes).lines() {
                if seq >= since {
                    out.push(LogLine {
                        seq,
                        stderr,
                        text: text.to_string(),
                    });
                }
                seq += 1;
            }
        }
        Ok(out)
    }

    async fn remove(&self, handle: &ExecHandle) -> Result<()> {
        let opts = RemoveContainerOptions {
            force: true,
            v: true,
            link: false,
        };
        match self
            .docker
            .remove_container(&handle.backend_id, Some(opts))
            .await
        {
            Ok(()) => {}
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(e) => return Err(docker_error("remove the container", e)),
        }
        self.stopped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&handle.job_id);
        Ok(())
    }

    async fn list(&self) -> Result<Vec<ExecHandle>> {
        let filters = HashMap::from([("label".to_string(), vec![format!("{LABEL_MANAGED}=true")])]);
        let opts = ListContainersOptions {
            all: true,
            limit: None,
            size: false,
            filters: Some(filters),
        };
        let containers = self
            .docker
            .list_containers(Some(opts))
            .await
            .map_err(|e| docker_error("list containers", e))?;
        let mut out: Vec<ExecHandle> = containers
            .into_iter()
            .filter_map(|c| {
                let job = c.labels.as_ref()?.get(LABEL_JOB)?.parse::<JobId>().ok()?;
                Some(ExecHandle {
                    job_id: job,
                    backend_id: c.id?,
                })
            })
            .collect();
        out.sort_by_key(|h| h.job_id);
        Ok(out)
    }

    /// Any container image.
    fn supports(&self, runtime: &Runtime) -> bool {
        matches!(runtime, Runtime::Image(_))
    }

    fn runtimes(&self) -> Vec<String> {
        vec!["image".into()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2024-05-01T12:00:01.123456789Z"),
            Some(1_714_564_801)
        );
        assert_eq!(parse_rfc3339("0001-01-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("garbage"), None);
    }
}
