//! Proximal Policy Optimization (Schulman et al. 2017) with every detail of CleanRL's `ppo.py`:
//! GAE, advantage normalisation per minibatch, clipped surrogate, clipped value loss, entropy
//! bonus, minibatches × epochs with shuffling, global gradient-norm clipping, Adam (ε = 1e-5),
//! linear learning-rate annealing and an optional `target_kl` early stop. Unlike CleanRL, a
//! truncated episode bootstraps from the value of its real final observation (as SB3 does).
//!
//! Discrete actions (categorical policy) and continuous ones (diagonal Gaussian with a learned,
//! state-independent log-std) share the loop. PPO's adaptive KL penalty (PPO paper §4) is an
//! option ([`PpoConfig::adaptive_kl`]), with or without the clipped ratio.
//!
//! [`Ppo`] implements [`Learner`], so [`crate::run::train`] drives it with a run directory,
//! metrics, checkpoints and a progress bar; [`Ppo::resume`] continues a run from its checkpoint
//! exactly (policy, Adam state, random generators, env states, counters, learning-rate position).
//!
//! The loop reads top to bottom, one phase per block: rollout → bootstrap values → GAE →
//! epochs × minibatches → metrics.

use crate::advantages::{explained_variance, normalize};
use crate::checkpoint::{Checkpoint, checkpoint_policy_config};
use crate::error::{Result, RlError};
use crate::gradients::parameter_norm_tensor;
use crate::host_loss::{PpoInputs, PpoObjective, try_ppo_loss};
use crate::learner::{PolicyTrainer, check_policy_fits_spaces};
use crate::losses::{clipped_surrogate, value_loss};
use crate::normalize::VecNormalize;
use crate::policy::NetworkConfig;
use crate::policy::{Actions, ActorCritic, ActorCriticConfig, Policy, PolicyConfig, TrainPolicy};
use crate::rollout::{
    Rollout, RolloutEnvs, RolloutSettings, RolloutState, policy_config_for, require_same_step,
};
use crate::run::{Learner, Timings, UpdateCommon, UpdateReport};
use crate::tensors::{UpdateChecks, check_rows, indices1, read, tensor1, tensor2};
use burn::config::Config;
use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};
use cinder_env::vector::VectorEnv;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

/// PPO's hyperparameters, with CleanRL's `ppo.py` defaults.
#[derive(Config, Debug, PartialEq)]
pub struct PpoConfig {
    /// Seed of the policy's initialisation, the action sampling, the shuffling and the envs.
    #[config(default = 1)]
    pub seed: u64,
    /// Total env steps to train for (all envs together).
    #[config(default = 500_000)]
    pub total_timesteps: u64,
    /// Adam's learning rate (the start of the schedule when `anneal_lr`).
    #[config(default = 2.5e-4)]
    pub learning_rate: f64,
    /// Number of parallel envs.
    #[config(default = 4)]
    pub num_envs: usize,
    /// Steps per env in each rollout.
    #[config(default = 128)]
    pub num_steps: usize,
    /// Anneal the learning rate linearly to 0 over the run.
    #[config(default = true)]
    pub anneal_lr: bool,
    /// Discount factor γ.
    #[config(default = 0.99)]
    pub gamma: f32,
    /// GAE's λ.
    #[config(default = 0.95)]
    pub gae_lambda: f32,
    /// Minibatches per epoch (must divide `num_envs × num_steps`).
    #[config(default = 4)]
    pub num_minibatches: usize,
    /// Passes over each rollout.
    #[config(default = 4)]
    pub update_epochs: usize,
    /// Normalise advantages within each minibatch.
    #[config(default = true)]
    pub norm_adv: bool,
    /// Surrogate clipping coefficient ε.
    #[config(default = 0.2)]
    pub clip_coef: f32,
    /// Clip the value loss around the rollout's values (by `clip_coef`).
    #[config(default = true)]
    pub clip_vloss: bool,
    /// Entropy bonus coefficient.
    #[config(default = 0.01)]
    pub ent_coef: f32,
    /// Value loss coefficient.
    #[config(default = 0.5)]
    pub vf_coef: f32,
    /// Maximum global gradient norm.
    #[config(default = 0.5)]
    pub max_grad_norm: f32,
    /// Stop the epochs of an update early once `approx_kl` exceeds this (checking it reads the
    /// KL back from the device once per epoch; without it, an update reads once in all).
    #[config(default = "None")]
    pub target_kl: Option<f32>,
    /// The policy network (SB3's `policy_kwargs`): hidden sizes, activation, initialisation,
    /// a Gaussian policy's initial log-std.
    #[config(default = "NetworkConfig::new()")]
    pub network: NetworkConfig,
    /// Clip continuous actions to the action space's bounds before the env sees them; the
    /// rollout keeps the unclipped sample and its log-probability (SB3's behaviour). CleanRL
    /// wraps its envs in `ClipAction`, the same thing.
    #[config(default = true)]
    pub clip_actions: bool,
    /// Generalised state-dependent exploration (gSDE, SB3's `use_sde`; continuous actions only,
    /// see [`ActorCriticConfig::use_sde`]): exploration noise that is a function of the state,
    /// consistent over consecutive steps, instead of independent draws at every step.
    #[config(default = false)]
    pub use_sde: bool,
    /// With `use_sde`, draw new exploration matrices every this many steps of a rollout (SB3's
    /// `sde_sample_freq`); `None` (SB3's −1): once per rollout.
    #[config(default = "None")]
    pub sde_sample_freq: Option<usize>,
    /// Anneal the surrogate's `clip_coef` linearly to 0 over the run, as the learning rate with
    /// `anneal_lr` (RL Zoo's `clip_range: lin_X`).
    #[config(default = false)]
    pub anneal_clip: bool,
    /// Normalise observations by running statistics (SB3's `VecNormalize(norm_obs=True)`,
    /// RL Zoo's `normalize`; see [`crate::normalize`]). The statistics are saved in the
    /// checkpoint and frozen for evaluation.
    #[config(default = false)]
    pub normalize_obs: bool,
    /// Scale rewards by the running standard deviation of the discounted return (SB3's
    /// `VecNormalize(norm_reward=True)`). Reported episode returns stay the env's own.
    #[config(default = false)]
    pub normalize_reward: bool,
    /// Normalised observations are clipped to `±clip_obs` (SB3: 10).
    #[config(default = 10.0)]
    pub clip_obs: f64,
    /// Normalised rewards are clipped to `±clip_reward` (SB3: 10).
    #[config(default = 10.0)]
    pub clip_reward: f64,
    /// Use the clipped ratio `min(ρÂ, clip(ρ, 1−ε, 1+ε)Â)`; `false` gives the plain ratio
    /// surrogate `ρÂ` of the PPO paper's KL-penalty variant (use it with `adaptive_kl`).
    #[config(default = true)]
    pub clip_surrogate: bool,
    /// PPO's adaptive KL penalty: adds `β · KL(π_old ‖ π_θ)` (to the rollout policy π_old, not
    /// to a fixed reference) to the loss and adapts β after each update. Off (`None`) in
    /// CleanRL's defaults. (The policy-gradient learner's penalty towards a frozen reference
    /// policy is a different thing: [`crate::policy_gradient::PolicyGradientConfig::reference_kl`].)
    #[config(default = "None")]
    pub adaptive_kl: Option<AdaptiveKlConfig>,
}

/// PPO's adaptive KL penalty (PPO paper §4): the loss gains `β · KL(π_old ‖ π_θ)`, estimated on
/// the minibatch by `mean((ρ − 1) − log ρ)` (k3, differentiable). After each update, with `d`
/// the mean KL of its last epoch: `d < target/1.5 → β ← β/2`, `d > 1.5·target → β ← 2β`.
#[derive(Config, Debug, PartialEq)]
pub struct AdaptiveKlConfig {
    /// The initial coefficient β.
    #[config(default = 1.0)]
    pub initial_coef: f32,
    /// The KL per update to steer towards, `d_targ`.
    #[config(default = 0.01)]
    pub target: f32,
}

impl AdaptiveKlConfig {
    /// The coefficient after an update whose mean KL was `measured_kl`: halved below
    /// `target / 1.5`, doubled above `1.5 · target`, unchanged in between (PPO paper §4).
    pub fn adapt(&self, beta: f32, measured_kl: f32) -> f32 {
        if measured_kl < self.target / 1.5 {
            beta / 2.0
        } else if measured_kl > self.target * 1.5 {
            beta * 2.0
        } else {
            beta
        }
    }
}

impl PpoConfig {
    /// `num_envs × num_steps`.
    pub fn batch_size(&self) -> usize {
        self.num_envs.saturating_mul(self.num_steps)
    }

    /// `batch_size / num_minibatches`.
    pub fn minibatch_size(&self) -> usize {
        self.batch_size() / self.num_minibatches.max(1)
    }

    /// Number of rollout-and-update iterations: `total_timesteps / batch_size`.
    pub fn num_iterations(&self) -> u64 {
        self.total_timesteps / self.batch_size().max(1) as u64
    }

    /// Checks every value; the error says what to change.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(RlError::InvalidConfig(msg));
        for (name, v) in [
            ("num_envs", self.num_envs),
            ("num_steps", self.num_steps),
            ("num_minibatches", self.num_minibatches),
            ("update_epochs", self.update_epochs),
        ] {
            if v == 0 {
                return bad(format!("{name} must be at least 1"));
            }
        }
        if self.num_envs.checked_mul(self.num_steps).is_none() {
            return bad(format!(
                "num_envs × num_steps ({} × {}) overflows: the rollout could not be stored",
                self.num_envs, self.num_steps
            ));
        }
        if self.batch_size() % self.num_minibatches != 0 {
            return bad(format!(
                "num_minibatches ({}) must divide num_envs × num_steps ({})",
                self.num_minibatches,
                self.batch_size()
            ));
        }
        if self.num_iterations() == 0 {
            return bad(format!(
                "total_timesteps ({}) must be at least num_envs × num_steps ({})",
                self.total_timesteps,
                self.batch_size()
            ));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad(format!(
                "learning_rate ({}) must be positive",
                self.learning_rate
            ));
        }
        for (name, v) in [("gamma", self.gamma), ("gae_lambda", self.gae_lambda)] {
            if !(0.0..=1.0).contains(&v) {
                return bad(format!("{name} ({v}) must be in [0, 1]"));
            }
        }
        for (name, v) in [
            ("clip_coef", self.clip_coef),
            ("ent_coef", self.ent_coef),
            ("vf_coef", self.vf_coef),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return bad(format!("{name} ({v}) must be finite and >= 0"));
            }
        }
        if !(self.max_grad_norm.is_finite() && self.max_grad_norm > 0.0) {
            return bad(format!(
                "max_grad_norm ({}) must be positive",
                self.max_grad_norm
            ));
        }
        if let Some(kl) = self.target_kl {
            if !(kl.is_finite() && kl > 0.0) {
                return bad(format!("target_kl ({kl}) must be positive, or None"));
            }
        }
        self.network.validate()?;
        for (name, v) in [
            ("clip_obs", self.clip_obs),
            ("clip_reward", self.clip_reward),
        ] {
            if v.is_nan() || v <= 0.0 {
                return bad(format!(
                    "{name} ({v}) must be positive (a large value for no clipping)"
                ));
            }
        }
        if let Some(kl) = &self.adaptive_kl {
            if !(kl.initial_coef.is_finite() && kl.initial_coef >= 0.0) {
                return bad(format!(
                    "adaptive_kl.initial_coef ({}) must be finite and >= 0",
                    kl.initial_coef
                ));
            }
            if !(kl.target.is_finite() && kl.target > 0.0) {
                return bad(format!(
                    "adaptive_kl.target ({}) must be positive",
                    kl.target
                ));
            }
        }
        Ok(())
    }
}

/// What one update reports.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UpdateMetrics {
    /// 1-based iteration number.
    pub iteration: u64,
    /// Env steps taken so far.
    pub global_step: u64,
    /// Learning rate used.
    pub learning_rate: f64,
    /// Clipped surrogate loss of the last minibatch.
    pub policy_loss: f32,
    /// Value loss of the last minibatch.
    pub value_loss: f32,
    /// Mean entropy of the last minibatch.
    pub entropy: f32,
    /// `mean((ρ − 1) − log ρ)` of the last minibatch.
    pub approx_kl: f32,
    /// Mean over minibatches of the fraction of clipped ratios.
    pub clip_fraction: f32,
    /// Explained variance of the rollout's values for its returns.
    pub explained_variance: f64,
    /// Global gradient norm (before clipping) of the last minibatch.
    pub grad_norm: f32,
    /// The KL penalty coefficient β used in this update (with `adaptive_kl`).
    pub kl_coef: Option<f32>,
    /// Speed, time and the episodes that ended during the rollout.
    #[serde(flatten)]
    pub common: UpdateCommon,
}

impl UpdateMetrics {
    /// The metrics with their wall-clock fields (steps/s, timings, wall seconds) zeroed: what
    /// must be equal between two runs with the same seed.
    pub fn without_timings(self) -> Self {
        Self {
            common: self.common.without_timings(),
            ..self
        }
    }
}

impl UpdateReport for UpdateMetrics {
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

/// One minibatch of rollout data on the training device: what [`ppo_loss`] needs.
#[derive(Debug, Clone)]
pub struct Minibatch<B: Backend> {
    /// Observations, `[mb, obs_dim]`.
    pub obs: Tensor<B, 2>,
    /// The actions taken.
    pub actions: Actions<B>,
    /// `log π_old(a|s)` at rollout time, `[mb]`.
    pub old_log_probs: Tensor<B, 1>,
    /// Advantages (already normalised if `norm_adv`), `[mb]`.
    pub advantages: Tensor<B, 1>,
    /// The critic's values at rollout time, `[mb]`.
    pub old_values: Tensor<B, 1>,
    /// Return targets (advantages + values), `[mb]`.
    pub returns: Tensor<B, 1>,
}

/// PPO's loss on one minibatch and its parts (each `[1]`).
#[derive(Debug, Clone)]
pub struct PpoLoss<B: Backend> {
    /// `policy_loss − ent_coef · entropy + vf_coef · value_loss (+ β · kl)`, differentiable.
    pub loss: Tensor<B, 1>,
    /// The clipped (or plain ratio) surrogate loss.
    pub policy_loss: Tensor<B, 1>,
    /// The (optionally clipped) value loss, `½ mean((V − R)²)`.
    pub value_loss: Tensor<B, 1>,
    /// Mean entropy of the policy on the minibatch.
    pub entropy: Tensor<B, 1>,
    /// `mean((ρ − 1) − log ρ)` (detached).
    pub approx_kl: Tensor<B, 1>,
    /// Fraction of ratios outside `[1 − ε, 1 + ε]` (detached).
    pub clip_fraction: Tensor<B, 1>,
}

/// PPO's loss on a minibatch, as CleanRL computes it: the clipped surrogate (or the plain ratio
/// when `!clip_surrogate`), the value loss clipped by `clip_coef` when `clip_vloss`, the entropy
/// bonus, and with a KL coefficient `β` the penalty `β · mean((ρ − 1) − log ρ)`.
pub fn ppo_loss<B: Backend, P: Policy<B>>(
    model: &P,
    minibatch: Minibatch<B>,
    config: &PpoConfig,
    kl_coef: Option<f32>,
) -> Result<PpoLoss<B>> {
    let Minibatch {
        obs,
        actions,
        old_log_probs,
        advantages,
        old_values,
        returns,
    } = minibatch;
    let batch = crate::policy::check_obs(&obs, model.obs_dim())?;
    for (name, t) in [
        ("old_log_probs", &old_log_probs),
        ("advantages", &advantages),
        ("old_values", &old_values),
        ("returns", &returns),
    ] {
        check_rows(name, t, batch)?;
    }
    let clip = if config.clip_surrogate {
        config.clip_coef
    } else {
        f32::INFINITY
    };
    let objective = PpoObjective {
        clip_low: clip,
        clip_high: clip,
        value_clip: config.clip_vloss.then_some(config.clip_coef),
        ent_coef: config.ent_coef,
        vf_coef: config.vf_coef,
        kl_coef,
    };
    let (log_probs, entropy, values) = model.evaluate_actions(obs, actions)?;
    let inputs = PpoInputs {
        log_probs,
        entropy,
        values,
        old_log_probs,
        advantages,
        old_values,
        returns,
    };
    // On the CPU backends one fused operation ([`crate::host_loss`]); elsewhere tensor ops.
    Ok(match try_ppo_loss(inputs, &objective) {
        Ok(terms) => terms,
        Err(inputs) => ppo_terms(inputs, &objective),
    })
}

/// PPO's loss from the policy's outputs on a minibatch, in tensor operations (every backend;
/// [`crate::host_loss`] computes the same on the host): the clipped surrogate, the value loss,
/// the entropy bonus and the KL penalty as `objective` says.
pub fn ppo_terms<B: Backend>(inputs: PpoInputs<B>, objective: &PpoObjective) -> PpoLoss<B> {
    let PpoInputs {
        log_probs,
        entropy,
        values,
        old_log_probs,
        advantages,
        old_values,
        returns,
    } = inputs;
    let surrogate = clipped_surrogate(
        log_probs,
        old_log_probs,
        advantages,
        objective.clip_low,
        objective.clip_high,
    );
    let v_loss = value_loss(values, old_values, returns, objective.value_clip);
    let entropy = entropy.mean();
    let mut loss = surrogate.loss.clone() - entropy.clone().mul_scalar(objective.ent_coef)
        + v_loss.clone().mul_scalar(objective.vf_coef);
    if let Some(beta) = objective.kl_coef {
        // KL(π_old ‖ π_θ) ≈ mean((ρ − 1) − log ρ) on actions drawn from π_old.
        loss = loss + surrogate.kl.mul_scalar(beta);
    }
    PpoLoss {
        loss,
        policy_loss: surrogate.loss,
        value_loss: v_loss,
        entropy,
        approx_kl: surrogate.approx_kl,
        clip_fraction: surrogate.clip_fraction,
    }
}

/// The trainer's state besides the policy and the optimiser: what a checkpoint must hold for a
/// resumed run to continue exactly.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TrainerState {
    iteration: u64,
    global_step: u64,
    /// Generator, current observations, running episodes, normalisation, gSDE matrices.
    #[serde(flatten)]
    rollout: RolloutState,
    kl_coef: Option<f32>,
    wall_seconds: f64,
}

/// The checkpoint header's `algorithm` for PPO.
const ALGORITHM: &str = "ppo";

/// What a PPO checkpoint's header holds (`C`: the policy's config).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PpoCheckpointMeta<C> {
    algorithm: String,
    config: PpoConfig,
    policy: C,
    trainer: TrainerState,
    envs: Option<serde_json::Value>,
}

/// PPO on a vector env: the policy, its optimiser and the rollout state.
///
/// Works with any [`VectorEnv`] whose action type takes the policy's actions: `usize` or
/// [`Value`](cinder_env::Value) for a `Discrete` action space, `Vec<f32>` or
/// [`Value`](cinder_env::Value) for a `Box` one. The policy is the built-in [`ActorCritic`]
/// ([`Ppo::new`], shaped by `config.network`) or any [`Policy`] `P` ([`Ppo::with_policy`]).
pub struct Ppo<B: AutodiffBackend, V: VectorEnv, P: TrainPolicy<B> = ActorCritic<B>> {
    config: PpoConfig,
    /// The vector env and the rollout.
    envs: RolloutEnvs<V>,
    /// The policy and its optimiser.
    trainer: PolicyTrainer<B, P>,
    state: TrainerState,
}

/// The rollout settings of a PPO configuration.
fn rollout_settings(config: &PpoConfig) -> RolloutSettings {
    RolloutSettings {
        seed: config.seed,
        num_steps: config.num_steps,
        clip_actions: config.clip_actions,
        use_sde: config.use_sde,
        sde_sample_freq: config.sde_sample_freq,
        normalize_obs: config.normalize_obs,
        normalize_reward: config.normalize_reward,
        clip_obs: config.clip_obs,
        clip_reward: config.clip_reward,
        gamma: config.gamma,
    }
}

impl<B: AutodiffBackend, V: VectorEnv> Ppo<B, V> {
    /// A new learner on `envs` (whose `num_envs` must match the config) with the built-in
    /// actor-critic of `config.network`. Builds the policy and resets the envs with
    /// `config.seed`; all randomness comes from that seed.
    pub fn new(config: PpoConfig, envs: V, device: B::Device) -> Result<Self> {
        config.validate()?;
        let policy = policy_config_for(&config.network, config.use_sde, config.seed, &envs)?;
        Self::build(config, envs, policy, device)
    }

    /// Continues the run saved in the checkpoint at `path` (written by
    /// [`Learner::save_checkpoint`]) on `envs`, a fresh vector env of the same kind and size as
    /// the checkpointed one. Policy, Adam state, random generators, env states, counters and
    /// the learning-rate schedule continue where they were: on ndarray the metrics that follow
    /// equal those of a run that was never interrupted.
    ///
    /// Errors: an unreadable or corrupt file ([`RlError::Checkpoint`]), a checkpoint of another
    /// algorithm or of a policy that does not fit `envs` ([`RlError::CheckpointMismatch`]).
    pub fn resume(path: impl AsRef<Path>, envs: V, device: B::Device) -> Result<Self> {
        require_same_step("PPO", &envs)?;
        let path = path.as_ref();
        let checkpoint = Checkpoint::read(path)?;
        checkpoint_policy_config::<ActorCriticConfig>(path, &checkpoint)?;
        let meta: PpoCheckpointMeta<ActorCriticConfig> = ppo_meta(path, &checkpoint)?;
        meta.config.validate()?;
        let expected = policy_config_for(
            &meta.config.network,
            meta.config.use_sde,
            meta.config.seed,
            &envs,
        )?;
        Self::restore(path, &checkpoint, meta, &expected, envs, device)
    }
}

impl<B: AutodiffBackend, V: VectorEnv, P: TrainPolicy<B>> Ppo<B, V, P> {
    /// A new learner on `envs` that trains the custom policy `P` built from `policy` (see
    /// [`Policy`]); `config.network` is not used. The policy's sizes must fit the envs' spaces
    /// and its outputs its sizes ([`RlError::UnsupportedSpace`] / [`RlError::InvalidConfig`]);
    /// `config.use_sde` needs a policy with gSDE features ([`Policy::sde_std`]).
    pub fn with_policy(
        config: PpoConfig,
        envs: V,
        policy: P::Config,
        device: B::Device,
    ) -> Result<Self> {
        config.validate()?;
        check_policy_fits_spaces(
            &policy,
            envs.single_observation_space(),
            envs.single_action_space(),
        )?;
        Self::build(config, envs, policy, device)
    }

    /// [`Ppo::resume`] for a run of a custom policy `P` (started by [`Ppo::with_policy`]): its
    /// config is read back from the checkpoint and checked against `envs`' spaces.
    pub fn resume_with_policy(path: impl AsRef<Path>, envs: V, device: B::Device) -> Result<Self> {
        require_same_step("PPO", &envs)?;
        let path = path.as_ref();
        let checkpoint = Checkpoint::read(path)?;
        // The policy first: a checkpoint of another kind of policy gets an error that says so.
        checkpoint_policy_config::<P::Config>(path, &checkpoint)?;
        let meta: PpoCheckpointMeta<P::Config> = ppo_meta(path, &checkpoint)?;
        meta.config.validate()?;
        check_policy_fits_spaces(
            &meta.policy,
            envs.single_observation_space(),
            envs.single_action_space(),
        )
        .map_err(|e| RlError::CheckpointMismatch {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let expected = meta.policy.clone();
        Self::restore(path, &checkpoint, meta, &expected, envs, device)
    }

    fn build(config: PpoConfig, envs: V, policy: P::Config, device: B::Device) -> Result<Self> {
        require_same_step("PPO", &envs)?;
        if envs.num_envs() != config.num_envs {
            return Err(RlError::InvalidConfig(format!(
                "the vector env has {} sub-envs but num_envs is {}",
                envs.num_envs(),
                config.num_envs
            )));
        }
        let trainer = PolicyTrainer::<B, P>::new(policy, device)?;
        require_sde_features(&config, trainer.model())?;
        let mut envs = RolloutEnvs::new(envs, trainer.policy_config(), rollout_settings(&config))?;
        let state = TrainerState {
            iteration: 0,
            global_step: 0,
            rollout: envs.reset()?,
            kl_coef: config.adaptive_kl.as_ref().map(|kl| kl.initial_coef),
            wall_seconds: 0.0,
        };
        Ok(Self {
            config,
            envs,
            trainer,
            state,
        })
    }

    fn restore(
        path: &Path,
        checkpoint: &Checkpoint,
        meta: PpoCheckpointMeta<P::Config>,
        expected: &P::Config,
        envs: V,
        device: B::Device,
    ) -> Result<Self> {
        require_same_step("PPO", &envs)?;
        if envs.num_envs() != meta.config.num_envs {
            return Err(RlError::CheckpointMismatch {
                path: path.to_path_buf(),
                reason: format!(
                    "it was trained on {} envs; this vector env has {}",
                    meta.config.num_envs,
                    envs.num_envs()
                ),
            });
        }
        let config = meta.config;
        let trainer = PolicyTrainer::restore(path, checkpoint, &meta.policy, expected, device)?;
        require_sde_features(&config, trainer.model())?;
        let mut envs = RolloutEnvs::new(envs, trainer.policy_config(), rollout_settings(&config))?;
        envs.restore(path, meta.envs.as_ref(), &meta.trainer.rollout)?;
        Ok(Self {
            config,
            envs,
            trainer,
            state: meta.trainer,
        })
    }

    /// The current policy.
    pub fn model(&self) -> &P {
        self.trainer.model()
    }

    /// The policy's configuration (its architecture).
    pub fn policy_config(&self) -> &P::Config {
        self.trainer.policy_config()
    }

    /// The configuration.
    pub fn config(&self) -> &PpoConfig {
        &self.config
    }

    /// The device training runs on.
    pub fn device(&self) -> &B::Device {
        self.trainer.device()
    }

    /// The vector env.
    pub fn envs(&self) -> &V {
        self.envs.envs()
    }

    /// Whether all `num_iterations` are done.
    pub fn finished(&self) -> bool {
        self.state.iteration >= self.config.num_iterations()
    }

    /// The current KL penalty coefficient β (with `adaptive_kl`).
    pub fn kl_coef(&self) -> Option<f32> {
        self.state.kl_coef
    }

    /// Greedy evaluation of the current policy (see [`crate::policy::evaluate_greedy`]), on the
    /// inner backend.
    pub fn evaluate(
        &self,
        env: &mut cinder_env::DynEnv,
        episodes: usize,
        seed: u64,
    ) -> Result<Vec<f64>> {
        self.trainer
            .evaluate(env, episodes, seed, self.state.rollout.normalize.as_ref())
    }

    /// The observation (and reward) statistics, when the config normalises them.
    pub fn normalization(&self) -> Option<&VecNormalize> {
        self.state.rollout.normalize.as_ref()
    }

    /// Runs one iteration: a rollout of `num_steps` steps in every env, then the update.
    pub fn iterate(&mut self) -> Result<UpdateMetrics> {
        let start = Instant::now();
        let mut cfg = self.config.clone();
        let (n, d, w) = (cfg.num_envs, self.envs.obs_dim(), self.envs.action_width());
        let batch = cfg.batch_size();
        let iteration = self.state.iteration + 1;
        // Linear schedules (CleanRL's annealing, RL Zoo's `lin_X`): the fraction of the run left.
        let frac = 1.0 - (iteration - 1) as f64 / cfg.num_iterations() as f64;
        let learning_rate = if cfg.anneal_lr {
            frac * cfg.learning_rate
        } else {
            cfg.learning_rate
        };
        if cfg.anneal_clip {
            cfg.clip_coef *= frac as f32;
        }
        let mut timings = Timings::default();

        // --- Rollout, on the inner (non-autodiff) backend or the policy's host copy. Buffers are [num_steps, num_envs].
        let policy = self.trainer.model().valid();
        let rollout = self.envs.collect(
            &policy,
            &mut self.state.rollout,
            &mut timings,
            self.trainer.device(),
        )?;

        // --- Advantages and returns.
        let clock = Instant::now();
        let (advantages, returns) = rollout.gae(n, cfg.gamma, cfg.gae_lambda)?;
        let Rollout {
            obs,
            actions,
            log_probs,
            values,
            episode_returns,
            episode_lengths,
            ..
        } = rollout;

        // --- Epochs × minibatches.
        let mb_size = cfg.minibatch_size();
        let kl_coef = self.state.kl_coef;
        let mut indices: Vec<usize> = (0..batch).collect();
        // Nothing is read back from the device inside the loop (each read is a sync on a GPU):
        // every minibatch's loss and gradient norm are kept and read with the other
        // diagnostics in one read at the end of the update. If one is not finite, the policy
        // and Adam's state go back to this snapshot, as if the update had not been applied.
        self.trainer.begin_update();
        let mut checks = UpdateChecks::<B::InnerBackend>::new();
        // The last minibatch's (policy loss, value loss, entropy, approx_kl); the clip
        // fractions summed over minibatches, the KLs over the current epoch's (for the
        // adaptive penalty).
        let mut last: Option<[Tensor<B::InnerBackend, 1>; 4]> = None;
        let mut clip_fraction_sum: Option<Tensor<B::InnerBackend, 1>> = None;
        let mut epoch_kl_sum: Option<Tensor<B::InnerBackend, 1>> = None;
        let mut epoch_minibatches = 0usize;
        let mut num_minibatches_run = 0usize;
        let dev = self.trainer.device().clone();
        let continuous = self.trainer.policy_config().continuous();
        let add = |sum: Option<Tensor<B::InnerBackend, 1>>, x: Tensor<B::InnerBackend, 1>| {
            Some(match sum {
                Some(sum) => sum + x,
                None => x,
            })
        };
        'epochs: for _epoch in 0..cfg.update_epochs {
            // Fisher-Yates shuffle on the seeded generator.
            for i in (1..batch).rev() {
                let j = self.state.rollout.rng.integers(i as u64 + 1) as usize;
                indices.swap(i, j);
            }
            epoch_kl_sum = None;
            epoch_minibatches = 0;
            for mb in indices.chunks(mb_size) {
                let gather = |src: &[f32]| mb.iter().map(|&i| src[i]).collect::<Vec<f32>>();
                let gather_rows = |src: &[f32], width: usize| {
                    mb.iter()
                        .flat_map(|&i| src[i * width..(i + 1) * width].iter().copied())
                        .collect::<Vec<f32>>()
                };
                let mut mb_advantages = gather(&advantages);
                if cfg.norm_adv {
                    normalize(&mut mb_advantages);
                }
                let obs_t = tensor2::<B>(gather_rows(&obs, d), mb.len(), d, &dev);
                let mb_actions = if continuous {
                    Actions::Continuous(tensor2::<B>(gather_rows(&actions, w), mb.len(), w, &dev))
                } else {
                    Actions::Discrete(indices1::<B>(&gather(&actions), &dev))
                };
                let terms = ppo_loss(
                    self.trainer.model(),
                    Minibatch {
                        obs: obs_t,
                        actions: mb_actions,
                        old_log_probs: tensor1::<B>(gather(&log_probs), &dev),
                        advantages: tensor1::<B>(mb_advantages, &dev),
                        old_values: tensor1::<B>(gather(&values), &dev),
                        returns: tensor1::<B>(gather(&returns), &dev),
                    },
                    &cfg,
                    kl_coef,
                )?;
                self.trainer.gradient_step(
                    terms.loss.clone(),
                    cfg.max_grad_norm,
                    learning_rate,
                    &mut checks,
                );
                let approx_kl = terms.approx_kl.inner();
                clip_fraction_sum = add(clip_fraction_sum, terms.clip_fraction.inner());
                epoch_kl_sum = add(epoch_kl_sum, approx_kl.clone());
                epoch_minibatches += 1;
                num_minibatches_run += 1;
                last = Some([
                    terms.policy_loss.detach().inner(),
                    terms.value_loss.detach().inner(),
                    terms.entropy.detach().inner(),
                    approx_kl,
                ]);
            }
            // The early stop reads the KL once per epoch (only when `target_kl` is set).
            if let (Some(target), Some([.., kl])) = (cfg.target_kl, &last) {
                if read(kl.clone())[0] > target {
                    break 'epochs;
                }
            }
        }

        // --- One read of everything the update reports and checks.
        let zero = || Tensor::<B::InnerBackend, 1>::zeros([1], &dev);
        let [pg_last, v_last, ent_last, kl_last] =
            last.unwrap_or_else(|| [zero(), zero(), zero(), zero()]);
        let diagnostics = vec![
            pg_last,
            v_last,
            ent_last,
            kl_last,
            clip_fraction_sum.unwrap_or_else(zero),
            epoch_kl_sum.unwrap_or_else(zero),
        ];
        let parameters = parameter_norm_tensor(self.trainer.model(), &dev).inner();
        let (head, norm_last) = match checks.read(iteration, parameters, diagnostics) {
            Ok(read) => read,
            Err(e) => {
                self.trainer.rollback();
                return Err(e);
            }
        };
        let [pg_last, v_last, ent_last, kl_last, clip_sum, epoch_kl] =
            [head[0], head[1], head[2], head[3], head[4], head[5]];
        let clip_fraction = clip_sum / num_minibatches_run.max(1) as f32;
        // PPO's adaptive penalty: steer β by the mean KL of the last epoch.
        if let (Some(kl_cfg), Some(beta)) = (&cfg.adaptive_kl, self.state.kl_coef.as_mut()) {
            *beta = kl_cfg.adapt(*beta, epoch_kl / epoch_minibatches.max(1) as f32);
        }
        timings.update = clock.elapsed().as_secs_f64();

        let elapsed = start.elapsed().as_secs_f64();
        self.state.iteration = iteration;
        self.state.global_step += batch as u64;
        self.state.wall_seconds += elapsed;
        Ok(UpdateMetrics {
            iteration,
            global_step: self.state.global_step,
            learning_rate,
            policy_loss: pg_last,
            value_loss: v_last,
            entropy: ent_last,
            approx_kl: kl_last,
            clip_fraction,
            explained_variance: explained_variance(&values, &returns),
            grad_norm: norm_last,
            kl_coef,
            common: UpdateCommon {
                steps_per_second: batch as f64 / elapsed,
                timings,
                wall_seconds: self.state.wall_seconds,
                episode_returns,
                episode_lengths,
            },
        })
    }
}

impl<B: AutodiffBackend, V: VectorEnv, P: TrainPolicy<B>> Learner for Ppo<B, V, P> {
    type Report = UpdateMetrics;

    fn iterate(&mut self) -> Result<UpdateMetrics> {
        Ppo::iterate(self)
    }

    fn iteration(&self) -> u64 {
        self.state.iteration
    }

    fn finished(&self) -> bool {
        Ppo::finished(self)
    }

    fn seed(&self) -> u64 {
        self.config.seed
    }

    fn global_step(&self) -> u64 {
        self.state.global_step
    }

    fn total_steps(&self) -> u64 {
        self.config.num_iterations() * self.config.batch_size() as u64
    }

    fn wall_seconds(&self) -> f64 {
        self.state.wall_seconds
    }

    /// Writes the policy, Adam's state, the trainer's counters and generators and the envs'
    /// states. Envs that cannot save their state still get a checkpoint (the policy loads),
    /// but it cannot be resumed.
    fn evaluate(
        &self,
        env: &mut cinder_env::DynEnv,
        episodes: usize,
        seed: u64,
    ) -> Result<Vec<f64>> {
        Ppo::evaluate(self, env, episodes, seed)
    }

    fn save_checkpoint(&self, path: &Path) -> Result<()> {
        let meta = PpoCheckpointMeta {
            algorithm: ALGORITHM.into(),
            config: self.config.clone(),
            policy: self.trainer.policy_config().clone(),
            trainer: self.state.clone(),
            envs: self.envs.save_state(),
        };
        let mut checkpoint = Checkpoint::with_meta(path, &meta)?;
        self.trainer.write(&mut checkpoint);
        checkpoint.write_atomic(path)
    }
}

fn ppo_meta<C: serde::de::DeserializeOwned>(
    path: &Path,
    checkpoint: &Checkpoint,
) -> Result<PpoCheckpointMeta<C>> {
    checkpoint.meta_for(path, ALGORITHM, "PPO")
}

/// `use_sde` needs a policy that gives gSDE's features and noise scales.
fn require_sde_features<B: Backend, P: Policy<B>>(config: &PpoConfig, policy: &P) -> Result<()> {
    if config.use_sde && policy.sde_std().is_none() {
        return Err(RlError::InvalidConfig(
            "use_sde needs a policy with gSDE features (Policy::sde_std): the built-in \
             actor-critic has them for continuous actions; this policy does not"
                .into(),
        ));
    }
    Ok(())
}

/// The configuration stored in a PPO checkpoint (to rebuild its envs before [`Ppo::resume`]).
pub fn checkpoint_config(path: impl AsRef<Path>) -> Result<PpoConfig> {
    let path = path.as_ref();
    let checkpoint = Checkpoint::read(path)?;
    let meta: PpoCheckpointMeta<serde_json::Value> = ppo_meta(path, &checkpoint)?;
    Ok(meta.config)
}
