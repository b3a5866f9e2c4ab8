//! PPO on sequences with TRL's `PPOTrainer` semantics and names: one completion per prompt, a
//! value head on the policy's final hidden states, per-token rewards `−kl_coef · k1` to the
//! frozen reference with the task's reward added on the completion's last token, GAE with
//! `gamma` 1 and `lam` 0.95 over each completion's tokens, advantages whitened over the batch's
//! tokens, then `num_ppo_epochs` passes of `num_mini_batches` minibatches of the clipped
//! surrogate plus `vf_coef` times the clipped value loss.
//!
//! The math is Cinder's one copy: [`cinder_rl::advantages::gae`] and
//! [`cinder_rl::advantages::normalize`], [`cinder_rl::losses::Surrogate`],
//! [`cinder_rl::losses::value_loss`] and [`cinder_rl::losses::kl_estimate`].
//!
//! Unlike TRL, whose value model is a second network (initialised from the reward model), the
//! value head here shares the policy's trunk: there is no reward model to start it from, and one
//! trunk halves the cost of every pass.

use crate::error::LmError;
use crate::logprobs::{completion_log_probs, completion_log_probs_and_values};
use crate::model::{TransformerPolicy, linear};
use crate::rollout::{
    CompletionStats, Generation, LearnerState, SampleRow, load_reference, shuffle,
};
use crate::sampling::SamplingConfig;
use crate::sft::ADAM_EPSILON;
use crate::task::{ProblemSampler, Rewards};
use burn::config::Config;
use burn::module::{AutodiffModule, Module};
use burn::nn::{Linear, LinearConfig};
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Int, Tensor, TensorData};
use cinder_env::rng::NpRandom;
use cinder_rl::adam::{PolicyOptimizer, fused_adam};
use cinder_rl::advantages::{gae, normalize};
use cinder_rl::checkpoint::Checkpoint;
use cinder_rl::gradients::clip_grad_norm;
use cinder_rl::losses::{KlEstimator, Surrogate, kl_estimate, value_loss};
use cinder_rl::tensors::read;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// The configuration of PPO on sequences; names and defaults are TRL's `PPOConfig`'s where TRL
/// has them, scaled to a small model trained on a CPU otherwise.
#[derive(Config, Debug, PartialEq)]
pub struct PpoConfig {
    /// Adam's learning rate (constant; TRL's 3e-6 is for billion-parameter models).
    #[config(default = 3e-4)]
    pub learning_rate: f64,
    /// Prompts (and so completions: one each) per rollout.
    #[config(default = 256)]
    pub prompts_per_step: usize,
    /// The coefficient of the per-token KL penalty folded into the rewards (TRL's `kl_coef`).
    #[config(default = 0.05)]
    pub kl_coef: f64,
    /// The per-token KL estimate in the rewards: `k1` (TRL's default, `log π − log π_ref`) or
    /// `k3`.
    #[config(default = "KlEstimator::K1")]
    pub kl_estimator: KlEstimator,
    /// ε of the policy's clipped surrogate (TRL's `cliprange`).
    #[config(default = 0.2)]
    pub cliprange: f64,
    /// ε of the clipped value loss (TRL's `cliprange_value`).
    #[config(default = 0.2)]
    pub cliprange_value: f64,
    /// The value loss's coefficient (TRL's `vf_coef`).
    #[config(default = 0.1)]
    pub vf_coef: f64,
    /// γ of GAE over a completion's tokens.
    #[config(default = 1.0)]
    pub gamma: f64,
    /// λ of GAE (TRL's `lam`).
    #[config(default = 0.95)]
    pub lam: f64,
    /// Passes over each rollout (TRL's `num_ppo_epochs`; its default is 4).
    #[config(default = 2)]
    pub num_ppo_epochs: usize,
    /// Minibatches per pass.
    #[config(default = 1)]
    pub num_mini_batches: usize,
    /// Whiten the per-token rewards before GAE (TRL's `whiten_rewards`).
    #[config(default = false)]
    pub whiten_rewards: bool,
    /// Sampling temperature of the completions (TRL's PPO default is 0.7; 1 samples the policy
    /// itself, which the surrogate's ratios assume).
    #[config(default = 1.0)]
    pub temperature: f64,
    /// Tokens per completion at most, `EOS` included (TRL's `response_length`).
    #[config(default = 8)]
    pub max_completion_length: usize,
    /// Maximum global gradient norm.
    #[config(default = 1.0)]
    pub max_grad_norm: f32,
}

impl PpoConfig {
    /// Checks every value; the error says what to change.
    pub fn validate(&self) -> crate::Result<()> {
        let bad = |m: String| Err(LmError::InvalidConfig(m));
        if self.prompts_per_step == 0 || self.num_ppo_epochs == 0 {
            return bad("prompts_per_step and num_ppo_epochs must be >= 1".into());
        }
        if self.num_mini_batches == 0 || self.prompts_per_step % self.num_mini_batches != 0 {
            return bad(format!(
                "num_mini_batches ({}) must divide prompts_per_step ({})",
                self.num_mini_batches, self.prompts_per_step
            ));
        }
        let positive = [
            ("learning_rate", self.learning_rate),
            ("cliprange", self.cliprange),
            ("cliprange_value", self.cliprange_value),
        ];
        for (name, v) in positive {
            if !(v > 0.0 && v.is_finite()) {
                return bad(format!("{name} must be > 0 (got {v})"));
            }
        }
        let non_negative = [("kl_coef", self.kl_coef), ("vf_coef", self.vf_coef)];
        for (name, v) in non_negative {
            if !(v >= 0.0 && v.is_finite()) {
                return bad(format!("{name} must be >= 0 (got {v})"));
            }
        }
        if !(0.0..=1.0).contains(&self.gamma) || !(0.0..=1.0).contains(&self.lam) {
            return bad(format!(
                "gamma and lam must be in [0, 1] (got {}, {})",
                self.gamma, self.lam
            ));
        }
        if self.max_grad_norm.is_nan() || self.max_grad_norm <= 0.0 {
            return bad(format!(
                "max_grad_norm must be > 0 (got {})",
                self.max_grad_norm
            ));
        }
        self.sampling().validate()
    }

    /// The completions' sampling settings.
    pub fn sampling(&self) -> SamplingConfig {
        SamplingConfig::new()
            .with_temperature(self.temperature)
            .with_max_completion_length(self.max_completion_length)
    }
}

/// The policy and its value head, trained together.
#[derive(Module, Debug)]
pub struct PolicyWithValue<B: burn::tensor::backend::Backend> {
    /// The policy.
    pub policy: TransformerPolicy<B>,
    /// `d_model → 1`: the value of the state a token is chosen in.
    pub value_head: Linear<B>,
}

/// One PPO step's metrics, under TRL's names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PpoMetrics {
    /// The step (1 after the first).
    pub step: u64,
    /// Rewards and completion lengths of the rollout (`reward` is the task's score).
    #[serde(flatten)]
    pub completions: CompletionStats,
    /// Mean over completions of the summed per-token KL estimate to the reference.
    #[serde(rename = "objective/kl")]
    pub kl: f64,
    /// Mean over completions of the summed KL penalty (`−kl_coef · KL`).
    #[serde(rename = "objective/non_score_reward")]
    pub non_score_reward: f64,
    /// Score plus KL penalty, per completion, averaged.
    #[serde(rename = "objective/rlhf_reward")]
    pub rlhf_reward: f64,
    /// Mean per-token entropy of the policy.
    #[serde(rename = "objective/entropy")]
    pub entropy: f64,
    /// Mean `KL(π_old ‖ π_θ)` estimate over the gradient steps.
    #[serde(rename = "policy/approxkl_avg")]
    pub approx_kl: f64,
    /// Mean fraction of tokens whose ratio was clipped.
    #[serde(rename = "policy/clipfrac_avg")]
    pub clip_fraction: f64,
    /// Mean policy loss.
    #[serde(rename = "loss/policy_avg")]
    pub policy_loss: f64,
    /// Mean value loss.
    #[serde(rename = "loss/value_avg")]
    pub value_loss: f64,
    /// Explained variance of the rollout's values for the returns.
    #[serde(rename = "val/explained_variance")]
    pub explained_variance: f64,
    /// The last gradient step's global gradient norm (before clipping).
    pub grad_norm: f64,
    /// The step's learning rate.
    pub learning_rate: f64,
    /// Completion tokens generated per second (sampling only).
    pub tokens_per_second: f64,
    /// Seconds the step took.
    pub step_seconds: f64,
}

/// PPO's state: the policy with its value head, their optimiser, the reference, the problem
/// sampler, the rewards and the sampling generator.
pub struct Ppo<B: AutodiffBackend> {
    config: PpoConfig,
    model: PolicyWithValue<B>,
    optimizer: PolicyOptimizer<B, PolicyWithValue<B>>,
    reference: Option<TransformerPolicy<B::InnerBackend>>,
    sampler: ProblemSampler,
    rewards: Rewards,
    rng: NpRandom,
    step: u64,
    last_samples: Vec<SampleRow>,
}

/// The rollout's per-token tables, `[completions, width]` row-major, and the valid tokens.
struct Rollout {
    width: usize,
    valid: Vec<bool>,
    old_log_probs: Vec<f32>,
    old_values: Vec<f32>,
    advantages: Vec<f32>,
    returns: Vec<f32>,
}

impl<B: AutodiffBackend> Ppo<B> {
    /// PPO from `policy` (the warm start, also the frozen reference when `kl_coef` > 0) with a
    /// fresh value head, drawing prompts from `sampler`, scoring with `rewards`, sampling from
    /// `seed`.
    pub fn new(
        config: PpoConfig,
        policy: TransformerPolicy<B>,
        sampler: ProblemSampler,
        rewards: Rewards,
        seed: u64,
    ) -> crate::Result<Self> {
        config.validate()?;
        let reference = (config.kl_coef > 0.0).then(|| policy.valid());
        let device = policy.device();
        // The value head's weights come first from the run's generator (host-drawn, so the
        // same seed gives the same head on every backend and thread).
        let mut rng = NpRandom::from_seed(seed);
        let value_head = linear(policy.d_model(), 1, &mut rng, &device);
        Ok(Self {
            config,
            model: PolicyWithValue { policy, value_head },
            optimizer: fused_adam(ADAM_EPSILON),
            reference,
            sampler,
            rewards,
            rng,
            step: 0,
            last_samples: Vec::new(),
        })
    }

    /// The current policy.
    pub fn policy(&self) -> &TransformerPolicy<B> {
        &self.model.policy
    }

    /// Steps taken.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// The (prompt, completion, reward) of the last rollout's first completions (four at
    /// most).
    pub fn last_samples(&self) -> &[SampleRow] {
        &self.last_samples
    }

    /// Writes PPO's state into `checkpoint` (sections `policy`, `value_head`, `adam` and, with a
    /// reference, `reference`) and returns the rest of it for its header.
    pub fn save(&self, checkpoint: &mut Checkpoint) -> LearnerState {
        checkpoint.put_module::<B, _>("policy", &self.model.policy);
        checkpoint.put_module::<B, _>("value_head", &self.model.value_head);
        checkpoint.put_adam("adam", &self.model, &self.optimizer);
        if let Some(reference) = &self.reference {
            checkpoint.put_module::<B::InnerBackend, _>("reference", reference);
        }
        LearnerState {
            step: self.step,
            rng: self.rng.clone(),
            sampler_rng: self.sampler.rng().clone(),
        }
    }

    /// PPO restored from a checkpoint written by [`Ppo::save`] (read from `path`, named in
    /// errors); `skeleton` is a policy of the run's architecture on the device to load into.
    pub fn restore(
        config: PpoConfig,
        checkpoint: &Checkpoint,
        path: &std::path::Path,
        state: LearnerState,
        skeleton: TransformerPolicy<B>,
        mut sampler: ProblemSampler,
        rewards: Rewards,
    ) -> crate::Result<Self> {
        config.validate()?;
        let device = skeleton.device();
        let head = LinearConfig::new(skeleton.d_model(), 1)
            .with_initializer(burn::nn::Initializer::Zeros)
            .init(&device);
        let policy = checkpoint.module(path, "policy", "the policy", skeleton, &device)?;
        let value_head = checkpoint.module(path, "value_head", "the value head", head, &device)?;
        let model = PolicyWithValue { policy, value_head };
        let optimizer = checkpoint.adam(path, "adam", &model, fused_adam(ADAM_EPSILON), &device)?;
        let reference = load_reference(checkpoint, path, &model.policy, config.kl_coef > 0.0)?;
        sampler.set_rng(state.sampler_rng);
        Ok(Self {
            config,
            model,
            optimizer,
            reference,
            sampler,
            rewards,
            rng: state.rng,
            step: state.step,
            last_samples: Vec::new(),
        })
    }

    /// One PPO step: a rollout of one completion per prompt, its per-token rewards, values and
    /// GAE advantages, then `num_ppo_epochs` passes of `num_mini_batches` gradient steps. A
    /// non-finite loss or gradient is an error and leaves the model as it was.
    pub fn step(&mut self) -> crate::Result<PpoMetrics> {
        let start = Instant::now();
        let batch = Generation::sample(
            &self.model.policy.valid(),
            &mut self.sampler,
            &self.rewards,
            &self.config.sampling(),
            &mut self.rng,
            self.config.prompts_per_step,
            1,
        )?;
        self.last_samples = batch.sample_rows(1)?;
        let completion_stats = batch.stats(&self.rewards.names());
        let (rollout, kl_sums) = self.rollout(&batch)?;
        let snapshot = (self.model.clone(), self.optimizer.clone());
        let result = self.update(&batch, &rollout);
        let sums = match result {
            Ok(s) => s,
            Err(e) => {
                (self.model, self.optimizer) = snapshot;
                return Err(e);
            }
        };
        self.step += 1;
        let n = batch.rewards.len() as f64;
        let steps = sums.gradient_steps.max(1) as f64;
        let kl = kl_sums.iter().sum::<f64>() / n;
        let non_score_reward = -self.config.kl_coef * kl;
        Ok(PpoMetrics {
            step: self.step,
            kl,
            non_score_reward,
            rlhf_reward: completion_stats.reward + non_score_reward,
            completions: completion_stats,
            entropy: sums.entropy / sums.tokens.max(1.0),
            approx_kl: sums.approx_kl / steps,
            clip_fraction: sums.clip_fraction / steps,
            policy_loss: sums.policy_loss / steps,
            value_loss: sums.value_loss / steps,
            explained_variance: explained_variance(&rollout),
            grad_norm: sums.grad_norm,
            learning_rate: self.config.learning_rate,
            tokens_per_second: batch.tokens as f64 / batch.seconds.max(1e-9),
            step_seconds: start.elapsed().as_secs_f64(),
        })
    }

    /// The rollout policy's log-probs and values, the reference's log-probs, the per-token
    /// rewards and GAE; also each completion's summed KL estimate.
    fn rollout(&self, batch: &Generation) -> crate::Result<(Rollout, Vec<f64>)> {
        let inner = self.model.valid();
        let (out, values) = completion_log_probs_and_values(
            &inner.policy,
            &inner.value_head,
            &batch.prompts,
            &batch.completions,
        )?;
        let [_, width] = out.log_probs.dims();
        let old_log_probs = read(out.log_probs.clone());
        let old_values = read(values);
        let kl_tokens: Vec<f32> = match &self.reference {
            Some(r) => {
                let reference = completion_log_probs(r, &batch.prompts, &batch.completions)?;
                let [b, c] = out.log_probs.dims();
                read(kl_estimate(
                    out.log_probs.reshape([b * c]),
                    reference.log_probs.reshape([b * c]),
                    self.config.kl_estimator,
                ))
            }
            None => vec![0.0; old_log_probs.len()],
        };
        // Per valid token, completion by completion: reward −kl_coef · KL, plus the score on
        // the last token; bootstrap from the next token's value, 0 after the last.
        let mut rewards = Vec::new();
        let mut values = Vec::new();
        let mut bootstrap = Vec::new();
        let mut dones = Vec::new();
        let mut kl_sums = Vec::with_capacity(batch.completions.len());
        for (row, completion) in batch.completions.iter().enumerate() {
            let len = completion.len();
            let cells = row * width..row * width + len;
            kl_sums.push(kl_tokens[cells.clone()].iter().map(|&k| f64::from(k)).sum());
            for j in 0..len {
                let cell = row * width + j;
                let mut r = -(self.config.kl_coef as f32) * kl_tokens[cell];
                if j + 1 == len {
                    r += batch.rewards[row] as f32;
                }
                rewards.push(r);
                values.push(old_values[cell]);
                bootstrap.push(if j + 1 < len {
                    old_values[cell + 1]
                } else {
                    0.0
                });
                dones.push(j + 1 == len);
            }
        }
        if self.config.whiten_rewards {
            whiten_keep_mean(&mut rewards);
        }
        let (mut advantages_flat, returns_flat) = gae(
            &rewards,
            &values,
            &bootstrap,
            &dones,
            1,
            self.config.gamma as f32,
            self.config.lam as f32,
        )?;
        normalize(&mut advantages_flat);
        // Back to [completions, width] tables (padding cells 0, masked out of every loss).
        let mut advantages = vec![0.0; old_log_probs.len()];
        let mut returns = vec![0.0; old_log_probs.len()];
        let mut valid = vec![false; old_log_probs.len()];
        let mut k = 0;
        for (row, completion) in batch.completions.iter().enumerate() {
            for j in 0..completion.len() {
                advantages[row * width + j] = advantages_flat[k];
                returns[row * width + j] = returns_flat[k];
                valid[row * width + j] = true;
                k += 1;
            }
        }
        Ok((
            Rollout {
                width,
                valid,
                old_log_probs,
                old_values,
                advantages,
                returns,
            },
            kl_sums,
        ))
    }

    /// `num_ppo_epochs` passes of `num_mini_batches` gradient steps over the rollout.
    fn update(&mut self, batch: &Generation, rollout: &Rollout) -> crate::Result<Sums> {
        let n = batch.completions.len();
        let minibatch = n / self.config.num_mini_batches;
        let mut order: Vec<usize> = (0..n).collect();
        let mut sums = Sums::default();
        for _ in 0..self.config.num_ppo_epochs {
            shuffle(&mut order, &mut self.rng);
            for rows in order.chunks(minibatch.max(1)) {
                self.gradient_step(rows, batch, rollout, &mut sums)?;
            }
        }
        Ok(sums)
    }

    /// One gradient step on the completions `rows`: the clipped surrogate and the clipped
    /// value loss over their valid tokens.
    fn gradient_step(
        &mut self,
        rows: &[usize],
        batch: &Generation,
        rollout: &Rollout,
        sums: &mut Sums,
    ) -> crate::Result<()> {
        let prompts: Vec<Vec<u32>> = rows.iter().map(|&r| batch.prompts[r].clone()).collect();
        let completions: Vec<Vec<u32>> =
            rows.iter().map(|&r| batch.completions[r].clone()).collect();
        let (out, values) = completion_log_probs_and_values(
            &self.model.policy,
            &self.model.value_head,
            &prompts,
            &completions,
        )?;
        let [b, c] = out.log_probs.dims();
        let device = self.model.policy.device();
        // The valid tokens' cells in this minibatch's [b, c] layout, and their rollout values.
        let mut cells = Vec::new();
        let (mut old_lp, mut old_v, mut adv, mut ret) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (i, &r) in rows.iter().enumerate() {
            for j in 0..batch.completions[r].len() {
                cells.push((i * c + j) as i64);
                let cell = r * rollout.width + j;
                old_lp.push(rollout.old_log_probs[cell]);
                old_v.push(rollout.old_values[cell]);
                adv.push(rollout.advantages[cell]);
                ret.push(rollout.returns[cell]);
            }
        }
        let tokens = cells.len();
        let t1 = |v: Vec<f32>| Tensor::<B, 1>::from_data(TensorData::new(v, [tokens]), &device);
        let index = Tensor::<B, 1, Int>::from_data(TensorData::new(cells, [tokens]), &device);
        let pick = |t: Tensor<B, 2>| t.reshape([b * c]).select(0, index.clone());
        let log_probs = pick(out.log_probs);
        let values = pick(values);
        let entropy = pick(out.entropy).detach().sum();
        let clip = self.config.cliprange as f32;
        let terms = Surrogate::Clipped {
            clip_low: clip,
            clip_high: clip,
        }
        .terms(log_probs, t1(old_lp), t1(adv));
        let vf_loss = value_loss(
            values,
            t1(old_v),
            t1(ret),
            Some(self.config.cliprange_value as f32),
        );
        let loss = terms.loss.clone() + vf_loss.clone().mul_scalar(self.config.vf_coef);
        let scalars = read(Tensor::cat(
            vec![
                loss.clone().detach(),
                terms.loss.detach(),
                vf_loss.detach(),
                entropy,
                terms.approx_kl,
                terms.clip_fraction,
            ],
            0,
        ));
        cinder_rl::RlError::ensure_finite(self.step + 1, "PPO loss", scalars[0])?;
        let grads = GradientsParams::from_grads(loss.backward(), &self.model);
        let (grads, norm) =
            clip_grad_norm::<B, _>(&self.model, grads, self.config.max_grad_norm, &device);
        let norm = read(norm)[0];
        cinder_rl::RlError::ensure_finite(self.step + 1, "PPO gradient norm", norm)?;
        self.model = self
            .optimizer
            .step(self.config.learning_rate, self.model.clone(), grads);
        sums.tokens += tokens as f64;
        sums.policy_loss += f64::from(scalars[1]);
        sums.value_loss += f64::from(scalars[2]);
        sums.entropy += f64::from(scalars[3]);
        sums.approx_kl += f64::from(scalars[4]);
        sums.clip_fraction += f64::from(scalars[5]);
        sums.grad_norm = f64::from(norm);
        sums.gradient_steps += 1;
        Ok(())
    }
}

/// One update's diagnostics.
#[derive(Debug, Default)]
struct Sums {
    tokens: f64,
    policy_loss: f64,
    value_loss: f64,
    entropy: f64,
    approx_kl: f64,
    clip_fraction: f64,
    grad_norm: f64,
    gradient_steps: usize,
}

/// `1 − Var(returns − values) / Var(returns)` over the rollout's valid tokens.
fn explained_variance(rollout: &Rollout) -> f64 {
    let pairs: Vec<(f64, f64)> = rollout
        .returns
        .iter()
        .zip(&rollout.old_values)
        .zip(&rollout.valid)
        .filter(|(_, valid)| **valid)
        .map(|((&r, &v), _)| (f64::from(r), f64::from(v)))
        .collect();
    let n = pairs.len().max(1) as f64;
    let var = |xs: &mut dyn Iterator<Item = f64>| {
        let v: Vec<f64> = xs.collect();
        let m = v.iter().sum::<f64>() / n;
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n
    };
    let var_returns = var(&mut pairs.iter().map(|p| p.0));
    if var_returns == 0.0 {
        return f64::NAN;
    }
    1.0 - var(&mut pairs.iter().map(|p| p.0 - p.1)) / var_returns
}

/// TRL's `masked_whiten(…, shift_mean=False)`: divide by the standard deviation, keep the mean.
fn whiten_keep_mean(x: &mut [f32]) {
    let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / x.len().max(1) as f64;
    let mut centred = x.to_vec();
    normalize(&mut centred);
    for (v, c) in x.iter_mut().zip(centred) {
        *v = (f64::from(c) + mean) as f32;
    }
}
