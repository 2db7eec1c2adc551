//! The terms a job is paid on, fixed at submission (DESIGN §6, "pay for
//! verified work"): the spec is stored content-addressed (its CID goes on
//! chain, so a verifier replays exactly what was asked), the step count the
//! spec implies bounds what the node may commit, and each committed step
//! has a price.
//!
//! Implied steps: a training job runs `epochs × ⌈samples / batch_size⌉`
//! steps and an inference job `⌈samples / batch_size⌉` batches, where
//! `samples` is counted from the dataset in the store the way the runtimes
//! read it (CSV: lines after a header; NPY: the first dimension; the file
//! chosen by `ARTHA_DATA_FILE`, else `train.csv`, `data.csv`, `x.npy`,
//! `inputs.csv`, `inputs.npy`, else the only `.csv`).
//!
//! The price of a step is the reference's "GPU-seconds = steps × seconds
//! per step × rate" with the seconds per step the spec itself allows: the
//! estimate the budget covered at admission (billed devices × the time
//! limit × the rate) spread over the implied steps. A job that runs all
//! its steps is paid its estimate; one that stops at step k is paid k
//! steps; time a node sleeps, idles or runs into its limit earns nothing.
//! Data the engine cannot count (another format, an agent job) is priced
//! at one GPU-second per step ([`DEFAULT_GPU_MS_PER_STEP`]) and bounded by
//! what the budget buys. A node claiming more steps than the bound is
//! refused on chain (`StepsOverMax`).

use artha_core::{Amount, ArthaUri, Cid, Error, ErrorKind, JobKind, JobSpec, Result, Runtime};

use crate::engine::parts::Parts;
use crate::fsutil::io_err;
use crate::jobs::now_ms;
use crate::store::EntryKind;

use artha_core::money::DEFAULT_GPU_MS_PER_STEP;

/// Largest data file counted (bigger ones are bounded by the budget).
const MAX_COUNTED_BYTES: u64 = 1 << 30;

/// What a job is submitted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Terms {
    pub spec: Cid,
    pub max_steps: u64,
    pub price_per_step: Amount,
}

/// Stores the spec, prices a step and bounds the steps. `InvalidInput`
/// naming `budget` when the budget cannot pay for the steps the spec
/// implies.
pub(crate) async fn terms(
    parts: &Parts,
    job: &artha_core::JobId,
    spec: &JobSpec,
    dataset: Option<&ArthaUri>,
    model: Option<&ArthaUri>,
) -> Result<Terms> {
    let spec_cid = store_spec(parts, job, spec).await?;
    let (max_steps, price) = match implied_steps(parts, spec, dataset, model).await? {
        Some(n) if n > 0 => {
            let estimate = parts.cost.estimate(spec)?.cost;
            let price = Amount::from_wei((estimate.wei() / u128::from(n)).max(1));
            if price
                .checked_mul(u128::from(n))
                .is_none_or(|c| c > spec.budget)
            {
                return Err(Error::invalid(
                    "budget",
                    format!(
                        "{} does not pay for the {n} steps the spec implies at {price} per step",
                        spec.budget
                    ),
                ));
            }
            (n, price)
        }
        _ => {
            let price = parts.cost.step_price(spec, DEFAULT_GPU_MS_PER_STEP)?;
            let affordable = (spec.budget.wei() / price.wei()).min(u128::from(u64::MAX)) as u64;
            (affordable, price)
        }
    };
    if max_steps == 0 {
        return Err(Error::invalid(
            "budget",
            format!("{} does not pay for one step at {price}", spec.budget),
        ));
    }
    Ok(Terms {
        spec: spec_cid,
        max_steps,
        price_per_step: price,
    })
}

/// The spec's canonical JSON, stored and pinned with the job's deal.
/// The job's document — its spec and, for a native runtime, the digest of
/// the runtime program this engine trusts ([`artha_core::audit::JobDocument`])
/// — stored and pinned; its CID is the job's `specCid` on chain.
pub(crate) async fn store_spec(
    parts: &Parts,
    job: &artha_core::JobId,
    spec: &JobSpec,
) -> Result<Cid> {
    let code = match spec.runtime {
        Runtime::Native(_) => parts.runtime_code(),
        Runtime::Image(_) => None,
    };
    let doc = artha_core::audit::JobDocument::new(spec.clone(), code);
    let bytes = serde_json::to_vec(&doc)
        .map_err(|e| Error::new(ErrorKind::Internal, "cannot encode the spec").with_source(e))?;
    Ok(*super::prove::publish(parts, job, "spec.json", &bytes)
        .await?
        .cid())
}

/// The step count `spec` implies, or `None` when its data cannot be counted.
/// (`dataset`: the spec's dataset, resolved.)
async fn implied_steps(
    parts: &Parts,
    spec: &JobSpec,
    dataset: Option<&ArthaUri>,
    model: Option<&ArthaUri>,
) -> Result<Option<u64>> {
    let batch = u64::from(spec.hyper.batch_size.max(1));
    let per_pass = match spec.kind {
        JobKind::Train | JobKind::Infer => match dataset {
            Some(uri) => count_samples(parts, uri, spec, model)
                .await?
                .map(|n| n.div_ceil(batch)),
            None => None,
        },
        _ => None,
    };
    // Only the runtimes whose data layout the engine knows are counted.
    let known = matches!(&spec.runtime, Runtime::Native(_))
        || matches!(&spec.runtime, Runtime::Image(i) if i.contains("artha/"));
    Ok(match (per_pass, spec.kind, known) {
        (Some(p), JobKind::Train, true) => Some(p.saturating_mul(u64::from(spec.hyper.epochs))),
        (Some(p), JobKind::Infer, true) => Some(p),
        _ => None,
    })
}

/// Counts the samples of the data file the runtimes would read. A text
/// (`.txt`, a language model's training data) has `(tokens − 1) / L` rows
/// (`runtimes/LM.md`): tokens are bytes, or characters for the model's
/// `char` tokenizer, and `L` is `ARTHA_SEQ_LEN`, else the model's
/// `max_position_embeddings` (128 when its `config.json` does not say).
async fn count_samples(
    parts: &Parts,
    uri: &ArthaUri,
    spec: &JobSpec,
    model: Option<&ArthaUri>,
) -> Result<Option<u64>> {
    let listing = parts.store.ls(uri).await?;
    let (file, name) = match listing.kind {
        EntryKind::Dir => {
            let names: Vec<&str> = listing
                .entries
                .iter()
                .filter(|e| e.kind() == EntryKind::File)
                .map(|e| e.name.as_str())
                .collect();
            let training = spec.kind == JobKind::Train;
            let preferred: &[&str] = if training {
                &["train.csv", "data.csv", "x.npy", "train.txt"]
            } else {
                &["inputs.csv", "inputs.npy", "x.npy", "data.csv"]
            };
            let explicit = spec.env.get("ARTHA_DATA_FILE").map(String::as_str);
            let csvs: Vec<&str> = names
                .iter()
                .copied()
                .filter(|n| n.ends_with(".csv"))
                .collect();
            let txts: Vec<&str> = names
                .iter()
                .copied()
                .filter(|n| n.ends_with(".txt"))
                .collect();
            let pick = explicit
                .filter(|n| names.contains(n))
                .or_else(|| preferred.iter().copied().find(|p| names.contains(p)))
                .or_else(|| (csvs.len() == 1).then(|| csvs[0]))
                .or_else(|| (training && csvs.is_empty() && txts.len() == 1).then(|| txts[0]));
            let Some(pick) = pick else { return Ok(None) };
            let child: ArthaUri = format!("{uri}/{pick}").parse()?;
            (child, pick.to_string())
        }
        EntryKind::File => (uri.clone(), String::new()),
        _ => return Ok(None),
    };
    let Some(bytes) = read_stored(parts, &file, MAX_COUNTED_BYTES).await? else {
        return Ok(None);
    };
    let text = name.ends_with(".txt") || (name.is_empty() && file.to_string().ends_with(".txt"));
    if text {
        return Ok(text_rows(parts, &bytes, spec, model).await);
    }
    Ok(
        if bytes.starts_with(b"\x93NUMPY") || name.ends_with(".npy") {
            npy_rows(&bytes)
        } else {
            Some(csv_rows(&bytes))
        },
    )
}

/// A model's `config.json` read for counting or checking is at most this.
pub(crate) const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// A stored file's bytes (`None` above `limit` bytes).
pub(crate) async fn read_stored(
    parts: &Parts,
    file: &ArthaUri,
    limit: u64,
) -> Result<Option<Vec<u8>>> {
    if parts.store.ls(file).await?.size > limit {
        return Ok(None);
    }
    let tmp = parts
        .home
        .dir("jobs")
        .join(format!(".count-{}-{}", now_ms(), std::process::id()));
    parts.store.get(file, &tmp).await?;
    let bytes = std::fs::read(&tmp).map_err(|e| io_err("read a dataset", &tmp, e));
    let _ = std::fs::remove_file(&tmp);
    bytes.map(Some)
}

/// A text's rows for a language model (see [`count_samples`]); `None`
/// when the model's configuration cannot be read or the text is not
/// UTF-8 under a char tokenizer (the runtime refuses it anyway).
async fn text_rows(
    parts: &Parts,
    bytes: &[u8],
    spec: &JobSpec,
    model: Option<&ArthaUri>,
) -> Option<u64> {
    let mut config = serde_json::Value::Null;
    if let Some(m) = model
        && let Ok(l) = parts.store.ls(m).await
        && l.kind == EntryKind::Dir
        && l.entries.iter().any(|e| e.name == "config.json")
    {
        let uri: ArthaUri = format!("{m}/config.json").parse().ok()?;
        let raw = read_stored(parts, &uri, MAX_CONFIG_BYTES).await.ok()??;
        config = serde_json::from_slice(&raw).ok()?;
    }
    let seq_len = match spec.env.get("ARTHA_SEQ_LEN") {
        Some(v) => v.trim().parse::<u64>().ok()?,
        None => config["max_position_embeddings"].as_u64().unwrap_or(128),
    };
    let tokens = if config["tokenizer"].as_str() == Some("char") {
        std::str::from_utf8(bytes).ok()?.chars().count() as u64
    } else {
        bytes.len() as u64
    };
    (seq_len > 0).then(|| tokens.saturating_sub(1) / seq_len)
}

/// Data lines of a CSV: non-empty lines, less a first line that is not
/// made only of numbers (a header).
fn csv_rows(bytes: &[u8]) -> u64 {
    let mut lines = bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.iter().all(|b| b.is_ascii_whitespace()));
    let Some(first) = lines.next() else { return 0 };
    let header = std::str::from_utf8(first).map_or(true, |l| {
        l.split(',').any(|c| c.trim().parse::<f64>().is_err())
    });
    lines.count() as u64 + u64::from(!header)
}

/// The first dimension of an NPY array (`None` when unreadable).
fn npy_rows(bytes: &[u8]) -> Option<u64> {
    let major = *bytes.get(6)?;
    let (len, start) = if major == 1 {
        let b = bytes.get(8..10)?;
        (usize::from(u16::from_le_bytes([b[0], b[1]])), 10usize)
    } else {
        let b = bytes.get(8..12)?;
        (u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize, 12)
    };
    let header = std::str::from_utf8(bytes.get(start..start.checked_add(len)?)?).ok()?;
    let shape = header.split("'shape':").nth(1)?;
    let inner = shape.trim_start().strip_prefix('(')?;
    let first = inner.split([',', ')']).next()?.trim();
    if first.is_empty() {
        return Some(1); // a 0-d array
    }
    first.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_headers_and_blank_lines() {
        assert_eq!(csv_rows(b"a,b,y\n1,2,0\n3,4,1\n\n"), 2);
        assert_eq!(csv_rows(b"1,2,0\n3,4,1"), 2);
        assert_eq!(csv_rows(b""), 0);
        assert_eq!(csv_rows(b"x,y\n"), 0);
    }

    #[test]
    fn npy_first_dimension() {
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (64, 3), }";
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(header.len() as u16).to_le_bytes());
        b.extend_from_slice(header.as_bytes());
        assert_eq!(npy_rows(&b), Some(64));
        assert_eq!(npy_rows(b"\x93NUMPY"), None);
    }
}
