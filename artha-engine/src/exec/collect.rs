//! Reading what a job left behind, as hostile input.
//!
//! A job controls everything under its writable mounts (`/checkpoints`,
//! `/artha`): it can put symlinks there (`leak.safetensors -> /etc/shadow`),
//! FIFOs or device nodes (`events.jsonl -> /dev/zero`), hard links, deep
//! trees and huge files. The engine may run as root, so it never opens such
//! a path with the ordinary, link-following calls. Every read goes through
//! this module:
//!
//! - [`open_in`] walks the relative path one component at a time with
//!   `openat(O_NOFOLLOW)` from a directory the engine opened itself, so no
//!   symlink anywhere on the path is followed (not even a swapped parent);
//!   the final object must be a regular file with one link (a hard link
//!   could name a file from outside the job) and at most a size limit;
//! - [`copy_file_out`] and [`copy_tree_out`] copy such files (and, for a
//!   tree, its directories) into a place the job cannot write, where the
//!   store then reads them: what is stored is what the engine checked, not
//!   whatever the path names a moment later.
//!
//! Limits (per job output; a refusal fails that job, with the reason):
//! [`MAX_OUTPUT_FILE_BYTES`], [`MAX_OUTPUT_FILES`], [`MAX_OUTPUT_BYTES`],
//! [`MAX_OUTPUT_DEPTH`]. Symlinks, FIFOs, sockets and devices in an output
//! tree are refused, not skipped, so a job learns why.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path};

use artha_core::{Error, ErrorKind, Result};
use nix::errno::Errno;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::Mode;

/// Largest single file a job may hand back (a checkpoint, an output).
pub const MAX_OUTPUT_FILE_BYTES: u64 = 64 << 30;
/// Most files in one output tree.
pub const MAX_OUTPUT_FILES: u64 = 100_000;
/// Largest total size of one output tree.
pub const MAX_OUTPUT_BYTES: u64 = 256 << 30;
/// Deepest directory nesting in one output tree.
pub const MAX_OUTPUT_DEPTH: usize = 32;

fn refused(what: &str, rel: &Path, why: impl Into<String>) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        format!("refused {what}: {}", why.into()),
    )
    .with_context("path", rel.display().to_string())
}

fn io_at(what: &str, rel: &Path, e: io::Error) -> Error {
    Error::new(ErrorKind::Internal, format!("cannot read {what}"))
        .with_context("path", rel.display().to_string())
        .with_source(e)
}

/// Opens the directory `root` itself without following a symlink in its
/// last component (the engine made it; the job may have replaced it).
fn open_root(root: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc_flags(OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW))
        .open(root)
}

fn libc_flags(f: OFlag) -> i32 {
    f.bits()
}

fn openat_file(dir: &File, name: &std::ffi::OsStr, flags: OFlag) -> io::Result<File> {
    let fd: OwnedFd =
        openat(dir, name, flags | OFlag::O_CLOEXEC, Mode::empty()).map_err(io::Error::from)?;
    Ok(File::from(fd))
}

/// The components of `rel`, which must be a non-empty relative path of
/// normal components.
fn components<'a>(what: &str, rel: &'a Path) -> Result<Vec<&'a std::ffi::OsStr>> {
    let mut out = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(n) => out.push(n),
            _ => {
                return Err(refused(
                    what,
                    rel,
                    "must be a relative path of plain names (no `..`, `.` or leading `/`)",
                ));
            }
        }
    }
    if out.is_empty() {
        return Err(refused(what, rel, "empty path"));
    }
    Ok(out)
}

fn link_error(what: &str, rel: &Path, e: io::Error) -> Error {
    match e.raw_os_error() {
        // O_NOFOLLOW on a symlink gives ELOOP; O_DIRECTORY on a non-directory ENOTDIR.
        Some(n) if n == Errno::ELOOP as i32 => {
            refused(what, rel, "a symlink on the path (links are not followed)")
        }
        Some(n) if n == Errno::ENOTDIR as i32 => refused(
            what,
            rel,
            "a parent on the path is a symlink or not a directory (links are not followed)",
        ),
        _ if e.kind() == io::ErrorKind::NotFound => {
            Error::new(ErrorKind::NotFound, format!("{what} does not exist"))
                .with_context("path", rel.display().to_string())
        }
        _ => io_at(what, rel, e),
    }
}

/// Checks that `f` is a regular file with one link and at most `max` bytes.
fn check_regular(what: &str, rel: &Path, f: &File, max: u64) -> Result<u64> {
    let m = f.metadata().map_err(|e| io_at(what, rel, e))?;
    if !m.file_type().is_file() {
        return Err(refused(
            what,
            rel,
            "not a regular file (a FIFO, socket or device)",
        ));
    }
    if m.nlink() != 1 {
        return Err(refused(
            what,
            rel,
            "a file with several hard links (it may name a file from outside the job)",
        ));
    }
    if m.len() > max {
        return Err(refused(
            what,
            rel,
            format!("{} bytes, over the limit of {max}", m.len()),
        ));
    }
    Ok(m.len())
}

/// Opens `root/rel` for reading without following any symlink on the way,
/// and checks it is a regular file with one link of at most `max` bytes.
/// `what` names the file in errors (e.g. "the events file").
pub fn open_in(root: &Path, rel: &Path, what: &str, max: u64) -> Result<File> {
    let names = components(what, rel)?;
    let mut dir = open_root(root).map_err(|e| link_error(what, rel, e))?;
    let (last, parents) = names
        .split_last()
        .ok_or_else(|| refused(what, rel, "empty path"))?;
    for n in parents {
        dir = openat_file(
            &dir,
            n,
            OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_RDONLY,
        )
        .map_err(|e| link_error(what, rel, e))?;
    }
    // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused next.
    let f = openat_file(
        &dir,
        last,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY,
    )
    .map_err(|e| link_error(what, rel, e))?;
    check_regular(what, rel, &f, max)?;
    Ok(f)
}

/// Copies `src` (opened by [`open_in`]) to the new file `dest`, reading at
/// most `max` bytes (the file may grow while it is copied).
fn copy_open(what: &str, rel: &Path, src: File, dest: &Path, max: u64) -> Result<u64> {
    use std::io::Read;
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dest)
        .map_err(|e| crate::fsutil::io_err("write a collected output", dest, e))?;
    let n = io::copy(&mut src.take(max + 1), &mut out).map_err(|e| io_at(what, rel, e))?;
    if n > max {
        let _ = std::fs::remove_file(dest);
        return Err(refused(
            what,
            rel,
            format!("grew over the limit of {max} bytes"),
        ));
    }
    out.sync_all()
        .map_err(|e| crate::fsutil::io_err("write a collected output", dest, e))?;
    Ok(n)
}

/// Copies the job's file `root/rel` to `dest` (which must not exist; a
/// place the job cannot write) after the checks of [`open_in`]; returns
/// the bytes copied.
pub fn copy_file_out(root: &Path, rel: &Path, what: &str, dest: &Path) -> Result<u64> {
    let f = open_in(root, rel, what, MAX_OUTPUT_FILE_BYTES)?;
    copy_open(what, rel, f, dest, MAX_OUTPUT_FILE_BYTES)
}

/// Counts of what [`copy_tree_out`] copied.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Collected {
    /// Regular files copied.
    pub files: u64,
    /// Bytes copied.
    pub bytes: u64,
}

/// Copies the job's directory `root` (regular files and directories only)
/// to the new directory `dest`, within the output limits. Anything else in
/// the tree (a symlink, FIFO, socket, device, a file with several links) is
/// refused with its path.
pub fn copy_tree_out(root: &Path, what: &str, dest: &Path) -> Result<Collected> {
    let dir = open_root(root).map_err(|e| link_error(what, Path::new("."), e))?;
    let mut c = Collected::default();
    std::fs::create_dir(dest).map_err(|e| crate::fsutil::io_err("collect outputs", dest, e))?;
    copy_dir(what, &dir, Path::new(""), dest, 0, &mut c)?;
    Ok(c)
}

fn copy_dir(
    what: &str,
    dir: &File,
    rel: &Path,
    dest: &Path,
    depth: usize,
    c: &mut Collected,
) -> Result<()> {
    if depth > MAX_OUTPUT_DEPTH {
        return Err(refused(
            what,
            rel,
            format!("nested deeper than {MAX_OUTPUT_DEPTH} directories"),
        ));
    }
    // List through the descriptor (/proc/self/fd/N names the directory we
    // opened, not whatever the path names now).
    let fd_path = {
        use std::os::fd::AsRawFd;
        format!("/proc/self/fd/{}", dir.as_raw_fd())
    };
    let mut names = Vec::new();
    for e in std::fs::read_dir(&fd_path).map_err(|e| io_at(what, rel, e))? {
        let e = e.map_err(|e| io_at(what, rel, e))?;
        names.push(e.file_name());
        if names.len() as u64 > MAX_OUTPUT_FILES {
            return Err(refused(
                what,
                rel,
                format!("more than {MAX_OUTPUT_FILES} entries"),
            ));
        }
    }
    names.sort();
    for name in names {
        let child_rel = rel.join(&name);
        let child_dest = dest.join(&name);
        // Directories first (O_DIRECTORY fails with ENOTDIR on anything else).
        match openat_file(
            dir,
            &name,
            OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_RDONLY,
        ) {
            Ok(sub) => {
                std::fs::create_dir(&child_dest)
                    .map_err(|e| crate::fsutil::io_err("collect outputs", &child_dest, e))?;
                copy_dir(what, &sub, &child_rel, &child_dest, depth + 1, c)?;
                continue;
            }
            Err(e) if e.raw_os_error() == Some(Errno::ENOTDIR as i32) => {}
            Err(e) => return Err(link_error(what, &child_rel, e)),
        }
        let f = openat_file(
            dir,
            &name,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY,
        )
        .map_err(|e| link_error(what, &child_rel, e))?;
        let len = check_regular(what, &child_rel, &f, MAX_OUTPUT_FILE_BYTES)?;
        c.files += 1;
        c.bytes += len;
        if c.files > MAX_OUTPUT_FILES {
            return Err(refused(
                what,
                rel,
                format!("more than {MAX_OUTPUT_FILES} files"),
            ));
        }
        if c.bytes > MAX_OUTPUT_BYTES {
            return Err(refused(
                what,
                rel,
                format!("more than {MAX_OUTPUT_BYTES} bytes in all"),
            ));
        }
        copy_open(what, &child_rel, f, &child_dest, MAX_OUTPUT_FILE_BYTES)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::symlink;

    fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let job = t.path().join("checkpoints");
        std::fs::create_dir(&job).unwrap();
        (t, job)
    }

    #[test]
    fn regular_files_open_and_copy() {
        let (t, job) = setup();
        std::fs::create_dir(job.join("sub")).unwrap();
        std::fs::write(job.join("sub/a.bin"), b"weights").unwrap();
        let dest = t.path().join("out.bin");
        let n = copy_file_out(&job, Path::new("sub/a.bin"), "a checkpoint", &dest).unwrap();
        assert_eq!(n, 7);
        assert_eq!(std::fs::read(&dest).unwrap(), b"weights");
    }

    #[test]
    fn symlinks_anywhere_on_the_path_are_refused() {
        let (t, job) = setup();
        let secret = t.path().join("secret");
        std::fs::write(&secret, b"host secret").unwrap();
        symlink(&secret, job.join("leak.safetensors")).unwrap();
        symlink(t.path(), job.join("up")).unwrap();
        for rel in ["leak.safetensors", "up/secret"] {
            let e = open_in(&job, Path::new(rel), "a checkpoint", 1 << 20).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{rel}: {e}");
            assert!(e.to_string().contains("symlink"), "{e}");
        }
        // The root itself replaced by a link.
        let root_link = t.path().join("root-link");
        symlink(&job, &root_link).unwrap();
        std::fs::write(job.join("x"), b"x").unwrap();
        assert!(open_in(&root_link, Path::new("x"), "a file", 10).is_err());
    }

    #[test]
    fn special_files_hard_links_and_big_files_are_refused() {
        let (t, job) = setup();
        symlink("/dev/zero", job.join("zero")).unwrap();
        assert!(open_in(&job, Path::new("zero"), "events", 10).is_err());
        nix::unistd::mkfifo(&job.join("fifo"), Mode::from_bits_truncate(0o600)).unwrap();
        let e = open_in(&job, Path::new("fifo"), "events", 10).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let outside = t.path().join("outside");
        std::fs::write(&outside, b"host").unwrap();
        std::fs::hard_link(&outside, job.join("hard")).unwrap();
        let e = open_in(&job, Path::new("hard"), "a checkpoint", 10).unwrap_err();
        assert!(e.to_string().contains("hard links"), "{e}");
        std::fs::write(job.join("big"), vec![0u8; 11]).unwrap();
        let e = open_in(&job, Path::new("big"), "a checkpoint", 10).unwrap_err();
        assert!(e.to_string().contains("over the limit"), "{e}");
        for rel in ["../outside", "/etc/passwd", ""] {
            assert!(open_in(&job, Path::new(rel), "x", 10).is_err(), "{rel}");
        }
    }

    #[test]
    fn trees_copy_regular_files_and_refuse_links() {
        let (t, job) = setup();
        std::fs::create_dir_all(job.join("a/b")).unwrap();
        std::fs::write(job.join("a/b/out.json"), b"{}").unwrap();
        std::fs::write(job.join("top.txt"), b"hello").unwrap();
        let dest = t.path().join("collected");
        let c = copy_tree_out(&job, "outputs", &dest).unwrap();
        assert_eq!(c, Collected { files: 2, bytes: 7 });
        assert_eq!(std::fs::read(dest.join("a/b/out.json")).unwrap(), b"{}");

        symlink("/etc/passwd", job.join("a/leak")).unwrap();
        let e = copy_tree_out(&job, "outputs", &t.path().join("collected2")).unwrap_err();
        assert!(e.to_string().contains("symlink"), "{e}");
        assert_eq!(e.context()[0].1, "a/leak");
    }
}
