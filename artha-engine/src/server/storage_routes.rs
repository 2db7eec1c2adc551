//! `/storage/*`: the home's store through its daemon (the store is the
//! engine's, and one engine holds a home). A push names a path and a get a
//! destination on the daemon's host, so these routes answer only callers on
//! loopback — the clients [`crate::connect`] finds through the home, on the
//! same host, as the same user — and refuse others (403) even with the
//! token.

use std::path::PathBuf;
use std::sync::Arc;

use artha_core::{ArthaUri, Error, ErrorKind};
use axum::Json;
use axum::extract::{Extension, State};
use axum::routing::{get, post};
use serde::Deserialize;

use super::AppState;
use super::guard::{ApiError, Body, Params, Peer};
use super::openapi::{In, Out, Route, route};
use super::routes::Reply;
use crate::store::{Deal, LayoutReport, PushOptions, PushReport};

type St = State<Arc<AppState>>;

fn local_only(peer: Option<Extension<Peer>>) -> Result<(), ApiError> {
    match peer {
        Some(Extension(Peer(ip))) if ip.is_loopback() => Ok(()),
        _ => Err(ApiError(Error::new(
            ErrorKind::PermissionDenied,
            "paths on the daemon's host are for callers on the same host (loopback) only",
        ))),
    }
}

fn absolute(field: &'static str, p: &str) -> Result<PathBuf, ApiError> {
    let path = PathBuf::from(p);
    if !path.is_absolute() || p.len() > 4096 {
        return Err(Error::invalid(field, "an absolute path of at most 4096 bytes").into());
    }
    Ok(path)
}

/// `POST /storage/push`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PushBody {
    path: String,
    #[serde(default)]
    replicas: Option<u32>,
    #[serde(default)]
    months: Option<u32>,
}

async fn push(
    State(app): St,
    peer: Option<Extension<Peer>>,
    Body(b): Body<PushBody>,
) -> Reply<PushReport> {
    local_only(peer)?;
    let path = absolute("path", &b.path)?;
    let d = Deal::default();
    let deal = Deal {
        replicas: b.replicas.unwrap_or(d.replicas),
        months: b.months.unwrap_or(d.months),
        ..d
    };
    deal.validate()?;
    let opts = PushOptions {
        pin: Some(deal),
        progress: None,
    };
    Ok(Json(app.engine.store().push_path(&path, &opts).await?))
}

/// `POST /storage/get`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GetBody {
    uri: String,
    dest: String,
}

async fn get_to(
    State(app): St,
    peer: Option<Extension<Peer>>,
    Body(b): Body<GetBody>,
) -> Reply<LayoutReport> {
    local_only(peer)?;
    let uri: ArthaUri = b
        .uri
        .parse()
        .map_err(|e: Error| ApiError(e.with_context("field", "uri")))?;
    let dest = absolute("dest", &b.dest)?;
    Ok(Json(app.engine.store().get(&uri, &dest).await?))
}

/// `?uri=artha://…`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LsQuery {
    uri: String,
}

async fn ls(State(app): St, Params(q): Params<LsQuery>) -> Reply<serde_json::Value> {
    let uri: ArthaUri = q
        .uri
        .parse()
        .map_err(|e: Error| ApiError(e.with_context("field", "uri")))?;
    let l = app.engine.store().ls(&uri).await?;
    serde_json::to_value(&l)
        .map(Json)
        .map_err(|e| ApiError(Error::new(ErrorKind::Internal, e.to_string())))
}

const LS_Q: &[(&str, &str, &str)] = &[("uri", "string", "`artha://<cid>[/path]`")];

/// The storage routes.
pub(crate) fn table() -> Vec<Route> {
    use In::{Json as B, Nothing as N};
    use Out::Json as J;
    const Q: &[(&str, &str, &str)] = &[];
    vec![
        route!(post "/storage/push", "storage", "Push a file or tree on the daemon's host into the store and pin it (loopback callers only).", B("StoragePush"), Q, J(200, "Any"), push),
        route!(post "/storage/get", "storage", "Write what a URI names to a new path on the daemon's host (loopback callers only).", B("StorageGet"), Q, J(200, "Any"), get_to),
        route!(get "/storage/ls", "storage", "Describe what a URI names; list a directory.", N, LS_Q, J(200, "Any"), ls),
    ]
}
