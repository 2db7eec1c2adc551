//! Datasets and models: content pushed to the store, registered on the
//! chain's registries and kept in the local catalog, with their lineage.

use std::path::Path;

use artha_core::{
    ArthaUri, Cid, DatasetId, DatasetRegistration, Error, ErrorKind, KeccakHash, ModelId,
    ModelRecord, NodeId, NodeStanding, Registry, Result,
};
use serde::{Deserialize, Serialize};

use super::Engine;
use super::catalog::{DatasetEntry, ModelEntry, default_code_hash};
use crate::jobs::now_ms;
use crate::store::{PushOptions, PushReport};

/// A registration request for a dataset (its content is given apart, as a
/// URI or a path).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatasetMeta {
    /// Human name.
    pub name: String,
    /// Free-form tags, comma-separated (at most 256 bytes).
    pub tags: String,
    /// Its licence text, already stored (`NotFound` with field `license`
    /// otherwise); registered on chain by content id.
    pub license: Option<ArthaUri>,
}

impl DatasetMeta {
    /// A dataset named `name`, without tags or licence.
    pub fn named(name: impl Into<String>) -> Self {
        DatasetMeta {
            name: name.into(),
            ..Default::default()
        }
    }
}

/// A registration request for a model.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
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
    /// keccak256 of the code that produced it; `None` registers keccak256
    /// of the architecture label.
    pub code_hash: Option<KeccakHash>,
}

/// A node this engine knows, with its standing on the chain's node
/// registry and what it offers now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The node.
    pub id: NodeId,
    /// Its record on the chain.
    pub standing: NodeStanding,
    /// GPUs installed.
    pub gpus_total: u32,
    /// GPUs no job holds now.
    pub gpus_free: u32,
    /// Runtimes it runs (native runtime ids, `image` for any container
    /// image), sorted.
    pub runtimes: Vec<String>,
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
    /// catalog). The id derives from the content, the name and the licence,
    /// so registering the same file with the same name and licence twice
    /// returns the same dataset.
    pub async fn register_dataset_path(
        &self,
        path: &Path,
        meta: &DatasetMeta,
    ) -> Result<DatasetEntry> {
        let report = self.push(path).await?;
        self.register_dataset(&report.uri, meta).await
    }

    /// Registers stored content as a dataset, with its licence (which must
    /// be stored: `NotFound` with field `license` otherwise).
    pub async fn register_dataset(
        &self,
        uri: &ArthaUri,
        meta: &DatasetMeta,
    ) -> Result<DatasetEntry> {
        check_name("name", &meta.name)?;
        check_name("tags", &meta.tags)?;
        let listing = self.parts.store.ls(uri).await?;
        let cid = listing.cid.unwrap_or(*uri.cid());
        let license = match &meta.license {
            Some(l) => Some(self.license_content(l).await?),
            None => None,
        };
        let uri_text = uri.to_string();
        let license_text = meta.license.as_ref().map(ToString::to_string);
        let id = match &license_text {
            None => DatasetId::derive(&[uri_text.as_bytes(), meta.name.as_bytes()]),
            Some(l) => {
                DatasetId::derive(&[uri_text.as_bytes(), meta.name.as_bytes(), l.as_bytes()])
            }
        };
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
                tags: meta.tags.clone(),
                license,
            })
            .await;
        registered_once(r)?;
        let entry = DatasetEntry {
            id,
            uri: uri_text,
            name: meta.name.clone(),
            size: listing.size,
            tags: meta.tags.clone(),
            license: license_text,
            created_ms: now_ms(),
        };
        self.parts.catalog.put_dataset(&entry)?;
        Ok(entry)
    }

    /// The content id a licence URI names, which must be stored.
    async fn license_content(&self, license: &ArthaUri) -> Result<Cid> {
        match self.parts.store.ls(license).await {
            Ok(l) => Ok(l.cid.unwrap_or(*license.cid())),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                Err(Error::new(ErrorKind::NotFound, "licence not stored")
                    .with_context("field", "license")
                    .with_context("uri", license.to_string()))
            }
            Err(e) => Err(e.with_context("field", "license")),
        }
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
        check_name("version", &reg.version)?;
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
        if listing.kind == crate::store::EntryKind::Dir
            && listing.entries.iter().any(|e| e.name == "config.json")
        {
            let config: ArthaUri = format!("{uri}/config.json").parse()?;
            let limit = crate::lifecycle::terms::MAX_CONFIG_BYTES;
            if let Some(bytes) =
                crate::lifecycle::terms::read_stored(&self.parts, &config, limit).await?
            {
                check_architecture(&reg.architecture, &bytes)?;
            }
        }
        let cid = listing.cid.unwrap_or(*uri.cid());
        let version = if reg.version.is_empty() {
            "1".to_string()
        } else {
            reg.version.clone()
        };
        let uri_text = uri.to_string();
        let code_hash = reg
            .code_hash
            .unwrap_or_else(|| default_code_hash(&reg.architecture));
        let given_hash = reg.code_hash.map(|h| h.to_string());
        let mut parts: Vec<&[u8]> =
            vec![uri_text.as_bytes(), reg.name.as_bytes(), version.as_bytes()];
        if let Some(h) = &given_hash {
            parts.push(h.as_bytes());
        }
        let id = ModelId::derive(&parts);
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
                code_hash,
                version: version.clone(),
                parent: reg.parent,
                job: None,
            })
            .await;
        registered_once(r)?;
        let entry = ModelEntry {
            id,
            uri: uri_text,
            name: reg.name.clone(),
            architecture: reg.architecture.clone(),
            version,
            parent: reg.parent,
            dataset: reg.dataset,
            job: None,
            code_hash: code_hash.to_string(),
            created_ms: now_ms(),
        };
        self.parts.catalog.put_model(&entry)?;
        Ok(entry)
    }

    /// Every dataset in the catalog, newest first.
    pub fn datasets(&self) -> Result<Vec<DatasetEntry>> {
        self.parts.catalog.datasets()
    }

    /// Every model in the catalog, newest first.
    pub fn models(&self) -> Result<Vec<ModelEntry>> {
        self.parts.catalog.models()
    }

    /// A dataset from the catalog, checked against the chain's record:
    /// `NotFound` naming the id when the catalog lacks it, `Corrupted`
    /// naming it (and the `field`) when the entry's content or licence
    /// differs from what the chain holds, or the chain holds none.
    pub async fn dataset(&self, id: &DatasetId) -> Result<DatasetEntry> {
        let entry = self.parts.catalog.dataset(id)?.ok_or_else(|| {
            Error::new(ErrorKind::NotFound, "unknown dataset")
                .with_context("dataset_id", id.to_string())
        })?;
        let reg = self
            .parts
            .chain
            .dataset(id)
            .await
            .map_err(|e| unregistered(e, "dataset_id", id.to_string()))?;
        let tampered = |field: &str| tampered("dataset", "dataset_id", id.to_string(), field);
        if !self.names_content(&entry.uri, &reg.content).await? {
            return Err(tampered("uri"));
        }
        let license_ok = match (&entry.license, &reg.license) {
            (None, None) => true,
            (Some(uri), Some(cid)) => self.names_content(uri, cid).await?,
            _ => false,
        };
        if !license_ok {
            return Err(tampered("license"));
        }
        Ok(entry)
    }

    /// A model from the catalog, checked against the chain's record:
    /// `NotFound` naming the id when the catalog lacks it, `Corrupted`
    /// naming it (and the `field`) when the entry's content or code hash
    /// differs from what the chain holds, or the chain holds none.
    pub async fn model(&self, id: &ModelId) -> Result<ModelEntry> {
        let entry = self.parts.catalog.model(id)?.ok_or_else(|| {
            Error::new(ErrorKind::NotFound, "unknown model")
                .with_context("model_id", id.to_string())
        })?;
        let record = self
            .parts
            .chain
            .model(id)
            .await
            .map_err(|e| unregistered(e, "model_id", id.to_string()))?;
        self.check_model(&entry, &record).await?;
        Ok(entry)
    }

    /// A model then its ancestors, nearest first, as the chain's
    /// `ModelRegistry` links them (`NotFound` for a model it does not
    /// know). Each comes from the catalog, checked against the chain as by
    /// [`model`](Self::model); an ancestor missing from the catalog (one
    /// registered by another engine) appears with what the chain holds: no
    /// name, `created_ms` 0.
    pub async fn lineage(&self, id: &ModelId) -> Result<Vec<ModelEntry>> {
        let ids = self.parts.chain.lineage(id).await?;
        let mut out = Vec::with_capacity(ids.len());
        for m in ids {
            let record = self.parts.chain.model(&m).await?;
            match self.parts.catalog.model(&m)? {
                Some(entry) => {
                    self.check_model(&entry, &record).await?;
                    out.push(entry);
                }
                None => out.push(ModelEntry {
                    id: record.id,
                    uri: ArthaUri::new(record.content).to_string(),
                    name: String::new(),
                    architecture: record.architecture,
                    version: record.version,
                    parent: record.parent,
                    dataset: record.dataset,
                    job: record.job,
                    code_hash: record.code_hash.to_string(),
                    created_ms: 0,
                }),
            }
        }
        Ok(out)
    }

    /// The nodes this engine knows — today its own — with their standing
    /// on the chain (`NotFound` if a node is not registered there).
    pub async fn nodes(&self) -> Result<Vec<NodeInfo>> {
        let id = self.parts.node;
        let standing = self.parts.chain.node(&id).await?;
        let mut runtimes: Vec<String> = self
            .parts
            .executors
            .iter()
            .flat_map(|e| e.runtimes())
            .collect();
        runtimes.sort();
        runtimes.dedup();
        Ok(vec![NodeInfo {
            id,
            standing,
            gpus_total: u32::try_from(self.parts.gpus.inventory().devices.len())
                .unwrap_or(u32::MAX),
            gpus_free: self.parts.gpus.free_count(),
            runtimes,
        }])
    }

    /// `Corrupted` unless a catalog model matches its chain record.
    async fn check_model(&self, entry: &ModelEntry, record: &ModelRecord) -> Result<()> {
        let tampered = |field: &str| tampered("model", "model_id", entry.id.to_string(), field);
        if !self.names_content(&entry.uri, &record.content).await? {
            return Err(tampered("uri"));
        }
        if entry.code_hash != record.code_hash.to_string() {
            return Err(tampered("code_hash"));
        }
        Ok(())
    }

    /// Whether the URI text of a catalog entry names `content`: its root
    /// CID, or (for a URI with a path) the CID the path resolves to.
    async fn names_content(&self, uri: &str, content: &Cid) -> Result<bool> {
        let Ok(uri) = uri.parse::<ArthaUri>() else {
            return Ok(false);
        };
        if uri.cid() == content {
            return Ok(true);
        }
        if uri.is_root() {
            return Ok(false);
        }
        match self.parts.store.ls(&uri).await {
            Ok(l) => Ok(l.cid.as_ref() == Some(content)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// The error of a catalog entry that differs from the chain's record.
fn tampered(what: &str, key: &'static str, id: String, field: &str) -> Error {
    Error::new(
        ErrorKind::Corrupted,
        format!("the catalog's {what} does not match its registration on chain"),
    )
    .with_context(key, id)
    .with_context("field", field.to_string())
}

/// A chain read of a catalog entry: `NotFound` there means the catalog
/// names a registration the chain does not hold.
fn unregistered(e: Error, key: &'static str, id: String) -> Error {
    if e.kind() == ErrorKind::NotFound {
        Error::new(
            ErrorKind::Corrupted,
            "the catalog holds an entry the chain has no registration of",
        )
        .with_context(key, id)
        .with_context("field", "registration")
    } else {
        e
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

/// Refuses an architecture label that contradicts the model's own
/// `config.json`: its `kind` (the native runtime's `mlp`, `logreg`,
/// `llama`) or Hugging Face `model_type`. The label matches when it is the
/// declared kind or starts with it, ignoring case (`llama`, `Llama-3`,
/// `LlamaForCausalLM`); a configuration that declares nothing, is not JSON
/// or is larger than 1 MiB is not checked here (the runtime reads it).
fn check_architecture(architecture: &str, config: &[u8]) -> Result<()> {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(config) else {
        return Ok(());
    };
    let Some(kind) = v["kind"].as_str().or_else(|| v["model_type"].as_str()) else {
        return Ok(());
    };
    let (label, kind_lc) = (architecture.to_lowercase(), kind.to_lowercase());
    if label.starts_with(&kind_lc) {
        return Ok(());
    }
    Err(Error::invalid(
        "architecture",
        format!("`{architecture}` does not match the model's config.json, which declares `{kind}`"),
    )
    .with_context("declared", kind.to_string()))
}

#[cfg(test)]
mod architecture_tests {
    use super::check_architecture;

    #[test]
    fn the_label_must_match_the_declared_kind() {
        let llama = br#"{"kind": "llama", "hidden_size": 64}"#;
        for ok in ["llama", "Llama-3", "LlamaForCausalLM"] {
            check_architecture(ok, llama).unwrap();
        }
        let e = check_architecture("mlp", llama).unwrap_err();
        assert_eq!(e.context_value("field"), Some("architecture"));
        assert!(
            e.to_string().contains("`mlp`") && e.to_string().contains("`llama`"),
            "{e}"
        );
        check_architecture("gpt2", br#"{"model_type": "gpt2"}"#).unwrap();
        assert!(check_architecture("llama", br#"{"model_type": "gpt2"}"#).is_err());
        // Nothing declared, or not JSON: not checked here.
        check_architecture("resnet50", br#"{"hidden": [16]}"#).unwrap();
        check_architecture("resnet50", b"not json").unwrap();
    }
}
