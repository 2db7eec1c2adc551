//! `artha-testrt`: a scriptable job for executor tests and benchmarks.
//!
//! Arguments are a script of commands run in order:
//!
//! | command | effect |
//! |---|---|
//! | `events N` | append N valid `step` events and a `complete` event to `$ARTHA_EVENTS` |
//! | `steps N` / `complete` | append N more `step` events / the `complete` event |
//! | `malformed` | append a line that is not a valid event |
//! | `echo TEXT` / `eecho TEXT` | print TEXT on stdout / stderr |
//! | `sleep MS` | sleep |
//! | `alloc MIB` | allocate and touch MIB mebibytes (to trigger an OOM kill) |
//! | `write PATH` | try to create PATH; prints `write PATH ok` or `write PATH denied` |
//! | `whoami` | prints `uid=N` from /proc/self/status |
//! | `caps` | prints `capeff=HEX` from /proc/self/status |
//! | `env NAME` | prints `NAME=value` or `NAME unset` |
//! | `spawn-sleeper MS` | starts a child copy of itself sleeping MS, prints `child=PID` |
//! | `exit CODE` | exits with CODE |
//! | `checkpoint PATH STEP` | append a `checkpoint` event naming PATH (relative to the checkpoint directory) |
//! | `symlink TARGET LINK` | create the symlink LINK -> TARGET (hostile-job tests) |
//! | `hardlink SRC DST` | create the hard link DST of SRC, printing `hardlink DST ok|denied` |
//! | `events-link TARGET` | replace the events file with a symlink to TARGET |
//! | `flood MIB` | append MIB mebibytes without a newline to the events file |
//! | `lines MIB` | append MIB mebibytes of valid `log` event lines to the events file |
//!
//! An argument `$NAME/rest` is expanded from the environment (`$ARTHA_CHECKPOINT_DIR/x`).
//! With no arguments the script comes from `$ARTHA_SCRIPT` (what the engine
//! makes of a spec's `hyper.extra.script`), split at whitespace; with neither,
//! it prints usage and exits 2. Static musl builds of this
//! binary go into a `FROM scratch` image (see `tests/lib/images.sh`).

use std::io::Write;
use std::process::ExitCode;

use artha_core::protocol::RuntimeEvent;
use artha_core::{Blake3Digest, StepRecord};

fn events_path() -> String {
    std::env::var("ARTHA_EVENTS").unwrap_or_else(|_| "/artha/events.jsonl".into())
}

fn append(line: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(events_path())?;
    f.write_all(line.as_bytes())?;
    f.write_all(b"\n")?;
    f.flush()
}

fn status_field(name: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with(name)).map(|l| {
                l[name.len()..]
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
        })
        .unwrap_or_default()
}

/// `$NAME/rest` → the value of NAME followed by `/rest`.
fn expand(arg: &str) -> String {
    match arg.strip_prefix('$') {
        Some(rest) => {
            let (name, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            format!("{}{tail}", std::env::var(name).unwrap_or_default())
        }
        None => arg.to_string(),
    }
}

fn complete(steps: u64, final_weights: Blake3Digest) -> Result<(), String> {
    let done = RuntimeEvent::Complete {
        steps,
        final_weights,
    };
    append(&serde_json::to_string(&done).map_err(|e| e.to_string())?)
        .map_err(|e| format!("complete: {e}"))
}

fn run(args: &[String]) -> Result<Option<u8>, String> {
    let args: Vec<String> = args.iter().map(|a| expand(a)).collect();
    // The step chain continues across `steps` commands.
    let (mut step, mut w) = (0u64, Blake3Digest::of(b"init"));
    let mut it = args.iter();
    let mut next = |what: &str| {
        it.next()
            .cloned()
            .ok_or_else(|| format!("{what}: missing argument"))
    };
    loop {
        let cmd = match next("command") {
            Ok(c) => c,
            Err(_) => return Ok(None),
        };
        match cmd.as_str() {
            "events" | "steps" => {
                let n: u64 = next(&cmd)?.parse().map_err(|e| format!("{cmd}: {e}"))?;
                for _ in 0..n {
                    step += 1;
                    w = Blake3Digest::of(w.as_bytes());
                    let rec = StepRecord {
                        step,
                        epoch: 0,
                        loss: 1.0 / step as f64,
                        grad_digest: Blake3Digest::of(&step.to_le_bytes()),
                        weight_digest: w,
                        batch_digest: Blake3Digest::of(&[step as u8]),
                    };
                    let line = serde_json::to_string(&RuntimeEvent::Step(rec))
                        .map_err(|e| e.to_string())?;
                    append(&line).map_err(|e| format!("{cmd}: {e}"))?;
                }
                if cmd == "events" {
                    complete(step, w)?;
                }
            }
            "complete" => complete(step, w)?,
            "malformed" => append("{\"event\":\"step\",\"step\":\"one\"}")
                .map_err(|e| format!("malformed: {e}"))?,
            "echo" => println!("{}", next("echo")?),
            "eecho" => eprintln!("{}", next("eecho")?),
            "sleep" => {
                let ms: u64 = next("sleep")?.parse().map_err(|e| format!("sleep: {e}"))?;
                std::thread::sleep(std::time::Duration::from_millis(ms));
            }
            "alloc" => {
                let mib: usize = next("alloc")?.parse().map_err(|e| format!("alloc: {e}"))?;
                let mut blocks = Vec::new();
                for i in 0..mib {
                    blocks.push(vec![(i % 251) as u8 + 1; 1 << 20]);
                }
                println!("allocated {} MiB", blocks.len());
            }
            "write" => {
                let p = next("write")?;
                match std::fs::write(&p, b"x") {
                    Ok(()) => println!("write {p} ok"),
                    Err(_) => println!("write {p} denied"),
                }
            }
            "whoami" => println!("uid={}", status_field("Uid:")),
            "caps" => println!("capeff={}", status_field("CapEff:")),
            "env" => {
                let k = next("env")?;
                match std::env::var(&k) {
                    Ok(v) => println!("{k}={v}"),
                    Err(_) => println!("{k} unset"),
                }
            }
            "spawn-sleeper" => {
                let ms = next("spawn-sleeper")?;
                let exe = std::env::current_exe().map_err(|e| e.to_string())?;
                let child = std::process::Command::new(exe)
                    .args(["sleep", &ms])
                    .spawn()
                    .map_err(|e| format!("spawn-sleeper: {e}"))?;
                println!("child={}", child.id());
            }
            "checkpoint" => {
                let path = next("checkpoint")?;
                let step: u64 = next("checkpoint")?
                    .parse()
                    .map_err(|e| format!("checkpoint: {e}"))?;
                let ev = RuntimeEvent::Checkpoint { path, step };
                append(&serde_json::to_string(&ev).map_err(|e| e.to_string())?)
                    .map_err(|e| format!("checkpoint: {e}"))?;
            }
            "symlink" => {
                let target = next("symlink")?;
                let link = next("symlink")?;
                let _ = std::fs::remove_file(&link);
                std::os::unix::fs::symlink(&target, &link)
                    .map_err(|e| format!("symlink {link}: {e}"))?;
            }
            "hardlink" => {
                let src = next("hardlink")?;
                let dst = next("hardlink")?;
                match std::fs::hard_link(&src, &dst) {
                    Ok(()) => println!("hardlink {dst} ok"),
                    Err(_) => println!("hardlink {dst} denied"),
                }
            }
            "events-link" => {
                let target = next("events-link")?;
                let p = events_path();
                let _ = std::fs::remove_file(&p);
                std::os::unix::fs::symlink(&target, &p).map_err(|e| format!("events-link: {e}"))?;
            }
            "flood" | "lines" => {
                let mib: usize = next(&cmd)?.parse().map_err(|e| format!("{cmd}: {e}"))?;
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(events_path())
                    .map_err(|e| format!("{cmd}: {e}"))?;
                let unit: Vec<u8> = if cmd == "flood" {
                    vec![b'x'; 1 << 20]
                } else {
                    let line = b"{\"event\":\"log\",\"message\":\"flood\"}\n";
                    line.iter()
                        .copied()
                        .cycle()
                        .take((1 << 20) / line.len() * line.len())
                        .collect()
                };
                for _ in 0..mib {
                    f.write_all(&unit).map_err(|e| format!("{cmd}: {e}"))?;
                }
            }
            "exit" => {
                let code: u8 = next("exit")?.parse().map_err(|e| format!("exit: {e}"))?;
                return Ok(Some(code));
            }
            other => return Err(format!("unknown command `{other}`")),
        }
        let _ = std::io::stdout().flush();
    }
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty()
        && let Ok(script) = std::env::var("ARTHA_SCRIPT")
    {
        args = script.split_whitespace().map(str::to_string).collect();
    }
    if args.is_empty() {
        eprintln!("usage: artha-testrt COMMAND [ARG] ... (see the crate docs)");
        return ExitCode::from(2);
    }
    match run(&args) {
        Ok(code) => ExitCode::from(code.unwrap_or(0)),
        Err(e) => {
            eprintln!("artha-testrt: {e}");
            ExitCode::from(2)
        }
    }
}
