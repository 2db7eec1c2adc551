//! The engine's configuration file, `<home>/artha.toml`, and its `ARTHA_*`
//! environment overrides.
//!
//! Every key is optional; an absent file means every default. Precedence is
//! defaults < file < environment. Unknown keys, wrong types and bad values are
//! refused with an [`ErrorKind::InvalidInput`] error whose context names the
//! key (`field: gpus.count`) and the file (`file: /home/artha.toml:3:9`), or
//! the environment variable (`env: ARTHA_GPU_INVENTORY`). The keys, defaults and
//! variables are documented with a full example in `docs/CONFIG.md`:
//!
//! | key | default | meaning |
//! |-----|---------|---------|
//! | `store.url` | `"local"` | `"local"` (the SVDB under the home) or `"s3://bucket[/prefix]"` |
//! | `store.endpoint` | AWS | S3-compatible endpoint, e.g. `"http://127.0.0.1:9000"` |
//! | `store.region` | SDK default | S3 region |
//! | `store.allow_http` | true iff `endpoint` is `http://` | plain HTTP to the endpoint |
//! | `chain.kind` | `"embedded"`, or `"rpc"` when `chain.rpc` is set | the in-process EVM or a JSON-RPC chain |
//! | `chain.rpc` | — | `http(s)://` JSON-RPC URL |
//! | `chain.<party>_key_file` | — | key file of `admin`, `scheduler`, `operator`, `submitter`, `verifier`; all but `admin` are required with `rpc` (the admin's deploys the contracts and certifies this node); relative paths resolve against the home |
//! | `gpus.source` | `"auto"` | `"nvml"`, `"simulated"` or `"auto"` (NVML when a driver answers, else simulated) |
//! | `gpus.count` | 4 | simulated devices, 1..=64 (ignored with `nvml`) |
//! | `gpus.memory_mib` | 16384 | memory of each simulated device, ≥ 1 |
//! | `executors.docker` | `"auto"` | `"auto"`, `"required"` or `"off"` |
//! | `executors.native_runtime` | — | program that runs native runtimes (relative: against the home) |
//! | `node.rate_wei_per_gpu_second` | 10^15 (0.001 ARTH) | price; a TOML integer or a decimal string |
//! | `node.region` | `"local"` | region label of this node |
//! | `policy.budget_cap_wei` | 10^24 (1 000 000 ARTH) | largest budget per job of the local credential |
//!
//! Secrets never live in this file: S3 credentials come from
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, chain
//! keys from key files (see [`read_key_file`]). Environment overrides (an
//! empty value counts as unset): `ARTHA_STORE`, `ARTHA_S3_ENDPOINT`,
//! `ARTHA_CHAIN_RPC` (a URL, or `embedded`), `ARTHA_GPU_INVENTORY` (`nvml`, `auto`,
//! `simulated`, `simulated:N` or `simulated:N:MEM`), `ARTHA_DOCKER`,
//! `ARTHA_RATE_WEI`.

use std::fmt;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use artha_core::money::WEI_PER_ARTH;
use artha_core::{Amount, Error, ErrorKind, Result, ValidationErrors};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use toml::de::DeTable;

use crate::engine::{DEFAULT_RATE_WEI, DockerChoice};

/// The name of the configuration file in the engine home.
pub const FILE_NAME: &str = "artha.toml";
/// Default number of simulated GPUs.
pub const DEFAULT_SIMULATED_GPUS: u32 = 4;
/// The most simulated GPUs allowed.
pub const MAX_SIMULATED_GPUS: u32 = 64;
/// Default memory of one simulated GPU, in MiB.
pub const DEFAULT_GPU_MEMORY_MIB: u64 = 16_384;
/// Default largest budget per job of the local credential (1 000 000 ARTH).
pub const DEFAULT_BUDGET_CAP_WEI: u128 = 1_000_000 * WEI_PER_ARTH;
/// Default region label of the node.
pub const DEFAULT_REGION: &str = "local";

/// The parsed configuration. [`Config::default`] is the engine's defaults.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Config {
    /// The file it was read from, if any (named in validation errors).
    #[serde(skip)]
    pub source: Option<PathBuf>,
    /// `[store]`: where the SVDB keeps its blobs.
    pub store: StoreConfig,
    /// `[chain]`: the EVM chain the contracts run on.
    pub chain: ChainConfig,
    /// `[gpus]`: where the GPU inventory comes from.
    pub gpus: GpuConfig,
    /// `[executors]`: which executors run jobs.
    pub executors: ExecutorConfig,
    /// `[node]`: this node's price and region.
    pub node: NodeConfig,
    /// `[policy]`: limits of the local identity.
    pub policy: PolicyConfig,
}

/// `[store]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct StoreConfig {
    /// `store.url`.
    pub url: StoreUrl,
    /// `store.endpoint`: an `http(s)://` URL; `None` for AWS.
    pub endpoint: Option<String>,
    /// `store.region`.
    pub region: Option<String>,
    /// `store.allow_http` as written; see [`StoreConfig::allows_http`].
    pub allow_http: Option<bool>,
    /// From `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`
    /// (read by [`Config::apply_env`] for an S3 store only).
    #[serde(skip)]
    pub credentials: Option<S3Credentials>,
}

impl StoreConfig {
    /// Whether plain HTTP is allowed: `allow_http`, defaulting to whether the
    /// endpoint is an `http://` URL.
    pub fn allows_http(&self) -> bool {
        let http = self
            .endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://"));
        self.allow_http.unwrap_or(http)
    }
}

/// `store.url`: `local` or `s3://bucket[/prefix]` (one trailing `/` allowed).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StoreUrl {
    /// The local SVDB under the home.
    #[default]
    Local,
    /// An S3-compatible bucket.
    S3 {
        /// The bucket name.
        bucket: String,
        /// Key prefix without leading or trailing `/` (`""`: bucket root).
        prefix: String,
    },
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Local => f.write_str("local"),
            StoreUrl::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            StoreUrl::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

impl FromStr for StoreUrl {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        parse_store_url(s).map_err(|m| Error::invalid("store.url", m))
    }
}

impl Serialize for StoreUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Res<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// S3 credentials from the environment. `Debug` hides the secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Credentials {
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: String,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: String,
    /// `AWS_SESSION_TOKEN`.
    pub session_token: Option<String>,
}

impl fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"***")
            .field("session_token", &self.session_token.as_ref().map(|_| "***"))
            .finish()
    }
}

/// `[chain]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ChainConfig {
    /// `chain.kind` and `chain.rpc`.
    pub mode: ChainMode,
    /// `chain.<party>_key_file`, resolved against the home.
    pub keys: KeyFiles,
}

/// The embedded chain or a JSON-RPC endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChainMode {
    /// The in-process EVM.
    #[default]
    Embedded,
    /// Any EVM chain at `url`.
    Rpc {
        /// `http(s)://` JSON-RPC URL.
        url: String,
    },
}

/// Key files of the five parties (absolute paths once parsed).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct KeyFiles {
    /// `chain.admin_key_file`: deploys and administers the contracts.
    pub admin: Option<PathBuf>,
    /// `chain.scheduler_key_file`.
    pub scheduler: Option<PathBuf>,
    /// `chain.operator_key_file`: the node operator.
    pub operator: Option<PathBuf>,
    /// `chain.submitter_key_file`: pays for jobs.
    pub submitter: Option<PathBuf>,
    /// `chain.verifier_key_file`.
    pub verifier: Option<PathBuf>,
}

impl KeyFiles {
    /// `(party, path)` for each party, in the order above.
    pub fn entries(&self) -> [(&'static str, Option<&Path>); 5] {
        [
            ("admin", self.admin.as_deref()),
            ("scheduler", self.scheduler.as_deref()),
            ("operator", self.operator.as_deref()),
            ("submitter", self.submitter.as_deref()),
            ("verifier", self.verifier.as_deref()),
        ]
    }
}

/// `[gpus]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GpuConfig {
    /// `gpus.source`.
    pub source: GpuSource,
    /// `gpus.count`: simulated devices (also the `auto` fallback).
    pub count: u32,
    /// `gpus.memory_mib`: memory of each simulated device.
    pub memory_mib: u64,
}

impl Default for GpuConfig {
    fn default() -> Self {
        GpuConfig {
            source: GpuSource::Auto,
            count: DEFAULT_SIMULATED_GPUS,
            memory_mib: DEFAULT_GPU_MEMORY_MIB,
        }
    }
}

/// Where the GPU inventory comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GpuSource {
    /// NVML when a driver answers, else simulated.
    #[default]
    Auto,
    /// NVML only.
    Nvml,
    /// `count` simulated devices.
    Simulated,
}

/// `[executors]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecutorConfig {
    /// `executors.docker`.
    #[serde(serialize_with = "ser_docker")]
    pub docker: DockerChoice,
    /// `executors.native_runtime`, resolved against the home.
    pub native_runtime: Option<PathBuf>,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        ExecutorConfig {
            docker: DockerChoice::Auto,
            native_runtime: None,
        }
    }
}

/// `[node]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeConfig {
    /// `node.rate_wei_per_gpu_second`.
    pub rate_wei_per_gpu_second: Amount,
    /// `node.region`.
    pub region: String,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            rate_wei_per_gpu_second: Amount::from_wei(DEFAULT_RATE_WEI),
            region: DEFAULT_REGION.into(),
        }
    }
}

/// `[policy]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyConfig {
    /// `policy.budget_cap_wei`.
    pub budget_cap_wei: Amount,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            budget_cap_wei: Amount::from_wei(DEFAULT_BUDGET_CAP_WEI),
        }
    }
}

/// A value parser's result; the message names no key (callers add it).
type Res<T, E = String> = std::result::Result<T, E>;

// ---- the file as written ----

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawConfig {
    store: RawStore,
    chain: RawChain,
    gpus: RawGpus,
    executors: RawExecutors,
    node: RawNode,
    policy: RawPolicy,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawStore {
    #[serde(deserialize_with = "de_store_url")]
    url: Option<StoreUrl>,
    #[serde(deserialize_with = "de_http_url")]
    endpoint: Option<String>,
    region: Option<String>,
    allow_http: Option<bool>,
}

#[derive(Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum RawChainKind {
    Embedded,
    Rpc,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawChain {
    kind: Option<RawChainKind>,
    #[serde(deserialize_with = "de_http_url")]
    rpc: Option<String>,
    admin_key_file: Option<PathBuf>,
    scheduler_key_file: Option<PathBuf>,
    operator_key_file: Option<PathBuf>,
    submitter_key_file: Option<PathBuf>,
    verifier_key_file: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawGpus {
    source: Option<GpuSource>,
    count: Option<u32>,
    memory_mib: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawExecutors {
    #[serde(deserialize_with = "de_docker")]
    docker: Option<DockerChoice>,
    native_runtime: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawNode {
    #[serde(deserialize_with = "de_wei")]
    rate_wei_per_gpu_second: Option<Amount>,
    region: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawPolicy {
    #[serde(deserialize_with = "de_wei")]
    budget_cap_wei: Option<Amount>,
}

fn de_parsed<'de, D: Deserializer<'de>, T>(
    d: D,
    parse: fn(&str) -> Res<T>,
) -> Res<Option<T>, D::Error> {
    let s = String::deserialize(d)?;
    parse(&s).map(Some).map_err(de::Error::custom)
}

fn de_store_url<'de, D: Deserializer<'de>>(d: D) -> Res<Option<StoreUrl>, D::Error> {
    de_parsed(d, parse_store_url)
}

fn de_http_url<'de, D: Deserializer<'de>>(d: D) -> Res<Option<String>, D::Error> {
    de_parsed(d, parse_http_url)
}

fn de_docker<'de, D: Deserializer<'de>>(d: D) -> Res<Option<DockerChoice>, D::Error> {
    de_parsed(d, parse_docker)
}

fn ser_docker<S: Serializer>(d: &DockerChoice, s: S) -> Res<S::Ok, S::Error> {
    s.serialize_str(match d {
        DockerChoice::Auto => "auto",
        DockerChoice::Required => "required",
        DockerChoice::Off => "off",
    })
}

fn de_wei<'de, D: Deserializer<'de>>(d: D) -> Res<Option<Amount>, D::Error> {
    struct Wei;
    impl Visitor<'_> for Wei {
        type Value = Amount;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a non-negative integer number of wei (a TOML integer, or a string of decimal digits)")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Res<Amount, E> {
            u128::try_from(v)
                .map(Amount::from_wei)
                .map_err(|_| E::custom(format!("{v} is negative; wei must be ≥ 0")))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Res<Amount, E> {
            Ok(Amount::from_wei(v.into()))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Res<Amount, E> {
            parse_wei(v).map_err(E::custom)
        }
    }
    d.deserialize_any(Wei).map(Some)
}

// ---- value parsers (the message names no key; callers add it) ----

fn parse_wei(s: &str) -> Res<Amount> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "`{s}` is not a non-negative integer number of wei (decimal digits only)"
        ));
    }
    s.parse::<u128>()
        .map(Amount::from_wei)
        .map_err(|_| format!("`{s}` is above the largest amount (2^128 - 1 wei)"))
}

fn parse_docker(s: &str) -> Res<DockerChoice> {
    match s {
        "auto" => Ok(DockerChoice::Auto),
        "required" => Ok(DockerChoice::Required),
        "off" => Ok(DockerChoice::Off),
        _ => Err(format!("`{s}` is not one of `auto`, `required`, `off`")),
    }
}

fn parse_http_url(s: &str) -> Res<String> {
    let rest = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"));
    let Some(rest) = rest else {
        return Err(format!("`{s}` is not an http:// or https:// URL"));
    };
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("`{s}` contains whitespace or control characters"));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    // `[v6]` or `[v6]:port`, else `host` or `host:port`.
    let (host, port) = match host_port.strip_prefix('[').and_then(|r| r.find(']')) {
        Some(end) => {
            let (h, rest) = host_port.split_at(end + 2);
            (
                h,
                (!rest.is_empty()).then(|| rest.strip_prefix(':').unwrap_or("-")),
            )
        }
        None => host_port
            .split_once(':')
            .map_or((host_port, None), |(h, p)| (h, Some(p))),
    };
    if host.is_empty() || host == "[]" || (host.contains(':') && !host.starts_with('[')) {
        return Err(format!("`{s}` has no valid host"));
    }
    if port.is_some_and(|p| p.parse::<u16>().is_err()) {
        return Err(format!("`{s}` has an invalid port"));
    }
    Ok(s.to_string())
}

fn parse_store_url(s: &str) -> Res<StoreUrl> {
    if s == "local" {
        return Ok(StoreUrl::Local);
    }
    let Some(rest) = s.strip_prefix("s3://") else {
        return Err(format!(
            "`{s}` is neither `local` nor `s3://bucket[/prefix]`"
        ));
    };
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.contains('@') || bucket.contains(':') {
        return Err("credentials do not belong in the URL: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment".into());
    }
    check_bucket(bucket)?;
    let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
    check_prefix(prefix)?;
    Ok(StoreUrl::S3 {
        bucket: bucket.into(),
        prefix: prefix.into(),
    })
}

/// S3 bucket naming rules (general purpose buckets).
fn check_bucket(b: &str) -> Res<()> {
    let bad = |why: &str| Err(format!("bucket `{b}`: {why}"));
    let alnum = |c: Option<u8>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !(3..=63).contains(&b.len()) {
        return bad("must be 3 to 63 characters long");
    }
    if !b
        .bytes()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
    {
        return bad("may hold only lowercase letters, digits, `.` and `-`");
    }
    if !alnum(b.bytes().next()) || !alnum(b.bytes().last()) {
        return bad("must begin and end with a letter or digit");
    }
    if b.contains("..") || b.contains(".-") || b.contains("-.") {
        return bad("must not hold `..`, `.-` or `-.`");
    }
    if b.parse::<std::net::Ipv4Addr>().is_ok() {
        return bad("must not be an IP address");
    }
    if b.starts_with("xn--")
        || b.starts_with("sthree-")
        || b.ends_with("-s3alias")
        || b.ends_with("--ol-s3")
    {
        return bad("uses a prefix or suffix reserved by S3");
    }
    Ok(())
}

fn check_prefix(p: &str) -> Res<()> {
    if p.is_empty() {
        return Ok(());
    }
    for seg in p.split('/') {
        if seg.is_empty() {
            return Err(format!(
                "prefix `{p}` has an empty segment (`//` or a leading `/`)"
            ));
        }
        if seg == "." || seg == ".." {
            return Err(format!("prefix `{p}` has a `{seg}` segment"));
        }
        if seg.chars().any(|c| c.is_control() || c == '\\') {
            return Err(format!("prefix `{p}` has a control character or `\\`"));
        }
    }
    Ok(())
}

fn parse_gpus(s: &str) -> Res<(GpuSource, Option<u32>, Option<u64>)> {
    let mut parts = s.split(':');
    let source = match parts.next() {
        Some("auto") => GpuSource::Auto,
        Some("nvml") => GpuSource::Nvml,
        Some("simulated") => GpuSource::Simulated,
        _ => {
            return Err(format!(
                "`{s}` is not `nvml`, `auto`, `simulated`, `simulated:N` or `simulated:N:MEM_MIB`"
            ));
        }
    };
    let count = parts
        .next()
        .map(|n| {
            n.parse::<u32>()
                .map_err(|_| format!("`{n}` is not a GPU count"))
        })
        .transpose()?;
    let mem = parts
        .next()
        .map(|m| {
            m.parse::<u64>()
                .map_err(|_| format!("`{m}` is not a memory size in MiB"))
        })
        .transpose()?;
    if parts.next().is_some() || (source != GpuSource::Simulated && count.is_some()) {
        return Err(format!("`{s}`: only `simulated` takes `:N[:MEM_MIB]`"));
    }
    if let Some(n) = count {
        check_count(n)?;
    }
    if let Some(m) = mem {
        check_memory(m)?;
    }
    Ok((source, count, mem))
}

fn check_count(n: u32) -> Res<()> {
    if (1..=MAX_SIMULATED_GPUS).contains(&n) {
        Ok(())
    } else {
        Err(format!("must be 1 to {MAX_SIMULATED_GPUS}, not {n}"))
    }
}

fn check_memory(m: u64) -> Res<()> {
    if m == 0 {
        Err("must be at least 1 MiB".into())
    } else {
        Ok(())
    }
}

fn check_region(r: &str) -> Res<()> {
    if r.is_empty() || r.len() > 64 || !r.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "`{r}` must be 1 to 64 printable ASCII characters without spaces"
        ));
    }
    Ok(())
}

// ---- locating errors in the file ----

/// `(line, column)`, both from 1, of byte offset `pos`.
fn line_col(text: &str, pos: usize) -> (usize, usize) {
    let before = text.get(..pos.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// The dotted key whose key or value holds byte offset `pos`, deepest first.
fn key_at(table: &DeTable<'_>, pos: usize) -> Option<Vec<String>> {
    for (k, v) in table.iter() {
        if let Some(t) = v.get_ref().as_table()
            && let Some(mut path) = key_at(t, pos)
        {
            path.insert(0, k.get_ref().to_string());
            return Some(path);
        }
        if k.span().contains(&pos) || v.span().contains(&pos) {
            return Some(vec![k.get_ref().to_string()]);
        }
    }
    None
}

/// The span of the key at `path`.
fn span_of(table: &DeTable<'_>, path: &[&str]) -> Option<Range<usize>> {
    let (first, rest) = path.split_first()?;
    let (k, v) = table.get_key_value(*first)?;
    if rest.is_empty() {
        Some(k.span())
    } else {
        span_of(v.get_ref().as_table()?, rest)
    }
}

struct FileCtx<'a> {
    file: &'a Path,
    text: &'a str,
}

impl FileCtx<'_> {
    fn error(&self, key: &str, span: Option<Range<usize>>, msg: impl Into<String>) -> Error {
        let mut e = Error::new(ErrorKind::InvalidInput, msg);
        if !key.is_empty() {
            e = e.with_context("field", key);
        }
        let at = match span {
            Some(s) => {
                let (l, c) = line_col(self.text, s.start);
                format!("{}:{l}:{c}", self.file.display())
            }
            None => self.file.display().to_string(),
        };
        e.with_context("file", at)
    }
}

/// Why a key must not be in the file (a secret), if it must not.
fn secret_refusal(section: &str, key: &str) -> Option<&'static str> {
    let k = key.to_ascii_lowercase();
    let has = |w: &str| k.contains(w);
    match section {
        "store"
            if has("secret")
                || has("access_key")
                || has("session_token")
                || has("password")
                || has("credential") =>
        {
            Some(
                "credentials are not read from artha.toml: set AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) in the environment",
            )
        }
        "chain" if k.ends_with("_key") || has("private") || has("mnemonic") || has("secret") => {
            Some(
                "private keys are not read from artha.toml: put each in a file readable only by you (chmod 600) and name it with `<party>_key_file`",
            )
        }
        _ => None,
    }
}

impl Config {
    /// Parses the text of `file` (syntax, types, value formats), resolving
    /// relative paths against `home`. Neither the environment nor
    /// [`Config::validate`] is applied.
    pub fn parse(text: &str, file: &Path, home: &Path) -> Result<Config> {
        let cx = FileCtx { file, text };
        let doc = DeTable::parse(text)
            .map_err(|e| cx.error("", e.span(), format!("TOML syntax error: {}", e.message())))?;
        let doc = doc.get_ref();
        for section in ["store", "chain"] {
            let Some(t) = doc.get(section).and_then(|v| v.get_ref().as_table()) else {
                continue;
            };
            for (k, _) in t.iter() {
                if let Some(why) = secret_refusal(section, k.get_ref()) {
                    return Err(cx.error(
                        &format!("{section}.{k}", k = k.get_ref()),
                        Some(k.span()),
                        why,
                    ));
                }
            }
        }
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let key = e
                .span()
                .and_then(|s| key_at(doc, s.start))
                .unwrap_or_default();
            cx.error(&key.join("."), e.span(), e.message())
        })?;
        let at = |path: &[&str], msg: &str| cx.error(&path.join("."), span_of(doc, path), msg);
        let resolve = |key: &str, p: Option<PathBuf>| -> Result<Option<PathBuf>> {
            match p {
                Some(p) if p.as_os_str().is_empty() => {
                    Err(at(&["chain", key], "must not be empty"))
                }
                Some(p) => Ok(Some(if p.is_absolute() { p } else { home.join(p) })),
                None => Ok(None),
            }
        };
        let c = raw.chain;
        let mode = match (c.kind, c.rpc) {
            (Some(RawChainKind::Embedded), Some(_)) => {
                return Err(at(
                    &["chain", "rpc"],
                    "is set but chain.kind is \"embedded\"",
                ));
            }
            (Some(RawChainKind::Rpc), None) => {
                return Err(at(
                    &["chain", "kind"],
                    "is \"rpc\" but chain.rpc is not set",
                ));
            }
            (_, Some(url)) => ChainMode::Rpc { url },
            (_, None) => ChainMode::Embedded,
        };
        let keys = KeyFiles {
            admin: resolve("admin_key_file", c.admin_key_file)?,
            scheduler: resolve("scheduler_key_file", c.scheduler_key_file)?,
            operator: resolve("operator_key_file", c.operator_key_file)?,
            submitter: resolve("submitter_key_file", c.submitter_key_file)?,
            verifier: resolve("verifier_key_file", c.verifier_key_file)?,
        };
        let native_runtime = match raw.executors.native_runtime {
            Some(p) if p.as_os_str().is_empty() => {
                return Err(at(&["executors", "native_runtime"], "must not be empty"));
            }
            p => p.map(|p| if p.is_absolute() { p } else { home.join(p) }),
        };
        let d = Config::default();
        Ok(Config {
            source: Some(file.to_path_buf()),
            store: StoreConfig {
                url: raw.store.url.unwrap_or_default(),
                endpoint: raw.store.endpoint,
                region: raw.store.region,
                allow_http: raw.store.allow_http,
                credentials: None,
            },
            chain: ChainConfig { mode, keys },
            gpus: GpuConfig {
                source: raw.gpus.source.unwrap_or(d.gpus.source),
                count: raw.gpus.count.unwrap_or(d.gpus.count),
                memory_mib: raw.gpus.memory_mib.unwrap_or(d.gpus.memory_mib),
            },
            executors: ExecutorConfig {
                docker: raw.executors.docker.unwrap_or(d.executors.docker),
                native_runtime,
            },
            node: NodeConfig {
                rate_wei_per_gpu_second: raw
                    .node
                    .rate_wei_per_gpu_second
                    .unwrap_or(d.node.rate_wei_per_gpu_second),
                region: raw.node.region.unwrap_or(d.node.region),
            },
            policy: PolicyConfig {
                budget_cap_wei: raw.policy.budget_cap_wei.unwrap_or(d.policy.budget_cap_wei),
            },
        })
    }

    /// Applies the `ARTHA_*` overrides read through `env` (empty = unset),
    /// and, for an S3 store, the `AWS_*` credentials. A bad value is an
    /// [`ErrorKind::InvalidInput`] error with context `env: <VARIABLE>`.
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<()> {
        let get = |name: &str| {
            env(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let bad = |var: &'static str| {
            move |msg: String| {
                Error::new(ErrorKind::InvalidInput, format!("{var}: {msg}"))
                    .with_context("env", var)
            }
        };
        if let Some(v) = get("ARTHA_STORE") {
            self.store.url = parse_store_url(&v).map_err(bad("ARTHA_STORE"))?;
        }
        if let Some(v) = get("ARTHA_S3_ENDPOINT") {
            self.store.endpoint = Some(parse_http_url(&v).map_err(bad("ARTHA_S3_ENDPOINT"))?);
        }
        if let Some(v) = get("ARTHA_CHAIN_RPC") {
            self.chain.mode = match v.as_str() {
                "embedded" => ChainMode::Embedded,
                _ => ChainMode::Rpc {
                    url: parse_http_url(&v).map_err(bad("ARTHA_CHAIN_RPC"))?,
                },
            };
        }
        if let Some(v) = get("ARTHA_GPU_INVENTORY") {
            let (source, count, mem) = parse_gpus(&v).map_err(bad("ARTHA_GPU_INVENTORY"))?;
            self.gpus.source = source;
            self.gpus.count = count.unwrap_or(self.gpus.count);
            self.gpus.memory_mib = mem.unwrap_or(self.gpus.memory_mib);
        }
        if let Some(v) = get("ARTHA_DOCKER") {
            self.executors.docker = parse_docker(&v).map_err(bad("ARTHA_DOCKER"))?;
        }
        if let Some(v) = get("ARTHA_RATE_WEI") {
            self.node.rate_wei_per_gpu_second = parse_wei(&v).map_err(bad("ARTHA_RATE_WEI"))?;
        }
        if matches!(self.store.url, StoreUrl::S3 { .. }) {
            let (id, secret, token) = (
                get("AWS_ACCESS_KEY_ID"),
                get("AWS_SECRET_ACCESS_KEY"),
                get("AWS_SESSION_TOKEN"),
            );
            self.store.credentials = match (id, secret) {
                (Some(access_key_id), Some(secret_access_key)) => Some(S3Credentials {
                    access_key_id,
                    secret_access_key,
                    session_token: token,
                }),
                (Some(_), None) => {
                    return Err(bad("AWS_SECRET_ACCESS_KEY")(
                        "is not set but AWS_ACCESS_KEY_ID is".into(),
                    ));
                }
                (None, Some(_)) => {
                    return Err(bad("AWS_ACCESS_KEY_ID")(
                        "is not set but AWS_SECRET_ACCESS_KEY is".into(),
                    ));
                }
                (None, None) if token.is_some() => {
                    return Err(bad("AWS_SESSION_TOKEN")(
                        "is set without AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into(),
                    ));
                }
                (None, None) => None,
            };
        }
        Ok(())
    }

    /// Checks ranges and combinations, reporting every problem at once
    /// ([`ErrorKind::InvalidInput`], one `field` context per problem, plus
    /// `file` when the config came from one).
    pub fn validate(&self) -> Result<()> {
        let mut v = ValidationErrors::new();
        let s = &self.store;
        match &s.url {
            StoreUrl::Local => {
                for (key, set) in [
                    ("endpoint", s.endpoint.is_some()),
                    ("region", s.region.is_some()),
                    ("allow_http", s.allow_http.is_some()),
                ] {
                    if set {
                        v.push(format!("store.{key}"), "only applies to an s3:// store.url");
                    }
                }
            }
            StoreUrl::S3 { bucket, prefix } => {
                if let Err(m) = check_bucket(bucket).and_then(|()| check_prefix(prefix)) {
                    v.push("store.url", m);
                }
                if s.allow_http == Some(false)
                    && s.endpoint
                        .as_deref()
                        .is_some_and(|e| e.starts_with("http://"))
                {
                    v.push(
                        "store.allow_http",
                        "is false but store.endpoint is a plain http:// URL",
                    );
                }
            }
        }
        if let Some(Err(m)) = s.endpoint.as_deref().map(parse_http_url) {
            v.push("store.endpoint", m);
        }
        if let ChainMode::Rpc { url } = &self.chain.mode {
            if let Err(m) = parse_http_url(url) {
                v.push("chain.rpc", m);
            }
            // The admin's key is optional: given, the contracts are deployed
            // on first use and this node is certified; without it a
            // deployment must exist already.
            for (party, path) in self.chain.keys.entries() {
                if path.is_none() && party != "admin" {
                    v.push(format!("chain.{party}_key_file"), "is required when the chain is reached over RPC (chain.rpc or ARTHA_CHAIN_RPC)");
                }
            }
        }
        if let Err(m) = check_count(self.gpus.count) {
            v.push("gpus.count", m);
        }
        if let Err(m) = check_memory(self.gpus.memory_mib) {
            v.push("gpus.memory_mib", m);
        }
        if let Err(m) = check_region(&self.node.region) {
            v.push("node.region", m);
        }
        v.into_result().map_err(|v| {
            let e = Error::from(v);
            match &self.source {
                Some(f) => e.with_context("file", f.display().to_string()),
                None => e,
            }
        })
    }

    /// Reads `<home>/artha.toml` (absent: defaults), applies the process
    /// environment and validates.
    pub fn load(home: &Path) -> Result<Config> {
        Config::load_with_env(home, |k| {
            std::env::var_os(k).map(|v| v.to_string_lossy().into_owned())
        })
    }

    /// [`Config::load`] with the environment read through `env`.
    pub fn load_with_env(home: &Path, env: impl Fn(&str) -> Option<String>) -> Result<Config> {
        let file = home.join(FILE_NAME);
        let mut config = match std::fs::read(&file) {
            Ok(bytes) => {
                let text = String::from_utf8(bytes).map_err(|_| {
                    Error::new(ErrorKind::InvalidInput, "the config file is not UTF-8")
                        .with_context("file", file.display().to_string())
                })?;
                Config::parse(&text, &file, home)?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Config::default(),
            Err(e) => return Err(io_error(e, "cannot read the config file", &file)),
        };
        config.apply_env(env)?;
        config.validate()?;
        Ok(config)
    }
}

fn io_error(e: std::io::Error, what: &str, path: &Path) -> Error {
    let kind = match e.kind() {
        std::io::ErrorKind::NotFound => ErrorKind::NotFound,
        std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
        _ => ErrorKind::Internal,
    };
    Error::new(kind, format!("{what}: {e}"))
        .with_context("file", path.display().to_string())
        .with_source(e)
}

/// The secp256k1 group order `n`; private keys are in `1..n`.
const CURVE_ORDER: &str = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141";

/// Reads a private key file: one secp256k1 key as 64 hex digits, with or
/// without `0x`, surrounding whitespace ignored. The file must not be
/// accessible to group or others (`mode & 0o077 == 0`, else
/// [`ErrorKind::PermissionDenied`]). Returns the key as `0x` + lowercase
/// hex. Errors name the file and never quote its contents.
pub fn read_key_file(path: &Path) -> Result<String> {
    let mut f =
        std::fs::File::open(path).map_err(|e| io_error(e, "cannot open the key file", path))?;
    let meta = f
        .metadata()
        .map_err(|e| io_error(e, "cannot stat the key file", path))?;
    let bad =
        |kind, msg: &str| Error::new(kind, msg).with_context("file", path.display().to_string());
    if !meta.is_file() {
        return Err(bad(
            ErrorKind::InvalidInput,
            "the key file is not a regular file",
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            let msg = format!(
                "the key file is accessible to group or others (mode {mode:03o}); run `chmod 600` on it"
            );
            return Err(bad(ErrorKind::PermissionDenied, &msg));
        }
    }
    if meta.len() > 1024 {
        return Err(bad(
            ErrorKind::InvalidInput,
            "the key file is too large to hold one private key",
        ));
    }
    let mut text = String::new();
    f.read_to_string(&mut text)
        .map_err(|e| io_error(e, "cannot read the key file (not UTF-8?)", path))?;
    let t = text.trim();
    let hex = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t)
        .to_ascii_lowercase();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad(
            ErrorKind::InvalidInput,
            "the key file does not hold a private key (64 hex digits, optionally 0x-prefixed)",
        ));
    }
    if hex.bytes().all(|b| b == b'0') || hex.as_str() >= CURVE_ORDER {
        return Err(bad(
            ErrorKind::InvalidInput,
            "the key file holds an invalid secp256k1 key (zero or not below the curve order)",
        ));
    }
    Ok(format!("0x{hex}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "/h/artha.toml";

    fn parse(text: &str) -> Result<Config> {
        Config::parse(text, Path::new(FILE), Path::new("/h"))
    }

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    fn s3(bucket: &str, prefix: &str) -> StoreUrl {
        StoreUrl::S3 {
            bucket: bucket.into(),
            prefix: prefix.into(),
        }
    }

    /// Asserts `parse(text)` fails with InvalidInput naming `field` at `FILE` + `at` (`:line:col`).
    fn assert_bad(text: &str, field: &str, at: &str) -> Error {
        let e = parse(text).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert_eq!(e.context_value("field"), Some(field), "{text:?}: {e}");
        assert_eq!(
            e.context_value("file"),
            Some(format!("{FILE}{at}").as_str()),
            "{text:?}: {e}"
        );
        e
    }

    /// The ```toml block of docs/CONFIG.md.
    fn doc_example() -> &'static str {
        let doc = include_str!("../../docs/CONFIG.md");
        let start = doc.find("```toml\n").unwrap() + "```toml\n".len();
        &doc[start..start + doc[start..].find("```").unwrap()]
    }

    #[test]
    fn empty_file_and_absent_file_are_the_defaults() {
        let c = parse("").unwrap();
        assert_eq!(Config { source: None, ..c }, Config::default());
        let home = tempfile::tempdir().unwrap();
        let c = Config::load_with_env(home.path(), env(&[])).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(
            c.gpus,
            GpuConfig {
                source: GpuSource::Auto,
                count: 4,
                memory_mib: 16_384
            }
        );
        assert_eq!(c.node.rate_wei_per_gpu_second.wei(), DEFAULT_RATE_WEI);
        assert_eq!(
            (c.executors.docker, c.chain.mode),
            (DockerChoice::Auto, ChainMode::Embedded)
        );
    }

    #[test]
    fn the_documented_example_parses_and_validates() {
        let c = parse(doc_example()).unwrap();
        c.validate().unwrap();
        assert_eq!(c.store.url, s3("artha-data", "engines/node-1"));
        assert_eq!(c.store.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert!(c.store.allows_http());
        assert_eq!(
            c.chain.mode,
            ChainMode::Rpc {
                url: "http://127.0.0.1:8545".into()
            }
        );
        assert_eq!(
            c.chain.keys.admin.as_deref(),
            Some(Path::new("/h/keys/admin.key"))
        );
        assert_eq!(
            c.chain.keys.verifier.as_deref(),
            Some(Path::new("/etc/artha/verifier.key"))
        );
        assert_eq!(
            c.gpus,
            GpuConfig {
                source: GpuSource::Simulated,
                count: 8,
                memory_mib: 81_920
            }
        );
        assert_eq!(c.executors.docker, DockerChoice::Off);
        assert_eq!(c.node.rate_wei_per_gpu_second.wei(), 2_000_000_000_000_000);
        assert_eq!(c.node.region, "eu-west");
        assert_eq!(c.policy.budget_cap_wei.wei(), 5_000_000 * WEI_PER_ARTH);
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["store"]["url"], "s3://artha-data/engines/node-1");
        assert_eq!(json["executors"]["docker"], "off");
    }

    #[test]
    fn load_reads_the_home_file_and_applies_the_environment() {
        let home = tempfile::tempdir().unwrap();
        let file = home.path().join(FILE_NAME);
        std::fs::write(
            &file,
            "[gpus]\nsource = \"nvml\"\n[store]\nurl = \"s3://bkt\"\n",
        )
        .unwrap();
        let vars = [
            ("ARTHA_GPU_INVENTORY", "simulated:2:1024"),
            ("AWS_ACCESS_KEY_ID", "AKIA"),
            ("AWS_SECRET_ACCESS_KEY", "s3cr3t"),
        ];
        let c = Config::load_with_env(home.path(), env(&vars)).unwrap();
        assert_eq!(c.source.as_ref(), Some(&file));
        assert_eq!(
            c.gpus,
            GpuConfig {
                source: GpuSource::Simulated,
                count: 2,
                memory_mib: 1024
            }
        );
        let creds = c.store.credentials.clone().unwrap();
        assert_eq!(
            (creds.access_key_id.as_str(), creds.session_token),
            ("AKIA", None)
        );
        assert!(!format!("{c:?}").contains("s3cr3t"));
        std::fs::write(&file, "[gpus]\ncount = 0\n").unwrap();
        let e = Config::load_with_env(home.path(), env(&[])).unwrap_err();
        assert_eq!(e.context_value("field"), Some("gpus.count"), "{e}");
        assert_eq!(e.context_value("file"), file.to_str());
    }

    #[test]
    fn env_overrides_every_documented_variable() {
        let mut c = Config::default();
        let vars = [
            ("ARTHA_STORE", "s3://bkt/a/b/"),
            ("ARTHA_S3_ENDPOINT", "https://s3.example.com:9000"),
            ("ARTHA_CHAIN_RPC", "https://rpc.example.com/v3/abc"),
            ("ARTHA_GPU_INVENTORY", "simulated:16"),
            ("ARTHA_DOCKER", "required"),
            ("ARTHA_RATE_WEI", "340282366920938463463374607431768211455"),
        ];
        c.apply_env(env(&vars)).unwrap();
        assert_eq!(c.store.url, s3("bkt", "a/b"));
        assert!(!c.store.allows_http());
        assert_eq!(
            c.chain.mode,
            ChainMode::Rpc {
                url: "https://rpc.example.com/v3/abc".into()
            }
        );
        assert_eq!(
            (c.gpus.source, c.gpus.count, c.gpus.memory_mib),
            (GpuSource::Simulated, 16, 16_384)
        );
        assert_eq!(c.executors.docker, DockerChoice::Required);
        assert_eq!(c.node.rate_wei_per_gpu_second.wei(), u128::MAX);
        let e = c.validate().unwrap_err();
        assert_eq!(
            e.context_value("field"),
            Some("chain.scheduler_key_file"),
            "{e}"
        );
        let vars = [
            ("ARTHA_CHAIN_RPC", "embedded"),
            ("ARTHA_GPU_INVENTORY", "nvml"),
            ("ARTHA_STORE", ""),
        ];
        c.apply_env(env(&vars)).unwrap();
        assert_eq!(
            (c.chain.mode, c.gpus.source),
            (ChainMode::Embedded, GpuSource::Nvml)
        );
        assert_eq!(c.store.url, s3("bkt", "a/b"), "empty = unset");
    }

    #[test]
    fn bad_env_values_name_the_variable() {
        let s3 = ("ARTHA_STORE", "s3://bkt");
        for vars in [
            &[("ARTHA_STORE", "s3://Bad_Bucket")][..],
            &[("ARTHA_STORE", "file:///tmp")],
            &[("ARTHA_S3_ENDPOINT", "127.0.0.1:9000")],
            &[("ARTHA_CHAIN_RPC", "ws://127.0.0.1:8545")],
            &[("ARTHA_CHAIN_RPC", "http://[::1]8545")],
            &[("ARTHA_CHAIN_RPC", "http://:8545")],
            &[("ARTHA_CHAIN_RPC", "http://a:b:8545")],
            &[("ARTHA_GPU_INVENTORY", "simulated:0")],
            &[("ARTHA_GPU_INVENTORY", "simulated:65")],
            &[("ARTHA_GPU_INVENTORY", "simulated:2:0")],
            &[("ARTHA_GPU_INVENTORY", "nvml:2")],
            &[("ARTHA_GPU_INVENTORY", "0,1")],
            &[("ARTHA_DOCKER", "yes")],
            &[("ARTHA_RATE_WEI", "-1")],
            &[("ARTHA_RATE_WEI", "1.5")],
            &[
                s3,
                ("AWS_SECRET_ACCESS_KEY", "x"),
                ("AWS_ACCESS_KEY_ID", ""),
            ],
            &[
                s3,
                ("AWS_ACCESS_KEY_ID", "AKIA"),
                ("AWS_SECRET_ACCESS_KEY", ""),
            ],
            &[s3, ("AWS_SESSION_TOKEN", "t")],
        ] {
            let e = Config::default().apply_env(env(vars)).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
            assert_eq!(
                e.context_value("env"),
                vars.last().map(|v| v.0),
                "{vars:?}: {e}"
            );
        }
        for ok in [
            "http://[::1]:8545",
            "http://[::1]/rpc",
            "https://u:p@rpc.example.com",
            "http://a:1?x#y",
        ] {
            Config::default()
                .apply_env(env(&[("ARTHA_CHAIN_RPC", ok)]))
                .unwrap();
        }
        // AWS variables are not read for a local store.
        Config::default()
            .apply_env(env(&[("AWS_ACCESS_KEY_ID", "AKIA")]))
            .unwrap();
    }

    #[test]
    fn unknown_keys_and_wrong_types_name_the_key_and_position() {
        for (text, field, at) in [
            ("[gpus]\ncount = 2\ncont = 3\n", "gpus.cont", ":3:1"),
            ("\n[gpuz]\ncount = 2\n", "gpuz", ":2:2"),
            ("[node]\nregion = \"x\"\nrate = 5\n", "node.rate", ":3:1"),
            ("gpus.bogus = 1\n", "gpus.bogus", ":1:6"),
            ("[gpus]\ncount = \"four\"\n", "gpus.count", ":2:9"),
            ("[gpus]\ncount = -1\n", "gpus.count", ":2:9"),
            ("[gpus]\nsource = \"cuda\"\n", "gpus.source", ":2:10"),
            (
                "[store]\nallow_http = \"yes\"\n",
                "store.allow_http",
                ":2:14",
            ),
            (
                "[store]\nendpoint = \"127.0.0.1:9000\"\n",
                "store.endpoint",
                ":2:12",
            ),
            ("[store]\nurl = \"s3://bkt/a//b\"\n", "store.url", ":2:7"),
            ("[executors]\ndocker = true\n", "executors.docker", ":2:10"),
            (
                "[executors]\ndocker = \"always\"\n",
                "executors.docker",
                ":2:10",
            ),
            (
                "[executors]\nnative_runtime = \"\"\n",
                "executors.native_runtime",
                ":2:1",
            ),
            (
                "[chain]\nrpc = \"http://x:notaport\"\n",
                "chain.rpc",
                ":2:7",
            ),
            ("[chain]\nkind = \"rpc\"\n", "chain.kind", ":2:1"),
            (
                "[chain]\nkind = \"embedded\"\nrpc = \"http://x:1\"\n",
                "chain.rpc",
                ":3:1",
            ),
            (
                "[chain]\nadmin_key_file = \"\"\n",
                "chain.admin_key_file",
                ":2:1",
            ),
            ("store = \"local\"\n", "store", ":1:9"),
        ] {
            assert_bad(text, field, at);
        }
        assert!(
            assert_bad("[gpus]\ncount = \"four\"\n", "gpus.count", ":2:9")
                .message()
                .contains("invalid type")
        );
    }

    #[test]
    fn money_is_a_non_negative_integer() {
        let rate = |v: &str| format!("[node]\nrate_wei_per_gpu_second = {v}\n");
        let wei = |v: &str| parse(&rate(v)).unwrap().node.rate_wei_per_gpu_second.wei();
        assert_eq!(
            (wei("0"), wei("1_000"), wei("\"18446744073709551616\"")),
            (0, 1000, 1 << 64)
        );
        let too_big = "\"340282366920938463463374607431768211456\"";
        for bad in [
            "-1",
            "1.5",
            "\"1e18\"",
            "\"0.5 ARTH\"",
            "\"\"",
            "\"-3\"",
            "\" 1\"",
            too_big,
            "true",
        ] {
            assert_bad(&rate(bad), "node.rate_wei_per_gpu_second", ":2:27");
        }
        assert_bad(
            "[policy]\nbudget_cap_wei = -5\n",
            "policy.budget_cap_wei",
            ":2:18",
        );
    }

    #[test]
    fn syntax_errors_name_the_file_and_line() {
        for text in [
            "[gpus]\ncount = 4\nsource = \"auto\n",
            "[gpus]\ncount = 1\ncount = 2\n",
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
            assert!(
                e.context_value("file")
                    .unwrap()
                    .starts_with("/h/artha.toml:3:"),
                "{e}"
            );
            assert!(e.message().starts_with("TOML syntax error"), "{e}");
        }
    }

    #[test]
    fn secrets_in_the_file_are_refused() {
        let e = assert_bad(
            "[store]\nurl = \"s3://bkt\"\nsecret_access_key = \"x\"\n",
            "store.secret_access_key",
            ":3:1",
        );
        assert!(e.message().contains("AWS_SECRET_ACCESS_KEY"), "{e}");
        assert_bad(
            "[store]\naws_access_key_id = \"x\"\n",
            "store.aws_access_key_id",
            ":2:1",
        );
        let e = assert_bad(
            "[chain]\nadmin_key = \"0xabc\"\n",
            "chain.admin_key",
            ":2:1",
        );
        assert!(e.message().contains("_key_file"), "{e}");
        assert_bad(
            "[chain]\nprivate_key = \"0xabc\"\n",
            "chain.private_key",
            ":2:1",
        );
        let e = assert_bad(
            "[store]\nurl = \"s3://AKIA:secret@bkt\"\n",
            "store.url",
            ":2:7",
        );
        assert!(!e.to_string().contains("secret@"), "{e}");
    }

    #[test]
    fn store_urls_are_parsed_strictly() {
        let url = |s: &str| s.parse::<StoreUrl>();
        assert_eq!(url("local").unwrap(), StoreUrl::Local);
        assert_eq!(
            url("s3://my.bucket-1").unwrap().to_string(),
            "s3://my.bucket-1"
        );
        assert_eq!(url("s3://bkt/").unwrap(), s3("bkt", ""));
        assert_eq!(url("s3://bkt/a/b").unwrap().to_string(), "s3://bkt/a/b");
        let long = format!("s3://{}", "a".repeat(64));
        let bad = "LOCAL s3:// s3://ab s3://Bucket s3://bkt_x s3://-bkt s3://bkt- s3://a..b s3://192.168.1.1 \
                   s3://xn--bkt s3://bkt//a s3://bkt/a// s3://bkt/a/../b s3://bkt/./a s3:/bkt gs://bkt";
        for bad in bad.split_whitespace().chain(["", &long]) {
            let e = url(bad).unwrap_err();
            assert_eq!(e.context_value("field"), Some("store.url"), "{bad}: {e}");
        }
    }

    #[test]
    fn ranges_and_combinations_name_every_key() {
        let problems = |text: &str| {
            let e = parse(text).unwrap().validate().unwrap_err();
            assert_eq!(
                (e.kind(), e.context_value("file")),
                (ErrorKind::InvalidInput, Some(FILE))
            );
            e.context()
                .iter()
                .filter(|(k, _)| *k == "field")
                .map(|(_, v)| v.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            problems("[gpus]\ncount = 0\nmemory_mib = 0\n"),
            ["gpus.count", "gpus.memory_mib"]
        );
        assert_eq!(problems("[gpus]\ncount = 65\n"), ["gpus.count"]);
        assert_eq!(problems("[node]\nregion = \"eu west\"\n"), ["node.region"]);
        assert_eq!(
            problems("[store]\nendpoint = \"http://minio:9000\"\n"),
            ["store.endpoint"]
        );
        let no_http =
            "[store]\nurl = \"s3://bkt\"\nendpoint = \"http://minio:9000\"\nallow_http = false\n";
        assert_eq!(problems(no_http), ["store.allow_http"]);
        let keys =
            problems("[chain]\nrpc = \"http://127.0.0.1:8545\"\nadmin_key_file = \"a.key\"\n");
        let parties = ["scheduler", "operator", "submitter", "verifier"];
        assert_eq!(keys, parties.map(|p| format!("chain.{p}_key_file")));
    }

    #[test]
    fn key_files_are_checked() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str, mode: u32| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            p
        };
        let key = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
        assert_eq!(
            read_key_file(&write("a", &format!("0x{key}\n"), 0o600)).unwrap(),
            format!("0x{key}")
        );
        assert_eq!(
            read_key_file(&write("b", &key.to_uppercase(), 0o400)).unwrap(),
            format!("0x{key}")
        );
        let p = write("c", key, 0o640);
        let e = read_key_file(&p).unwrap_err();
        assert_eq!(
            (e.kind(), e.context_value("file")),
            (ErrorKind::PermissionDenied, p.to_str())
        );
        assert!(!e.to_string().contains(key), "{e}");
        let bad = [
            "0x1234".to_string(),
            "0".repeat(64),
            "f".repeat(64),
            format!("{key}zz"),
            " ".repeat(2000),
        ];
        for (i, text) in bad.iter().enumerate() {
            let p = write(&format!("bad{i}"), text, 0o600);
            let e = read_key_file(&p).unwrap_err();
            assert_eq!(
                (e.kind(), e.context_value("file")),
                (ErrorKind::InvalidInput, p.to_str()),
                "{e}"
            );
            assert!(
                text.trim().is_empty() || !e.to_string().contains(text.as_str()),
                "{e}"
            );
        }
        assert_eq!(
            read_key_file(&dir.path().join("missing"))
                .unwrap_err()
                .kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            read_key_file(dir.path()).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }
}
