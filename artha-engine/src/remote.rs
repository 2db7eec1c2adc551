//! The remote engine (feature `client`): the engine's service API over
//! HTTP, to a running `arthai serve` ([`crate::server`]). Every method is
//! one request; errors come back with the kind, message and context the
//! daemon's engine gave them; streams are read line by line as they come.
//! Most users get one through [`crate::connect`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use artha_core::{
    ArthaUri, DatasetId, Error, ErrorKind, JobEvent, JobId, JobSpec, JobStatus, LogLine, ModelId,
    ReceiptRecord, Result,
};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::{Discovery, discovery_path, token_path};
use crate::api::{
    DueJob, EngineInfo, ErrorBody, JobEstimate, JobSummary, SettleReport, Stats, Submitted,
};
use crate::engine::{DatasetEntry, DatasetMeta, ModelEntry, ModelRegistration, NodeInfo};
use crate::proofs::ProofManifest;

/// How long [`discover`] waits for a daemon to answer.
const PROBE: Duration = Duration::from_millis(1500);

/// The client of one daemon.
#[derive(Debug, Clone)]
pub struct RemoteEngine {
    base: String,
    token: String,
    http: reqwest::Client,
    home: PathBuf,
}

/// The daemon serving `home`, if its discovery file names one that
/// answers; `None` when there is no file, or its daemon is gone (a stale
/// file after a crash).
pub async fn discover(home: &Path) -> Result<Option<RemoteEngine>> {
    let path = discovery_path(home);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(crate::fsutil::io_err(
                "read the daemon's discovery file",
                &path,
                e,
            ));
        }
    };
    let d: Discovery = serde_json::from_slice(&bytes).map_err(|e| {
        Error::new(
            ErrorKind::Corrupted,
            format!("malformed discovery file: {e}"),
        )
        .with_context("path", path.display().to_string())
    })?;
    if !alive(d.pid) {
        return Ok(None);
    }
    let token = std::fs::read_to_string(token_path(home))
        .map_err(|e| crate::fsutil::io_err("read the daemon's token", &token_path(home), e))?;
    let remote = RemoteEngine::new(&d, token.trim(), home)?;
    match tokio::time::timeout(PROBE, remote.info()).await {
        Ok(Ok(info)) if info.pid == d.pid => Ok(Some(remote)),
        // Another process on that port, or a daemon that does not answer.
        Ok(Ok(_)) | Ok(Err(_)) | Err(_) => Ok(None),
    }
}

fn alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

impl RemoteEngine {
    /// A client of the daemon `d` describes, presenting `token`.
    pub fn new(d: &Discovery, token: &str, home: &Path) -> Result<Self> {
        use tokio_rustls::rustls;
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        if let Some(ca) = &d.ca_cert {
            use rustls_pki_types::CertificateDer;
            use rustls_pki_types::pem::PemObject;
            for c in CertificateDer::pem_file_iter(ca).map_err(|e| {
                Error::invalid("ca_cert", e.to_string())
                    .with_context("path", ca.display().to_string())
            })? {
                let c = c.map_err(|e| Error::invalid("ca_cert", e.to_string()))?;
                roots
                    .add(c)
                    .map_err(|e| Error::invalid("ca_cert", e.to_string()))?;
            }
        }
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .no_proxy()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| Error::new(ErrorKind::Internal, format!("HTTP client: {e}")))?;
        Ok(RemoteEngine {
            base: d.url.trim_end_matches('/').to_string(),
            token: token.to_string(),
            http,
            home: home.to_path_buf(),
        })
    }

    /// The daemon's base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// The home it serves.
    pub fn home(&self) -> &Path {
        &self.home
    }

    async fn send<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T> {
        let resp = req
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| transport(&self.base, e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| transport(&self.base, e))?;
        if !status.is_success() {
            return Err(http_error(status, &bytes));
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::new(
                ErrorKind::Corrupted,
                format!("the daemon sent malformed JSON: {e}"),
            )
            .with_context("url", self.base.clone())
        })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    async fn post<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body))
            .await
    }

    /// Newline-delimited JSON values from `path`, as they come.
    async fn stream<T: DeserializeOwned + Send + 'static>(
        &self,
        path: &str,
    ) -> Result<BoxStream<'static, Result<T>>> {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| transport(&self.base, e))?;
        let status = resp.status();
        if !status.is_success() {
            let bytes = resp.bytes().await.map_err(|e| transport(&self.base, e))?;
            return Err(http_error(status, &bytes));
        }
        let base = self.base.clone();
        let chunks = resp.bytes_stream();
        let lines = futures_util::stream::unfold(
            (chunks, Vec::<u8>::new(), false),
            move |(mut chunks, mut buf, mut done)| {
                let base = base.clone();
                async move {
                    loop {
                        if done {
                            return None;
                        }
                        if let Some(i) = buf.iter().position(|b| *b == b'\n') {
                            let line: Vec<u8> = buf.drain(..=i).collect();
                            let line = &line[..line.len() - 1];
                            if line.is_empty() {
                                continue;
                            }
                            let item = parse_line::<T>(line);
                            done = item.is_err();
                            return Some((item, (chunks, buf, done)));
                        }
                        match chunks.next().await {
                            Some(Ok(c)) => buf.extend_from_slice(&c),
                            Some(Err(e)) => {
                                return Some((Err(transport(&base, e)), (chunks, buf, true)));
                            }
                            None => return None,
                        }
                    }
                }
            },
        );
        Ok(lines.boxed())
    }

    /// Who the daemon's engine is.
    pub async fn info(&self) -> Result<EngineInfo> {
        self.get("/health").await
    }

    /// Submits a job (a zero budget means the estimate); held until
    /// [`release`](Self::release) with `hold`.
    pub async fn submit(&self, spec: &JobSpec, hold: bool) -> Result<Submitted> {
        self.post(&format!("/job/start?hold={hold}"), spec).await
    }

    /// Starts a held job.
    pub async fn release(&self, job: &JobId) -> Result<JobStatus> {
        self.post(&format!("/job/{job}/release"), &serde_json::json!({}))
            .await
    }

    /// What `spec` may cost and take.
    pub async fn estimate(&self, spec: &JobSpec) -> Result<JobEstimate> {
        self.post("/ai/job/estimate", spec).await
    }

    /// A job's status.
    pub async fn status(&self, job: &JobId) -> Result<JobStatus> {
        self.get(&format!("/job/{job}/status")).await
    }

    /// Every job, newest first.
    pub async fn summaries(&self) -> Result<Vec<JobSummary>> {
        self.get("/jobs").await
    }

    /// A job's output lines from `since`.
    pub async fn logs(&self, job: &JobId, since: u64) -> Result<Vec<LogLine>> {
        self.get(&format!("/job/{job}/logs?since={since}")).await
    }

    /// A job's output lines from `since`, as they come, until it ends.
    pub async fn follow_logs(
        &self,
        job: &JobId,
        since: u64,
    ) -> Result<BoxStream<'static, Result<LogLine>>> {
        self.stream(&format!("/job/{job}/logs?since={since}&follow=true"))
            .await
    }

    /// A job's events as they happen (phases and progress only with
    /// `progress_only`).
    pub async fn events(
        &self,
        job: &JobId,
        progress_only: bool,
    ) -> Result<BoxStream<'static, Result<JobEvent>>> {
        self.stream(&format!("/job/{job}/events?progress={progress_only}"))
            .await
    }

    /// Cancels a job.
    pub async fn cancel(&self, job: &JobId) -> Result<JobStatus> {
        self.post(&format!("/job/{job}/stop"), &serde_json::json!({}))
            .await
    }

    /// The proof manifest a job committed.
    pub async fn proofs(&self, job: &JobId) -> Result<ProofManifest> {
        self.get(&format!("/proofs/{job}")).await
    }

    /// `POST /verify/{job_id}`: an audit by replay, and a dispute when
    /// asked and found.
    pub async fn verify(
        &self,
        job: &JobId,
        req: &crate::dispute::VerifyRequest,
    ) -> Result<crate::dispute::VerifyOutcome> {
        self.post(&format!("/verify/{job}"), req).await
    }

    /// A job's proof commitment receipt.
    pub async fn proof_receipt(&self, job: &JobId) -> Result<ReceiptRecord> {
        self.post("/proof/submit", &serde_json::json!({ "job_id": job }))
            .await
    }

    /// Settles what is due; says what is left.
    pub async fn settle(&self) -> Result<SettleReport> {
        self.post("/finalize", &serde_json::json!({})).await
    }

    /// Committed jobs waiting for their challenge period.
    pub async fn due(&self) -> Result<Vec<DueJob>> {
        self.get("/finalize/due").await
    }

    /// Moves a development chain's clock; returns its time after.
    pub async fn dev_advance(&self, secs: u64) -> Result<u64> {
        let v: serde_json::Value = self
            .post("/dev/advance", &serde_json::json!({ "secs": secs }))
            .await?;
        v.get("chain_time")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| Error::new(ErrorKind::Corrupted, "no chain_time in the reply"))
    }

    /// Statistics.
    pub async fn stats(&self) -> Result<Stats> {
        self.get("/stats").await
    }

    /// Pushes a file or tree of this host into the home's store, pinned
    /// with the default deal (the daemon reads it: it is on this host).
    pub async fn push(&self, path: &Path) -> Result<crate::store::PushReport> {
        self.push_pinned(path, None, None).await
    }

    /// [`push`](Self::push) with the deal's replicas and months.
    pub async fn push_pinned(
        &self,
        path: &Path,
        replicas: Option<u32>,
        months: Option<u32>,
    ) -> Result<crate::store::PushReport> {
        let abs = std::path::absolute(path)
            .map_err(|e| crate::fsutil::io_err("resolve the path", path, e))?;
        self.post(
            "/storage/push",
            &serde_json::json!({ "path": abs, "replicas": replicas, "months": months }),
        )
        .await
    }

    /// Writes what `uri` names to `dest` (which must not exist) on this
    /// host.
    pub async fn get_to(&self, uri: &ArthaUri, dest: &Path) -> Result<crate::store::LayoutReport> {
        let abs = std::path::absolute(dest)
            .map_err(|e| crate::fsutil::io_err("resolve the path", dest, e))?;
        self.post(
            "/storage/get",
            &serde_json::json!({ "uri": uri.to_string(), "dest": abs }),
        )
        .await
    }

    /// What `uri` names; a directory's entries.
    pub async fn ls(&self, uri: &ArthaUri) -> Result<crate::store::Listing> {
        let q: String = url_escape(&uri.to_string());
        self.get(&format!("/storage/ls?uri={q}")).await
    }

    /// Registers stored content as a dataset.
    pub async fn register_dataset(
        &self,
        uri: &ArthaUri,
        meta: &DatasetMeta,
    ) -> Result<DatasetEntry> {
        self.post(
            "/ai/dataset/register",
            &serde_json::json!({ "uri": uri.to_string(), "name": meta.name, "tags": meta.tags,
                                 "license": meta.license.as_ref().map(|l| l.to_string()) }),
        )
        .await
    }

    /// Registers stored content as a model.
    pub async fn register_model(
        &self,
        uri: &ArthaUri,
        reg: &ModelRegistration,
    ) -> Result<ModelEntry> {
        self.post(
            "/ai/model/register",
            &serde_json::json!({ "uri": uri.to_string(), "name": reg.name,
                "architecture": reg.architecture, "version": reg.version,
                "parent": reg.parent.map(|p| p.to_string()),
                "dataset": reg.dataset.map(|d| d.to_string()),
                "code_hash": reg.code_hash.map(|h| h.to_string()) }),
        )
        .await
    }

    /// Every dataset.
    pub async fn datasets(&self) -> Result<Vec<DatasetEntry>> {
        self.get("/ai/dataset/list").await
    }

    /// Every model.
    pub async fn models(&self) -> Result<Vec<ModelEntry>> {
        self.get("/ai/model/list").await
    }

    /// A dataset.
    pub async fn dataset(&self, id: &DatasetId) -> Result<DatasetEntry> {
        self.get(&format!("/ai/dataset/{id}")).await
    }

    /// A model.
    pub async fn model(&self, id: &ModelId) -> Result<ModelEntry> {
        self.get(&format!("/ai/model/{id}")).await
    }

    /// A model and its ancestors.
    pub async fn lineage(&self, id: &ModelId) -> Result<Vec<ModelEntry>> {
        self.get(&format!("/ai/model/{id}/lineage")).await
    }

    /// The nodes the daemon's engine knows.
    pub async fn nodes(&self) -> Result<Vec<NodeInfo>> {
        self.get("/nodes").await
    }
}

/// `s` with everything but unreserved characters percent-encoded.
fn url_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn parse_line<T: DeserializeOwned>(line: &[u8]) -> Result<T> {
    if let Ok(body) = serde_json::from_slice::<ErrorBody>(line) {
        return Err(body.into_error());
    }
    serde_json::from_slice(line).map_err(|e| {
        Error::new(
            ErrorKind::Corrupted,
            format!("the daemon sent a malformed line: {e}"),
        )
    })
}

fn transport(base: &str, e: reqwest::Error) -> Error {
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else {
        ErrorKind::Unavailable
    };
    Error::new(kind, format!("the daemon at {base} did not answer: {e}"))
        .with_context("url", base.to_string())
}

fn http_error(status: reqwest::StatusCode, body: &[u8]) -> Error {
    if let Ok(b) = serde_json::from_slice::<ErrorBody>(body) {
        return b.into_error();
    }
    let kind = match status.as_u16() {
        400 | 413 | 415 => ErrorKind::InvalidInput,
        401 | 403 => ErrorKind::PermissionDenied,
        404 => ErrorKind::NotFound,
        409 => ErrorKind::Conflict,
        429 => ErrorKind::ResourceExhausted,
        503 => ErrorKind::Unavailable,
        _ => ErrorKind::Internal,
    };
    Error::new(
        kind,
        format!(
            "the daemon answered {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        ),
    )
}
