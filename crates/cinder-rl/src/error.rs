//! The one error type of `cinder-rl`.

use thiserror::Error;

/// What can go wrong in `cinder-rl`. Every message says what to change.
#[derive(Debug, Error)]
pub enum RlError {
    /// A configuration value is out of range or inconsistent.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The env's spaces are of a kind the policy cannot handle.
    #[error("unsupported space: {0}")]
    UnsupportedSpace(String),
    /// A loss, gradient or parameter became NaN or infinite; training stopped before applying it.
    #[error(
        "non-finite {quantity} ({value}) at update {iteration}: training stopped before applying it"
    )]
    NonFinite {
        /// The update (1-based iteration) where it happened.
        iteration: u64,
        /// What was not finite.
        quantity: &'static str,
        /// Its value.
        value: f32,
    },
    /// A checkpoint file is unreadable, truncated or corrupt.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A checkpoint is valid but was written for another policy, algorithm or configuration.
    #[error("checkpoint {path} does not fit this run: {reason}")]
    CheckpointMismatch {
        /// The file.
        path: std::path::PathBuf,
        /// What differs.
        reason: String,
    },
    /// Reading or writing a run directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: std::path::PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// An error from the environment.
    #[error(transparent)]
    Env(#[from] cinder_env::EnvError),
}

/// `Result` with [`RlError`].
pub type Result<T, E = RlError> = std::result::Result<T, E>;
