//! Datasets and models: content pushed to the store, registered on the
//! chain's registries and kept in the local catalog, with their lineage.

use std::path::Path;

use artha_core::{
    ArthaUri, DatasetId, DatasetRegistration, Error, ErrorKind, KeccakHash, ModelId, ModelRecord,
    Registry, Result,
};

use super::Engine;
use super::catalog::{DatasetEntry, ModelEntry};
use crate::jobs::now_ms;
use crate::store::{PushOptions, PushReport};

/// A registration request for a model.
#[derive(Debug, Clone, Default)]
pub struct ModelRegistration {
    /// Human name.
    pub name: String,
    /// Architecture, e.g. `mlp`.
    pub architecture: String,
    /// Version label (default `1`).
    pub version: String,
    /// The model it derives from.
    pub parent: Option<ModelId>,
    /// The dataset it was trained on.
    pub dataset: Option<DatasetId>,
}

impl Engine {
    /// Pushes a file or tree into the store and pins it.
    pub async fn push(&self, path: &Path) -> Result<PushReport> {
        self.parts
            .store
            .push_path(path, &PushOptions::default())
            .await
    }

    /// Pushes `path` and registers it as a dataset (on chain and in the
    /// catalog). The id derives from the content and name, so registering
    /// the same file under the same name twice returns the same dataset.
    pub async fn register_dataset_path(
        &self,
        path: &Path,
        name: &str,
        tags: &str,
    ) -> Result<DatasetEntry> {
        let report = self.push(path).await?;
        self.register_dataset(&report.uri, name, tags).await
    }

    /// Registers stored content as a dataset.
    pub async fn register_dataset(
        &self,
        uri: &ArthaUri,
        name: &str,
        tags: &str,
    ) -> Result<DatasetEntry> {
        check_name("name", name)?;
        let listing = self.parts.store.ls(uri).await?;
        let cid = listing.cid.unwrap_or(*uri.cid());
        let id = DatasetId::derive(&[uri.to_string().as_bytes(), name.as_bytes()]);
        if let Some(d) = self.parts.catalog.dataset(&id)? {
            return Ok(d);
        }
        let r = self
            .parts
            .chain
            .register_dataset(&DatasetRegistration {
                id,
                content: cid,
                size: listing.size,
                tags: tags.to_string(),
                license: None,
            })
            .await;
        registered_once(r)?;
        let entry = DatasetEntry {
            id,
            uri: uri.to_string(),
            name: name.to_string(),
            size: listing.size,
            tags: tags.to_string(),
            created_ms: now_ms(),
        };
        self.parts.catalog.put_dataset(&entry)?;
        Ok(entry)
    }

    /// Registers stored content (weights, or a directory with `config.json`)
    /// as a model (on chain and in the catalog), with its lineage.
    pub async fn register_model(
        &self,
        uri: &ArthaUri,
        reg: &ModelRegistration,
    ) -> Result<ModelEntry> {
        check_name("name", &reg.name)?;
        check_name("architecture", &reg.architecture)?;
        if let Some(p) = &reg.parent
            && self.parts.catalog.model(p)?.is_none()
        {
            return Err(Error::new(ErrorKind::NotFound, "unknown parent model")
                .with_context("field", "parent")
                .with_context("model_id", p.to_string()));
        }
        if let Some(d) = &reg.dataset
            && self.parts.catalog.dataset(d)?.is_none()
        {
            return Err(Error::new(ErrorKind::NotFound, "unknown dataset")
                .with_context("field", "dataset")
                .with_context("dataset_id", d.to_string()));
        }
        let listing = self.parts.store.ls(uri).await?;
        let cid = listing.cid.unwrap_or(*uri.cid());
        let version = if reg.version.is_empty() {
            "1".to_string()
        } else {
            reg.version.clone()
        };
        let id = ModelId::derive(&[
            uri.to_string().as_bytes(),
            reg.name.as_bytes(),
            version.as_bytes(),
        ]);
        if let Some(m) = self.parts.catalog.model(&id)? {
            return Ok(m);
        }
        let r = self
            .parts
            .chain
            .register_model(&ModelRecord {
                id,
                content: cid,
                architecture: reg.architecture.clone(),
                dataset: reg.dataset,
                code_hash: KeccakHash::of(reg.architecture.as_bytes()),
                version: version.clone(),
                parent: reg.parent,
                job: None,
            })
            .await;
        registered_once(r)?;
        let entry = ModelEntry {
            id,
            uri: uri.to_string(),
            name: reg.name.clone(),
            architecture: reg.architecture.clone(),
            version,
            parent: reg.parent,
            dataset: reg.dataset,
            job: None,
            created_ms: now_ms(),
        };
        self.parts.catalog.put_model(&entry)?;
        Ok(entry)
    }
}

/// A registration's chain write, where `AlreadyExists` means it was already
/// made: ids derive from the content and name, so it is the same
/// registration, written on chain before a crash kept it out of the
/// catalog.
fn registered_once(r: Result<artha_core::Receipt>) -> Result<()> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

fn check_name(field: &str, value: &str) -> Result<()> {
    if value.len() > 256 || value.chars().any(char::is_control) {
        return Err(Error::invalid(
            field,
            "must be at most 256 characters with no control characters",
        ));
    }
    Ok(())
}
