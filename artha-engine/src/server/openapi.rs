//! The route table — the one list the router is built from and the OpenAPI
//! 3.0 document (`/openapi.json`) is generated from, so the two cannot
//! disagree — and the schemas of the bodies.

use artha_core::JobKind;
use axum::routing::{MethodRouter, get, post};
use serde_json::{Value, json};

use super::routes as r;

/// What a route takes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum In {
    /// No body.
    Nothing,
    /// A JSON body of this schema (a name under `components.schemas`).
    Json(&'static str),
    /// An optional JSON body of this schema.
    OptionalJson(&'static str),
}

/// What a route answers with on success.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Out {
    /// JSON of this schema, with this status.
    Json(u16, &'static str),
    /// JSON (`follow=false`) or newline-delimited JSON (`follow=true`).
    JsonOrStream(&'static str),
    /// Newline-delimited JSON values of this schema.
    Stream(&'static str),
    /// Prometheus text.
    Text,
}

/// One route of the API.
pub(crate) struct Route {
    pub(crate) method: &'static str,
    pub(crate) path: &'static str,
    pub(crate) summary: &'static str,
    pub(crate) tag: &'static str,
    pub(crate) body: In,
    pub(crate) query: &'static [(&'static str, &'static str, &'static str)],
    pub(crate) out: Out,
    pub(crate) handler: MethodRouter<std::sync::Arc<super::AppState>>,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

macro_rules! route {
    ($m:ident $path:literal, $tag:literal, $summary:literal, $body:expr, $q:expr, $out:expr, $h:expr) => {
        Route {
            method: stringify!($m),
            path: $path,
            summary: $summary,
            tag: $tag,
            body: $body,
            query: $q,
            out: $out,
            handler: $m($h),
        }
    };
}
pub(crate) use route;

const LOGS_Q: &[(&str, &str, &str)] = &[
    ("since", "integer", "Skip the first N lines."),
    (
        "follow",
        "boolean",
        "Stream lines as they come until the job ends.",
    ),
];
const SUBMIT_Q: &[(&str, &str, &str)] = &[(
    "hold",
    "boolean",
    "Record the job (checked, Accepted) but start it only on `/job/{id}/release`.",
)];
const EVENTS_Q: &[(&str, &str, &str)] = &[(
    "progress",
    "boolean",
    "Phases and progress only (no logs, receipts, artifacts).",
)];

/// Every route.
pub(crate) fn table() -> Vec<Route> {
    use In::{Json as B, Nothing as N, OptionalJson as OB};
    use Out::{Json as J, JsonOrStream, Stream, Text};
    let mut v = vec![
        route!(get "/health", "service", "Liveness, and who this engine is.", N, &[], J(200, "EngineInfo"), r::health),
        route!(get "/metrics", "service", "Prometheus metrics.", N, &[], Text, r::metrics),
        route!(get "/openapi.json", "service", "This document.", N, &[], J(200, "Any"), r::openapi),
        route!(get "/stats", "proofs", "Proof submission and settlement statistics.", N, &[], J(200, "Stats"), r::stats),
        route!(post "/ai/train", "ai", "Submit a training job (a job spec; `kind` is implied, a missing budget means the estimate).", B("JobSpec"), SUBMIT_Q, J(201, "Submitted"), r::submitter(Some(JobKind::Train))),
        route!(post "/ai/infer", "ai", "Submit an inference job.", B("JobSpec"), SUBMIT_Q, J(201, "Submitted"), r::submitter(Some(JobKind::Infer))),
        route!(post "/ai/agent", "ai", "Submit an agent job (validated; refused with `unsupported` while no executor runs its runtime).", B("JobSpec"), SUBMIT_Q, J(201, "Submitted"), r::submitter(Some(JobKind::Agent))),
        route!(post "/ai/job/estimate", "ai", "What a job spec may cost and how long it may run.", B("JobSpec"), &[], J(200, "JobEstimate"), r::estimate),
        route!(get "/ai/job/list", "ai", "Every job, newest first.", N, &[], J(200, "JobSummaryList"), r::jobs),
        route!(get "/ai/job/{id}", "ai", "A job's status.", N, &[], J(200, "JobStatus"), r::status),
        route!(post "/ai/job/{id}/cancel", "ai", "Cancel a job that has not finished running.", N, &[], J(200, "JobStatus"), r::stop),
        route!(get "/ai/job/{id}/logs", "ai", "A job's output lines.", N, LOGS_Q, JsonOrStream("LogLine"), r::logs),
        route!(get "/ai/job/{id}/events", "ai", "A job's events as they happen (newline-delimited JSON).", N, EVENTS_Q, Stream("JobEvent"), r::events),
        route!(post "/job/start", "jobs", "Submit a job spec of any kind.", B("JobSpec"), SUBMIT_Q, J(201, "Submitted"), r::submitter(None)),
        route!(post "/job/{id}/release", "jobs", "Start a job submitted with `hold=true`.", N, &[], J(200, "JobStatus"), r::release),
        route!(post "/job/{id}/stop", "jobs", "Stop (cancel) a job.", N, &[], J(200, "JobStatus"), r::stop),
        route!(get "/job/{id}/logs", "jobs", "A job's output lines; `follow=true` streams them.", N, LOGS_Q, JsonOrStream("LogLine"), r::logs),
        route!(get "/job/{id}/status", "jobs", "A job's status.", N, &[], J(200, "JobStatus"), r::status),
        route!(get "/job/{id}/events", "jobs", "A job's events as they happen (newline-delimited JSON).", N, EVENTS_Q, Stream("JobEvent"), r::events),
        route!(get "/jobs", "jobs", "Every job, newest first.", N, &[], J(200, "JobSummaryList"), r::jobs),
        route!(post "/proof/submit", "proofs", "A job's proof commitment (the engine commits when a job ends): its receipt.", B("JobRef"), &[], J(200, "ReceiptRecord"), r::proof_submit),
        route!(post "/finalize", "proofs", "Settle every job whose challenge period passed; with a job id, fail (409) unless it settled.", OB("FinalizeBody"), &[], J(200, "SettleReport"), r::finalize),
        route!(get "/finalize/due", "proofs", "Committed jobs waiting for their challenge period, with when they settle.", N, &[], J(200, "DueJobList"), r::due),
        route!(get "/proofs/{job_id}", "proofs", "The proof manifest a job committed.", N, &[], J(200, "ProofManifest"), r::proofs),
        route!(post "/verify/{job_id}", "proofs", "Audit a committed job by deterministic replay (windows drawn from the chain's audit seed); with `challenge`, dispute a fraud before a jury.", OB("VerifyRequest"), &[], J(200, "VerifyOutcome"), r::verify),
        route!(post "/dev/advance", "dev", "Move a development chain's clock forward (409/422 elsewhere).", B("AdvanceBody"), &[], J(200, "ChainTime"), r::dev_advance),
    ];
    v.extend(super::registry_routes::table());
    v.extend(super::storage_routes::table());
    v
}

/// The OpenAPI 3.0 document of [`table`].
pub(crate) fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for rt in table() {
        let mut params: Vec<Value> = Vec::new();
        for seg in rt.path.split('/') {
            if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                params.push(json!({"name": name, "in": "path", "required": true,
                                   "schema": {"type": "string", "maxLength": 200}}));
            }
        }
        for (name, ty, desc) in rt.query {
            params.push(json!({"name": name, "in": "query", "required": false,
                               "description": desc, "schema": {"type": ty}}));
        }
        let ok = match rt.out {
            Out::Json(code, schema) => (
                code,
                json!({"description": "OK", "content": {"application/json": {"schema": schema_ref(schema)}}}),
            ),
            Out::JsonOrStream(schema) => (
                200,
                json!({"description": "OK", "content": {
                    "application/json": {"schema": {"type": "array", "items": schema_ref(schema)}},
                    "application/x-ndjson": {"schema": schema_ref(schema)}}}),
            ),
            Out::Stream(schema) => (
                200,
                json!({"description": "OK", "content": {"application/x-ndjson": {"schema": schema_ref(schema)}}}),
            ),
            Out::Text => (
                200,
                json!({"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}),
            ),
        };
        let mut responses = serde_json::Map::new();
        responses.insert(ok.0.to_string(), ok.1);
        let public = matches!(rt.path, "/health" | "/metrics" | "/openapi.json");
        let errors: &[(&str, &str)] = &[
            ("400", "Invalid input (the field is named)."),
            ("401", "Missing or wrong bearer token."),
            ("402", "Budget or balance too small."),
            ("403", "Refused by policy."),
            ("404", "Unknown job, model, dataset or route."),
            ("408", "The request took too long."),
            ("409", "Conflicts with the current state."),
            ("413", "Body over the limit."),
            ("415", "Body is not JSON."),
            (
                "422",
                "Cannot be done here (no runtime, not a development chain, reverted).",
            ),
            ("429", "Rate limit (see Retry-After)."),
        ];
        for (code, desc) in errors {
            responses.insert(
                (*code).to_string(),
                json!({"description": desc, "content": {"application/json": {"schema": schema_ref("Error")}}}),
            );
        }
        let mut op = json!({
            "summary": rt.summary,
            "operationId": format!("{}{}", rt.method, rt.path.replace(['/', '{', '}', '.'], "_")),
            "tags": [rt.tag],
            "parameters": params,
            "responses": responses,
        });
        if !public {
            op["security"] = json!([{"bearer": []}]);
        }
        match rt.body {
            In::Nothing => {}
            In::Json(s) | In::OptionalJson(s) => {
                op["requestBody"] = json!({
                    "required": matches!(rt.body, In::Json(_)),
                    "content": {"application/json": {"schema": schema_ref(s)}}
                });
            }
        }
        let entry = paths
            .entry(rt.path.to_string())
            .or_insert_with(|| json!({}));
        entry[rt.method] = op;
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Artha engine API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The REST API of `arthai serve`: the engine's typed Job API over HTTP. Errors are `{\"error\": {\"kind\", \"message\", \"field\", \"context\", \"retryable\"}}`."
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas(),
        }
    })
}

fn schema_ref(name: &str) -> Value {
    if name == "Any" {
        return json!({"type": "object"});
    }
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn schemas() -> Value {
    let obj = json!({"type": "object"});
    let id = json!({"type": "string", "maxLength": 200});
    json!({
        "Any": obj,
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {
            "type": "object", "required": ["kind", "message"], "properties": {
                "kind": {"type": "string"}, "message": {"type": "string"},
                "field": {"type": "string", "nullable": true},
                "context": {"type": "array", "items": {"type": "array", "items": {"type": "string"}}},
                "retryable": {"type": "boolean"}}}}},
        "JobSpec": {"type": "object", "required": ["runtime"], "properties": {
            "kind": {"type": "string", "enum": ["train", "infer", "agent"]},
            "runtime": {"description": "`{\"native\": \"mlp\"}` or `{\"image\": \"artha/torch-runtime:v1\"}`", "type": "object"},
            "model": {"type": "string", "description": "`model-…` or `artha://…`"},
            "dataset": {"type": "string", "description": "`dataset-…` or `artha://…`"},
            "hyper": {"type": "object", "properties": {
                "epochs": {"type": "integer", "minimum": 0}, "batch_size": {"type": "integer", "minimum": 0},
                "learning_rate": {"type": "number"}, "seed": {"type": "integer", "minimum": 0},
                "extra": {"type": "object"}}},
            "resources": {"type": "object", "properties": {
                "gpus": {"type": "integer", "minimum": 0}, "gpu_memory_mib": {"type": "integer", "minimum": 0},
                "cpu_millis": {"type": "integer", "minimum": 0}, "memory_mib": {"type": "integer", "minimum": 0},
                "max_duration_secs": {"type": "integer", "minimum": 0}}},
            "budget": {"type": "string", "description": "`1000 ARTH` or `1 wei`; absent: the estimate"},
            "proof_window": {"type": "integer", "minimum": 0},
            "env": {"type": "object", "additionalProperties": {"type": "string"}}}},
        "Submitted": {"type": "object", "required": ["job_id", "status", "estimate"], "properties": {
            "job_id": id, "status": {"$ref": "#/components/schemas/JobStatus"},
            "estimate": {"$ref": "#/components/schemas/JobEstimate"}}},
        "JobEstimate": {"type": "object", "required": ["gpu_seconds", "cost", "rate", "duration_secs"], "properties": {
            "gpu_seconds": {"type": "integer"}, "cost": {"type": "string"}, "rate": {"type": "string"},
            "duration_secs": {"type": "integer"}, "devices": {"type": "integer"}}},
        "JobStatus": {"type": "object", "required": ["job_id", "status"], "properties": {
            "job_id": id, "status": {"type": "string"}}},
        "JobSummaryList": {"type": "array", "items": {"type": "object", "required": ["job_id", "status", "phase", "kind"]}},
        "LogLine": {"type": "object", "required": ["seq", "stderr", "text"], "properties": {
            "seq": {"type": "integer"}, "stderr": {"type": "boolean"}, "text": {"type": "string"}}},
        "JobEvent": {"type": "object", "required": ["event"]},
        "JobRef": {"type": "object", "required": ["job_id"], "additionalProperties": false,
                   "properties": {"job_id": id}},
        "FinalizeBody": {"type": "object", "additionalProperties": false, "properties": {"job_id": id}},
        "ReceiptRecord": obj,
        "SettleReport": {"type": "object", "required": ["settled", "pending", "chain_time"]},
        "DueJobList": {"type": "array", "items": {"type": "object", "required": ["job_id", "settles_at", "in_secs"]}},
        "ProofManifest": obj,
        "VerifyRequest": {"type": "object", "additionalProperties": false, "properties": {
            "sample": {"type": "integer", "minimum": 1}, "windows": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "all": {"type": "boolean"}, "challenge": {"type": "boolean"}}},
        "VerifyOutcome": {"type": "object", "required": ["audit"], "properties": {
            "audit": {"type": "object", "required": ["job_id", "verdict", "windows"], "properties": {
                "verdict": {"type": "string", "enum": ["valid", "fraud", "unverifiable"]}}},
            "dispute": obj}},
        "AdvanceBody": {"type": "object", "required": ["secs"], "additionalProperties": false,
                        "properties": {"secs": {"type": "integer", "minimum": 1, "maximum": 315_360_000_u64}}},
        "ChainTime": {"type": "object", "required": ["chain_time"]},
        "Stats": {"type": "object", "required": ["jobs", "proof_commits"]},
        "EngineInfo": {"type": "object", "required": ["status", "version", "node_id"]},
        "DatasetRegister": {"type": "object", "required": ["uri"], "additionalProperties": false, "properties": {
            "uri": {"type": "string", "description": "`artha://…` of stored content"},
            "name": {"type": "string", "maxLength": 128}, "tags": {"type": "string", "maxLength": 1024},
            "license": {"type": "string", "description": "`artha://…` of the licence text"}}},
        "ModelRegister": {"type": "object", "required": ["uri", "architecture"], "additionalProperties": false, "properties": {
            "uri": {"type": "string"}, "name": {"type": "string", "maxLength": 128},
            "architecture": {"type": "string", "maxLength": 128}, "version": {"type": "string", "maxLength": 128},
            "parent": {"type": "string"}, "dataset": {"type": "string"},
            "code_hash": {"type": "string", "description": "0x + 64 hex digits"}}},
        "StoragePush": {"type": "object", "required": ["path"], "additionalProperties": false, "properties": {
            "path": {"type": "string"}, "replicas": {"type": "integer", "minimum": 1, "maximum": 64},
            "months": {"type": "integer", "minimum": 1, "maximum": 120}}},
        "StorageGet": {"type": "object", "required": ["uri", "dest"], "additionalProperties": false, "properties": {
            "uri": {"type": "string"}, "dest": {"type": "string"}}},
        "Dataset": obj,
        "DatasetList": {"type": "array", "items": obj},
        "Model": obj,
        "ModelList": {"type": "array", "items": obj},
        "NodeList": {"type": "array", "items": obj},
    })
}
