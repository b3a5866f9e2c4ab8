//! # cinder-rl
//!
//! Policy-gradient reinforcement learning on Burn, generic over the backend. It has:
//!
//! - [`advantages`]: bootstrap values that tell truncation from termination, GAE(γ, λ),
//!   returns-to-go, advantage normalisation and explained variance, as pure functions;
//! - [`distributions`]: categorical and diagonal-Gaussian action distributions with
//!   log-probabilities, entropies and the exact categorical KL, plus host-side sampling on the
//!   seeded NumPy-compatible generator;
//! - [`policy`]: the [`policy::Policy`] trait the learners train (bring your own
//!   `#[derive(Module)]` network) and the built-in actor-critic MLP (`#[derive(Config)]` →
//!   `#[derive(Module)]`) with CleanRL's orthogonal initialisation and SB3's `evaluate_actions`;
//! - [`host_kernels`]: the hidden layers' `tanh` as one fused operation (forward and
//!   backward) on backends whose tensors live in host memory;
//! - [`host_policy`]: a host copy of a small policy, which the rollouts run instead of the
//!   backend for their few rows per env step;
//! - [`predict`]: a trained policy answering `predict(obs, deterministic)` for deployment;
//! - [`losses`]: vanilla and clipped surrogates (with PPO diagnostics), the clipped value loss
//!   and the k1/k2/k3 KL estimators.
//! - [`gradients`]: global gradient-norm clipping (PyTorch `clip_grad_norm_`);
//! - [`policy_gradient`]: the policy-gradient family as one learner over batches of complete
//!   episodes, configured by its pieces (advantage estimator, surrogate, KL penalty to a
//!   reference policy, aggregation); [`reinforce`] and [`grpo`] are two configurations of it;
//! - [`ppo`]: PPO's configuration (CleanRL's defaults, validated) and its training loop, for
//!   discrete and continuous actions, with checkpoints that resume exactly;
//! - [`run`]: run directories (config, metrics, checkpoints, summary), the training loop around
//!   any [`run::Learner`] with progress output;
//! - [`callbacks`]: hooks into that loop (SB3's callbacks): periodic evaluation keeping the
//!   best policy, early stops at a return threshold, and one's own;
//! - [`checkpoint`]: the checkpoint file format (atomic writes, checksums, shape checks);
//! - [`tensorboard`]: TensorBoard event files of every run's metrics, under CleanRL's names.
//!
//! ```
//! use cinder_rl::advantages::{bootstrap_values, gae};
//!
//! // One env, three steps, the episode terminates on the last one.
//! let rewards = [1.0, 1.0, 1.0];
//! let values = [0.5, 0.5, 0.5];
//! let terminated = [false, false, true];
//! let truncated = [false; 3];
//! let bootstrap = bootstrap_values(&values, &[0.0], &[0.0; 3], &terminated, &truncated)?;
//! let (advantages, returns) = gae(&rewards, &values, &bootstrap, &terminated, 1, 0.99, 0.95)?;
//! assert_eq!(advantages.len(), 3);
//! assert!((returns[2] - 1.0).abs() < 1e-6);
//! # Ok::<(), cinder_rl::RlError>(())
//! ```

// Library code returns typed errors: no unwrap, expect or panic outside tests (constants are
// allowed case by case, with the reason).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::todo,
        clippy::unimplemented
    )
)]

pub mod adam;
pub mod advantages;
pub mod callbacks;
pub mod checkpoint;
pub mod distributions;
pub mod error;
pub mod gradients;
pub mod grpo;
pub mod host_kernels;
pub mod host_loss;
pub mod host_policy;
pub mod learner;
pub mod losses;
pub mod normalize;
pub mod policy;
pub mod policy_gradient;
pub mod ppo;
pub mod predict;
pub mod reinforce;
pub mod rollout;
pub mod run;
pub mod tensorboard;
pub mod tensors;
pub mod trpo;
pub mod trust_region;

pub use error::{Result, RlError};
