//! The REST API of an engine (feature `server`): an axum [`Router`] over
//! the typed Job API that a custom daemon can mount ([`router`]), and
//! [`serve`], the daemon `arthai serve` runs.
//!
//! Routes are the reference's — `/ai/train`, `/ai/infer`, `/ai/agent`,
//! `/ai/model/*`, `/ai/dataset/*`, `/ai/job/*`, `/job/start`,
//! `/job/{id}/stop`, `/job/{id}/logs` (streaming with `follow=true`),
//! `/job/{id}/status`, `/jobs`, `/proof/submit`, `/finalize`,
//! `/proofs/{job_id}`, `/stats` — with `/health`, `/metrics` (Prometheus)
//! and `/openapi.json`, generated from the same route table as the router.
//!
//! Security, as a user of `dockerd` or `ray start` would expect from a
//! daemon that runs jobs and moves money:
//! - it binds loopback unless told otherwise, and every route but
//!   `/health`, `/metrics` and `/openapi.json` needs
//!   `Authorization: Bearer <token>` — reads too, not only the mutating
//!   routes, since any local user can reach a loopback port while only the
//!   home's owner can read the token (`<home>/serve.token`, mode 0600,
//!   created at first start);
//! - bodies are limited ([`ServerOptions::body_limit`], 413 over it), each
//!   caller (its token, else its address) is rate limited (429 with
//!   `Retry-After`), a request that takes longer than
//!   [`ServerOptions::request_timeout`] gets 408 and headers that trickle
//!   in are cut after [`ServeConfig::header_timeout`];
//! - every error is `{"error": {"kind", "message", "field", "context",
//!   "retryable"}}` with the status of its kind;
//! - with a certificate and key (PEM) it speaks TLS (rustls);
//! - on shutdown it stops accepting, lets requests in flight finish (a
//!   grace period), and stops the engine the way a crash would leave it:
//!   jobs keep running and the next engine on the home re-attaches.
//!
//! Discovery: while it serves, `<home>/serve.json` says where
//! ([`Discovery`]); [`crate::connect`] reads it.

mod guard;
mod metrics;
pub(crate) mod openapi;
mod registry_routes;
mod routes;
mod storage_routes;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use std::sync::Arc;
use std::time::Duration;

use artha_core::{Error, ErrorKind, Result};
use axum::Router;
use axum::extract::DefaultBodyLimit;

pub use crate::api::{Discovery, discovery_path, token_path};
use crate::engine::Engine;

/// Limits of the API (what [`router`] enforces).
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The bearer token every non-public route needs.
    pub token: String,
    /// Largest request body, bytes (default 1 MiB).
    pub body_limit: usize,
    /// Requests per second each caller may make on average (0: no limit;
    /// default 50).
    pub rate_per_sec: u32,
    /// Requests a caller may make at once before the rate applies
    /// (default 100).
    pub burst: u32,
    /// Longest a request may take until its response starts (default
    /// 30 s; streams go on after their headers).
    pub request_timeout: Duration,
}

impl ServerOptions {
    /// The defaults with `token`.
    pub fn new(token: impl Into<String>) -> Self {
        ServerOptions {
            token: token.into(),
            body_limit: 1 << 20,
            rate_per_sec: 50,
            burst: 100,
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// What every handler shares.
#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) engine: Engine,
    pub(crate) token: String,
    pub(crate) options: ServerOptions,
    pub(crate) limiter: guard::Limiter,
    pub(crate) metrics: metrics::Metrics,
}

/// The API over `engine` as an axum router, to serve or to mount in a
/// daemon of one's own (`Router::nest`). A connection's peer address is
/// used for the rate limit of callers without a token when the serving
/// code inserts it; [`serve`] does.
pub fn router(engine: Engine, options: ServerOptions) -> Router {
    let state = Arc::new(AppState {
        engine,
        token: options.token.clone(),
        limiter: guard::Limiter::new(options.rate_per_sec, options.burst),
        metrics: metrics::Metrics::default(),
        options: options.clone(),
    });
    let mut r: Router<Arc<AppState>> = Router::new();
    for rt in openapi::table() {
        r = r.route(rt.path, rt.handler);
    }
    r.fallback(guard::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::guard,
        ))
        .layer(DefaultBodyLimit::max(options.body_limit))
        .with_state(state)
}

/// The OpenAPI 3.0 document of the API.
pub fn openapi_document() -> serde_json::Value {
    openapi::document()
}

/// The home's API token, created (32 random bytes, hex, mode 0600) when
/// there is none. A token file readable by others is refused.
pub fn load_or_create_token(home: &Path) -> Result<String> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let path = token_path(home);
    match std::fs::symlink_metadata(&path) {
        Ok(m) => {
            if !m.file_type().is_file() || m.mode() & 0o077 != 0 {
                return Err(Error::new(
                    ErrorKind::PermissionDenied,
                    "the token file must be a regular file that only its owner can read (chmod 600)",
                )
                .with_context("path", path.display().to_string()));
            }
            let t = std::fs::read_to_string(&path)
                .map_err(|e| crate::fsutil::io_err("read the API token", &path, e))?;
            let t = t.trim().to_string();
            if t.len() < 32 || !t.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(
                    Error::new(ErrorKind::Corrupted, "the token file is malformed")
                        .with_context("path", path.display().to_string()),
                );
            }
            Ok(t)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut raw = [0u8; 32];
            getrandom::fill(&mut raw)
                .map_err(|e| Error::new(ErrorKind::Internal, format!("no randomness: {e}")))?;
            let token = hex::encode(raw);
            let tmp = home.join(format!(".serve.token.{}", std::process::id()));
            let write = || -> std::io::Result<()> {
                use std::io::Write;
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&tmp)?;
                f.write_all(token.as_bytes())?;
                f.sync_all()?;
                std::fs::hard_link(&tmp, &path)?;
                std::fs::remove_file(&tmp)
            };
            if let Err(e) = write() {
                let _ = std::fs::remove_file(&tmp);
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    return load_or_create_token(home);
                }
                return Err(crate::fsutil::io_err("create the API token", &path, e));
            }
            Ok(token)
        }
        Err(e) => Err(crate::fsutil::io_err("read the API token", &path, e)),
    }
}

/// How [`serve`] listens.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Address to bind (default `127.0.0.1:8090`; port 0 picks one).
    pub addr: SocketAddr,
    /// TLS certificate chain and private key, PEM files.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The API's limits.
    pub options: ServerOptions,
    /// How long a connection may take to send its request headers.
    pub header_timeout: Duration,
    /// How long requests in flight get to finish on shutdown.
    pub grace: Duration,
}

impl ServeConfig {
    /// Loopback port 8090, no TLS, default limits.
    pub fn new(options: ServerOptions) -> Self {
        ServeConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 8090)),
            tls: None,
            options,
            header_timeout: Duration::from_secs(10),
            grace: Duration::from_secs(5),
        }
    }
}

mod listen;

pub use listen::{Server, serve};
