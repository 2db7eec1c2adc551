//! The effects of a job on the world outside its directory, each recorded
//! on the job once: chain writes (through the outbox) with their receipts,
//! and artifacts collected from the job and stored.

use std::path::{Path, PathBuf};
use std::time::Duration;

use artha_core::{ArthaUri, ArtifactKind, ChainAction, Error, JobId, Receipt, Result};

use super::stage::{job_dir, mounts};
use crate::chain::outbox::Write;
use crate::engine::job_deal;
use crate::engine::parts::Parts;
use crate::exec::collect;
use crate::fsutil::io_err;
use crate::jobs::{Artifact, JobRecord};
use crate::store::PushOptions;
use crate::store::util::blocking;

/// Sends a chain write through the outbox, retrying while the chain is
/// unavailable, and records its receipt on the job once.
pub(crate) async fn chain_write(parts: &Parts, job: &JobId, w: Write) -> Result<()> {
    let action = w.action();
    let mut delay = Duration::from_millis(200);
    let receipt: Option<Receipt> = loop {
        match parts.outbox.write(w.clone()).await {
            Ok(r) => break r,
            Err(e) if e.is_retryable() => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            Err(e) => return Err(e),
        }
    };
    add_receipt(parts, job, action, receipt)
}

pub(crate) fn add_receipt(
    parts: &Parts,
    job: &JobId,
    action: ChainAction,
    r: Option<Receipt>,
) -> Result<()> {
    // Once per action: the ledger ignores a second one (one transaction).
    let Some(r) = r else { return Ok(()) };
    parts.ledger.add_receipt(job, action, r)
}

/// Whether the job's results are committed on chain: a `commit` receipt,
/// or a commit the outbox found on chain after a crash between sending it
/// and recording it (such a write has no receipt to show).
pub(crate) async fn committed(parts: &Parts, r: &JobRecord) -> bool {
    r.receipts.iter().any(|x| x.action == ChainAction::Commit)
        || parts
            .outbox
            .is_done(&r.id, ChainAction::Commit.as_str())
            .await
}

pub(crate) fn add_artifact(
    parts: &Parts,
    job: &JobId,
    kind: ArtifactKind,
    name: &str,
    uri: &ArthaUri,
) -> Result<()> {
    // Once per kind and name: the ledger ignores a second one.
    parts.ledger.add_artifact(
        job,
        Artifact {
            kind,
            name: name.into(),
            uri: uri.to_string(),
        },
    )
}

/// Where the engine copies what it collects from a job before storing it:
/// inside the job's directory (on the same filesystem as the job's files)
/// but outside every mount the job can write.
pub(crate) fn collect_dir(parts: &Parts, job: &JobId) -> Result<PathBuf> {
    let d = job_dir(parts, job).join(".collect");
    std::fs::create_dir_all(&d).map_err(|e| io_err("create the collection directory", &d, e))?;
    Ok(d)
}

/// Pushes a private copy of something collected from a job, then removes
/// the copy.
pub(crate) async fn push_collected(parts: &Parts, job: &JobId, copy: &Path) -> Result<ArthaUri> {
    let pushed = parts
        .store
        .push_path(
            copy,
            &PushOptions {
                pin: Some(job_deal(job)),
                progress: None,
            },
        )
        .await;
    let _ = crate::store::remove_tree(copy);
    Ok(pushed?.uri)
}

pub(crate) async fn store_checkpoint(parts: &Parts, r: &JobRecord, rel: &str) -> Result<ArthaUri> {
    if let Some(a) = parts
        .ledger
        .get(&r.id)?
        .artifacts
        .iter()
        .find(|a| a.kind == ArtifactKind::Checkpoint && a.name == rel)
    {
        return a.uri.parse();
    }
    if rel.is_empty()
        || Path::new(rel)
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(Error::invalid(
            "events.checkpoint.path",
            "must be a relative path inside the checkpoint directory",
        ));
    }
    // The job controls its checkpoint directory: copy the file out without
    // following links (regular files with one link only), then store the
    // copy.
    let root = mounts(parts, &r.id, &r.spec).checkpoints;
    let copy = collect_dir(parts, &r.id)?.join(unique_name("checkpoint"));
    let copied = {
        let (rel, copy) = (PathBuf::from(rel), copy.clone());
        blocking(move || collect::copy_file_out(&root, &rel, "a checkpoint", &copy)).await
    };
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&copy);
        return Err(e.with_context("field", "events.checkpoint.path"));
    }
    let uri = push_collected(parts, &r.id, &copy).await?;
    add_artifact(parts, &r.id, ArtifactKind::Checkpoint, rel, &uri)?;
    Ok(uri)
}

pub(crate) fn unique_name(what: &str) -> String {
    format!("{what}-{}", crate::fsutil::unique_suffix())
}
