//! Everything `arthai` prints goes through here.
//!
//! - A write to a closed pipe (`arthai job-list | head -1`) is not a panic:
//!   it returns an error, the command unwinds normally (an engine it opened
//!   is shut down as after `--detach`: a job it was following keeps running
//!   and the next command on the home carries it on), and `main` exits
//!   quietly with [`crate::exit::BROKEN_PIPE`] (141), printing nothing.
//! - Other write errors on stderr are ignored (a diagnostic that cannot be
//!   shown is not worth failing a command for); on stdout they are errors.
//! - Credentials of the RPC endpoint (`http://user:pass@host`, an API key in
//!   its path or query) never reach the output: every line is passed
//!   through [`redact`], which replaces the secret parts of the `--rpc-url`
//!   in use and the user-info of any URL it sees.

use std::borrow::Cow;
use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use artha_core::{Error, ErrorKind};

/// Set once a write found its reader gone.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// The secrets of the `--rpc-url` in use: (text, replacement), longest first.
static SECRETS: OnceLock<Vec<(String, String)>> = OnceLock::new();

/// What replaces a secret.
pub(crate) const REDACTED: &str = "<redacted>";

/// Whether some output found its reader gone (a broken pipe).
pub(crate) fn closed() -> bool {
    CLOSED.load(Ordering::SeqCst)
}

fn closed_error(stream: &str) -> Error {
    Error::new(ErrorKind::Cancelled, "the output was closed by its reader")
        .with_context("stream", stream)
}

/// Prints one line on stdout.
pub(crate) fn stdout_line(args: std::fmt::Arguments<'_>) -> Result<(), Error> {
    let text = line(args);
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            CLOSED.store(true, Ordering::SeqCst);
            Err(closed_error("stdout"))
        }
        Err(e) => Err(Error::new(ErrorKind::Internal, "cannot write the output")
            .with_context("stream", "stdout")
            .with_source(e)),
    }
}

/// Prints one line on stderr; a closed pipe is an error (the command
/// stops quietly), any other failure is ignored.
pub(crate) fn stderr_line(args: std::fmt::Arguments<'_>) -> Result<(), Error> {
    let text = line(args);
    let mut err = std::io::stderr().lock();
    match err.write_all(text.as_bytes()).and_then(|()| err.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            CLOSED.store(true, Ordering::SeqCst);
            Err(closed_error("stderr"))
        }
        _ => Ok(()),
    }
}

fn line(args: std::fmt::Arguments<'_>) -> String {
    let mut text = redact(&args.to_string()).into_owned();
    text.push('\n');
    text
}

/// `outln!(…)`: `println!` that returns `Result<(), Error>` instead of
/// panicking on a closed pipe, and redacts credentials.
macro_rules! outln {
    ($($arg:tt)*) => { $crate::out::stdout_line(format_args!($($arg)*)) };
}

/// `errln!(…)`: `eprintln!` as [`outln!`] is `println!`.
macro_rules! errln {
    ($($arg:tt)*) => { $crate::out::stderr_line(format_args!($($arg)*)) };
}

pub(crate) use {errln, outln};

/// The parts of an RPC URL.
struct UrlParts<'a> {
    scheme: &'a str,
    userinfo: Option<&'a str>,
    host: &'a str,
    /// Path, query and fragment, from the first `/`, `?` or `#`.
    rest: &'a str,
}

fn split_url(url: &str) -> Option<UrlParts<'_>> {
    let (scheme, after) = url.split_once("://")?;
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    let (userinfo, host) = match authority.rfind('@') {
        Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
        None => (None, authority),
    };
    Some(UrlParts {
        scheme,
        userinfo,
        host,
        rest,
    })
}

/// `url` with its user-info, path and query replaced by `<redacted>`:
/// `https://user:pw@rpc.example/v3/KEY?x=1` → `https://<redacted>@rpc.example/<redacted>`.
/// A URL with nothing secret in it comes back as it is.
pub(crate) fn redact_url(url: &str) -> String {
    let Some(p) = split_url(url) else {
        return if url.is_empty() {
            String::new()
        } else {
            REDACTED.to_string()
        };
    };
    let mut s = format!("{}://", p.scheme);
    if p.userinfo.is_some() {
        s.push_str(REDACTED);
        s.push('@');
    }
    s.push_str(p.host);
    if !(p.rest.is_empty() || p.rest == "/") {
        s.push('/');
        s.push_str(REDACTED);
    }
    s
}

/// Remembers the `--rpc-url` in use so that its secret parts are redacted
/// from everything printed. Call once, before printing.
pub(crate) fn set_rpc_url(url: &str) {
    let mut secrets: Vec<(String, String)> = vec![(url.to_string(), redact_url(url))];
    if let Some(p) = split_url(url) {
        if let Some(ui) = p.userinfo.filter(|u| !u.is_empty()) {
            secrets.push((format!("{ui}@"), format!("{REDACTED}@")));
            // The password alone, as some errors print it decoded or apart.
            if let Some((_, pw)) = ui.split_once(':')
                && pw.len() >= 4
            {
                secrets.push((pw.to_string(), REDACTED.to_string()));
            }
        }
        let path_query = p.rest.split('#').next().unwrap_or_default();
        if path_query.len() > 1 {
            secrets.push((path_query.to_string(), format!("/{REDACTED}")));
            // Long path segments and query values (API keys) alone.
            for piece in path_query.split(['/', '?', '&', '=']) {
                if piece.len() >= 8 {
                    secrets.push((piece.to_string(), REDACTED.to_string()));
                }
            }
        }
    }
    secrets.retain(|(s, r)| !s.is_empty() && s != r);
    secrets.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
    let _ = SECRETS.set(secrets);
}

/// `text` with the secrets of the `--rpc-url` in use, and the user-info of
/// any `scheme://user:pass@host`, replaced by `<redacted>`.
pub(crate) fn redact(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    if let Some(secrets) = SECRETS.get() {
        for (secret, with) in secrets {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), with));
            }
        }
    }
    if out.contains("://") && out.contains('@') {
        out = Cow::Owned(redact_userinfo(&out));
    }
    out
}

/// Replaces the user-info of every `scheme://userinfo@host` in `text`.
fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, after) = rest.split_at(i + 3);
        out.push_str(head);
        let end = after
            .find(|c: char| c.is_whitespace() || "/?#\"'<>()[]{},;`".contains(c))
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@') {
            Some(at) if &authority[..at] != REDACTED => {
                out.push_str(REDACTED);
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_userinfo_path_and_query_of_a_url() {
        assert_eq!(
            redact_url("https://user:secretpw@rpc.example:8545/v3/abcdef0123456789?key=zz"),
            "https://<redacted>@rpc.example:8545/<redacted>"
        );
        assert_eq!(redact_url("http://127.0.0.1:8545"), "http://127.0.0.1:8545");
        assert_eq!(
            redact_url("http://127.0.0.1:8545/"),
            "http://127.0.0.1:8545"
        );
        assert_eq!(redact_url("garbage"), REDACTED);
    }

    #[test]
    fn redacts_userinfo_anywhere_in_text() {
        assert_eq!(
            redact_userinfo("cannot reach (url: http://u:p@h:1/x), or https://a@b"),
            "cannot reach (url: http://<redacted>@h:1/x), or https://<redacted>@b"
        );
        assert_eq!(
            redact_userinfo("mail me@example.org"),
            "mail me@example.org"
        );
        assert_eq!(redact_userinfo("http://h/p@q stays"), "http://h/p@q stays");
    }
}
