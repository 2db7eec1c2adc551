//! Proving: the job's events become its proof manifest (window roots and
//! checkpoints, or inference digests), which is stored with the job's
//! outputs and committed on chain; a trained model is registered with its
//! lineage.

use artha_core::{
    ArthaUri, ArtifactKind, ChainAction, Error, ErrorKind, InputRef, JobId, JobKind, MerkleTree,
    ModelRecord, ProofChain, Registry, Result, Runtime, RuntimeEvent,
};

use super::effects::{
    add_artifact, add_receipt, chain_write, collect_dir, push_collected, store_checkpoint,
    unique_name,
};
use super::run::read_events;
use super::stage::{events_path, job_dir, mounts};
use crate::chain::outbox::Write;
use crate::engine::ModelEntry;
use crate::engine::job_deal;
use crate::engine::parts::Parts;
use crate::exec::collect;
use crate::fsutil::{io_err, write_atomic};
use crate::jobs::{JobPhase, JobRecord, now_ms};
use crate::proofs::{MANIFEST_FORMAT, ProofManifest, ProofRecorder};
use crate::store::PushOptions;
use crate::store::util::blocking;

/// Builds the proofs from the events, stores the manifest and outputs,
/// commits on chain, and (for a trained model) registers it with its
/// lineage. `partial` is the phase a failed or cancelled run ends in: its
/// steps are committed without a `complete` event; with no steps it is a
/// `NotFound` error (nothing to commit).
pub(crate) async fn prove(parts: &Parts, r: &JobRecord, partial: Option<JobPhase>) -> Result<()> {
    let job = r.id;
    let events = read_events(&events_path(parts, &job))?;
    let m = mounts(parts, &job, &r.spec);
    let (manifest, outputs) = if r.spec.kind == JobKind::Train || partial.is_some() {
        let mut rec = ProofRecorder::new(job, r.spec.proof_window, 1)?;
        for e in &events {
            rec.record(e)?;
        }
        if rec.steps().is_empty() {
            return Err(Error::new(ErrorKind::NotFound, "no step was computed"));
        }
        for c in rec.checkpoints().to_vec() {
            match store_checkpoint(parts, r, &c.path).await {
                Ok(uri) => rec.set_checkpoint_cid(&c.path, *uri.cid()),
                // A checkpoint the job reported but that is refused (a link,
                // a device, too big) fails the job with the reason.
                Err(e) if e.kind() == ErrorKind::InvalidInput => return Err(e),
                // One it removed since (runtimes rotate checkpoints) is left out.
                Err(_) => {}
            }
        }
        let mut manifest = if partial.is_some() {
            rec.finish_partial()?
        } else {
            rec.finish()?.0
        };
        // The canonical step log, published so anyone can rebuild the root
        // and replay against it (the commitment binds it through the root).
        let log = artha_core::audit::encode_step_log(rec.steps());
        manifest.step_log = Some(*publish(parts, &job, "steps.log", &log).await?.cid());
        (manifest, None)
    } else {
        let mut manifest = infer_manifest(&job, &events)?;
        // The inference log (input and output digests per batch), published
        // like a step log so anyone can replay the batches against it.
        let records: Vec<artha_core::InferRecord> = events
            .iter()
            .filter_map(|e| match e {
                RuntimeEvent::Infer(i) => Some(*i),
                _ => None,
            })
            .collect();
        let log = artha_core::audit::encode_infer_log(&records);
        manifest.step_log = Some(*publish(parts, &job, "infer.log", &log).await?.cid());
        (manifest, Some(m.checkpoints.clone()))
    };
    let mut manifest = manifest;
    manifest.spec = Some(super::terms::store_spec(parts, &job, &r.spec).await?);
    manifest.validate()?;

    // The manifest and any outputs go to the store.
    let bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| {
        Error::new(ErrorKind::Internal, "cannot encode the proof manifest").with_source(e)
    })?;
    // Written where the job cannot write (not its /artha mount).
    let muri = publish(parts, &job, "proofs.json", &bytes).await?;
    add_artifact(parts, &job, ArtifactKind::Proofs, "proofs.json", &muri)?;
    if let Some(dir) = outputs {
        // The job's output tree, copied out without following links.
        let copy = collect_dir(parts, &job)?.join(unique_name("outputs"));
        let copied = {
            let copy = copy.clone();
            blocking(move || collect::copy_tree_out(&dir, "outputs", &copy)).await
        };
        if let Err(e) = copied {
            let _ = crate::store::remove_tree(&copy);
            return Err(e);
        }
        let out = push_collected(parts, &job, &copy).await?;
        add_artifact(parts, &job, ArtifactKind::Outputs, "outputs", &out)?;
    }

    let commitment = manifest.commitment(*muri.cid())?;
    chain_write(parts, &job, Write::Commit(commitment)).await?;

    if partial.is_none() && r.spec.kind == JobKind::Train {
        register_trained_model(parts, r).await?;
    }
    if partial.is_none() {
        parts
            .ledger
            .transition(&job, JobPhase::Proving, JobPhase::Completed, None)?;
    }
    Ok(())
}

/// Writes `bytes` as `name` in the job's directory (where the job cannot
/// write), atomically, and stores it pinned with the job's deal.
pub(crate) async fn publish(
    parts: &Parts,
    job: &JobId,
    name: &str,
    bytes: &[u8],
) -> Result<ArthaUri> {
    let path = job_dir(parts, job).join(name);
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| io_err("create the job directory", d, e))?;
    }
    write_atomic(&path, bytes)?;
    let pin = PushOptions {
        pin: Some(job_deal(job)),
        progress: None,
    };
    Ok(parts.store.push_path(&path, &pin).await?.uri)
}

/// An inference job's proofs: one window whose leaves are the `infer`
/// records (input and output digests) in order.
pub(crate) fn infer_manifest(job: &JobId, events: &[RuntimeEvent]) -> Result<ProofManifest> {
    let leaves: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            RuntimeEvent::Infer(i) => Some(i.leaf()),
            _ => None,
        })
        .collect();
    let final_weights = events
        .iter()
        .find_map(|e| match e {
            RuntimeEvent::Complete { final_weights, .. } => Some(*final_weights),
            _ => None,
        })
        .ok_or_else(|| Error::invalid("events", "the runtime never reported `complete`"))?;
    if leaves.is_empty() {
        return Err(Error::invalid("events", "no inference was served"));
    }
    let n = leaves.len();
    let window_root = MerkleTree::from_leaves(leaves)?.root();
    let job_root = MerkleTree::from_leaves(vec![window_root])?.root();
    Ok(ProofManifest {
        format: MANIFEST_FORMAT.into(),
        job_id: *job,
        window: u32::try_from(n).map_err(|_| Error::invalid("events", "too many inferences"))?,
        first_step: 1,
        steps: n as u64,
        window_roots: vec![window_root],
        job_root,
        final_weights,
        checkpoints: Vec::new(),
        step_log: None,
        spec: None,
    })
}

pub(crate) async fn register_trained_model(parts: &Parts, r: &JobRecord) -> Result<()> {
    let job = r.id;
    let rec = parts.ledger.get(&job)?;
    let Some(final_ckpt) = rec
        .artifacts
        .iter()
        .find(|a| a.kind == ArtifactKind::Checkpoint && a.name == "final.safetensors")
        .cloned()
    else {
        return Ok(()); // a runtime that keeps no final weights file
    };
    let uri: ArthaUri = final_ckpt.uri.parse()?;
    add_artifact(parts, &job, ArtifactKind::Model, "final.safetensors", &uri)?;
    let parent = match &r.spec.model {
        Some(InputRef::Id(m)) => Some(*m),
        _ => None,
    };
    let dataset = match &r.spec.dataset {
        Some(InputRef::Id(d)) => Some(*d),
        _ => None,
    };
    let architecture = match &r.spec.runtime {
        Runtime::Native(id) => id.clone(),
        Runtime::Image(img) => img.clone(),
    };
    let id = artha_core::ModelId::derive(&[b"trained", job.as_bytes()]);
    let code_hash = crate::engine::catalog::default_code_hash(&architecture);
    if parts.catalog.model(&id)?.is_none() {
        let receipt = parts
            .chain
            .register_model(&ModelRecord {
                id,
                content: *uri.cid(),
                architecture: architecture.clone(),
                dataset,
                code_hash,
                version: "1".into(),
                parent,
                job: Some(job),
            })
            .await;
        match receipt {
            Ok(rc) => add_receipt(parts, &job, ChainAction::ModelRegister, Some(rc))?,
            // Registered before a crash, not yet in the catalog.
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        parts.catalog.put_model(&ModelEntry {
            id,
            uri: uri.to_string(),
            name: format!("trained by {job}"),
            architecture,
            version: "1".into(),
            parent,
            dataset,
            job: Some(job),
            code_hash: code_hash.to_string(),
            created_ms: now_ms(),
        })?;
    }
    Ok(())
}

/// The manifest a job committed: the one whose CID the chain holds (read
/// from the store and checked against the commitment: a manifest whose
/// root, steps or window differ is `Corrupted`), or, before a commit, the
/// one the job stored.
pub(crate) async fn manifest_of(parts: &Parts, job: &JobId) -> Result<ProofManifest> {
    let onchain = parts.chain.commitment(job).await.ok().flatten();
    let uri: ArthaUri = match &onchain {
        Some(c) => ArthaUri::new(c.manifest),
        None => {
            let r = parts.ledger.get(job)?;
            let a = r
                .artifacts
                .iter()
                .find(|a| a.kind == ArtifactKind::Proofs)
                .ok_or_else(|| {
                    Error::new(ErrorKind::NotFound, "the job has no proofs yet")
                        .with_context("job_id", job.to_string())
                })?;
            a.uri.parse()?
        }
    };
    let tmp = parts
        .home
        .dir("jobs")
        .join(format!(".proofs-{job}-{}", now_ms()));
    parts.store.get(&uri, &tmp).await?;
    let bytes = std::fs::read(&tmp).map_err(|e| io_err("read the proof manifest", &tmp, e));
    let _ = std::fs::remove_file(&tmp);
    let m: ProofManifest = serde_json::from_slice(&bytes?).map_err(|e| {
        Error::new(
            ErrorKind::Corrupted,
            format!("proof manifest is malformed: {e}"),
        )
        .with_context("uri", uri.to_string())
    })?;
    m.validate()?;
    if let Some(c) = onchain
        && (c.job_root != m.job_root
            || c.steps != m.steps
            || c.window != m.window
            || m.job_id != *job)
    {
        return Err(Error::new(
            ErrorKind::Corrupted,
            "the proof manifest disagrees with the commitment on chain",
        )
        .with_context("job_id", job.to_string())
        .with_context("chain_root", c.job_root.to_string())
        .with_context("manifest_root", m.job_root.to_string()));
    }
    Ok(m)
}
