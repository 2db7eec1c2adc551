//! [`ProcessExecutor`]: runs native runtimes as child processes.
//!
//! Each job runs in its own process group (so stop and timeout kill every
//! process it started), with a cleared environment holding only the
//! protocol variables, the spec's env and a minimal `PATH` (the spec's
//! variables pass an allow-list: [`artha_core::native_env_refusal`] names
//! what is refused — the loader's `LD_*`, search paths, interpreter hooks —
//! and a launch carrying one fails before anything runs), and with
//! resource limits where the OS gives them to an unprivileged parent:
//! `RLIMIT_AS` (the memory limit plus 512 MiB of headroom, since virtual
//! reservations exceed resident use), `RLIMIT_CORE` 0 and `RLIMIT_NOFILE`
//! 4096 (when the job runs as another user, util-linux's `prlimit` sets them in
//! the child before it execs the runtime). A process-count limit needs cgroups (the Docker executor has one);
//! `RLIMIT_NPROC` is per user and ignored for root, so it is not used.
//!
//! The paths of DESIGN §5 arrive as `ARTHA_MODEL_DIR`, `ARTHA_DATA_DIR`,
//! `ARTHA_CHECKPOINT_DIR` and `ARTHA_EVENTS`. A record of each job
//! (`<jobs_root>/<job>/process.json`: pid, process start time, node) lets a
//! restarted executor find jobs it launched: a live process with the same
//! start time is the same job (pids are not reused under a live process);
//! anything else is reported as `Lost`.
//!
//! Identity: where the engine runs as root, a native job runs as an
//! unprivileged user (default uid/gid 65534, `nobody`/`nogroup`, the same
//! user the runtime images declare; [`ProcessExecutor::run_as`] changes it)
//! with no supplementary groups. Its writable directories (`checkpoints/`,
//! `artha/`) are handed to that user (`lchown`, links not followed); its
//! inputs are read-only for it; the job directory itself and everything
//! else under the home stay root's, so the job writes nowhere outside its
//! two directories except the host's world-writable places (`/tmp`,
//! `/dev/shm`). So that the user can reach its directory and the runtime
//! program, directories on those paths owned by root that lack search
//! permission for others get it (`o+x`: search by exact name, never
//! listing or reading); the home's own private parts (`store/`, `chain/`,
//! `keys/`, the ledger) keep their modes. An engine that is not root runs
//! jobs as its own user (there is no one to drop to).
//!
//! Output: the runtime's stdout and stderr both go to
//! `<jobs_root>/<job>/output.log`, opened by the executor and inherited by
//! the child (like `2>&1`, as Ray's worker logs do), so a runtime never
//! blocks on or dies of a pipe nobody reads, and an engine that restarts
//! finds every line. The price: a line's `stderr` flag is always `false`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use artha_core::{
    Error, ErrorKind, ExecHandle, ExecState, Executor, ExitReason, JobId, LaunchSpec, LogLine,
    NodeId, Result, Runtime,
};
use async_trait::async_trait;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::{EVENTS_FILE, check_mounts};
use crate::fsutil::{io_err, write_atomic};

/// A native runtime: the program to run for a `Runtime::Native(id)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeRuntime {
    /// Executable.
    pub program: PathBuf,
    /// Arguments before any the job adds.
    pub args: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    job_id: JobId,
    node_id: NodeId,
    pid: i32,
    start_ticks: u64,
}

#[derive(Debug)]
struct Job {
    pgid: i32,
    state: watch::Receiver<ExecState>,
    stop: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

/// Runs native runtimes as process groups under `<jobs_root>/<job>/`.
#[derive(Debug)]
pub struct ProcessExecutor {
    jobs_root: PathBuf,
    runtimes: BTreeMap<String, NativeRuntime>,
    jobs: Mutex<HashMap<JobId, Arc<Job>>>,
    run_as: Option<(u32, u32)>,
}

/// The user and group native jobs run as when the engine is root.
pub const JOB_UID: u32 = 65534;
/// See [`JOB_UID`].
pub const JOB_GID: u32 = 65534;

/// Gives `path` and, for a directory, everything below it (links not
/// followed, never descended into) to `uid:gid`.
pub(crate) fn chown_tree(path: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    if std::fs::symlink_metadata(path)?.is_dir() {
        for e in std::fs::read_dir(path)? {
            let e = e?;
            chown_tree(&e.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// Makes every directory from `/` to `path` searchable by `uid:gid`: a
/// directory owned by this process's user that lacks it gets `o+x`; one
/// owned by someone else is an error naming it.
fn make_reachable(path: &Path, uid: u32, gid: u32) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let me = nix::unistd::geteuid().as_raw();
    // A relative path (a home given as `--home h`) has `""` among its
    // ancestors: walk the absolute one.
    let path = &std::path::absolute(path).map_err(|e| io_err("resolve a path", path, e))?;
    let mut dirs: Vec<&Path> = path.ancestors().skip(1).collect();
    dirs.reverse();
    for d in dirs {
        let m = std::fs::metadata(d).map_err(|e| io_err("inspect a directory", d, e))?;
        let mode = m.mode();
        let ok = if m.uid() == uid {
            mode & 0o100 != 0
        } else if m.gid() == gid {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        if ok {
            continue;
        }
        if m.uid() != me {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                format!("the job user (uid {uid}) cannot reach the job's files"),
            )
            .with_context("path", d.display().to_string()));
        }
        std::fs::set_permissions(d, std::fs::Permissions::from_mode((mode & 0o7777) | 0o001))
            .map_err(|e| io_err("allow the job user to search a directory", d, e))?;
    }
    Ok(())
}

/// Start time of a process in clock ticks since boot (field 22 of
/// `/proc/<pid>/stat`), or `None` when it is not running.
fn start_ticks(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after it follow the last ')'.
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state); a zombie has exited.
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

impl ProcessExecutor {
    /// An executor whose jobs live under `jobs_root`.
    pub fn new(jobs_root: impl Into<PathBuf>) -> Self {
        ProcessExecutor {
            jobs_root: jobs_root.into(),
            runtimes: BTreeMap::new(),
            jobs: Mutex::new(HashMap::new()),
            run_as: nix::unistd::geteuid()
                .is_root()
                .then_some((JOB_UID, JOB_GID)),
        }
    }

    /// Runs jobs as `uid:gid` (`None`: as the engine's own user). The
    /// default is [`JOB_UID`]:[`JOB_GID`] when the engine is root, else
    /// `None`. Setting a user needs root.
    #[must_use]
    pub fn run_as(mut self, user: Option<(u32, u32)>) -> Self {
        self.run_as = user;
        self
    }

    /// Lets the job user search every directory down to the jobs root
    /// (see the module docs); a no-op when jobs run as the engine's user.
    /// Launching does it too; an engine that re-attaches to jobs launched
    /// before a restart calls it first.
    pub fn grant_access(&self) -> Result<()> {
        match self.run_as {
            Some((uid, gid)) => make_reachable(&self.jobs_root.join("job"), uid, gid),
            None => Ok(()),
        }
    }

    /// The user and group jobs run as (`None`: the engine's own).
    pub fn job_user(&self) -> Option<(u32, u32)> {
        self.run_as
    }

    /// Registers native runtime `id` (what `Runtime::Native(id)` names).
    #[must_use]
    pub fn with_runtime(
        mut self,
        id: impl Into<String>,
        program: impl Into<PathBuf>,
        args: &[&str],
    ) -> Self {
        self.runtimes.insert(
            id.into(),
            NativeRuntime {
                program: program.into(),
                args: args.iter().map(|s| s.to_string()).collect(),
            },
        );
        self
    }

    /// The jobs root.
    pub fn jobs_root(&self) -> &Path {
        &self.jobs_root
    }

    fn record_path(&self, job: &JobId) -> PathBuf {
        self.jobs_root.join(job.to_string()).join("process.json")
    }

    fn job(&self, job: &JobId) -> Option<Arc<Job>> {
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(job)
            .cloned()
    }

    fn read_record(&self, job: &JobId) -> Result<Record> {
        let p = self.record_path(job);
        let bytes = std::fs::read(&p).map_err(|e| io_err("read the process record", &p, e))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::new(
                ErrorKind::Corrupted,
                format!("process record is malformed: {e}"),
            )
            .with_context("path", p.display().to_string())
        })
    }

    /// The state of a job launched by an earlier executor instance.
    fn recorded_state(&self, job: &JobId) -> Result<ExecState> {
        let rec = self.read_record(job)?;
        if start_ticks(rec.pid) == Some(rec.start_ticks) {
            Ok(ExecState::Running)
        } else {
            Ok(ExecState::Finished {
                reason: ExitReason::Lost {
                    detail: "the process ended while the engine was not watching it".into(),
                },
                wall_seconds: 0,
            })
        }
    }
}

fn signal_group(pgid: i32, sig: Signal) {
    // ESRCH (the group is gone) is the expected outcome once the job ended.
    let _ = killpg(Pid::from_raw(pgid), sig);
}

/// The file a job's stdout and stderr go to (see the module docs).
pub const OUTPUT_FILE: &str = "output.log";

/// The lines of a job's output file from `since` (none before it exists).
pub fn read_output_log(job_dir: &Path, since: u64) -> Result<Vec<LogLine>> {
    use std::io::Read;
    let p = job_dir.join(OUTPUT_FILE);
    // The file is the job's output: read without following a link, at most
    // MAX_LOG_BYTES of it.
    let f = match super::collect::open_in(
        job_dir,
        Path::new(OUTPUT_FILE),
        "the job output",
        u64::MAX,
    ) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    f.take(super::MAX_LOG_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|e| io_err("read the job output", &p, e))?;
    // Complete lines only: a line still being written shows up next time.
    let complete = bytes
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |last| last + 1);
    Ok(String::from_utf8_lossy(&bytes[..complete])
        .lines()
        .enumerate()
        .skip(usize::try_from(since).unwrap_or(usize::MAX))
        .map(|(i, l)| LogLine {
            seq: i as u64,
            stderr: false,
            text: l.to_string(),
        })
        .collect())
}

#[async_trait]
impl Executor for ProcessExecutor {
    async fn launch(&self, spec: LaunchSpec) -> Result<ExecHandle> {
        let Runtime::Native(id) = &spec.runtime else {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "the process executor runs native runtimes only",
            )
            .with_context("field", "runtime"));
        };
        let rt = self.runtimes.get(id).ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!("no native runtime `{id}` is installed"),
            )
            .with_context("field", "runtime.native")
        })?;
        if self.job(&spec.job_id).is_some() {
            return Err(Error::new(ErrorKind::AlreadyExists, "job already launched")
                .with_context("job_id", spec.job_id.to_string()));
        }
        check_mounts(&self.jobs_root, &spec.job_id, &spec.mounts)?;
        let job_dir = self.jobs_root.join(spec.job_id.to_string());
        // The engine's own variables are `ARTHA_*` (checked at submission);
        // nothing else may steer the loader or an interpreter on the host.
        for k in spec.env.keys() {
            if let (false, Some(why)) = (k.starts_with("ARTHA_"), artha_core::native_env_refusal(k))
            {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("not allowed for a native runtime ({why} run code on the host)"),
                )
                .with_context("field", format!("env.{k}")));
            }
        }
        if let Some((uid, gid)) = self.run_as {
            make_reachable(&job_dir.join("artha"), uid, gid)?;
            make_reachable(&rt.program, uid, gid)?;
            for d in [&spec.mounts.checkpoints, &spec.mounts.artha] {
                chown_tree(d, uid, gid)
                    .map_err(|e| io_err("hand a job directory to the job user", d, e))?;
            }
        }

        // stdout and stderr go straight to one file, appended (a resumed
        // run adds to it), so the runtime never depends on the engine to
        // read a pipe: it runs on, and nothing it prints is lost, while no
        // engine watches it.
        let out_path = job_dir.join(OUTPUT_FILE);
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&out_path)
            .map_err(|e| io_err("open the job output", &out_path, e))?;
        let err = out
            .try_clone()
            .map_err(|e| io_err("open the job output", &out_path, e))?;
        let mem = (spec.limits.memory_mib + 512).saturating_mul(1 << 20);
        let limits = [
            (rlimit::Resource::AS, "--as", mem),
            (rlimit::Resource::CORE, "--core", 0),
            (rlimit::Resource::NOFILE, "--nofile", 4096),
        ];
        let mut cmd = match self.run_as {
            // A process of another user can be limited from outside only
            // with CAP_SYS_RESOURCE (not every root has it: containers and
            // sandboxes drop it), so the job sets its own limits before it
            // becomes the runtime: util-linux's `prlimit` lowers them and
            // execs the program (same pid, same process group).
            Some(_) => {
                let prlimit = ["/usr/bin/prlimit", "/bin/prlimit"]
                    .into_iter()
                    .map(Path::new)
                    .find(|p| p.is_file())
                    .ok_or_else(|| {
                        Error::new(
                            ErrorKind::Unavailable,
                            "running native jobs as an unprivileged user needs util-linux's `prlimit`",
                        )
                    })?;
                let mut c = tokio::process::Command::new(prlimit);
                for (_, flag, lim) in &limits {
                    c.arg(format!("{flag}={lim}"));
                }
                c.arg("--").arg(&rt.program);
                c
            }
            None => tokio::process::Command::new(&rt.program),
        };
        cmd.args(&rt.args)
            .args(&spec.args)
            .env_clear()
            .envs(&spec.env)
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", &spec.mounts.artha)
            .env("ARTHA_EVENTS", spec.mounts.artha.join(EVENTS_FILE))
            .env("ARTHA_CHECKPOINT_DIR", &spec.mounts.checkpoints)
            .env(
                "ARTHA_GPUS",
                spec.gpus
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            )
            .env(
                "CUDA_VISIBLE_DEVICES",
                spec.gpus
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            )
            .current_dir(&spec.mounts.artha)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .kill_on_drop(false);
        if let Some((uid, gid)) = self.run_as {
            // std drops the supplementary groups when root sets a uid.
            cmd.uid(uid).gid(gid);
        }
        if let Some(m) = &spec.mounts.model {
            cmd.env("ARTHA_MODEL_DIR", m);
        }
        if let Some(d) = &spec.mounts.data {
            cmd.env("ARTHA_DATA_DIR", d);
        }
        let mut child = cmd.spawn().map_err(|e| {
            Error::new(ErrorKind::NotFound, "cannot start the runtime program")
                .with_context("program", rt.program.display().to_string())
                .with_source(e)
        })?;
        let started = Instant::now();
        let pid = child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Internal,
                    "the runtime exited before it could be tracked",
                )
            })?;
        for (res, _, lim) in limits {
            if self.run_as.is_some() {
                break; // set by `prlimit` in the child
            }
            if let Err(e) = rlimit::prlimit(pid, res, Some((lim, lim)), None) {
                signal_group(pid, Signal::SIGKILL);
                let _ = child.wait().await;
                return Err(
                    Error::new(ErrorKind::Internal, "cannot set a resource limit").with_source(e),
                );
            }
        }
        let record = Record {
            job_id: spec.job_id,
            node_id: spec.node_id,
            pid,
            start_ticks: start_ticks(pid).unwrap_or(0),
        };
        let bytes = serde_json::to_vec(&record).map_err(|e| {
            Error::new(ErrorKind::Internal, "cannot encode the process record").with_source(e)
        })?;
        if let Err(e) = write_atomic(&job_dir.join("process.json"), &bytes) {
            signal_group(pid, Signal::SIGKILL);
            let _ = child.wait().await;
            return Err(e);
        }

        let (state_tx, state_rx) = watch::channel(ExecState::Running);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let max = spec.limits.max_duration;
        tokio::spawn(async move {
            let mut stopped = false;
            let mut timed_out = false;
            // Biased: a stop request (its SIGTERM is sent right after it)
            // and the exit it causes are often ready together; the run was
            // stopped, not an exit with 143.
            let status = tokio::select! {
                biased;
                _ = stop_rx => {
                    stopped = true;
                    child.wait().await
                }
                () = tokio::time::sleep(max) => {
                    timed_out = true;
                    signal_group(pid, Signal::SIGKILL);
                    child.wait().await
                }
                s = child.wait() => s,
            };
            // Whatever the leader's fate, no process of the job may outlive it.
            signal_group(pid, Signal::SIGKILL);
            let reason = if timed_out {
                ExitReason::TimedOut
            } else if stopped {
                ExitReason::Stopped
            } else {
                match status {
                    Ok(s) => {
                        use std::os::unix::process::ExitStatusExt;
                        let code = s
                            .code()
                            .map(i64::from)
                            .or_else(|| s.signal().map(|sig| 128 + i64::from(sig)));
                        ExitReason::Exited {
                            code: code.unwrap_or(-1),
                        }
                    }
                    Err(e) => ExitReason::Lost {
                        detail: format!("cannot wait for the process: {e}"),
                    },
                }
            };
            let _ = state_tx.send(ExecState::Finished {
                reason,
                wall_seconds: started.elapsed().as_secs(),
            });
        });
        let job = Arc::new(Job {
            pgid: pid,
            state: state_rx,
            stop: Mutex::new(Some(stop_tx)),
        });
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(spec.job_id, job);
        Ok(ExecHandle {
            job_id: spec.job_id,
            backend_id: format!("pgid:{pid}"),
        })
    }

    async fn state(&self, handle: &ExecHandle) -> Result<ExecState> {
        match self.job(&handle.job_id) {
            Some(job) => Ok(job.state.borrow().clone()),
            None => self.recorded_state(&handle.job_id),
        }
    }

    async fn wait(&self, handle: &ExecHandle) -> Result<ExecState> {
        match self.job(&handle.job_id) {
            Some(job) => {
                let mut rx = job.state.clone();
                let state = rx
                    .wait_for(|s| matches!(s, ExecState::Finished { .. }))
                    .await
                    .map_err(|_| Error::new(ErrorKind::Internal, "job supervisor vanished"))?;
                Ok(state.clone())
            }
            None => loop {
                let s = self.recorded_state(&handle.job_id)?;
                if matches!(s, ExecState::Finished { .. }) {
                    return Ok(s);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            },
        }
    }

    async fn stop(&self, handle: &ExecHandle, grace: Duration) -> Result<()> {
        let Some(job) = self.job(&handle.job_id) else {
            // A job from an earlier instance: signal its group if it still runs.
            let rec = self.read_record(&handle.job_id)?;
            if start_ticks(rec.pid) == Some(rec.start_ticks) {
                signal_group(rec.pid, Signal::SIGTERM);
                tokio::time::sleep(grace).await;
                signal_group(rec.pid, Signal::SIGKILL);
            }
            return Ok(());
        };
        let finished = matches!(*job.state.borrow(), ExecState::Finished { .. });
        if finished {
            return Ok(());
        }
        let stop = job.stop.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(tx) = stop {
            let _ = tx.send(());
        }
        signal_group(job.pgid, Signal::SIGTERM);
        let mut rx = job.state.clone();
        let timed_out = tokio::time::timeout(
            grace,
            rx.wait_for(|s| matches!(s, ExecState::Finished { .. })),
        )
        .await
        .is_err();
        if timed_out {
            signal_group(job.pgid, Signal::SIGKILL);
        }
        self.wait(handle).await.map(|_| ())
    }

    async fn logs(&self, handle: &ExecHandle, since: u64) -> Result<Vec<LogLine>> {
        read_output_log(&self.jobs_root.join(handle.job_id.to_string()), since)
    }

    async fn remove(&self, handle: &ExecHandle) -> Result<()> {
        match self.state(handle).await {
            Ok(ExecState::Running | ExecState::Starting) => {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    "cannot remove a running job; stop it first",
                )
                .with_context("job_id", handle.job_id.to_string()));
            }
            Ok(_) => {}
            // No record: removed already (say, before a crash). Idempotent.
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&handle.job_id);
        let p = self.record_path(&handle.job_id);
        match std::fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove the process record", &p, e)),
        }
    }

    async fn list(&self) -> Result<Vec<ExecHandle>> {
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&self.jobs_root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io_err("list the jobs root", &self.jobs_root, e)),
        };
        for entry in entries.flatten() {
            let Some(job) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<JobId>().ok())
            else {
                continue;
            };
            if let Ok(rec) = self.read_record(&job) {
                out.push(ExecHandle {
                    job_id: rec.job_id,
                    backend_id: format!("pgid:{}", rec.pid),
                });
            }
        }
        out.sort_by_key(|h| h.job_id);
        Ok(out)
    }

    fn supports(&self, runtime: &Runtime) -> bool {
        matches!(runtime, Runtime::Native(id) if self.runtimes.contains_key(id))
    }

    fn runtimes(&self) -> Vec<String> {
        self.runtimes.keys().cloned().collect()
    }
}
