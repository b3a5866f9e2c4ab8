//! GRPO and RLOO on sequences, with TRL's `GRPOTrainer` semantics and names: `num_generations`
//! completions per prompt, rewards from weighted reward functions, group-relative advantages
//! (`scale_rewards` group | batch | none) or RLOO's leave-one-out baseline, every token of a
//! completion carrying its completion's advantage, the clipped surrogate
//! `[1 − epsilon, 1 + epsilon_high]`, `beta` · k3 to a frozen reference (0: no reference pass),
//! `num_iterations` μ passes over each generation batch split into `steps_per_generation`
//! minibatches, `loss_type` grpo | bnpo | dr_grpo | dapo, `mask_truncated_completions`,
//! reference sync (`sync_ref_model`, `ref_model_mixup_alpha`, `ref_model_sync_steps`) and
//! dynamic sampling (DAPO: groups whose rewards all agree carry no signal and are replaced).
//!
//! The math is Cinder's one copy: [`cinder_rl::advantages::group_relative`] and
//! [`cinder_rl::advantages::leave_one_out`], [`cinder_rl::losses::Surrogate`],
//! [`cinder_rl::losses::kl_estimate`] and [`cinder_rl::losses::aggregate`].

use crate::error::LmError;
use crate::logprobs::completion_log_probs;
use crate::model::TransformerPolicy;
use crate::rollout::{
    CompletionStats, Generation, LearnerState, SampleRow, load_reference, shuffle,
};
use crate::sampling::SamplingConfig;
use crate::sft::{PolicyOptimizer, adam};
use crate::task::{ProblemSampler, Rewards};
use burn::config::Config;
use burn::module::{AutodiffModule, Module, ModuleMapper, Param};
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use cinder_env::rng::NpRandom;
use cinder_rl::advantages::{GroupScale, group_relative, group_statistics, leave_one_out};
use cinder_rl::checkpoint::Checkpoint;
use cinder_rl::gradients::clip_grad_norm;
use cinder_rl::losses::{KlEstimator, LossAggregation, Surrogate, aggregate, kl_estimate};
use cinder_rl::tensors::read;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// TRL's `loss_type`: how the per-token losses of a batch become one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossType {
    /// Mean over each completion's tokens, then over completions (length-biased).
    Grpo,
    /// Sum over the minibatch's tokens / its number of tokens.
    Bnpo,
    /// Sum over the minibatch's tokens / (completions · `max_completion_length`).
    DrGrpo,
    /// Sum over the minibatch's tokens / the number of tokens in the whole generation batch
    /// (DAPO; TRL's default).
    Dapo,
}

/// TRL's `scale_rewards`: what the group-centred rewards are divided by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScaleRewards {
    /// The group's standard deviation (GRPO).
    Group,
    /// The whole batch's standard deviation.
    Batch,
    /// Nothing (Dr. GRPO).
    None,
}

/// The baseline a completion's reward is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Baseline {
    /// GRPO: the group's mean, scaled by `scale_rewards`.
    GroupMean,
    /// RLOO: the mean of the group's other completions (REINFORCE with a leave-one-out
    /// baseline; use it with `num_iterations` 1, where the clipped surrogate's gradient is
    /// REINFORCE's).
    LeaveOneOut,
}

/// transformers' `lr_scheduler_type`: how the learning rate moves over the run's steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LrScheduler {
    /// `learning_rate` throughout (after the warm-up).
    Constant,
    /// From `learning_rate` after the warm-up down to 0 at the last step (transformers' and so
    /// TRL's default).
    Linear,
}

/// The configuration of GRPO (and RLOO) on sequences; names and defaults are TRL's
/// `GRPOConfig`'s where TRL has them, scaled to a small model trained on a CPU otherwise.
#[derive(Config, Debug, PartialEq)]
pub struct GrpoConfig {
    /// Adam's peak learning rate (TRL's 1e-6 is for billion-parameter models).
    #[config(default = 1e-3)]
    pub learning_rate: f64,
    /// The learning-rate schedule over the run's steps (TRL's default: linear decay).
    #[config(default = "LrScheduler::Linear")]
    pub lr_scheduler_type: LrScheduler,
    /// Steps of linear warm-up from 0 to `learning_rate` (transformers' `warmup_steps`).
    #[config(default = 0)]
    pub warmup_steps: usize,
    /// Prompts per generation batch (each gets `num_generations` completions).
    #[config(default = 16)]
    pub prompts_per_step: usize,
    /// G: completions per prompt.
    #[config(default = 8)]
    pub num_generations: usize,
    /// The KL coefficient β of the k3 penalty to the reference (0: no reference pass; TRL's
    /// default is 0 since 0.19, DeepSeekMath's was 0.04).
    #[config(default = 0.04)]
    pub beta: f64,
    /// ε: the ratio is clipped below at `1 − epsilon`.
    #[config(default = 0.2)]
    pub epsilon: f64,
    /// The upper clip `1 + epsilon_high` (DAPO's clip-higher); `None`: `epsilon`.
    #[config(default = "None")]
    pub epsilon_high: Option<f64>,
    /// μ: passes over each generation batch.
    #[config(default = 1)]
    pub num_iterations: usize,
    /// Minibatches (gradient steps) per pass over a generation batch.
    #[config(default = 1)]
    pub steps_per_generation: usize,
    /// How the per-token losses are aggregated.
    #[config(default = "LossType::Dapo")]
    pub loss_type: LossType,
    /// What the group-centred rewards are divided by.
    #[config(default = "ScaleRewards::Group")]
    pub scale_rewards: ScaleRewards,
    /// The baseline (GRPO's group mean, or RLOO's leave-one-out).
    #[config(default = "Baseline::GroupMean")]
    pub baseline: Baseline,
    /// Completions cut at `max_completion_length` leave the loss (their rewards still count in
    /// the statistics).
    #[config(default = false)]
    pub mask_truncated_completions: bool,
    /// Move the reference towards the policy every `ref_model_sync_steps` steps.
    #[config(default = false)]
    pub sync_ref_model: bool,
    /// α of the reference sync: `ref ← α · policy + (1 − α) · ref`.
    #[config(default = 0.6)]
    pub ref_model_mixup_alpha: f64,
    /// Steps between reference syncs.
    #[config(default = 512)]
    pub ref_model_sync_steps: usize,
    /// Replace groups whose rewards all agree (zero advantage everywhere) with fresh prompts,
    /// up to `max_refill_rounds` extra generation rounds per step (DAPO's dynamic sampling).
    #[config(default = false)]
    pub dynamic_sampling: bool,
    /// Extra generation rounds a step may spend refilling groups.
    #[config(default = 4)]
    pub max_refill_rounds: usize,
    /// Sampling temperature of the completions.
    #[config(default = 1.0)]
    pub temperature: f64,
    /// Top-k of the completions' sampling (0: off).
    #[config(default = 0)]
    pub top_k: usize,
    /// Top-p of the completions' sampling (1: off).
    #[config(default = 1.0)]
    pub top_p: f64,
    /// Tokens per completion at most, `EOS` included.
    #[config(default = 8)]
    pub max_completion_length: usize,
    /// Maximum global gradient norm.
    #[config(default = 1.0)]
    pub max_grad_norm: f32,
}

impl GrpoConfig {
    /// Checks every value; the error says what to change.
    pub fn validate(&self) -> crate::Result<()> {
        let bad = |m: String| Err(LmError::InvalidConfig(m));
        if self.num_generations < 2 {
            return bad(format!(
                "num_generations ({}) must be at least 2: a completion needs others in its \
                 group to be compared with",
                self.num_generations
            ));
        }
        if self.prompts_per_step == 0 || self.num_iterations == 0 {
            return bad("prompts_per_step and num_iterations must be >= 1".into());
        }
        let completions = self.prompts_per_step * self.num_generations;
        if self.steps_per_generation == 0 || completions % self.steps_per_generation != 0 {
            return bad(format!(
                "steps_per_generation ({}) must divide the generation batch of {completions} \
                 completions",
                self.steps_per_generation
            ));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad(format!(
                "learning_rate must be > 0 (got {})",
                self.learning_rate
            ));
        }
        if !(self.beta >= 0.0 && self.beta.is_finite()) {
            return bad(format!("beta must be >= 0 (got {})", self.beta));
        }
        if self.max_grad_norm.is_nan() || self.max_grad_norm <= 0.0 {
            return bad(format!(
                "max_grad_norm must be > 0 (got {})",
                self.max_grad_norm
            ));
        }
        if !(0.0..=1.0).contains(&self.ref_model_mixup_alpha) || self.ref_model_sync_steps == 0 {
            return bad(
                "ref_model_mixup_alpha must be in [0, 1] and ref_model_sync_steps >= 1".into(),
            );
        }
        self.surrogate().validate()?;
        self.sampling().validate()
    }

    /// The learning rate of step `step` (0-based) of a run of `total_steps` steps, as
    /// transformers' schedulers give it: a linear warm-up over `warmup_steps`, then constant or
    /// a linear decay that reaches 0 after the last step.
    pub fn learning_rate_at(&self, step: u64, total_steps: u64) -> f64 {
        let (step, warmup) = (step as f64, self.warmup_steps as f64);
        if step < warmup {
            return self.learning_rate * step / warmup;
        }
        match self.lr_scheduler_type {
            LrScheduler::Constant => self.learning_rate,
            LrScheduler::Linear => {
                let span = (total_steps as f64 - warmup).max(1.0);
                self.learning_rate * ((total_steps as f64 - step) / span).max(0.0)
            }
        }
    }

    /// The clipped surrogate of `epsilon` and `epsilon_high`.
    pub fn surrogate(&self) -> Surrogate {
        Surrogate::Clipped {
            clip_low: self.epsilon as f32,
            clip_high: self.epsilon_high.unwrap_or(self.epsilon) as f32,
        }
    }

    /// The completions' sampling settings.
    pub fn sampling(&self) -> SamplingConfig {
        SamplingConfig::new()
            .with_temperature(self.temperature)
            .with_top_k(self.top_k)
            .with_top_p(self.top_p)
            .with_max_completion_length(self.max_completion_length)
    }
}

/// One GRPO step's metrics, under TRL's names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrpoMetrics {
    /// The step (1 after the first).
    pub step: u64,
    /// Rewards and completion lengths of the (first) generation batch.
    #[serde(flatten)]
    pub completions: CompletionStats,
    /// Mean over groups of the reward's standard deviation within a group.
    pub reward_std: f64,
    /// Fraction of groups whose rewards all agree (no signal).
    pub frac_reward_zero_std: f64,
    /// Fraction of tokens whose ratio fell below `1 − ε` with a negative advantage.
    #[serde(rename = "clip_ratio/low_mean")]
    pub clip_low: f64,
    /// Fraction of tokens whose ratio rose above `1 + ε_high` with a positive advantage.
    #[serde(rename = "clip_ratio/high_mean")]
    pub clip_high: f64,
    /// Either of the two.
    #[serde(rename = "clip_ratio/region_mean")]
    pub clip_region: f64,
    /// Mean per-token k3 estimate of `KL(π_θ ‖ π_ref)` (0 without a reference).
    pub kl: f64,
    /// Mean per-token entropy of the policy.
    pub entropy: f64,
    /// The last gradient step's global gradient norm (before clipping).
    pub grad_norm: f64,
    /// The mean loss of the step's gradient steps.
    pub loss: f64,
    /// The step's learning rate.
    pub learning_rate: f64,
    /// Extra generation rounds spent by dynamic sampling.
    pub refill_rounds: usize,
    /// Completion tokens generated per second (sampling only).
    pub tokens_per_second: f64,
    /// Seconds the step took.
    pub step_seconds: f64,
}

/// GRPO's state: the policy, its optimiser, the reference, the problem sampler, the rewards and
/// the sampling generator.
pub struct Grpo<B: AutodiffBackend> {
    config: GrpoConfig,
    policy: TransformerPolicy<B>,
    optimizer: PolicyOptimizer<B>,
    reference: Option<TransformerPolicy<B::InnerBackend>>,
    sampler: ProblemSampler,
    rewards: Rewards,
    rng: NpRandom,
    step: u64,
    total_steps: u64,
    last_samples: Vec<SampleRow>,
}

impl<B: AutodiffBackend> Grpo<B> {
    /// GRPO from `policy` (the warm start, which also becomes the frozen reference when `beta`
    /// is positive), drawing prompts from `sampler`, scoring with `rewards`, sampling from
    /// `seed`, for a run of `total_steps` steps (the learning-rate schedule's horizon;
    /// transformers' `max_steps`).
    pub fn new(
        config: GrpoConfig,
        policy: TransformerPolicy<B>,
        sampler: ProblemSampler,
        rewards: Rewards,
        seed: u64,
        total_steps: u64,
    ) -> crate::Result<Self> {
        config.validate()?;
        let reference = (config.beta > 0.0).then(|| policy.valid());
        Ok(Self {
            config,
            policy,
            optimizer: adam(),
            reference,
            sampler,
            rewards,
            rng: NpRandom::from_seed(seed),
            step: 0,
            total_steps,
            last_samples: Vec::new(),
        })
    }

    /// The current policy.
    pub fn policy(&self) -> &TransformerPolicy<B> {
        &self.policy
    }

    /// Steps taken.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// The (prompt, completion, reward) of the first completion of each of the last generation
    /// batch's first prompts (four at most): what a user reads to see what the policy does.
    pub fn last_samples(&self) -> &[SampleRow] {
        &self.last_samples
    }

    /// Writes GRPO's state into `checkpoint` (sections `policy`, `adam` and, with a reference,
    /// `reference`) and returns the rest of it (step and generators) for its header.
    pub fn save(&self, checkpoint: &mut Checkpoint) -> LearnerState {
        checkpoint.put_module::<B, _>("policy", &self.policy);
        checkpoint.put_adam("adam", &self.policy, &self.optimizer);
        if let Some(reference) = &self.reference {
            checkpoint.put_module::<B::InnerBackend, _>("reference", reference);
        }
        LearnerState {
            step: self.step,
            rng: self.rng.clone(),
            sampler_rng: self.sampler.rng().clone(),
        }
    }

    /// GRPO restored from a checkpoint written by [`Grpo::save`] (read from `path`, named in
    /// errors): `skeleton` is a policy of the run's architecture on the device to load into.
    /// Continuing it to the same `total_steps` gives the same steps as a run that never
    /// stopped.
    #[allow(clippy::too_many_arguments)]
    pub fn restore(
        config: GrpoConfig,
        total_steps: u64,
        checkpoint: &Checkpoint,
        path: &std::path::Path,
        state: LearnerState,
        skeleton: TransformerPolicy<B>,
        mut sampler: ProblemSampler,
        rewards: Rewards,
    ) -> crate::Result<Self> {
        config.validate()?;
        let device = skeleton.device();
        let policy = checkpoint.module(path, "policy", "the policy", skeleton, &device)?;
        let optimizer = checkpoint.adam(path, "adam", &policy, adam(), &device)?;
        let reference = load_reference(checkpoint, path, &policy, config.beta > 0.0)?;
        sampler.set_rng(state.sampler_rng);
        Ok(Self {
            config,
            policy,
            optimizer,
            reference,
            sampler,
            rewards,
            rng: state.rng,
            step: state.step,
            total_steps,
            last_samples: Vec::new(),
        })
    }

    /// Samples `prompts` groups of `G` completions and scores them.
    fn generate(&mut self, prompts: usize) -> crate::Result<Generation> {
        Generation::sample(
            &self.policy.valid(),
            &mut self.sampler,
            &self.rewards,
            &self.config.sampling(),
            &mut self.rng,
            prompts,
            self.config.num_generations,
        )
    }

    /// One GRPO step: generate (refilling flat groups when dynamic sampling is on), score,
    /// compute advantages, then `num_iterations` passes of `steps_per_generation` gradient
    /// steps. A non-finite loss or gradient is an error and leaves the policy as it was.
    pub fn step(&mut self) -> crate::Result<GrpoMetrics> {
        let start = Instant::now();
        let g = self.config.num_generations;
        let n_prompts = self.config.prompts_per_step;
        let mut batch = self.generate(n_prompts)?;
        self.last_samples = batch.sample_rows(g)?;
        // Statistics are those of the first generation (what the policy does), as TRL logs.
        let stats = group_statistics(&batch.rewards, g);
        let frac_zero = stats.iter().filter(|(_, s)| *s == 0.0).count() as f64 / stats.len() as f64;
        let reward_std = stats.iter().map(|(_, s)| s).sum::<f64>() / stats.len() as f64;
        let completion_stats = batch.stats(&self.rewards.names());
        let mut tokens = batch.tokens;
        let mut gen_seconds = batch.seconds;
        let mut refill_rounds = 0;
        if self.config.dynamic_sampling {
            batch = keep_informative(batch, g);
            while batch.rewards.len() < n_prompts * g
                && refill_rounds < self.config.max_refill_rounds
            {
                refill_rounds += 1;
                let more = self.generate(n_prompts)?;
                tokens += more.tokens;
                gen_seconds += more.seconds;
                let more = keep_informative(more, g);
                let missing = n_prompts * g - batch.rewards.len();
                batch = append(batch, more, missing);
            }
        }
        // Every group agreed in every round (dynamic sampling): nothing to learn from this step.
        let update = if batch.rewards.is_empty() {
            None
        } else {
            Some(self.update(&batch)?)
        };
        self.step += 1;
        if update.is_some()
            && self.config.sync_ref_model
            && self.step % self.config.ref_model_sync_steps as u64 == 0
            && let Some(reference) = self.reference.take()
        {
            self.reference = Some(mix(
                reference,
                &self.policy.valid(),
                self.config.ref_model_mixup_alpha,
            ));
        }
        let sums = update.unwrap_or_default();
        let tokens_counted = sums.tokens.max(1.0);
        Ok(GrpoMetrics {
            step: self.step,
            completions: completion_stats,
            reward_std,
            frac_reward_zero_std: frac_zero,
            clip_low: sums.clip_low / tokens_counted,
            clip_high: sums.clip_high / tokens_counted,
            clip_region: (sums.clip_low + sums.clip_high) / tokens_counted,
            kl: sums.kl / tokens_counted,
            entropy: sums.entropy / tokens_counted,
            grad_norm: sums.grad_norm,
            loss: sums.loss / sums.gradient_steps.max(1) as f64,
            learning_rate: self
                .config
                .learning_rate_at(self.step - 1, self.total_steps),
            refill_rounds,
            tokens_per_second: tokens as f64 / gen_seconds.max(1e-9),
            step_seconds: start.elapsed().as_secs_f64(),
        })
    }

    /// The update on a scored generation batch: advantages, the rollout policy's and the
    /// reference's log-probs, then `num_iterations` passes of `steps_per_generation` gradient
    /// steps; the policy and Adam are put back if one fails.
    fn update(&mut self, batch: &Generation) -> crate::Result<Sums> {
        let g = self.config.num_generations;
        let advantages: Vec<f32> = match self.config.baseline {
            Baseline::GroupMean => group_relative(
                &batch.rewards,
                g,
                match self.config.scale_rewards {
                    ScaleRewards::Group => GroupScale::Std,
                    ScaleRewards::Batch => GroupScale::Batch,
                    ScaleRewards::None => GroupScale::None,
                },
            )?,
            Baseline::LeaveOneOut => leave_one_out(&batch.rewards, g)?,
        }
        .into_iter()
        .map(|a| a as f32)
        .collect();
        let keep: Vec<bool> = batch
            .terminated
            .iter()
            .map(|&t| t || !self.config.mask_truncated_completions)
            .collect();
        let n = batch.rewards.len();
        let device = self.policy.device();
        // The rollout policy's and the reference's log-probs, without gradients.
        let reuse = self.config.num_iterations > 1 || self.config.steps_per_generation > 1;
        let old = if reuse {
            let inner = self.policy.valid();
            Some(read(
                completion_log_probs(&inner, &batch.prompts, &batch.completions)?.log_probs,
            ))
        } else {
            None
        };
        let reference = match &self.reference {
            Some(r) => Some(read(
                completion_log_probs(r, &batch.prompts, &batch.completions)?.log_probs,
            )),
            None => None,
        };
        let width = batch.completions.iter().map(Vec::len).max().unwrap_or(1);
        let generation_tokens: usize = batch
            .completions
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(c, _)| c.len())
            .sum();
        let snapshot = (self.policy.clone(), self.optimizer.clone());
        let minibatch = n / self.config.steps_per_generation.min(n).max(1);
        let mut order: Vec<usize> = (0..n).collect();
        let mut sums = Sums::default();
        for _ in 0..self.config.num_iterations {
            shuffle(&mut order, &mut self.rng);
            for chunk in order.chunks(minibatch.max(1)) {
                let result = self.gradient_step(
                    chunk,
                    batch,
                    &advantages,
                    &keep,
                    old.as_deref(),
                    reference.as_deref(),
                    width,
                    generation_tokens,
                    &device,
                    &mut sums,
                );
                if let Err(e) = result {
                    (self.policy, self.optimizer) = snapshot;
                    return Err(e);
                }
            }
        }
        Ok(sums)
    }

    /// One gradient step on the completions `rows` of the generation batch.
    #[allow(clippy::too_many_arguments)]
    fn gradient_step(
        &mut self,
        rows: &[usize],
        batch: &Generation,
        advantages: &[f32],
        keep: &[bool],
        old: Option<&[f32]>,
        reference: Option<&[f32]>,
        width: usize,
        generation_tokens: usize,
        device: &B::Device,
        sums: &mut Sums,
    ) -> crate::Result<()> {
        let prompts: Vec<Vec<u32>> = rows.iter().map(|&r| batch.prompts[r].clone()).collect();
        let completions: Vec<Vec<u32>> =
            rows.iter().map(|&r| batch.completions[r].clone()).collect();
        let out = completion_log_probs(&self.policy, &prompts, &completions)?;
        let [b, c] = out.log_probs.dims();
        // Host tables laid out [b, c] like the log-probs (c: this minibatch's longest).
        let gather = |table: &[f32]| -> Vec<f32> {
            let mut v = Vec::with_capacity(b * c);
            for &r in rows {
                v.extend_from_slice(&table[r * width..r * width + c]);
            }
            v
        };
        let mut mask = Vec::with_capacity(b * c);
        let mut adv = Vec::with_capacity(b * c);
        for &r in rows {
            let len = batch.completions[r].len();
            for j in 0..c {
                mask.push(f32::from(u8::from(keep[r] && j < len)));
                adv.push(advantages[r]);
            }
        }
        let t2 = |v: Vec<f32>| Tensor::<B, 2>::from_data(TensorData::new(v, [b, c]), device);
        let host_mask = mask;
        let mask = t2(host_mask.clone());
        let log_probs = out.log_probs;
        let old_lp = match old {
            Some(o) => t2(gather(o)),
            None => log_probs.clone().detach(),
        };
        let TokenLoss { loss, kl } = token_loss(
            &self.config,
            log_probs.clone(),
            old_lp.clone(),
            reference.map(|r| t2(gather(r))),
            t2(adv.clone()),
            mask.clone(),
            generation_tokens,
        );
        // Diagnostics, read once: the loss and the masked sums of entropy and KL, then the
        // ratios.
        let ratio = (log_probs.detach() - old_lp).exp();
        let entropy = (out.entropy.detach() * mask.clone()).sum();
        let kl_sum = match kl {
            Some(kl) => (kl.detach() * mask).sum(),
            None => Tensor::zeros([1], device),
        };
        let scalars = read(Tensor::cat(vec![loss.clone().detach(), entropy, kl_sum], 0));
        let host_ratio = read(ratio);
        cinder_rl::RlError::ensure_finite(self.step + 1, "GRPO loss", scalars[0])?;
        let (eps_low, eps_high) = match self.config.surrogate() {
            Surrogate::Clipped {
                clip_low,
                clip_high,
            } => (clip_low, clip_high),
            Surrogate::Vanilla => (f32::INFINITY, f32::INFINITY),
        };
        for ((&m, &r), &a) in host_mask.iter().zip(&host_ratio).zip(&adv) {
            if m > 0.0 {
                sums.tokens += 1.0;
                sums.clip_low += f64::from(u8::from(r < 1.0 - eps_low && a < 0.0));
                sums.clip_high += f64::from(u8::from(r > 1.0 + eps_high && a > 0.0));
            }
        }
        sums.entropy += f64::from(scalars[1]);
        sums.kl += f64::from(scalars[2]);
        let grads = GradientsParams::from_grads(loss.backward(), &self.policy);
        let (grads, norm) =
            clip_grad_norm::<B, _>(&self.policy, grads, self.config.max_grad_norm, device);
        let norm = read(norm)[0];
        cinder_rl::RlError::ensure_finite(self.step + 1, "GRPO gradient norm", norm)?;
        let learning_rate = self.config.learning_rate_at(self.step, self.total_steps);
        self.policy = self
            .optimizer
            .step(learning_rate, self.policy.clone(), grads);
        sums.loss += f64::from(scalars[0]);
        sums.grad_norm = f64::from(norm);
        sums.gradient_steps += 1;
        Ok(())
    }
}

/// The token-level loss of a minibatch and its per-token KL (see [`token_loss`]).
#[derive(Debug, Clone)]
pub struct TokenLoss<B: Backend> {
    /// The aggregated loss, `[1]`.
    pub loss: Tensor<B, 1>,
    /// The per-token k3 estimate of `KL(π_θ ‖ π_ref)`, `[b, c]` (`None` without a reference).
    pub kl: Option<Tensor<B, 2>>,
}

/// TRL's token-level GRPO loss (`GRPOTrainer._compute_loss`) on a minibatch of `b` completions
/// padded to `c` tokens: the clipped surrogate `−min(ρ·A, clip(ρ, 1 − ε, 1 + ε_high)·A)` per
/// token with `ρ = exp(log_probs − old_log_probs)`, plus `beta` · k3 to the reference when
/// `ref_log_probs` is given, aggregated over the tokens where `mask` is 1 by `config.loss_type`
/// (`generation_tokens`: the unmasked tokens of the whole generation batch, DAPO's
/// denominator). `advantages` is per token, `[b, c]` (GRPO repeats a completion's advantage
/// over its tokens; PPO's differ token by token). Gradients flow through `log_probs` only.
pub fn token_loss<B: Backend>(
    config: &GrpoConfig,
    log_probs: Tensor<B, 2>,
    old_log_probs: Tensor<B, 2>,
    ref_log_probs: Option<Tensor<B, 2>>,
    advantages: Tensor<B, 2>,
    mask: Tensor<B, 2>,
    generation_tokens: usize,
) -> TokenLoss<B> {
    let [b, c] = log_probs.dims();
    let flat = |t: Tensor<B, 2>| t.reshape([b * c]);
    let terms = config.surrogate().terms(
        flat(log_probs.clone()),
        flat(old_log_probs),
        flat(advantages).detach(),
    );
    let surrogate = terms.per_sample.reshape([b, c]);
    let kl = ref_log_probs
        .map(|r| kl_estimate(flat(log_probs), flat(r).detach(), KlEstimator::K3).reshape([b, c]));
    let per_token = match &kl {
        Some(kl) => surrogate + kl.clone().mul_scalar(config.beta),
        None => surrogate,
    };
    let loss = match config.loss_type {
        LossType::Grpo => aggregate(per_token, mask, LossAggregation::Grpo),
        LossType::Bnpo => aggregate(per_token, mask, LossAggregation::Bnpo),
        LossType::DrGrpo => aggregate(
            per_token,
            mask,
            LossAggregation::DrGrpo {
                max_length: config.max_completion_length,
            },
        ),
        LossType::Dapo => (per_token * mask)
            .sum()
            .div_scalar(generation_tokens.max(1) as f32),
    };
    TokenLoss { loss, kl }
}

/// One update's diagnostics: masked sums over its tokens, the sum of its losses, its gradient
/// steps and the last one's gradient norm.
#[derive(Debug, Default)]
struct Sums {
    tokens: f64,
    clip_low: f64,
    clip_high: f64,
    entropy: f64,
    kl: f64,
    loss: f64,
    gradient_steps: usize,
    grad_norm: f64,
}

/// The groups of `batch` whose rewards do not all agree.
fn keep_informative(batch: Generation, g: usize) -> Generation {
    let keep: Vec<bool> = group_statistics(&batch.rewards, g)
        .iter()
        .flat_map(|&(_, s)| std::iter::repeat_n(s > 0.0, g))
        .collect();
    fn pick<T>(v: Vec<T>, keep: &[bool]) -> Vec<T> {
        v.into_iter()
            .zip(keep)
            .filter(|(_, k)| **k)
            .map(|(x, _)| x)
            .collect()
    }
    Generation {
        problems: pick(batch.problems, &keep),
        prompts: pick(batch.prompts, &keep),
        completions: pick(batch.completions, &keep),
        terminated: pick(batch.terminated, &keep),
        rewards: pick(batch.rewards, &keep),
        per_function: pick(batch.per_function, &keep),
        tokens: batch.tokens,
        seconds: batch.seconds,
    }
}

/// `batch` followed by at most `limit` completions (whole groups) of `more`.
fn append(mut batch: Generation, more: Generation, limit: usize) -> Generation {
    let take = limit.min(more.rewards.len());
    batch.problems.extend(more.problems.into_iter().take(take));
    batch.prompts.extend(more.prompts.into_iter().take(take));
    batch
        .completions
        .extend(more.completions.into_iter().take(take));
    batch
        .terminated
        .extend(more.terminated.into_iter().take(take));
    batch.rewards.extend(more.rewards.into_iter().take(take));
    batch
        .per_function
        .extend(more.per_function.into_iter().take(take));
    batch
}

/// `ref ← α · policy + (1 − α) · ref`, parameter by parameter (TRL's `SyncRefModelCallback`).
fn mix<B: Backend>(
    reference: TransformerPolicy<B>,
    policy: &TransformerPolicy<B>,
    alpha: f64,
) -> TransformerPolicy<B> {
    struct Collect<B: Backend>(Vec<Tensor<B, 1>>);
    impl<B: Backend> burn::module::ModuleVisitor<B> for Collect<B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let t = param.val();
            let n = t.shape().num_elements();
            self.0.push(t.reshape([n]));
        }
    }
    struct Mix<B: Backend> {
        policy: std::vec::IntoIter<Tensor<B, 1>>,
        alpha: f64,
    }
    impl<B: Backend> ModuleMapper<B> for Mix<B> {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            let (id, tensor, mapper) = param.consume();
            let shape = tensor.shape();
            let p = self
                .policy
                .next()
                .map(|p| p.reshape(shape.clone()))
                .unwrap_or_else(|| tensor.clone());
            let mixed = p.mul_scalar(self.alpha) + tensor.mul_scalar(1.0 - self.alpha);
            Param::from_mapped_value(id, mixed, mapper)
        }
    }
    let mut collect = Collect(Vec::new());
    policy.visit(&mut collect);
    reference.map(&mut Mix {
        policy: collect.0.into_iter(),
        alpha,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, NdArray};
    use serde_json::Value;

    type AB = Autodiff<NdArray>;

    /// transformers' `get_linear_schedule_with_warmup` and `get_constant_schedule_with_warmup`,
    /// worked by hand: warm-up 10 steps to 1e-3, then down to 0 at step 110.
    #[test]
    fn learning_rate_schedules_are_transformers() {
        let c = GrpoConfig::new()
            .with_learning_rate(1e-3)
            .with_warmup_steps(10);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        for (step, lr) in [
            (0, 0.0),
            (5, 5e-4),
            (10, 1e-3),
            (60, 5e-4),
            (109, 1e-5),
            (110, 0.0),
        ] {
            assert!(close(c.learning_rate_at(step, 110), lr), "step {step}");
        }
        let c = c.with_lr_scheduler_type(LrScheduler::Constant);
        for (step, lr) in [(0, 0.0), (5, 5e-4), (10, 1e-3), (109, 1e-3)] {
            assert!(close(c.learning_rate_at(step, 110), lr), "step {step}");
        }
    }

    fn floats(v: &Value) -> Vec<f32> {
        v.as_array()
            .expect("an array")
            .iter()
            .map(|x| x.as_f64().expect("a number") as f32)
            .collect()
    }

    /// The token-level loss and its gradient for every `loss_type` (dapo included), every
    /// `scale_rewards`, with and without β · k3, clip-higher and `mask_truncated_completions`,
    /// against PyTorch doing what TRL does (`tools/grpo_token_loss_reference.py`) on a ragged,
    /// masked minibatch of a larger generation batch.
    #[test]
    fn token_loss_matches_trl_computed_by_pytorch() {
        let data: Value =
            serde_json::from_str(include_str!("../tests/data/grpo_token_loss_reference.json"))
                .expect("the reference file parses");
        let g = data["group_size"].as_u64().unwrap() as usize;
        let rows = data["minibatch"].as_u64().unwrap() as usize;
        let c = data["width"].as_u64().unwrap() as usize;
        let lengths: Vec<usize> = data["lengths"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect();
        let terminated: Vec<bool> = data["terminated"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_bool().unwrap())
            .collect();
        let rewards: Vec<f64> = floats(&data["rewards"])
            .into_iter()
            .map(f64::from)
            .collect();
        let head = |key: &str| floats(&data[key])[..rows * c].to_vec();
        let (log_probs, old, reference) = (
            head("log_probs"),
            head("old_log_probs"),
            head("ref_log_probs"),
        );
        let device = Default::default();
        let t2 = |v: Vec<f32>| Tensor::<AB, 2>::from_data(TensorData::new(v, [rows, c]), &device);
        let cases = data["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 24);
        for case in cases {
            let name = format!(
                "{} / scale {} / beta {} / mask_truncated {}",
                case["loss_type"],
                case["scale_rewards"],
                case["beta"],
                case["mask_truncated_completions"]
            );
            let config =
                GrpoConfig::new()
                    .with_num_generations(g)
                    .with_max_completion_length(
                        data["max_completion_length"].as_u64().unwrap() as usize
                    )
                    .with_epsilon(data["epsilon"].as_f64().unwrap())
                    .with_epsilon_high(case["epsilon_high"].as_f64())
                    .with_beta(case["beta"].as_f64().unwrap())
                    .with_mask_truncated_completions(
                        case["mask_truncated_completions"].as_bool().unwrap(),
                    )
                    .with_loss_type(serde_json::from_value(case["loss_type"].clone()).unwrap())
                    .with_scale_rewards(
                        serde_json::from_value(case["scale_rewards"].clone()).unwrap(),
                    );
            let scale = match config.scale_rewards {
                ScaleRewards::Group => GroupScale::Std,
                ScaleRewards::Batch => GroupScale::Batch,
                ScaleRewards::None => GroupScale::None,
            };
            let advantages = group_relative(&rewards, g, scale).unwrap();
            for (a, e) in advantages.iter().zip(floats(&case["advantages"])) {
                assert!((*a as f32 - e).abs() < 1e-5, "{name}: advantage {a} vs {e}");
            }
            let keep = |r: usize| terminated[r] || !config.mask_truncated_completions;
            let mut mask = Vec::new();
            let mut per_token_advantages = Vec::new();
            for r in 0..rows {
                for j in 0..c {
                    mask.push(f32::from(u8::from(keep(r) && j < lengths[r])));
                    per_token_advantages.push(advantages[r] as f32);
                }
            }
            let generation_tokens: usize = (0..lengths.len())
                .filter(|&r| keep(r))
                .map(|r| lengths[r])
                .sum();
            assert_eq!(
                generation_tokens as u64,
                case["generation_tokens"].as_u64().unwrap()
            );
            let leaf = t2(log_probs.clone()).require_grad();
            let out = token_loss(
                &config,
                leaf.clone(),
                t2(old.clone()),
                (config.beta > 0.0).then(|| t2(reference.clone())),
                t2(per_token_advantages),
                t2(mask),
                generation_tokens,
            );
            let loss = read(out.loss.clone())[0];
            let expected = case["loss"].as_f64().unwrap() as f32;
            assert!(
                (loss - expected).abs() < 1e-5,
                "{name}: loss {loss} vs PyTorch {expected}"
            );
            let grads = out.loss.backward();
            let grad = read(leaf.grad(&grads).expect("a gradient for the log-probs"));
            for (k, (x, e)) in grad.iter().zip(floats(&case["grad"])).enumerate() {
                assert!(
                    (x - e).abs() < 1e-5,
                    "{name}: gradient [{}, {}] {x} vs PyTorch {e}",
                    k / c,
                    k % c
                );
            }
        }
    }
}
