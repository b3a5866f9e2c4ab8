//! The one error type of `cinder-rl`.

use thiserror::Error;

/// What can go wrong in `cinder-rl`. Every message says what to change.
#[derive(Debug, Error)]
pub enum RlError {
    /// A configuration value is out of range or inconsistent.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// Data given to a function does not fit together: slices of unequal length, zero envs, a
    /// length that is not a whole number of rows.
    #[error("invalid input: {0}")]
    InvalidInput(String),
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

impl RlError {
    /// `Ok` when `value` is finite, else [`RlError::NonFinite`] naming the update and the
    /// quantity: the check a learner makes on its loss, gradient norm and parameter norm before
    /// it goes on.
    pub fn ensure_finite(iteration: u64, quantity: &'static str, value: f32) -> Result<()> {
        if value.is_finite() {
            Ok(())
        } else {
            Err(RlError::NonFinite {
                iteration,
                quantity,
                value,
            })
        }
    }
}

/// `Result` with [`RlError`].
pub type Result<T, E = RlError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ensure_finite_names_the_update_and_the_quantity() {
        assert!(RlError::ensure_finite(3, "loss", 0.25).is_ok());
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let err = RlError::ensure_finite(3, "gradient norm", bad).unwrap_err();
            assert!(
                matches!(
                    err,
                    RlError::NonFinite {
                        iteration: 3,
                        quantity: "gradient norm",
                        ..
                    }
                ),
                "{err}"
            );
            assert!(err.to_string().contains("at update 3"), "{err}");
        }
    }
}
