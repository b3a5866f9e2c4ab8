//! Deployment: a trained policy that answers `predict(obs, deterministic)` (Stable-Baselines3's
//! `model.predict`), loaded from any Cinder checkpoint without the training machinery — no
//! envs, no optimiser, no autodiff backend. The observation statistics of a run that normalised
//! its observations (`normalize_obs`, SB3's `VecNormalize`) come with the policy and are
//! applied to every observation, frozen, as in SB3's `VecNormalize.load` + `training = False`.
//!
//! ```no_run
//! use burn::backend::NdArray;
//! use cinder_env::{Env, Space, make};
//! use cinder_rl::predict::Predictor;
//!
//! let device = Default::default();
//! let mut env = make("Pendulum-v1")?;
//! let mut agent = Predictor::<NdArray>::load("runs/pendulum/checkpoint.ckpt", &device)?
//!     .with_action_space(&env.action_space())?;
//! let (mut obs, _) = env.reset(Some(0))?;
//! loop {
//!     let action = agent.predict(&obs, true)?;
//!     let step = env.step(&action)?;
//!     if step.terminated || step.truncated {
//!         break;
//!     }
//!     obs = step.obs;
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::checkpoint::{Checkpoint, load_custom_policy};
use crate::error::{Result, RlError};
use crate::host_policy::{HOST_INFERENCE_MAX_ROWS, HostPolicy};
use crate::normalize::VecNormalize;
use crate::policy::{ActorCritic, Policy, PolicyConfig, clip_to_bounds};
use crate::tensors::tensor2;
use burn::tensor::backend::Backend;
use cinder_env::rng::NpRandom;
use cinder_env::{Space, Value};
use serde::Deserialize;
use std::path::Path;

/// A trained policy ready to act (see the [module docs](self)): the built-in actor-critic by
/// default, or a custom [`Policy`] `P`.
#[derive(Debug)]
pub struct Predictor<B: Backend, P: Policy<B> = ActorCritic<B>> {
    policy: P,
    config: P::Config,
    normalize: Option<VecNormalize>,
    bounds: Option<(Vec<f32>, Vec<f32>)>,
    rng: NpRandom,
    device: B::Device,
    /// The policy's host copy for batches of at most [`HOST_INFERENCE_MAX_ROWS`] rows, taken
    /// once (the weights do not change here).
    host: Option<HostPolicy>,
}

impl<B: Backend> Predictor<B> {
    /// The built-in actor-critic of the checkpoint at `path` (any learner's: PPO, TRPO,
    /// REINFORCE, GRPO; also `best.ckpt`), with its observation statistics when the run
    /// normalised observations. Errors name what is wrong with the file.
    pub fn load(path: impl AsRef<Path>, device: &B::Device) -> Result<Self> {
        Self::load_policy(path, device)
    }
}

impl<B: Backend, P: Policy<B>> Predictor<B, P> {
    /// [`Predictor::load`] for a checkpoint of a custom policy `P`.
    pub fn load_policy(path: impl AsRef<Path>, device: &B::Device) -> Result<Self> {
        let path = path.as_ref();
        let (policy, config) = load_custom_policy::<B, P>(path, device)?;
        let normalize = checkpoint_normalization(path)?;
        Ok(Self::new(policy, config, device.clone()).with_normalization(normalize))
    }

    /// A predictor for a policy in memory (no observation statistics, seed 0).
    pub fn new(policy: P, config: P::Config, device: B::Device) -> Self {
        Self {
            host: policy.host_policy(),
            policy,
            config,
            normalize: None,
            bounds: None,
            rng: NpRandom::from_seed(0),
            device,
        }
    }

    /// Normalises every observation with these frozen statistics (`None`: none).
    pub fn with_normalization(mut self, normalize: Option<VecNormalize>) -> Self {
        self.normalize = normalize.filter(|n| n.obs_rms.is_some());
        self
    }

    /// Checks the policy against an env's action space and, for a `Box` space, clips
    /// continuous actions to its bounds (SB3's `predict`); errors when the space does not fit
    /// the policy.
    pub fn with_action_space(mut self, action_space: &Space) -> Result<Self> {
        crate::learner::check_action_space(&self.config, action_space)?;
        self.bounds = match action_space {
            Space::Box(b) => Some((b.low.clone(), b.high.clone())),
            Space::Discrete(_) => None,
        };
        Ok(self)
    }

    /// Seeds the generator stochastic predictions draw from.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.rng = NpRandom::from_seed(seed);
        self
    }

    /// The action for one observation: the most likely one when `deterministic`, else a
    /// sample from the policy's distribution. Errors: an observation of the wrong size.
    pub fn predict(&mut self, obs: &[f32], deterministic: bool) -> Result<Value> {
        self.predict_batch(obs, deterministic)?
            .pop()
            .ok_or_else(|| RlError::InvalidInput("no observation".into()))
    }

    /// One action per observation of `obs` (rows of `obs_dim` floats, one after another).
    /// Errors: an empty batch, or a length that is not a multiple of the policy's `obs_dim`.
    pub fn predict_batch(&mut self, obs: &[f32], deterministic: bool) -> Result<Vec<Value>> {
        let d = self.config.obs_dim();
        if obs.is_empty() || obs.len() % d != 0 {
            return Err(RlError::InvalidInput(format!(
                "{} floats are not whole observations of {d} floats",
                obs.len()
            )));
        }
        let rows = obs.len() / d;
        let mut obs = obs.to_vec();
        if let Some(normalize) = &self.normalize {
            normalize.normalize_obs(&mut obs);
        }
        let bounds = self
            .bounds
            .as_ref()
            .map(|(low, high)| (&low[..], &high[..]));
        let host = self
            .host
            .as_ref()
            .filter(|_| rows <= HOST_INFERENCE_MAX_ROWS);
        let mut actions = match host {
            Some(host) if deterministic => return Ok(host.greedy(&obs, rows, bounds)),
            Some(host) => host.sample(&obs, rows, &mut self.rng).actions,
            None => {
                let dist = self
                    .policy
                    .distribution(tensor2::<B>(obs, rows, d, &self.device));
                if deterministic {
                    return dist.mode_actions(bounds);
                }
                dist.sample(&mut self.rng).actions
            }
        };
        if let Some((low, high)) = bounds {
            for action in &mut actions {
                if let Value::Continuous(a) = action {
                    clip_to_bounds(a, low, high);
                }
            }
        }
        Ok(actions)
    }

    /// The policy.
    pub fn policy(&self) -> &P {
        &self.policy
    }

    /// The policy's architecture.
    pub fn config(&self) -> &P::Config {
        &self.config
    }

    /// The observation statistics applied before the policy, if any.
    pub fn normalization(&self) -> Option<&VecNormalize> {
        self.normalize.as_ref()
    }
}

/// The observation statistics a checkpoint's learner kept (`trainer.normalize`), if any.
fn checkpoint_normalization(path: &Path) -> Result<Option<VecNormalize>> {
    let checkpoint = Checkpoint::read(path)?;
    match checkpoint.meta.pointer("/trainer/normalize") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(stats) => {
            VecNormalize::deserialize(stats)
                .map(Some)
                .map_err(|e| RlError::Checkpoint {
                    path: path.to_path_buf(),
                    reason: format!("unreadable observation statistics: {e}"),
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::ActorCriticConfig;
    use burn::backend::NdArray;

    type B = NdArray<f32>;

    fn predictor(continuous: bool) -> Predictor<B> {
        let config = ActorCriticConfig::new(3, 2).with_continuous(continuous);
        let device = Default::default();
        let policy = config.init::<B>(&device).unwrap();
        Predictor::new(policy, config, device)
    }

    #[test]
    fn wrong_sizes_are_errors() {
        let mut p = predictor(false);
        for obs in [&[][..], &[1.0, 2.0][..], &[1.0; 4][..]] {
            let err = p.predict_batch(obs, true).unwrap_err();
            assert!(matches!(err, RlError::InvalidInput(_)), "{err}");
        }
        assert_eq!(p.predict_batch(&[0.5; 6], true).unwrap().len(), 2);
        let err = predictor(false)
            .with_action_space(&Space::Discrete(cinder_env::space::Discrete::new(3)))
            .unwrap_err();
        assert!(err.to_string().contains("cannot act"), "{err}");
    }

    #[test]
    fn continuous_actions_are_clipped_and_samples_follow_the_seed() {
        let space = Space::Box(cinder_env::space::BoxSpace::uniform_bounds(
            -0.001, 0.001, 2,
        ));
        let mut p = predictor(true).with_action_space(&space).unwrap();
        for deterministic in [true, false] {
            for action in p.predict_batch(&[0.3; 30], deterministic).unwrap() {
                let Value::Continuous(a) = action else {
                    panic!("a discrete action from a Gaussian policy")
                };
                assert!(a.iter().all(|x| x.abs() <= 0.001), "{a:?}");
            }
        }
        let draw = |seed| {
            let mut p = predictor(true).with_seed(seed);
            p.predict_batch(&[0.3; 9], false).unwrap()
        };
        assert_eq!(draw(4), draw(4));
        assert_ne!(draw(4), draw(5));
    }
}
