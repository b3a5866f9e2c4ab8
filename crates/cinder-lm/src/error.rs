//! The crate's error type.

/// What went wrong in a sequence task, a policy or a sampler; every variant names the problem.
#[derive(Debug, thiserror::Error)]
pub enum LmError {
    /// A character the vocabulary has no token for.
    #[error("the vocabulary has no token for {0:?} (it knows the digits, a-z, '+', '=' and ':')")]
    UnknownChar(char),
    /// A token id outside the vocabulary.
    #[error("token id {token} is outside the vocabulary of {vocab_size} tokens")]
    UnknownToken {
        /// The token id.
        token: u32,
        /// The vocabulary's size.
        vocab_size: usize,
    },
    /// An empty prompt (the policy needs at least one token to condition on).
    #[error("prompt {index} is empty: every prompt needs at least one token")]
    EmptyPrompt {
        /// The prompt's index in its batch.
        index: usize,
    },
    /// A sequence longer than the policy's context.
    #[error(
        "a sequence of {length} tokens (prompt {prompt} + completion {completion}) does not fit \
         the policy's context of {context} tokens: raise max_len or shorten the task"
    )]
    ContextOverflow {
        /// Prompt plus completion tokens.
        length: usize,
        /// Prompt tokens.
        prompt: usize,
        /// Completion tokens.
        completion: usize,
        /// The policy's `max_len`.
        context: usize,
    },
    /// A reward function returned NaN or an infinity.
    #[error(
        "reward function {function:?} returned {value} for prompt {prompt:?} and completion {completion:?}"
    )]
    NonFiniteReward {
        /// The function's name.
        function: String,
        /// What it returned.
        value: f64,
        /// The prompt.
        prompt: String,
        /// The completion.
        completion: String,
    },
    /// An invalid configuration value.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// An error of Cinder's RL core (checkpoints, run directories, non-finite losses).
    #[error(transparent)]
    Rl(#[from] cinder_rl::RlError),
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, LmError>;
