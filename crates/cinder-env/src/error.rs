//! The one error type of `cinder-env`.

use thiserror::Error;

/// Everything that can go wrong when using an environment. No method of this crate panics on
/// user input; it returns one of these instead.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum EnvError {
    /// `step` was called before the first `reset`.
    #[error("step() called before reset(): call reset() first (Gymnasium raises ResetNeeded here)")]
    ResetNeeded,
    /// `step` was called after the episode ended (terminated or truncated) without a reset.
    #[error(
        "step() called after the episode ended ({reason}) without reset(): call reset() to start a new episode"
    )]
    EpisodeEnded {
        /// `"terminated"` or `"truncated"`.
        reason: &'static str,
    },
    /// A discrete action outside `0..n`.
    #[error("action {action} is out of range for Discrete({n}): valid actions are 0..{n}")]
    ActionOutOfRange {
        /// The action given.
        action: usize,
        /// The number of actions.
        n: usize,
    },
    /// A continuous action with the wrong number of elements.
    #[error("action has {got} elements but the action space has shape [{expected}]")]
    ActionShape {
        /// Expected number of elements.
        expected: usize,
        /// Number of elements given.
        got: usize,
    },
    /// A continuous action containing NaN or an infinity.
    #[error("action element {index} is {value}: continuous actions must be finite")]
    NonFiniteAction {
        /// Position of the bad element.
        index: usize,
        /// Its value.
        value: f32,
    },
    /// An observation with the wrong number of elements for its observation space (a user env
    /// whose `reset` or `step` returns a vector of another length).
    #[error(
        "observation has {got} elements but the observation space has {expected}: the env returns observations that do not fit its space"
    )]
    ObservationShape {
        /// Elements the observation space has.
        expected: usize,
        /// Elements the observation had.
        got: usize,
    },
    /// An action of the wrong kind: a continuous action for a discrete space or the reverse.
    #[error("expected a {expected} action, got {got}")]
    ActionKind {
        /// What the space takes.
        expected: &'static str,
        /// What was given.
        got: &'static str,
    },
    /// `make` was given an id that is not registered.
    #[error("unknown environment id {id:?}; known ids: {}", known.join(", "))]
    UnknownEnv {
        /// The id asked for.
        id: String,
        /// The registered ids.
        known: Vec<String>,
    },
    /// Writing a file (a GIF of frames) failed.
    #[error("{path}: {reason}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The env does not draw itself (its type does not implement `render`).
    #[error("{0} does not render: implement Env::render for it")]
    RenderUnsupported(String),
    /// `register` was given an id that is already registered.
    #[error("env id {id:?} is already registered; choose another id (e.g. a new version suffix)")]
    DuplicateEnv {
        /// The id.
        id: String,
    },
    /// A vector env or wrapper was configured wrongly (zero envs, wrong number of actions, ...).
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A sub-env of a vector env failed.
    #[error("sub-env {index}: {source}")]
    SubEnv {
        /// Which sub-env.
        index: usize,
        /// Its error.
        source: Box<EnvError>,
    },
    /// The env cannot save or restore its state (see [`Env::save_state`](crate::Env::save_state)).
    #[error(
        "{0} cannot save or restore its state: implement Env::save_state and Env::load_state for it"
    )]
    StateUnsupported(String),
    /// A saved state does not fit the env it is loaded into.
    #[error("cannot load env state: {0}")]
    BadState(String),
    /// A check of [`check_env`](crate::check_env) failed.
    #[error("env check failed: {check}: {detail}")]
    CheckFailed {
        /// Which check.
        check: &'static str,
        /// What was seen.
        detail: String,
    },
}

/// `Result` with [`EnvError`].
pub type Result<T, E = EnvError> = std::result::Result<T, E>;
