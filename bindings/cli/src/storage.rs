//! `storage-push`, `storage-get`, `storage-ls`: argument handling and output
//! over `artha_engine::store` (all behaviour is in the engine).

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;

use artha_core::{ArthaUri, Error, ErrorKind};
use artha_engine::EngineHome;
use artha_engine::store::{Deal, EntryKind, LayoutReport, Progress, PushOptions};

use crate::jobs::Opts;

use crate::out::{errln, outln};

/// A terminal progress bar: bytes, rate, ETA.
struct Bar(indicatif::ProgressBar);

impl Progress for Bar {
    fn start(&self, total_bytes: u64) {
        self.0.set_length(total_bytes);
        self.0.reset_eta();
    }
    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            Error::new(ErrorKind::Internal, "cannot start the async runtime").with_source(e)
        })
}

/// The daemon serving the home, when one does (its store is then reached
/// through it: one engine holds a home).
fn daemon(o: &Opts) -> Result<Option<artha_engine::remote::RemoteEngine>, Error> {
    let root = o.root()?;
    let d = runtime()?.block_on(artha_engine::remote::discover(&root))?;
    if let (Some(r), Some(_)) = (&d, &o.store) {
        return Err(Error::new(
            ErrorKind::Conflict,
            format!(
                "this home is served by `arthai serve` at {}, which has its own store; drop --store",
                r.url()
            ),
        )
        .with_context("option", "--store"));
    }
    Ok(d)
}

/// The home's store, as its configuration (or `--store`) names it.
fn open(o: &Opts) -> Result<((), artha_engine::engine::EngineStore), Error> {
    let root = match &o.home {
        Some(h) => h.clone(),
        None => EngineHome::default_path()?,
    };
    let svdb = runtime()?.block_on(artha_engine::engine::open_store(&root, o.store.as_deref()))?;
    Ok(((), svdb))
}

fn parse_uri(text: &str) -> Result<ArthaUri, Error> {
    text.parse()
        .map_err(|e: Error| e.with_context("argument", "URI"))
}

/// Bytes for people: `1.5 GiB`.
fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

pub(crate) fn print_json(v: &impl serde::Serialize) -> Result<(), Error> {
    let text = serde_json::to_string_pretty(v)
        .map_err(|e| Error::new(ErrorKind::Internal, "cannot encode JSON").with_source(e))?;
    outln!("{text}")?;
    Ok(())
}

/// `arthai storage-push PATH [--replicas N] [--months N]`.
pub(crate) fn push(
    home: &Opts,
    json: bool,
    path: &Path,
    replicas: u32,
    months: u32,
) -> Result<(), Error> {
    let deal = Deal {
        replicas,
        months,
        ..Deal::default()
    };
    // Bad terms fail before anything is read or written.
    deal.validate()?;
    if let Some(r) = daemon(home)? {
        let report = runtime()?
            .block_on(r.push_pinned(path, Some(replicas), Some(months)))
            .map_err(|e| crate::input::path_error(e, "path", path, false))?;
        return print_push(&report, json, replicas, months);
    }
    let (_home, svdb) = open(home)?;
    let bar = (!json && std::io::stderr().is_terminal()).then(|| {
        let pb = indicatif::ProgressBar::new(0);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] [{wide_bar}] {binary_bytes}/{binary_total_bytes} \
                 {binary_bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Arc::new(Bar(pb))
    });
    let opts = PushOptions {
        pin: Some(deal),
        progress: bar.clone().map(|b| b as Arc<dyn Progress>),
    };
    let report = runtime()?.block_on(svdb.push_path(path, &opts));
    if let Some(b) = &bar {
        b.0.finish_and_clear();
    }
    let report = report.map_err(|e| crate::input::path_error(e, "path", path, false))?;
    print_push(&report, json, replicas, months)
}

fn print_push(
    report: &artha_engine::store::PushReport,
    json: bool,
    replicas: u32,
    months: u32,
) -> Result<(), Error> {
    if json {
        return print_json(report);
    }
    outln!("{}", report.uri)?;
    if std::io::stderr().is_terminal() {
        errln!(
            "pushed {} ({} files, {} chunks); {} new; pinned: {} replicas for {} months",
            human(report.size),
            report.files,
            report.chunks,
            human(report.bytes_written),
            replicas,
            months
        )?;
    }
    Ok(())
}

/// `arthai storage-get URI DEST`.
pub(crate) fn get(home: &Opts, json: bool, uri: &str, dest: &Path) -> Result<(), Error> {
    let uri = parse_uri(uri)?;
    let r: LayoutReport = match daemon(home)? {
        Some(d) => runtime()?.block_on(d.get_to(&uri, dest))?,
        None => {
            let (_home, svdb) = open(home)?;
            runtime()?.block_on(svdb.get(&uri, dest))?
        }
    };
    if json {
        return print_json(&r);
    }
    outln!(
        "{}: {} files, {}",
        r.path.display(),
        r.files,
        human(r.bytes)
    )?;
    Ok(())
}

/// `arthai storage-ls URI`.
pub(crate) fn ls(home: &Opts, json: bool, uri: &str) -> Result<(), Error> {
    let uri = parse_uri(uri)?;
    if let Some(d) = daemon(home)? {
        // The daemon's listing, as JSON (the same fields as below).
        let l = runtime()?.block_on(d.ls(&uri))?;
        return print_json(&l);
    }
    let (_home, svdb) = open(home)?;
    let l = runtime()?.block_on(svdb.ls(&uri))?;
    if json {
        return print_json(&l);
    }
    match l.kind {
        EntryKind::Dir => {
            for e in &l.entries {
                let mut line = format!(
                    "{:<7} {:o} {:>12} {}",
                    e.kind().as_str(),
                    e.mode(),
                    e.size,
                    e.name
                );
                if let artha_engine::store::Node::Symlink { target } = &e.node {
                    line.push_str(&format!(" -> {target}"));
                }
                outln!("{line}")?;
            }
        }
        EntryKind::File => outln!(
            "file    {:o} {:>12} {}",
            if l.executable { 0o755 } else { 0o644 },
            l.size,
            l.uri
        )?,
        EntryKind::Symlink => outln!("symlink {} -> {}", l.uri, l.target.as_deref().unwrap_or(""))?,
    }
    Ok(())
}
