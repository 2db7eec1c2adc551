//! The one table from an error's kind to `arthai`'s exit code.
//!
//! | code | meaning | error kinds |
//! |---|---|---|
//! | 0 | success | |
//! | 1 | internal error (a bug, corrupted data, a chain revert, an unsupported feature) | `internal`, `corrupted`, `reverted`, `unsupported`, any kind not listed |
//! | 2 | invalid input: a bad argument, spec or file (including an input over its size limit, an unusable `--home`, an unreadable file) | `invalid_input` |
//! | 3 | not found | `not_found` |
//! | 4 | conflict (the home is in use, the job is in the wrong phase, it already exists) | `conflict`, `already_exists` |
//! | 5 | unavailable, retry later | `unavailable`, `timeout` |
//! | 6 | insufficient funds: a budget below the estimate or above the submitter's balance | `insufficient_funds` |
//! | 7 | the job failed or was cancelled | `job_failed`, `cancelled` |
//! | 8 | refused by policy (credential forged, expired, untrusted, for another subject, a budget over its cap) | `permission_denied` |
//! | 9 | over a limit of this machine or service: disk full, quota, rate limit, no node with room | `resource_exhausted` |
//! | 10 | `arthai verify`: the audit found fraud (committed work that replay contradicts) | — |
//! | 11 | `arthai verify`: the audit could not conclude (data unavailable, replay failed) | — |
//! | 141 | the reader of the output went away (`arthai job-list \| head -1`): the command stops quietly, as one killed by `SIGPIPE` does (what `git log \| head` reports under `set -o pipefail`) | — |
//!
//! Usage errors clap reports itself (an unknown flag, a missing argument)
//! exit 2 as well. The native runtime (`arthai runtime`) speaks its own
//! protocol and exit codes.

use artha_core::ErrorKind;

/// The exit code of a command whose output was closed by its reader
/// (128 + `SIGPIPE`).
pub(crate) const BROKEN_PIPE: u8 = 141;

/// The exit code of a following command stopped by Ctrl-C (128 +
/// `SIGINT`); the job goes on.
pub(crate) const INTERRUPTED: u8 = 130;

/// `arthai verify` found fraud.
pub(crate) const FRAUD: u8 = 10;
/// `arthai verify` could not conclude.
pub(crate) const UNVERIFIABLE: u8 = 11;

static VERDICT: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Sets the exit code of a command that succeeded but reports a verdict
/// (`arthai verify`): [`FRAUD`] or [`UNVERIFIABLE`].
pub(crate) fn set_verdict(code: u8) {
    VERDICT.store(code, std::sync::atomic::Ordering::SeqCst);
}

/// The exit code of a command that succeeded (0 unless it reported a
/// verdict).
pub(crate) fn success_code() -> u8 {
    VERDICT.load(std::sync::atomic::Ordering::SeqCst)
}

/// The exit code of anything the table does not name.
pub(crate) const OTHER: u8 = 1;

/// Error kind → exit code; kinds not listed exit [`OTHER`] (1).
pub(crate) const EXIT_CODES: &[(ErrorKind, u8)] = &[
    (ErrorKind::Internal, 1),
    (ErrorKind::Corrupted, 1),
    (ErrorKind::Reverted, 1),
    (ErrorKind::Unsupported, 1),
    (ErrorKind::InvalidInput, 2),
    (ErrorKind::NotFound, 3),
    (ErrorKind::Conflict, 4),
    (ErrorKind::AlreadyExists, 4),
    (ErrorKind::Unavailable, 5),
    (ErrorKind::Timeout, 5),
    (ErrorKind::InsufficientFunds, 6),
    (ErrorKind::JobFailed, 7),
    (ErrorKind::Cancelled, 7),
    (ErrorKind::PermissionDenied, 8),
    (ErrorKind::ResourceExhausted, 9),
];

/// What each code means, for `--help`.
const MEANINGS: &[(u8, &str)] = &[
    (0, "success"),
    (1, "internal error"),
    (
        2,
        "invalid input (bad argument, spec or file; input over its size limit)",
    ),
    (3, "not found"),
    (4, "conflict (e.g. the home is in use)"),
    (5, "unavailable (retry later)"),
    (
        6,
        "insufficient funds (budget below the estimate or above the balance)",
    ),
    (7, "the job failed or was cancelled"),
    (8, "refused by policy (credential, budget over its cap)"),
    (9, "over a limit (disk full, rate limit, no node with room)"),
    (FRAUD, "`verify`: the audit found fraud"),
    (
        UNVERIFIABLE,
        "`verify`: the audit could not conclude (data unavailable, replay failed)",
    ),
    (
        INTERRUPTED,
        "Ctrl-C while following a job (the job goes on; how to follow it again is printed)",
    ),
    (BROKEN_PIPE, "the output was closed by its reader (quiet)"),
];

/// The exit code for an error of `kind`.
pub(crate) fn exit_code(kind: ErrorKind) -> u8 {
    EXIT_CODES
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(OTHER, |(_, code)| *code)
}

/// The exit codes as `--help` shows them.
pub(crate) fn help() -> String {
    let mut s = String::from("Exit codes:\n");
    for (code, meaning) in MEANINGS {
        s.push_str(&format!("  {code:>3}  {meaning}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_documented_code() {
        let expected = [
            (ErrorKind::InvalidInput, 2),
            (ErrorKind::NotFound, 3),
            (ErrorKind::AlreadyExists, 4),
            (ErrorKind::Corrupted, 1),
            (ErrorKind::PermissionDenied, 8),
            (ErrorKind::InsufficientFunds, 6),
            (ErrorKind::ResourceExhausted, 9),
            (ErrorKind::Conflict, 4),
            (ErrorKind::Unavailable, 5),
            (ErrorKind::Timeout, 5),
            (ErrorKind::Cancelled, 7),
            (ErrorKind::Reverted, 1),
            (ErrorKind::Unsupported, 1),
            (ErrorKind::Internal, 1),
            (ErrorKind::JobFailed, 7),
        ];
        for (kind, code) in expected {
            assert_eq!(exit_code(kind), code, "{kind}");
        }
    }

    #[test]
    fn every_code_in_the_table_is_explained_in_help() {
        for (_, code) in EXIT_CODES {
            assert!(MEANINGS.iter().any(|(c, _)| c == code), "{code}");
        }
        assert!(help().contains("141"));
    }
}
