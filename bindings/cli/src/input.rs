//! Bounds on what `arthai` reads: its arguments, the files it is pointed
//! at, and its `--home`.
//!
//! Every check here runs before the engine opens, so input refused here
//! changes nothing: no home created, no job recorded, no escrow locked.
//! Input over a limit is **invalid input (exit 2)**, naming the flag or the
//! file: the limit is a property of the input, and sending the same input
//! again never succeeds (exit 9, "over a limit", is kept for limits of the
//! machine or service — a full disk, a rate limit — which may pass).
//!
//! | input | limit |
//! |---|---|
//! | any one command-line argument | [`MAX_ARG_BYTES`] (8 KiB), checked before parsing |
//! | `--spec FILE`, `spec-check FILE` | a regular file of at most [`MAX_SPEC_FILE_BYTES`] (1 MiB) |
//! | `--rpc-keys-file FILE` | a regular file of at most [`MAX_KEYS_FILE_BYTES`] (4 KiB), not readable or writable by group or others (refused, as `ssh` refuses such a key); `role=key` lines ([`PartyKeys::parse`]) |
//! | `--hyper KEY=VALUE` | at most [`MAX_EXTRA`] (64) of them; value at most [`MAX_VALUE_BYTES`] (4 KiB); the spec file's `hyper.extra` values too |
//! | `--env KEY=VALUE` | at most [`MAX_ENV`] (128) of them; key at most [`MAX_ENV_KEY`] (128 bytes), value at most [`MAX_VALUE_BYTES`] |
//! | `--name`, `--architecture`, `--version`, `--runtime` | [`MAX_NAME_BYTES`] (256) |
//! | `--tags` | [`MAX_VALUE_BYTES`] (4 KiB) |
//! | paths, ids, URIs, `--budget`, `--rpc-url`, `--rpc-keys` | [`MAX_PATH_BYTES`] (4 KiB) |
//!
//! Files the CLI reads must be regular files: `/dev/zero`, a FIFO, a socket
//! or a directory is refused before it is opened (it could never end, or
//! never start). A file that does not exist is not found (exit 3); one that
//! cannot be read is invalid input (exit 2); both name the file.

use artha_engine::chain::setup::PartyKeys;
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};

use artha_core::{Error, ErrorKind};

/// Longest single command-line argument, bytes.
pub(crate) const MAX_ARG_BYTES: usize = 8 * 1024;
/// Largest job spec file, bytes.
pub(crate) const MAX_SPEC_FILE_BYTES: u64 = 1024 * 1024;
/// Largest `--rpc-keys-file`, bytes.
pub(crate) const MAX_KEYS_FILE_BYTES: u64 = 4 * 1024;
/// Longest `--hyper`/`--env` value or `--tags`, bytes (the runtime gets
/// each as an environment variable).
pub(crate) const MAX_VALUE_BYTES: usize = artha_core::spec::limits::MAX_ENV_VALUE;
/// Most `--hyper` flags (the spec's most free-form hyper-parameters).
pub(crate) const MAX_EXTRA: usize = artha_core::spec::limits::MAX_EXTRA;
/// Most `--env` flags.
pub(crate) const MAX_ENV: usize = artha_core::spec::limits::MAX_ENV;
/// Longest `--env` key, bytes.
pub(crate) const MAX_ENV_KEY: usize = artha_core::spec::limits::MAX_ENV_KEY;
/// Longest name, architecture, version label or runtime, bytes.
pub(crate) const MAX_NAME_BYTES: usize = 256;
/// Longest path, id, URI, amount or endpoint, bytes.
pub(crate) const MAX_PATH_BYTES: usize = 4096;

fn too_long(field: &str, len: usize, limit: usize) -> Error {
    Error::invalid(
        field.to_string(),
        format!("is {len} bytes long; at most {limit} are accepted"),
    )
}

/// Checks every raw argument against [`MAX_ARG_BYTES`] before clap sees
/// them (clap would echo a huge value in its error). The error names the
/// flag the argument belongs to.
pub(crate) fn check_raw_args(args: &[OsString]) -> Result<(), Error> {
    for (i, a) in args.iter().enumerate().skip(1) {
        let len = a.len();
        if len <= MAX_ARG_BYTES {
            continue;
        }
        let text = a.to_string_lossy();
        let field = if text.starts_with("--") {
            text.split_once('=').map_or("argument", |(flag, _)| flag)
        } else {
            match args.get(i - 1).map(|p| p.to_string_lossy()) {
                Some(prev) if prev.starts_with("--") && !prev.contains('=') && prev.len() < 64 => {
                    return Err(too_long(&prev, len, MAX_ARG_BYTES));
                }
                _ => "argument",
            }
        };
        let field = if field.len() < 64 {
            field.to_string()
        } else {
            format!("argument {i}")
        };
        return Err(too_long(&field, len, MAX_ARG_BYTES));
    }
    Ok(())
}

/// `value` is at most `limit` bytes.
pub(crate) fn check_len(field: &str, value: &str, limit: usize) -> Result<(), Error> {
    if value.len() > limit {
        return Err(too_long(field, value.len(), limit));
    }
    Ok(())
}

/// `path` is at most [`MAX_PATH_BYTES`].
pub(crate) fn check_path(field: &str, path: &Path) -> Result<(), Error> {
    let len = path.as_os_str().len();
    if len > MAX_PATH_BYTES {
        return Err(too_long(field, len, MAX_PATH_BYTES));
    }
    Ok(())
}

/// `--hyper`/`--env` style `KEY=VALUE` flags: how many, and how long.
pub(crate) fn check_pairs(
    field: &str,
    pairs: &[String],
    most: usize,
    key_limit: usize,
) -> Result<(), Error> {
    if pairs.len() > most {
        return Err(Error::invalid(
            field.to_string(),
            format!("given {} times; at most {most} are accepted", pairs.len()),
        ));
    }
    for kv in pairs {
        let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
        if k.len() > key_limit {
            return Err(too_long(&format!("{field} key"), k.len(), key_limit));
        }
        if v.len() > MAX_VALUE_BYTES {
            return Err(too_long(&format!("{field} {k}"), v.len(), MAX_VALUE_BYTES));
        }
    }
    Ok(())
}

fn file_type(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    "not a regular file"
}

/// An I/O error about a file the user named: not found (3), else invalid
/// input (2), naming the flag and the file.
pub(crate) fn file_error(field: &str, path: &Path, what: &str, e: std::io::Error) -> Error {
    let kind = match e.kind() {
        std::io::ErrorKind::NotFound => ErrorKind::NotFound,
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
            ErrorKind::ResourceExhausted
        }
        _ => ErrorKind::InvalidInput,
    };
    let why = match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    };
    Error::new(kind, format!("cannot {what}: {why}"))
        .with_context("field", field.to_string())
        .with_context("file", path.display().to_string())
}

/// Reads the regular file `path` whole, refusing more than `limit` bytes
/// (through a bounded reader, so `/proc` files and files growing meanwhile
/// are bounded too) and anything but a regular file (checked before opening
/// and again on the opened file). `field` names the flag in errors.
pub(crate) fn read_bounded(field: &str, path: &Path, limit: u64) -> Result<Vec<u8>, Error> {
    check_path(field, path)?;
    let refuse = |msg: String| {
        Error::invalid(field.to_string(), msg).with_context("file", path.display().to_string())
    };
    let meta = std::fs::metadata(path).map_err(|e| file_error(field, path, "read", e))?;
    if !meta.is_file() {
        return Err(refuse(format!(
            "is {}; a regular file is expected",
            file_type(&meta)
        )));
    }
    if meta.len() > limit {
        return Err(refuse(format!(
            "is {} bytes; at most {limit} are accepted",
            meta.len()
        )));
    }
    let file = std::fs::File::open(path).map_err(|e| file_error(field, path, "open", e))?;
    let meta = file
        .metadata()
        .map_err(|e| file_error(field, path, "read", e))?;
    if !meta.is_file() {
        return Err(refuse(format!(
            "is {}; a regular file is expected",
            file_type(&meta)
        )));
    }
    let mut buf = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| file_error(field, path, "read", e))?;
    if buf.len() as u64 > limit {
        return Err(refuse(format!(
            "is over {limit} bytes; at most {limit} are accepted"
        )));
    }
    Ok(buf)
}

/// Reads a job spec file (bounded; see the module docs).
pub(crate) fn read_spec(field: &str, path: &Path) -> Result<artha_core::JobSpec, Error> {
    let bytes = read_bounded(field, path, MAX_SPEC_FILE_BYTES)?;
    let spec: artha_core::JobSpec = serde_json::from_slice(&bytes).map_err(|e| {
        Error::new(ErrorKind::InvalidInput, format!("malformed spec: {e}"))
            .with_context("field", field.to_string())
            .with_context("file", path.display().to_string())
    })?;
    for (k, v) in &spec.hyper.extra {
        let len = match v {
            serde_json::Value::String(s) => s.len(),
            other => other.to_string().len(),
        };
        if len > MAX_VALUE_BYTES {
            return Err(too_long(&format!("hyper.extra.{k}"), len, MAX_VALUE_BYTES)
                .with_context("file", path.display().to_string()));
        }
    }
    Ok(spec)
}

/// Parses the RPC keys text ([`PartyKeys::parse`]: one `role=key` entry
/// per party), naming `field` and `file` in errors.
pub(crate) fn parse_keys(field: &str, file: Option<&Path>, text: &str) -> Result<PartyKeys, Error> {
    PartyKeys::parse(field, file, text)
}

/// Reads `--rpc-keys-file`: one `role=key` line per party, in the format
/// of [`PartyKeys::parse`] (checked here, so an error names the file). The file
/// must be a regular file of at most [`MAX_KEYS_FILE_BYTES`], and on Unix
/// not readable or writable by group or others (mode `0600` or stricter) —
/// refused otherwise, as `ssh` refuses an unprotected private key. Returns
/// the entries joined by commas (what `--rpc-keys` takes).
pub(crate) fn read_keys_file(path: &Path) -> Result<String, Error> {
    const FIELD: &str = "--rpc-keys-file";
    let bytes = read_bounded(FIELD, path, MAX_KEYS_FILE_BYTES)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| file_error(FIELD, path, "read", e))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(Error::invalid(
                FIELD,
                format!(
                    "the key file is open to group or others (mode {:04o}); \
                     restrict it with `chmod 600`",
                    mode & 0o7777
                ),
            )
            .with_context("file", path.display().to_string()));
        }
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        Error::invalid(FIELD, "the key file is not UTF-8 text")
            .with_context("file", path.display().to_string())
    })?;
    let keys = parse_keys(FIELD, Some(path), &text)?;
    Ok(keys
        .named()
        .iter()
        .map(|(role, key)| format!("{role}={key}"))
        .collect::<Vec<_>>()
        .join(","))
}

/// Which flag or variable named the home, for errors.
pub(crate) fn home_field(home: Option<&Path>) -> &'static str {
    if home.is_some() {
        "--home"
    } else if std::env::var_os("ARTHA_HOME").is_some_and(|h| !h.is_empty()) {
        "ARTHA_HOME"
    } else {
        "HOME"
    }
}

/// Checks the engine home before it is opened: it must be a directory (or
/// not exist yet, under a directory it can be created in) that can be
/// listed. Anything else is invalid input naming `--home`.
pub(crate) fn check_home(home: Option<&Path>) -> Result<PathBuf, Error> {
    let field = home_field(home);
    let root = match home {
        Some(h) => h.to_path_buf(),
        None => artha_engine::EngineHome::default_path()?,
    };
    check_path(field, &root)?;
    let bad = |msg: String| {
        Error::invalid(field, format!("unusable engine home: {msg}"))
            .with_context("path", root.display().to_string())
    };
    match std::fs::metadata(&root) {
        Ok(m) if !m.is_dir() => Err(bad(format!("it is {}", describe(&m)))),
        Ok(_) => match std::fs::read_dir(&root) {
            Ok(_) => Ok(root),
            Err(e) => Err(bad(format!("cannot list it: {}", io_why(&e)))),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(root),
        Err(e) => Err(bad(io_why(&e))),
    }
}

fn describe(m: &std::fs::Metadata) -> &'static str {
    if m.is_file() {
        "a file, not a directory"
    } else {
        file_type(m)
    }
}

fn io_why(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::NotADirectory => "a part of the path is not a directory".into(),
        _ => e.to_string(),
    }
}

/// The I/O error at the root of `e`'s sources, if any.
pub(crate) fn io_source<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a std::io::Error> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        cur = err.source();
    }
    None
}

/// An error from the engine about a path the user named (`root`: the
/// home, or a file given to push), re-kinded by its I/O cause: storage
/// full → over a limit (9), wherever it happened; under `root`, not found
/// → not found (3, or 2 for the home, which is created when missing) and
/// permission denied, read-only, a file in the way → invalid input (2),
/// naming `field`. Anything else is unchanged.
pub(crate) fn path_error(e: Error, field: &str, root: &Path, is_home: bool) -> Error {
    let Some(io) = io_source(&e) else { return e };
    let kind = match io.kind() {
        std::io::ErrorKind::StorageFull
        | std::io::ErrorKind::QuotaExceeded
        | std::io::ErrorKind::FileTooLarge => ErrorKind::ResourceExhausted,
        std::io::ErrorKind::NotFound if !is_home => ErrorKind::NotFound,
        std::io::ErrorKind::PermissionDenied
        | std::io::ErrorKind::ReadOnlyFilesystem
        | std::io::ErrorKind::NotADirectory
        | std::io::ErrorKind::IsADirectory
        | std::io::ErrorKind::AlreadyExists
        | std::io::ErrorKind::NotFound => ErrorKind::InvalidInput,
        _ => return e,
    };
    let under_root = e
        .context_value("path")
        .is_some_and(|p| Path::new(p).starts_with(root));
    if kind == e.kind() || (kind != ErrorKind::ResourceExhausted && !under_root) {
        return e;
    }
    // The engine's message stays (what it was doing), its context too;
    // the source is not repeated.
    let msg = match (kind, is_home) {
        (ErrorKind::ResourceExhausted, _) => format!(
            "no space left on the device (disk full or quota): {}",
            e.message()
        ),
        (_, true) => format!("unusable engine home: {}: {}", io_why(io), e.message()),
        (_, false) => format!("cannot read it: {}: {}", io_why(io), e.message()),
    };
    let mut out = Error::new(kind, msg);
    if kind != ErrorKind::ResourceExhausted {
        out = out.with_context("field", field.to_string());
    }
    for (k, v) in e.context() {
        out = out.with_context(k, v.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const K: [&str; 5] = [
        "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
        "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
        "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
        "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
        "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    ];

    fn file(text: &str) -> Result<artha_engine::chain::setup::PartyKeys, Error> {
        parse_keys("--rpc-keys-file", Some(Path::new("/k/keys")), text)
    }

    fn all_five() -> String {
        format!(
            "# the parties\nadmin={}\n scheduler = {}  # assigns\nworker={}\nsubmitter={}\n\nverifier={}\n",
            K[0], K[1], K[2], K[3], K[4]
        )
    }

    /// Asserts an invalid-input error naming the field, the file and `role`,
    /// whose message has `words` and shows no key.
    #[track_caller]
    fn refused(text: &str, role: Option<&str>, words: &str) {
        let e = file(text).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert_eq!(e.context_value("field"), Some("--rpc-keys-file"));
        assert_eq!(e.context_value("file"), Some("/k/keys"));
        assert_eq!(e.context_value("role"), role, "{e}");
        assert!(e.message().contains(words), "{e}");
        let shown = format!("{e} {e:?}");
        for k in K {
            assert!(!shown.contains(k.trim_start_matches("0x")), "{shown}");
        }
    }

    #[test]
    fn five_roles_one_key_each() {
        let k = file(&all_five()).unwrap();
        assert_eq!(k.admin.as_deref(), Some(K[0]));
        assert_eq!(k.scheduler, K[1]);
        assert_eq!(k.worker, K[2]);
        assert_eq!(k.submitter, K[3]);
        assert_eq!(k.verifier, K[4]);
        // Commas, any order, no admin.
        let inline = format!(
            "verifier={},worker={}, submitter={},scheduler={}",
            K[4], K[2], K[3], K[1]
        );
        let k = parse_keys("--rpc-keys", None, &inline).unwrap();
        assert_eq!(k.admin, None);
        assert_eq!(k.worker, K[2]);
    }

    #[test]
    fn unknown_duplicate_and_missing_roles_are_named() {
        refused(
            &format!("{}\noperator={}", all_five(), K[0]),
            Some("operator"),
            "unknown role `operator`",
        );
        refused(
            &format!("{}\nworker={}", all_five(), K[0]),
            Some("worker"),
            "given twice",
        );
        let without_verifier: String = all_five()
            .lines()
            .filter(|l| !l.starts_with("verifier"))
            .map(|l| format!("{l}\n"))
            .collect();
        refused(
            &without_verifier,
            Some("verifier"),
            "no key for the `verifier` role",
        );
        refused(
            &format!("{}\n{}\n{}", K[0], K[1], K[2]),
            None,
            "not `role=key`",
        );
        refused(
            &all_five().replace(K[3], "0x1234"),
            Some("submitter"),
            "64 hex digits",
        );
        refused("", Some("scheduler"), "no key");
        // A key pasted where the role goes is not echoed.
        refused(&format!("{}={}", K[1], K[2]), Some("?"), "unknown role");
    }

    #[test]
    fn the_file_is_read_normalized_and_checked() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("keys");
        std::fs::write(&p, all_five()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let text = read_keys_file(&p).unwrap();
        let again = parse_keys("--rpc-keys", None, &text).unwrap();
        assert_eq!(again, file(&all_five()).unwrap());
        std::fs::write(&p, format!("{}\nworker={}", all_five(), K[1])).unwrap();
        let e = read_keys_file(&p).unwrap_err();
        assert_eq!(e.context_value("role"), Some("worker"));
        assert_eq!(
            e.context_value("file"),
            Some(p.display().to_string().as_str())
        );
    }
}
