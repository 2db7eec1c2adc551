//! The events file: one [`RuntimeEvent`] per line (DESIGN §5).
//!
//! Lines are serialised by `artha_core`'s own types, so the engine parses
//! exactly what was written. Step lines are buffered and reach the file at
//! least every 200 ms (the engine tails the file; a crash loses only steps
//! after the last checkpoint, which a resume recomputes); every other event
//! is written through at once.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use artha_core::protocol::RuntimeEvent;
use artha_core::{Error, ErrorKind, Result};

/// Longest time a step line stays in the buffer.
const STEP_FLUSH: Duration = Duration::from_millis(200);

/// Appends events to a file (or nowhere, for benchmarks).
#[derive(Debug)]
pub struct EventSink {
    out: Option<BufWriter<File>>,
    path: PathBuf,
    last_flush: Instant,
    line: Vec<u8>,
}

fn io(path: &Path, what: &str) -> impl Fn(std::io::Error) -> Error {
    let path = path.display().to_string();
    let what = what.to_string();
    move |e| {
        Error::new(
            ErrorKind::Internal,
            format!("cannot {what} the events file"),
        )
        .with_context("path", path.clone())
        .with_source(e)
    }
}

impl EventSink {
    /// Appends to `path` (created if missing).
    pub fn open(path: &Path) -> Result<Self> {
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io(path, "open"))?;
        Ok(EventSink {
            out: Some(BufWriter::with_capacity(64 * 1024, f)),
            path: path.to_path_buf(),
            last_flush: Instant::now(),
            line: Vec::with_capacity(512),
        })
    }

    /// A sink that drops everything.
    pub fn disabled() -> Self {
        EventSink {
            out: None,
            path: PathBuf::new(),
            last_flush: Instant::now(),
            line: Vec::new(),
        }
    }

    /// Whether events are written anywhere.
    pub fn is_enabled(&self) -> bool {
        self.out.is_some()
    }

    /// Writes one event line.
    pub fn emit(&mut self, ev: &RuntimeEvent) -> Result<()> {
        let Some(out) = self.out.as_mut() else {
            return Ok(());
        };
        self.line.clear();
        serde_json::to_writer(&mut self.line, ev).map_err(|e| {
            Error::new(ErrorKind::Internal, "cannot encode an event").with_source(e)
        })?;
        self.line.push(b'\n');
        out.write_all(&self.line).map_err(io(&self.path, "write"))?;
        let urgent = !matches!(ev, RuntimeEvent::Step(_));
        if urgent || self.last_flush.elapsed() >= STEP_FLUSH {
            self.flush()?;
        }
        Ok(())
    }

    /// A `log` event.
    pub fn log(&mut self, message: impl Into<String>) -> Result<()> {
        self.emit(&RuntimeEvent::Log {
            message: message.into(),
        })
    }

    /// Pushes buffered lines to the file.
    pub fn flush(&mut self) -> Result<()> {
        if let Some(out) = self.out.as_mut() {
            out.flush().map_err(io(&self.path, "write"))?;
        }
        self.last_flush = Instant::now();
        Ok(())
    }
}

impl Drop for EventSink {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_back_as_events() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("events.jsonl");
        {
            let mut s = EventSink::open(&p).unwrap();
            s.log("hello").unwrap();
            s.emit(&RuntimeEvent::Error {
                message: "bad \"input\"\n".into(),
            })
            .unwrap();
        }
        let text = std::fs::read_to_string(&p).unwrap();
        let evs: Vec<RuntimeEvent> = text
            .lines()
            .enumerate()
            .map(|(i, l)| RuntimeEvent::parse_line(i as u64 + 1, l).unwrap())
            .collect();
        assert_eq!(evs.len(), 2);
        assert!(
            matches!(&evs[1], RuntimeEvent::Error { message } if message.contains("\"input\""))
        );
        assert!(EventSink::open(&dir.path().join("no/such/dir/e.jsonl")).is_err());
        let mut off = EventSink::disabled();
        assert!(!off.is_enabled());
        off.log("dropped").unwrap();
    }
}
