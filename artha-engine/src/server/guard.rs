//! What stands between a request and the engine: structured JSON errors
//! with the right status code, JSON and query extractors that name the
//! field they could not read, bearer-token auth, per-caller rate limits,
//! request timeouts and the latency histogram `/metrics` shows.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use artha_core::{Error, ErrorKind};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::AppState;
use crate::api::ErrorBody;

/// An engine error as an HTTP response.
#[derive(Debug)]
pub(crate) struct ApiError(pub(crate) Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

/// The HTTP status of an error kind. Nothing a caller can cause maps to a
/// 5xx except an engine fault (`internal`, `corrupted`) or a dependency
/// that is down (`unavailable`, `timeout`).
pub(crate) fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::AlreadyExists | ErrorKind::Conflict | ErrorKind::Cancelled => {
            StatusCode::CONFLICT
        }
        ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
        ErrorKind::InsufficientFunds => StatusCode::PAYMENT_REQUIRED,
        ErrorKind::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        // The engine cannot do this here (no runtime for it, not a
        // development chain), or the chain or the job refused it.
        ErrorKind::Unsupported | ErrorKind::Reverted | ErrorKind::JobFailed => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error_response(status_of(self.0.kind()), &self.0)
    }
}

/// `{"error": {...}}` with `status`.
pub(crate) fn error_response(status: StatusCode, e: &Error) -> Response {
    let mut r = (status, axum::Json(ErrorBody::from(e))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    r
}

/// The field a serde message names (`missing field `kind``, `unknown
/// variant …`, `… at line 1 column 7`).
fn serde_field(msg: &str) -> Option<String> {
    let start = msg.find('`')? + 1;
    let len = msg[start..].find('`')?;
    Some(msg[start..start + len].to_string())
}

/// A JSON value that did not deserialize, as a 400 naming the field the
/// message names (else `body`).
pub(crate) fn invalid_json(e: &serde_json::Error) -> ApiError {
    let msg = e.to_string();
    let field = serde_field(&msg).unwrap_or_else(|| "body".into());
    ApiError(Error::invalid(field, msg))
}

/// A JSON body whose problems come back as structured errors naming the
/// field (400), or the body (413 when over the limit, 415 without a JSON
/// content type).
#[derive(Debug)]
pub(crate) struct Body<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Body(v)),
            Err(rej) => Err(json_rejection(rej)),
        }
    }
}

fn json_rejection(rej: JsonRejection) -> Response {
    let status = rej.status();
    let text = rej.body_text();
    let (kind, field) = match &rej {
        JsonRejection::MissingJsonContentType(_) => {
            (ErrorKind::InvalidInput, "content-type".into())
        }
        JsonRejection::JsonDataError(_) => (
            ErrorKind::InvalidInput,
            serde_field(&text).unwrap_or_else(|| "body".into()),
        ),
        _ if status == StatusCode::PAYLOAD_TOO_LARGE => {
            (ErrorKind::ResourceExhausted, "body".to_string())
        }
        _ => (ErrorKind::InvalidInput, "body".into()),
    };
    let status = match status {
        StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNSUPPORTED_MEDIA_TYPE => status,
        _ => StatusCode::BAD_REQUEST,
    };
    error_response(status, &Error::new(kind, text).with_context("field", field))
}

/// A query string whose problems come back as structured errors (400).
#[derive(Debug)]
pub(crate) struct Params<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(q) => Ok(Params(q.0)),
            Err(rej) => Err(query_rejection(rej)),
        }
    }
}

fn query_rejection(rej: QueryRejection) -> Response {
    let text = rej.body_text();
    let field = serde_field(&text).unwrap_or_else(|| "query".into());
    error_response(
        StatusCode::BAD_REQUEST,
        &Error::invalid(field, text).with_context("route", "query"),
    )
}

/// Answers an unknown route (404) and a wrong method (405) in JSON.
pub(crate) async fn not_found(method: Method, uri: axum::http::Uri) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        &Error::new(ErrorKind::NotFound, "no such route")
            .with_context("method", method.to_string())
            .with_context("route", uri.path().chars().take(200).collect::<String>()),
    )
}

/// Routes that need no token: liveness, the API's description and the
/// metrics a scraper reads (counts only, no job data).
fn is_public(path: &str) -> bool {
    matches!(path, "/health" | "/openapi.json" | "/metrics")
}

/// Compares two secrets in time independent of where they differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The peer of a connection (set per connection by `serve`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub(crate) IpAddr);

/// Bearer-token auth (every route but the public ones), the rate limit of
/// the caller (its token, else its address), the request timeout, and the
/// latency of each route recorded for `/metrics`.
pub(crate) async fn guard(State(app): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let method = req.method().clone();
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let authorized = presented.is_some_and(|t| same_secret(t.as_bytes(), app.token.as_bytes()));
    let response = if !authorized && !is_public(req.uri().path()) {
        let msg = if presented.is_some() {
            "wrong bearer token"
        } else {
            "this route needs `Authorization: Bearer <token>` (the token is in the home's serve.token)"
        };
        error_response(
            StatusCode::UNAUTHORIZED,
            &Error::new(ErrorKind::PermissionDenied, msg),
        )
    } else {
        let caller = if authorized {
            "token".to_string()
        } else {
            req.extensions()
                .get::<Peer>()
                .map_or_else(|| "unknown".to_string(), |p| p.0.to_string())
        };
        match app.limiter.check(&caller) {
            Err(retry) => {
                let mut r = error_response(
                    StatusCode::TOO_MANY_REQUESTS,
                    &Error::new(ErrorKind::ResourceExhausted, "rate limit exceeded")
                        .with_context("retry_after_secs", retry.as_secs().max(1).to_string()),
                );
                if let Ok(v) = HeaderValue::from_str(&retry.as_secs().max(1).to_string()) {
                    r.headers_mut().insert(header::RETRY_AFTER, v);
                }
                r
            }
            Ok(()) => {
                match tokio::time::timeout(app.options.request_timeout, next.run(req)).await {
                    Ok(r) => r,
                    Err(_) => error_response(
                        StatusCode::REQUEST_TIMEOUT,
                        &Error::new(ErrorKind::Timeout, "the request took too long")
                            .with_context("limit", format!("{:?}", app.options.request_timeout)),
                    ),
                }
            }
        }
    };
    app.metrics
        .observe(&method, &route, response.status(), started.elapsed());
    response
}

/// Token buckets, one per caller: `burst` requests at once, refilled at
/// `per_sec`; `per_sec == 0` turns the limit off.
#[derive(Debug)]
pub(crate) struct Limiter {
    per_sec: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl Limiter {
    pub(crate) fn new(per_sec: u32, burst: u32) -> Self {
        Limiter {
            per_sec: f64::from(per_sec),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// `Ok` when `caller` may go on; else how long until it may.
    fn check(&self, caller: &str) -> Result<(), Duration> {
        if self.per_sec <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut b = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if b.len() > 10_000 {
            // Forget callers whose bucket is full again.
            let (per_sec, burst) = (self.per_sec, self.burst);
            b.retain(|_, (t, at)| *t + now.duration_since(*at).as_secs_f64() * per_sec < burst);
        }
        let (tokens, at) = b.entry(caller.to_string()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.per_sec).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / self.per_sec))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_allows_a_burst_then_refuses() {
        let l = Limiter::new(1, 3);
        assert!((0..3).all(|_| l.check("a").is_ok()));
        assert!(l.check("a").is_err());
        assert!(l.check("b").is_ok(), "callers have their own buckets");
        assert!(Limiter::new(0, 1).check("a").is_ok());
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
    }

    #[test]
    fn serde_messages_name_their_field() {
        assert_eq!(
            serde_field("missing field `kind` at line 1 column 2").as_deref(),
            Some("kind")
        );
        assert_eq!(serde_field("expected value"), None);
    }
}
