//! The handlers: each turns a request into one call of the engine's API and
//! its value (or error) into JSON. Streams (`/job/{id}/logs?follow=true`,
//! `/job/{id}/events`) are newline-delimited JSON, one value per line,
//! ending when the job has ended.

use std::convert::Infallible;
use std::sync::Arc;

use artha_core::{Error, ErrorKind, JobId, JobKind, JobSpec};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use futures_util::{Stream, StreamExt};
use serde::Deserialize;

use super::AppState;
use super::guard::{ApiError, Body, Params, invalid_json};
use crate::api::{ErrorBody, JobEstimate};

/// A handler's result.
pub(crate) type Reply<T> = Result<Json<T>, ApiError>;

type St = State<Arc<AppState>>;

/// A job id from a path (`job_id` named when it is not one).
pub(crate) fn job_id(id: &str) -> Result<JobId, ApiError> {
    id.parse()
        .map_err(|e: Error| ApiError(e.with_context("field", "job_id")))
}

/// A job spec from a request body: the route's kind when it implies one
/// (a body naming another kind is refused), and a missing budget meaning
/// "the estimate".
fn spec_of(mut body: serde_json::Value, kind: Option<JobKind>) -> Result<JobSpec, ApiError> {
    let obj = body
        .as_object_mut()
        .ok_or_else(|| Error::invalid("body", "expected a JSON object (a job spec)"))?;
    if let Some(k) = kind {
        let name = k.to_string();
        match obj.get("kind").and_then(|v| v.as_str()) {
            Some(given) if given != name => {
                return Err(Error::invalid(
                    "kind",
                    format!("this route submits `{name}` jobs; the body says `{given}`"),
                )
                .into());
            }
            _ => {
                obj.insert("kind".into(), serde_json::Value::String(name));
            }
        }
    }
    obj.entry("budget")
        .or_insert_with(|| serde_json::Value::String("0 wei".into()));
    serde_json::from_value::<JobSpec>(body).map_err(|e| invalid_json(&e))
}

/// `?hold=true`: record the job but start it only on release.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubmitQuery {
    #[serde(default)]
    hold: bool,
}

async fn submit(
    app: &AppState,
    body: serde_json::Value,
    kind: Option<JobKind>,
    q: SubmitQuery,
) -> Response {
    let spec = match spec_of(body, kind) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    match app.engine.submit_estimated(spec, q.hold).await {
        Ok(s) => (axum::http::StatusCode::CREATED, Json(s)).into_response(),
        Err(e) => ApiError(e).into_response(),
    }
}

/// The handler of a submission route: `kind` is the route's (`None`:
/// the body names it).
pub(crate) fn submitter(
    kind: Option<JobKind>,
) -> impl Fn(St, Params<SubmitQuery>, Body<serde_json::Value>) -> BoxFuture<'static, Response>
+ Clone
+ Send
+ Sync
+ 'static {
    move |State(app), Params(q), Body(b)| Box::pin(async move { submit(&app, b, kind, q).await })
}

pub(crate) async fn estimate(
    State(app): St,
    Body(b): Body<serde_json::Value>,
) -> Reply<JobEstimate> {
    let spec = spec_of(b, None)?;
    Ok(Json(app.engine.estimate(&spec)?))
}

pub(crate) async fn status(State(app): St, Path(id): Path<String>) -> Reply<artha_core::JobStatus> {
    Ok(Json(app.engine.status(&job_id(&id)?)?))
}

pub(crate) async fn stop(State(app): St, Path(id): Path<String>) -> Reply<artha_core::JobStatus> {
    let job = app.engine.job(&job_id(&id)?)?;
    Ok(Json(job.cancel().await?))
}

pub(crate) async fn release(
    State(app): St,
    Path(id): Path<String>,
) -> Reply<artha_core::JobStatus> {
    Ok(Json(app.engine.release(&job_id(&id)?).await?))
}

pub(crate) async fn jobs(State(app): St) -> Reply<Vec<crate::api::JobSummary>> {
    Ok(Json(app.engine.summaries()?))
}

/// `?since=N&follow=true`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogsQuery {
    #[serde(default)]
    since: u64,
    #[serde(default)]
    follow: bool,
}

pub(crate) async fn logs(
    State(app): St,
    Path(id): Path<String>,
    Params(q): Params<LogsQuery>,
) -> Result<Response, ApiError> {
    let job = job_id(&id)?;
    if !q.follow {
        return Ok(Json(app.engine.logs(&job, q.since).await?).into_response());
    }
    let since = q.since;
    let lines = app
        .engine
        .job(&job)?
        .events()
        .filter_map(move |ev| async move {
            match ev {
                Ok(artha_core::JobEvent::Log(l)) if l.seq >= since => Some(Ok(l)),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            }
        });
    Ok(ndjson(lines))
}

/// `?progress=true`: phases and progress only.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventsQuery {
    #[serde(default)]
    progress: bool,
}

pub(crate) async fn events(
    State(app): St,
    Path(id): Path<String>,
    Params(q): Params<EventsQuery>,
) -> Result<Response, ApiError> {
    let job = app.engine.job(&job_id(&id)?)?;
    Ok(if q.progress {
        ndjson(job.progress_events())
    } else {
        ndjson(job.events())
    })
}

/// A stream of values as newline-delimited JSON; an error ends it with one
/// `{"error": …}` line.
fn ndjson<T: serde::Serialize + Send + 'static>(
    s: impl Stream<Item = artha_core::Result<T>> + Send + 'static,
) -> Response {
    let body = s
        .scan(false, |failed, item| {
            let out = if *failed {
                None
            } else {
                let line = match item {
                    Ok(v) => serde_json::to_vec(&v),
                    Err(e) => {
                        *failed = true;
                        serde_json::to_vec(&ErrorBody::from(&e))
                    }
                };
                let mut line = line.unwrap_or_default();
                line.push(b'\n');
                Some(Ok::<_, Infallible>(Bytes::from(line)))
            };
            futures_util::future::ready(out)
        })
        .boxed();
    let mut r = axum::body::Body::from_stream(body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    r
}

pub(crate) async fn proofs(
    State(app): St,
    Path(id): Path<String>,
) -> Reply<crate::proofs::ProofManifest> {
    Ok(Json(app.engine.proofs(&job_id(&id)?).await?))
}

pub(crate) async fn verify(
    State(app): St,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply<crate::dispute::VerifyOutcome> {
    let req: crate::dispute::VerifyRequest = if body.iter().all(u8::is_ascii_whitespace) {
        crate::dispute::VerifyRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| invalid_json(&e))?
    };
    Ok(Json(app.engine.verify_job(&job_id(&id)?, &req).await?))
}

/// `{"job_id": "job-…"}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct JobRef {
    job_id: String,
}

/// A job's proof commitment: the engine commits a job's proofs itself when
/// it ends, so this returns the commit's receipt, and `Conflict` for a job
/// that has not committed (yet).
pub(crate) async fn proof_submit(
    State(app): St,
    Body(b): Body<JobRef>,
) -> Reply<artha_core::ReceiptRecord> {
    let job = job_id(&b.job_id)?;
    let r = app.engine.record(&job)?;
    r.receipts
        .iter()
        .find(|x| x.action == artha_core::ChainAction::Commit)
        .cloned()
        .map(Json)
        .ok_or_else(|| {
            ApiError(
                Error::new(
                    ErrorKind::Conflict,
                    format!(
                        "a {} job has no proofs committed; the engine commits them when the job ends",
                        r.phase
                    ),
                )
                .with_context("job_id", job.to_string()),
            )
        })
}

/// `{"job_id": …}` optional: the pass settles every due job either way;
/// with a job, `Conflict` (saying when) unless that job is settled.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FinalizeBody {
    #[serde(default)]
    job_id: Option<String>,
}

pub(crate) async fn finalize(State(app): St, body: Bytes) -> Reply<crate::api::SettleReport> {
    let body: FinalizeBody = if body.iter().all(u8::is_ascii_whitespace) {
        FinalizeBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| invalid_json(&e))?
    };
    let job = match body.job_id {
        Some(j) => Some(job_id(&j)?),
        None => None,
    };
    if let Some(j) = &job {
        app.engine.record(j)?;
    }
    let report = app.engine.settle().await?;
    if let Some(j) = job
        && let Some(p) = report.pending.iter().find(|p| p.job_id == j)
    {
        return Err(ApiError(
            Error::new(
                ErrorKind::Conflict,
                format!(
                    "inside its challenge period: it settles at chain time {} (in {} s)",
                    p.settles_at, p.in_secs
                ),
            )
            .with_context("job_id", j.to_string()),
        ));
    }
    Ok(Json(report))
}

pub(crate) async fn due(State(app): St) -> Reply<Vec<crate::api::DueJob>> {
    Ok(Json(app.engine.due().await?))
}

/// `{"secs": N}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AdvanceBody {
    secs: u64,
}

/// The chain's time after a move.
#[derive(Debug, serde::Serialize)]
pub(crate) struct ChainTime {
    chain_time: u64,
}

pub(crate) async fn dev_advance(State(app): St, Body(b): Body<AdvanceBody>) -> Reply<ChainTime> {
    if b.secs == 0 || b.secs > 10 * 365 * 86_400 {
        return Err(Error::invalid("secs", "between 1 and 315360000 seconds").into());
    }
    Ok(Json(ChainTime {
        chain_time: app.engine.dev_advance_time(b.secs).await?,
    }))
}

pub(crate) async fn stats(State(app): St) -> Reply<crate::api::Stats> {
    Ok(Json(app.engine.stats().await?))
}

pub(crate) async fn health(State(app): St) -> Json<crate::api::EngineInfo> {
    Json(app.engine.info())
}

pub(crate) async fn metrics(State(app): St) -> Result<Response, ApiError> {
    let text = app.metrics.render(&app.engine.stats().await?);
    let mut r = text.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    Ok(r)
}

pub(crate) async fn openapi() -> Json<serde_json::Value> {
    Json(super::openapi::document())
}
