//! `arthai`: the Artha command-line tool.
//!
//! Thin over `artha-engine`: argument parsing, output formatting and exit
//! codes live here; behaviour lives in the engine.
//!
//! Exit codes: 0 success, 1 internal error, 2 invalid input (including bad
//! arguments), 3 not found, 4 conflict (e.g. the home is in use),
//! 5 unavailable (retry later), 6 insufficient funds (budget below the
//! estimate), 7 the job failed or was cancelled, 8 refused by policy
//! (credential forged, expired, untrusted, for another subject, or a
//! budget over its cap), 9 over a limit (rate limit, no node with room).
//! Anything else (corrupted data, a chain revert) is 1.

use std::path::PathBuf;
use std::process::ExitCode;

use artha_core::JobKind;
use artha_core::{Error, ErrorKind};
use clap::{Parser, Subcommand};

mod jobs;
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
    /// JSON-RPC endpoint of an EVM chain (e.g. anvil) instead of the embedded
    /// chain; the contracts are deployed there on first use.
    #[arg(long, global = true, env = "ARTHA_RPC_URL", value_name = "URL")]
    rpc_url: Option<String>,
    /// With --rpc-url: admin, operator and submitter private keys,
    /// comma-separated.
    #[arg(
        long,
        global = true,
        env = "ARTHA_RPC_KEYS",
        value_name = "K1,K2,K3",
        hide_env_values = true
    )]
    rpc_keys: Option<String>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The whole flow on this machine with nothing configured: create a
    /// home, generate a small real dataset, push and register it, register
    /// an initial model, train it on the native runtime, commit the proofs
    /// and settle on the embedded chain; prints the job with its artifacts
    /// and receipts.
    Quickstart,
    /// Submit a training job and follow it to its end.
    Train(jobs::JobArgs),
    /// Submit an inference job and follow it to its end.
    Infer(jobs::JobArgs),
    /// Show a job: phase, measured GPU time, artifacts, receipts.
    JobStatus {
        /// The job id.
        job_id: String,
        /// Drive the job (if unfinished) and wait for its end.
        #[arg(long)]
        wait: bool,
    },
    /// Print a job's output (stdout and stderr).
    JobLogs {
        /// The job id.
        job_id: String,
        /// Skip the first N lines.
        #[arg(long, default_value_t = 0)]
        since: u64,
    },
    /// List jobs, newest first.
    JobList,
    /// Cancel a job that has not finished running.
    JobCancel {
        /// The job id.
        job_id: String,
    },
    /// Show the proof manifest a job committed.
    Proofs {
        /// The job id.
        job_id: String,
    },
    /// Register a dataset: a path (pushed first) or an `artha://` URI.
    DatasetRegister {
        /// File, directory or `artha://` URI.
        source: String,
        /// Name.
        #[arg(long)]
        name: String,
        /// Comma-separated tags.
        #[arg(long, default_value = "")]
        tags: String,
    },
    /// Register a model: a path (pushed first) or an `artha://` URI.
    ModelRegister {
        /// Weights file, model directory or `artha://` URI.
        source: String,
        /// Name.
        #[arg(long)]
        name: String,
        /// Architecture, e.g. `mlp`.
        #[arg(long)]
        architecture: String,
        /// Version label.
        #[arg(long, default_value = "1")]
        version: String,
        /// The model it derives from (`model-…`).
        #[arg(long)]
        parent: Option<String>,
        /// The dataset it was trained on (`dataset-…`).
        #[arg(long)]
        dataset: Option<String>,
    },
    /// Settle every job whose challenge period has passed.
    Settle,
    /// The native runtime itself (what the engine runs for `mlp`/`logreg`
    /// jobs): `arthai runtime [train|infer]`, configured by the environment.
    #[command(hide = true, disable_help_flag = true)]
    Runtime {
        /// Arguments for the runtime.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
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
        ErrorKind::JobFailed | ErrorKind::Cancelled => 7,
        ErrorKind::PermissionDenied => 8,
        ErrorKind::ResourceExhausted => 9,
        _ => 1,
    }
}

fn main() -> ExitCode {
    // The runtime speaks its own protocol and exit codes (not the CLI's).
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("runtime") {
        return artha_runtime::cli::main(&argv[2..]);
    }
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
    let o = jobs::Opts {
        home: cli.home.clone(),
        rpc_url: cli.rpc_url.clone(),
        rpc_keys: cli.rpc_keys.clone(),
    };
    let o = &o;
    match cli.command {
        Command::StoragePush {
            path,
            replicas,
            months,
        } => storage::push(cli.home, cli.json, &path, replicas, months),
        Command::StorageGet { uri, dest } => storage::get(cli.home, cli.json, &uri, &dest),
        Command::StorageLs { uri } => storage::ls(cli.home, cli.json, &uri),
        Command::Quickstart => jobs::quickstart(o, cli.json),
        Command::Train(a) => jobs::submit(o, cli.json, JobKind::Train, &a),
        Command::Infer(a) => jobs::submit(o, cli.json, JobKind::Infer, &a),
        Command::JobStatus { job_id, wait } => jobs::status(o, cli.json, &job_id, wait),
        Command::JobLogs { job_id, since } => jobs::logs(o, cli.json, &job_id, since),
        Command::JobList => jobs::list(o, cli.json),
        Command::JobCancel { job_id } => jobs::cancel(o, cli.json, &job_id),
        Command::Proofs { job_id } => jobs::proofs(o, cli.json, &job_id),
        Command::DatasetRegister { source, name, tags } => {
            jobs::dataset_register(o, cli.json, &source, &name, &tags)
        }
        Command::ModelRegister {
            source,
            name,
            architecture,
            version,
            parent,
            dataset,
        } => jobs::model_register(
            o,
            cli.json,
            &source,
            &name,
            &architecture,
            &version,
            parent.as_deref(),
            dataset.as_deref(),
        ),
        Command::Settle => jobs::settle(o, cli.json),
        Command::Runtime { .. } => Err(Error::invalid(
            "arguments",
            "`runtime` must be the first argument (`arthai runtime [train|infer]`)",
        )),
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
