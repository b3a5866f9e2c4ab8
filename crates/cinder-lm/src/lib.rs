//! RL-tuning of sequence policies, the way the lecture notes and TRL do it for language models,
//! at a size a CPU trains: prompt tasks with verifiable rewards ([`task`]), a char vocabulary
//! ([`vocab`]), a small decoder-only transformer policy ([`model`]) with a KV-cached sampler
//! ([`sampling`]) and per-token log-probabilities ([`logprobs`]).
//!
//! ```
//! use burn::backend::NdArray;
//! use cinder_env::rng::NpRandom;
//! use cinder_lm::model::TransformerPolicyConfig;
//! use cinder_lm::sampling::{SamplingConfig, sample};
//! use cinder_lm::task::{CompletionText, Rewards, Task};
//! use cinder_lm::vocab::{decode, encode_prompt};
//!
//! # fn main() -> cinder_lm::Result<()> {
//! let mut rng = NpRandom::from_seed(1);
//! let problem = Task::Addition.sample(3, &mut rng);
//! let policy = TransformerPolicyConfig::new().init::<NdArray>(&Default::default())?;
//! let prompts = vec![encode_prompt(&problem.prompt)?];
//! let completions = sample(&policy, &prompts, &SamplingConfig::new(), &mut rng, true)?;
//! let (text, terminated) = decode(&completions.tokens[0])?;
//! let rewards = Rewards::builtin(&["exact_match".into()], None, Task::Addition)?;
//! let reward = rewards.score(&problem, &CompletionText { text, terminated })?;
//! assert!(reward.total == 0.0 || reward.total == 1.0);
//! # Ok(())
//! # }
//! ```

pub mod error;
pub mod evaluate;
pub mod grpo;
pub mod logprobs;
pub mod model;
pub mod ppo;
pub mod rollout;
pub mod run;
pub mod sampling;
pub mod sft;
pub mod task;
pub mod throughput;
pub mod vocab;

pub use error::{LmError, Result};
