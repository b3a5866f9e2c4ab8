//! The supervised warm start: teacher-forced cross-entropy on the answer tokens only (prompt
//! and padding masked), Adam, stopped early by a step budget or once the held-out greedy
//! accuracy reaches a ceiling, so that RL starts from a policy that solves the task only
//! sometimes. The result is both the RL start and its frozen reference policy.

use crate::error::LmError;
use crate::logprobs::completion_log_probs;
use crate::model::TransformerPolicy;
use crate::task::ProblemSampler;
use crate::vocab::{encode_completion, encode_prompt};
use burn::config::Config;
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use cinder_rl::gradients::clip_grad_norm;
use cinder_rl::tensors::read;

/// The warm start's settings.
#[derive(Config, Debug, PartialEq)]
pub struct SftConfig {
    /// Adam's learning rate (constant).
    #[config(default = 1e-3)]
    pub learning_rate: f64,
    /// Problems per gradient step.
    #[config(default = 64)]
    pub batch_size: usize,
    /// Gradient steps at most.
    #[config(default = 2000)]
    pub max_steps: usize,
    /// Stop as soon as the held-out greedy exact-match accuracy reaches this (checked every
    /// `eval_every` steps); 1 or more: only the step budget stops it.
    #[config(default = 0.4)]
    pub stop_at_accuracy: f64,
    /// A check that stops the warm start above this accuracy (greedy accuracy can jump by
    /// 0.06 in one step) hands RL the policy of the check before it instead.
    #[config(default = 1.0)]
    pub max_accuracy: f64,
    /// Steps between held-out checks.
    #[config(default = 20)]
    pub eval_every: usize,
    /// Maximum global gradient norm.
    #[config(default = 1.0)]
    pub max_grad_norm: f32,
}

impl SftConfig {
    /// Checks the values; the error says what to change.
    pub fn validate(&self) -> crate::Result<()> {
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite())
            || self.batch_size == 0
            || self.eval_every == 0
            || self.max_grad_norm.is_nan()
            || self.max_grad_norm <= 0.0
        {
            return Err(LmError::InvalidConfig(format!(
                "the warm start needs learning_rate > 0, batch_size >= 1, eval_every >= 1 and \
                 max_grad_norm > 0 (got {self:?})"
            )));
        }
        Ok(())
    }
}

/// Adam on the transformer policy ([`cinder_rl::adam`]: one host pass per parameter on the
/// CPU backends).
pub type PolicyOptimizer<B> = cinder_rl::adam::PolicyOptimizer<B, TransformerPolicy<B>>;

/// Adam's ε for the language-model trainers (Burn's default).
pub const ADAM_EPSILON: f32 = 1e-5;

/// A fresh Adam for the transformer policy (β₁ = 0.9, β₂ = 0.999, ε = [`ADAM_EPSILON`]).
pub fn adam<B: AutodiffBackend>() -> PolicyOptimizer<B> {
    cinder_rl::adam::fused_adam(ADAM_EPSILON)
}

/// One supervised step on `batch_size` problems from `sampler`: returns the policy after the
/// step and the mean cross-entropy per answer token before it. A non-finite loss is an error and
/// leaves nothing changed.
pub fn sft_step<B: AutodiffBackend>(
    policy: TransformerPolicy<B>,
    optimizer: &mut PolicyOptimizer<B>,
    sampler: &mut ProblemSampler,
    config: &SftConfig,
    step: u64,
) -> crate::Result<(TransformerPolicy<B>, f64)> {
    let problems = (0..config.batch_size)
        .map(|_| sampler.next_problem())
        .collect::<crate::Result<Vec<_>>>()?;
    let prompts = problems
        .iter()
        .map(|p| encode_prompt(&p.prompt))
        .collect::<crate::Result<Vec<_>>>()?;
    let answers = problems
        .iter()
        .map(|p| encode_completion(&p.answer))
        .collect::<crate::Result<Vec<_>>>()?;
    let out = completion_log_probs(&policy, &prompts, &answers)?;
    // The token-level mean of −log π over every answer token of the batch.
    let loss = (out.log_probs * out.mask.clone()).sum().neg() / out.mask.sum();
    let value = read(loss.clone().detach())[0];
    cinder_rl::RlError::ensure_finite(step, "supervised loss", value)?;
    let device = policy.device();
    let grads = GradientsParams::from_grads(loss.backward(), &policy);
    let (grads, _norm) = clip_grad_norm::<B, _>(&policy, grads, config.max_grad_norm, &device);
    let policy = optimizer.step(config.learning_rate, policy, grads);
    Ok((policy, f64::from(value)))
}
