//! The policy-gradient family as one learner over batches of complete episodes.
//!
//! Every method here minimises `Σ_t w_t · ℓ_t` over the steps of a batch of episodes, where
//! `ℓ_t = surrogate(log π(a_t|s_t), Â_t) + β · KL_t − c_H · H_t` and `w_t` is the
//! [aggregation](LossAggregation) weight of the step (`shared/design/ALGORITHMS.md`). Methods
//! differ only in their pieces, each a field of [`PolicyGradientConfig`]:
//!
//! | piece | REINFORCE ([`crate::reinforce`]) | GRPO ([`crate::grpo`]) |
//! |---|---|---|
//! | advantage | return-to-go − baseline ([`AdvantageEstimator::ReturnToGo`]) | group-relative ([`AdvantageEstimator::GroupRelative`]) |
//! | surrogate | [`Surrogate::Vanilla`] | [`Surrogate::Clipped`] (ε_low, ε_high) |
//! | updates per batch | 1 | `update_iterations` (μ) |
//! | penalty | none | β · KL to a reference policy ([`ReferenceKlConfig`]) |
//! | critic | optional (the learned baseline) | none |
//!
//! Any other combination is a configuration too (group-relative advantages with a k2 penalty,
//! REINFORCE with a KL leash...): no training loop to write. PPO ([`crate::ppo`]) shares the
//! surrogate, KL and value-loss functions of [`crate::losses`] but keeps its own loop (GAE over
//! fixed-length rollouts, minibatches).
//!
//! One update ([`PolicyGradient::iterate`]):
//! 1. draw the batch's reset seeds (one per episode, or one per group of `group_size` episodes
//!    that then start from the same state: GRPO's "prompt");
//! 2. run all episodes of the batch to their end in lockstep ([`collect_episodes`]), sampling
//!    on the host with the seeded generator;
//! 3. estimate advantages; take the reference policy's log-probabilities;
//! 4. `update_iterations` gradient steps on the whole batch (the ratio is taken against the
//!    rollout policy, so the first step has ρ = 1);
//! 5. refresh the reference policy if it is due.
//!
//! Batches always end with their episodes, so a checkpoint between updates holds no
//! half-finished episode and a resumed run continues exactly.

use crate::advantages::{
    GroupScale, MovingAverageBaseline, explained_variance, group_relative, group_statistics,
    normalize, returns_to_go,
};
use crate::checkpoint::{Checkpoint, checkpoint_policy_config, load_model};
use crate::error::{Result, RlError};
use crate::gradients::parameter_norm_tensor;
use crate::host_policy::HOST_INFERENCE_MAX_ROWS;
use crate::learner::{PolicyTrainer, check_policy_fits_spaces};
use crate::losses::{
    KlEstimator, LossAggregation, ReferenceKl, Surrogate, kl_estimate, value_loss,
};
use crate::policy::NetworkConfig;
use crate::policy::{
    Actions, ActorCritic, ActorCriticConfig, Policy, PolicyConfig, PolicyDistribution, TrainPolicy,
};
use crate::run::{Learner, Timings, UpdateCommon, UpdateReport};
use crate::tensors::{UpdateChecks, check_rows, indices1, read, tensor1, tensor2};
use burn::config::Config;
use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};
use cinder_env::rng::NpRandom;
use cinder_env::{Env, Value};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

/// How each step's advantage `Â_t` is estimated from a batch of complete episodes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum AdvantageEstimator {
    /// REINFORCE's Monte-Carlo return-to-go `G_t = Σ_k γ^k r_{t+k}` minus a baseline,
    /// optionally normalised over the batch (`(Â − mean) / (std + 1e-8)`).
    ReturnToGo {
        /// What is subtracted from `G_t`.
        baseline: Baseline,
        /// Normalise the advantages over the batch (a constant baseline then has no effect).
        normalize: bool,
    },
    /// GRPO's group-relative advantage: each episode is scored by its undiscounted return (one
    /// reward per trajectory), compared within its group of `group_size` episodes that start
    /// from the same seeded reset ([`group_relative`]), and every step of the episode gets that
    /// advantage.
    GroupRelative {
        /// Episodes per group, G ≥ 2; `episodes_per_batch` must be a multiple of it.
        group_size: usize,
        /// Divide by the group's standard deviation (GRPO) or not (Dr. GRPO).
        scale: GroupScale,
    },
}

/// REINFORCE's baseline.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Baseline {
    /// No baseline: `Â_t = G_t`.
    None,
    /// An exponential moving average of the returns-to-go of earlier batches
    /// ([`MovingAverageBaseline`]; the current batch does not enter its own baseline).
    MovingAverage {
        /// Smoothing factor α in (0, 1].
        alpha: f64,
    },
    /// A learned critic `V(s_t)` (the policy's value head), trained on `½ (V − G_t)²` with
    /// weight `vf_coef`; truncated episodes bootstrap `G` from the value of their final state.
    Critic {
        /// Weight of the value loss.
        vf_coef: f32,
    },
}

/// Which policy the KL penalty pulls towards.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum ReferencePolicy {
    /// The initial policy, frozen for the whole run.
    Initial,
    /// A snapshot of the current policy, taken every `updates` updates (TRL's
    /// `sync_ref_model` with α = 1).
    RefreshEvery {
        /// Updates between snapshots (≥ 1).
        updates: u64,
    },
}

/// A KL penalty with coefficient β towards a frozen reference policy π_ref (GRPO's penalty;
/// not PPO's adaptive penalty to the rollout policy, [`crate::ppo::AdaptiveKlConfig`]).
///
/// Two placements:
/// - **as a loss term** (`in_reward = false`, GRPO/TRL): `β · k` is added to every step's loss.
///   Which KL's gradient that follows depends on the estimator ([`KlEstimator`]): k2 and the
///   exact categorical KL pull along `∇KL(π_θ ‖ π_ref)`, k3 along `∇KL(π_ref ‖ π_θ)` (TRL's
///   behaviour), and k1 has a zero-mean gradient, so it is refused here;
/// - **in the reward** (`in_reward = true`, PPO-RLHF): each step's reward becomes
///   `r_t − β · k_t`, with `k_t` measured at rollout time between the rollout policy and the
///   reference (k1 there is `log π_old(a_t|s_t) − log π_ref(a_t|s_t)`, whose expectation is
///   `KL(π_old ‖ π_ref)`); the advantages, and so the policy gradient, then carry the penalty.
#[derive(Config, Debug, PartialEq)]
pub struct ReferenceKlConfig {
    /// The coefficient β ≥ 0 (β = 0 measures the KL without penalising it).
    #[config(default = 0.04)]
    pub coef: f32,
    /// How the KL is measured: k1, k2, k3 (GRPO's) or the exact categorical KL.
    #[config(default = "ReferenceKl::Estimator(KlEstimator::K3)")]
    pub kl: ReferenceKl,
    /// The reference: the initial policy or a periodically refreshed snapshot.
    #[config(default = "ReferencePolicy::Initial")]
    pub reference: ReferencePolicy,
    /// Subtract `β · k_t` from each step's reward instead of adding it to the loss (PPO-RLHF's
    /// placement, the one that suits k1). Needs a sample estimator.
    #[config(default = false)]
    pub in_reward: bool,
}

/// The configuration of a policy-gradient method (see the [module docs](self)); the defaults
/// are REINFORCE's with a learned baseline ([`crate::reinforce::config`]);
/// [`crate::grpo::config`] gives GRPO's.
#[derive(Config, Debug, PartialEq)]
pub struct PolicyGradientConfig {
    /// Seed of the policy's initialisation, the action sampling and the episodes' resets.
    #[config(default = 1)]
    pub seed: u64,
    /// Env steps to train for: training stops after the first update that reaches it.
    #[config(default = 500_000)]
    pub total_timesteps: u64,
    /// Adam's learning rate (constant).
    #[config(default = 3e-3)]
    pub learning_rate: f64,
    /// Complete episodes per update (a multiple of the group size for group-relative
    /// advantages); one env each.
    #[config(default = 8)]
    pub episodes_per_batch: usize,
    /// Discount factor γ of the returns-to-go (group-relative rewards are undiscounted).
    #[config(default = 0.99)]
    pub gamma: f32,
    /// The advantage estimator.
    #[config(
        default = "AdvantageEstimator::ReturnToGo { baseline: Baseline::Critic { vf_coef: 0.5 }, normalize: true }"
    )]
    pub advantage: AdvantageEstimator,
    /// The surrogate loss.
    #[config(default = "Surrogate::Vanilla")]
    pub surrogate: Surrogate,
    /// Gradient steps on each batch (μ, TRL's `num_iterations`); more than 1 needs the
    /// clipped surrogate to stay near the rollout policy.
    #[config(default = 1)]
    pub update_iterations: usize,
    /// A KL penalty towards a reference policy; `None`: no reference.
    #[config(default = "None")]
    pub reference_kl: Option<ReferenceKlConfig>,
    /// Entropy bonus coefficient.
    #[config(default = 0.0)]
    pub ent_coef: f32,
    /// How the per-step losses of the batch's episodes become one number.
    #[config(default = "LossAggregation::Bnpo")]
    pub aggregation: LossAggregation,
    /// Maximum global gradient norm (`None`: no clipping; the norm is still measured).
    #[config(default = "None")]
    pub max_grad_norm: Option<f32>,
    /// The policy network (SB3's `policy_kwargs`): hidden sizes, activation, initialisation,
    /// a Gaussian policy's initial log-std.
    #[config(default = "NetworkConfig::new()")]
    pub network: NetworkConfig,
}

impl PolicyGradientConfig {
    /// A short name for the configuration: `reinforce` (return-to-go, vanilla surrogate),
    /// `grpo` (group-relative, clipped), or `policy_gradient` for other compositions.
    pub fn method(&self) -> &'static str {
        match (self.advantage, self.surrogate) {
            (AdvantageEstimator::ReturnToGo { .. }, Surrogate::Vanilla) => "reinforce",
            (AdvantageEstimator::GroupRelative { .. }, Surrogate::Clipped { .. }) => "grpo",
            _ => "policy_gradient",
        }
    }

    /// Whether the policy's value head is trained (a critic baseline).
    pub fn uses_critic(&self) -> bool {
        matches!(
            self.advantage,
            AdvantageEstimator::ReturnToGo {
                baseline: Baseline::Critic { .. },
                ..
            }
        )
    }

    /// Checks every value; the error says what to change.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(RlError::InvalidConfig(msg));
        for (name, v) in [
            ("episodes_per_batch", self.episodes_per_batch),
            ("update_iterations", self.update_iterations),
        ] {
            if v == 0 {
                return bad(format!("{name} must be at least 1"));
            }
        }
        self.network.validate()?;
        if self.total_timesteps == 0 {
            return bad("total_timesteps must be at least 1".into());
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad(format!(
                "learning_rate ({}) must be positive",
                self.learning_rate
            ));
        }
        if !(0.0..=1.0).contains(&self.gamma) {
            return bad(format!("gamma ({}) must be in [0, 1]", self.gamma));
        }
        if !(self.ent_coef.is_finite() && self.ent_coef >= 0.0) {
            return bad(format!(
                "ent_coef ({}) must be finite and >= 0",
                self.ent_coef
            ));
        }
        if let Some(norm) = self.max_grad_norm {
            if !(norm.is_finite() && norm > 0.0) {
                return bad(format!("max_grad_norm ({norm}) must be positive, or None"));
            }
        }
        self.surrogate.validate()?;
        self.aggregation.validate()?;
        match self.advantage {
            AdvantageEstimator::ReturnToGo { baseline, .. } => match baseline {
                Baseline::None => {}
                Baseline::MovingAverage { alpha } => {
                    MovingAverageBaseline::new(alpha)?;
                }
                Baseline::Critic { vf_coef } => {
                    if !(vf_coef.is_finite() && vf_coef > 0.0) {
                        return bad(format!(
                            "the critic baseline's vf_coef ({vf_coef}) must be positive"
                        ));
                    }
                }
            },
            AdvantageEstimator::GroupRelative { group_size, .. } => {
                if group_size < 2 {
                    return bad(format!(
                        "group_size ({group_size}) must be at least 2: an episode needs others \
                         from the same start to be compared with"
                    ));
                }
                if self.episodes_per_batch % group_size != 0 {
                    return bad(format!(
                        "episodes_per_batch ({}) must be a multiple of group_size ({group_size})",
                        self.episodes_per_batch
                    ));
                }
            }
        }
        if self.update_iterations > 1 && self.surrogate == Surrogate::Vanilla {
            return bad(format!(
                "update_iterations ({}) > 1 needs the clipped surrogate: the vanilla one does \
                 not stay near the rollout policy",
                self.update_iterations
            ));
        }
        if let Some(kl) = &self.reference_kl {
            if !(kl.coef.is_finite() && kl.coef >= 0.0) {
                return bad(format!(
                    "reference_kl.coef (β = {}) must be finite and >= 0",
                    kl.coef
                ));
            }
            if kl.reference == (ReferencePolicy::RefreshEvery { updates: 0 }) {
                return bad("reference_kl.reference: refresh every 0 updates; use >= 1".into());
            }
            match (kl.kl, kl.in_reward) {
                (ReferenceKl::Estimator(KlEstimator::K1), false) => {
                    return bad(
                        "reference_kl: k1 as a loss term has a zero-mean gradient (it only adds \
                         noise); put it in the reward (in_reward = true, as PPO-RLHF does) or \
                         use k2 (gradient of KL(π_θ ‖ π_ref)) or k3 (gradient of \
                         KL(π_ref ‖ π_θ), TRL's)"
                            .into(),
                    );
                }
                (ReferenceKl::ExactCategorical, true) => {
                    return bad(
                        "reference_kl: in_reward needs a sample estimator (k1, k2 or k3); the \
                         exact categorical KL is a loss term"
                            .into(),
                    );
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// A batch of complete episodes, laid end to end (episode 0's steps, then episode 1's...).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EpisodeBatch {
    /// Observations, `[steps, obs_dim]`.
    pub obs: Vec<f32>,
    /// Actions as floats, `[steps, action_width]` (the index for discrete actions).
    pub actions: Vec<f32>,
    /// `log π_old(a|s)` at rollout time, `[steps]`.
    pub log_probs: Vec<f32>,
    /// Rewards, `[steps]`.
    pub rewards: Vec<f32>,
    /// Each episode's length.
    pub lengths: Vec<usize>,
    /// Whether each episode ended by truncation (a time limit) rather than termination.
    pub truncated: Vec<bool>,
    /// Each episode's final observation, `[episodes, obs_dim]`.
    pub final_obs: Vec<f32>,
    /// Each episode's undiscounted return.
    pub returns: Vec<f64>,
}

impl EpisodeBatch {
    /// Steps in the batch.
    pub fn steps(&self) -> usize {
        self.rewards.len()
    }
}

/// Runs one episode per env to its end, all in lockstep, env `i` reset with `seeds[i]`:
/// each step, the observations of the episodes still running go through `policy` in one batch
/// and actions are sampled on the host with `rng` (up to [`HOST_INFERENCE_MAX_ROWS`] episodes,
/// on the policy's host copy when it offers one: [`crate::host_policy`]). Time in the envs and
/// in inference is added to `timings`.
///
/// Errors: `seeds` and `envs` of different lengths, an env error, an env without a time limit
/// that runs past `max_steps`.
pub fn collect_episodes<Bk: Backend, P: Policy<Bk>, E: Env<Obs = Vec<f32>, Action = Value>>(
    policy: &P,
    envs: &mut [E],
    seeds: &[u64],
    max_steps: usize,
    rng: &mut NpRandom,
    device: &Bk::Device,
    timings: &mut Timings,
) -> Result<EpisodeBatch> {
    if envs.len() != seeds.len() {
        return Err(RlError::InvalidConfig(format!(
            "{} envs for {} episodes",
            envs.len(),
            seeds.len()
        )));
    }
    let n = envs.len();
    let d = policy.obs_dim();
    // Continuous actions are clipped to the action space before the env sees them; the batch
    // keeps the sample and its log-probability (as SB3 does).
    let bounds = match envs.first().map(|env| env.action_space()) {
        Some(cinder_env::Space::Box(b)) => Some((b.low, b.high)),
        _ => None,
    };
    let fits = |obs: &[f32]| {
        if obs.len() == d {
            Ok(())
        } else {
            Err(RlError::UnsupportedSpace(format!(
                "an env returned an observation of {} floats, the policy takes {d}",
                obs.len()
            )))
        }
    };
    let clock = Instant::now();
    let mut current = Vec::with_capacity(n);
    for (env, &seed) in envs.iter_mut().zip(seeds) {
        let obs = env.reset(Some(seed))?.0;
        fits(&obs)?;
        current.push(obs);
    }
    timings.env += clock.elapsed().as_secs_f64();
    // Per episode: observations, actions, log-probs, rewards.
    let mut obs: Vec<Vec<f32>> = vec![Vec::new(); n];
    let mut actions: Vec<Vec<f32>> = vec![Vec::new(); n];
    let mut log_probs: Vec<Vec<f32>> = vec![Vec::new(); n];
    let mut rewards: Vec<Vec<f32>> = vec![Vec::new(); n];
    let mut truncated = vec![false; n];
    let mut returns = vec![0.0f64; n];
    let mut running: Vec<usize> = (0..n).collect();
    let mut steps = 0usize;
    // Small batches run on a host copy of the policy (one read of its weights).
    let host = if n > HOST_INFERENCE_MAX_ROWS {
        None
    } else {
        policy.host_policy().filter(|h| h.obs_dim() == d)
    };
    while !running.is_empty() {
        if steps >= max_steps {
            return Err(RlError::InvalidConfig(format!(
                "an episode ran past {max_steps} steps; give the env a time limit (TimeLimit)"
            )));
        }
        steps += 1;
        let clock = Instant::now();
        let batch: Vec<f32> = running
            .iter()
            .flat_map(|&i| current[i].iter().copied())
            .collect();
        let sampled = match &host {
            Some(host) => host.sample(&batch, running.len(), rng),
            None => {
                let dist = policy.distribution(tensor2::<Bk>(batch, running.len(), d, device));
                if dist.rows() != running.len() {
                    return Err(RlError::InvalidInput(format!(
                        "the policy gave {} action distributions for {} observations",
                        dist.rows(),
                        running.len()
                    )));
                }
                dist.sample(rng)
            }
        };
        timings.inference += clock.elapsed().as_secs_f64();
        let width = sampled.flat.len() / running.len();
        let clock = Instant::now();
        let mut still_running = Vec::with_capacity(running.len());
        for (k, (&i, action)) in running.iter().zip(&sampled.actions).enumerate() {
            let step = match (action, &bounds) {
                (Value::Continuous(a), Some((low, high))) => {
                    let mut a = a.clone();
                    crate::policy::clip_to_bounds(&mut a, low, high);
                    envs[i].step(&Value::Continuous(a))?
                }
                _ => envs[i].step(action)?,
            };
            fits(&step.obs)?;
            obs[i].extend_from_slice(&current[i]);
            actions[i].extend_from_slice(&sampled.flat[k * width..(k + 1) * width]);
            log_probs[i].push(sampled.log_probs[k]);
            rewards[i].push(step.reward as f32);
            returns[i] += step.reward;
            current[i] = step.obs;
            if step.terminated || step.truncated {
                truncated[i] = !step.terminated;
            } else {
                still_running.push(i);
            }
        }
        running = still_running;
        timings.env += clock.elapsed().as_secs_f64();
    }
    Ok(EpisodeBatch {
        lengths: rewards.iter().map(Vec::len).collect(),
        obs: obs.concat(),
        actions: actions.concat(),
        log_probs: log_probs.concat(),
        rewards: rewards.concat(),
        truncated,
        final_obs: current.concat(),
        returns,
    })
}

/// The reference policy's outputs on a batch (constants).
#[derive(Debug, Clone)]
pub enum ReferenceOutputs<B: Backend> {
    /// `log π_ref(a|s)` of the actions taken, `[batch]` (for the sample estimators).
    LogProbs(Tensor<B, 1>),
    /// `log π_ref(·|s)` over all actions, `[batch, actions]` (for the exact categorical KL).
    Categorical(Tensor<B, 2>),
}

/// What [`pg_loss`] needs: a batch of steps on the training device.
#[derive(Debug, Clone)]
pub struct PgBatch<B: Backend> {
    /// Observations, `[batch, obs_dim]`.
    pub obs: Tensor<B, 2>,
    /// The actions taken.
    pub actions: Actions<B>,
    /// `log π_old(a|s)` at rollout time, `[batch]`.
    pub old_log_probs: Tensor<B, 1>,
    /// Advantages, `[batch]`.
    pub advantages: Tensor<B, 1>,
    /// Aggregation weight of each step ([`LossAggregation::weights`]), `[batch]`.
    pub weights: Tensor<B, 1>,
    /// Value targets for a critic, `[batch]` (`None`: no value loss).
    pub returns: Option<Tensor<B, 1>>,
    /// The reference policy's outputs (`None`: no KL penalty).
    pub reference: Option<ReferenceOutputs<B>>,
}

/// The loss of a policy-gradient method on a batch, and its parts (each `[1]`).
#[derive(Debug, Clone)]
pub struct PgLoss<B: Backend> {
    /// `Σ w_t (surrogate_t + β KL_t − c_H H_t) + vf_coef · value_loss`, differentiable.
    pub loss: Tensor<B, 1>,
    /// The aggregated surrogate.
    pub policy_loss: Tensor<B, 1>,
    /// The value loss `½ mean((V − G)²)` (with a critic).
    pub value_loss: Option<Tensor<B, 1>>,
    /// The aggregated entropy.
    pub entropy: Tensor<B, 1>,
    /// The mean per-step KL to the reference policy (with a reference), detached.
    pub kl_to_reference: Option<Tensor<B, 1>>,
    /// `mean((ρ − 1) − log ρ)` against the rollout policy, detached.
    pub approx_kl: Tensor<B, 1>,
    /// Fraction of clipped ratios, detached.
    pub clip_fraction: Tensor<B, 1>,
}

/// The loss of the method `config` describes on `batch`: the configured surrogate, the KL
/// penalty towards the reference policy when `batch.reference` is given (coefficient
/// `config.reference_kl`'s β, estimator or exact KL as configured), the entropy bonus, all
/// aggregated with `batch.weights`, plus the critic's value loss when `batch.returns` is given.
pub fn pg_loss<B: Backend, P: Policy<B>>(
    model: &P,
    batch: PgBatch<B>,
    config: &PolicyGradientConfig,
) -> Result<PgLoss<B>> {
    let PgBatch {
        obs,
        actions,
        old_log_probs,
        advantages,
        weights,
        returns,
        reference,
    } = batch;
    let rows = crate::policy::check_obs(&obs, model.obs_dim())?;
    let dist = model.distribution(obs.clone());
    if dist.rows() != rows {
        return Err(RlError::InvalidInput(format!(
            "the policy gave {} action distributions for {rows} observations",
            dist.rows()
        )));
    }
    dist.check_actions(&actions)?;
    for (name, t) in [
        ("old_log_probs", Some(&old_log_probs)),
        ("advantages", Some(&advantages)),
        ("weights", Some(&weights)),
        ("returns", returns.as_ref()),
    ] {
        if let Some(t) = t {
            check_rows(name, t, rows)?;
        }
    }
    match &reference {
        Some(ReferenceOutputs::LogProbs(r)) => check_rows("reference log-probs", r, rows)?,
        Some(ReferenceOutputs::Categorical(r)) if r.dims() != [rows, dist.width()] => {
            return Err(RlError::InvalidInput(format!(
                "the reference distributions are {:?}, the batch needs [{rows}, {}]",
                r.dims(),
                dist.width()
            )));
        }
        _ => {}
    }
    let log_probs = dist.log_prob(actions)?;
    let entropy = dist.entropy();
    let surrogate = config
        .surrogate
        .terms(log_probs.clone(), old_log_probs, advantages);
    let weighted = |per_step: Tensor<B, 1>| (per_step * weights.clone()).sum();
    let policy_loss = weighted(surrogate.per_sample.clone());
    let entropy = weighted(entropy);
    let mut loss = policy_loss.clone() - entropy.clone().mul_scalar(config.ent_coef);
    let mut kl_to_reference = None;
    if let Some(reference) = reference {
        let per_step = match (reference, config.reference_kl.as_ref().map(|k| k.kl)) {
            (ReferenceOutputs::LogProbs(ref_log_probs), Some(ReferenceKl::Estimator(est))) => {
                kl_estimate(log_probs, ref_log_probs, est)
            }
            (ReferenceOutputs::Categorical(ref_log_probs), Some(ReferenceKl::ExactCategorical)) => {
                match &dist {
                    PolicyDistribution::Categorical(c) => {
                        c.kl(&crate::distributions::Categorical {
                            log_probs: ref_log_probs.detach(),
                        })
                    }
                    PolicyDistribution::Gaussian(_) => {
                        return Err(RlError::UnsupportedSpace(
                            "the exact KL is for categorical policies; use an estimator".into(),
                        ));
                    }
                }
            }
            _ => {
                return Err(RlError::InvalidConfig(
                    "the reference outputs do not match config.reference_kl (log-probs for an \
                     estimator, full distributions for the exact KL)"
                        .into(),
                ));
            }
        };
        kl_to_reference = Some(per_step.clone().mean().detach());
        // In the reward (PPO-RLHF), the penalty is already in the advantages.
        if let Some(kl) = config.reference_kl.as_ref().filter(|k| !k.in_reward) {
            loss = loss + weighted(per_step).mul_scalar(kl.coef);
        }
    }
    let value_loss = match (returns, config.advantage) {
        (
            Some(returns),
            AdvantageEstimator::ReturnToGo {
                baseline: Baseline::Critic { vf_coef },
                ..
            },
        ) => {
            let v_loss = value_loss(model.value(obs), returns.clone(), returns, None);
            loss = loss + v_loss.clone().mul_scalar(vf_coef);
            Some(v_loss)
        }
        _ => None,
    };
    Ok(PgLoss {
        loss,
        policy_loss,
        value_loss,
        entropy,
        kl_to_reference,
        approx_kl: surrogate.approx_kl,
        clip_fraction: surrogate.clip_fraction,
    })
}

/// What one update reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PgMetrics {
    /// 1-based update number.
    pub iteration: u64,
    /// Env steps taken so far.
    pub global_step: u64,
    /// Env steps in this update's batch.
    pub batch_steps: u64,
    /// Learning rate used.
    pub learning_rate: f64,
    /// The aggregated surrogate of the last gradient step.
    pub policy_loss: f32,
    /// The critic's value loss of the last gradient step (with a critic baseline).
    pub value_loss: Option<f32>,
    /// The aggregated entropy of the last gradient step.
    pub entropy: f32,
    /// Mean per-step KL to the reference policy at the last gradient step (with a penalty).
    pub kl_to_reference: Option<f32>,
    /// The KL coefficient β (with a penalty).
    pub kl_coef: Option<f32>,
    /// `mean((ρ − 1) − log ρ)` against the rollout policy at the last gradient step.
    pub approx_kl: f32,
    /// Fraction of clipped ratios, averaged over the gradient steps.
    pub clip_fraction: f32,
    /// Global gradient norm (before clipping) of the last gradient step.
    pub grad_norm: f32,
    /// The moving-average baseline used for this batch (with that baseline).
    pub baseline: Option<f64>,
    /// Explained variance of the critic's values for the returns-to-go (with a critic).
    pub explained_variance: Option<f64>,
    /// Group-relative advantages: the mean episode return over the batch's groups (the scores
    /// the groups were compared by: with the KL in the reward, returns minus `β · Σ k_t`).
    pub group_return_mean: Option<f64>,
    /// Group-relative advantages: the mean within-group standard deviation of returns.
    pub group_return_std: Option<f64>,
    /// Group-relative advantages: the fraction of groups whose returns were all equal (their
    /// advantages are zero: no learning signal).
    pub zero_std_groups: Option<f64>,
    /// Speed, time and the batch's episodes (returns and lengths).
    #[serde(flatten)]
    pub common: UpdateCommon,
}

impl PgMetrics {
    /// The metrics with their wall-clock fields zeroed: what must be equal between two runs
    /// with the same seed.
    pub fn without_timings(self) -> Self {
        Self {
            common: self.common.without_timings(),
            ..self
        }
    }
}

impl UpdateReport for PgMetrics {
    fn iteration(&self) -> u64 {
        self.iteration
    }
    fn global_step(&self) -> u64 {
        self.global_step
    }
    fn common(&self) -> &UpdateCommon {
        &self.common
    }
}

/// The learner's state besides the networks and the optimiser.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PgState {
    iteration: u64,
    global_step: u64,
    rng: NpRandom,
    baseline: Option<MovingAverageBaseline>,
    wall_seconds: f64,
}

/// What a policy-gradient checkpoint's header holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PgCheckpointMeta<C> {
    algorithm: String,
    method: String,
    config: PolicyGradientConfig,
    policy: C,
    trainer: PgState,
}

/// The checkpoint header's `algorithm` for this learner.
const ALGORITHM: &str = "policy_gradient";

/// A policy-gradient learner (REINFORCE, GRPO and their relatives) on `episodes_per_batch`
/// envs, one per episode of a batch. Implements [`Learner`], so [`crate::run::train`] drives it.
/// The policy is the built-in [`ActorCritic`] ([`PolicyGradient::new`], shaped by
/// `config.network`) or any [`Policy`] `P` ([`PolicyGradient::with_policy`]).
pub struct PolicyGradient<
    B: AutodiffBackend,
    E: Env<Obs = Vec<f32>, Action = Value>,
    P: TrainPolicy<B> = ActorCritic<B>,
> {
    config: PolicyGradientConfig,
    envs: Vec<E>,
    /// The policy and its optimiser.
    trainer: PolicyTrainer<B, P>,
    reference: Option<P::InnerModule>,
    state: PgState,
    max_steps: usize,
}

impl<B: AutodiffBackend, E: Env<Obs = Vec<f32>, Action = Value>> PolicyGradient<B, E> {
    /// A new learner on `envs` (as many as `episodes_per_batch`, of one kind, each with a time
    /// limit) with the built-in actor-critic of `config.network`. Builds the policy from
    /// `config.seed`; all randomness comes from that seed.
    pub fn new(config: PolicyGradientConfig, envs: Vec<E>, device: B::Device) -> Result<Self> {
        config.validate()?;
        let (observation_space, action_space) = batch_spaces(&config, &envs)?;
        let policy = config
            .network
            .actor_critic(&observation_space, &action_space, config.seed)?;
        Self::build(config, envs, policy, device)
    }

    /// Continues the run saved in the checkpoint at `path` on `envs` (fresh envs of the same
    /// kind and number). Policy, reference policy, Adam state, random generator, baseline and
    /// counters continue where they were: on ndarray the metrics that follow equal those of a
    /// run that was never interrupted.
    ///
    /// Errors: an unreadable or corrupt file ([`RlError::Checkpoint`]), a checkpoint of another
    /// algorithm or of a policy that does not fit `envs` ([`RlError::CheckpointMismatch`]).
    pub fn resume(path: impl AsRef<Path>, envs: Vec<E>, device: B::Device) -> Result<Self> {
        let path = path.as_ref();
        let checkpoint = Checkpoint::read(path)?;
        checkpoint_policy_config::<ActorCriticConfig>(path, &checkpoint)?;
        let meta: PgCheckpointMeta<ActorCriticConfig> = checkpoint_meta(path, &checkpoint)?;
        meta.config.validate()?;
        let (observation_space, action_space) = batch_spaces(&meta.config, &envs)?;
        let expected = meta.config.network.actor_critic(
            &observation_space,
            &action_space,
            meta.config.seed,
        )?;
        Self::restore(path, &checkpoint, meta, &expected, envs, device)
    }
}

/// The spaces of a batch's envs: as many envs as `episodes_per_batch`, all of one task.
fn batch_spaces<E: Env>(
    config: &PolicyGradientConfig,
    envs: &[E],
) -> Result<(cinder_env::Space, cinder_env::Space)> {
    let first = envs
        .first()
        .ok_or_else(|| RlError::InvalidConfig("no envs: give one per episode of a batch".into()))?;
    if envs.len() != config.episodes_per_batch {
        return Err(RlError::InvalidConfig(format!(
            "{} envs for episodes_per_batch = {}: give one env per episode",
            envs.len(),
            config.episodes_per_batch
        )));
    }
    let (observation_space, action_space) = (first.observation_space(), first.action_space());
    if let Some(i) = envs.iter().position(|e| {
        e.observation_space() != observation_space || e.action_space() != action_space
    }) {
        return Err(RlError::UnsupportedSpace(format!(
            "env {i} has other spaces than env 0 ({} → {} vs {observation_space} → \
             {action_space}): every env of a batch must be the same task",
            envs[i].observation_space(),
            envs[i].action_space()
        )));
    }
    Ok((observation_space, action_space))
}

impl<B: AutodiffBackend, E: Env<Obs = Vec<f32>, Action = Value>, P: TrainPolicy<B>>
    PolicyGradient<B, E, P>
{
    /// A new learner on `envs` that trains the custom policy `P` built from `policy` (see
    /// [`Policy`]); `config.network` is not used. The policy's sizes must fit the envs' spaces
    /// and its outputs its sizes ([`RlError::UnsupportedSpace`] / [`RlError::InvalidConfig`]).
    pub fn with_policy(
        config: PolicyGradientConfig,
        envs: Vec<E>,
        policy: P::Config,
        device: B::Device,
    ) -> Result<Self> {
        config.validate()?;
        let (observation_space, action_space) = batch_spaces(&config, &envs)?;
        check_policy_fits_spaces(&policy, &observation_space, &action_space)?;
        Self::build(config, envs, policy, device)
    }

    /// [`PolicyGradient::resume`] for a run of a custom policy `P` (started by
    /// [`PolicyGradient::with_policy`]): its config is read back from the checkpoint and
    /// checked against the envs' spaces.
    pub fn resume_with_policy(
        path: impl AsRef<Path>,
        envs: Vec<E>,
        device: B::Device,
    ) -> Result<Self> {
        let path = path.as_ref();
        let checkpoint = Checkpoint::read(path)?;
        // The policy first: a checkpoint of another kind of policy gets an error that says so.
        checkpoint_policy_config::<P::Config>(path, &checkpoint)?;
        let meta: PgCheckpointMeta<P::Config> = checkpoint_meta(path, &checkpoint)?;
        meta.config.validate()?;
        let (observation_space, action_space) = batch_spaces(&meta.config, &envs)?;
        check_policy_fits_spaces(&meta.policy, &observation_space, &action_space).map_err(|e| {
            RlError::CheckpointMismatch {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }
        })?;
        let expected = meta.policy.clone();
        Self::restore(path, &checkpoint, meta, &expected, envs, device)
    }

    fn build(
        config: PolicyGradientConfig,
        envs: Vec<E>,
        policy: P::Config,
        device: B::Device,
    ) -> Result<Self> {
        let trainer = PolicyTrainer::<B, P>::new(policy, device)?;
        let reference = config
            .reference_kl
            .as_ref()
            .map(|_| trainer.model().valid());
        let baseline = match config.advantage {
            AdvantageEstimator::ReturnToGo {
                baseline: Baseline::MovingAverage { alpha },
                ..
            } => Some(MovingAverageBaseline::new(alpha)?),
            _ => None,
        };
        let state = PgState {
            iteration: 0,
            global_step: 0,
            rng: NpRandom::from_seed(config.seed),
            baseline,
            wall_seconds: 0.0,
        };
        Self::assemble(config, envs, trainer, reference, state)
    }

    fn restore(
        path: &Path,
        checkpoint: &Checkpoint,
        meta: PgCheckpointMeta<P::Config>,
        expected: &P::Config,
        envs: Vec<E>,
        device: B::Device,
    ) -> Result<Self> {
        let reference_device = device.clone();
        let trainer = PolicyTrainer::restore(path, checkpoint, &meta.policy, expected, device)?;
        let reference = match meta.config.reference_kl {
            Some(_) => Some(load_model::<B::InnerBackend, P::InnerModule>(
                path,
                checkpoint,
                "reference",
                &meta.policy,
                &reference_device,
            )?),
            None => None,
        };
        Self::assemble(meta.config, envs, trainer, reference, meta.trainer)
    }

    fn assemble(
        config: PolicyGradientConfig,
        envs: Vec<E>,
        trainer: PolicyTrainer<B, P>,
        reference: Option<P::InnerModule>,
        state: PgState,
    ) -> Result<Self> {
        if trainer.policy_config().continuous()
            && config.reference_kl.as_ref().map(|k| k.kl) == Some(ReferenceKl::ExactCategorical)
        {
            return Err(RlError::UnsupportedSpace(
                "the exact KL is for categorical policies; this env's actions are continuous: \
                 use a k1/k2/k3 estimator"
                    .into(),
            ));
        }
        let max_steps = envs
            .iter()
            .map(|e| e.max_episode_steps())
            .min()
            .flatten()
            .ok_or_else(|| {
                RlError::InvalidConfig(
                    "the envs have no time limit; episodes must end: wrap them in TimeLimit".into(),
                )
            })? as usize;
        Ok(Self {
            config,
            envs,
            trainer,
            reference,
            state,
            max_steps,
        })
    }

    /// The current policy.
    pub fn model(&self) -> &P {
        self.trainer.model()
    }

    /// The reference policy of the KL penalty, if there is one.
    pub fn reference(&self) -> Option<&P::InnerModule> {
        self.reference.as_ref()
    }

    /// The policy's configuration (its architecture).
    pub fn policy_config(&self) -> &P::Config {
        self.trainer.policy_config()
    }

    /// The configuration.
    pub fn config(&self) -> &PolicyGradientConfig {
        &self.config
    }

    /// The device training runs on.
    pub fn device(&self) -> &B::Device {
        self.trainer.device()
    }

    /// Whether the step budget is spent.
    pub fn finished(&self) -> bool {
        self.state.global_step >= self.config.total_timesteps
    }

    /// Greedy evaluation of the current policy (see [`crate::policy::evaluate_greedy`]), on the
    /// inner backend.
    pub fn evaluate(
        &self,
        env: &mut cinder_env::DynEnv,
        episodes: usize,
        seed: u64,
    ) -> Result<Vec<f64>> {
        self.trainer.evaluate(env, episodes, seed, None)
    }

    /// The batch's reset seeds: one per episode, or one per group, repeated `group_size` times.
    fn draw_seeds(&mut self) -> Vec<u64> {
        let n = self.config.episodes_per_batch;
        let group = match self.config.advantage {
            AdvantageEstimator::GroupRelative { group_size, .. } => group_size,
            AdvantageEstimator::ReturnToGo { .. } => 1,
        };
        let mut seeds = Vec::with_capacity(n);
        while seeds.len() < n {
            let seed = self.state.rng.integers(1 << 31);
            seeds.extend(std::iter::repeat_n(seed, group));
        }
        seeds
    }

    /// Runs one update: a batch of complete episodes, then `update_iterations` gradient steps.
    pub fn iterate(&mut self) -> Result<PgMetrics> {
        let start = Instant::now();
        let cfg = self.config.clone();
        let iteration = self.state.iteration + 1;
        let mut timings = Timings::default();
        let inner = self.trainer.device().clone();
        let d = self.trainer.policy_config().obs_dim();

        // --- Rollout: complete episodes on the inner (non-autodiff) backend, or on the
        // policy's host copy (crate::host_policy).
        let seeds = self.draw_seeds();
        let policy = self.trainer.model().valid();
        let batch = collect_episodes(
            &policy,
            &mut self.envs,
            &seeds,
            self.max_steps + 1,
            &mut self.state.rng,
            &inner,
            &mut timings,
        )?;
        let steps = batch.steps();

        // --- The batch on the training device; the reference policy's outputs (constants).
        let dev = self.trainer.device().clone();
        let obs_inner = tensor2::<B::InnerBackend>(batch.obs.clone(), steps, d, &inner);
        let actions = if self.trainer.policy_config().continuous() {
            let w = self.trainer.policy_config().action_dim();
            Actions::Continuous(tensor2::<B>(batch.actions.clone(), steps, w, &dev))
        } else {
            Actions::Discrete(indices1::<B>(&batch.actions, &dev))
        };
        let reference = match (&self.reference, cfg.reference_kl.as_ref().map(|k| k.kl)) {
            (Some(reference), Some(kind)) => {
                let dist = reference.distribution(obs_inner.clone());
                Some(match (kind, dist) {
                    (ReferenceKl::ExactCategorical, PolicyDistribution::Categorical(c)) => {
                        ReferenceOutputs::Categorical(Tensor::from_inner(c.log_probs))
                    }
                    (_, dist) => {
                        let inner_actions = match &actions {
                            Actions::Discrete(a) => Actions::Discrete(a.clone().inner()),
                            Actions::Continuous(a) => Actions::Continuous(a.clone().inner()),
                        };
                        ReferenceOutputs::LogProbs(Tensor::from_inner(
                            dist.log_prob(inner_actions)?,
                        ))
                    }
                })
            }
            _ => None,
        };

        // --- The KL in the reward (PPO-RLHF): r_t − β · k_t, with k_t measured at rollout
        // time between the rollout policy and the reference.
        let clock = Instant::now();
        let (rewards, scores) = match (&reference, &cfg.reference_kl) {
            (
                Some(ReferenceOutputs::LogProbs(ref_log_probs)),
                Some(ReferenceKlConfig {
                    coef,
                    kl: ReferenceKl::Estimator(estimator),
                    in_reward: true,
                    ..
                }),
            ) => {
                let k = read(kl_estimate(
                    tensor1::<B::InnerBackend>(batch.log_probs.clone(), &inner),
                    ref_log_probs.clone().inner(),
                    *estimator,
                ));
                let rewards: Vec<f32> = batch
                    .rewards
                    .iter()
                    .zip(&k)
                    .map(|(r, k)| r - coef * k)
                    .collect();
                let mut scores = Vec::with_capacity(batch.lengths.len());
                let mut start = 0;
                for &len in &batch.lengths {
                    let episode = rewards.get(start..start + len).unwrap_or_default();
                    scores.push(episode.iter().map(|&r| f64::from(r)).sum());
                    start += len;
                }
                (rewards, scores)
            }
            _ => (batch.rewards.clone(), batch.returns.clone()),
        };

        // --- Advantages.
        let mut baseline_used = None;
        let mut explained = None;
        let mut group_stats = None;
        let (advantages, value_targets) = match cfg.advantage {
            AdvantageEstimator::ReturnToGo {
                baseline,
                normalize: norm,
            } => {
                let values = match baseline {
                    Baseline::Critic { .. } => Some(read(policy.value(obs_inner.clone()))),
                    _ => None,
                };
                // Each episode's last step: its end, bootstrapped from V(final obs) when it was
                // truncated and there is a critic.
                let mut bootstrap = vec![0f32; steps];
                let mut ends = vec![false; steps];
                let mut end = 0;
                let final_values = match &values {
                    Some(_) => read(policy.value(tensor2::<B::InnerBackend>(
                        batch.final_obs.clone(),
                        batch.lengths.len(),
                        d,
                        &inner,
                    ))),
                    None => vec![0.0; batch.lengths.len()],
                };
                for (e, &len) in batch.lengths.iter().enumerate() {
                    end += len;
                    // Every episode has at least one step (collect_episodes steps each once).
                    if let Some(last) = end.checked_sub(1) {
                        ends[last] = true;
                        if batch.truncated[e] {
                            bootstrap[last] = final_values[e];
                        }
                    }
                }
                let returns = returns_to_go(&rewards, &bootstrap, &ends, 1, cfg.gamma)?;
                let mut advantages = match (&values, self.state.baseline.as_mut()) {
                    (Some(values), _) => {
                        explained = Some(explained_variance(values, &returns));
                        returns.iter().zip(values).map(|(g, v)| g - v).collect()
                    }
                    (None, Some(moving)) => {
                        // The baseline averages the per-step returns-to-go of earlier batches.
                        let b = moving.value() as f32;
                        baseline_used = Some(moving.value());
                        moving.update(&returns.iter().map(|&g| f64::from(g)).collect::<Vec<_>>());
                        returns.iter().map(|g| g - b).collect()
                    }
                    (None, None) => returns.clone(),
                };
                if norm {
                    normalize(&mut advantages);
                }
                (advantages, values.map(|_| returns))
            }
            AdvantageEstimator::GroupRelative { group_size, scale } => {
                let per_episode = group_relative(&scores, group_size, scale)?;
                let stats = group_statistics(&scores, group_size);
                let k = stats.len() as f64;
                group_stats = Some((
                    scores.iter().sum::<f64>() / scores.len().max(1) as f64,
                    stats.iter().map(|(_, std)| std).sum::<f64>() / k,
                    stats.iter().filter(|(_, std)| *std == 0.0).count() as f64 / k,
                ));
                let advantages = per_episode
                    .iter()
                    .zip(&batch.lengths)
                    .flat_map(|(&a, &len)| std::iter::repeat_n(a as f32, len))
                    .collect();
                (advantages, None)
            }
        };
        let pg_batch = PgBatch {
            obs: tensor2::<B>(batch.obs.clone(), steps, d, &dev),
            actions,
            old_log_probs: tensor1::<B>(batch.log_probs.clone(), &dev),
            advantages: tensor1::<B>(advantages, &dev),
            weights: tensor1::<B>(cfg.aggregation.weights(&batch.lengths), &dev),
            returns: value_targets.map(|r| tensor1::<B>(r, &dev)),
            reference,
        };

        // --- Gradient steps on the whole batch. Nothing is read back inside the loop: each
        // step's loss and gradient norm are read with the other diagnostics in one read at the
        // end; if one is not finite, the policy and Adam's state go back to this snapshot.
        self.trainer.begin_update();
        let mut checks = UpdateChecks::<B::InnerBackend>::new();
        let mut last = None;
        let mut clip_fraction_sum: Option<Tensor<B::InnerBackend, 1>> = None;
        // Without a limit the norm is still measured (and checked).
        let max_norm = cfg.max_grad_norm.unwrap_or(f32::INFINITY);
        for _ in 0..cfg.update_iterations {
            let terms = pg_loss(self.trainer.model(), pg_batch.clone(), &cfg)?;
            self.trainer.gradient_step(
                terms.loss.clone(),
                max_norm,
                cfg.learning_rate,
                &mut checks,
            );
            let clip_fraction = terms.clip_fraction.clone().inner();
            clip_fraction_sum = Some(match clip_fraction_sum.take() {
                Some(sum) => sum + clip_fraction,
                None => clip_fraction,
            });
            last = Some(terms);
        }
        let terms = last
            .ok_or_else(|| RlError::InvalidConfig("update_iterations must be at least 1".into()))?;
        // One read: the parameter norm, the last step's diagnostics, the clip fractions and
        // every step's loss and gradient norm.
        let zero = || Tensor::<B::InnerBackend, 1>::zeros([1], &dev);
        let optional = |t: Option<Tensor<B, 1>>| t.map_or_else(zero, |t| t.detach().inner());
        let diagnostics = vec![
            terms.policy_loss.detach().inner(),
            optional(terms.value_loss.clone()),
            terms.entropy.detach().inner(),
            optional(terms.kl_to_reference.clone()),
            terms.approx_kl.detach().inner(),
            clip_fraction_sum.unwrap_or_else(zero),
        ];
        let parameters = parameter_norm_tensor(self.trainer.model(), &dev).inner();
        let (head, grad_norm) = match checks.read(iteration, parameters, diagnostics) {
            Ok(read) => read,
            Err(e) => {
                self.trainer.rollback();
                return Err(e);
            }
        };

        // --- The reference policy, refreshed when due.
        if let Some(ReferenceKlConfig {
            reference: ReferencePolicy::RefreshEvery { updates },
            ..
        }) = &cfg.reference_kl
        {
            if iteration % updates == 0 {
                self.reference = Some(self.trainer.model().valid());
            }
        }
        timings.update += clock.elapsed().as_secs_f64();

        let elapsed = start.elapsed().as_secs_f64();
        self.state.iteration = iteration;
        self.state.global_step += steps as u64;
        self.state.wall_seconds += elapsed;
        Ok(PgMetrics {
            iteration,
            global_step: self.state.global_step,
            batch_steps: steps as u64,
            learning_rate: cfg.learning_rate,
            policy_loss: head[0],
            value_loss: terms.value_loss.is_some().then_some(head[1]),
            entropy: head[2],
            kl_to_reference: terms.kl_to_reference.is_some().then_some(head[3]),
            kl_coef: cfg.reference_kl.as_ref().map(|k| k.coef),
            approx_kl: head[4],
            clip_fraction: head[5] / cfg.update_iterations as f32,
            grad_norm,
            baseline: baseline_used,
            explained_variance: explained,
            group_return_mean: group_stats.map(|s| s.0),
            group_return_std: group_stats.map(|s| s.1),
            zero_std_groups: group_stats.map(|s| s.2),
            common: UpdateCommon {
                steps_per_second: steps as f64 / elapsed,
                timings,
                wall_seconds: self.state.wall_seconds,
                episode_returns: batch.returns,
                episode_lengths: batch.lengths.iter().map(|&l| l as u64).collect(),
            },
        })
    }
}

impl<B: AutodiffBackend, E: Env<Obs = Vec<f32>, Action = Value>, P: TrainPolicy<B>> Learner
    for PolicyGradient<B, E, P>
{
    type Report = PgMetrics;

    fn iterate(&mut self) -> Result<PgMetrics> {
        PolicyGradient::iterate(self)
    }

    fn iteration(&self) -> u64 {
        self.state.iteration
    }

    fn finished(&self) -> bool {
        PolicyGradient::finished(self)
    }

    fn seed(&self) -> u64 {
        self.config.seed
    }

    fn global_step(&self) -> u64 {
        self.state.global_step
    }

    fn total_steps(&self) -> u64 {
        self.config.total_timesteps
    }

    fn wall_seconds(&self) -> f64 {
        self.state.wall_seconds
    }

    /// Writes the policy, the reference policy, Adam's state and the learner's counters,
    /// generator and baseline. Batches end with their episodes, so no env state is needed.
    fn evaluate(
        &self,
        env: &mut cinder_env::DynEnv,
        episodes: usize,
        seed: u64,
    ) -> Result<Vec<f64>> {
        PolicyGradient::evaluate(self, env, episodes, seed)
    }

    fn save_checkpoint(&self, path: &Path) -> Result<()> {
        let meta = PgCheckpointMeta {
            algorithm: ALGORITHM.into(),
            method: self.config.method().into(),
            config: self.config.clone(),
            policy: self.trainer.policy_config().clone(),
            trainer: self.state.clone(),
        };
        let mut checkpoint = Checkpoint::with_meta(path, &meta)?;
        self.trainer.write(&mut checkpoint);
        if let Some(reference) = &self.reference {
            checkpoint.put_module::<B::InnerBackend, _>("reference", reference);
        }
        checkpoint.write_atomic(path)
    }
}

fn checkpoint_meta<C: serde::de::DeserializeOwned>(
    path: &Path,
    checkpoint: &Checkpoint,
) -> Result<PgCheckpointMeta<C>> {
    checkpoint.meta_for(
        path,
        ALGORITHM,
        "a policy-gradient learner (REINFORCE/GRPO)",
    )
}

/// The configuration stored in a policy-gradient checkpoint (to rebuild its envs before
/// [`PolicyGradient::resume`]).
pub fn checkpoint_config(path: impl AsRef<Path>) -> Result<PolicyGradientConfig> {
    let path = path.as_ref();
    let meta: PgCheckpointMeta<serde_json::Value> =
        checkpoint_meta(path, &Checkpoint::read(path)?)?;
    Ok(meta.config)
}
