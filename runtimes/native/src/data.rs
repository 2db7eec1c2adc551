//! Datasets from the data directory: CSV or NPY.
//!
//! - **CSV**: comma separated, one sample per line, the first line a header
//!   of column names (a first line made only of numbers is taken as data).
//!   For training the **last column is the target**: a class index
//!   (a non-negative integer) for classification, a number for regression.
//!   Every value must parse as a finite number that fits `f32`.
//! - **NPY** (numpy's `.npy`, versions 1–3, C order, little endian):
//!   `x.npy` of shape `[n, features]` (`f4`, `f8`, `i4`, `i8` or `u1`) and
//!   for training `y.npy` (beside it) of shape `[n]` (class indices, or regression
//!   targets) or `[n, outputs]` (regression).
//!
//! Which file: `ARTHA_DATA_FILE` (a file name inside the data directory)
//! when set; else the first of `train.csv`, `data.csv`, `x.npy` (training)
//! or `inputs.csv`, `inputs.npy`, `x.npy`, `data.csv` (inference); else the
//! directory's only `.csv` file. Every problem is an `InvalidInput` or
//! `NotFound` error naming the file and, for CSV, the line.

use std::path::{Path, PathBuf};

use artha_core::{Blake3Digest, Error, ErrorKind, Result};

use crate::digest::NamedDigest;

/// Largest data file read, bytes (the whole file is held in memory).
pub const MAX_DATA_BYTES: u64 = 8 << 30;

/// What a model predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Class indices, softmax cross-entropy.
    Classify,
    /// Real-valued targets, mean squared error.
    Regress,
}

/// Training targets.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// One class index per row.
    Classes(Vec<i64>),
    /// `dim` values per row.
    Values {
        /// Row-major values.
        data: Vec<f32>,
        /// Values per row.
        dim: usize,
    },
    /// A text's tokens (a language model's data, `runtimes/LM.md`): row
    /// `r` is the inputs `ids[r·L .. r·L + L]` and the targets one token
    /// further on.
    Tokens {
        /// The whole text's token ids.
        ids: Vec<u32>,
        /// Positions per row `L`.
        seq_len: usize,
        /// The char tokenizer's alphabet, when it was read from the text.
        alphabet: Option<String>,
    },
}

impl Targets {
    /// Values per row (1 for class indices).
    pub fn dim(&self) -> usize {
        match self {
            Targets::Classes(_) => 1,
            Targets::Values { dim, .. } => *dim,
            Targets::Tokens { seq_len, .. } => *seq_len,
        }
    }
}

/// Samples held in memory, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Inputs, `rows × features`.
    pub x: Vec<f32>,
    /// Number of samples.
    pub rows: usize,
    /// Inputs per sample.
    pub features: usize,
    /// Targets (training data only).
    pub y: Option<Targets>,
    /// The file it came from.
    pub source: PathBuf,
}

impl Dataset {
    /// Named-tensor digest of the whole dataset (`x`, and `y` if present):
    /// what a checkpoint records so a resume on other data is refused.
    /// A text's digest is that of `tokens` (`i64 [N]`) and `seq_len`
    /// (`i64 [1]`).
    pub fn digest(&self) -> Result<Blake3Digest> {
        let mut d = NamedDigest::new();
        if let Some(Targets::Tokens { ids, seq_len, .. }) = &self.y {
            let ids: Vec<i64> = ids.iter().map(|&t| i64::from(t)).collect();
            d.push_i64("tokens", &[ids.len()], &ids)?;
            d.push_i64("seq_len", &[1], &[*seq_len as i64])?;
            return d.finish();
        }
        d.push_f32("x", &[self.rows, self.features], &self.x)?;
        match &self.y {
            Some(Targets::Classes(c)) => d.push_i64("y", &[self.rows], c)?,
            Some(Targets::Values { data, dim }) => d.push_f32("y", &[self.rows, *dim], data)?,
            Some(Targets::Tokens { .. }) | None => {}
        }
        d.finish()
    }

    /// Number of classes the labels need (`max + 1`), if classification.
    pub fn classes_needed(&self) -> Option<usize> {
        match &self.y {
            Some(Targets::Classes(c)) => c.iter().max().map(|&m| m as usize + 1),
            Some(Targets::Tokens { ids, .. }) => ids.iter().max().map(|&m| m as usize + 1),
            _ => None,
        }
    }
}

fn bad(path: &Path, msg: impl Into<String>) -> Error {
    Error::invalid("data", msg).with_context("file", path.display().to_string())
}

/// Checks that `name` is a plain relative path inside a mount.
pub fn check_relative(var: &str, name: &str) -> Result<()> {
    let p = Path::new(name);
    let ok = !name.is_empty()
        && p.components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            var,
            format!("`{name}` must be a relative path without `..`"),
        ))
    }
}

/// Finds the data file in `dir`.
pub fn find(dir: &Path, explicit: Option<&str>, training: bool) -> Result<PathBuf> {
    let names: &[&str] = if training {
        &["train.csv", "data.csv", "x.npy"]
    } else {
        &["inputs.csv", "inputs.npy", "x.npy", "data.csv"]
    };
    find_by(dir, explicit, names, "csv")
}

/// Finds a language model's text in `dir`: `ARTHA_DATA_FILE`, else the
/// first of `names` present, else the only `.txt` file.
pub fn find_text(dir: &Path, explicit: Option<&str>, names: &[&str]) -> Result<PathBuf> {
    find_by(dir, explicit, names, "txt")
}

fn find_by(dir: &Path, explicit: Option<&str>, names: &[&str], ext: &str) -> Result<PathBuf> {
    if let Some(name) = explicit {
        check_relative("ARTHA_DATA_FILE", name)?;
        let p = dir.join(name);
        if !p.is_file() {
            return Err(Error::new(ErrorKind::NotFound, "data file not found")
                .with_context("file", p.display().to_string()));
        }
        return Ok(p);
    }
    for n in names {
        let p = dir.join(n);
        if p.is_file() {
            return Ok(p);
        }
    }
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Error::new(ErrorKind::NotFound, "cannot read the data directory")
            .with_context("dir", dir.display().to_string())
            .with_source(e)
    })?;
    let csvs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == ext))
        .collect();
    match csvs.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(Error::new(
            ErrorKind::NotFound,
            format!(
                "no data file: looked for {} or a single .{ext} file",
                names.join(", ")
            ),
        )
        .with_context("dir", dir.display().to_string())),
        _ => Err(Error::invalid(
            "data",
            format!(
                "several .{ext} files and none named {}: set ARTHA_DATA_FILE",
                names.join("/")
            ),
        )
        .with_context("dir", dir.display().to_string())),
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).map_err(|e| {
        Error::new(ErrorKind::NotFound, "cannot read the data file")
            .with_context("file", path.display().to_string())
            .with_source(e)
    })?;
    if meta.len() > MAX_DATA_BYTES {
        return Err(bad(path, format!("larger than {MAX_DATA_BYTES} bytes")));
    }
    std::fs::read(path).map_err(|e| {
        Error::new(ErrorKind::NotFound, "cannot read the data file")
            .with_context("file", path.display().to_string())
            .with_source(e)
    })
}

/// Loads a language model's training text: the tokens of `tokenizer`
/// (the char tokenizer's `alphabet` is the text's own when `None`), cut
/// into rows of `seq_len` positions (`runtimes/LM.md`).
pub fn load_text(
    path: &Path,
    seq_len: usize,
    tokenizer: crate::lm::Tokenizer,
    alphabet: Option<&str>,
) -> Result<Dataset> {
    let bytes = read(path)?;
    let with_file = |e: Error| e.with_context("file", path.display().to_string());
    let read_alphabet = match (tokenizer, alphabet) {
        (crate::lm::Tokenizer::Char, None) => {
            Some(crate::lm::alphabet_of(&bytes, "data").map_err(with_file)?)
        }
        _ => None,
    };
    let enc = crate::lm::encoder(tokenizer, read_alphabet.as_deref().or(alphabet));
    let ids = enc.encode(&bytes, "data").map_err(with_file)?;
    if seq_len == 0 {
        return Err(Error::invalid("ARTHA_SEQ_LEN", "must be ≥ 1"));
    }
    let rows = ids.len().saturating_sub(1) / seq_len;
    if rows == 0 {
        return Err(bad(
            path,
            format!(
                "too short: {} tokens do not make one sequence of {seq_len} (ARTHA_SEQ_LEN) plus its next token",
                ids.len()
            ),
        ));
    }
    Ok(Dataset {
        x: Vec::new(),
        rows,
        features: seq_len,
        y: Some(Targets::Tokens {
            ids,
            seq_len,
            alphabet: read_alphabet,
        }),
        source: path.to_path_buf(),
    })
}

/// Loads training data (inputs and targets) for `task`.
pub fn load_train(path: &Path, task: Task) -> Result<Dataset> {
    if path.extension().is_some_and(|e| e == "npy") {
        let (x, rows, features) = load_npy_x(path)?;
        let ypath = path.with_file_name("y.npy");
        let y = load_npy(&ypath)?;
        if y.shape.first().copied() != Some(rows) || y.shape.len() > 2 {
            return Err(bad(
                &ypath,
                format!(
                    "targets of shape {:?} do not match {rows} input rows",
                    y.shape
                ),
            ));
        }
        let targets = match task {
            Task::Classify => {
                if y.shape.len() != 1 {
                    return Err(bad(&ypath, "class labels must be one-dimensional"));
                }
                Targets::Classes(labels(&ypath, &y.values, |i| format!("row {i}"))?)
            }
            Task::Regress => Targets::Values {
                dim: y.shape.get(1).copied().unwrap_or(1),
                data: finite_f32(&ypath, &y.values)?,
            },
        };
        return Ok(Dataset {
            x,
            rows,
            features,
            y: Some(targets),
            source: path.to_path_buf(),
        });
    }
    let t = parse_csv(path)?;
    if t.cols < 2 {
        return Err(bad(
            path,
            "need at least one input column and a target column",
        ));
    }
    let features = t.cols - 1;
    let mut x = Vec::with_capacity(t.rows * features);
    let mut y = Vec::with_capacity(t.rows);
    for r in 0..t.rows {
        let row = &t.values[r * t.cols..(r + 1) * t.cols];
        x.extend(row[..features].iter().map(|&v| v as f32));
        y.push(row[features]);
    }
    let targets = match task {
        Task::Classify => Targets::Classes(labels(path, &y, |i| format!("line {}", t.lines[i]))?),
        Task::Regress => Targets::Values {
            data: y.iter().map(|&v| v as f32).collect(),
            dim: 1,
        },
    };
    Ok(Dataset {
        x,
        rows: t.rows,
        features,
        y: Some(targets),
        source: path.to_path_buf(),
    })
}

/// Loads inference inputs with `features` columns (a CSV may carry one
/// extra, last column, e.g. the labels of a training file: it is ignored).
pub fn load_inputs(path: &Path, features: usize) -> Result<Dataset> {
    let (x, rows, cols) = if path.extension().is_some_and(|e| e == "npy") {
        load_npy_x(path)?
    } else {
        let t = parse_csv(path)?;
        if t.cols == features + 1 {
            let mut x = Vec::with_capacity(t.rows * features);
            for r in t.values.chunks_exact(t.cols) {
                x.extend(r[..features].iter().map(|&v| v as f32));
            }
            (x, t.rows, features)
        } else {
            (t.values.iter().map(|&v| v as f32).collect(), t.rows, t.cols)
        }
    };
    if cols != features {
        return Err(bad(
            path,
            format!("inputs have {cols} columns, the model takes {features}"),
        ));
    }
    Ok(Dataset {
        x,
        rows,
        features,
        y: None,
        source: path.to_path_buf(),
    })
}

fn labels(path: &Path, v: &[f64], at: impl Fn(usize) -> String) -> Result<Vec<i64>> {
    v.iter()
        .enumerate()
        .map(|(i, &y)| {
            if y >= 0.0 && y.fract() == 0.0 && y < f64::from(1u32 << 24) {
                Ok(y as i64)
            } else {
                Err(bad(
                    path,
                    format!("{}: label {y} is not a class index (0, 1, 2, …)", at(i)),
                ))
            }
        })
        .collect()
}

fn finite_f32(path: &Path, v: &[f64]) -> Result<Vec<f32>> {
    v.iter()
        .enumerate()
        .map(|(i, &x)| {
            let f = x as f32;
            if f.is_finite() {
                Ok(f)
            } else {
                Err(bad(path, format!("element {i} ({x}) is not a finite f32")))
            }
        })
        .collect()
}

/// A parsed CSV table.
struct Table {
    values: Vec<f64>,
    rows: usize,
    cols: usize,
    /// 1-based line number of each row.
    lines: Vec<usize>,
}

fn parse_number(s: &str) -> Option<f64> {
    let s = s.trim();
    let v: f64 = s.parse().ok()?;
    let f = v as f32;
    (v.is_finite() && f.is_finite()).then_some(v)
}

fn parse_csv(path: &Path) -> Result<Table> {
    let bytes = read(path)?;
    let text =
        std::str::from_utf8(&bytes).map_err(|e| bad(path, format!("not UTF-8 text: {e}")))?;
    let mut values = Vec::new();
    let mut lines = Vec::new();
    let mut cols = 0usize;
    let mut header_seen = false;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        if !header_seen {
            header_seen = true;
            cols = fields.len();
            if fields.iter().any(|f| parse_number(f).is_none()) {
                continue; // a header
            }
        }
        if fields.len() != cols {
            return Err(bad(
                path,
                format!(
                    "line {line_no}: {} columns, the header has {cols}",
                    fields.len()
                ),
            ));
        }
        for (c, f) in fields.iter().enumerate() {
            let v = parse_number(f).ok_or_else(|| {
                bad(
                    path,
                    format!(
                        "line {line_no}, column {}: `{}` is not a finite number",
                        c + 1,
                        f.trim().chars().take(40).collect::<String>()
                    ),
                )
            })?;
            values.push(v);
        }
        lines.push(line_no);
    }
    if lines.is_empty() {
        return Err(bad(path, "no data rows"));
    }
    Ok(Table {
        rows: lines.len(),
        values,
        cols,
        lines,
    })
}

/// An array read from a `.npy` file, widened to `f64`.
struct Npy {
    shape: Vec<usize>,
    values: Vec<f64>,
}

fn load_npy_x(path: &Path) -> Result<(Vec<f32>, usize, usize)> {
    let a = load_npy(path)?;
    let (rows, features) = match a.shape.as_slice() {
        [n] => (*n, 1),
        [n, f] => (*n, *f),
        s => {
            return Err(bad(
                path,
                format!("inputs must be 1-D or 2-D, got shape {s:?}"),
            ));
        }
    };
    if rows == 0 {
        return Err(bad(path, "no data rows"));
    }
    Ok((finite_f32(path, &a.values)?, rows, features))
}

fn header_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("'{key}':");
    let start = header.find(&pat)? + pat.len();
    Some(header[start..].trim_start())
}

fn load_npy(path: &Path) -> Result<Npy> {
    let bytes = read(path)?;
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad(path, "not a .npy file (bad magic)"));
    }
    let (hlen, hstart) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(bad(path, format!("unsupported .npy version {v}"))),
    };
    let header = bytes
        .get(hstart..hstart + hlen)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or_else(|| bad(path, "truncated .npy header"))?;
    let descr = header_value(header, "descr")
        .and_then(|v| v.strip_prefix('\''))
        .and_then(|v| v.split('\'').next())
        .ok_or_else(|| bad(path, "no `descr` in the .npy header"))?;
    let fortran = header_value(header, "fortran_order")
        .ok_or_else(|| bad(path, "no `fortran_order` in the .npy header"))?;
    if fortran.starts_with("True") {
        return Err(bad(
            path,
            "Fortran-order arrays are not supported: save with C order",
        ));
    }
    let shape_txt = header_value(header, "shape")
        .and_then(|v| v.strip_prefix('('))
        .and_then(|v| v.split(')').next())
        .ok_or_else(|| bad(path, "no `shape` in the .npy header"))?;
    let shape = shape_txt
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| bad(path, format!("bad dimension `{s}`")))
        })
        .collect::<Result<Vec<usize>>>()?;
    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| bad(path, "shape overflows"))?;
    let size = match descr {
        "<f4" | "<i4" => 4,
        "<f8" | "<i8" => 8,
        "|u1" | "<u1" => 1,
        other => {
            return Err(bad(
                path,
                format!("dtype `{other}` is not supported (use <f4, <f8, <i4, <i8 or |u1)"),
            ));
        }
    };
    let data = &bytes[hstart + hlen..];
    if data.len() != count * size {
        return Err(bad(
            path,
            format!(
                "{} data bytes, shape {shape:?} of {descr} needs {}",
                data.len(),
                count * size
            ),
        ));
    }
    let values: Vec<f64> = match descr {
        "<f4" => data
            .chunks_exact(4)
            .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        "<i4" => data
            .chunks_exact(4)
            .map(|c| f64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        "<f8" => data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect(),
        "<i8" => data
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f64)
            .collect(),
        _ => data.iter().map(|&b| f64::from(b)).collect(),
    };
    Ok(Npy { shape, values })
}

/// Writes a `.npy` (version 1) file of `f32` values; used by tests and
/// tools to make NPY datasets.
pub fn npy_f32_bytes(shape: &[usize], values: &[f32]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let shape_txt = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_txt}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, body: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        p
    }

    #[test]
    fn csv_with_and_without_header() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "train.csv", b"a,b,label\n1,2,0\n3.5,-4,1\n\n");
        let d = load_train(&p, Task::Classify).unwrap();
        assert_eq!((d.rows, d.features), (2, 2));
        assert_eq!(d.x, vec![1.0, 2.0, 3.5, -4.0]);
        assert_eq!(d.y, Some(Targets::Classes(vec![0, 1])));
        assert_eq!(d.classes_needed(), Some(2));
        let p = write(dir.path(), "n.csv", b"1,2,0.5\r\n3,4,1.5\r\n");
        let d = load_train(&p, Task::Regress).unwrap();
        assert_eq!(d.rows, 2);
        assert_eq!(
            d.y,
            Some(Targets::Values {
                data: vec![0.5, 1.5],
                dim: 1
            })
        );
        // Inference drops a trailing label column.
        let d = load_inputs(&p, 2).unwrap();
        assert_eq!(d.x, vec![1.0, 2.0, 3.0, 4.0]);
        assert!(load_inputs(&p, 5).is_err());
    }

    #[test]
    fn bad_csv_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        for (body, needle) in [
            (&b"a,b,label\n1,2,0\n3,x,1\n"[..], "line 3, column 2"),
            (b"a,b,label\n1,2,0\n3,1\n", "line 3: 2 columns"),
            (b"a,b,label\n1,2,0.5\n", "not a class index"),
            (b"a,b,label\n1,2,-1\n", "not a class index"),
            (b"a,b,label\n1,1e39,1\n", "not a finite number"),
            (b"a,b,label\n1,nan,1\n", "not a finite number"),
            (b"a,b,label\n", "no data rows"),
            (b"\xff\xfe", "UTF-8"),
        ] {
            let p = write(dir.path(), "bad.csv", body);
            let e = load_train(&p, Task::Classify).unwrap_err();
            assert!(e.to_string().contains(needle), "{needle}: {e}");
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
        }
    }

    #[test]
    fn npy_round_trip_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "x.npy",
            &npy_f32_bytes(&[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
        );
        write(dir.path(), "y.npy", &npy_f32_bytes(&[3], &[0.0, 1.0, 2.0]));
        let p = find(dir.path(), None, true).unwrap();
        let d = load_train(&p, Task::Classify).unwrap();
        assert_eq!((d.rows, d.features), (3, 2));
        assert_eq!(d.y, Some(Targets::Classes(vec![0, 1, 2])));
        write(dir.path(), "y.npy", &npy_f32_bytes(&[2], &[0.0, 1.0]));
        let e = load_train(&p, Task::Classify).unwrap_err();
        assert!(e.to_string().contains("do not match 3 input rows"), "{e}");
        let mut trunc = npy_f32_bytes(&[3, 2], &[1.0; 6]);
        trunc.truncate(trunc.len() - 3);
        write(dir.path(), "x.npy", &trunc);
        let e = load_train(&p, Task::Classify).unwrap_err();
        assert!(e.to_string().contains("data bytes"), "{e}");
        write(dir.path(), "x.npy", b"garbage");
        assert!(
            load_train(&p, Task::Classify)
                .unwrap_err()
                .to_string()
                .contains("magic")
        );
    }

    #[test]
    fn discovery() {
        let dir = tempfile::tempdir().unwrap();
        let e = find(dir.path(), None, true).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        write(dir.path(), "iris.csv", b"a,l\n1,0\n");
        assert!(find(dir.path(), None, true).unwrap().ends_with("iris.csv"));
        write(dir.path(), "other.csv", b"a,l\n1,0\n");
        assert!(find(dir.path(), None, true).is_err());
        assert!(find(dir.path(), Some("other.csv"), true).is_ok());
        assert!(find(dir.path(), Some("../etc/passwd"), true).is_err());
        assert!(find(dir.path(), Some("/etc/passwd"), true).is_err());
        assert_eq!(
            find(dir.path(), Some("missing.csv"), true)
                .unwrap_err()
                .kind(),
            ErrorKind::NotFound
        );
    }
}
