//! Staging: the job's inputs are resolved to stored content and laid out
//! read-only in its directory, and its runtime is launched on the executor
//! that runs it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use artha_core::protocol::runtime_env;
use artha_core::{
    ArthaUri, Error, ErrorKind, Executor, InputRef, JobId, JobSpec, LaunchSpec, Limits, Mounts,
    Registry, Result, Runtime,
};

use super::{JobCtx, holds_events};
use crate::engine::input_uri;
use crate::engine::parts::Parts;
use crate::exec::EVENTS_FILE;
use crate::fsutil::io_err;
use crate::jobs::{JobPhase, JobRecord};
use crate::store::EntryKind;

/// The inputs a spec names, resolved to stored content (checked to exist).
pub(crate) struct Inputs {
    pub model: Option<ArthaUri>,
    pub dataset: Option<ArthaUri>,
}

pub(crate) async fn resolve_inputs(parts: &Parts, spec: &JobSpec) -> Result<Inputs> {
    let model = match &spec.model {
        Some(m) => Some(input_uri(
            m,
            |id| Ok(parts.catalog.model(id)?.map(|e| e.uri)),
            "model",
        )?),
        None => None,
    };
    let dataset = match &spec.dataset {
        Some(d) => Some(input_uri(
            d,
            |id| Ok(parts.catalog.dataset(id)?.map(|e| e.uri)),
            "dataset",
        )?),
        None => None,
    };
    // What a registry id names is what the chain registered: a catalog
    // entry re-pointed at other content (the catalog is a local cache) is
    // refused rather than silently used.
    let registered = |field: &'static str| async move {
        Ok::<_, Error>(match (field, &spec.model, &spec.dataset) {
            ("model", Some(InputRef::Id(id)), _) => Some(parts.chain.model(id).await?.content),
            ("dataset", _, Some(InputRef::Id(id))) => Some(parts.chain.dataset(id).await?.content),
            _ => None,
        })
    };
    for (field, uri) in [("model", &model), ("dataset", &dataset)] {
        if let Some(u) = uri {
            let listed = parts
                .store
                .ls(u)
                .await
                .map_err(|e| e.with_context("field", field))?;
            if let Some(on_chain) = registered(field).await?
                && listed.cid != Some(on_chain)
            {
                return Err(Error::new(
                    ErrorKind::Corrupted,
                    format!("the catalog's {field} names other content than the chain registered"),
                )
                .with_context("field", field)
                .with_context("catalog", u.to_string())
                .with_context("chain", on_chain.to_string()));
            }
        }
    }
    Ok(Inputs { model, dataset })
}

pub(crate) fn job_dir(parts: &Parts, job: &JobId) -> PathBuf {
    parts.runs_root.join(job.to_string())
}

pub(crate) fn events_path(parts: &Parts, job: &JobId) -> PathBuf {
    job_dir(parts, job).join("artha").join(EVENTS_FILE)
}

pub(crate) fn executor<'a>(parts: &'a Parts, runtime: &Runtime) -> Result<&'a dyn Executor> {
    parts
        .executors
        .iter()
        .find(|e| e.supports(runtime))
        .map(|e| &**e)
        .ok_or_else(|| no_executor(runtime))
}

/// The error for a runtime no executor of this engine runs.
pub(crate) fn no_executor(runtime: &Runtime) -> Error {
    match runtime {
        Runtime::Image(_) => Error::new(
            ErrorKind::Unavailable,
            "image runtimes need Docker and no Docker daemon answered",
        )
        .with_context("field", "runtime.image"),
        Runtime::Native(id) => Error::invalid(
            "runtime.native",
            format!("no executor of this engine runs the native runtime `{id}`"),
        ),
    }
}

/// Lays `uri` out for a job under `dir`: a tree as the directory itself, a
/// file as `dir/<file_name>` (data: `data.csv` or `data.npy` by content).
pub(crate) async fn stage_input(
    parts: &Parts,
    uri: &ArthaUri,
    dir: &Path,
    file_name: &str,
) -> Result<()> {
    let listing = parts.store.ls(uri).await?;
    match listing.kind {
        EntryKind::Dir => {
            parts.store.materialize(uri, dir).await?;
        }
        _ => {
            std::fs::create_dir_all(dir)
                .map_err(|e| io_err("create an input directory", dir, e))?;
            let name = if file_name.is_empty() {
                let tmp = dir.join("input.part");
                parts.store.materialize(uri, &tmp).await?;
                let mut head = [0u8; 6];
                let n = std::fs::File::open(&tmp)
                    .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
                    .map_err(|e| io_err("read a staged input", &tmp, e))?;
                let name = if n == 6 && &head == b"\x93NUMPY" {
                    "data.npy"
                } else {
                    "data.csv"
                };
                std::fs::rename(&tmp, dir.join(name))
                    .map_err(|e| io_err("name a staged input", &tmp, e))?;
                return Ok(());
            } else {
                file_name
            };
            parts.store.materialize(uri, dir.join(name)).await?;
        }
    }
    Ok(())
}

pub(crate) fn mounts(parts: &Parts, job: &JobId, spec: &JobSpec) -> Mounts {
    let dir = job_dir(parts, job);
    Mounts {
        model: spec.model.as_ref().map(|_| dir.join("model")),
        data: spec.dataset.as_ref().map(|_| dir.join("data")),
        checkpoints: dir.join("checkpoints"),
        artha: dir.join("artha"),
    }
}

/// The environment a job's runtime gets (protocol variables, free-form
/// hyper-parameters as `ARTHA_<KEY>`, the native model kind): the same for
/// a run and for a verifier's replay of it.
pub(crate) fn job_env(job: &JobId, spec: &JobSpec) -> std::collections::BTreeMap<String, String> {
    let mut env = runtime_env(job, spec);
    // Free-form hyper-parameters reach the runtime as `ARTHA_<KEY>` (e.g.
    // `task` → `ARTHA_TASK`); the protocol's own variables win.
    for (k, v) in &spec.hyper.extra {
        let value = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(items) => items
                .iter()
                .map(|i| match i {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(","),
            other => other.to_string(),
        };
        env.entry(format!("ARTHA_{}", k.to_ascii_uppercase()))
            .or_insert(value);
    }
    if let Runtime::Native(id) = &spec.runtime {
        env.entry("ARTHA_MODEL_KIND".into())
            .or_insert_with(|| id.clone());
    }
    env
}

pub(crate) fn launch_spec(parts: &Parts, r: &JobRecord, resume: Option<&str>) -> LaunchSpec {
    let spec = &r.spec;
    let mut env = job_env(&r.id, spec);
    if let Some(ckpt) = resume {
        env.insert("ARTHA_RESUME".into(), ckpt.into());
    }
    LaunchSpec {
        job_id: r.id,
        node_id: parts.node,
        runtime: spec.runtime.clone(),
        args: Vec::new(),
        env,
        mounts: mounts(parts, &r.id, spec),
        gpus: r.gpus.clone(),
        limits: Limits {
            cpu_millis: spec.resources.cpu_millis,
            memory_mib: spec.resources.memory_mib,
            pids: 512,
            max_duration: Duration::from_secs(spec.resources.max_duration_secs),
        },
        network: false,
    }
}

/// Stages the inputs (fresh) and launches the runtime; `resume` names the
/// checkpoint to resume from when relaunching.
pub(crate) async fn stage_and_launch(
    cx: &JobCtx<'_>,
    r: &JobRecord,
    resume: Option<&str>,
) -> Result<()> {
    let JobCtx { parts, ctl, .. } = *cx;
    let job = cx.job;
    let dir = job_dir(parts, &job);
    if resume.is_none() {
        if holds_events(parts, &job) {
            // A directory that holds events holds work: it is never deleted.
            if r.phase == JobPhase::Staging {
                // Launched just before a crash that kept the handle from
                // the ledger (the run was stopped on open): continue as a
                // run that died with the engine (resumed from its last
                // checkpoint, its work kept).
                return parts
                    .ledger
                    .transition(&job, JobPhase::Staging, JobPhase::Running, None);
            }
            return Err(Error::new(
                ErrorKind::Internal,
                "refusing to stage again over a job directory that holds events",
            )
            .with_context("job_id", job.to_string()));
        }
        // Staging again after a crash starts from clean directories (the
        // resume counter and the output log are kept).
        for sub in ["model", "data", "checkpoints", "artha", ".collect"] {
            crate::store::remove_tree(dir.join(sub))?;
        }
        let inputs = resolve_inputs(parts, &r.spec).await?;
        std::fs::create_dir_all(&dir).map_err(|e| io_err("create the job directory", &dir, e))?;
        // Others (the native job's user included) may only pass through.
        crate::engine::private_dir(&dir, 0o711)?;
        let m = mounts(parts, &job, &r.spec);
        if let (Some(uri), Some(d)) = (&inputs.model, &m.model) {
            stage_input(parts, uri, d, "model.safetensors").await?;
        }
        if let (Some(uri), Some(d)) = (&inputs.dataset, &m.data) {
            stage_input(parts, uri, d, "").await?;
        }
        for d in [&m.checkpoints, &m.artha] {
            std::fs::create_dir_all(d).map_err(|e| io_err("create a job directory", d, e))?;
        }
    }
    if r.phase == JobPhase::Staging && *ctl.cancel.borrow() {
        // Cancelled while its inputs were staged: it never starts.
        return parts.ledger.transition(
            &job,
            JobPhase::Staging,
            JobPhase::Cancelled,
            Some("cancelled by the submitter during staging"),
        );
    }
    let exec = executor(parts, &r.spec.runtime)?;
    let launched = Instant::now();
    let handle = exec.launch(launch_spec(parts, r, resume)).await?;
    *ctl.launched.lock().unwrap_or_else(|p| p.into_inner()) = Some(launched);
    parts.ledger.set_exec(&job, Some(&handle))?;
    if r.phase == JobPhase::Staging {
        parts
            .ledger
            .transition(&job, JobPhase::Staging, JobPhase::Running, None)?;
    }
    Ok(())
}
