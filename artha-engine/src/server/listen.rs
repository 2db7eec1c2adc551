//! The listener: accepts connections (TLS when configured), serves the
//! router on each with HTTP/1.1, records the daemon in the home's
//! discovery file, and shuts down gracefully.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use artha_core::{Error, ErrorKind, Result};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::guard::Peer;
use super::{Discovery, ServeConfig, discovery_path, router};
use crate::engine::Engine;

/// A running daemon (from [`serve`]).
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    url: String,
    engine: Engine,
    stop: watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
}

impl Server {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL (`http://…` or `https://…`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops accepting, lets requests in flight finish (up to the grace
    /// period), removes the discovery file and stops the engine as a crash
    /// would leave it (jobs keep running; the next engine re-attaches).
    pub async fn shutdown(self) {
        self.stop.send_replace(true);
        let _ = self.accept.await;
        let home = self.engine.home().to_path_buf();
        remove_discovery(&home, std::process::id());
        self.engine.shutdown().await;
    }
}

/// Serves `engine` as [`ServeConfig`] says, in the background; the home's
/// discovery file names the daemon until [`Server::shutdown`]. When it
/// cannot start (a bad certificate, a port in use) the engine is shut down
/// and the error says why.
pub async fn serve(engine: Engine, cfg: ServeConfig) -> Result<Server> {
    let tls = match &cfg.tls {
        Some((cert, key)) => match tls_acceptor(cert, key) {
            Ok(t) => Some(t),
            Err(e) => {
                engine.shutdown().await;
                return Err(e);
            }
        },
        None => None,
    };
    let listener = match bind(&cfg).await {
        Ok(l) => l,
        Err(e) => {
            engine.shutdown().await;
            return Err(e);
        }
    };
    start(engine, cfg, tls, listener).await
}

async fn bind(cfg: &ServeConfig) -> Result<TcpListener> {
    TcpListener::bind(cfg.addr).await.map_err(|e| {
        let kind = if e.kind() == std::io::ErrorKind::AddrInUse {
            ErrorKind::Conflict
        } else {
            ErrorKind::Unavailable
        };
        Error::new(kind, format!("cannot listen on {}: {e}", cfg.addr))
            .with_context("field", "addr")
    })
}

async fn start(
    engine: Engine,
    cfg: ServeConfig,
    tls: Option<tokio_rustls::TlsAcceptor>,
    listener: TcpListener,
) -> Result<Server> {
    let addr = listener
        .local_addr()
        .map_err(|e| Error::new(ErrorKind::Internal, format!("no local address: {e}")))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else if addr.is_ipv6() {
        format!("[{}]", addr.ip())
    } else {
        addr.ip().to_string()
    };
    let url = format!("{scheme}://{host}:{}", addr.port());
    let app = router(engine.clone(), cfg.options.clone());
    let (stop, stopped) = watch::channel(false);
    let header_timeout = cfg.header_timeout;
    let grace = cfg.grace;
    let accept = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        let mut stopped_rx = stopped.clone();
        loop {
            let (stream, peer) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(x) => x,
                    // Out of descriptors and the like: the next accept may work.
                    Err(_) => { tokio::time::sleep(std::time::Duration::from_millis(50)).await; continue; }
                },
                _ = stopped_rx.changed() => break,
            };
            let app = app.clone().layer(axum::Extension(Peer(peer.ip())));
            let tls = tls.clone();
            let mut stop_conn = stopped.clone();
            conns.spawn(async move {
                let svc = TowerToHyperService::new(app);
                let mut http = hyper::server::conn::http1::Builder::new();
                http.timer(TokioTimer::new())
                    .header_read_timeout(header_timeout);
                macro_rules! drive {
                    ($io:expr) => {{
                        let conn = http.serve_connection(TokioIo::new($io), svc);
                        let mut conn = std::pin::pin!(conn);
                        tokio::select! {
                            _ = conn.as_mut() => {}
                            _ = stop_conn.changed() => {
                                conn.as_mut().graceful_shutdown();
                                let _ = tokio::time::timeout(grace, conn.as_mut()).await;
                            }
                        }
                    }};
                }
                match tls {
                    Some(acceptor) => {
                        if let Ok(Ok(s)) =
                            tokio::time::timeout(header_timeout, acceptor.accept(stream)).await
                        {
                            drive!(s);
                        }
                    }
                    None => drive!(stream),
                }
            });
            // Reap finished connections as we go.
            while conns.try_join_next().is_some() {}
        }
        let _ =
            tokio::time::timeout(grace, async { while conns.join_next().await.is_some() {} }).await;
        conns.abort_all();
    });
    let disc = Discovery {
        url: url.clone(),
        pid: std::process::id(),
        ca_cert: cfg
            .tls
            .as_ref()
            .map(|(c, _)| std::path::absolute(c).unwrap_or(c.clone())),
    };
    if let Err(e) = write_discovery(engine.home(), &disc) {
        stop.send_replace(true);
        let _ = accept.await;
        engine.shutdown().await;
        return Err(e);
    }
    Ok(Server {
        addr,
        url,
        engine,
        stop,
        accept,
    })
}

fn tls_acceptor(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| {
            Error::invalid("tls_cert", format!("not a PEM certificate chain: {e}"))
                .with_context("path", cert.display().to_string())
        })?;
    if certs.is_empty() {
        return Err(Error::invalid("tls_cert", "no certificate in the file")
            .with_context("path", cert.display().to_string()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        Error::invalid("tls_key", format!("not a PEM private key: {e}"))
            .with_context("path", key.display().to_string())
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| {
            Error::invalid(
                "tls_key",
                format!("the certificate and key do not make a TLS configuration: {e}"),
            )
        })?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Writes `<home>/serve.json` atomically (temp file, fsync, rename).
fn write_discovery(home: &Path, d: &Discovery) -> Result<()> {
    let path = discovery_path(home);
    let text = serde_json::to_vec_pretty(d)
        .map_err(|e| Error::new(ErrorKind::Internal, format!("discovery: {e}")))?;
    crate::fsutil::write_atomic(&path, &text)
}

/// Removes the discovery file if it still names process `pid`.
fn remove_discovery(home: &Path, pid: u32) {
    let path = discovery_path(home);
    let ours = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Discovery>(&b).ok())
        .is_some_and(|d| d.pid == pid);
    if ours {
        let _ = std::fs::remove_file(&path);
    }
}
