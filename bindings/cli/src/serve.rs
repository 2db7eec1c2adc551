//! `arthai serve`: the home's engine behind the REST API
//! (`artha_engine::server`) until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use artha_core::Error;
use artha_engine::server::{self, ServeConfig, ServerOptions};
use clap::Args;

use crate::jobs::{Opts, open_engine};
use crate::out::{errln, outln};
use crate::storage::runtime;

/// Options of `serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on. Loopback by default; another address exposes
    /// the API (token-protected) to the network.
    #[arg(long, default_value = "127.0.0.1:8090", value_name = "IP:PORT")]
    addr: SocketAddr,
    /// TLS certificate chain (PEM); with --tls-key, the API speaks HTTPS.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Requests per second each caller may make on average (0: no limit).
    #[arg(long, default_value_t = 50, value_name = "N")]
    rate_limit: u32,
    /// Requests a caller may make at once before the rate limit applies.
    #[arg(long, default_value_t = 100, value_name = "N")]
    burst: u32,
    /// Largest request body, bytes.
    #[arg(long, default_value_t = 1 << 20, value_name = "BYTES")]
    body_limit: usize,
    /// Longest a request may take until its response starts, seconds.
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    request_timeout: u64,
}

impl ServeArgs {
    pub(crate) fn check(&self) -> Result<(), Error> {
        if let Some(c) = &self.tls_cert {
            crate::input::check_path("--tls-cert", c)?;
        }
        if let Some(k) = &self.tls_key {
            crate::input::check_path("--tls-key", k)?;
        }
        if self.body_limit < 1024 || self.body_limit > 64 << 20 {
            return Err(Error::invalid(
                "--body-limit",
                "between 1024 bytes and 64 MiB",
            ));
        }
        if self.request_timeout == 0 || self.request_timeout > 3600 {
            return Err(Error::invalid(
                "--request-timeout",
                "between 1 and 3600 seconds",
            ));
        }
        Ok(())
    }
}

pub(crate) fn run(o: &Opts, json: bool, a: &ServeArgs) -> Result<(), Error> {
    runtime()?.block_on(async {
        // Listening for SIGTERM and Ctrl-C from before the daemon announces
        // itself: a supervisor may stop it as soon as it has read the line.
        let mut stop = Stop::listen()?;
        let engine = open_engine(o).await?;
        let home = engine.home().to_path_buf();
        let token = match server::load_or_create_token(&home) {
            Ok(t) => t,
            Err(e) => {
                engine.shutdown().await;
                return Err(e);
            }
        };
        let mut options = ServerOptions::new(token);
        options.rate_per_sec = a.rate_limit;
        options.burst = a.burst;
        options.body_limit = a.body_limit;
        options.request_timeout = Duration::from_secs(a.request_timeout);
        let mut cfg = ServeConfig::new(options);
        cfg.addr = a.addr;
        cfg.tls = a.tls_cert.clone().zip(a.tls_key.clone());
        let srv = server::serve(engine, cfg).await?;
        let token_file = server::token_path(&home);
        if json {
            // One line, so a supervisor can read it as soon as it is there.
            outln!(
                "{}",
                serde_json::json!({
                    "url": srv.url(), "home": home, "token_file": token_file,
                    "pid": std::process::id()
                })
            )?;
        } else {
            outln!("serving {} on {}", home.display(), srv.url())?;
            errln!(
                "  token: {} (send `Authorization: Bearer <token>`); API: {}/openapi.json",
                token_file.display(),
                srv.url()
            )?;
            errln!(
                "  every arthai command on this home now talks to this daemon; Ctrl-C stops it"
            )?;
        }
        stop.wait().await;
        errln!(
            "stopping: requests in flight finish, jobs keep running and resume with the next engine"
        )?;
        srv.shutdown().await;
        Ok(())
    })
}

/// SIGTERM and SIGINT, listened for from creation on.
struct Stop {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Stop {
    fn listen() -> Result<Stop, Error> {
        use tokio::signal::unix::{SignalKind, signal};
        let err = |e| {
            Error::new(artha_core::ErrorKind::Internal, "cannot listen for signals").with_source(e)
        };
        Ok(Stop {
            term: signal(SignalKind::terminate()).map_err(err)?,
            int: signal(SignalKind::interrupt()).map_err(err)?,
        })
    }

    async fn wait(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}
