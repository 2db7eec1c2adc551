//! The behaviour suite (`tests/behaviour/scenarios.json`, format in
//! docs/BINDINGS.md) against the Rust `Connection`: the reference the
//! Python (`tests/behaviour/run.py`) and Node (`tests/behaviour/run.mjs`)
//! runners must agree with, step for step.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use artha_core::{ArthaUri, DatasetId, Error, JobId, JobKind, JobRequest, ModelId};
use artha_engine::Connection;
use artha_engine::engine::{DatasetMeta, ModelRegistration};
use futures_util::StreamExt;
use serde_json::{Map, Value, json};

#[allow(dead_code)]
mod common;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A saved value, a fixture or a temporary path for `"$…"`/`"@…"` text.
fn resolve(v: &Value, saved: &Map<String, Value>, tmp: &Path) -> Value {
    match v {
        Value::String(s) if s.starts_with('$') => {
            let mut parts = s[1..].split('.');
            let mut cur = saved
                .get(parts.next().unwrap())
                .unwrap_or_else(|| panic!("nothing saved as {s}"))
                .clone();
            for p in parts {
                cur = cur.get(p).cloned().unwrap_or(Value::Null);
            }
            cur
        }
        Value::String(s) if s.starts_with("@fixture/") => {
            json!(root().join("tests/behaviour/fixtures").join(&s[9..]))
        }
        Value::String(s) if s.starts_with("@tmp/") => json!(tmp.join(&s[5..])),
        Value::Array(a) => Value::Array(a.iter().map(|x| resolve(x, saved, tmp)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), resolve(x, saved, tmp)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Whether `got` contains `want` (docs/BINDINGS.md); the path of the
/// first difference otherwise.
fn contains(got: &Value, want: &Value, path: &str) -> Result<(), String> {
    let fail = || Err(format!("at {path}: want {want}, got {got}"));
    match want {
        Value::Object(w) if w.contains_key("$any") => {
            if got.is_null() {
                fail()
            } else {
                Ok(())
            }
        }
        Value::Object(w) if w.contains_key("$len") => {
            let n = match got {
                Value::Array(a) => a.len(),
                Value::Object(o) => o.len(),
                Value::String(s) => s.len(),
                _ => return fail(),
            };
            contains(&json!(n), &w["$len"], &format!("{path}.$len"))
        }
        Value::Object(w) if w.contains_key("$gt") => match (got.as_f64(), w["$gt"].as_f64()) {
            (Some(g), Some(t)) if g > t => Ok(()),
            _ => fail(),
        },
        Value::Object(w) if w.contains_key("$has") => match got {
            Value::Array(a) if a.iter().any(|x| contains(x, &w["$has"], path).is_ok()) => Ok(()),
            _ => fail(),
        },
        Value::Object(w) => {
            let Value::Object(g) = got else { return fail() };
            for (k, wv) in w {
                contains(g.get(k).unwrap_or(&Value::Null), wv, &format!("{path}.{k}"))?;
            }
            Ok(())
        }
        Value::Array(w) => {
            let Value::Array(g) = got else { return fail() };
            if g.len() != w.len() {
                return fail();
            }
            for (i, (gv, wv)) in g.iter().zip(w).enumerate() {
                contains(gv, wv, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        Value::Number(n) => match (got.as_f64(), n.as_f64()) {
            (Some(g), Some(w)) if g == w => Ok(()),
            _ => fail(),
        },
        _ if got == want => Ok(()),
        _ => fail(),
    }
}

fn arg<T: serde::de::DeserializeOwned>(args: &Value, name: &str) -> Result<T, Error> {
    serde_json::from_value(args.get(name).cloned().unwrap_or(Value::Null))
        .map_err(|e| Error::invalid(name.to_string(), e.to_string()))
}

fn parse<T: std::str::FromStr<Err = Error>>(args: &Value, name: &str) -> Result<T, Error> {
    arg::<String>(args, name)?
        .parse()
        .map_err(|e: Error| e.with_context("field", name.to_string()))
}

fn to_json(v: impl serde::Serialize) -> Result<Value, Error> {
    serde_json::to_value(v).map_err(|e| Error::invalid("result", e.to_string()))
}

/// Everything but the named keys.
fn rest(args: &Value, skip: &[&str]) -> Value {
    let mut m = args.as_object().cloned().unwrap_or_default();
    for k in skip {
        m.remove(*k);
    }
    Value::Object(m)
}

async fn submit(c: &Connection, kind: JobKind, args: &Value) -> Result<Value, Error> {
    let hold = args.get("hold").and_then(Value::as_bool).unwrap_or(false);
    let req: JobRequest = serde_json::from_value(rest(args, &["hold"]))
        .map_err(|e| Error::invalid("request", e.to_string()))?;
    let spec = req.apply(kind, None)?;
    let s = c.submit_with(spec, hold).await?;
    Ok(json!({ "id": s.job_id }))
}

/// One operation of docs/BINDINGS.md by its Python name.
async fn call(c: &Connection, name: &str, a: &Value) -> Result<Value, Error> {
    let job = || parse::<JobId>(a, "job");
    match name {
        "info" => to_json(c.info().await?),
        "store.push" => to_json(c.push(&arg::<PathBuf>(a, "path")?).await?),
        "store.ls" => to_json(c.ls(&parse::<ArthaUri>(a, "uri")?).await?),
        "store.get" => to_json(
            c.get(&parse::<ArthaUri>(a, "uri")?, &arg::<PathBuf>(a, "dest")?)
                .await?,
        ),
        "datasets.register" => {
            let meta: DatasetMeta = serde_json::from_value(rest(a, &["uri"]))
                .map_err(|e| Error::invalid("meta", e.to_string()))?;
            to_json(c.register_dataset(&parse(a, "uri")?, &meta).await?)
        }
        "datasets.list" => to_json(c.datasets().await?),
        "datasets.get" => to_json(c.dataset(&parse::<DatasetId>(a, "id")?).await?),
        "models.register" => {
            let reg: ModelRegistration = serde_json::from_value(rest(a, &["uri"]))
                .map_err(|e| Error::invalid("registration", e.to_string()))?;
            to_json(c.register_model(&parse(a, "uri")?, &reg).await?)
        }
        "models.list" => to_json(c.models().await?),
        "models.get" => to_json(c.model(&parse::<ModelId>(a, "id")?).await?),
        "models.lineage" => to_json(c.lineage(&parse::<ModelId>(a, "id")?).await?),
        "train" => submit(c, JobKind::Train, a).await,
        "infer" => submit(c, JobKind::Infer, a).await,
        "estimate" => {
            let req: JobRequest = serde_json::from_value(a.clone())
                .map_err(|e| Error::invalid("request", e.to_string()))?;
            to_json(c.estimate(&req.apply(JobKind::Train, None)?).await?)
        }
        "jobs" => to_json(c.jobs().await?),
        "settle" => to_json(c.settle().await?),
        "due" => to_json(c.due().await?),
        "dev_advance" => to_json(c.dev_advance(arg(a, "secs")?).await?),
        "stats" => to_json(c.stats().await?),
        "nodes" => to_json(c.nodes().await?),
        "job.status" => to_json(c.status(&job()?).await?),
        "job.wait" => to_json(c.wait(&job()?).await?),
        "job.cancel" => to_json(c.cancel(&job()?).await?),
        "job.release" => to_json(c.release(&job()?).await?),
        "job.proofs" => to_json(c.proofs(&job()?).await?),
        "job.logs" => to_json(
            c.logs(&job()?, a.get("since").and_then(Value::as_u64).unwrap_or(0))
                .await?,
        ),
        "job.events" => {
            let progress_only = a.get("progress_only").and_then(Value::as_bool) == Some(true);
            let events: Vec<_> = c.events(&job()?, progress_only).await?.collect().await;
            to_json(events.into_iter().collect::<Result<Vec<_>, _>>()?)
        }
        other => panic!("unknown call {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_behaves_as_written() {
    let text = std::fs::read_to_string(root().join("tests/behaviour/scenarios.json")).unwrap();
    let suite: Value = serde_json::from_str(&text).unwrap();
    let only = std::env::var("ARTHA_SCENARIO").ok();
    let mut ran = 0;
    for sc in suite["scenarios"].as_array().unwrap() {
        let name = sc["name"].as_str().unwrap();
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let tmp = tempfile::tempdir().unwrap();
        let conn = Connection::Local(common::engine(&tmp.path().join("home")).await);
        let mut saved = Map::new();
        for (i, step) in sc["steps"].as_array().unwrap().iter().enumerate() {
            let op = step["call"].as_str().unwrap();
            let args = resolve(&step["args"], &saved, tmp.path());
            let got = call(&conn, op, &args).await;
            let at = format!("{name} step {i} ({op})");
            match (&got, step["expect"].get("error")) {
                (Ok(v), None) => {
                    if let Some(want) = step["expect"].get("ok") {
                        let want = resolve(want, &saved, tmp.path());
                        contains(v, &want, "result").unwrap_or_else(|e| panic!("{at}: {e}"));
                    }
                }
                (Err(e), Some(want)) => {
                    assert_eq!(e.kind().as_str(), want["kind"], "{at}: {e}");
                    if let Some(f) = want.get("field").and_then(Value::as_str) {
                        assert_eq!(e.context_value("field"), Some(f), "{at}: {e}");
                    }
                }
                (Ok(v), Some(want)) => panic!("{at}: want error {want}, got {v}"),
                (Err(e), None) => panic!("{at}: {e}"),
            }
            if let (Some(key), Ok(v)) = (step.get("save").and_then(Value::as_str), got) {
                saved.insert(key.to_string(), v);
            }
        }
        conn.close().await;
        ran += 1;
    }
    assert!(ran > 0, "no scenario ran");
}
