//! `artha://` URIs: a [`Cid`] plus an optional relative path inside the
//! directory tree that the CID names.
//!
//! Grammar: `artha://<cid>[/<segment>(/<segment>)*]` where `<cid>` is the CID
//! text form (`b3:` + 64 hex digits). The authority is a CID, not a
//! `host:port` (as with `ipfs://`). Segments are non-empty, are not `.` or
//! `..`, hold no `/`, `\` or NUL, and are at most 255 bytes; the whole URI
//! is at most [`ArthaUri::MAX_LEN`] bytes. No percent-decoding is done: the
//! path is taken literally, so one object has exactly one URI.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::hash::{Cid, truncate};

/// A reference to stored content: `artha://<cid>[/path]`.
///
/// ```
/// use artha_core::{ArthaUri, Cid};
/// let cid = Cid::of(b"tree");
/// let uri: ArthaUri = format!("artha://{cid}/train/part-0.csv").parse().unwrap();
/// assert_eq!(uri.cid(), &cid);
/// assert_eq!(uri.segments().collect::<Vec<_>>(), ["train", "part-0.csv"]);
/// assert!(format!("artha://{cid}/../etc").parse::<ArthaUri>().is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArthaUri {
    cid: Cid,
    /// Relative path, segments joined by `/`; empty for the root.
    path: String,
}

impl ArthaUri {
    /// The URI scheme with its separator.
    pub const SCHEME: &'static str = "artha://";
    /// Longest accepted URI, in bytes.
    pub const MAX_LEN: usize = 4096;
    /// Longest accepted path segment, in bytes.
    pub const MAX_SEGMENT: usize = 255;

    /// The URI of a whole object.
    pub fn new(cid: Cid) -> Self {
        ArthaUri {
            cid,
            path: String::new(),
        }
    }

    /// The URI of `path` inside the tree named by `cid`; the path is checked
    /// with the same rules as parsing.
    pub fn with_path(cid: Cid, path: &str) -> Result<Self> {
        if path.is_empty() {
            return Ok(Self::new(cid));
        }
        validate_path(path)?;
        let uri = ArthaUri {
            cid,
            path: path.to_string(),
        };
        if uri.to_string().len() > Self::MAX_LEN {
            return Err(Error::invalid(
                "uri",
                format!("longer than {} bytes", Self::MAX_LEN),
            ));
        }
        Ok(uri)
    }

    /// The content id.
    pub fn cid(&self) -> &Cid {
        &self.cid
    }

    /// The relative path (`""` for the root).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The path's segments (none for the root).
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.path.split('/').filter(|s| !s.is_empty())
    }

    /// Whether the URI names the root object of its CID.
    pub fn is_root(&self) -> bool {
        self.path.is_empty()
    }
}

/// Checks a relative path: non-empty segments separated by `/`, none of
/// them `.` or `..`, no `\` or NUL, not absolute, each ≤ 255 bytes.
pub fn validate_path(path: &str) -> Result<()> {
    if path.starts_with('/') {
        return Err(Error::invalid("path", "must be relative (no leading `/`)")
            .with_context("input", truncate(path)));
    }
    for (i, seg) in path.split('/').enumerate() {
        let fail = |msg: &str| {
            Err(Error::invalid("path", format!("segment {i}: {msg}"))
                .with_context("input", truncate(path)))
        };
        if seg.is_empty() {
            return fail("empty segment (`//` or trailing `/`)");
        }
        if seg == "." || seg == ".." {
            return fail("`.` and `..` are not allowed");
        }
        if seg.contains('\0') {
            return fail("contains NUL");
        }
        if seg.contains('\\') {
            return fail("contains `\\`");
        }
        if seg.len() > ArthaUri::MAX_SEGMENT {
            return fail("longer than 255 bytes");
        }
    }
    Ok(())
}

impl fmt::Display for ArthaUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", Self::SCHEME, self.cid)?;
        if !self.path.is_empty() {
            write!(f, "/{}", self.path)?;
        }
        Ok(())
    }
}

impl fmt::Debug for ArthaUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ArthaUri({self})")
    }
}

impl FromStr for ArthaUri {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        if s.is_empty() {
            return Err(Error::invalid("uri", "must not be empty"));
        }
        if s.len() > Self::MAX_LEN {
            return Err(Error::invalid(
                "uri",
                format!("longer than {} bytes", Self::MAX_LEN),
            ));
        }
        let rest = s.strip_prefix(Self::SCHEME).ok_or_else(|| {
            Error::invalid("uri", "must start with `artha://`").with_context("input", truncate(s))
        })?;
        let (cid_text, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let cid: Cid = cid_text
            .parse()
            .map_err(|e: Error| e.with_context("uri", truncate(s)))?;
        if rest.len() > cid_text.len() && path.is_empty() {
            return Err(Error::invalid("uri", "trailing `/` without a path")
                .with_context("input", truncate(s)));
        }
        if path.is_empty() {
            return Ok(Self::new(cid));
        }
        validate_path(path).map_err(|e| e.with_context("uri", truncate(s)))?;
        Ok(ArthaUri {
            cid,
            path: path.to_string(),
        })
    }
}

serde_as_str!(ArthaUri);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn cid() -> Cid {
        Cid::of(b"tree")
    }

    #[test]
    fn root_and_path_round_trip() {
        let root = ArthaUri::new(cid());
        assert_eq!(root.to_string().parse::<ArthaUri>().unwrap(), root);
        let p = ArthaUri::with_path(cid(), "a/b c/d.txt").unwrap();
        assert_eq!(p.to_string().parse::<ArthaUri>().unwrap(), p);
        assert_eq!(p.path(), "a/b c/d.txt");
    }

    #[test]
    fn rejects_bad_uris_naming_the_problem() {
        let c = cid();
        let long = format!("artha://{c}/{}", "a/".repeat(3000));
        let seg = format!("artha://{c}/{}", "x".repeat(256));
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "empty"),
            (format!("http://{c}"), "artha://"),
            (format!("artha://{c}/"), "trailing"),
            (format!("artha://{c}/../x"), "`..`"),
            (format!("artha://{c}/a/./b"), "`.`"),
            (format!("artha://{c}//etc/passwd"), "relative"),
            (format!("artha://{c}/a//b"), "empty segment"),
            (format!("artha://{c}/a\0b"), "NUL"),
            (format!("artha://{c}/a\\b"), "`\\`"),
            (long, "longer than 4096"),
            (seg, "255 bytes"),
            ("artha://b3:XYZ".to_string(), "64 hex"),
            (format!("artha://{}", c.to_string().to_uppercase()), "b3:"),
        ];
        for (input, needle) in cases {
            let e = input.parse::<ArthaUri>().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
            assert!(e.to_string().contains(needle), "{input:?}: {e}");
        }
    }

    #[test]
    fn with_path_rejects_absolute() {
        assert!(ArthaUri::with_path(cid(), "/etc/passwd").is_err());
        assert!(ArthaUri::with_path(cid(), "").unwrap().is_root());
    }
}
