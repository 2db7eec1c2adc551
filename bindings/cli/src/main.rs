//! `arthai`: the Artha command-line tool.
//!
//! Thin over `artha-engine`: argument parsing, output formatting and exit
//! codes live here; behaviour lives in the engine.
//!
//! - Exit codes: one table, in [`exit`] (and at the end of `arthai --help`):
//!   0 success, 1 internal error, 2 invalid input (including bad arguments
//!   and input over its size limit), 3 not found, 4 conflict (e.g. the home
//!   is in use), 5 unavailable (retry later), 6 insufficient funds (budget
//!   below the estimate or above the submitter's balance), 7 the job failed
//!   or was cancelled, 8 refused by policy (credential forged, expired,
//!   untrusted, for another subject, or a budget over its cap), 9 over a
//!   limit (disk full, rate limit, no node with room), 130 Ctrl-C while
//!   following a job (the job goes on), 141 the output was closed by its
//!   reader (quiet, as after `SIGPIPE`). Anything else
//!   (corrupted data, a chain revert) is 1.
//! - Input limits (arguments, files, `--home`): [`input`].
//! - Output (a closed pipe, redaction of RPC credentials): [`out`].

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use artha_core::Error;
use artha_core::JobKind;
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

mod exit;
mod input;
mod jobs;
mod out;
mod serve;
mod storage;

use out::{errln, outln};

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
    #[arg(
        long,
        global = true,
        env = "ARTHA_RPC_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    rpc_url: Option<String>,
    /// With --rpc-url: one private key per party, `role=0x…` entries
    /// separated by commas (roles `scheduler`, `worker`, `submitter`,
    /// `verifier`, and optionally `admin`, which deploys the contracts and
    /// certifies this node). Visible to every user of this machine (`ps`),
    /// so `arthai` warns: prefer --rpc-keys-file or $ARTHA_RPC_KEYS.
    #[arg(long, global = true, value_name = "ROLE=KEY,...")]
    rpc_keys: Option<String>,
    /// With --rpc-url: a file of `role=0x…` lines, one per party (as for
    /// --rpc-keys; `#` starts a comment line). It must be a regular file of
    /// at most 4 KiB, not readable or writable by group or others
    /// (`chmod 600`). Without either flag the keys come from
    /// $ARTHA_RPC_KEYS.
    #[arg(long, global = true, env = "ARTHA_RPC_KEYS_FILE", value_name = "FILE")]
    rpc_keys_file: Option<PathBuf>,
    /// The store: `local` (the home's) or `s3://bucket[/prefix]`, with the
    /// endpoint from `artha.toml` or $ARTHA_S3_ENDPOINT and credentials from
    /// $AWS_ACCESS_KEY_ID / $AWS_SECRET_ACCESS_KEY (default: `artha.toml`'s
    /// `store.url`, $ARTHA_STORE, else `local`).
    #[arg(long, global = true, value_name = "URL")]
    store: Option<String>,
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
    Quickstart {
        /// Train the native runtime's llama language model (2 layers,
        /// char tokens) on a generated text instead of the MLP.
        #[arg(long)]
        lm: bool,
    },
    /// Submit a training job and follow it to its end.
    #[command(
        after_help = "Example (the reference's flags):\n  arthai train --model model-… --data dataset-… --epochs 3 --batch 64 --lr 0.001 --budget 1000"
    )]
    Train(jobs::JobArgs),
    /// Submit an inference job and follow it to its end.
    Infer(jobs::JobArgs),
    /// Show a job: status, progress, times, node and GPUs, measured GPU
    /// time, artifacts and receipts (`--json`: a superset of the
    /// reference's schema).
    #[command(
        after_help = "Examples:\n  arthai job-status job-… --json | jq .receipts\n  arthai job-status job-… --wait"
    )]
    JobStatus {
        /// The job id.
        job_id: String,
        /// Drive the job (if unfinished) and wait for its end.
        #[arg(long)]
        wait: bool,
    },
    /// Print a job's output (stdout and stderr); `--follow` streams it
    /// until the job ends.
    JobLogs {
        /// The job id.
        job_id: String,
        /// Skip the first N lines.
        #[arg(long, default_value_t = 0)]
        since: u64,
        /// Keep printing lines as they come until the job ends.
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// List jobs, newest first.
    JobList,
    /// Cancel a job that has not finished running.
    JobCancel {
        /// The job id.
        job_id: String,
    },
    /// Start a job submitted with `--hold`.
    JobRelease {
        /// The job id.
        job_id: String,
    },
    /// Show the proof manifest a job committed.
    Proofs {
        /// The job id.
        job_id: String,
    },
    /// Audit a committed job by deterministic replay: the commitment and
    /// terms come from the chain; the manifest, spec, step log and
    /// checkpoints from the store by the CIDs the chain holds; windows are
    /// drawn from the chain's audit seed (a block hash after the commit)
    /// and replayed with this machine's own runtime. Exits 0 (valid), 10
    /// (fraud) or 11 (unverifiable). `--follow` is the verifier mode: it
    /// audits every job of the home once it is committed, one line each,
    /// until Ctrl-C (exit 10 if it found fraud).
    #[command(
        after_help = "Examples:\n  arthai verify job-…                 # 8 windows drawn from the chain's seed\n  arthai verify job-… --all --json | jq .audit.verdict\n  arthai verify job-… --challenge     # on fraud: bonded challenge, then the jury\n  arthai verify --follow --sample 44 --challenge --json   # the verifier mode"
    )]
    Verify {
        /// The job id (or `--follow`).
        #[arg(required_unless_present = "follow")]
        job_id: Option<String>,
        /// Audit every job of the home as it is committed, until Ctrl-C.
        #[arg(long, conflicts_with = "job_id")]
        follow: bool,
        /// With `--follow`: seconds between looks at the job list.
        #[arg(long, default_value_t = 2, requires = "follow", value_parser = clap::value_parser!(u64).range(1..=3600))]
        every: u64,
        /// Windows to draw from the audit seed (default 8).
        #[arg(long, conflicts_with_all = ["all", "window"])]
        sample: Option<u64>,
        /// Replay every window.
        #[arg(long, conflicts_with = "window")]
        all: bool,
        /// Replay this window (0-based; repeat for more).
        #[arg(long)]
        window: Vec<u64>,
        /// On fraud: post a bonded challenge with the evidence and run this
        /// engine's jurors (a development chain's).
        #[arg(long)]
        challenge: bool,
    },
    /// Register a dataset: a path (pushed first) or an `artha://` URI;
    /// prints its id.
    #[command(
        after_help = "Example:\n  arthai dataset-register artha://b3:… --license artha://b3:… --tags \"nlp,english,gpt\""
    )]
    DatasetRegister {
        /// File, directory or `artha://` URI.
        source: String,
        /// Name (default: the file or directory name).
        #[arg(long)]
        name: Option<String>,
        /// Comma-separated tags.
        #[arg(long, default_value = "")]
        tags: String,
        /// The licence text: an `artha://` URI or a file (pushed); its
        /// content id is recorded on chain.
        #[arg(long, visible_alias = "licence", value_name = "URI|PATH")]
        license: Option<String>,
    },
    /// Register a model: a path (pushed first) or an `artha://` URI;
    /// prints its id.
    #[command(
        after_help = "Example:\n  arthai model-register artha://b3:… --arch mlp --dataset dataset-… --code-hash 0x… --version v1.0"
    )]
    ModelRegister {
        /// Weights file, model directory or `artha://` URI.
        source: String,
        /// Name (default: the file or directory name).
        #[arg(long)]
        name: Option<String>,
        /// Architecture, e.g. `mlp`.
        #[arg(long, visible_alias = "arch")]
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
        /// keccak256 of the code that produces the model (`0x` + 64 hex
        /// digits), recorded on chain.
        #[arg(long, value_name = "0x…")]
        code_hash: Option<String>,
    },
    /// List registered datasets, newest first.
    DatasetList,
    /// List registered models, newest first.
    ModelList,
    /// Show a model and its ancestors (parents), nearest first.
    ModelLineage {
        /// The model id.
        model_id: String,
    },
    /// List the nodes this engine knows, with their standing on chain.
    NodeList,
    /// Settle every job whose challenge period has passed (`--when`: list
    /// what is waiting and when it settles, settling nothing).
    Settle {
        /// Show what is waiting to settle and when, without settling.
        #[arg(long)]
        when: bool,
    },
    /// Development chains: move the chain's clock.
    #[command(subcommand)]
    Dev(DevCommand),
    /// Serve this home's engine over HTTP (the REST API) until Ctrl-C or
    /// SIGTERM; every other arthai command on the home then talks to it.
    #[command(
        after_help = "Examples:\n  arthai serve &                      # loopback :8090, token in <home>/serve.token\n  arthai train --data dataset-… --model model-… --detach   # from any shell\n  curl -H \"Authorization: Bearer $(cat ~/.artha/serve.token)\" http://127.0.0.1:8090/jobs"
    )]
    Serve(serve::ServeArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish,
    /// powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
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

#[derive(Debug, Subcommand)]
enum DevCommand {
    /// Move the development chain's clock forward by SECS seconds (e.g.
    /// past the challenge period, to see settlement without waiting).
    Advance {
        /// Seconds.
        secs: u64,
    },
}

/// Prints `e` on stderr (as JSON with `--json`), with credentials
/// redacted, and turns it into the exit code of [`exit::EXIT_CODES`]; a
/// closed output ends quietly with [`exit::BROKEN_PIPE`].
fn report(e: &Error, json: bool) -> ExitCode {
    if out::closed() {
        return ExitCode::from(exit::BROKEN_PIPE);
    }
    // Ctrl-C while following: what to do next is already printed; 130 as
    // after SIGINT in a shell.
    if e.context_value("signal") == Some("SIGINT") {
        return ExitCode::from(exit::INTERRUPTED);
    }
    if json {
        let ctx: Vec<_> = e
            .context()
            .iter()
            .map(|(k, v)| serde_json::json!({ *k: out::redact(v) }))
            .collect();
        let body = serde_json::json!({
            "error": { "kind": e.kind().as_str(), "message": out::redact(e.message()),
                       "context": ctx, "retryable": e.is_retryable() }
        });
        let _ = errln!("{body}");
    } else {
        let _ = errln!("error: {e}");
    }
    if out::closed() {
        return ExitCode::from(exit::BROKEN_PIPE);
    }
    ExitCode::from(exit::exit_code(e.kind()))
}

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    // The runtime speaks its own protocol and exit codes (not the CLI's).
    if argv.get(1).is_some_and(|a| a == "runtime") {
        let args: Vec<String> = argv[2..]
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        return artha_runtime::cli::main(&args);
    }
    let json = argv.iter().any(|a| a == "--json");
    if let Err(e) = input::check_raw_args(&argv) {
        return report(&e, json);
    }
    let matches = Cli::command()
        .after_long_help(exit::help())
        .get_matches_from(&argv);
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    if let Some(url) = &cli.rpc_url {
        out::set_rpc_url(url);
    }
    let json = cli.json;
    let keys_file_on_command_line =
        matches.value_source("rpc_keys_file") == Some(ValueSource::CommandLine);
    match run(cli, keys_file_on_command_line) {
        Ok(()) => ExitCode::from(exit::success_code()),
        Err(e) => report(&e, json),
    }
}

/// The RPC keys: `--rpc-keys` (warned about: the process list shows it),
/// else `--rpc-keys-file`/`$ARTHA_RPC_KEYS_FILE`, else `$ARTHA_RPC_KEYS`.
fn rpc_keys(cli: &Cli, file_on_command_line: bool) -> Result<Option<String>, Error> {
    if let Some(keys) = &cli.rpc_keys {
        if file_on_command_line {
            return Err(Error::invalid(
                "--rpc-keys",
                "give the keys with --rpc-keys or --rpc-keys-file, not both",
            ));
        }
        errln!(
            "warning: --rpc-keys on the command line is visible to other users of this machine \
             (ps, /proc); put the keys in a file for --rpc-keys-file (mode 0600) or in $ARTHA_RPC_KEYS"
        )?;
        return Ok(Some(keys.clone()));
    }
    if let Some(file) = &cli.rpc_keys_file {
        return input::read_keys_file(file).map(Some);
    }
    Ok(std::env::var("ARTHA_RPC_KEYS").ok())
}

/// Length limits of every argument (see [`input`]).
fn check_args(cli: &Cli) -> Result<(), Error> {
    use input::{MAX_NAME_BYTES as NAME, MAX_PATH_BYTES as LONG, MAX_VALUE_BYTES as VALUE};
    use input::{check_len, check_path};
    if let Some(h) = &cli.home {
        check_path("--home", h)?;
    }
    if let Some(u) = &cli.rpc_url {
        check_len("--rpc-url", u, LONG)?;
    }
    if let Some(k) = &cli.rpc_keys {
        check_len("--rpc-keys", k, LONG)?;
    }
    if let Some(f) = &cli.rpc_keys_file {
        check_path("--rpc-keys-file", f)?;
    }
    if let Some(s) = &cli.store {
        check_len("--store", s, LONG)?;
        s.parse::<artha_engine::config::StoreUrl>()
            .map_err(|e| Error::invalid("--store", e.message().to_string()))?;
    }
    match &cli.command {
        Command::Train(a) | Command::Infer(a) => a.check()?,
        Command::JobStatus { job_id, .. }
        | Command::JobLogs { job_id, .. }
        | Command::JobCancel { job_id }
        | Command::JobRelease { job_id }
        | Command::Proofs { job_id } => check_len("job_id", job_id, LONG)?,
        Command::Verify { job_id, .. } => {
            check_len("job_id", job_id.as_deref().unwrap_or_default(), LONG)?;
        }
        Command::ModelLineage { model_id } => check_len("model_id", model_id, LONG)?,
        Command::DatasetRegister {
            source,
            name,
            tags,
            license,
        } => {
            check_len("source", source, LONG)?;
            check_len("--name", name.as_deref().unwrap_or_default(), NAME)?;
            check_len("--tags", tags, VALUE)?;
            check_len("--license", license.as_deref().unwrap_or_default(), LONG)?;
        }
        Command::ModelRegister {
            source,
            name,
            architecture,
            version,
            parent,
            dataset,
            code_hash,
        } => {
            check_len("source", source, LONG)?;
            check_len("--name", name.as_deref().unwrap_or_default(), NAME)?;
            check_len("--architecture", architecture, NAME)?;
            check_len("--version", version, NAME)?;
            check_len("--parent", parent.as_deref().unwrap_or_default(), LONG)?;
            check_len("--dataset", dataset.as_deref().unwrap_or_default(), LONG)?;
            check_len(
                "--code-hash",
                code_hash.as_deref().unwrap_or_default(),
                NAME,
            )?;
        }
        Command::Serve(a) => a.check()?,
        Command::SpecCheck { file } => check_path("file", file)?,
        Command::StoragePush { path, .. } => check_path("path", path)?,
        Command::StorageGet { uri, dest } => {
            check_len("URI", uri, LONG)?;
            check_path("dest", dest)?;
        }
        Command::StorageLs { uri } => check_len("URI", uri, LONG)?,
        Command::Quickstart { .. }
        | Command::JobList
        | Command::DatasetList
        | Command::ModelList
        | Command::NodeList
        | Command::Settle { .. }
        | Command::Dev(_)
        | Command::Completions { .. }
        | Command::Runtime { .. } => {}
    }
    Ok(())
}

fn run(cli: Cli, keys_file_on_command_line: bool) -> Result<(), Error> {
    check_args(&cli)?;
    if let Command::SpecCheck { file } = &cli.command {
        return spec_check(file, cli.json);
    }
    if let Command::Completions { shell } = &cli.command {
        let mut cmd = Cli::command();
        let mut out = Vec::new();
        clap_complete::generate(*shell, &mut cmd, "arthai", &mut out);
        return outln!("{}", String::from_utf8_lossy(&out).trim_end());
    }
    let rpc_keys = rpc_keys(&cli, keys_file_on_command_line)?;
    // Every other command opens the home: check it first, and name it in
    // errors about it.
    let field = input::home_field(cli.home.as_deref());
    let root = input::check_home(cli.home.as_deref())?;
    let o = jobs::Opts {
        home: Some(root.clone()),
        rpc_url: cli.rpc_url.clone(),
        rpc_keys,
        store: cli.store.clone(),
    };
    dispatch(cli, &o).map_err(|e| input::path_error(e, field, &root, true))
}

fn dispatch(cli: Cli, o: &jobs::Opts) -> Result<(), Error> {
    match cli.command {
        Command::StoragePush {
            path,
            replicas,
            months,
        } => storage::push(o, cli.json, &path, replicas, months),
        Command::StorageGet { uri, dest } => storage::get(o, cli.json, &uri, &dest),
        Command::StorageLs { uri } => storage::ls(o, cli.json, &uri),
        Command::Quickstart { lm } => jobs::quickstart(o, cli.json, lm),
        Command::Train(a) => jobs::submit(o, cli.json, JobKind::Train, &a),
        Command::Infer(a) => jobs::submit(o, cli.json, JobKind::Infer, &a),
        Command::JobStatus { job_id, wait } => jobs::status(o, cli.json, &job_id, wait),
        Command::JobLogs {
            job_id,
            since,
            follow,
        } => jobs::logs(o, cli.json, &job_id, since, follow),
        Command::JobList => jobs::list(o, cli.json),
        Command::JobCancel { job_id } => jobs::cancel(o, cli.json, &job_id),
        Command::JobRelease { job_id } => jobs::release(o, cli.json, &job_id),
        Command::Proofs { job_id } => jobs::proofs(o, cli.json, &job_id),
        Command::Verify {
            job_id,
            follow,
            every,
            sample,
            all,
            window,
            challenge,
        } => {
            let req = artha_engine::dispute::VerifyRequest {
                sample,
                windows: (!window.is_empty()).then_some(window),
                all,
                challenge,
            };
            match job_id {
                Some(id) if !follow => jobs::verify(o, cli.json, &id, &req),
                _ => jobs::verify_follow(o, cli.json, &req, Duration::from_secs(every)),
            }
        }
        Command::DatasetRegister {
            source,
            name,
            tags,
            license,
        } => jobs::dataset_register(
            o,
            cli.json,
            &source,
            name.as_deref(),
            &tags,
            license.as_deref(),
        ),
        Command::ModelRegister {
            source,
            name,
            architecture,
            version,
            parent,
            dataset,
            code_hash,
        } => jobs::model_register(
            o,
            cli.json,
            &jobs::ModelArgs {
                source: &source,
                name: name.as_deref(),
                architecture: &architecture,
                version: &version,
                parent: parent.as_deref(),
                dataset: dataset.as_deref(),
                code_hash: code_hash.as_deref(),
            },
        ),
        Command::DatasetList => jobs::dataset_list(o, cli.json),
        Command::ModelList => jobs::model_list(o, cli.json),
        Command::ModelLineage { model_id } => jobs::model_lineage(o, cli.json, &model_id),
        Command::NodeList => jobs::node_list(o, cli.json),
        Command::Settle { when } => jobs::settle(o, cli.json, when),
        Command::Dev(DevCommand::Advance { secs }) => jobs::dev_advance(o, cli.json, secs),
        Command::Serve(a) => serve::run(o, cli.json, &a),
        Command::Completions { .. } => Ok(()),
        Command::Runtime { .. } => Err(Error::invalid(
            "arguments",
            "`runtime` must be the first argument (`arthai runtime [train|infer]`)",
        )),
        Command::SpecCheck { file } => spec_check(&file, cli.json),
    }
}

/// `arthai spec-check FILE`: reads the spec (bounded, see [`input`]) and
/// prints every problem with its field.
fn spec_check(file: &Path, json: bool) -> Result<(), Error> {
    let spec = input::read_spec("file", file)?;
    spec.validate()
        .map_err(|v| Error::from(v).with_context("file", file.display().to_string()))?;
    if json {
        outln!("{}", serde_json::json!({ "ok": true, "file": file }))
    } else {
        outln!("{}: ok", file.display())
    }
}
