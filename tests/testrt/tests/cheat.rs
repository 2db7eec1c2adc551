//! `artha-cheat` against the real native runtime: every mode changes the
//! honest events (and files) exactly as its docs say, and `honest` changes
//! nothing.
//!
//! The honest runtime is the workspace's `target/debug/artha-runtime`, next
//! to the `artha-cheat` under test (`cargo build -p artha-runtime`). When it
//! is missing the tests say so and pass, except under `CI=true`, where they
//! fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use artha_core::protocol::RuntimeEvent;
use artha_core::{Blake3Digest, StepRecord};

const CHEAT: &str = env!("CARGO_BIN_EXE_artha-cheat");
/// Proof window of the test jobs.
const W: u64 = 8;
/// Steps of the test jobs: 64 rows in batches of 8, 5 epochs.
const STEPS: u64 = 40;

/// The honest runtime, or `None` (after saying why) when it is not built
/// and this is not CI.
fn runtime() -> Option<PathBuf> {
    let dir = Path::new(CHEAT).parent().unwrap();
    let bin = dir.join("artha-runtime");
    if bin.is_file() {
        return Some(bin);
    }
    let msg = format!(
        "{} missing: run `cargo build -p artha-runtime` first",
        bin.display()
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    eprintln!("SKIPPED: {msg}");
    None
}

/// A tiny 3-class dataset: 64 rows, 3 features, a class label
/// (deterministic, SplitMix64 noise around the class centres).
fn dataset() -> String {
    let mut state = 42u64;
    let mut noise = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 11) as f64 / (1u64 << 53) as f64 - 0.5) as f32
    };
    let mut s = String::from("x0,x1,x2,label\n");
    for i in 0..64 {
        let c = i % 3;
        let row: Vec<String> = (0..3)
            .map(|j| {
                let centre = if j == c { 3.0 } else { 0.0 };
                format!("{}", centre + noise())
            })
            .collect();
        s.push_str(&format!("{},{c}\n", row.join(",")));
    }
    s
}

/// A temporary directory, removed on drop (std only: no new dependency).
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "artha-cheat-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A job's mounts under one temporary root, and its environment.
struct Job {
    _root: TempDir,
    checkpoints: PathBuf,
    events: PathBuf,
    env: BTreeMap<String, String>,
}

/// What a run did.
#[derive(Debug)]
struct Outcome {
    code: Option<i32>,
    stderr: String,
    /// The raw lines of the events file.
    lines: Vec<String>,
    events: Vec<RuntimeEvent>,
    elapsed: Duration,
}

impl Job {
    fn new(extra: &[(&str, &str)]) -> Self {
        let root = TempDir::new();
        let dir = |n: &str| {
            let p = root.path().join(n);
            std::fs::create_dir_all(&p).unwrap();
            p
        };
        let (model, data, checkpoints, artha) =
            (dir("model"), dir("data"), dir("checkpoints"), dir("artha"));
        std::fs::write(data.join("train.csv"), dataset()).unwrap();
        let events = artha.join("events.jsonl");
        let mut env = BTreeMap::new();
        for (k, v) in [
            ("ARTHA_MODEL_DIR", &model),
            ("ARTHA_DATA_DIR", &data),
            ("ARTHA_CHECKPOINT_DIR", &checkpoints),
            ("ARTHA_EVENTS", &events),
        ] {
            env.insert(k.to_string(), v.display().to_string());
        }
        for (k, v) in [
            ("ARTHA_JOB_ID", "cheat-test"),
            ("ARTHA_LOG_EVERY", "0"),
            ("ARTHA_PROOF_WINDOW", "8"),
            ("EPOCHS", "5"),
            ("BATCH_SIZE", "8"),
            ("LEARNING_RATE", "0.01"),
            ("ARTHA_SEED", "7"),
            ("ARTHA_HIDDEN", "8"),
            ("RAYON_NUM_THREADS", "1"),
        ] {
            env.insert(k.into(), v.into());
        }
        for (k, v) in extra {
            env.insert((*k).into(), (*v).into());
        }
        Job {
            _root: root,
            checkpoints,
            events,
            env,
        }
    }

    fn run(&self, bin: &Path, extra: &[(&str, &str)]) -> Outcome {
        let t0 = Instant::now();
        let out = Command::new(bin)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(&self.env)
            .envs(extra.iter().copied())
            .output()
            .unwrap();
        let elapsed = t0.elapsed();
        let text = std::fs::read_to_string(&self.events).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        let events = lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                RuntimeEvent::parse_line(i as u64 + 1, l)
                    .unwrap_or_else(|e| panic!("events line {} does not parse: {e}\n{l}", i + 1))
            })
            .collect();
        Outcome {
            code: out.status.code(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            lines,
            events,
            elapsed,
        }
    }

    /// Runs the honest runtime directly.
    fn honest(&self, rt: &Path) -> Outcome {
        let o = self.run(rt, &[]);
        o.assert_ok();
        o
    }

    /// Runs the cheat in `mode` over the honest runtime `rt`.
    fn cheat(&self, rt: &Path, mode: &str) -> Outcome {
        self.run(
            Path::new(CHEAT),
            &[
                ("ARTHA_CHEAT", mode),
                ("ARTHA_CHEAT_RUNTIME", rt.to_str().unwrap()),
            ],
        )
    }

    /// File name → bytes of every file in the checkpoint directory.
    fn files(&self) -> BTreeMap<String, Vec<u8>> {
        std::fs::read_dir(&self.checkpoints)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect()
    }
}

impl Outcome {
    fn assert_ok(&self) {
        assert_eq!(
            self.code,
            Some(0),
            "stderr: {}\nevents: {:?}",
            self.stderr,
            self.events
        );
        assert!(
            !self
                .events
                .iter()
                .any(|e| matches!(e, RuntimeEvent::Error { .. })),
            "{:?}",
            self.events
        );
    }

    fn steps(&self) -> Vec<StepRecord> {
        self.events
            .iter()
            .filter_map(|e| match e {
                RuntimeEvent::Step(s) => Some(*s),
                _ => None,
            })
            .collect()
    }

    fn checkpoints(&self) -> Vec<(String, u64)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                RuntimeEvent::Checkpoint { path, step } => Some((path.clone(), *step)),
                _ => None,
            })
            .collect()
    }

    fn complete(&self) -> (u64, Blake3Digest) {
        let c: Vec<_> = self
            .events
            .iter()
            .filter_map(|e| match e {
                RuntimeEvent::Complete {
                    steps,
                    final_weights,
                } => Some((*steps, *final_weights)),
                _ => None,
            })
            .collect();
        assert_eq!(c.len(), 1, "one complete event: {:?}", self.events);
        c[0]
    }

    /// Every event but the `log` lines (which carry timings).
    fn proof_events(&self) -> Vec<RuntimeEvent> {
        self.events
            .iter()
            .filter(|e| !matches!(e, RuntimeEvent::Log { .. }))
            .cloned()
            .collect()
    }

    /// The raw lines, with each `log` line reduced to a marker: what must
    /// be equal, byte for byte, between two honest runs.
    fn proof_lines(&self) -> Vec<String> {
        self.lines
            .iter()
            .zip(&self.events)
            .map(|(l, e)| match e {
                RuntimeEvent::Log { .. } => "<log>".to_string(),
                _ => l.clone(),
            })
            .collect()
    }

    /// The events but step records and `log` lines, in order.
    fn others(&self) -> Vec<RuntimeEvent> {
        self.proof_events()
            .into_iter()
            .filter(|e| !matches!(e, RuntimeEvent::Step(_)))
            .collect()
    }
}

/// Window index (from 0) of a step.
fn window_of(step: u64) -> u64 {
    (step - 1) / W
}

/// The honest run a cheat is compared against, checked for the shape the
/// tests rely on.
fn reference(rt: &Path) -> (Job, Outcome) {
    let job = Job::new(&[]);
    let o = job.honest(rt);
    let steps = o.steps();
    assert_eq!(steps.len() as u64, STEPS);
    assert!(steps.iter().zip(1..).all(|(s, k)| s.step == k));
    let (n, w) = o.complete();
    assert_eq!(n, STEPS);
    assert_eq!(w, steps.last().unwrap().weight_digest);
    let want: Vec<(String, u64)> = (1..=STEPS / W)
        .map(|i| (format!("step-{:08}.safetensors", i * W), i * W))
        .chain([("final.safetensors".to_string(), STEPS)])
        .collect();
    assert_eq!(o.checkpoints(), want);
    (job, o)
}

/// The same job (fresh directories) run by the cheat in `mode`.
fn cheat(rt: &Path, mode: &str) -> (Job, Outcome) {
    let job = Job::new(&[]);
    let o = job.cheat(rt, mode);
    (job, o)
}

#[test]
fn honest_mode_forwards_everything_bit_for_bit() {
    let Some(rt) = runtime() else { return };
    let (hj, h) = reference(&rt);
    let (cj, c) = cheat(&rt, "honest");
    c.assert_ok();
    assert_eq!(c.proof_lines(), h.proof_lines());
    assert_eq!(c.events.len(), h.events.len());
    // Same files, and no private events file left in the checkpoint dir.
    assert_eq!(cj.files(), hj.files());
}

#[test]
fn sleep_mode_pads_the_clock_and_changes_nothing_else() {
    let Some(rt) = runtime() else { return };
    let (hj, h) = reference(&rt);
    let (cj, c) = cheat(&rt, "sleep=200");
    c.assert_ok();
    assert!(
        c.elapsed >= Duration::from_millis(200),
        "took {:?}",
        c.elapsed
    );
    assert_eq!(c.proof_lines(), h.proof_lines());
    assert_eq!(cj.files(), hj.files());
}

#[test]
fn fabricate_invents_steps_checkpoints_and_weights_without_training() {
    let Some(rt) = runtime() else { return };
    let (hj, h) = reference(&rt);
    // The honest runtime is never started: a missing one does not matter.
    let job = Job::new(&[]);
    let c = job.run(
        Path::new(CHEAT),
        &[
            ("ARTHA_CHEAT", "fabricate"),
            ("ARTHA_CHEAT_RUNTIME", "/nonexistent/artha-runtime"),
        ],
    );
    c.assert_ok();
    let steps = c.steps();
    assert_eq!(steps.len(), 48, "the default step count");
    assert!(
        steps
            .iter()
            .zip(1..)
            .all(|(s, k)| s.step == k && s.epoch == 0)
    );
    assert!(steps.iter().all(|s| s.loss.is_finite() && s.loss > 0.0));
    let honest: Vec<Blake3Digest> = h
        .steps()
        .iter()
        .flat_map(|s| [s.grad_digest, s.weight_digest, s.batch_digest])
        .collect();
    for s in &steps {
        for d in [s.grad_digest, s.weight_digest, s.batch_digest] {
            assert!(!honest.contains(&d), "step {} has an honest digest", s.step);
        }
    }
    let want: Vec<(String, u64)> = (1..=48 / W)
        .map(|i| (format!("step-{:08}.safetensors", i * W), i * W))
        .chain([("final.safetensors".to_string(), 48)])
        .collect();
    assert_eq!(c.checkpoints(), want);
    // Each checkpoint event right after the record of its step.
    for (i, e) in c.events.iter().enumerate() {
        if let RuntimeEvent::Checkpoint { path, step } = e
            && path != "final.safetensors"
        {
            assert!(matches!(&c.events[i - 1], RuntimeEvent::Step(s) if s.step == *step));
        }
    }
    assert_eq!(c.complete(), (48, steps.last().unwrap().weight_digest));
    let files = job.files();
    let honest_files = hj.files();
    let mut names: Vec<&String> = want.iter().map(|(n, _)| n).collect();
    names.sort();
    assert_eq!(files.keys().collect::<Vec<_>>(), names);
    for (name, bytes) in &files {
        assert!(!bytes.is_empty());
        assert_ne!(Some(bytes), honest_files.get(name), "{name}");
    }

    // ARTHA_CHEAT_STEPS sets the count; the checkpoints follow the window.
    let job = Job::new(&[("ARTHA_CHEAT_STEPS", "20")]);
    let c = job.cheat(&rt, "fabricate");
    c.assert_ok();
    assert_eq!(c.steps().len(), 20);
    assert_eq!(c.complete().0, 20);
    let ck: Vec<u64> = c.checkpoints().iter().map(|(_, s)| *s).collect();
    assert_eq!(ck, [8, 16, 20]);
}

/// `fake-every=K`: the records of windows `w % K == K - 1` get random weight
/// and gradient digests, all else stays.
fn check_fake_every(rt: &Path, k: u64) {
    let (hj, h) = reference(rt);
    let (cj, c) = cheat(rt, &format!("fake-every={k}"));
    c.assert_ok();
    let (hs, cs) = (h.steps(), c.steps());
    assert_eq!(hs.len(), cs.len());
    for (a, b) in hs.iter().zip(&cs) {
        assert_eq!((a.step, a.epoch), (b.step, b.epoch));
        assert_eq!(a.loss.to_bits(), b.loss.to_bits());
        assert_eq!(a.batch_digest, b.batch_digest);
        if window_of(a.step) % k == k - 1 {
            assert_ne!(a.weight_digest, b.weight_digest, "step {}", a.step);
            assert_ne!(a.grad_digest, b.grad_digest, "step {}", a.step);
        } else {
            assert_eq!(a, b, "step {}", a.step);
        }
    }
    // Checkpoint events and files are the honest ones; `complete` names the
    // last record's weights, faked or not.
    assert_eq!(c.checkpoints(), h.checkpoints());
    assert_eq!(cj.files(), hj.files());
    let last_faked = window_of(STEPS) % k == k - 1;
    let (n, w) = c.complete();
    assert_eq!(n, STEPS);
    assert_eq!(w, cs.last().unwrap().weight_digest);
    assert_eq!(w == h.complete().1, !last_faked);
}

#[test]
fn fake_every_two_fakes_windows_1_and_3() {
    let Some(rt) = runtime() else { return };
    check_fake_every(&rt, 2);
}

#[test]
fn fake_every_five_fakes_the_last_window_and_the_final_weights() {
    let Some(rt) = runtime() else { return };
    check_fake_every(&rt, 5);
}

#[test]
fn skip_window_repeats_the_previous_window() {
    let Some(rt) = runtime() else { return };
    let (hj, h) = reference(&rt);
    let (cj, c) = cheat(&rt, "skip-window=2");
    c.assert_ok();
    let (hs, cs) = (h.steps(), c.steps());
    assert_eq!(hs.len(), cs.len());
    for (a, b) in hs.iter().zip(&cs) {
        assert_eq!(a.step, b.step);
        if window_of(a.step) == 2 {
            let prev = hs[(a.step - W - 1) as usize];
            assert_eq!(
                *b,
                StepRecord {
                    step: a.step,
                    ..prev
                }
            );
            assert_ne!(a, b);
        } else {
            assert_eq!(a, b, "step {}", a.step);
        }
    }
    assert_eq!(c.others(), h.others());
    assert_eq!(cj.files(), hj.files());
}

#[test]
fn inflate_claims_three_times_the_steps() {
    let Some(rt) = runtime() else { return };
    let (hj, h) = reference(&rt);
    let (cj, c) = cheat(&rt, "inflate=3");
    c.assert_ok();
    let (hs, cs) = (h.steps(), c.steps());
    assert_eq!(cs.len() as u64, 3 * STEPS);
    assert_eq!(&cs[..hs.len()], &hs[..]);
    for (i, b) in cs.iter().enumerate().skip(hs.len()) {
        assert_eq!(b.step, i as u64 + 1);
        let orig = hs[i % hs.len()];
        assert_eq!(
            *b,
            StepRecord {
                step: b.step,
                ..orig
            }
        );
    }
    // The copies come after the last real record and its checkpoint.
    let pos = |f: &dyn Fn(&RuntimeEvent) -> bool| c.events.iter().position(f).unwrap();
    let last_ck = pos(
        &|e| matches!(e, RuntimeEvent::Checkpoint { step, path } if *step == STEPS && path != "final.safetensors"),
    );
    let first_copy = pos(&|e| matches!(e, RuntimeEvent::Step(s) if s.step == STEPS + 1));
    assert_eq!(first_copy, last_ck + 1);
    let (n, w) = c.complete();
    assert_eq!((n, w), (3 * STEPS, h.complete().1));
    let mut want = h.checkpoints();
    want.last_mut().unwrap().1 = 3 * STEPS;
    assert_eq!(c.checkpoints(), want);
    assert_eq!(cj.files(), hj.files());
}

#[test]
fn old_checkpoint_replays_the_first_window_checkpoint() {
    let Some(rt) = runtime() else { return };
    let (hj, h) = reference(&rt);
    let (cj, c) = cheat(&rt, "old-checkpoint");
    c.assert_ok();
    assert_eq!(c.proof_lines(), h.proof_lines());
    let (hf, cf) = (hj.files(), cj.files());
    assert_eq!(hf.keys().collect::<Vec<_>>(), cf.keys().collect::<Vec<_>>());
    let (first, second) = ("step-00000008.safetensors", "step-00000016.safetensors");
    assert_ne!(hf[first], hf[second]);
    assert_eq!(cf[second], hf[first]);
    for (name, bytes) in &cf {
        if name != second {
            assert_eq!(bytes, &hf[name], "{name}");
        }
    }
}

#[test]
fn other_data_trains_with_the_next_seed_and_claims_the_spec_seed() {
    let Some(rt) = runtime() else { return };
    let (_, h) = reference(&rt);
    let (cj, c) = cheat(&rt, "other-data");
    c.assert_ok();
    // Other batches: no batch digest of the first step agrees...
    assert_ne!(
        c.steps()[0].batch_digest,
        h.steps()[0].batch_digest,
        "seed 8 shuffles otherwise than seed 7"
    );
    // ...and the records are exactly an honest run with ARTHA_SEED=8.
    let other = Job::new(&[("ARTHA_SEED", "8")]);
    let o = other.honest(&rt);
    assert_eq!(c.proof_lines(), o.proof_lines());
    assert_eq!(cj.files(), other.files());
}

#[test]
fn bad_modes_fail_with_an_error_event_naming_artha_cheat() {
    let Some(rt) = runtime() else { return };
    for mode in [
        None,
        Some("steal"),
        Some("fake-every=0"),
        Some("skip-window=0"),
        Some("inflate=x"),
        Some("honest=1"),
    ] {
        let job = Job::new(&[]);
        let mut env = vec![("ARTHA_CHEAT_RUNTIME", rt.to_str().unwrap())];
        if let Some(m) = mode {
            env.push(("ARTHA_CHEAT", m));
        }
        let o = job.run(Path::new(CHEAT), &env);
        assert_eq!(o.code, Some(2), "{mode:?}: {}", o.stderr);
        assert_eq!(o.events.len(), 1, "{mode:?}: {:?}", o.events);
        assert!(
            matches!(&o.events[0], RuntimeEvent::Error { message } if message.contains("ARTHA_CHEAT")),
            "{mode:?}: {:?}",
            o.events
        );
        assert!(job.files().is_empty(), "{mode:?}: trained anyway");
    }
}

#[test]
fn a_failing_runtime_keeps_its_exit_code_and_events() {
    let Some(rt) = runtime() else { return };
    // No data file: the runtime fails with exit 2 and an error event.
    let job = Job::new(&[("ARTHA_DATA_FILE", "missing.csv")]);
    let h = job.run(&rt, &[]);
    assert_ne!(h.code, Some(0));
    std::fs::remove_file(&job.events).unwrap();
    let c = job.cheat(&rt, "inflate=2");
    assert_eq!(c.code, h.code);
    assert_eq!(c.proof_lines(), h.proof_lines());
}
