//! Trust Region Policy Optimization (Schulman et al. 2015) with the semantics of
//! Stable-Baselines3-contrib's `TRPO`: maximise the surrogate `E[π_θ(a|s)/π_old(a|s) · Â]`
//! subject to `E_s[KL(π_old(·|s) ‖ π_θ(·|s))] ≤ δ` — the constraint PPO's clipping approximates.
//!
//! One iteration reads top to bottom:
//!
//! 1. **Rollout and GAE** as PPO's ([`crate::rollout`]): `num_steps` steps in each env, GAE(γ, λ).
//! 2. **Policy step** on the actor's flat parameters θ ([`crate::trust_region`]): the surrogate's
//!    gradient `g` over the rollout (every `sub_sampling_factor`-th sample of a shuffled order;
//!    advantages normalised), the natural direction `s ≈ (F + λI)⁻¹ g` by conjugate gradient on
//!    Fisher-vector products (`cg_max_steps`, damping `λ` = `cg_damping`), the largest step
//!    `β = sqrt(2δ / sᵀ(F + λI)s)` (δ = `target_kl`), and a backtracking line search that
//!    accepts the first `θ_old + c·β·s` (`c = 1, 0.8, 0.8², …`) with mean KL below δ and a better
//!    surrogate, else keeps θ_old (reported as `line_search_success = false`).
//! 3. **Critic**: `n_critic_updates` epochs of shuffled minibatches (`batch_size`) of MSE value
//!    regression with Adam (`learning_rate`); the actor is not touched (the critic shares no
//!    parameters with it, and Adam sees no actor gradients).
//!
//! No entropy bonus, no value term in the policy step and no gradient clipping, as SB3-contrib.
//! The KL in the constraint and in the Fisher product is `KL(π_θ ‖ π_old)` as SB3-contrib
//! computes it (`kl_divergence(new, old)`); at `θ = θ_old` its Hessian equals that of the notes'
//! `KL(π_old ‖ π_θ)` — both are the Fisher matrix — and the two differ only at third order.
//!
//! [`Trpo`] implements [`Learner`]: [`crate::run::train`] drives it with a run directory,
//! metrics, checkpoints that resume exactly and progress.

use crate::advantages::{explained_variance, normalize};
use crate::checkpoint::Checkpoint;
use crate::distributions::standard_normal;
use crate::error::{Result, RlError};
use crate::gradients::parameter_norm_tensor;
use crate::learner::PolicyTrainer;
use crate::normalize::VecNormalize;
use crate::policy::{ActorCritic, ActorCriticConfig, NetworkConfig};
use crate::rollout::{
    Rollout, RolloutEnvs, RolloutSettings, RolloutState, policy_config_for, require_same_step,
};
use crate::run::{Learner, Timings, UpdateCommon, UpdateReport};
use crate::tensors::{UpdateChecks, read, tensor1, tensor2};
use crate::trust_region::{
    FisherProduct, LineSearch, PolicyBatch, conjugate_gradient, distribution_at,
    fisher_vector_product, line_search, surrogate_and_gradient, surrogate_and_kl,
};
use burn::config::Config;
use burn::module::AutodiffModule;
use burn::tensor::Tensor;
use burn::tensor::backend::AutodiffBackend;
use cinder_env::vector::VectorEnv;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

/// TRPO's hyperparameters, with SB3-contrib's defaults (its names where PPO's config has none).
#[derive(Config, Debug, PartialEq)]
pub struct TrpoConfig {
    /// Seed of the policy's initialisation, the action sampling, the shuffling, the conjugate
    /// gradient's starting point and the envs.
    #[config(default = 1)]
    pub seed: u64,
    /// Total env steps to train for (all envs together).
    #[config(default = 1_000_000)]
    pub total_timesteps: u64,
    /// Adam's learning rate for the critic (SB3-contrib: 1e-3).
    #[config(default = 1e-3)]
    pub learning_rate: f64,
    /// Number of parallel envs (RL Zoo's `n_envs`).
    #[config(default = 1)]
    pub num_envs: usize,
    /// Steps per env in each rollout (SB3's `n_steps`: 2048).
    #[config(default = 2048)]
    pub num_steps: usize,
    /// Minibatch size of the critic's updates (SB3-contrib: 128).
    #[config(default = 128)]
    pub batch_size: usize,
    /// Discount factor γ.
    #[config(default = 0.99)]
    pub gamma: f32,
    /// GAE's λ.
    #[config(default = 0.95)]
    pub gae_lambda: f32,
    /// Conjugate-gradient iterations (Fisher-vector products) per policy step.
    #[config(default = 15)]
    pub cg_max_steps: usize,
    /// Damping λ added to the Fisher matrix: `F + λI`.
    #[config(default = 0.1)]
    pub cg_damping: f64,
    /// The line search's factor: each rejected step is shortened by it.
    #[config(default = 0.8)]
    pub line_search_shrinking_factor: f32,
    /// Steps the line search tries before keeping the old parameters.
    #[config(default = 10)]
    pub line_search_max_iter: usize,
    /// Epochs of critic regression per rollout.
    #[config(default = 10)]
    pub n_critic_updates: usize,
    /// Normalise advantages (over the policy step's batch).
    #[config(default = true)]
    pub normalize_advantage: bool,
    /// The trust region's radius δ: the largest mean KL a step may have.
    #[config(default = 0.01)]
    pub target_kl: f32,
    /// Use every this-many-th sample (of a shuffled order) for the policy step (1: all).
    #[config(default = 1)]
    pub sub_sampling_factor: usize,
    /// How Fisher-vector products are computed: exactly by nested autodiff (the default), or
    /// by a central difference of KL gradients.
    #[config(default = "FisherProduct::Exact")]
    pub fisher_product: FisherProduct,
    /// The policy network (SB3's `policy_kwargs`).
    #[config(default = "NetworkConfig::new()")]
    pub network: NetworkConfig,
    /// Clip continuous actions to the action space before the env sees them.
    #[config(default = true)]
    pub clip_actions: bool,
    /// gSDE (continuous actions only; SB3's `use_sde`).
    #[config(default = false)]
    pub use_sde: bool,
    /// With `use_sde`, new exploration matrices every this many steps (`None`: per rollout).
    #[config(default = "None")]
    pub sde_sample_freq: Option<usize>,
    /// Normalise observations by running statistics (RL Zoo's `normalize`).
    #[config(default = false)]
    pub normalize_obs: bool,
    /// Scale rewards by the running std of the discounted return.
    #[config(default = false)]
    pub normalize_reward: bool,
    /// Normalised observations are clipped to `±clip_obs`.
    #[config(default = 10.0)]
    pub clip_obs: f64,
    /// Normalised rewards are clipped to `±clip_reward`.
    #[config(default = 10.0)]
    pub clip_reward: f64,
}

impl TrpoConfig {
    /// `num_envs × num_steps`.
    pub fn rollout_size(&self) -> usize {
        self.num_envs.saturating_mul(self.num_steps)
    }

    /// Number of rollout-and-update iterations: `total_timesteps / rollout_size`.
    pub fn num_iterations(&self) -> u64 {
        self.total_timesteps / self.rollout_size().max(1) as u64
    }

    /// Checks every value; the error says what to change.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(RlError::InvalidConfig(msg));
        for (name, v) in [
            ("num_envs", self.num_envs),
            ("num_steps", self.num_steps),
            ("batch_size", self.batch_size),
            ("cg_max_steps", self.cg_max_steps),
            ("line_search_max_iter", self.line_search_max_iter),
            ("sub_sampling_factor", self.sub_sampling_factor),
        ] {
            if v == 0 {
                return bad(format!("{name} must be at least 1"));
            }
        }
        if self.num_envs.checked_mul(self.num_steps).is_none() {
            return bad(format!(
                "num_envs × num_steps ({} × {}) overflows",
                self.num_envs, self.num_steps
            ));
        }
        if self.num_iterations() == 0 {
            return bad(format!(
                "total_timesteps ({}) must be at least num_envs × num_steps ({})",
                self.total_timesteps,
                self.rollout_size()
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
        if !(self.cg_damping.is_finite() && self.cg_damping >= 0.0) {
            return bad(format!(
                "cg_damping ({}) must be finite and >= 0",
                self.cg_damping
            ));
        }
        let shrink = self.line_search_shrinking_factor;
        if !(shrink > 0.0 && shrink < 1.0) {
            return bad(format!(
                "line_search_shrinking_factor ({shrink}) must be in (0, 1)"
            ));
        }
        if !(self.target_kl.is_finite() && self.target_kl > 0.0) {
            return bad(format!("target_kl ({}) must be positive", self.target_kl));
        }
        if let FisherProduct::FiniteDifference { epsilon } = self.fisher_product {
            if !(epsilon.is_finite() && epsilon > 0.0) {
                return bad(format!(
                    "fisher_product's finite-difference epsilon ({epsilon}) must be positive"
                ));
            }
        }
        if self.rollout_size() / self.sub_sampling_factor == 0 {
            return bad(format!(
                "sub_sampling_factor ({}) leaves no sample of a rollout of {}",
                self.sub_sampling_factor,
                self.rollout_size()
            ));
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
        Ok(())
    }

    fn rollout_settings(&self) -> RolloutSettings {
        RolloutSettings {
            seed: self.seed,
            num_steps: self.num_steps,
            clip_actions: self.clip_actions,
            use_sde: self.use_sde,
            sde_sample_freq: self.sde_sample_freq,
            normalize_obs: self.normalize_obs,
            normalize_reward: self.normalize_reward,
            clip_obs: self.clip_obs,
            clip_reward: self.clip_reward,
            gamma: self.gamma,
        }
    }
}

/// What one TRPO update reports (SB3-contrib's `train/…` names where it has them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrpoMetrics {
    /// 1-based iteration number.
    pub iteration: u64,
    /// Env steps taken so far.
    pub global_step: u64,
    /// The critic's learning rate.
    pub learning_rate: f64,
    /// The surrogate `mean(Â · ρ)` before the step (1 · mean(Â) = 0 with normalised
    /// advantages).
    pub policy_objective_before: f32,
    /// The surrogate at the parameters kept (SB3-contrib's `policy_objective`).
    pub policy_objective: f32,
    /// The mean KL of the accepted step (0 when none was; SB3-contrib's `kl_divergence_loss`).
    pub kl_divergence: f32,
    /// Whether the line search accepted a step (`is_line_search_success`).
    pub line_search_success: bool,
    /// Steps the line search tried (0 when there was no direction to search).
    pub line_search_steps: usize,
    /// The fraction of the full step `β · s` taken (0 when none was accepted).
    pub step_fraction: f32,
    /// `β = sqrt(2δ / sᵀ(F + λI)s)`.
    pub max_step_size: f32,
    /// Norm of the surrogate's gradient `g`.
    pub gradient_norm: f32,
    /// Fisher-vector products the conjugate gradient took.
    pub cg_iterations: usize,
    /// `‖g − (F + λI)s‖²` when the conjugate gradient stopped.
    pub cg_residual: f64,
    /// Whether the conjugate gradient stopped early on a direction of non-positive curvature
    /// (rounding in a nearly singular Fisher matrix).
    pub cg_nonpositive_curvature: bool,
    /// Mean MSE of the critic's minibatches.
    pub value_loss: f32,
    /// Explained variance of the rollout's values for its returns.
    pub explained_variance: f64,
    /// Mean standard deviation of a Gaussian policy (SB3's `train/std`).
    pub std: Option<f32>,
    /// Seconds of the policy step (gradient, conjugate gradient, line search).
    pub policy_step_seconds: f64,
    /// Speed, time and the episodes that ended during the rollout.
    #[serde(flatten)]
    pub common: UpdateCommon,
}

impl TrpoMetrics {
    /// The metrics with their wall-clock fields zeroed: what must be equal between two runs
    /// with the same seed.
    pub fn without_timings(self) -> Self {
        Self {
            policy_step_seconds: 0.0,
            common: self.common.without_timings(),
            ..self
        }
    }
}

impl UpdateReport for TrpoMetrics {
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

/// The trainer's state besides the policy and the critic's optimiser: what a checkpoint holds
/// for a resumed run to continue exactly.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TrainerState {
    iteration: u64,
    global_step: u64,
    #[serde(flatten)]
    rollout: RolloutState,
    wall_seconds: f64,
}

/// The checkpoint header's `algorithm` for TRPO.
const ALGORITHM: &str = "trpo";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TrpoCheckpointMeta {
    algorithm: String,
    config: TrpoConfig,
    policy: ActorCriticConfig,
    trainer: TrainerState,
    envs: Option<serde_json::Value>,
}

/// TRPO on a vector env (same-step autoreset): the policy, the critic's optimiser and the
/// rollout state. Works with the vector envs PPO takes.
pub struct Trpo<B: AutodiffBackend, V: VectorEnv> {
    config: TrpoConfig,
    envs: RolloutEnvs<V>,
    trainer: PolicyTrainer<B>,
    state: TrainerState,
}

impl<B: AutodiffBackend, V: VectorEnv> Trpo<B, V> {
    /// A new learner on `envs` (whose `num_envs` must match the config). Builds the policy and
    /// resets the envs with `config.seed`; all randomness comes from that seed.
    pub fn new(config: TrpoConfig, envs: V, device: B::Device) -> Result<Self> {
        config.validate()?;
        require_same_step("TRPO", &envs)?;
        if envs.num_envs() != config.num_envs {
            return Err(RlError::InvalidConfig(format!(
                "the vector env has {} sub-envs but num_envs is {}",
                envs.num_envs(),
                config.num_envs
            )));
        }
        let policy = policy_config_for(&config.network, config.use_sde, config.seed, &envs)?;
        let trainer = PolicyTrainer::new(policy, device)?;
        let mut envs = RolloutEnvs::new(envs, trainer.policy_config(), config.rollout_settings())?;
        let state = TrainerState {
            iteration: 0,
            global_step: 0,
            rollout: envs.reset()?,
            wall_seconds: 0.0,
        };
        Ok(Self {
            config,
            envs,
            trainer,
            state,
        })
    }

    /// Continues the run saved in the checkpoint at `path` on `envs`, a fresh vector env of the
    /// same kind and size. On ndarray the metrics that follow equal those of a run that was
    /// never interrupted.
    ///
    /// Errors: an unreadable or corrupt file, a checkpoint of another algorithm, of a policy
    /// that does not fit `envs`, or without the envs' state.
    pub fn resume(path: impl AsRef<Path>, envs: V, device: B::Device) -> Result<Self> {
        require_same_step("TRPO", &envs)?;
        let path = path.as_ref();
        let checkpoint = Checkpoint::read(path)?;
        let meta: TrpoCheckpointMeta = checkpoint.meta_for(path, ALGORITHM, "TRPO")?;
        meta.config.validate()?;
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
        let expected = policy_config_for(&config.network, config.use_sde, config.seed, &envs)?;
        let trainer = PolicyTrainer::restore(path, &checkpoint, &meta.policy, &expected, device)?;
        let mut envs = RolloutEnvs::new(envs, trainer.policy_config(), config.rollout_settings())?;
        envs.restore(path, meta.envs.as_ref(), &meta.trainer.rollout)?;
        Ok(Self {
            config,
            envs,
            trainer,
            state: meta.trainer,
        })
    }

    /// The current policy.
    pub fn model(&self) -> &ActorCritic<B> {
        self.trainer.model()
    }

    /// The configuration.
    pub fn config(&self) -> &TrpoConfig {
        &self.config
    }

    /// The vector env.
    pub fn envs(&self) -> &V {
        self.envs.envs()
    }

    /// Whether all `num_iterations` are done.
    pub fn finished(&self) -> bool {
        self.state.iteration >= self.config.num_iterations()
    }

    /// The observation (and reward) statistics, when the config normalises them.
    pub fn normalization(&self) -> Option<&VecNormalize> {
        self.state.rollout.normalize.as_ref()
    }

    /// Greedy evaluation of the current policy (see [`crate::policy::evaluate_greedy`]).
    pub fn evaluate(
        &self,
        env: &mut cinder_env::DynEnv,
        episodes: usize,
        seed: u64,
    ) -> Result<Vec<f64>> {
        self.trainer
            .evaluate(env, episodes, seed, self.state.rollout.normalize.as_ref())
    }

    /// Runs one iteration: a rollout, the policy's trust-region step, the critic's epochs.
    pub fn iterate(&mut self) -> Result<TrpoMetrics> {
        let start = Instant::now();
        let cfg = self.config.clone();
        let (n, d, w) = (cfg.num_envs, self.envs.obs_dim(), self.envs.action_width());
        let rows = cfg.rollout_size();
        let iteration = self.state.iteration + 1;
        let device = self.trainer.device().clone();
        let mut timings = Timings::default();

        // --- Rollout and GAE, on the inner backend or the policy's host copy.
        let policy = self.trainer.model().valid();
        let rollout = self
            .envs
            .collect(&policy, &mut self.state.rollout, &mut timings, &device)?;
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

        // --- Policy step: g, s ≈ (F + λI)⁻¹ g, β, line search. A shuffled order for
        // sub-sampling (SB3's buffer is read in a random permutation).
        let policy_clock = Instant::now();
        let mut order: Vec<usize> = (0..rows).collect();
        if cfg.sub_sampling_factor > 1 {
            self.shuffle(&mut order);
        }
        let picked: Vec<usize> = order
            .iter()
            .copied()
            .step_by(cfg.sub_sampling_factor)
            .collect();
        let continuous = self.trainer.policy_config().continuous;
        let mut batch = PolicyBatch {
            obs: gather_rows(&obs, &picked, d),
            obs_dim: d,
            actions: gather_rows(&actions, &picked, w),
            continuous,
            old_log_probs: gather_rows(&log_probs, &picked, 1),
            advantages: gather_rows(&advantages, &picked, 1),
        };
        if cfg.normalize_advantage {
            normalize(&mut batch.advantages);
        }
        let model = self.trainer.model().clone();
        let layout = model.actor_layout();
        let theta_old = read(model.actor_parameters().inner());
        let (surrogate_old, gradient) =
            surrogate_and_gradient::<B>(&layout, &theta_old, &batch, &device)?;
        RlError::ensure_finite(iteration, "policy objective", surrogate_old)?;
        let gradient_norm = norm(&gradient);
        RlError::ensure_finite(iteration, "policy gradient norm", gradient_norm)?;
        let damping = cfg.cg_damping;
        let product = |v: &[f32]| -> Result<Vec<f32>> {
            let fv = fisher_vector_product::<B>(
                &layout,
                &theta_old,
                &batch,
                v,
                cfg.fisher_product,
                &device,
            )?;
            Ok(fv
                .iter()
                .zip(v)
                .map(|(&f, &x)| (f64::from(f) + damping * f64::from(x)) as f32)
                .collect())
        };
        // SB3-contrib starts the solver from 1e-4 · N(0, 1) draws.
        let x0: Vec<f32> = (0..layout.len())
            .map(|_| (1e-4 * standard_normal(&mut self.state.rollout.rng)) as f32)
            .collect();
        let solution = conjugate_gradient(product, &gradient, &x0, cfg.cg_max_steps, 1e-10)?;
        let curvature = dot(&solution.x, &product(&solution.x)?);
        RlError::ensure_finite(iteration, "curvature sᵀ(F + λI)s", curvature as f32)?;
        let inner_device = device.clone();
        // A direction without positive curvature (a zero gradient, or rounding in a nearly
        // singular Fisher matrix) gives no step: the policy stays, as after a failed search.
        let (max_step_size, search) = if curvature > 0.0 {
            let max_step_size = (2.0 * f64::from(cfg.target_kl) / curvature).sqrt();
            let direction: Vec<f32> = solution
                .x
                .iter()
                .map(|&s| (max_step_size * f64::from(s)) as f32)
                .collect();
            let old =
                distribution_at::<B::InnerBackend>(&layout, &theta_old, &batch, &inner_device)?;
            let search = line_search(
                |theta| surrogate_and_kl(&layout, theta, &batch, &old, &inner_device),
                &theta_old,
                &direction,
                surrogate_old,
                cfg.target_kl,
                cfg.line_search_shrinking_factor,
                cfg.line_search_max_iter,
            )?;
            (max_step_size, search)
        } else {
            let search = LineSearch {
                theta: theta_old.clone(),
                accepted: false,
                tries: 0,
                surrogate: surrogate_old,
                kl: 0.0,
                fraction: 0.0,
            };
            (0.0, search)
        };
        self.trainer.begin_update();
        if search.accepted {
            let theta = Tensor::<B, 1>::from_inner(tensor1::<B::InnerBackend>(
                search.theta.clone(),
                &inner_device,
            ));
            self.trainer
                .replace_model(model.with_actor_parameters(theta)?);
        }
        let policy_step_seconds = policy_clock.elapsed().as_secs_f64();

        // --- Critic: epochs of shuffled minibatches of MSE regression, actor untouched.
        let mut checks = UpdateChecks::<B::InnerBackend>::new();
        let mut value_loss_sum: Option<Tensor<B::InnerBackend, 1>> = None;
        let mut minibatches = 0usize;
        let mut indices: Vec<usize> = (0..rows).collect();
        for _ in 0..cfg.n_critic_updates {
            self.shuffle(&mut indices);
            for mb in indices.chunks(cfg.batch_size) {
                let obs_t = tensor2::<B>(gather_rows(&obs, mb, d), mb.len(), d, &device);
                let targets = tensor1::<B>(gather_rows(&returns, mb, 1), &device);
                let loss = (self.trainer.model().value(obs_t) - targets)
                    .square()
                    .mean();
                let value = loss.clone().detach().inner();
                value_loss_sum = Some(match value_loss_sum {
                    Some(sum) => sum + value,
                    None => value,
                });
                minibatches += 1;
                self.trainer
                    .gradient_step(loss, f32::INFINITY, cfg.learning_rate, &mut checks);
            }
        }
        let zero = || Tensor::<B::InnerBackend, 1>::zeros([1], &inner_device);
        let mut diagnostics = vec![value_loss_sum.unwrap_or_else(zero)];
        if let Some(log_std) = self.trainer.model().valid().log_std() {
            diagnostics.push(log_std.exp().mean());
        }
        let parameters = parameter_norm_tensor(self.trainer.model(), &device).inner();
        let (head, _) = match checks.read(iteration, parameters, diagnostics) {
            Ok(read) => read,
            Err(e) => {
                self.trainer.rollback();
                return Err(e);
            }
        };
        timings.update = clock.elapsed().as_secs_f64();

        let elapsed = start.elapsed().as_secs_f64();
        self.state.iteration = iteration;
        self.state.global_step += rows as u64;
        self.state.wall_seconds += elapsed;
        Ok(TrpoMetrics {
            iteration,
            global_step: self.state.global_step,
            learning_rate: cfg.learning_rate,
            policy_objective_before: surrogate_old,
            policy_objective: search.surrogate,
            kl_divergence: search.kl,
            line_search_success: search.accepted,
            line_search_steps: search.tries,
            step_fraction: search.fraction,
            max_step_size: max_step_size as f32,
            gradient_norm,
            cg_iterations: solution.iterations,
            cg_residual: solution.residual,
            cg_nonpositive_curvature: solution.nonpositive_curvature,
            value_loss: head[0] / minibatches.max(1) as f32,
            explained_variance: explained_variance(&values, &returns),
            std: head.get(1).copied(),
            policy_step_seconds,
            common: UpdateCommon {
                steps_per_second: rows as f64 / elapsed,
                timings,
                wall_seconds: self.state.wall_seconds,
                episode_returns,
                episode_lengths,
            },
        })
    }

    /// Fisher-Yates shuffle on the run's seeded generator.
    fn shuffle(&mut self, indices: &mut [usize]) {
        for i in (1..indices.len()).rev() {
            let j = self.state.rollout.rng.integers(i as u64 + 1) as usize;
            indices.swap(i, j);
        }
    }
}

/// The rows `picked` of `src` (rows of `width` floats).
fn gather_rows(src: &[f32], picked: &[usize], width: usize) -> Vec<f32> {
    picked
        .iter()
        .flat_map(|&i| src[i * width..(i + 1) * width].iter().copied())
        .collect()
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum()
}

fn norm(v: &[f32]) -> f32 {
    dot(v, v).sqrt() as f32
}

impl<B: AutodiffBackend, V: VectorEnv> Learner for Trpo<B, V> {
    type Report = TrpoMetrics;

    fn iterate(&mut self) -> Result<TrpoMetrics> {
        Trpo::iterate(self)
    }

    fn iteration(&self) -> u64 {
        self.state.iteration
    }

    fn finished(&self) -> bool {
        Trpo::finished(self)
    }

    fn seed(&self) -> u64 {
        self.config.seed
    }

    fn global_step(&self) -> u64 {
        self.state.global_step
    }

    fn total_steps(&self) -> u64 {
        self.config.num_iterations() * self.config.rollout_size() as u64
    }

    fn wall_seconds(&self) -> f64 {
        self.state.wall_seconds
    }

    fn evaluate(
        &self,
        env: &mut cinder_env::DynEnv,
        episodes: usize,
        seed: u64,
    ) -> Result<Vec<f64>> {
        Trpo::evaluate(self, env, episodes, seed)
    }

    /// Writes the policy, the critic's Adam state, the counters, the generator and the envs'
    /// states (envs that cannot save their state give a checkpoint that loads but cannot
    /// resume).
    fn save_checkpoint(&self, path: &Path) -> Result<()> {
        let meta = TrpoCheckpointMeta {
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

/// The configuration stored in a TRPO checkpoint (to rebuild its envs before [`Trpo::resume`]).
pub fn checkpoint_config(path: impl AsRef<Path>) -> Result<TrpoConfig> {
    let path = path.as_ref();
    let meta: TrpoCheckpointMeta = Checkpoint::read(path)?.meta_for(path, ALGORITHM, "TRPO")?;
    Ok(meta.config)
}
