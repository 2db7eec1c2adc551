//! `/ai/dataset/*`, `/ai/model/*` and `/nodes`: the registries over HTTP.
//! Content is referenced by `artha://` URI (push it first: `arthai
//! storage-push`, or the client's `push`, which writes to the home's store).

use std::sync::Arc;

use artha_core::{ArthaUri, DatasetId, Error, KeccakHash, ModelId};
use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::AppState;
use super::guard::{ApiError, Body};
use super::openapi::{In, Out, Route, route};
use super::routes::Reply;
use crate::engine::{DatasetEntry, DatasetMeta, ModelEntry, ModelRegistration, NodeInfo};

type St = State<Arc<AppState>>;

fn parse<T: std::str::FromStr<Err = Error>>(field: &'static str, s: &str) -> Result<T, ApiError> {
    s.parse()
        .map_err(|e: Error| ApiError(e.with_context("field", field)))
}

/// The name of content registered without one: the last segment of its
/// URI's path, else `unnamed`.
pub(super) fn default_name(uri: &ArthaUri) -> String {
    uri.path()
        .rsplit('/')
        .find(|s| !s.is_empty())
        .map_or_else(|| "unnamed".to_string(), str::to_string)
}

/// `POST /ai/dataset/register`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DatasetBody {
    uri: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    license: Option<String>,
}

async fn dataset_register(
    State(app): St,
    Body(b): Body<DatasetBody>,
) -> Result<Response, ApiError> {
    let uri: ArthaUri = parse("uri", &b.uri)?;
    let license = match &b.license {
        Some(l) => Some(parse::<ArthaUri>("license", l)?),
        None => None,
    };
    let meta = DatasetMeta {
        name: b.name.unwrap_or_else(|| default_name(&uri)),
        tags: b.tags,
        license,
    };
    let d = app.engine.register_dataset(&uri, &meta).await?;
    Ok((axum::http::StatusCode::CREATED, Json(d)).into_response())
}

async fn dataset_list(State(app): St) -> Reply<Vec<DatasetEntry>> {
    Ok(Json(app.engine.datasets()?))
}

async fn dataset_get(State(app): St, Path(id): Path<String>) -> Reply<DatasetEntry> {
    let id: DatasetId = parse("dataset_id", &id)?;
    Ok(Json(app.engine.dataset(&id).await?))
}

/// `POST /ai/model/register`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelBody {
    uri: String,
    #[serde(default)]
    name: Option<String>,
    architecture: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    parent: Option<String>,
    #[serde(default)]
    dataset: Option<String>,
    #[serde(default)]
    code_hash: Option<String>,
}

async fn model_register(State(app): St, Body(b): Body<ModelBody>) -> Result<Response, ApiError> {
    let uri: ArthaUri = parse("uri", &b.uri)?;
    let reg = ModelRegistration {
        name: b.name.unwrap_or_else(|| default_name(&uri)),
        architecture: b.architecture,
        version: b.version,
        parent: b
            .parent
            .as_deref()
            .map(|p| parse::<ModelId>("parent", p))
            .transpose()?,
        dataset: b
            .dataset
            .as_deref()
            .map(|d| parse::<DatasetId>("dataset", d))
            .transpose()?,
        code_hash: b
            .code_hash
            .as_deref()
            .map(|h| parse::<KeccakHash>("code_hash", h))
            .transpose()?,
    };
    let m = app.engine.register_model(&uri, &reg).await?;
    Ok((axum::http::StatusCode::CREATED, Json(m)).into_response())
}

async fn model_list(State(app): St) -> Reply<Vec<ModelEntry>> {
    Ok(Json(app.engine.models()?))
}

async fn model_get(State(app): St, Path(id): Path<String>) -> Reply<ModelEntry> {
    let id: ModelId = parse("model_id", &id)?;
    Ok(Json(app.engine.model(&id).await?))
}

async fn model_lineage(State(app): St, Path(id): Path<String>) -> Reply<Vec<ModelEntry>> {
    let id: ModelId = parse("model_id", &id)?;
    Ok(Json(app.engine.lineage(&id).await?))
}

async fn nodes(State(app): St) -> Reply<Vec<NodeInfo>> {
    Ok(Json(app.engine.nodes().await?))
}

/// The registry routes.
pub(crate) fn table() -> Vec<Route> {
    use In::{Json as B, Nothing as N};
    use Out::Json as J;
    const Q: &[(&str, &str, &str)] = &[];
    vec![
        route!(post "/ai/dataset/register", "registry", "Register stored content as a dataset (licence and tags recorded on chain).", B("DatasetRegister"), Q, J(201, "Dataset"), dataset_register),
        route!(get "/ai/dataset/list", "registry", "Every registered dataset, newest first.", N, Q, J(200, "DatasetList"), dataset_list),
        route!(get "/ai/dataset/{id}", "registry", "A dataset, checked against the chain.", N, Q, J(200, "Dataset"), dataset_get),
        route!(post "/ai/model/register", "registry", "Register stored content as a model (architecture, version, code hash, parent, dataset).", B("ModelRegister"), Q, J(201, "Model"), model_register),
        route!(get "/ai/model/list", "registry", "Every registered model, newest first.", N, Q, J(200, "ModelList"), model_list),
        route!(get "/ai/model/{id}", "registry", "A model, checked against the chain.", N, Q, J(200, "Model"), model_get),
        route!(get "/ai/model/{id}/lineage", "registry", "A model and its ancestors, nearest first.", N, Q, J(200, "ModelList"), model_lineage),
        route!(get "/nodes", "nodes", "The nodes this engine knows, with their standing on chain.", N, Q, J(200, "NodeList"), nodes),
    ]
}
