//! The `landfall` commands people run from a terminal and from CI pipelines: `push`, `deploy`
//! (with a live view), `status`, `logs`, `stop`, `rollback`, `instances`, `target-group`,
//! `alarm`, `events`, `audit`.
//!
//! Every command prints for people by default: redrawn in place on a terminal, one line per
//! change when the output is a file or a pipe. With `--output json` it prints one JSON document
//! for scripts instead. Errors go to standard error; exit codes are the binary's business.

pub mod alarms;
mod api;
pub mod deploy;
pub mod instances;
pub mod journal;
pub mod logs;
pub mod pools;
pub mod push;
pub mod status;
pub mod target_groups;
mod term;
mod view;

pub use term::Output;

/// A request that cannot be carried out as given (a directory without an AppSpec, an AppSpec
/// with errors, a malformed revision): the caller's to fix, so the binary exits 2.
#[derive(Debug)]
pub struct InvalidInput(pub String);

impl std::fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidInput {}

/// How a command that waits for a deployment ended: the process exits 0 only on success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    /// Failed or stopped.
    Unsuccessful,
}
