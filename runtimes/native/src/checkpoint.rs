//! Checkpoints: safetensors files that carry everything a resume needs.
//!
//! Tensors (all `F32`): the parameters under their model names
//! (`fc.0.weight`, …) and the optimizer state as
//! `optim.<slot>.<parameter>` (`optim.exp_avg.fc.0.weight`, …).
//! `__metadata__` (strings):
//!
//! | key | value |
//! |---|---|
//! | `format` | `artha-runtime-checkpoint/1` |
//! | `model` | the [`ModelConfig`] as JSON |
//! | `weights_digest` | named-tensor digest of the parameters (checked on load) |
//! | `train` | a [`TrainState`] as JSON (absent in a weights-only file) |
//! | `optimizer_digest` | with `train`: named-tensor digest of the `optim.*` tensors, in file order (checked on load) |
//!
//! The random stream needs no saved state (it is addressed by seed and
//! step, see [`crate::rng`]), so `train.step` is the whole "RNG position".
//! Files are written to a temporary name, synced and renamed into place, so
//! a reader never sees half a checkpoint.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use artha_core::{Blake3Digest, Error, ErrorKind, Result};
use candle_core::{Device, Tensor};
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use crate::digest::NamedDigest;
use crate::kernels::tensor_err;
use crate::model::{Model, ModelConfig};
use crate::optim::{Optimizer, OptimizerConfig};

/// The `format` metadata value.
pub const FORMAT: &str = "artha-runtime-checkpoint/1";

/// Training position and the settings a resume must share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainState {
    /// Global steps completed.
    pub step: u64,
    /// Epoch of the last completed step.
    pub epoch: u32,
    /// The job's seed.
    pub seed: u64,
    /// Samples per step.
    pub batch_size: usize,
    /// Optimizer and its hyper-parameters.
    pub optimizer: OptimizerConfig,
    /// Optimizer updates applied (equals `step` for a run from scratch).
    pub optimizer_t: u64,
    /// Named-tensor digest of the training data.
    pub data_digest: Blake3Digest,
    /// Samples in the training data.
    pub rows: usize,
}

/// A checkpoint read back.
#[derive(Debug)]
pub struct Loaded {
    /// The model.
    pub model: Model,
    /// Its weight digest (verified).
    pub weights_digest: Blake3Digest,
    /// Training state, when the file has one.
    pub train: Option<TrainState>,
    /// Optimizer, when the file has training state.
    pub optimizer: Option<Optimizer>,
}

fn io_err(path: &Path, what: &str) -> impl Fn(std::io::Error) -> Error {
    let path = path.display().to_string();
    let what = what.to_string();
    move |e| {
        let kind = if e.kind() == std::io::ErrorKind::PermissionDenied {
            ErrorKind::PermissionDenied
        } else {
            ErrorKind::Internal
        };
        Error::new(kind, format!("cannot {what} checkpoint"))
            .with_context("path", path.clone())
            .with_source(e)
    }
}

fn host_f32(t: &Tensor) -> Result<Vec<u8>> {
    let v = t
        .flatten_all()
        .and_then(|f| f.to_vec1::<f32>())
        .map_err(tensor_err("read back"))?;
    let mut out = Vec::with_capacity(v.len() * 4);
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
    Ok(out)
}

/// Writes `model` (and, for a training checkpoint, `optimizer` and
/// `state`) to `path` atomically; returns the weight digest.
pub fn save(
    path: &Path,
    model: &Model,
    training: Option<(&Optimizer, &TrainState)>,
) -> Result<Blake3Digest> {
    let digest = model.digest()?;
    let mut blobs: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (n, p) in model.names().iter().zip(model.params()) {
        blobs.push((n.clone(), p.dims().to_vec(), host_f32(p)?));
    }
    let mut meta = BTreeMap::new();
    meta.insert("format".to_string(), FORMAT.to_string());
    meta.insert("model".into(), json(model.config())?);
    meta.insert("weights_digest".into(), digest.to_string());
    if let Some((opt, state)) = training {
        let slots = opt.config().state_slots();
        let mut od = NamedDigest::new();
        for (n, st) in model.names().iter().zip(opt.state()) {
            for (slot, t) in slots.iter().zip(st) {
                let name = format!("optim.{slot}.{n}");
                od.push_tensor(&name, t)?;
                blobs.push((name, t.dims().to_vec(), host_f32(t)?));
            }
        }
        meta.insert("optimizer_digest".into(), od.finish()?.to_string());
        meta.insert("train".into(), json(state)?);
    }
    let bytes = encode(blobs, &meta)?;
    write_atomic(path, &bytes)?;
    Ok(digest)
}

/// The safetensors encoding of `F32` tensors `(name, shape, little-endian
/// data)` with `meta` as `__metadata__`, byte-for-byte reproducible: the
/// layout `safetensors::serialize` writes (tensors sorted by name, header
/// padded with spaces to a multiple of 8 bytes), but with the metadata keys
/// in sorted order — `safetensors::serialize` takes them in a `HashMap`,
/// whose order changes from one process to the next, which would give the
/// same checkpoint a different CID on every run.
pub fn encode(
    mut tensors: Vec<(String, Vec<usize>, Vec<u8>)>,
    meta: &BTreeMap<String, String>,
) -> Result<Vec<u8>> {
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let mut header = String::from("{\"__metadata__\":");
    header.push_str(&json(meta)?);
    let mut offset = 0usize;
    for (name, shape, data) in &tensors {
        let want = shape.iter().product::<usize>() * 4;
        if data.len() != want {
            return Err(Error::new(
                ErrorKind::Internal,
                format!("tensor `{name}`: {} bytes for shape {shape:?}", data.len()),
            ));
        }
        header.push_str(&format!(
            ",{}:{{\"dtype\":\"F32\",\"shape\":{},\"data_offsets\":[{offset},{}]}}",
            json(name)?,
            json(shape)?,
            offset + data.len()
        ));
        offset += data.len();
    }
    header.push('}');
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut out = Vec::with_capacity(8 + header.len() + offset);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for (_, _, data) in &tensors {
        out.extend_from_slice(data);
    }
    Ok(out)
}

/// Serialises a metadata value to JSON.
fn json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| {
        Error::new(ErrorKind::Internal, "cannot encode checkpoint metadata").with_source(e)
    })
}

/// Writes `bytes` to a temporary file beside `path`, syncs it and renames
/// it into place.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp: PathBuf = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let res = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(io_err(&tmp, "create"))?;
        f.write_all(bytes).map_err(io_err(&tmp, "write"))?;
        f.sync_all().map_err(io_err(&tmp, "sync"))?;
        std::fs::rename(&tmp, path).map_err(io_err(path, "rename"))
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

fn corrupt(path: &Path, msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::Corrupted, msg).with_context("path", path.display().to_string())
}

fn tensor_from(path: &Path, st: &SafeTensors<'_>, name: &str, device: &Device) -> Result<Tensor> {
    let v = st
        .tensor(name)
        .map_err(|_| corrupt(path, format!("tensor `{name}` is missing")))?;
    if v.dtype() != Dtype::F32 {
        return Err(corrupt(path, format!("tensor `{name}` is not F32")));
    }
    let values: Vec<f32> = v
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Tensor::from_vec(values, v.shape(), device).map_err(tensor_err("load"))
}

/// Reads only the model configuration of a checkpoint (its header).
pub fn read_config(path: &Path) -> Result<ModelConfig> {
    let mut f = std::fs::File::open(path).map_err(|e| {
        Error::new(ErrorKind::NotFound, "cannot read checkpoint")
            .with_context("path", path.display().to_string())
            .with_source(e)
    })?;
    let mut len = [0u8; 8];
    std::io::Read::read_exact(&mut f, &mut len)
        .map_err(|_| corrupt(path, "not a safetensors file: too short"))?;
    let n = u64::from_le_bytes(len);
    if n > 100 << 20 {
        return Err(corrupt(path, "not a safetensors file: header too large"));
    }
    let mut header = vec![0u8; n as usize];
    std::io::Read::read_exact(&mut f, &mut header)
        .map_err(|_| corrupt(path, "not a safetensors file: truncated header"))?;
    let v: serde_json::Value = serde_json::from_slice(&header)
        .map_err(|e| corrupt(path, format!("not a safetensors file: {e}")))?;
    let meta = &v["__metadata__"];
    if meta["format"].as_str() != Some(FORMAT) {
        return Err(corrupt(
            path,
            format!("not an artha-runtime checkpoint (format must be `{FORMAT}`)"),
        ));
    }
    let model = meta["model"]
        .as_str()
        .ok_or_else(|| corrupt(path, "metadata `model` is missing"))?;
    serde_json::from_str(model).map_err(|e| corrupt(path, format!("metadata `model`: {e}")))
}

/// Reads and checks a checkpoint (format, model configuration, weight
/// digest, optimizer state) onto `device`.
pub fn load(path: &Path, device: &Device) -> Result<Loaded> {
    let bytes = std::fs::read(path).map_err(|e| {
        Error::new(ErrorKind::NotFound, "cannot read checkpoint")
            .with_context("path", path.display().to_string())
            .with_source(e)
    })?;
    let (_, header) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| corrupt(path, format!("not a safetensors file: {e}")))?;
    let meta = header.metadata().clone().unwrap_or_default();
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(corrupt(
            path,
            format!("not an artha-runtime checkpoint (format must be `{FORMAT}`)"),
        ));
    }
    let parse = |key: &str| {
        meta.get(key)
            .ok_or_else(|| corrupt(path, format!("metadata `{key}` is missing")))
    };
    let config: ModelConfig = serde_json::from_str(parse("model")?)
        .map_err(|e| corrupt(path, format!("metadata `model`: {e}")))?;
    let claimed: Blake3Digest = parse("weights_digest")?
        .parse()
        .map_err(|e: Error| corrupt(path, format!("metadata `weights_digest`: {e}")))?;
    let train: Option<TrainState> = meta
        .get("train")
        .map(|s| serde_json::from_str(s))
        .transpose()
        .map_err(|e| corrupt(path, format!("metadata `train`: {e}")))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| corrupt(path, format!("not a safetensors file: {e}")))?;
    config
        .validate()
        .map_err(|e| corrupt(path, format!("model configuration: {e}")))?;
    let params = config
        .param_names()
        .iter()
        .map(|n| tensor_from(path, &st, n, device))
        .collect::<Result<Vec<_>>>()?;
    let model = Model::from_params(config, params).map_err(|e| corrupt(path, e.to_string()))?;
    let weights_digest = model.digest()?;
    if weights_digest != claimed {
        return Err(corrupt(
            path,
            "weights do not match the checkpoint's weights_digest",
        ));
    }
    let optimizer = match &train {
        Some(t) => {
            let slots = t.optimizer.state_slots();
            let claimed: Blake3Digest = parse("optimizer_digest")?
                .parse()
                .map_err(|e: Error| corrupt(path, format!("metadata `optimizer_digest`: {e}")))?;
            let mut od = NamedDigest::new();
            let mut state = Vec::with_capacity(model.names().len());
            for n in model.names() {
                let mut per = Vec::with_capacity(slots.len());
                for s in slots {
                    let name = format!("optim.{s}.{n}");
                    let t = tensor_from(path, &st, &name, device)?;
                    od.push_tensor(&name, &t)?;
                    per.push(t);
                }
                state.push(per);
            }
            if od.finish()? != claimed {
                return Err(corrupt(
                    path,
                    "optimizer state does not match the checkpoint's optimizer_digest",
                ));
            }
            Some(
                Optimizer::restore(t.optimizer.clone(), t.optimizer_t, state)
                    .map_err(|e| corrupt(path, e.to_string()))?,
            )
        }
        None => None,
    };
    Ok(Loaded {
        model,
        weights_digest,
        train,
        optimizer,
    })
}

/// File name of the checkpoint after `step`.
pub fn step_file(step: u64) -> String {
    format!("step-{step:08}.safetensors")
}

/// The latest `step-*.safetensors` in `dir`, if any.
pub fn latest(dir: &Path) -> Result<Option<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| {
        Error::new(ErrorKind::NotFound, "cannot list the checkpoint directory")
            .with_context("dir", dir.display().to_string())
            .with_source(e)
    })?;
    let mut best: Option<(u64, PathBuf)> = None;
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let step = name
            .strip_prefix("step-")
            .and_then(|s| s.strip_suffix(".safetensors"))
            .and_then(|s| s.parse::<u64>().ok());
        if let Some(s) = step
            && best.as_ref().is_none_or(|(b, _)| s > *b)
        {
            best = Some((s, e.path()));
        }
    }
    Ok(best.map(|(_, p)| p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Task;
    use crate::model::ModelKind;
    use crate::optim::OptimizerKind;
    use safetensors::tensor::TensorView;

    fn model() -> Model {
        let cfg = ModelConfig {
            kind: ModelKind::Mlp,
            task: Task::Classify,
            inputs: 3,
            outputs: 2,
            hidden: vec![4],
            lm: None,
        };
        Model::init(cfg, 9, &Device::Cpu).unwrap()
    }

    #[test]
    fn round_trip_with_optimizer_state() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = model();
        let mut opt = Optimizer::new(
            OptimizerConfig::defaults(OptimizerKind::Adamw, 0.1),
            m.params(),
        )
        .unwrap();
        let grads: Vec<Tensor> = m.params().iter().map(|p| p.ones_like().unwrap()).collect();
        opt.step(m.params_mut(), &grads).unwrap();
        let state = TrainState {
            step: 1,
            epoch: 0,
            seed: 9,
            batch_size: 2,
            optimizer: opt.config().clone(),
            optimizer_t: opt.t(),
            data_digest: Blake3Digest::of(b"data"),
            rows: 4,
        };
        let p = dir.path().join(step_file(1));
        let d = save(&p, &m, Some((&opt, &state))).unwrap();
        let back = load(&p, &Device::Cpu).unwrap();
        assert_eq!(back.weights_digest, d);
        assert_eq!(back.train.as_ref(), Some(&state));
        let o = back.optimizer.unwrap();
        assert_eq!(o.t(), 1);
        assert_eq!(
            o.state()[0][1]
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap(),
            opt.state()[0][1]
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        );
        assert_eq!(latest(dir.path()).unwrap(), Some(p.clone()));
        save(&dir.path().join(step_file(12)), &m, None).unwrap();
        assert!(
            latest(dir.path())
                .unwrap()
                .unwrap()
                .ends_with("step-00000012.safetensors")
        );
        assert!(
            load(&dir.path().join(step_file(12)), &Device::Cpu)
                .unwrap()
                .train
                .is_none()
        );
    }

    /// Our encoder writes what `safetensors::serialize` writes when there
    /// is at most one metadata key (so its order cannot vary), the
    /// safetensors reader accepts it, and it checks sizes.
    #[test]
    fn encoding_is_the_safetensors_layout_and_reproducible() {
        let a: Vec<u8> = [1.0f32, -2.0, 0.5]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let b: Vec<u8> = [3.0f32; 4].iter().flat_map(|v| v.to_le_bytes()).collect();
        let tensors = vec![
            ("z.weight".to_string(), vec![2, 2], b.clone()),
            ("a.bias".to_string(), vec![3], a.clone()),
        ];
        let one: BTreeMap<String, String> = [("format".to_string(), FORMAT.to_string())].into();
        let ours = encode(tensors.clone(), &one).unwrap();
        let theirs = safetensors::serialize(
            [
                (
                    "z.weight",
                    TensorView::new(Dtype::F32, vec![2, 2], &b).unwrap(),
                ),
                ("a.bias", TensorView::new(Dtype::F32, vec![3], &a).unwrap()),
            ],
            Some(one.clone().into_iter().collect()),
        )
        .unwrap();
        assert_eq!(ours, theirs);
        let mut many = one;
        for k in ["b", "c", "d", "e", "f", "g", "h"] {
            many.insert(k.into(), k.repeat(3));
        }
        let first = encode(tensors.clone(), &many).unwrap();
        let st = SafeTensors::deserialize(&first).unwrap();
        assert_eq!(st.tensor("a.bias").unwrap().data(), &a[..]);
        assert_eq!(st.tensor("z.weight").unwrap().shape(), &[2, 2]);
        let (_, header) = SafeTensors::read_metadata(&first).unwrap();
        assert_eq!(header.metadata().as_ref().unwrap().get("h").unwrap(), "hhh");
        assert!(encode(vec![("x".into(), vec![2], a)], &many).is_err());
    }

    #[test]
    fn tampered_or_foreign_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.safetensors");
        save(&p, &model(), None).unwrap();
        let mut bytes = std::fs::read(&p).unwrap();
        let n = bytes.len();
        bytes[n - 1] ^= 0x40;
        std::fs::write(&p, &bytes).unwrap();
        let e = load(&p, &Device::Cpu).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupted);
        assert!(e.to_string().contains("weights_digest"), "{e}");
        std::fs::write(&p, b"not a checkpoint").unwrap();
        assert_eq!(
            load(&p, &Device::Cpu).unwrap_err().kind(),
            ErrorKind::Corrupted
        );
        // A safetensors file without our metadata.
        let data = [0u8; 4];
        let v = TensorView::new(Dtype::F32, vec![1], &data).unwrap();
        let bytes = safetensors::serialize([("w", v)], None).unwrap();
        std::fs::write(&p, bytes).unwrap();
        let e = load(&p, &Device::Cpu).unwrap_err();
        assert!(
            e.to_string().contains("not an artha-runtime checkpoint"),
            "{e}"
        );
        assert_eq!(
            load(&dir.path().join("missing"), &Device::Cpu)
                .unwrap_err()
                .kind(),
            ErrorKind::NotFound
        );
    }
}
