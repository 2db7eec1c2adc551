//! The [`Executor`] conformance suite.
//!
//! Each scenario takes the executor under test as `&dyn Executor` and an
//! [`ExecutorFixture`] that says what to launch. The program the fixture's
//! runtime starts must follow the script language of `artha-testrt`
//! (`tests/testrt` in this repository; its arguments are a script of
//! commands run in order). The suite uses five of them:
//!
//! | command | effect |
//! |---|---|
//! | `events N` | append N `step` events and a `complete` event to `$ARTHA_EVENTS` |
//! | `echo TEXT` | print TEXT on stdout |
//! | `sleep MS` | sleep MS milliseconds |
//! | `exit CODE` | exit with CODE |
//!
//! and an empty script is not used. The [`ProcessExecutor`] runs the
//! `artha-testrt` binary as a native runtime
//! (`Runtime::Native("testrt")`, installed with
//! `ProcessExecutor::with_runtime`); the [`DockerExecutor`] runs the
//! `FROM scratch` image of the same program (`Runtime::Image(tag)`, built
//! by `tests/lib/images.sh`).
//!
//! Job directories are made under [`ExecutorFixture::jobs_root`], which
//! must be the executor's jobs root (executors refuse mounts outside
//! `<jobs_root>/<job>/`). Job ids are derived from the root and the
//! scenario, so two suites on two roots never share a job id (a Docker
//! daemon's container names are global).
//!
//! # The contract checked
//!
//! - [`declares_the_runtime_it_runs`]: it supports the fixture's runtime
//!   and advertises at least one runtime.
//! - [`launch_writes_events_and_exits_zero`]: after `launch`, the runtime
//!   writes its events to `<mounts.artha>/events.jsonl`; `wait` returns
//!   `Finished { Exited { code: 0 } }` and `state` then says the same.
//! - [`failing_program_exits_non_zero`]: a program exiting with 3 finishes
//!   as `Exited { code: 3 }`.
//! - [`stop_ends_a_sleeping_job`]: a running job stops within the grace
//!   period plus a margin, finishes as `Stopped` (not as the exit its
//!   SIGTERM caused); `stop` again succeeds.
//! - [`logs_in_order_and_since_skips`]: `logs(h, 0)` returns the job's
//!   lines in order with `seq` 0, 1, 2…; `logs(h, n)` returns the same
//!   lines from the n-th.
//! - [`remove_is_idempotent`]: removing a finished job twice succeeds, and
//!   `list` no longer returns it.
//! - [`list_contains_a_launched_handle`]: `list` returns the handle of a
//!   running job (once).
//! - [`second_launch_is_refused`]: launching a job id that is already
//!   launched fails with `AlreadyExists` (the process executor) or
//!   `Conflict` (Docker: the container name is taken) and leaves the first
//!   job running, the only one listed for that id.
//!
//! Not in the contract (the engine's executors differ, so no scenario
//! checks it): removing a *running* job (the process executor refuses with
//! `Conflict`; Docker force-removes it), and the `stderr` flag of a log
//! line (the process executor merges stderr into stdout).
//!
//! [`ProcessExecutor`]: crate::exec::ProcessExecutor
//! [`DockerExecutor`]: crate::exec::DockerExecutor

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use artha_core::protocol::RuntimeEvent;
use artha_core::{
    ErrorKind, ExecHandle, ExecState, Executor, ExitReason, JobId, LaunchSpec, Limits, Mounts,
    NodeId, Runtime,
};

use crate::exec::EVENTS_FILE;

/// What the suite launches, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorFixture {
    /// The runtime of every job: one that runs a program following the
    /// `artha-testrt` script language (see the [module docs](self)), e.g.
    /// `Runtime::Native("testrt")` or `Runtime::Image("artha/testrt:…")`.
    pub runtime: Runtime,
    /// The executor's jobs root: job directories are made under it.
    pub jobs_root: PathBuf,
    /// The grace period [`stop_ends_a_sleeping_job`] passes to `stop`
    /// (Docker counts it in whole seconds: use at least one).
    pub stop_grace: Duration,
}

/// How long the suite waits for a job that should finish by itself.
pub const FINISH_TIMEOUT: Duration = Duration::from_secs(120);

/// A job directory with `data/` (holding `input.csv`), `checkpoints/` and
/// `artha/`, and the mounts naming them.
#[derive(Debug, Clone)]
pub struct JobDir {
    /// The job (derived from the root and `n`).
    pub job: JobId,
    /// `<root>/<job>`.
    pub dir: PathBuf,
    /// Mounts of the three directories (no model).
    pub mounts: Mounts,
}

/// Makes job directory number `n` under `root` (a jobs root).
///
/// # Panics
/// When the directories cannot be created.
pub fn job_dir(root: &Path, n: u64) -> JobDir {
    let job = JobId::derive(&[
        b"exec-test",
        &n.to_le_bytes(),
        root.to_string_lossy().as_bytes(),
    ]);
    let dir = root.join(job.to_string());
    for d in ["data", "checkpoints", "artha"] {
        std::fs::create_dir_all(dir.join(d)).expect("create a job directory");
    }
    std::fs::write(dir.join("data/input.csv"), "x,y\n1,2\n").expect("write the job's input");
    let mounts = Mounts {
        model: None,
        data: Some(dir.join("data")),
        checkpoints: dir.join("checkpoints"),
        artha: dir.join("artha"),
    };
    JobDir { job, dir, mounts }
}

/// A launch of `jd` on `runtime` with `args`: environment `EPOCHS=2`, no
/// GPU, one CPU, 256 MiB, 64 processes, 60 s, no network.
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

/// Every scenario of the suite, in the order [`run_all`] runs them.
pub const SCENARIOS: &[&str] = &[
    "declares_the_runtime_it_runs",
    "launch_writes_events_and_exits_zero",
    "failing_program_exits_non_zero",
    "stop_ends_a_sleeping_job",
    "logs_in_order_and_since_skips",
    "remove_is_idempotent",
    "list_contains_a_launched_handle",
    "second_launch_is_refused",
];

/// The executor [supports](Executor::supports) the fixture's runtime and
/// advertises at least one runtime (what a node registers, and how the
/// engine routes a job to an executor).
pub fn declares_the_runtime_it_runs(ex: &dyn Executor, fx: &ExecutorFixture) {
    assert!(
        ex.supports(&fx.runtime),
        "the executor must support the fixture's runtime {:?}",
        fx.runtime
    );
    assert!(
        !ex.runtimes().is_empty(),
        "an executor advertises the runtimes it runs"
    );
}

/// Runs the scenario called `name` (one of [`SCENARIOS`]).
///
/// # Panics
/// When a check fails (the message starts with the scenario's name), or
/// when `name` is not a scenario.
pub async fn run_scenario(name: &str, ex: &dyn Executor, fx: &ExecutorFixture) {
    let fut = async move {
        match name {
            "declares_the_runtime_it_runs" => declares_the_runtime_it_runs(ex, fx),
            "launch_writes_events_and_exits_zero" => {
                launch_writes_events_and_exits_zero(ex, fx).await;
            }
            "failing_program_exits_non_zero" => failing_program_exits_non_zero(ex, fx).await,
            "stop_ends_a_sleeping_job" => stop_ends_a_sleeping_job(ex, fx).await,
            "logs_in_order_and_since_skips" => logs_in_order_and_since_skips(ex, fx).await,
            "remove_is_idempotent" => remove_is_idempotent(ex, fx).await,
            "list_contains_a_launched_handle" => list_contains_a_launched_handle(ex, fx).await,
            "second_launch_is_refused" => second_launch_is_refused(ex, fx).await,
            other => panic!("no executor scenario `{other}` (see SCENARIOS)"),
        }
    };
    super::scenario("executor", name, fut).await;
}

/// Runs every scenario of [`SCENARIOS`] against `ex`, one after the other.
///
/// # Panics
/// On the first failing scenario, naming it.
pub async fn run_all(ex: &dyn Executor, fx: &ExecutorFixture) {
    for name in SCENARIOS {
        run_scenario(name, ex, fx).await;
    }
}

// ---------------------------------------------------------------- helpers

/// The job directory of scenario number `n` of this suite.
fn scenario_dir(fx: &ExecutorFixture, n: u64) -> JobDir {
    job_dir(&fx.jobs_root, 0xC0_0000 + n)
}

async fn launch(ex: &dyn Executor, fx: &ExecutorFixture, jd: &JobDir, args: &[&str]) -> ExecHandle {
    let h = ex
        .launch(launch_spec(jd, fx.runtime.clone(), args))
        .await
        .unwrap_or_else(|e| panic!("launch {args:?} failed: {e}"));
    assert_eq!(h.job_id, jd.job, "the handle names the launched job");
    h
}

/// `wait`, bounded by [`FINISH_TIMEOUT`]; the state must be `Finished`.
async fn finish(ex: &dyn Executor, h: &ExecHandle) -> ExecState {
    let state = tokio::time::timeout(FINISH_TIMEOUT, ex.wait(h))
        .await
        .unwrap_or_else(|_| panic!("wait did not return within {FINISH_TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("wait failed: {e}"));
    assert!(
        matches!(state, ExecState::Finished { .. }),
        "wait returned an unfinished state: {state:?}"
    );
    state
}

fn reason(state: &ExecState) -> Option<&ExitReason> {
    match state {
        ExecState::Finished { reason, .. } => Some(reason),
        _ => None,
    }
}

/// Whether `state` is what a stopped job ends as: `Stopped`.
fn stopped(state: &ExecState) -> bool {
    matches!(reason(state), Some(ExitReason::Stopped))
}

async fn stop_and_remove(ex: &dyn Executor, h: &ExecHandle) {
    ex.stop(h, Duration::from_secs(1))
        .await
        .unwrap_or_else(|e| panic!("stop failed: {e}"));
    finish(ex, h).await;
    ex.remove(h)
        .await
        .unwrap_or_else(|e| panic!("remove failed: {e}"));
}

async fn listed(ex: &dyn Executor) -> Vec<ExecHandle> {
    ex.list()
        .await
        .unwrap_or_else(|e| panic!("list failed: {e}"))
}

async fn with_timeout<F: Future>(what: &'static str, f: F) -> F::Output {
    tokio::time::timeout(FINISH_TIMEOUT, f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not return within {FINISH_TIMEOUT:?}"))
}

// -------------------------------------------------------------- scenarios

/// A job that writes three step events and a `complete` event to the
/// protocol's events file, then exits 0: `wait` returns
/// `Exited { code: 0 }`, `state` agrees, and the file holds the four
/// events in order.
pub async fn launch_writes_events_and_exits_zero(ex: &dyn Executor, fx: &ExecutorFixture) {
    let jd = scenario_dir(fx, 1);
    let h = launch(ex, fx, &jd, &["events", "3"]).await;
    let end = finish(ex, &h).await;
    assert_eq!(
        reason(&end),
        Some(&ExitReason::Exited { code: 0 }),
        "a job exiting 0: {end:?}"
    );
    let now = with_timeout("state", ex.state(&h))
        .await
        .unwrap_or_else(|e| panic!("state failed: {e}"));
    assert_eq!(now, end, "state after wait is the final state");
    let path = jd.mounts.artha.join(EVENTS_FILE);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("the events file {} is missing: {e}", path.display()));
    let events: Vec<RuntimeEvent> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            RuntimeEvent::parse_line(i as u64 + 1, l)
                .unwrap_or_else(|e| panic!("event line {} is malformed: {e}", i + 1))
        })
        .collect();
    assert_eq!(events.len(), 4, "3 steps and complete: {events:?}");
    for (i, e) in events[..3].iter().enumerate() {
        match e {
            RuntimeEvent::Step(r) => assert_eq!(r.step, i as u64 + 1, "step order: {events:?}"),
            other => panic!("event {i} is not a step: {other:?}"),
        }
    }
    assert!(
        matches!(events[3], RuntimeEvent::Complete { steps: 3, .. }),
        "the last event completes 3 steps: {:?}",
        events[3]
    );
    ex.remove(&h)
        .await
        .unwrap_or_else(|e| panic!("remove failed: {e}"));
}

/// A program exiting with code 3 finishes as `Exited { code: 3 }`.
pub async fn failing_program_exits_non_zero(ex: &dyn Executor, fx: &ExecutorFixture) {
    let jd = scenario_dir(fx, 2);
    let h = launch(ex, fx, &jd, &["echo", "failing", "exit", "3"]).await;
    let end = finish(ex, &h).await;
    assert_eq!(
        reason(&end),
        Some(&ExitReason::Exited { code: 3 }),
        "a job exiting 3: {end:?}"
    );
    ex.remove(&h)
        .await
        .unwrap_or_else(|e| panic!("remove failed: {e}"));
}

/// A job sleeping for a minute is `Running`; `stop` with the fixture's
/// grace period ends it well before (grace plus 30 s at most), as
/// `Stopped`;
/// `wait` and `state` agree; a second `stop` succeeds.
pub async fn stop_ends_a_sleeping_job(ex: &dyn Executor, fx: &ExecutorFixture) {
    let jd = scenario_dir(fx, 3);
    let h = launch(ex, fx, &jd, &["sleep", "60000"]).await;
    let st = ex
        .state(&h)
        .await
        .unwrap_or_else(|e| panic!("state failed: {e}"));
    assert_eq!(st, ExecState::Running, "a sleeping job runs");
    let started = Instant::now();
    with_timeout("stop", ex.stop(&h, fx.stop_grace))
        .await
        .unwrap_or_else(|e| panic!("stop failed: {e}"));
    let end = finish(ex, &h).await;
    let took = started.elapsed();
    assert!(
        took < fx.stop_grace + Duration::from_secs(30),
        "stop took {took:?} (grace {:?})",
        fx.stop_grace
    );
    assert!(stopped(&end), "a stopped job finishes as Stopped: {end:?}");
    let now = ex
        .state(&h)
        .await
        .unwrap_or_else(|e| panic!("state failed: {e}"));
    assert_eq!(now, end, "state after wait is the final state");
    with_timeout("a second stop", ex.stop(&h, fx.stop_grace))
        .await
        .unwrap_or_else(|e| panic!("a second stop failed (stop is idempotent): {e}"));
    ex.remove(&h)
        .await
        .unwrap_or_else(|e| panic!("remove failed: {e}"));
}

/// `logs(h, 0)` returns the four lines the job printed, in order, with
/// `seq` 0 to 3; `logs(h, 2)` returns the last two, `logs(h, 4)` none.
pub async fn logs_in_order_and_since_skips(ex: &dyn Executor, fx: &ExecutorFixture) {
    let jd = scenario_dir(fx, 4);
    let h = launch(
        ex,
        fx,
        &jd,
        &[
            "echo", "first", "echo", "second", "echo", "third", "echo", "fourth",
        ],
    )
    .await;
    finish(ex, &h).await;
    let all = ex
        .logs(&h, 0)
        .await
        .unwrap_or_else(|e| panic!("logs failed: {e}"));
    let text: Vec<&str> = all.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(text, ["first", "second", "third", "fourth"], "{all:?}");
    let seqs: Vec<u64> = all.iter().map(|l| l.seq).collect();
    assert_eq!(seqs, [0, 1, 2, 3], "seq counts lines from 0: {all:?}");
    let tail = ex
        .logs(&h, 2)
        .await
        .unwrap_or_else(|e| panic!("logs since 2 failed: {e}"));
    assert_eq!(tail, all[2..], "since 2 skips the first two lines");
    let none = ex
        .logs(&h, 4)
        .await
        .unwrap_or_else(|e| panic!("logs since 4 failed: {e}"));
    assert!(none.is_empty(), "nothing after the last line: {none:?}");
    ex.remove(&h)
        .await
        .unwrap_or_else(|e| panic!("remove failed: {e}"));
}

/// Removing a finished job succeeds twice, and `list` no longer returns
/// it.
pub async fn remove_is_idempotent(ex: &dyn Executor, fx: &ExecutorFixture) {
    let jd = scenario_dir(fx, 5);
    let h = launch(ex, fx, &jd, &["echo", "done"]).await;
    finish(ex, &h).await;
    ex.remove(&h)
        .await
        .unwrap_or_else(|e| panic!("remove failed: {e}"));
    ex.remove(&h)
        .await
        .unwrap_or_else(|e| panic!("a second remove failed (remove is idempotent): {e}"));
    assert!(
        !listed(ex).await.contains(&h),
        "a removed job is not listed"
    );
}

/// `list` returns the handle of a running job, once; after stop and
/// remove it does not.
pub async fn list_contains_a_launched_handle(ex: &dyn Executor, fx: &ExecutorFixture) {
    let jd = scenario_dir(fx, 6);
    let h = launch(ex, fx, &jd, &["sleep", "60000"]).await;
    let all = listed(ex).await;
    assert_eq!(
        all.iter().filter(|x| **x == h).count(),
        1,
        "the launched handle is listed once: {all:?}"
    );
    stop_and_remove(ex, &h).await;
    assert!(
        !listed(ex).await.contains(&h),
        "a removed job is not listed"
    );
}

/// A second launch of a job id that is running is refused with
/// `AlreadyExists` or `Conflict`; the first job keeps running and is the
/// only one listed for that id.
pub async fn second_launch_is_refused(ex: &dyn Executor, fx: &ExecutorFixture) {
    let jd = scenario_dir(fx, 7);
    let h = launch(ex, fx, &jd, &["sleep", "60000"]).await;
    let e = ex
        .launch(launch_spec(&jd, fx.runtime.clone(), &["sleep", "60000"]))
        .await
        .expect_err("a second launch of a running job id should be refused");
    assert!(
        matches!(e.kind(), ErrorKind::AlreadyExists | ErrorKind::Conflict),
        "refused as AlreadyExists or Conflict, got {:?}: {e}",
        e.kind()
    );
    let st = ex
        .state(&h)
        .await
        .unwrap_or_else(|e| panic!("state failed: {e}"));
    assert_eq!(st, ExecState::Running, "the first job is untouched");
    let mine: Vec<_> = listed(ex)
        .await
        .into_iter()
        .filter(|x| x.job_id == jd.job)
        .collect();
    assert_eq!(mine, std::slice::from_ref(&h), "one job listed for the id");
    stop_and_remove(ex, &h).await;
}
