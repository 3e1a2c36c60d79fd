//! The error type of the core crate.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the repository layer.
///
/// [`Error::is_retryable`] tells a passing fault (network, store busy) from a
/// permanent one (corrupt data, wrong key).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("store error on `{key}`: {source}")]
    Store {
        key: String,
        #[source]
        source: object_store::Error,
    },
    #[error("object `{0}` is missing from the repository")]
    Missing(String),
    /// The store refused to delete an object (an append-only gateway's
    /// retention floor, or a credential without delete): it stays.
    #[error("the store refused to delete `{key}`: {reason}")]
    DeleteRefused { key: String, reason: String },
    #[error(
        "{url} is not a Pulih repository (it has no `config` object); run `pulih repo init` first"
    )]
    NotARepository { url: String },
    #[error("{url} already holds a Pulih repository")]
    AlreadyExists { url: String },
    #[error("invalid repository URL `{url}`: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("wrong passphrase for key slot `{slot}` (or the slot is damaged)")]
    WrongPassphrase { slot: String },
    #[error("the agent key is for repository {key_repo}, but this repository is {repo}")]
    KeyMismatch { key_repo: String, repo: String },
    #[error("key file {path}: {reason}")]
    KeyFile { path: PathBuf, reason: String },
    #[error("corrupt {what}: {detail}")]
    Corrupt { what: String, detail: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("snapshot `{0}` not found (or not readable with this key)")]
    NoSuchSnapshot(String),
    #[error("task failed: {0}")]
    Task(String),
}

impl Error {
    /// True when trying again later may succeed (network or store trouble).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Store { source, .. } if !matches!(source,
            object_store::Error::NotFound { .. } | object_store::Error::AlreadyExists { .. }))
    }

    pub(crate) fn corrupt(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Corrupt {
            what: what.into(),
            detail: detail.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
