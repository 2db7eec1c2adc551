//! Execution: running jobs as containers ([`DockerExecutor`], feature
//! `docker`) or as native processes ([`ProcessExecutor`]), GPU inventory and
//! allocation ([`gpu`]), and the supervisor that follows a job's events.
//!
//! Both executors implement [`artha_core::Executor`] and speak the runtime
//! protocol of [`artha_core::protocol`]: the job's `/model` and `/data` are
//! read-only, `/checkpoints` and `/artha` are writable, the environment
//! carries the hyper-parameters, and the job reports through
//! `events.jsonl` in its `/artha` directory. Mount sources must lie inside
//! the job's own directory under the executor's jobs root
//! ([`check_mounts`]); anything else is refused before a job starts.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use artha_core::protocol::RuntimeEvent;
use artha_core::{
    Error, ErrorKind, ExecHandle, ExecState, Executor, ExitReason, JobId, LogLine, Mounts, Result,
};

pub mod collect;
#[cfg(feature = "docker")]
pub mod docker;
pub mod gpu;
pub mod process;

#[cfg(feature = "docker")]
pub use docker::{DockerConfig, DockerExecutor};
pub use gpu::{GpuAllocator, GpuDevice, GpuInventory, InventorySource};
pub use process::ProcessExecutor;

/// Label on every container and record the executors create.
pub const LABEL_JOB: &str = "artha.job_id";
/// Label naming the node a job runs on.
pub const LABEL_NODE: &str = "artha.node_id";
/// Label marking objects managed by Artha.
pub const LABEL_MANAGED: &str = "artha.managed";

/// Name of the events file inside a job's `/artha` directory.
pub const EVENTS_FILE: &str = "events.jsonl";

/// Refuses mount sources outside `<jobs_root>/<job_id>/`: each must be an
/// absolute path with no `..`, resolving (through symlinks) inside the job's
/// directory, and must exist.
pub fn check_mounts(jobs_root: &Path, job: &JobId, mounts: &Mounts) -> Result<()> {
    let job_dir = jobs_root.join(job.to_string());
    let job_dir_real = job_dir.canonicalize().map_err(|e| {
        Error::new(ErrorKind::InvalidInput, "the job directory does not exist")
            .with_context("path", job_dir.display().to_string())
            .with_source(e)
    })?;
    let all = [
        ("model", mounts.model.as_deref()),
        ("data", mounts.data.as_deref()),
        ("checkpoints", Some(mounts.checkpoints.as_path())),
        ("artha", Some(mounts.artha.as_path())),
    ];
    for (name, path) in all {
        let Some(path) = path else { continue };
        let field = format!("mounts.{name}");
        if !path.is_absolute() || path.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(
                Error::invalid(field, "must be an absolute path without `..`")
                    .with_context("path", path.display().to_string()),
            );
        }
        let real = path.canonicalize().map_err(|e| {
            Error::invalid(field.clone(), "does not exist")
                .with_context("path", path.display().to_string())
                .with_source(e)
        })?;
        if !real.starts_with(&job_dir_real) {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                "mount source is outside the job directory",
            )
            .with_context("field", field)
            .with_context("path", path.display().to_string())
            .with_context("job_dir", job_dir.display().to_string()));
        }
    }
    Ok(())
}

/// Most bytes of a job's output (stdout and stderr) the executors read back
/// for `logs`; a job that prints more keeps running, and the lines past the
/// bound are not returned.
pub const MAX_LOG_BYTES: u64 = 64 << 20;

/// Most bytes of events one [`EventTail::poll`] reads (the rest waits for
/// the next poll), so a runtime that writes fast cannot make one poll hold
/// an unbounded buffer.
pub const MAX_EVENTS_POLL_BYTES: u64 = 8 << 20;
/// Most bytes of events one job may write in all (about a million step
/// records). A job over it fails with that reason.
pub const MAX_EVENTS_BYTES: u64 = 256 << 20;

/// Reads a job's `events.jsonl` incrementally, validating every line.
///
/// The file is hostile input: it is opened without following links and
/// must be a regular file with one link ([`collect::open_in`]; a link to
/// `/dev/zero` or a FIFO is refused); a line may be at most
/// [`artha_core::protocol::MAX_EVENT_LINE`] bytes, one poll reads at most
/// [`MAX_EVENTS_POLL_BYTES`], and the whole file at most
/// [`MAX_EVENTS_BYTES`]. Memory held between polls is one partial line.
#[derive(Debug)]
pub struct EventTail {
    dir: PathBuf,
    name: PathBuf,
    offset: u64,
    line_no: u64,
    partial: Vec<u8>,
}

impl EventTail {
    /// A reader of `path` from its start (the file may not exist yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path: PathBuf = path.into();
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let name = path
            .file_name()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(EVENTS_FILE));
        EventTail {
            dir,
            name,
            offset: 0,
            line_no: 0,
            partial: Vec::new(),
        }
    }

    /// Bytes of the file consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Appends to `out` the events of the complete lines written since the
    /// last call, reading at most [`MAX_EVENTS_POLL_BYTES`]; returns the
    /// bytes read (0: nothing new). A malformed line is an `InvalidInput`
    /// error naming its line number; the valid events before it are still
    /// appended. A file that is not a regular file, shrank, or grew over
    /// [`MAX_EVENTS_BYTES`] is an `InvalidInput` error too.
    pub fn poll(&mut self, out: &mut Vec<RuntimeEvent>) -> Result<u64> {
        use std::io::{Read, Seek, SeekFrom};
        let what = "the events file";
        let f = match collect::open_in(&self.dir, &self.name, what, MAX_EVENTS_BYTES) {
            Ok(f) => f,
            Err(e) if e.kind() == artha_core::ErrorKind::NotFound && self.offset == 0 => {
                return Ok(0);
            }
            Err(e) => return Err(e.with_context("limit", MAX_EVENTS_BYTES.to_string())),
        };
        let path = self.dir.join(&self.name);
        let io = |e| crate::fsutil::io_err("read the events file", &path, e);
        let len = f.metadata().map_err(io)?.len();
        if len < self.offset {
            return Err(Error::invalid(
                "events",
                "the events file shrank while it was read (it is append-only)",
            ));
        }
        let mut f = f;
        f.seek(SeekFrom::Start(self.offset)).map_err(io)?;
        let want = (len - self.offset).min(MAX_EVENTS_POLL_BYTES);
        let start = self.partial.len();
        (&mut f)
            .take(want)
            .read_to_end(&mut self.partial)
            .map_err(io)?;
        let read = (self.partial.len() - start) as u64;
        self.offset += read;
        // Parse every complete line, then drop them in one move (no
        // per-line shifting of the buffer).
        let mut consumed = 0;
        let mut result = Ok(());
        while let Some(nl) = self.partial[consumed..].iter().position(|b| *b == b'\n') {
            let line = &self.partial[consumed..consumed + nl];
            consumed += nl + 1;
            self.line_no += 1;
            let parsed = std::str::from_utf8(line)
                .map_err(|_| {
                    Error::invalid("events", "line is not UTF-8")
                        .with_context("line", self.line_no.to_string())
                })
                .and_then(|text| {
                    if text.trim().is_empty() {
                        Ok(None)
                    } else {
                        RuntimeEvent::parse_line(self.line_no, text).map(Some)
                    }
                });
            match parsed {
                Ok(Some(ev)) => out.push(ev),
                Ok(None) => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.partial.drain(..consumed);
        result?;
        if self.partial.len() > artha_core::protocol::MAX_EVENT_LINE {
            return Err(
                Error::invalid("events", "unterminated line longer than the limit")
                    .with_context("line", (self.line_no + 1).to_string()),
            );
        }
        Ok(read)
    }

    /// Polls until the file has nothing more to read (what a job left when
    /// it ended); bounded by [`MAX_EVENTS_BYTES`].
    pub fn poll_all(&mut self, out: &mut Vec<RuntimeEvent>) -> Result<()> {
        while self.poll(out)? > 0 {}
        Ok(())
    }
}

/// What [`supervise`] saw of a job.
#[derive(Debug, Clone)]
pub struct Supervised {
    /// Final executor state.
    pub state: ExecState,
    /// Every valid event, in order.
    pub events: Vec<RuntimeEvent>,
    /// Why the job failed, when it did (non-zero exit, OOM, timeout, a
    /// malformed event, an `error` event); `None` on success.
    pub failure: Option<String>,
}

/// How a supervised run ended (see [`supervise_with`]).
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The executor's final state.
    pub state: ExecState,
    /// Why the events were refused (the job was stopped for it).
    pub bad_event: Option<String>,
    /// Whether `cancel` fired (the job was stopped for it).
    pub cancelled: bool,
}

/// The one run loop: follows a launched job to its end, reading its events
/// every `poll_interval` and handing each new batch to `on_events` (in
/// order, once each); stops the job (after `grace`) at the first malformed
/// event line or when `cancel` fires, and reads what is left once it has
/// ended. The engine's lifecycle runs every job through it; [`supervise`]
/// is it with the events collected.
pub async fn supervise_with<E, F, Fut>(
    executor: &E,
    handle: &ExecHandle,
    events_path: &Path,
    poll_interval: Duration,
    grace: Duration,
    cancel: impl std::future::Future<Output = ()>,
    mut on_events: F,
) -> Result<RunOutcome>
where
    E: Executor + ?Sized,
    F: FnMut(Vec<RuntimeEvent>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut tail = EventTail::new(events_path);
    let mut bad_event: Option<String> = None;
    let mut cancelled = false;
    let wait = executor.wait(handle);
    tokio::pin!(wait);
    tokio::pin!(cancel);
    let state = loop {
        let mut batch = Vec::new();
        tokio::select! {
            state = &mut wait => break state?,
            () = tokio::time::sleep(poll_interval) => {
                if bad_event.is_none() && let Err(e) = tail.poll(&mut batch) {
                    bad_event = Some(format!("runtime wrote a malformed event: {}", describe(&e)));
                    let _ = executor.stop(handle, grace).await;
                }
            }
            () = &mut cancel, if !cancelled => {
                cancelled = true;
                let _ = executor.stop(handle, grace).await;
            }
        }
        if !batch.is_empty() {
            on_events(batch).await;
        }
    };
    let mut rest = Vec::new();
    if bad_event.is_none()
        && let Err(e) = tail.poll_all(&mut rest)
    {
        bad_event = Some(format!("runtime wrote a malformed event: {}", describe(&e)));
    }
    if !rest.is_empty() {
        on_events(rest).await;
    }
    Ok(RunOutcome {
        state,
        bad_event,
        cancelled,
    })
}

/// An error with its context, in one line (for a job's reason).
pub(crate) fn describe(e: &artha_core::Error) -> String {
    let mut s = e.to_string();
    for (k, v) in e.context() {
        if !s.contains(v.as_str()) {
            s.push_str(&format!(" [{k}: {v}]"));
        }
    }
    s
}

/// Follows a launched job to its end: tails its events every
/// `poll_interval`, stops the job at the first malformed event line, and
/// returns the final state with the events and a failure reason
/// ([`supervise_with`], collecting the events).
pub async fn supervise<E: Executor + ?Sized>(
    executor: &E,
    handle: &ExecHandle,
    events_path: &Path,
    poll_interval: Duration,
) -> Result<Supervised> {
    let mut events = Vec::new();
    let out = supervise_with(
        executor,
        handle,
        events_path,
        poll_interval,
        Duration::from_secs(2),
        std::future::pending(),
        |batch| {
            events.extend(batch);
            std::future::ready(())
        },
    )
    .await?;
    let failure = out
        .bad_event
        .or_else(|| failure_reason(&out.state, &events));
    Ok(Supervised {
        state: out.state,
        events,
        failure,
    })
}

/// Runs one job start to finish: allocates `gpu_count` GPUs (≥
/// `gpu_memory_mib` each) into `spec.gpus`, launches, supervises, then
/// removes the job from the executor and frees its GPUs on **every** path —
/// launch failure, runtime failure, malformed events, timeout, OOM — so no
/// index stays taken and no container or process is left behind.
pub async fn run_job<E: Executor + ?Sized>(
    executor: &E,
    gpus: &GpuAllocator,
    mut spec: artha_core::LaunchSpec,
    gpu_count: u32,
    gpu_memory_mib: u64,
    poll_interval: Duration,
) -> Result<Supervised> {
    let job = spec.job_id;
    spec.gpus = gpus.allocate(&job, gpu_count, gpu_memory_mib)?;
    let events = spec.mounts.artha.join(EVENTS_FILE);
    let outcome = match executor.launch(spec).await {
        Ok(handle) => {
            let out = supervise(executor, &handle, &events, poll_interval).await;
            if out.is_err() {
                // The supervisor lost the job (e.g. daemon error): make sure it is gone.
                let _ = executor.stop(&handle, Duration::from_secs(1)).await;
            }
            let removed = executor.remove(&handle).await;
            out.and_then(|o| removed.map(|()| o))
        }
        Err(e) => Err(e),
    };
    let released = gpus.release(&job);
    let out = outcome?;
    released?;
    Ok(out)
}

/// The failure reason a final state and events imply, `None` for success.
pub fn failure_reason(state: &ExecState, events: &[RuntimeEvent]) -> Option<String> {
    let reported = events.iter().rev().find_map(|e| match e {
        RuntimeEvent::Error { message } => Some(message.clone()),
        _ => None,
    });
    match state {
        ExecState::Finished { reason, .. } => match reason {
            ExitReason::Exited { code: 0 } => {
                reported.map(|m| format!("runtime reported an error: {m}"))
            }
            ExitReason::Exited { code } => Some(match reported {
                Some(m) => format!("runtime exited with code {code}: {m}"),
                None => format!("runtime exited with code {code}"),
            }),
            ExitReason::OutOfMemory => {
                Some("killed: out of memory (raise resources.memory_mib)".into())
            }
            ExitReason::TimedOut => Some("killed: exceeded resources.max_duration_secs".into()),
            ExitReason::Stopped => Some("stopped".into()),
            ExitReason::Lost { detail } => Some(format!("lost track of the job: {detail}")),
        },
        _ => Some("job has not finished".into()),
    }
}

/// Polls `logs` until the job finishes, calling `sink` with each new line
/// (the `--follow` of `arthai job-logs`).
pub async fn follow_logs<E: Executor + ?Sized>(
    executor: &E,
    handle: &ExecHandle,
    poll_interval: Duration,
    mut sink: impl FnMut(&LogLine),
) -> Result<()> {
    let mut since = 0;
    loop {
        let finished = matches!(executor.state(handle).await?, ExecState::Finished { .. });
        for line in executor.logs(handle, since).await? {
            since = line.seq + 1;
            sink(&line);
        }
        if finished {
            return Ok(());
        }
        tokio::time::sleep(poll_interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_outside_the_job_dir_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let job = JobId::from_bytes([7; 16]);
        let jd = tmp.path().join(job.to_string());
        for d in ["ck", "artha", "data"] {
            std::fs::create_dir_all(jd.join(d)).unwrap();
        }
        let outside = tmp.path().join("elsewhere");
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, jd.join("link")).unwrap();
        let ok = Mounts {
            model: None,
            data: Some(jd.join("data")),
            checkpoints: jd.join("ck"),
            artha: jd.join("artha"),
        };
        check_mounts(tmp.path(), &job, &ok).unwrap();
        let cases = [
            (
                Mounts {
                    data: Some(outside.clone()),
                    ..ok.clone()
                },
                "outside",
            ),
            (
                Mounts {
                    data: Some(jd.join("link")),
                    ..ok.clone()
                },
                "outside",
            ),
            (
                Mounts {
                    model: Some(jd.join("data/../../elsewhere")),
                    ..ok.clone()
                },
                "`..`",
            ),
            (
                Mounts {
                    model: Some(PathBuf::from("relative")),
                    ..ok.clone()
                },
                "absolute",
            ),
            (
                Mounts {
                    model: Some(jd.join("missing")),
                    ..ok.clone()
                },
                "does not exist",
            ),
        ];
        for (m, needle) in cases {
            let e = check_mounts(tmp.path(), &job, &m).unwrap_err();
            assert!(e.to_string().contains(needle), "{e}");
        }
    }

    #[test]
    fn tail_reads_incrementally_and_names_bad_lines() {
        use std::io::Write;
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("events.jsonl");
        let mut t = EventTail::new(&p);
        let mut evs = Vec::new();
        t.poll(&mut evs).unwrap();
        assert!(evs.is_empty(), "missing file is empty");
        let mut f = std::fs::File::create(&p).unwrap();
        write!(
            f,
            "{{\"event\":\"log\",\"message\":\"a\"}}\n{{\"event\":\"log\","
        )
        .unwrap();
        t.poll(&mut evs).unwrap();
        assert_eq!(evs.len(), 1);
        write!(f, "\"message\":\"b\"}}\n\n").unwrap();
        t.poll(&mut evs).unwrap();
        assert_eq!(
            evs[1],
            RuntimeEvent::Log {
                message: "b".into()
            }
        );
        writeln!(f, "{{\"event\":\"log\",\"message\":\"c\"}}\ngarbage").unwrap();
        let e = t.poll(&mut evs).unwrap_err();
        assert_eq!(e.context_value("line"), Some("5"));
        assert_eq!(evs.len(), 3, "valid lines before the bad one are kept");
    }

    #[test]
    fn tail_refuses_links_devices_and_floods() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("events.jsonl");
        std::os::unix::fs::symlink("/dev/zero", &p).unwrap();
        let mut evs = Vec::new();
        let e = EventTail::new(&p).poll(&mut evs).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        std::fs::remove_file(&p).unwrap();

        // A flood of one unterminated line: refused after one bounded read.
        std::fs::write(&p, vec![b'x'; 3 << 20]).unwrap();
        let mut t = EventTail::new(&p);
        let e = t.poll(&mut evs).unwrap_err();
        assert!(e.to_string().contains("longer than the limit"), "{e}");

        // Many valid lines: each poll reads a bounded slice, poll_all the rest.
        let line = "{\"event\":\"log\",\"message\":\"m\"}\n";
        let n = (MAX_EVENTS_POLL_BYTES as usize / line.len()) * 2 + 7;
        std::fs::write(&p, line.repeat(n)).unwrap();
        let mut t = EventTail::new(&p);
        let first = t.poll(&mut evs).unwrap();
        assert_eq!(first, MAX_EVENTS_POLL_BYTES);
        evs.clear();
        let mut t = EventTail::new(&p);
        t.poll_all(&mut evs).unwrap();
        assert_eq!(evs.len(), n);

        // A file that shrinks under the reader is refused.
        std::fs::write(&p, "").unwrap();
        assert!(t.poll(&mut evs).is_err());
    }

    #[test]
    fn failure_reasons() {
        let fin = |reason| ExecState::Finished {
            reason,
            wall_seconds: 1,
        };
        assert_eq!(
            failure_reason(&fin(ExitReason::Exited { code: 0 }), &[]),
            None
        );
        let err = [RuntimeEvent::Error {
            message: "NaN loss".into(),
        }];
        assert_eq!(
            failure_reason(&fin(ExitReason::Exited { code: 3 }), &err).unwrap(),
            "runtime exited with code 3: NaN loss"
        );
        assert!(
            failure_reason(&fin(ExitReason::OutOfMemory), &[])
                .unwrap()
                .contains("out of memory")
        );
        assert!(
            failure_reason(&fin(ExitReason::TimedOut), &[])
                .unwrap()
                .contains("max_duration")
        );
    }
}
