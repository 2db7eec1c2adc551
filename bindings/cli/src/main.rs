//! `arthai`: the Artha command-line tool.
//!
//! Thin over `artha-engine`: argument parsing, output formatting and exit
//! codes live here; behaviour lives in the engine.
//!
//! Exit codes: 0 success, 1 internal error, 2 invalid input (including bad
//! arguments), 3 not found, 4 conflict (e.g. the home is in use),
//! 5 unavailable (retry later), 6 insufficient funds, 7 other failures.

use std::path::PathBuf;
use std::process::ExitCode;

use artha_core::{Error, ErrorKind};
use artha_engine::{EngineHome, quickstart};
use clap::{Parser, Subcommand};

mod storage;

#[derive(Debug, Parser)]
#[command(
    name = "arthai",
    version,
    about = "Run AI jobs on GPU nodes, with proofs of the work and settlement on chain"
)]
struct Cli {
    /// Engine home (default: $ARTHA_HOME, else ~/.artha).
    #[arg(long, global = true, value_name = "DIR")]
    home: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Prepare the quickstart: create the home, generate a small real
    /// dataset, and print the validated training plan.
    Quickstart,
    /// Check a job spec file (JSON) and print every problem with its field.
    SpecCheck {
        /// The spec file.
        file: PathBuf,
    },
    /// Push a file or directory into the store and pin it; prints its
    /// `artha://` URI (a progress bar on a terminal).
    StoragePush {
        /// File or directory to push.
        path: PathBuf,
        /// Copies the storage deal keeps (1-64).
        #[arg(long, default_value_t = 3, value_name = "N")]
        replicas: u32,
        /// Duration of the storage deal in months (1-120).
        #[arg(long, default_value_t = 1, value_name = "N")]
        months: u32,
    },
    /// Write the file or tree an `artha://` URI names to DEST (must not exist).
    StorageGet {
        /// `artha://<cid>[/path]`.
        uri: String,
        /// Where to write it.
        dest: PathBuf,
    },
    /// Describe what an `artha://` URI names; list a directory.
    StorageLs {
        /// `artha://<cid>[/path]`.
        uri: String,
    },
}

fn exit_code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::Internal => 1,
        ErrorKind::InvalidInput => 2,
        ErrorKind::NotFound => 3,
        ErrorKind::Conflict | ErrorKind::AlreadyExists => 4,
        ErrorKind::Unavailable | ErrorKind::Timeout => 5,
        ErrorKind::InsufficientFunds => 6,
        _ => 7,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if json {
                let ctx: Vec<_> = e
                    .context()
                    .iter()
                    .map(|(k, v)| serde_json::json!({ *k: v }))
                    .collect();
                let body = serde_json::json!({
                    "error": { "kind": e.kind().as_str(), "message": e.message(), "context": ctx,
                               "retryable": e.is_retryable() }
                });
                eprintln!("{body}");
            } else {
                eprintln!("error: {e}");
            }
            ExitCode::from(exit_code(e.kind()))
        }
    }
}

fn run(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Command::StoragePush {
            path,
            replicas,
            months,
        } => storage::push(cli.home, cli.json, &path, replicas, months),
        Command::StorageGet { uri, dest } => storage::get(cli.home, cli.json, &uri, &dest),
        Command::StorageLs { uri } => storage::ls(cli.home, cli.json, &uri),
        Command::Quickstart => {
            let root = match cli.home {
                Some(h) => h,
                None => EngineHome::default_path()?,
            };
            let home = EngineHome::open(&root)?;
            let plan = quickstart::prepare(&home)?;
            if cli.json {
                let out = serde_json::json!({
                    "home": home.root(),
                    "dataset": { "path": plan.dataset_path, "cid": plan.dataset_cid },
                    "spec": plan.spec,
                    "estimate": plan.estimate,
                });
                println!("{out:#}");
            } else {
                println!("Artha quickstart");
                println!("  home:      {}", home.root().display());
                println!(
                    "  dataset:   {} ({})",
                    plan.dataset_path.display(),
                    plan.dataset_cid
                );
                println!(
                    "  job:       train native `mlp`, {} epochs, batch {}, lr {}, seed {}",
                    plan.spec.hyper.epochs,
                    plan.spec.hyper.batch_size,
                    plan.spec.hyper.learning_rate,
                    plan.spec.hyper.seed
                );
                println!(
                    "  estimate:  {} GPU-s → {} (budget {})",
                    plan.estimate.gpu_seconds, plan.estimate.cost, plan.spec.budget
                );
                println!("  plan:      push dataset → register → schedule → run → prove → settle");
                println!(
                    "  status:    spec validated; storage, execution and settlement are not built yet"
                );
            }
            Ok(())
        }
        Command::SpecCheck { file } => {
            let text = std::fs::read_to_string(&file).map_err(|e| {
                Error::new(ErrorKind::InvalidInput, "cannot read the spec file")
                    .with_context("file", file.display().to_string())
                    .with_source(e)
            })?;
            let spec: artha_core::JobSpec = serde_json::from_str(&text).map_err(|e| {
                Error::new(ErrorKind::InvalidInput, format!("malformed spec: {e}"))
                    .with_context("file", file.display().to_string())
            })?;
            spec.validate()
                .map_err(|v| Error::from(v).with_context("file", file.display().to_string()))?;
            if cli.json {
                println!("{}", serde_json::json!({ "ok": true, "file": file }));
            } else {
                println!("{}: ok", file.display());
            }
            Ok(())
        }
    }
}
