//! `artha-cheat`: the runtime of a dishonest node, for the tests of
//! verifiable compute.
//!
//! It takes the same environment as the native runtime (`artha-runtime`,
//! see `runtimes/native/src/lib.rs`) and wraps it: it runs the honest binary
//! as a child with `ARTHA_EVENTS` pointed at a private file, waits for it,
//! rewrites the honest events as `$ARTHA_CHEAT` says and appends the result
//! to the real `$ARTHA_EVENTS` (all at once, when the child has exited). Its
//! exit code is the child's (128 + the signal if the child was killed).
//!
//! | `ARTHA_CHEAT` | what the node does |
//! |---|---|
//! | `honest` | forwards every event unchanged (the control) |
//! | `fabricate` | does not train: `$ARTHA_CHEAT_STEPS` (default 48) `step` events of epoch 0 with random losses and digests, a checkpoint of random bytes (`step-NNNNNNNN.safetensors`) with its `checkpoint` event every `$ARTHA_CHECKPOINT_EVERY` steps (default: `$ARTHA_PROOF_WINDOW`, 100), a random `final.safetensors` with its `checkpoint` event, and a `complete` event whose step count and final weights are those of its own last record |
//! | `fake-every=K` | trains; then in every K-th proof window (index `w`, from 0, with `w % K == K - 1`) each step record's `weight_digest` and `grad_digest` are random; when that includes the last step, `complete`'s final weights are the last (random) weight digest |
//! | `skip-window=W` | trains; then window `W`'s records (`W ≥ 1`) are copies of window `W - 1`'s with only the step numbers changed (a lazy node repeating work) |
//! | `inflate=N` | trains; then after the last real step record (and its checkpoint event) come copies of the real records, in order and cycling, with continuing step numbers, up to `N ×` the real count (`N ≥ 1`); `complete` (and the `final.safetensors` checkpoint event) claim the inflated step count, final weights unchanged |
//! | `old-checkpoint` | trains; then the checkpoint file of the end of the second window (step `2 × window`) is overwritten with the bytes of the one of the end of the first (step `window`); events unchanged |
//! | `other-data` | trains with `ARTHA_SEED` + 1 (1 when unset), so on other batches; events forwarded as they are (claiming the spec's seed) |
//! | `sleep=MS` | sleeps MS milliseconds, then behaves as `honest` (a node padding its clock) |
//!
//! Proof windows are `$ARTHA_PROOF_WINDOW` steps (default 100, as in the
//! native runtime): window `w` holds steps `w·W + 1 ..= (w + 1)·W`, by global
//! step number (so a resumed run keeps its windows).
//!
//! Other variables:
//!
//! - `ARTHA_CHEAT_RUNTIME`: the honest runtime; default `artha-runtime` next
//!   to this executable. Its arguments are this program's.
//! - `ARTHA_CHEAT_STEPS`: the step count of `fabricate` (default 48).
//! - `ARTHA_CHEAT_TMP`: where the private events file goes (a fresh
//!   directory in it, removed afterwards); default the system temporary
//!   directory, else the directory of `$ARTHA_EVENTS`, else the parent of
//!   the checkpoint directory — never the checkpoint directory, which the
//!   engine stores.
//!
//! A missing or unknown `ARTHA_CHEAT` (or a bad number in it, or another bad
//! variable of this program) gives an `error` event naming the variable and
//! exit code 2. When the honest runtime fails, its events are forwarded
//! unchanged (a cheat does not dress up a failure). When the run is too
//! short for the mode (no window `W`, no second checkpoint) the events and
//! files are left as they are and a warning goes to stderr. Lines of the
//! child that do not parse as events are forwarded verbatim; the rest are
//! parsed and written by `artha_core::protocol::RuntimeEvent`. Randomness
//! comes from `/dev/urandom` (a time-seeded xorshift when it cannot be
//! read), so two runs of a faking mode never agree.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use artha_core::protocol::RuntimeEvent;
use artha_core::{Blake3Digest, StepRecord};

/// The cheating strategies (see the crate docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Honest,
    Fabricate,
    FakeEvery(u64),
    SkipWindow(u64),
    Inflate(u64),
    OldCheckpoint,
    OtherData,
    Sleep(u64),
}

/// A failure of this program: the variable at fault and why.
#[derive(Debug)]
struct Fail {
    var: &'static str,
    message: String,
    code: u8,
}

impl Fail {
    fn bad(var: &'static str, message: impl Into<String>) -> Self {
        Fail {
            var,
            message: message.into(),
            code: 2,
        }
    }
}

const MODES: &str = "honest, fabricate, fake-every=K, skip-window=W, inflate=N, old-checkpoint, other-data, sleep=MS";

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn parse_mode(value: Option<&str>) -> Result<Mode, Fail> {
    let Some(value) = value else {
        return Err(Fail::bad(
            "ARTHA_CHEAT",
            format!("not set (one of: {MODES})"),
        ));
    };
    let value = value.trim();
    let num = |arg: &str, min: u64| -> Result<u64, Fail> {
        match arg.parse::<u64>() {
            Ok(n) if n >= min => Ok(n),
            _ => Err(Fail::bad(
                "ARTHA_CHEAT",
                format!("`{value}`: the number must be an integer ≥ {min}"),
            )),
        }
    };
    let (name, arg) = match value.split_once('=') {
        Some((n, a)) => (n, Some(a)),
        None => (value, None),
    };
    let mode = match (name, arg) {
        ("honest", None) => Mode::Honest,
        ("fabricate", None) => Mode::Fabricate,
        ("old-checkpoint", None) => Mode::OldCheckpoint,
        ("other-data", None) => Mode::OtherData,
        ("fake-every", Some(a)) => Mode::FakeEvery(num(a, 1)?),
        ("skip-window", Some(a)) => Mode::SkipWindow(num(a, 1)?),
        ("inflate", Some(a)) => Mode::Inflate(num(a, 1)?),
        ("sleep", Some(a)) => Mode::Sleep(num(a, 0)?),
        _ => {
            return Err(Fail::bad(
                "ARTHA_CHEAT",
                format!("`{value}` is not a mode (one of: {MODES})"),
            ));
        }
    };
    Ok(mode)
}

/// A positive integer variable, with a default.
fn positive(name: &'static str, default: u64) -> Result<u64, Fail> {
    match var(name) {
        None => Ok(default),
        Some(v) => match v.trim().parse::<u64>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(Fail::bad(name, format!("`{v}` is not a positive integer"))),
        },
    }
}

fn window() -> Result<u64, Fail> {
    positive("ARTHA_PROOF_WINDOW", 100)
}

fn events_path() -> PathBuf {
    var("ARTHA_EVENTS")
        .unwrap_or_else(|| artha_core::protocol::EVENTS_PATH.into())
        .into()
}

fn checkpoint_dir() -> PathBuf {
    var("ARTHA_CHECKPOINT_DIR")
        .unwrap_or_else(|| artha_core::protocol::CHECKPOINT_MOUNT.into())
        .into()
}

// ---------------------------------------------------------------- randomness

/// Random bytes: `/dev/urandom`, else a xorshift seeded from the clock.
struct Rng {
    urandom: Option<std::fs::File>,
    state: u64,
}

impl Rng {
    fn new() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Rng {
            urandom: std::fs::File::open("/dev/urandom").ok(),
            state: (nanos ^ (u64::from(std::process::id()) << 32)) | 1,
        }
    }

    fn fill(&mut self, buf: &mut [u8]) {
        if let Some(f) = self.urandom.as_mut()
            && f.read_exact(buf).is_ok()
        {
            return;
        }
        for b in buf.iter_mut() {
            // xorshift64*
            self.state ^= self.state >> 12;
            self.state ^= self.state << 25;
            self.state ^= self.state >> 27;
            *b = (self.state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8;
        }
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        self.fill(&mut v);
        v
    }

    fn digest(&mut self) -> Blake3Digest {
        let mut b = [0u8; 32];
        self.fill(&mut b);
        Blake3Digest::from_bytes(b)
    }

    /// A plausible loss in `[0.05, 2.5)`.
    fn loss(&mut self) -> f64 {
        let mut b = [0u8; 8];
        self.fill(&mut b);
        let unit = (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64;
        0.05 + 2.45 * unit
    }
}

// -------------------------------------------------------------------- events

/// One line of the honest runtime's events file.
#[derive(Debug, Clone)]
enum Line {
    Event(RuntimeEvent),
    /// A line that does not parse, forwarded verbatim.
    Raw(String),
}

fn read_lines(path: &Path) -> Vec<Line> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .enumerate()
        .map(|(i, l)| match RuntimeEvent::parse_line(i as u64 + 1, l) {
            Ok(ev) => Line::Event(ev),
            Err(_) => Line::Raw(l.to_string()),
        })
        .collect()
}

/// Appends `lines` to the real events file.
fn append(lines: &[Line]) -> Result<(), Fail> {
    let mut out = Vec::new();
    for line in lines {
        match line {
            Line::Event(ev) => serde_json::to_writer(&mut out, ev).map_err(|e| Fail {
                var: "ARTHA_EVENTS",
                message: format!("cannot encode an event: {e}"),
                code: 1,
            })?,
            Line::Raw(s) => out.extend_from_slice(s.as_bytes()),
        }
        out.push(b'\n');
    }
    let path = events_path();
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        f.write_all(&out)?;
        f.flush()
    };
    write().map_err(|e| Fail {
        var: "ARTHA_EVENTS",
        message: format!("cannot write {}: {e}", path.display()),
        code: 4,
    })
}

fn step_of(line: &Line) -> Option<&StepRecord> {
    match line {
        Line::Event(RuntimeEvent::Step(s)) => Some(s),
        _ => None,
    }
}

fn warn(msg: &str) {
    let _ = writeln!(std::io::stderr(), "artha-cheat: warning: {msg}");
}

/// The file name the native runtime gives the checkpoint after `step`
/// (`checkpoint::step_file` in runtimes/native).
fn step_file(step: u64) -> String {
    format!("step-{step:08}.safetensors")
}

const FINAL: &str = "final.safetensors";

// --------------------------------------------------------------------- modes

/// `fabricate`: events and files without any training.
fn fabricate(rng: &mut Rng) -> Result<u8, Fail> {
    let steps = positive("ARTHA_CHEAT_STEPS", 48)?;
    let window = window()?;
    let every = match var("ARTHA_CHECKPOINT_EVERY") {
        None => window,
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map_err(|_| Fail::bad("ARTHA_CHECKPOINT_EVERY", format!("`{v}` is not an integer")))?,
    };
    let dir = checkpoint_dir();
    let unwritable = |e: std::io::Error| Fail {
        var: "ARTHA_CHECKPOINT_DIR",
        message: format!("cannot write to {}: {e}", dir.display()),
        code: 4,
    };
    std::fs::create_dir_all(&dir).map_err(unwritable)?;
    let mut lines = Vec::new();
    let mut last = Blake3Digest::ZERO;
    for k in 1..=steps {
        let rec = StepRecord {
            step: k,
            epoch: 0,
            loss: rng.loss(),
            grad_digest: rng.digest(),
            weight_digest: rng.digest(),
            batch_digest: rng.digest(),
        };
        last = rec.weight_digest;
        lines.push(Line::Event(RuntimeEvent::Step(rec)));
        if every > 0 && k % every == 0 {
            let name = step_file(k);
            std::fs::write(dir.join(&name), rng.bytes(4096)).map_err(unwritable)?;
            lines.push(Line::Event(RuntimeEvent::Checkpoint {
                path: name,
                step: k,
            }));
        }
    }
    std::fs::write(dir.join(FINAL), rng.bytes(4096)).map_err(unwritable)?;
    lines.push(Line::Event(RuntimeEvent::Checkpoint {
        path: FINAL.into(),
        step: steps,
    }));
    lines.push(Line::Event(RuntimeEvent::Complete {
        steps,
        final_weights: last,
    }));
    append(&lines)?;
    Ok(0)
}

/// `fake-every=K`: random weight and gradient digests in every K-th window.
fn fake_every(lines: &mut [Line], k: u64, window: u64, rng: &mut Rng) {
    let faked = |step: u64| ((step - 1) / window) % k == k - 1;
    let mut last: Option<(u64, Blake3Digest)> = None;
    for line in lines.iter_mut() {
        if let Line::Event(RuntimeEvent::Step(s)) = line {
            if s.step > 0 && faked(s.step) {
                s.weight_digest = rng.digest();
                s.grad_digest = rng.digest();
            }
            last = Some((s.step, s.weight_digest));
        }
    }
    let Some((last_step, last_weights)) = last else {
        return;
    };
    if last_step > 0 && faked(last_step) {
        for line in lines.iter_mut() {
            if let Line::Event(RuntimeEvent::Complete { final_weights, .. }) = line {
                *final_weights = last_weights;
            }
        }
    }
}

/// `skip-window=W`: window W's records are window W-1's, renumbered.
fn skip_window(lines: &mut [Line], w: u64, window: u64) {
    let prev: Vec<StepRecord> = lines
        .iter()
        .filter_map(step_of)
        .filter(|s| s.step > (w - 1) * window && s.step <= w * window)
        .copied()
        .collect();
    let targets = lines
        .iter()
        .filter_map(step_of)
        .filter(|s| s.step > w * window && s.step <= (w + 1) * window)
        .count();
    if targets == 0 || prev.len() < window as usize {
        warn(&format!(
            "skip-window={w}: the run has no complete window {} and window {w}; events unchanged",
            w - 1
        ));
        return;
    }
    for line in lines.iter_mut() {
        if let Line::Event(RuntimeEvent::Step(s)) = line
            && s.step > w * window
            && s.step <= (w + 1) * window
        {
            let i = (s.step - w * window - 1) as usize;
            *s = StepRecord {
                step: s.step,
                ..prev[i]
            };
        }
    }
}

/// `inflate=N`: copies of the real records up to N× the count.
fn inflate(lines: &mut Vec<Line>, n: u64) {
    let real: Vec<StepRecord> = lines.iter().filter_map(step_of).copied().collect();
    let (Some(last), Some(pos)) = (
        real.last().copied(),
        lines.iter().rposition(|l| step_of(l).is_some()),
    ) else {
        warn("inflate: the run has no step records; events unchanged");
        return;
    };
    let extra = real.len() as u64 * (n - 1);
    // After the last record and the checkpoint taken at its step.
    let mut at = pos + 1;
    while let Some(Line::Event(RuntimeEvent::Checkpoint { path, step })) = lines.get(at) {
        if *step != last.step || path == FINAL {
            break;
        }
        at += 1;
    }
    let copies: Vec<Line> = (0..extra)
        .map(|i| {
            Line::Event(RuntimeEvent::Step(StepRecord {
                step: last.step + 1 + i,
                ..real[(i % real.len() as u64) as usize]
            }))
        })
        .collect();
    lines.splice(at..at, copies);
    for line in lines.iter_mut() {
        match line {
            Line::Event(RuntimeEvent::Complete { steps, .. }) => *steps += extra,
            Line::Event(RuntimeEvent::Checkpoint { path, step }) if path == FINAL => {
                *step += extra;
            }
            _ => {}
        }
    }
}

/// `old-checkpoint`: the second window's checkpoint gets the first's bytes.
fn old_checkpoint(lines: &[Line], window: u64) -> Result<(), Fail> {
    let named = |at: u64| {
        lines.iter().find_map(|l| match l {
            Line::Event(RuntimeEvent::Checkpoint { path, step })
                if *step == at && path != FINAL =>
            {
                Some(path.clone())
            }
            _ => None,
        })
    };
    let (Some(first), Some(second)) = (named(window), named(2 * window)) else {
        warn(&format!(
            "old-checkpoint: no checkpoints after steps {window} and {}; files unchanged",
            2 * window
        ));
        return Ok(());
    };
    let dir = checkpoint_dir();
    let io = |e: std::io::Error| Fail {
        var: "ARTHA_CHECKPOINT_DIR",
        message: format!("old-checkpoint: {e}"),
        code: 4,
    };
    let bytes = std::fs::read(dir.join(&first)).map_err(io)?;
    std::fs::write(dir.join(&second), bytes).map_err(io)?;
    Ok(())
}

// --------------------------------------------------------------- the child

/// A fresh private directory for the child's events, outside the
/// checkpoint directory.
fn private_dir() -> Result<PathBuf, Fail> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(t) = var("ARTHA_CHEAT_TMP") {
        candidates.push(t.into());
    } else {
        candidates.push(std::env::temp_dir());
        if let Some(p) = events_path().parent() {
            candidates.push(p.to_path_buf());
        }
        if let Some(p) = checkpoint_dir().parent() {
            candidates.push(p.to_path_buf());
        }
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let name = format!(".artha-cheat-{}-{nanos}", std::process::id());
    let ckpt = checkpoint_dir();
    for base in &candidates {
        let dir = base.join(&name);
        if dir.starts_with(&ckpt) {
            continue;
        }
        if std::fs::create_dir(&dir).is_ok() {
            return Ok(dir);
        }
    }
    Err(Fail {
        var: "ARTHA_CHEAT_TMP",
        message: format!("no writable place for the private events file (tried {candidates:?})"),
        code: 4,
    })
}

fn runtime_path() -> PathBuf {
    if let Some(p) = var("ARTHA_CHEAT_RUNTIME") {
        return p.into();
    }
    std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("artha-runtime")))
        .unwrap_or_else(|| "artha-runtime".into())
}

/// Runs the honest runtime; returns its exit code and events.
fn run_child(seed: Option<String>) -> Result<(u8, Vec<Line>), Fail> {
    let dir = private_dir()?;
    let events = dir.join("events.jsonl");
    let runtime = runtime_path();
    let mut cmd = Command::new(&runtime);
    cmd.args(std::env::args_os().skip(1))
        .env("ARTHA_EVENTS", &events)
        .env_remove("ARTHA_CHEAT")
        .env_remove("ARTHA_CHEAT_RUNTIME")
        .env_remove("ARTHA_CHEAT_STEPS")
        .env_remove("ARTHA_CHEAT_TMP");
    if let Some(seed) = seed {
        cmd.env("ARTHA_SEED", seed);
    }
    let status = cmd.status();
    let lines = read_lines(&events);
    let _ = std::fs::remove_dir_all(&dir);
    let status = status.map_err(|e| Fail {
        var: "ARTHA_CHEAT_RUNTIME",
        message: format!("cannot run the honest runtime {}: {e}", runtime.display()),
        code: 2,
    })?;
    let code = match status.code() {
        Some(c) => u8::try_from(c).unwrap_or(1),
        None => {
            use std::os::unix::process::ExitStatusExt;
            128u8.saturating_add(status.signal().unwrap_or(0) as u8)
        }
    };
    Ok((code, lines))
}

fn other_seed() -> Result<String, Fail> {
    match var("ARTHA_SEED") {
        None => Ok("1".into()),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map(|s| s.wrapping_add(1).to_string())
            .map_err(|_| Fail::bad("ARTHA_SEED", format!("`{v}` is not an integer"))),
    }
}

fn run() -> Result<u8, Fail> {
    let mode = parse_mode(var("ARTHA_CHEAT").as_deref())?;
    let mut rng = Rng::new();
    // Settings first, so that a bad one costs no training.
    let window = match mode {
        Mode::FakeEvery(_) | Mode::SkipWindow(_) | Mode::OldCheckpoint => window()?,
        _ => 0,
    };
    let seed = match mode {
        Mode::OtherData => Some(other_seed()?),
        _ => None,
    };
    match mode {
        Mode::Fabricate => return fabricate(&mut rng),
        Mode::Sleep(ms) => std::thread::sleep(Duration::from_millis(ms)),
        _ => {}
    }
    let (code, mut lines) = run_child(seed)?;
    let mut swapped = Ok(());
    if code == 0 {
        match mode {
            Mode::FakeEvery(k) => fake_every(&mut lines, k, window, &mut rng),
            Mode::SkipWindow(w) => skip_window(&mut lines, w, window),
            Mode::Inflate(n) => inflate(&mut lines, n),
            Mode::OldCheckpoint => swapped = old_checkpoint(&lines, window),
            Mode::Honest | Mode::OtherData | Mode::Sleep(_) | Mode::Fabricate => {}
        }
    }
    append(&lines)?;
    swapped?;
    Ok(code)
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            let message = format!("artha-cheat: {}: {}", f.var, f.message);
            let _ = writeln!(std::io::stderr(), "{message}");
            let _ = append(&[Line::Event(RuntimeEvent::Error { message })]);
            ExitCode::from(f.code)
        }
    }
}
