//! Structured errors shared by every Artha crate.
//!
//! An [`Error`] carries a machine-readable [`ErrorKind`], a human message, the
//! context it happened in (`("field", "resources.gpus")`, `("cid", "b3:…")`, …),
//! an optional source error, and whether retrying the same call may succeed.
//! The model follows OpenDAL: callers branch on the kind, people read the
//! message and context, retry loops ask [`Error::is_retryable`].

use std::fmt;

/// What kind of failure an [`Error`] is. New kinds may be added in minor
/// releases, so match with a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The caller passed something malformed (a spec, a URI, an argument).
    InvalidInput,
    /// The named thing does not exist (an unknown CID, job or model id).
    NotFound,
    /// The thing being created already exists and may not be replaced.
    AlreadyExists,
    /// Stored or received data failed verification (hash mismatch, truncation).
    Corrupted,
    /// The caller is not allowed to do this (bad credential, wrong role).
    PermissionDenied,
    /// The budget or balance does not cover the cost.
    InsufficientFunds,
    /// A limit was hit: disk full, rate limit, no free GPU.
    ResourceExhausted,
    /// The operation conflicts with the current state (double finalize, a
    /// second engine on the same home, a job in the wrong phase).
    Conflict,
    /// A dependency is temporarily unreachable (RPC endpoint, docker daemon,
    /// S3). Retryable.
    Unavailable,
    /// The operation ran out of time. Retryable.
    Timeout,
    /// The operation was cancelled by a caller.
    Cancelled,
    /// The chain rejected a transaction (a revert with a decoded reason).
    Reverted,
    /// The feature or backend is not compiled in or not supported here.
    Unsupported,
    /// A bug or an invariant violation inside Artha.
    Internal,
    /// A job ran and failed (its runtime's reason is the message).
    JobFailed,
}

impl ErrorKind {
    /// A stable lower-case name for the kind, used in JSON output and in the
    /// exception class names of the bindings.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::NotFound => "not_found",
            ErrorKind::AlreadyExists => "already_exists",
            ErrorKind::Corrupted => "corrupted",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::InsufficientFunds => "insufficient_funds",
            ErrorKind::ResourceExhausted => "resource_exhausted",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Reverted => "reverted",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Internal => "internal",
            ErrorKind::JobFailed => "job_failed",
        }
    }

    /// Every kind.
    pub const ALL: [ErrorKind; 15] = [
        ErrorKind::InvalidInput,
        ErrorKind::NotFound,
        ErrorKind::AlreadyExists,
        ErrorKind::Corrupted,
        ErrorKind::PermissionDenied,
        ErrorKind::InsufficientFunds,
        ErrorKind::ResourceExhausted,
        ErrorKind::Conflict,
        ErrorKind::Unavailable,
        ErrorKind::Timeout,
        ErrorKind::Cancelled,
        ErrorKind::Reverted,
        ErrorKind::Unsupported,
        ErrorKind::Internal,
        ErrorKind::JobFailed,
    ];

    /// The kind [`as_str`](Self::as_str) names (`None` for an unknown name).
    pub fn from_name(name: &str) -> Option<ErrorKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Whether an error of this kind is, by default, worth retrying.
    pub const fn is_retryable_by_default(self) -> bool {
        matches!(self, ErrorKind::Unavailable | ErrorKind::Timeout)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The boxed source of an [`Error`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An Artha error: kind, message, context, optional source, retryability.
///
/// ```
/// use artha_core::{Error, ErrorKind};
/// let e = Error::new(ErrorKind::NotFound, "no such blob").with_context("cid", "b3:00…");
/// assert_eq!(e.kind(), ErrorKind::NotFound);
/// assert!(!e.is_retryable());
/// assert_eq!(e.to_string(), "not_found: no such blob (cid: b3:00…)");
/// ```
pub struct Error {
    kind: ErrorKind,
    message: String,
    context: Vec<(&'static str, String)>,
    source: Option<BoxError>,
    retryable: Option<bool>,
}

impl Error {
    /// A new error of `kind` with a human-readable `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            context: Vec::new(),
            source: None,
            retryable: None,
        }
    }

    /// Shorthand for an [`ErrorKind::InvalidInput`] error about `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidInput, message).with_context("field", field)
    }

    /// Adds a `(key, value)` pair saying where the error happened.
    #[must_use]
    pub fn with_context(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.context.push((key, value.into()));
        self
    }

    /// Names `field` as the input at fault, in place of any field named
    /// before (a parser's own name for it): the outermost caller knows the
    /// name its user wrote.
    #[must_use]
    pub fn at_field(mut self, field: impl Into<String>) -> Self {
        self.context.retain(|(k, _)| *k != "field");
        self.context.insert(0, ("field", field.into()));
        self
    }

    /// Attaches the underlying cause.
    #[must_use]
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Overrides the kind's default retryability.
    #[must_use]
    pub fn with_retryable(mut self, retryable: bool) -> Self {
        self.retryable = Some(retryable);
        self
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The human-readable message, without context.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The context pairs, in the order they were added.
    pub fn context(&self) -> &[(&'static str, String)] {
        &self.context
    }

    /// The value of the first context pair named `key`.
    pub fn context_value(&self, key: &str) -> Option<&str> {
        self.context
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether repeating the same call may succeed.
    pub fn is_retryable(&self) -> bool {
        self.retryable
            .unwrap_or_else(|| self.kind.is_retryable_by_default())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)?;
        if !self.context.is_empty() {
            f.write_str(" (")?;
            for (i, (k, v)) in self.context.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{k}: {v}")?;
            }
            f.write_str(")")?;
        }
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("context", &self.context)
            .field("source", &self.source)
            .field("retryable", &self.is_retryable())
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// `Result` with an Artha [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One problem found by a `validate()`: the dotted path of the field and what
/// is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FieldError {
    /// Dotted path of the offending field, e.g. `resources.gpus` or `env.PATH`.
    pub field: String,
    /// What is wrong, e.g. `must be ≤ 8`.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Every problem a validation found (never empty when returned as an error).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationErrors(Vec<FieldError>);

impl ValidationErrors {
    /// An empty collection.
    pub fn new() -> Self {
        ValidationErrors(Vec::new())
    }

    /// Records a problem with `field`.
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    /// Whether no problem was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The problems, in the order found.
    pub fn errors(&self) -> &[FieldError] {
        &self.0
    }

    /// Whether some problem concerns exactly `field`.
    pub fn has(&self, field: &str) -> bool {
        self.0.iter().any(|e| e.field == field)
    }

    /// `Ok(())` when empty, else `Err(self)`.
    pub fn into_result(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

impl From<ValidationErrors> for Error {
    fn from(v: ValidationErrors) -> Self {
        let mut e = Error::new(
            ErrorKind::InvalidInput,
            format!("{} problem(s): {v}", v.0.len()),
        );
        for fe in &v.0 {
            e = e.with_context("field", fe.field.clone());
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_follows_kind_unless_overridden() {
        assert!(Error::new(ErrorKind::Unavailable, "rpc down").is_retryable());
        assert!(Error::new(ErrorKind::Timeout, "slow").is_retryable());
        assert!(!Error::new(ErrorKind::InvalidInput, "bad").is_retryable());
        assert!(
            !Error::new(ErrorKind::Unavailable, "gone for good")
                .with_retryable(false)
                .is_retryable()
        );
    }

    #[test]
    fn display_includes_context_and_source() {
        let io = std::io::Error::other("disk on fire");
        let e = Error::new(ErrorKind::Internal, "write failed")
            .with_context("path", "/x")
            .with_source(io);
        assert_eq!(
            e.to_string(),
            "internal: write failed (path: /x): disk on fire"
        );
        assert!(std::error::Error::source(&e).is_some());
        assert_eq!(e.context_value("path"), Some("/x"));
    }

    #[test]
    fn validation_errors_convert_with_every_field() {
        let mut v = ValidationErrors::new();
        v.push("a.b", "must be ≥ 1");
        v.push("c", "must not be empty");
        let e: Error = v.into();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        let fields: Vec<_> = e.context().iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(fields, ["a.b", "c"]);
        assert!(
            e.to_string()
                .contains("a.b: must be ≥ 1; c: must not be empty")
        );
    }
}
