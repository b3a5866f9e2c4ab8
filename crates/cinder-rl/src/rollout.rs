//! The on-policy rollout PPO and TRPO share (Stable-Baselines3's `collect_rollouts` and
//! `RolloutBuffer`): `num_steps` steps in every env of a vector env under the current policy
//! (on its host copy, [`crate::host_policy`], for up to 64 envs; otherwise on the inner,
//! non-autodiff backend), actions sampled on the host from the learner's seeded
//! generator, optional gSDE exploration matrices and observation/reward normalisation, and the
//! values that bootstrap truncated episodes from their real final observation. [`Rollout::gae`]
//! turns the buffers into advantages and returns.
//!
//! What a rollout carries from one iteration to the next (generator, current observations,
//! running episode returns, normalisation statistics, gSDE matrices) is a [`RolloutState`],
//! saved in the learner's checkpoint so that a resumed run continues exactly.

use crate::advantages::{bootstrap_values, gae};
use crate::error::{Result, RlError};
use crate::host_policy::HOST_INFERENCE_MAX_ROWS;
use crate::normalize::VecNormalize;
use crate::policy::{self, ActorCriticConfig, NetworkConfig, Policy, PolicyConfig, sde_noise};
use crate::run::Timings;
use crate::tensors::{read, tensor2};
use burn::tensor::backend::Backend;
use cinder_env::rng::NpRandom;
use cinder_env::vector::{AutoresetMode, VecStep, VectorEnv};
use cinder_env::{SpaceValue, Value};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

/// What a rollout carries from one iteration to the next (part of a learner's checkpoint).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RolloutState {
    /// The generator of action sampling (and of the learner's other draws).
    pub rng: NpRandom,
    /// The current observation of every env (normalised when `normalize` is set),
    /// `[num_envs, obs_dim]`.
    pub next_obs: Vec<f32>,
    /// The return so far of every env's current episode.
    pub episode_return: Vec<f64>,
    /// The length so far of every env's current episode.
    pub episode_length: Vec<u64>,
    /// Observation and reward statistics (with `normalize_obs` / `normalize_reward`).
    #[serde(default)]
    pub normalize: Option<VecNormalize>,
    /// gSDE's exploration matrices, `[num_envs, features, action_dim]` (with `use_sde`).
    #[serde(default)]
    pub sde_noise: Vec<f32>,
}

/// How the rollout samples and what it normalises: the settings PPO's and TRPO's configurations
/// share.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutSettings {
    /// Seed of the generator and of the envs' first reset.
    pub seed: u64,
    /// Steps per env in each rollout.
    pub num_steps: usize,
    /// Clip continuous actions to the action space before the env sees them (the rollout keeps
    /// the unclipped sample and its log-probability, as SB3 does).
    pub clip_actions: bool,
    /// gSDE (continuous actions only).
    pub use_sde: bool,
    /// With `use_sde`, new exploration matrices every this many steps (`None`: once per rollout).
    pub sde_sample_freq: Option<usize>,
    /// Normalise observations by running statistics.
    pub normalize_obs: bool,
    /// Scale rewards by the running std of the discounted return.
    pub normalize_reward: bool,
    /// Normalised observations are clipped to `±clip_obs`.
    pub clip_obs: f64,
    /// Normalised rewards are clipped to `±clip_reward`.
    pub clip_reward: f64,
    /// Discount of the reward normaliser's return.
    pub gamma: f32,
}

/// One rollout's buffers, each `[num_steps, num_envs, …]` flattened row-major.
#[derive(Debug, Clone)]
pub struct Rollout {
    /// Observations the policy acted on, `[num_steps · num_envs · obs_dim]`.
    pub obs: Vec<f32>,
    /// The actions taken (indices as floats, or action vectors), `[… · action_width]`.
    pub actions: Vec<f32>,
    /// `log π_old(a|s)`.
    pub log_probs: Vec<f32>,
    /// Rewards (normalised when configured).
    pub rewards: Vec<f32>,
    /// The critic's values.
    pub values: Vec<f32>,
    /// Whether the step ended its episode by termination.
    pub terminated: Vec<bool>,
    /// Whether the step ended its episode by truncation.
    pub truncated: Vec<bool>,
    /// `V(final observation)` of truncated steps (0 elsewhere).
    pub final_values: Vec<f32>,
    /// `V(next observation)` of every env after the last step, `[num_envs]`.
    pub last_values: Vec<f32>,
    /// Returns of the episodes that ended during the rollout.
    pub episode_returns: Vec<f64>,
    /// Lengths of those episodes.
    pub episode_lengths: Vec<u64>,
}

impl Rollout {
    /// Rows (env steps) in the rollout.
    pub fn len(&self) -> usize {
        self.log_probs.len()
    }

    /// Whether the rollout has no rows.
    pub fn is_empty(&self) -> bool {
        self.log_probs.is_empty()
    }

    /// GAE(γ, λ) advantages and returns (advantages + values), bootstrapping truncated
    /// episodes from their final observation's value and the last step from `last_values`.
    pub fn gae(&self, num_envs: usize, gamma: f32, lambda: f32) -> Result<(Vec<f32>, Vec<f32>)> {
        let bootstrap = bootstrap_values(
            &self.values,
            &self.last_values,
            &self.final_values,
            &self.terminated,
            &self.truncated,
        )?;
        let dones: Vec<bool> = self
            .terminated
            .iter()
            .zip(&self.truncated)
            .map(|(a, b)| *a || *b)
            .collect();
        gae(
            &self.rewards,
            &self.values,
            &bootstrap,
            &dones,
            num_envs,
            gamma,
            lambda,
        )
    }
}

/// One rollout step's actions: for the envs, flattened for storage, and their log-probs.
type SampledActions<A> = (Vec<A>, Vec<f32>, Vec<f32>);

/// A vector env driven by a policy: the envs, the shapes the policy needs, and the rollout.
pub struct RolloutEnvs<V: VectorEnv> {
    envs: V,
    settings: RolloutSettings,
    obs_dim: usize,
    /// Floats per action in rollout storage: 1 (an index) or the action dimension.
    action_width: usize,
    /// The action space's bounds, when continuous actions are clipped before the env sees them.
    action_bounds: Option<(Vec<f32>, Vec<f32>)>,
}

/// The policy a learner builds for `envs`: `network` on the envs' spaces, initialised from
/// `seed`, with gSDE when asked (an error for discrete actions).
pub fn policy_config_for<V: VectorEnv>(
    network: &NetworkConfig,
    use_sde: bool,
    seed: u64,
    envs: &V,
) -> Result<ActorCriticConfig> {
    let policy = network.actor_critic(
        envs.single_observation_space(),
        envs.single_action_space(),
        seed,
    )?;
    if use_sde && !policy.continuous {
        return Err(RlError::UnsupportedSpace(
            "use_sde (gSDE) is for continuous actions; this env's actions are discrete".into(),
        ));
    }
    Ok(policy.with_use_sde(use_sde))
}

/// The rollout assumes Gymnasium 0.29's same-step autoreset (SB3's and CleanRL's): under
/// NextStep the step after an episode's end is a reset transition (action ignored, reward 0)
/// that would be trained on, and truncations would bootstrap from a stale observation.
pub fn require_same_step<V: VectorEnv>(algorithm: &str, envs: &V) -> Result<()> {
    match envs.autoreset_mode() {
        AutoresetMode::SameStep => Ok(()),
        mode => Err(RlError::InvalidConfig(format!(
            "{algorithm} needs a vector env with AutoresetMode::SameStep (the mode SB3 and \
             CleanRL assume), this one uses {mode:?}: build it with AutoresetMode::SameStep"
        ))),
    }
}

/// `Ok` when a buffer a vector env returned has the length its spaces promise.
pub(crate) fn check_len(what: &str, got: usize, expected: usize) -> Result<()> {
    if got == expected {
        Ok(())
    } else {
        Err(RlError::UnsupportedSpace(format!(
            "the vector env returned {got} {what} where its spaces and num_envs give {expected}"
        )))
    }
}

/// Checks every buffer of a vector env's step against `num_envs` and `obs_dim`: a user's
/// [`VectorEnv`] that returns short or long buffers gets an error, not an index panic.
fn check_vec_step(step: &VecStep<'_>, n: usize, d: usize) -> Result<()> {
    check_len("observations", step.obs.len(), n * d)?;
    check_len("final observations", step.final_obs.len(), n * d)?;
    check_len("rewards", step.rewards.len(), n)?;
    check_len("terminated flags", step.terminated.len(), n)?;
    check_len("truncated flags", step.truncated.len(), n)
}

impl<V: VectorEnv> RolloutEnvs<V> {
    /// Wraps `envs` for a policy of `policy` (checking that the env's action type takes the
    /// policy's actions).
    pub fn new(envs: V, policy: &impl PolicyConfig, settings: RolloutSettings) -> Result<Self> {
        let obs_dim = envs.obs_dim();
        let action_width = if policy.continuous() {
            policy.action_dim()
        } else {
            1
        };
        let probe = if policy.continuous() {
            Value::Continuous(vec![0.0; action_width])
        } else {
            Value::Discrete(0)
        };
        if V::Action::from_value(probe.clone()).is_none() {
            return Err(RlError::UnsupportedSpace(format!(
                "the vector env's action type ({}) does not take {} actions",
                std::any::type_name::<V::Action>(),
                probe.as_value().kind()
            )));
        }
        let action_bounds = match envs.single_action_space() {
            cinder_env::Space::Box(b) if settings.clip_actions && policy.continuous() => {
                Some((b.low.clone(), b.high.clone()))
            }
            _ => None,
        };
        Ok(Self {
            envs,
            settings,
            obs_dim,
            action_width,
            action_bounds,
        })
    }

    /// Resets the envs with the seed and starts a fresh [`RolloutState`].
    pub fn reset(&mut self) -> Result<RolloutState> {
        let s = &self.settings;
        let n = self.envs.num_envs();
        let mut next_obs = self.envs.reset(Some(s.seed))?.to_vec();
        check_len("reset observations", next_obs.len(), n * self.obs_dim)?;
        let mut normalize = VecNormalize::new(
            n,
            self.obs_dim,
            (s.normalize_obs, s.normalize_reward),
            (s.clip_obs, s.clip_reward),
            f64::from(s.gamma),
        )?;
        normalize.observe(&mut next_obs);
        Ok(RolloutState {
            rng: NpRandom::from_seed(s.seed),
            next_obs,
            episode_return: vec![0.0; n],
            episode_length: vec![0; n],
            normalize: normalize.is_active().then_some(normalize),
            sde_noise: Vec::new(),
        })
    }

    /// Restores the envs' states from a checkpoint and checks that the saved rollout state fits
    /// them (errors name `path`).
    pub fn restore(
        &mut self,
        path: &Path,
        envs: Option<&serde_json::Value>,
        state: &RolloutState,
    ) -> Result<()> {
        let mismatch = |reason: String| RlError::CheckpointMismatch {
            path: path.to_path_buf(),
            reason,
        };
        let env_state = envs.ok_or_else(|| {
            mismatch(
                "it holds no env state (the env cannot save its state), so the run cannot \
                 continue exactly; load the policy with checkpoint::load_policy instead"
                    .into(),
            )
        })?;
        self.envs.load_state(env_state)?;
        let n = self.envs.num_envs();
        check_len(
            "the checkpoint's observations",
            state.next_obs.len(),
            n * self.obs_dim,
        )?;
        for (name, len) in [
            ("episode returns", state.episode_return.len()),
            ("episode lengths", state.episode_length.len()),
        ] {
            check_len(name, len, n).map_err(|e| mismatch(e.to_string()))?;
        }
        let s = &self.settings;
        match &state.normalize {
            Some(normalize) => normalize
                .check_fits(n, self.obs_dim)
                .map_err(|e| mismatch(e.to_string())),
            None if s.normalize_obs || s.normalize_reward => Err(mismatch(
                "its config normalises observations or rewards but it holds no statistics".into(),
            )),
            None => Ok(()),
        }
    }

    /// The vector env.
    pub fn envs(&self) -> &V {
        &self.envs
    }

    /// Floats per observation.
    pub fn obs_dim(&self) -> usize {
        self.obs_dim
    }

    /// Floats per stored action: 1 (an index) or the action dimension.
    pub fn action_width(&self) -> usize {
        self.action_width
    }

    /// Runs `num_steps` steps in every env under `policy` (on a backend without autodiff, or
    /// on its host copy: [`crate::host_policy`]),
    /// updating `state`; inference and env times go into `timings`.
    pub fn collect<Bk: Backend, P: Policy<Bk>>(
        &mut self,
        policy: &P,
        state: &mut RolloutState,
        timings: &mut Timings,
        device: &Bk::Device,
    ) -> Result<Rollout> {
        let (n, d, w) = (self.envs.num_envs(), self.obs_dim, self.action_width);
        let t_max = self.settings.num_steps;
        let batch = n * t_max;
        let mut r = Rollout {
            obs: Vec::with_capacity(batch * d),
            actions: vec![0f32; batch * w],
            log_probs: vec![0f32; batch],
            rewards: vec![0f32; batch],
            values: vec![0f32; batch],
            terminated: vec![false; batch],
            truncated: vec![false; batch],
            final_values: vec![0f32; batch],
            last_values: Vec::new(),
            episode_returns: Vec::new(),
            episode_lengths: Vec::new(),
        };
        // Small batches run on a host copy of the policy (one read of its weights per
        // rollout); gSDE and policies without a host copy run on the backend.
        let host = if self.settings.use_sde || n > HOST_INFERENCE_MAX_ROWS {
            None
        } else {
            policy.host_policy().filter(|h| h.obs_dim() == d)
        };
        for t in 0..t_max {
            let clock = Instant::now();
            r.obs.extend_from_slice(&state.next_obs);
            let (sampled, v) = match &host {
                Some(host) => (
                    host.sample(&state.next_obs, n, &mut state.rng),
                    host.values(&state.next_obs, n),
                ),
                None => self.infer_on_backend(policy, state, t, device)?,
            };
            let (env_actions, flat, step_log_probs) = self.env_actions(sampled)?;
            check_len("values", v.len(), n)?;
            r.actions[t * n * w..(t + 1) * n * w].copy_from_slice(&flat);
            r.log_probs[t * n..(t + 1) * n].copy_from_slice(&step_log_probs);
            r.values[t * n..(t + 1) * n].copy_from_slice(&v);
            timings.inference += clock.elapsed().as_secs_f64();

            let clock = Instant::now();
            let step = self.envs.step(&env_actions)?;
            check_vec_step(&step, n, d)?;
            let step_rewards = match &mut state.normalize {
                Some(normalize) => {
                    let dones: Vec<bool> = (0..n)
                        .map(|e| step.terminated[e] || step.truncated[e])
                        .collect();
                    normalize.rewards(step.rewards, &dones)?
                }
                None => step.rewards.iter().map(|&x| x as f32).collect(),
            };
            r.rewards[t * n..(t + 1) * n].copy_from_slice(&step_rewards);
            let mut truncated_rows = Vec::new();
            for e in 0..n {
                let i = t * n + e;
                r.terminated[i] = step.terminated[e];
                r.truncated[i] = step.truncated[e];
                state.episode_return[e] += step.rewards[e];
                state.episode_length[e] += 1;
                if step.terminated[e] || step.truncated[e] {
                    r.episode_returns.push(state.episode_return[e]);
                    r.episode_lengths.push(state.episode_length[e]);
                    state.episode_return[e] = 0.0;
                    state.episode_length[e] = 0;
                    if step.truncated[e] && !step.terminated[e] {
                        truncated_rows.push(e);
                    }
                }
            }
            state.next_obs.copy_from_slice(step.obs);
            let mut final_obs: Vec<f32> = truncated_rows
                .iter()
                .flat_map(|&e| step.final_obs[e * d..(e + 1) * d].iter().copied())
                .collect();
            if let Some(normalize) = &mut state.normalize {
                normalize.observe(&mut state.next_obs);
                normalize.normalize_obs(&mut final_obs);
            }
            timings.env += clock.elapsed().as_secs_f64();
            // Truncated episodes bootstrap from the value of their real final observation.
            if !truncated_rows.is_empty() {
                let clock = Instant::now();
                let rows = truncated_rows.len();
                let fv = match &host {
                    Some(host) => host.values(&final_obs, rows),
                    None => read(policy.value(tensor2::<Bk>(final_obs, rows, d, device))),
                };
                for (k, &e) in truncated_rows.iter().enumerate() {
                    r.final_values[t * n + e] = fv[k];
                }
                timings.inference += clock.elapsed().as_secs_f64();
            }
        }
        r.last_values = match &host {
            Some(host) => host.values(&state.next_obs, n),
            None => read(policy.value(tensor2::<Bk>(state.next_obs.clone(), n, d, device))),
        };
        Ok(r)
    }

    /// Step `t`'s actions and values on the backend: one action per env sampled on the host
    /// from the policy's distribution with the state's generator (gSDE: from its features and
    /// exploration matrices, drawn anew at the start of the rollout and every
    /// `sde_sample_freq` steps, SB3's `reset_noise`), and the critic's values.
    fn infer_on_backend<Bk: Backend, P: Policy<Bk>>(
        &self,
        policy: &P,
        state: &mut RolloutState,
        t: usize,
        device: &Bk::Device,
    ) -> Result<(policy::SampledActions, Vec<f32>)> {
        let n = self.envs.num_envs();
        let obs_t = tensor2::<Bk>(state.next_obs.clone(), n, self.obs_dim, device);
        let resample = self
            .settings
            .sde_sample_freq
            .is_some_and(|f| f > 0 && t % f == 0);
        if self.settings.use_sde && (t == 0 || resample) {
            if let Some(std) = policy.sde_std() {
                state.sde_noise = sde_noise(&read(std), n, &mut state.rng);
            }
        }
        // gSDE builds its noise from the actor's features; otherwise actor and critic run in
        // one call (a policy with a shared trunk computes it once).
        let (dist, features, values) = if self.settings.use_sde {
            let (dist, features) = policy.distribution_and_features(obs_t.clone());
            (dist, features, policy.value(obs_t))
        } else {
            let (dist, values) = policy.forward(obs_t);
            (dist, None, values)
        };
        // Widths were checked against the env when the learner was built (check_policy);
        // the number of rows depends on the batch, so it is checked here.
        if dist.rows() != n {
            return Err(RlError::InvalidInput(format!(
                "the policy gave {} action distributions for {n} observations",
                dist.rows(),
            )));
        }
        let sampled = if self.settings.use_sde {
            let features = features.ok_or_else(|| {
                RlError::InvalidConfig("use_sde needs a policy that gives gSDE features".into())
            })?;
            dist.sample_sde(features, &state.sde_noise)?
        } else {
            dist.sample(&mut state.rng)
        };
        Ok((sampled, read(values)))
    }

    /// The env actions of `sampled` (continuous ones clipped to the action space), with the
    /// samples' flat storage rows and log-probs.
    fn env_actions(&self, sampled: policy::SampledActions) -> Result<SampledActions<V::Action>> {
        let bounds = &self.action_bounds;
        let env_actions = sampled
            .actions
            .into_iter()
            .map(|a| {
                // The env sees the action clipped to its space; the rollout keeps the sample.
                let a = match (a, bounds) {
                    (Value::Continuous(mut a), Some((low, high))) => {
                        crate::policy::clip_to_bounds(&mut a, low, high);
                        Value::Continuous(a)
                    }
                    (a, _) => a,
                };
                V::Action::from_value(a).ok_or_else(|| {
                    RlError::UnsupportedSpace(format!(
                        "the vector env's action type ({}) does not take the policy's actions",
                        std::any::type_name::<V::Action>()
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((env_actions, sampled.flat, sampled.log_probs))
    }

    /// The vector env's state, for a checkpoint (`None` when the env cannot save it).
    pub fn save_state(&self) -> Option<serde_json::Value> {
        self.envs.save_state().ok()
    }
}
