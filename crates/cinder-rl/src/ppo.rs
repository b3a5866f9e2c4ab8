//! Proximal Policy Optimization (Schulman et al. 2017) with every detail of CleanRL's `ppo.py`:
//! GAE, advantage normalisation per minibatch, clipped surrogate, clipped value loss, entropy
//! bonus, minibatches × epochs with shuffling, global gradient-norm clipping, Adam (ε = 1e-5),
//! linear learning-rate annealing and an optional `target_kl` early stop. Unlike CleanRL, a
//! truncated episode bootstraps from the value of its real final observation (as SB3 does).
//!
//! This module holds the configuration and the training loop for discrete-action vector envs;
//! run directories, checkpoints and resume come on top of it.
//!
//! The loop reads top to bottom, one phase per block: rollout → bootstrap values → GAE →
//! epochs × minibatches → metrics.

use crate::advantages::{bootstrap_values, explained_variance, gae, normalize};
use crate::distributions::sample_categorical;
use crate::error::{Result, RlError};
use crate::gradients::clip_grad_norm;
use crate::losses::{clipped_surrogate, value_loss};
use crate::policy::{Actions, ActorCritic, ActorCriticConfig};
use burn::config::Config;
use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{Adam, AdamConfig, GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};
use cinder_env::rng::NpRandom;
use cinder_env::vector::VectorEnv;
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
    /// Stop the epochs of an update early once `approx_kl` exceeds this.
    #[config(default = "None")]
    pub target_kl: Option<f32>,
    /// Units per hidden layer of the actor and the critic.
    #[config(default = 64)]
    pub hidden: usize,
}

impl PpoConfig {
    /// `num_envs × num_steps`.
    pub fn batch_size(&self) -> usize {
        self.num_envs * self.num_steps
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
            ("hidden", self.hidden),
        ] {
            if v == 0 {
                return bad(format!("{name} must be at least 1"));
            }
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
    /// Env steps per second over this iteration (rollout and update).
    pub steps_per_second: f64,
    /// Returns of the episodes that ended during the rollout.
    pub episode_returns: Vec<f64>,
    /// Lengths of those episodes.
    pub episode_lengths: Vec<u64>,
}

/// Runs `episodes` episodes of the greedy (most likely action) policy on `env`, seeding episode
/// `k` with `seed + k`, and returns their undiscounted returns.
pub fn evaluate_greedy<
    Bk: Backend,
    E: cinder_env::Env<Obs = Vec<f32>, Action = cinder_env::Value>,
>(
    model: &ActorCritic<Bk>,
    env: &mut E,
    episodes: usize,
    seed: u64,
    device: &Bk::Device,
) -> Result<Vec<f64>> {
    let mut returns = Vec::with_capacity(episodes);
    for k in 0..episodes {
        let (mut obs, _) = env.reset(Some(seed + k as u64))?;
        let mut total = 0.0;
        loop {
            let d = obs.len();
            let action = match model.distribution(tensor2::<Bk>(obs.clone(), 1, d, device)) {
                crate::policy::PolicyDistribution::Categorical(c) => {
                    let mode: Vec<i64> = c
                        .mode()
                        .into_data()
                        .convert::<i64>()
                        .to_vec()
                        .expect("int tensor");
                    cinder_env::Value::Discrete(mode[0] as usize)
                }
                crate::policy::PolicyDistribution::Gaussian(g) => {
                    cinder_env::Value::Continuous(read(g.mode()))
                }
            };
            let step = env.step(&action)?;
            total += step.reward;
            obs = step.obs;
            if step.terminated || step.truncated {
                break;
            }
        }
        returns.push(total);
    }
    Ok(returns)
}

/// PPO on a discrete-action vector env: the policy, its optimiser and the rollout state.
pub struct Ppo<B: AutodiffBackend, V: VectorEnv<Action = usize>> {
    config: PpoConfig,
    device: B::Device,
    envs: V,
    model: ActorCritic<B>,
    optimizer: OptimizerAdaptor<Adam, ActorCritic<B>, B>,
    rng: NpRandom,
    obs_dim: usize,
    next_obs: Vec<f32>,
    episode_return: Vec<f64>,
    episode_length: Vec<u64>,
    iteration: u64,
    global_step: u64,
}

/// Row-major `[rows, cols]` host data as a tensor.
fn tensor2<Bk: Backend>(
    data: Vec<f32>,
    rows: usize,
    cols: usize,
    device: &Bk::Device,
) -> Tensor<Bk, 2> {
    Tensor::from_data(TensorData::new(data, [rows, cols]), device)
}

fn tensor1<Bk: Backend>(data: Vec<f32>, device: &Bk::Device) -> Tensor<Bk, 1> {
    let n = data.len();
    Tensor::from_data(TensorData::new(data, [n]), device)
}

fn read<Bk: Backend, const D: usize>(t: Tensor<Bk, D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .expect("float tensor")
}

impl<B: AutodiffBackend, V: VectorEnv<Action = usize>> Ppo<B, V> {
    /// A new learner on `envs` (whose `num_envs` must match the config). Builds the policy and
    /// resets the envs with `config.seed`; all randomness comes from that seed.
    pub fn new(config: PpoConfig, mut envs: V, device: B::Device) -> Result<Self> {
        config.validate()?;
        if envs.num_envs() != config.num_envs {
            return Err(RlError::InvalidConfig(format!(
                "the vector env has {} sub-envs but num_envs is {}",
                envs.num_envs(),
                config.num_envs
            )));
        }
        let model = ActorCriticConfig::for_spaces(
            envs.single_observation_space(),
            envs.single_action_space(),
        )?
        .with_hidden(config.hidden)
        .with_seed(config.seed)
        .init::<B>(&device)?;
        let optimizer = AdamConfig::new().with_epsilon(1e-5).init();
        let obs_dim = envs.obs_dim();
        let next_obs = envs.reset(Some(config.seed))?.to_vec();
        let n = config.num_envs;
        Ok(Self {
            rng: NpRandom::from_seed(config.seed),
            config,
            device,
            envs,
            model,
            optimizer,
            obs_dim,
            next_obs,
            episode_return: vec![0.0; n],
            episode_length: vec![0; n],
            iteration: 0,
            global_step: 0,
        })
    }

    /// The current policy.
    pub fn model(&self) -> &ActorCritic<B> {
        &self.model
    }

    /// The configuration.
    pub fn config(&self) -> &PpoConfig {
        &self.config
    }

    /// Whether all `num_iterations` are done.
    pub fn finished(&self) -> bool {
        self.iteration >= self.config.num_iterations()
    }

    /// Runs one iteration: a rollout of `num_steps` steps in every env, then the update.
    pub fn iterate(&mut self) -> Result<UpdateMetrics> {
        let start = Instant::now();
        let cfg = self.config.clone();
        let (n, d, t_max) = (cfg.num_envs, self.obs_dim, cfg.num_steps);
        let batch = cfg.batch_size();
        self.iteration += 1;
        let learning_rate = if cfg.anneal_lr {
            let frac = 1.0 - (self.iteration - 1) as f64 / cfg.num_iterations() as f64;
            frac * cfg.learning_rate
        } else {
            cfg.learning_rate
        };

        // --- Rollout, on the inner (non-autodiff) backend. Buffers are [num_steps, num_envs].
        let policy = self.model.valid();
        let inner_device = &self.device;
        let mut obs = Vec::with_capacity(batch * d); // [num_steps, num_envs, obs_dim]
        let mut actions = vec![0usize; batch];
        let mut log_probs = vec![0f32; batch];
        let mut rewards = vec![0f32; batch];
        let mut values = vec![0f32; batch];
        let mut terminated = vec![false; batch];
        let mut truncated = vec![false; batch];
        let mut final_values = vec![0f32; batch];
        let mut episode_returns = Vec::new();
        let mut episode_lengths = Vec::new();
        for t in 0..t_max {
            let obs_t = tensor2::<B::InnerBackend>(self.next_obs.clone(), n, d, inner_device);
            obs.extend_from_slice(&self.next_obs);
            let dist_log_probs = match policy.distribution(obs_t.clone()) {
                crate::policy::PolicyDistribution::Categorical(c) => read(c.log_probs),
                crate::policy::PolicyDistribution::Gaussian(_) => {
                    return Err(RlError::UnsupportedSpace(
                        "PPO here takes discrete actions".into(),
                    ));
                }
            };
            let v = read(policy.value(obs_t));
            let num_actions = dist_log_probs.len() / n;
            let mut step_actions = vec![0usize; n];
            for e in 0..n {
                let row = &dist_log_probs[e * num_actions..(e + 1) * num_actions];
                let probs: Vec<f32> = row.iter().map(|l| l.exp()).collect();
                let a = sample_categorical(&probs, &mut self.rng);
                step_actions[e] = a;
                actions[t * n + e] = a;
                log_probs[t * n + e] = row[a];
                values[t * n + e] = v[e];
            }
            let step = self.envs.step(&step_actions)?;
            let mut truncated_rows = Vec::new();
            for e in 0..n {
                let i = t * n + e;
                rewards[i] = step.rewards[e] as f32;
                terminated[i] = step.terminated[e];
                truncated[i] = step.truncated[e];
                self.episode_return[e] += step.rewards[e];
                self.episode_length[e] += 1;
                if step.terminated[e] || step.truncated[e] {
                    episode_returns.push(self.episode_return[e]);
                    episode_lengths.push(self.episode_length[e]);
                    self.episode_return[e] = 0.0;
                    self.episode_length[e] = 0;
                    if step.truncated[e] && !step.terminated[e] {
                        truncated_rows.push(e);
                    }
                }
            }
            self.next_obs.copy_from_slice(step.obs);
            // Truncated episodes bootstrap from the value of their real final observation.
            if !truncated_rows.is_empty() {
                let final_obs: Vec<f32> = truncated_rows
                    .iter()
                    .flat_map(|&e| step.final_obs[e * d..(e + 1) * d].iter().copied())
                    .collect();
                let fv = read(policy.value(tensor2::<B::InnerBackend>(
                    final_obs,
                    truncated_rows.len(),
                    d,
                    inner_device,
                )));
                for (k, &e) in truncated_rows.iter().enumerate() {
                    final_values[t * n + e] = fv[k];
                }
            }
        }
        self.global_step += batch as u64;

        // --- Advantages and returns.
        let last_values = read(policy.value(tensor2::<B::InnerBackend>(
            self.next_obs.clone(),
            n,
            d,
            inner_device,
        )));
        let bootstrap = bootstrap_values(
            &values,
            &last_values,
            &final_values,
            &terminated,
            &truncated,
        );
        let dones: Vec<bool> = terminated
            .iter()
            .zip(&truncated)
            .map(|(a, b)| *a || *b)
            .collect();
        let (advantages, returns) = gae(
            &rewards,
            &values,
            &bootstrap,
            &dones,
            n,
            cfg.gamma,
            cfg.gae_lambda,
        );

        // --- Epochs × minibatches.
        let mb_size = cfg.minibatch_size();
        let mut indices: Vec<usize> = (0..batch).collect();
        // Diagnostics stay on the device until the end of the update: one read each, not one
        // per minibatch. `last` holds the last minibatch's (policy loss, value loss, entropy,
        // approx_kl); the clip fractions are summed over minibatches.
        let mut last: Option<[Tensor<B, 1>; 4]> = None;
        let mut clip_fraction_sum: Option<Tensor<B, 1>> = None;
        let mut num_minibatches_run = 0usize;
        let mut norm_last = 0.0;
        'epochs: for _epoch in 0..cfg.update_epochs {
            // Fisher-Yates shuffle on the seeded generator.
            for i in (1..batch).rev() {
                let j = self.rng.integers(i as u64 + 1) as usize;
                indices.swap(i, j);
            }
            for mb in indices.chunks(mb_size) {
                let gather = |src: &[f32]| mb.iter().map(|&i| src[i]).collect::<Vec<f32>>();
                let mb_obs: Vec<f32> = mb
                    .iter()
                    .flat_map(|&i| obs[i * d..(i + 1) * d].iter().copied())
                    .collect();
                let mut mb_adv = gather(&advantages);
                if cfg.norm_adv {
                    normalize(&mut mb_adv);
                }
                let mb_actions: Vec<i64> = mb.iter().map(|&i| actions[i] as i64).collect();
                let dev = &self.device;
                let obs_t = tensor2::<B>(mb_obs, mb.len(), d, dev);
                let act_t =
                    Tensor::<B, 1, Int>::from_data(TensorData::new(mb_actions, [mb.len()]), dev);
                let (new_log_probs, entropy, new_values) = self
                    .model
                    .evaluate_actions(obs_t, Actions::Discrete(act_t))?;
                let surrogate = clipped_surrogate(
                    new_log_probs,
                    tensor1::<B>(gather(&log_probs), dev),
                    tensor1::<B>(mb_adv, dev),
                    cfg.clip_coef,
                    cfg.clip_coef,
                );
                let v_loss = value_loss(
                    new_values,
                    tensor1::<B>(gather(&values), dev),
                    tensor1::<B>(gather(&returns), dev),
                    cfg.clip_vloss.then_some(cfg.clip_coef),
                );
                let entropy_loss = entropy.mean();
                let loss = surrogate.loss.clone() - entropy_loss.clone().mul_scalar(cfg.ent_coef)
                    + v_loss.clone().mul_scalar(cfg.vf_coef);
                let loss_value = read(loss.clone())[0];
                if !loss_value.is_finite() {
                    return Err(RlError::NonFinite {
                        iteration: self.iteration,
                        quantity: "loss",
                        value: loss_value,
                    });
                }
                let grads = GradientsParams::from_grads(loss.backward(), &self.model);
                let (grads, grad_norm) =
                    clip_grad_norm::<B, _>(&self.model, grads, cfg.max_grad_norm);
                if !grad_norm.is_finite() {
                    return Err(RlError::NonFinite {
                        iteration: self.iteration,
                        quantity: "gradient norm",
                        value: grad_norm,
                    });
                }
                self.model = self
                    .optimizer
                    .step(learning_rate, self.model.clone(), grads);
                let clip_fraction = surrogate.clip_fraction;
                clip_fraction_sum = Some(match clip_fraction_sum.take() {
                    Some(sum) => sum + clip_fraction,
                    None => clip_fraction,
                });
                num_minibatches_run += 1;
                last = Some([
                    surrogate.loss.detach(),
                    v_loss.detach(),
                    entropy_loss.detach(),
                    surrogate.approx_kl,
                ]);
                norm_last = grad_norm;
            }
            if let (Some(target), Some([.., kl])) = (cfg.target_kl, &last) {
                if read(kl.clone())[0] > target {
                    break 'epochs;
                }
            }
        }
        let [pg_last, v_last, ent_last, kl_last] = match last {
            Some(tensors) => tensors.map(|t| read(t)[0]),
            None => [0.0; 4],
        };
        let clip_fraction =
            clip_fraction_sum.map_or(0.0, |sum| read(sum)[0]) / num_minibatches_run.max(1) as f32;

        Ok(UpdateMetrics {
            iteration: self.iteration,
            global_step: self.global_step,
            learning_rate,
            policy_loss: pg_last,
            value_loss: v_last,
            entropy: ent_last,
            approx_kl: kl_last,
            clip_fraction,
            explained_variance: explained_variance(&values, &returns),
            grad_norm: norm_last,
            steps_per_second: batch as f64 / start.elapsed().as_secs_f64(),
            episode_returns,
            episode_lengths,
        })
    }
}
