//! `arthajs`: the Artha engine for Node.js (napi-rs).
//!
//! The surface of `docs/BINDINGS.md` in camelCase with Promises. This
//! crate holds conversions and error mapping only: every call goes
//! through [`artha_engine::Connection`] (an engine embedded in the Node
//! process, or the client of the `arthai serve` daemon of the home), on
//! the one long-lived tokio runtime napi keeps for the addon.
//!
//! - Values cross as the JSON of the Rust types: arguments are read as
//!   JSON and deserialized into `artha_core::JobRequest`,
//!   `artha_engine::engine::DatasetMeta`, … (unknown keys refused, by
//!   name); results are the serde JSON of the engine's values (whole
//!   numbers past 2^32 become plain JavaScript numbers, as `JSON.parse`
//!   makes them).
//! - Errors: an engine error rejects with an `Error` whose `code` is
//!   `ARTHA_<KIND>` and whose `kind`, `field`, `context` and `retryable`
//!   are the engine error's; an argument of the wrong JavaScript type
//!   rejects with a `TypeError` naming it (`field`, kind `invalid_input`).
//! - After `close()` every call on the engine, its sub-objects and its
//!   jobs rejects with kind `unavailable` ("the engine is closed").

#![deny(missing_docs)]

mod args;
mod errors;

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use artha_core::{DatasetId, JobEvent, JobId, JobKind, JobRequest, JobSpec, ModelId};
use artha_engine::Connection;
use artha_engine::engine::{DatasetMeta, ModelRegistration};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use napi::bindgen_prelude::{AsyncGenerator, Env, PromiseRaw, Result, ToNapiValue, Unknown};
use napi_derive::napi;
use serde::Serialize;

use crate::errors::Failure;

type Outcome<T> = std::result::Result<T, Failure>;
type Promise<'e> = PromiseRaw<'e, Unknown<'e>>;

/// The connection every object of one engine shares; `None` once closed.
#[derive(Debug)]
struct Shared {
    conn: Mutex<Option<Connection>>,
    remote: bool,
}

impl Shared {
    fn new(conn: Connection) -> Arc<Self> {
        Arc::new(Shared {
            remote: conn.is_remote(),
            conn: Mutex::new(Some(conn)),
        })
    }

    fn conn(&self) -> Outcome<Connection> {
        self.conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| errors::closed().into())
    }
}

/// Reads a JavaScript argument as JSON (`undefined` is `null`).
fn read(env: &Env, v: Unknown<'_>, arg: &str) -> Outcome<serde_json::Value> {
    env.from_js_value::<serde_json::Value, _>(v)
        .map_err(|e| Failure::type_error(arg, format!("`{arg}` is not a JSON value: {}", e.reason)))
}

/// The JavaScript value of `t`'s JSON. Whole numbers too large for napi's
/// plain numbers (past 2^32) are made doubles, so results hold numbers,
/// never `BigInt`s, as `JSON.parse` would give.
fn to_js<'e, T: Serialize>(env: &'e Env, t: &T) -> Result<Unknown<'e>> {
    fn plain(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Number(n) if n.as_u64().is_some_and(|u| u > u64::from(u32::MAX)) => {
                if let Some(f) = n.as_f64().and_then(serde_json::Number::from_f64) {
                    *n = f;
                }
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(plain),
            serde_json::Value::Object(o) => o.values_mut().for_each(plain),
            _ => {}
        }
    }
    let mut v = serde_json::to_value(t)
        .map_err(|e| napi::Error::from_reason(format!("result to JSON: {e}")))?;
    plain(&mut v);
    env.to_js_value(&v)
}

/// A Promise of what `fut` gives, made a JavaScript value by `done` on
/// the JavaScript thread; a failure rejects with its JavaScript error.
fn promise<'e, T, V, F, C>(env: &'e Env, fut: F, done: C) -> Result<PromiseRaw<'e, V>>
where
    T: Send + 'static,
    V: ToNapiValue,
    F: Future<Output = Outcome<T>> + Send + 'static,
    C: FnOnce(&'e Env, T) -> Result<V> + 'static,
{
    env.spawn_future_with_callback(
        async move { Ok::<_, napi::Error>(fut.await) },
        move |env, r| match r {
            Ok(t) => done(env, t),
            Err(f) => Err(errors::to_napi(env, &f)),
        },
    )
}

/// A Promise of the JSON of what `fut` gives.
fn json<'e, T, F>(env: &'e Env, fut: F) -> Result<Promise<'e>>
where
    T: Serialize + Send + 'static,
    F: Future<Output = Outcome<T>> + Send + 'static,
{
    promise(env, fut, |env, t| to_js(env, &t))
}

/// Opens the engine of `home`: the client of the `arthai serve` daemon
/// serving it when one answers, else an engine embedded in this process.
#[napi(ts_args_type = "home: string", ts_return_type = "Promise<Engine>")]
pub fn connect<'e>(env: &'e Env, home: Unknown<'e>) -> Result<PromiseRaw<'e, Engine>> {
    let home = read(env, home, "home").and_then(|v| args::string(v, "home"));
    promise(
        env,
        async move {
            let home = home?;
            Ok(artha_engine::connect(&home).await?)
        },
        |_, conn| Ok(Engine::from_conn(conn)),
    )
}

/// The Artha engine of a home, embedded or through its daemon.
#[napi]
#[derive(Debug)]
pub struct Engine {
    shared: Arc<Shared>,
}

impl Engine {
    fn from_conn(conn: Connection) -> Engine {
        Engine {
            shared: Shared::new(conn),
        }
    }

    fn submit_request<'e>(
        &self,
        env: &'e Env,
        kind: JobKind,
        request: Unknown<'e>,
        options: Unknown<'e>,
    ) -> Result<PromiseRaw<'e, Job>> {
        let request = read(env, request, "request")
            .and_then(|v| args::object::<JobRequest>(v, "request"))
            .and_then(|r| Ok(r.apply(kind, None)?));
        self.submit_spec(env, request, options)
    }

    fn submit_spec<'e>(
        &self,
        env: &'e Env,
        spec: Outcome<JobSpec>,
        options: Unknown<'e>,
    ) -> Result<PromiseRaw<'e, Job>> {
        let conn = self.shared.conn();
        let options = read(env, options, "options")
            .and_then(|v| args::object::<args::SubmitOptions>(v, "options"));
        let shared = self.shared.clone();
        promise(
            env,
            async move {
                let conn = conn?;
                let (spec, options) = (spec?, options?);
                Ok(conn.submit_with(spec, options.hold).await?.job_id)
            },
            move |_, job| Ok(Job { shared, job }),
        )
    }

    fn call<'e, T, F, Fut>(&self, env: &'e Env, f: F) -> Result<Promise<'e>>
    where
        T: Serialize + Send + 'static,
        F: FnOnce(Connection) -> Fut + Send + 'static,
        Fut: Future<Output = artha_core::Result<T>> + Send + 'static,
    {
        let conn = self.shared.conn();
        json(env, async move { Ok(f(conn?).await?) })
    }
}

#[napi]
impl Engine {
    /// Opens the engine of `home` embedded in this process (never a
    /// daemon's client).
    #[napi(ts_args_type = "home: string", ts_return_type = "Promise<Engine>")]
    pub fn open<'e>(env: &'e Env, home: Unknown<'e>) -> Result<PromiseRaw<'e, Engine>> {
        let home = read(env, home, "home").and_then(|v| args::string(v, "home"));
        promise(
            env,
            async move {
                let home = home?;
                Ok(Connection::Local(artha_engine::Engine::open(home).await?))
            },
            |_, conn| Ok(Engine::from_conn(conn)),
        )
    }

    /// Who the engine is (`EngineInfo`).
    #[napi(ts_return_type = "Promise<any>")]
    pub fn info<'e>(&self, env: &'e Env) -> Result<Promise<'e>> {
        self.call(env, |c: Connection| async move { c.info().await })
    }

    /// Whether this is the client of a daemon (`arthai serve`).
    #[napi(getter)]
    pub fn is_remote(&self) -> bool {
        self.shared.remote
    }

    /// The home's content-addressed store.
    #[napi(getter)]
    pub fn store(&self) -> Store {
        Store {
            shared: self.shared.clone(),
        }
    }

    /// The dataset registry.
    #[napi(getter)]
    pub fn datasets(&self) -> Datasets {
        Datasets {
            shared: self.shared.clone(),
        }
    }

    /// The model registry.
    #[napi(getter)]
    pub fn models(&self) -> Models {
        Models {
            shared: self.shared.clone(),
        }
    }

    /// Submits a training job; `request` is the `JobRequest` JSON
    /// (`model`, `dataset`, `runtime`, `epochs`, `batch_size`, …).
    #[napi(
        ts_args_type = "request: Record<string, any>, options?: { hold?: boolean }",
        ts_return_type = "Promise<Job>"
    )]
    pub fn train<'e>(
        &self,
        env: &'e Env,
        request: Unknown<'e>,
        options: Unknown<'e>,
    ) -> Result<PromiseRaw<'e, Job>> {
        self.submit_request(env, JobKind::Train, request, options)
    }

    /// Submits an inference job; `request` as for `train`.
    #[napi(
        ts_args_type = "request: Record<string, any>, options?: { hold?: boolean }",
        ts_return_type = "Promise<Job>"
    )]
    pub fn infer<'e>(
        &self,
        env: &'e Env,
        request: Unknown<'e>,
        options: Unknown<'e>,
    ) -> Result<PromiseRaw<'e, Job>> {
        self.submit_request(env, JobKind::Infer, request, options)
    }

    /// Submits a whole `JobSpec` (its JSON).
    #[napi(
        ts_args_type = "spec: Record<string, any>, options?: { hold?: boolean }",
        ts_return_type = "Promise<Job>"
    )]
    pub fn submit<'e>(
        &self,
        env: &'e Env,
        spec: Unknown<'e>,
        options: Unknown<'e>,
    ) -> Result<PromiseRaw<'e, Job>> {
        let spec = read(env, spec, "spec").and_then(|v| args::object::<JobSpec>(v, "spec"));
        self.submit_spec(env, spec, options)
    }

    /// What a training `request` may cost and take (`JobEstimate`).
    #[napi(
        ts_args_type = "request: Record<string, any>",
        ts_return_type = "Promise<any>"
    )]
    pub fn estimate<'e>(&self, env: &'e Env, request: Unknown<'e>) -> Result<Promise<'e>> {
        let conn = self.shared.conn();
        let spec = read(env, request, "request")
            .and_then(|v| args::object::<JobRequest>(v, "request"))
            .and_then(|r| Ok(r.apply(JobKind::Train, None)?));
        json(env, async move {
            let conn = conn?;
            let spec = spec?;
            Ok(conn.estimate(&spec).await?)
        })
    }

    /// The job `id` (`job-…`); a malformed id throws an `invalid_input`
    /// error, an unknown one fails on the job's first call (`not_found`).
    #[napi(ts_args_type = "id: string")]
    pub fn job(&self, env: &Env, id: Unknown<'_>) -> Result<Job> {
        read(env, id, "id")
            .and_then(|v| args::parsed::<JobId>(v, "id"))
            .map(|job| Job {
                shared: self.shared.clone(),
                job,
            })
            .map_err(|f| errors::to_napi(env, &f))
    }

    /// Every job, newest first (`[JobSummary]`).
    #[napi(ts_return_type = "Promise<any[]>")]
    pub fn jobs<'e>(&self, env: &'e Env) -> Result<Promise<'e>> {
        self.call(env, |c: Connection| async move { c.jobs().await })
    }

    /// Settles every job whose challenge period passed (`SettleReport`).
    #[napi(ts_return_type = "Promise<any>")]
    pub fn settle<'e>(&self, env: &'e Env) -> Result<Promise<'e>> {
        self.call(env, |c: Connection| async move { c.settle().await })
    }

    /// Committed jobs waiting for their challenge period (`[DueJob]`).
    #[napi(ts_return_type = "Promise<any[]>")]
    pub fn due<'e>(&self, env: &'e Env) -> Result<Promise<'e>> {
        self.call(env, |c: Connection| async move { c.due().await })
    }

    /// Moves a development chain's clock forward by `secs`; the chain
    /// time after.
    #[napi(ts_args_type = "secs: number", ts_return_type = "Promise<number>")]
    pub fn dev_advance<'e>(&self, env: &'e Env, secs: Unknown<'e>) -> Result<Promise<'e>> {
        let secs = read(env, secs, "secs").and_then(|v| args::count(v, "secs", None));
        let conn = self.shared.conn();
        json(env, async move {
            let conn = conn?;
            let secs = secs?;
            Ok(conn.dev_advance(secs).await?)
        })
    }

    /// Proof, settlement and resource statistics (`Stats`).
    #[napi(ts_return_type = "Promise<any>")]
    pub fn stats<'e>(&self, env: &'e Env) -> Result<Promise<'e>> {
        self.call(env, |c: Connection| async move { c.stats().await })
    }

    /// The nodes the engine knows (`[NodeInfo]`).
    #[napi(ts_return_type = "Promise<any[]>")]
    pub fn nodes<'e>(&self, env: &'e Env) -> Result<Promise<'e>> {
        self.call(env, |c: Connection| async move { c.nodes().await })
    }

    /// Closes the engine (an embedded one shuts down; its jobs carry on
    /// with the next engine on the home). Later calls reject with kind
    /// `unavailable`; closing twice is a no-op.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'e>(&self, env: &'e Env) -> Result<PromiseRaw<'e, ()>> {
        let conn = self
            .shared
            .conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        promise(
            env,
            async move {
                if let Some(c) = conn {
                    c.close().await;
                }
                Ok(())
            },
            |_, ()| Ok(()),
        )
    }
}

/// The home's content-addressed store (`engine.store`).
#[napi]
#[derive(Debug)]
pub struct Store {
    shared: Arc<Shared>,
}

#[napi]
impl Store {
    /// Pushes a file or directory into the store and pins it
    /// (`PushReport`: `uri`, `cid`, `files`, `bytes`, …).
    #[napi(ts_args_type = "path: string", ts_return_type = "Promise<any>")]
    pub fn push<'e>(&self, env: &'e Env, path: Unknown<'e>) -> Result<Promise<'e>> {
        let conn = self.shared.conn();
        let path = read(env, path, "path").and_then(|v| args::string(v, "path"));
        json(env, async move {
            let conn = conn?;
            let path = path?;
            Ok(conn.push(Path::new(&path)).await?)
        })
    }

    /// Writes what `uri` names to `dest`, which must not exist
    /// (`LayoutReport`).
    #[napi(
        ts_args_type = "uri: string, dest: string",
        ts_return_type = "Promise<any>"
    )]
    pub fn get<'e>(
        &self,
        env: &'e Env,
        uri: Unknown<'e>,
        dest: Unknown<'e>,
    ) -> Result<Promise<'e>> {
        let conn = self.shared.conn();
        let uri = read(env, uri, "uri").and_then(|v| args::uri(v, "uri"));
        let dest = read(env, dest, "dest").and_then(|v| args::string(v, "dest"));
        json(env, async move {
            let conn = conn?;
            let (uri, dest) = (uri?, dest?);
            Ok(conn.get(&uri, Path::new(&dest)).await?)
        })
    }

    /// What `uri` names; a directory's entries (`Listing`).
    #[napi(ts_args_type = "uri: string", ts_return_type = "Promise<any>")]
    pub fn ls<'e>(&self, env: &'e Env, uri: Unknown<'e>) -> Result<Promise<'e>> {
        let conn = self.shared.conn();
        let uri = read(env, uri, "uri").and_then(|v| args::uri(v, "uri"));
        json(env, async move {
            let conn = conn?;
            let uri = uri?;
            Ok(conn.ls(&uri).await?)
        })
    }
}

/// The dataset registry (`engine.datasets`).
#[napi]
#[derive(Debug)]
pub struct Datasets {
    shared: Arc<Shared>,
}

#[napi]
impl Datasets {
    /// Registers stored content as a dataset; `meta` is `{name, tags,
    /// license}` (`DatasetEntry`).
    #[napi(
        ts_args_type = "uri: string, meta?: { name?: string, tags?: string, license?: string }",
        ts_return_type = "Promise<any>"
    )]
    pub fn register<'e>(
        &self,
        env: &'e Env,
        uri: Unknown<'e>,
        meta: Unknown<'e>,
    ) -> Result<Promise<'e>> {
        let conn = self.shared.conn();
        let uri = read(env, uri, "uri").and_then(|v| args::uri(v, "uri"));
        let meta = read(env, meta, "meta").and_then(|v| args::object::<DatasetMeta>(v, "meta"));
        json(env, async move {
            let conn = conn?;
            let (uri, meta) = (uri?, meta?);
            Ok(conn.register_dataset(&uri, &meta).await?)
        })
    }

    /// Every registered dataset, newest first.
    #[napi(ts_return_type = "Promise<any[]>")]
    pub fn list<'e>(&self, env: &'e Env) -> Result<Promise<'e>> {
        let conn = self.shared.conn();
        json(env, async move { Ok(conn?.datasets().await?) })
    }

    /// A dataset (`dataset-…`), checked against the chain.
    #[napi(ts_args_type = "id: string", ts_return_type = "Promise<any>")]
    pub fn get<'e>(&self, env: &'e Env, id: Unknown<'e>) -> Result<Promise<'e>> {
        let conn = self.shared.conn();
        let id = read(env, id, "id").and_then(|v| args::parsed::<DatasetId>(v, "id"));
        json(env, async move {
            let conn = conn?;
            let id = id?;
            Ok(conn.dataset(&id).await?)
        })
    }
}

/// The model registry (`engine.models`).
#[napi]
#[derive(Debug)]
pub struct Models {
    shared: Arc<Shared>,
}

#[napi]
impl Models {
    /// Registers stored content as a model; `reg` is `{name, architecture,
    /// version, parent, dataset, code_hash}` (`ModelEntry`).
    #[napi(
        ts_args_type = "uri: string, reg?: { name?: string, architecture?: string, version?: string, parent?: string, dataset?: string, code_hash?: string }",
        ts_return_type = "Promise<any>"
    )]
    pub fn register<'e>(
        &self,
        env: &'e Env,
        uri: Unknown<'e>,
        reg: Unknown<'e>,
    ) -> Result<Promise<'e>> {
        let conn = self.shared.conn();
        let uri = read(env, uri, "uri").and_then(|v| args::uri(v, "uri"));
        let reg = read(env, reg, "reg").and_then(|v| args::object::<ModelRegistration>(v, "reg"));
        json(env, async move {
            let conn = conn?;
            let (uri, reg) = (uri?, reg?);
            Ok(conn.register_model(&uri, &reg).await?)
        })
    }

    /// Every registered model, newest first.
    #[napi(ts_return_type = "Promise<any[]>")]
    pub fn list<'e>(&self, env: &'e Env) -> Result<Promise<'e>> {
        let conn = self.shared.conn();
        json(env, async move { Ok(conn?.models().await?) })
    }

    /// A model (`model-…`), checked against the chain.
    #[napi(ts_args_type = "id: string", ts_return_type = "Promise<any>")]
    pub fn get<'e>(&self, env: &'e Env, id: Unknown<'e>) -> Result<Promise<'e>> {
        let conn = self.shared.conn();
        let id = read(env, id, "id").and_then(|v| args::parsed::<ModelId>(v, "id"));
        json(env, async move {
            let conn = conn?;
            let id = id?;
            Ok(conn.model(&id).await?)
        })
    }

    /// A model and its ancestors, nearest first.
    #[napi(ts_args_type = "id: string", ts_return_type = "Promise<any[]>")]
    pub fn lineage<'e>(&self, env: &'e Env, id: Unknown<'e>) -> Result<Promise<'e>> {
        let conn = self.shared.conn();
        let id = read(env, id, "id").and_then(|v| args::parsed::<ModelId>(v, "id"));
        json(env, async move {
            let conn = conn?;
            let id = id?;
            Ok(conn.lineage(&id).await?)
        })
    }
}

/// A job of the engine.
#[napi]
#[derive(Debug)]
pub struct Job {
    shared: Arc<Shared>,
    job: JobId,
}

impl Job {
    fn call<'e, T, F, Fut>(&self, env: &'e Env, f: F) -> Result<Promise<'e>>
    where
        T: Serialize + Send + 'static,
        F: FnOnce(Connection, JobId) -> Fut + Send + 'static,
        Fut: Future<Output = artha_core::Result<T>> + Send + 'static,
    {
        let conn = self.shared.conn();
        let job = self.job;
        json(env, async move { Ok(f(conn?, job).await?) })
    }
}

#[napi]
impl Job {
    /// Its id (`job-…`).
    #[napi(getter)]
    pub fn id(&self) -> String {
        self.job.to_string()
    }

    /// Its status, with artifacts and receipts (`JobStatus`).
    #[napi(ts_return_type = "Promise<any>")]
    pub fn status<'e>(&self, env: &'e Env) -> Result<Promise<'e>> {
        self.call(
            env,
            |c: Connection, j: JobId| async move { c.status(&j).await },
        )
    }

    /// Its events as they happen, as an async iterator of `JobEvent`
    /// objects (tagged by `event`: `phase`, `progress`, `log`, `receipt`,
    /// `artifact`) that ends after the terminal phase; phases and
    /// progress only with `progressOnly`.
    #[napi(ts_args_type = "options?: { progressOnly?: boolean }")]
    pub fn events(&self, env: &Env, options: Unknown<'_>) -> JobEvents {
        let start = self.shared.conn().and_then(|conn| {
            let opts = read(env, options, "options")
                .and_then(|v| args::object::<args::EventOptions>(v, "options"))?;
            Ok((conn, opts.progress_only))
        });
        JobEvents {
            state: Arc::new(tokio::sync::Mutex::new(Events::Start(start, self.job))),
        }
    }

    /// Its output lines from `since` (default 0) (`[LogLine]`).
    #[napi(ts_args_type = "since?: number", ts_return_type = "Promise<any[]>")]
    pub fn logs<'e>(&self, env: &'e Env, since: Unknown<'e>) -> Result<Promise<'e>> {
        let conn = self.shared.conn();
        let since = read(env, since, "since").and_then(|v| args::count(v, "since", Some(0)));
        let job = self.job;
        json(env, async move {
            let conn = conn?;
            let since = since?;
            Ok(conn.logs(&job, since).await?)
        })
    }

    /// Waits until it has ended, and returns how (`JobOutcome`).
    #[napi(ts_return_type = "Promise<any>")]
    pub fn wait<'e>(&self, env: &'e Env) -> Result<Promise<'e>> {
        self.call(
            env,
            |c: Connection, j: JobId| async move { c.wait(&j).await },
        )
    }

    /// Cancels it if it has not finished running (`JobStatus`).
    #[napi(ts_return_type = "Promise<any>")]
    pub fn cancel<'e>(&self, env: &'e Env) -> Result<Promise<'e>> {
        self.call(
            env,
            |c: Connection, j: JobId| async move { c.cancel(&j).await },
        )
    }

    /// Starts it when it was submitted held (`JobStatus`).
    #[napi(ts_return_type = "Promise<any>")]
    pub fn release<'e>(&self, env: &'e Env) -> Result<Promise<'e>> {
        self.call(
            env,
            |c: Connection, j: JobId| async move { c.release(&j).await },
        )
    }

    /// The proof manifest it committed (`ProofManifest`).
    #[napi(ts_return_type = "Promise<any>")]
    pub fn proofs<'e>(&self, env: &'e Env) -> Result<Promise<'e>> {
        self.call(
            env,
            |c: Connection, j: JobId| async move { c.proofs(&j).await },
        )
    }
}

enum Events {
    Start(Outcome<(Connection, bool)>, JobId),
    Open(BoxStream<'static, artha_core::Result<JobEvent>>),
    Done,
}

/// A job's events (`job.events()`), an async iterator.
#[napi(async_iterator)]
pub struct JobEvents {
    state: Arc<tokio::sync::Mutex<Events>>,
}

impl std::fmt::Debug for JobEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobEvents").finish_non_exhaustive()
    }
}

#[napi]
impl AsyncGenerator for JobEvents {
    type Yield = json::Value;
    type Next = ();
    type Return = ();

    fn next(
        &mut self,
        _value: Option<()>,
    ) -> impl Future<Output = Result<Option<json::Value>>> + Send + 'static {
        let state = self.state.clone();
        async move {
            let mut st = state.lock().await;
            loop {
                match std::mem::replace(&mut *st, Events::Done) {
                    Events::Start(start, job) => {
                        let opened = async {
                            let (conn, progress_only) = start?;
                            Ok::<_, Failure>(conn.events(&job, progress_only).await?)
                        }
                        .await;
                        match opened {
                            Ok(s) => *st = Events::Open(s),
                            Err(f) => return Ok(Some(json::Value(Err(f)))),
                        }
                    }
                    Events::Open(mut s) => {
                        return Ok(match s.next().await {
                            Some(Ok(ev)) => {
                                *st = Events::Open(s);
                                Some(json::Value(serde_json::to_value(&ev).map_err(|e| {
                                    Failure::Artha(artha_core::Error::new(
                                        artha_core::ErrorKind::Internal,
                                        format!("event to JSON: {e}"),
                                    ))
                                })))
                            }
                            Some(Err(e)) => Some(json::Value(Err(e.into()))),
                            None => None,
                        });
                    }
                    Events::Done => return Ok(None),
                }
            }
        }
    }

    fn complete(
        &mut self,
        _value: Option<()>,
    ) -> impl Future<Output = Result<Option<json::Value>>> + Send + 'static {
        let state = self.state.clone();
        async move {
            *state.lock().await = Events::Done;
            Ok(None)
        }
    }
}

pub mod json {
    //! A JSON value on its way to JavaScript (what `job.events()` yields).

    use napi::bindgen_prelude::{Env, Result, ToNapiValue};
    use napi::sys;

    use crate::errors::{self, Failure};

    /// A value to yield, or the failure to reject the iteration with.
    #[derive(Debug)]
    pub struct Value(pub(crate) std::result::Result<serde_json::Value, Failure>);

    impl ToNapiValue for Value {
        unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
            let js_env = Env::from_raw(env);
            match val.0 {
                // SAFETY: `env` is the live environment napi handed us, and
                // the value was made in it.
                Ok(v) => unsafe { ToNapiValue::to_napi_value(env, crate::to_js(&js_env, &v)?) },
                Err(f) => Err(errors::to_napi(&js_env, &f)),
            }
        }
    }
}
