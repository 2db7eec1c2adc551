//! [`S3BlobStore`]: blobs as objects in any S3-compatible store (AWS S3,
//! MinIO, Ceph, moto), through the `object_store` crate. Feature `s3`.
//!
//! Blob `cid` is the object `<prefix>/blobs/<64 hex>`. An S3 PUT is atomic
//! (the object appears whole or not at all), so a crashed writer leaves
//! nothing behind, and content addressing makes concurrent writes of the
//! same key harmless. Every read re-hashes the bytes. Pins and the push/GC
//! lock stay on the local machine (see [`crate::store::Svdb`]): GC of a
//! bucket prefix is safe when one engine owns that prefix.
//!
//! Endpoints: with no `endpoint` the AWS endpoint for the region is used;
//! `http://` endpoints are accepted for loopback hosts (a local MinIO or moto)
//! and otherwise only with `allow_http`. Credentials come from the config or
//! the usual `AWS_*` environment variables.

use std::sync::Arc;
use std::time::Duration;

use artha_core::hash::parse_hex32;
use artha_core::{Blake3Digest, BlobStore, Cid, Error, ErrorKind, Result};
use async_trait::async_trait;
use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjPath;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
};

use super::local::check_hash;

/// How to reach a bucket.
#[derive(Clone)]
pub struct S3Config {
    /// Bucket name (must exist).
    pub bucket: String,
    /// Key prefix under which the store lives (`""` for the bucket root).
    pub prefix: String,
    /// Endpoint URL, e.g. `http://127.0.0.1:9000`; `None` for AWS.
    pub endpoint: Option<String>,
    /// Region (default `us-east-1`, or `AWS_REGION`).
    pub region: Option<String>,
    /// Access key id (default: `AWS_ACCESS_KEY_ID`).
    pub access_key_id: Option<String>,
    /// Secret access key (default: `AWS_SECRET_ACCESS_KEY`).
    pub secret_access_key: Option<String>,
    /// Allow plain `http://` to a non-loopback endpoint.
    pub allow_http: bool,
    /// Retries of a failed request (with exponential backoff).
    pub max_retries: usize,
    /// Time limit of one request, and of all retries of it together.
    pub timeout: Duration,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "***"),
            )
            .field("allow_http", &self.allow_http)
            .field("max_retries", &self.max_retries)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl S3Config {
    /// A config for `bucket` with defaults: no prefix, AWS endpoint, three
    /// retries, 30 s per request.
    pub fn new(bucket: impl Into<String>) -> Self {
        S3Config {
            bucket: bucket.into(),
            prefix: String::new(),
            endpoint: None,
            region: None,
            access_key_id: None,
            secret_access_key: None,
            allow_http: false,
            max_retries: 3,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Blobs as objects in an S3-compatible bucket.
#[derive(Debug, Clone)]
pub struct S3BlobStore {
    store: Arc<dyn ObjectStore>,
    blobs: ObjPath,
    endpoint: String,
    bucket: String,
}

fn is_loopback_url(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or("");
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl S3BlobStore {
    /// Connects (lazily: no request is made until the first operation).
    pub fn new(config: S3Config) -> Result<Self> {
        let bad = |field: &str, msg: String| Error::invalid(field.to_string(), msg);
        if config.bucket.is_empty() {
            return Err(bad("bucket", "must not be empty".into()));
        }
        let prefix = config.prefix.trim_matches('/');
        let blobs = if prefix.is_empty() {
            ObjPath::from("blobs")
        } else {
            ObjPath::parse(format!("{prefix}/blobs"))
                .map_err(|e| bad("prefix", format!("not a valid key prefix: {e}")))?
        };
        let mut b = AmazonS3Builder::from_env()
            .with_bucket_name(&config.bucket)
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(5),
                    base: 2.0,
                },
                max_retries: config.max_retries,
                retry_timeout: config.timeout,
            });
        let mut options = ClientOptions::new()
            .with_timeout(config.timeout)
            .with_connect_timeout(config.timeout.min(Duration::from_secs(5)));
        let endpoint = match &config.endpoint {
            Some(ep) => {
                if ep.starts_with("http://") {
                    if !(config.allow_http || is_loopback_url(ep)) {
                        return Err(bad(
                            "endpoint",
                            format!(
                                "{ep} is plain http to a non-loopback host; use https or set allow_http"
                            ),
                        ));
                    }
                    options = options.with_allow_http(true);
                } else if !ep.starts_with("https://") {
                    return Err(bad(
                        "endpoint",
                        format!("{ep} must start with http:// or https://"),
                    ));
                }
                b = b.with_endpoint(ep).with_virtual_hosted_style_request(false);
                ep.clone()
            }
            None => "aws".to_string(),
        };
        b = b
            .with_client_options(options)
            .with_region(config.region.as_deref().unwrap_or("us-east-1"));
        if let Some(k) = &config.access_key_id {
            b = b.with_access_key_id(k);
        }
        if let Some(k) = &config.secret_access_key {
            b = b.with_secret_access_key(k);
        }
        let store = b.build().map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                "invalid S3 configuration".to_string(),
            )
            .with_context("bucket", config.bucket.clone())
            .with_context("endpoint", endpoint.clone())
            .with_source(e)
        })?;
        Ok(S3BlobStore {
            store: Arc::new(store),
            blobs,
            endpoint,
            bucket: config.bucket,
        })
    }

    /// The object key of blob `cid`.
    pub fn key(&self, cid: &Cid) -> ObjPath {
        self.blobs.clone().join(cid.to_hex())
    }

    /// The underlying object store client (for tooling and tests; writing
    /// under the blob prefix bypasses content addressing).
    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    fn err(&self, what: &str, cid: Option<&Cid>, e: object_store::Error) -> Error {
        use object_store::Error as E;
        let kind = match &e {
            E::NotFound { .. } => ErrorKind::NotFound,
            E::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            E::Precondition { .. } | E::NotModified { .. } => ErrorKind::Conflict,
            E::PermissionDenied { .. } | E::Unauthenticated { .. } => ErrorKind::PermissionDenied,
            E::NotSupported { .. } | E::NotImplemented { .. } => ErrorKind::Unsupported,
            E::InvalidPath { .. } | E::UnknownConfigurationKey { .. } => ErrorKind::InvalidInput,
            // Connection failures, timeouts and server errors after retries.
            _ => ErrorKind::Unavailable,
        };
        let msg = if kind == ErrorKind::NotFound {
            "unknown CID: no such blob in the store".to_string()
        } else if kind == ErrorKind::Unavailable {
            format!("cannot {what}: the S3 endpoint failed or is unreachable")
        } else {
            format!("cannot {what}")
        };
        let mut out = Error::new(kind, msg);
        if let Some(cid) = cid {
            out = out.with_context("cid", cid.to_string());
        }
        out.with_context("endpoint", self.endpoint.clone())
            .with_context("bucket", self.bucket.clone())
            .with_source(e)
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, data: Vec<u8>) -> Result<Cid> {
        let cid = Cid::of(&data);
        if self.has(&cid).await? {
            return Ok(cid);
        }
        self.store
            .put(&self.key(&cid), PutPayload::from(data))
            .await
            .map_err(|e| self.err("write a blob", Some(&cid), e))?;
        Ok(cid)
    }

    async fn get(&self, cid: &Cid) -> Result<Vec<u8>> {
        let key = self.key(cid);
        let data = async { self.store.get(&key).await?.bytes().await }
            .await
            .map_err(|e| self.err("read a blob", Some(cid), e))?;
        let location = std::path::PathBuf::from(format!("s3://{}/{key}", self.bucket));
        check_hash(cid, &data, &location)?;
        Ok(data.to_vec())
    }

    async fn has(&self, cid: &Cid) -> Result<bool> {
        match self.store.head(&self.key(cid)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.err("look up a blob", Some(cid), e)),
        }
    }

    async fn delete(&self, cid: &Cid) -> Result<()> {
        match self.store.delete(&self.key(cid)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err("delete a blob", Some(cid), e)),
        }
    }

    async fn list(&self) -> Result<Vec<Cid>> {
        let mut out = Vec::new();
        let mut s = self.store.list(Some(&self.blobs));
        while let Some(meta) = s.next().await {
            let meta = meta.map_err(|e| self.err("list blobs", None, e))?;
            let Some(name) = meta.location.filename() else {
                continue;
            };
            if let Ok(bytes) = parse_hex32("cid", name) {
                out.push(Cid::from_digest(Blake3Digest::from_bytes(bytes)));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_detection() {
        assert!(is_loopback_url("http://127.0.0.1:9000"));
        assert!(is_loopback_url("http://localhost:9000/"));
        assert!(is_loopback_url("http://[::1]:9000"));
        assert!(!is_loopback_url("http://10.0.0.1:9000"));
        assert!(!is_loopback_url("https://127.0.0.1"));
    }
}
