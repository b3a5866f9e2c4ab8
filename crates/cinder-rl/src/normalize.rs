//! Observation and reward normalisation for a learner's vector of envs, with the semantics of
//! Stable-Baselines3's `VecNormalize` (what RL Zoo's `normalize: true` turns on):
//!
//! - observations: `clip((obs − mean) / sqrt(var + ε), ±clip_obs)` with a running mean and
//!   variance of every observation the envs return (the whole batch of a step at once, and the
//!   first observations at reset);
//! - rewards: `clip(r / sqrt(var_R + ε), ±clip_reward)`, never centred, where `var_R` is the
//!   running variance of each env's discounted return `R ← γ·R + r` (reset to 0 when the
//!   episode ends);
//! - ε = 1e-8; the statistics update while training, are frozen for evaluation
//!   ([`VecNormalize::normalize_obs`]) and are saved in the learner's checkpoint.
//!
//! The running statistics are [`cinder_env::wrappers::RunningMeanStd`], the same as the
//! single-env `NormalizeObservation` / `NormalizeReward` wrappers (Gymnasium's), updated a batch
//! at a time as SB3 does. Episode returns a learner reports stay the env's own (raw) rewards.

use crate::error::{Result, RlError};
use cinder_env::wrappers::RunningMeanStd;
use serde::{Deserialize, Serialize};

/// The ε added to variances before the square root (SB3's `epsilon`).
pub const EPSILON: f64 = 1e-8;

/// Running statistics that normalise a vector env's observations and rewards (see the
/// [module docs](self)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VecNormalize {
    /// Observation statistics, when observations are normalised.
    pub obs_rms: Option<RunningMeanStd<f64>>,
    /// Statistics of the discounted return, when rewards are normalised.
    pub ret_rms: Option<RunningMeanStd<f64>>,
    /// Each env's discounted return so far.
    returns: Vec<f64>,
    clip_obs: f64,
    clip_reward: f64,
    gamma: f64,
}

impl VecNormalize {
    /// Statistics for `num_envs` envs of `obs_dim` floats per observation; `norm_obs` and
    /// `norm_reward` say what is normalised (neither: everything passes through), `gamma` is
    /// the discount of the return whose variance scales rewards.
    ///
    /// Errors: a clip bound that is not positive, a `gamma` outside `[0, 1]`.
    pub fn new(
        num_envs: usize,
        obs_dim: usize,
        (norm_obs, norm_reward): (bool, bool),
        (clip_obs, clip_reward): (f64, f64),
        gamma: f64,
    ) -> Result<Self> {
        for (name, v) in [("clip_obs", clip_obs), ("clip_reward", clip_reward)] {
            if v.is_nan() || v <= 0.0 {
                return Err(RlError::InvalidConfig(format!(
                    "{name} ({v}) must be positive (use a large value for no clipping)"
                )));
            }
        }
        if !(0.0..=1.0).contains(&gamma) {
            return Err(RlError::InvalidConfig(format!(
                "the normalised return's gamma ({gamma}) must be in [0, 1]"
            )));
        }
        Ok(Self {
            obs_rms: norm_obs.then(|| RunningMeanStd::new(obs_dim)),
            ret_rms: norm_reward.then(|| RunningMeanStd::new(1)),
            returns: vec![0.0; num_envs],
            clip_obs,
            clip_reward,
            gamma,
        })
    }

    /// Whether anything is normalised.
    pub fn is_active(&self) -> bool {
        self.obs_rms.is_some() || self.ret_rms.is_some()
    }

    /// Observations `[num_envs, obs_dim]` just returned by the envs (after a reset or a
    /// step): folds them into the statistics, then normalises them in place.
    pub fn observe(&mut self, obs: &mut [f32]) {
        if let Some(rms) = &mut self.obs_rms {
            let rows: Vec<f64> = obs.iter().map(|&x| f64::from(x)).collect();
            rms.update_batch(&rows);
        }
        self.normalize_obs(obs);
    }

    /// Normalises observations (any number of rows) in place with the current statistics,
    /// without updating them: evaluation, and final observations of truncated episodes.
    pub fn normalize_obs(&self, obs: &mut [f32]) {
        let Some(rms) = &self.obs_rms else { return };
        let d = rms.mean.len().max(1);
        for row in obs.chunks_mut(d) {
            for ((x, &mean), &var) in row.iter_mut().zip(&rms.mean).zip(&rms.var) {
                let z = (f64::from(*x) - mean) / (var + EPSILON).sqrt();
                *x = z.clamp(-self.clip_obs, self.clip_obs) as f32;
            }
        }
    }

    /// Rewards of one step of every env and whether each env's episode ended there: updates
    /// the discounted returns and their statistics, and returns the rewards to learn from.
    ///
    /// Errors: buffers whose lengths are not `num_envs`.
    pub fn rewards(&mut self, rewards: &[f64], dones: &[bool]) -> Result<Vec<f32>> {
        let n = self.returns.len();
        if rewards.len() != n || dones.len() != n {
            return Err(RlError::InvalidInput(format!(
                "{} rewards and {} done flags for {n} envs",
                rewards.len(),
                dones.len()
            )));
        }
        let Some(rms) = &mut self.ret_rms else {
            return Ok(rewards.iter().map(|&r| r as f32).collect());
        };
        for (ret, &r) in self.returns.iter_mut().zip(rewards) {
            *ret = *ret * self.gamma + r;
        }
        rms.update_batch(&self.returns);
        let scale = (rms.var[0] + EPSILON).sqrt();
        let out = rewards
            .iter()
            .map(|&r| (r / scale).clamp(-self.clip_reward, self.clip_reward) as f32)
            .collect();
        for (ret, &done) in self.returns.iter_mut().zip(dones) {
            if done {
                *ret = 0.0;
            }
        }
        Ok(out)
    }

    /// Forgets the discounted returns (the envs were reset).
    pub fn reset_returns(&mut self) {
        self.returns.iter_mut().for_each(|r| *r = 0.0);
    }

    /// Checks restored statistics against the envs they will normalise.
    pub fn check_fits(&self, num_envs: usize, obs_dim: usize) -> Result<()> {
        let obs_ok = self.obs_rms.as_ref().is_none_or(|rms| {
            rms.mean.len() == obs_dim
                && rms.var.len() == obs_dim
                && rms.var.iter().all(|v| *v >= 0.0)
        });
        let ret_ok = self
            .ret_rms
            .as_ref()
            .is_none_or(|rms| rms.mean.len() == 1 && rms.var.len() == 1 && rms.var[0] >= 0.0);
        if obs_ok && ret_ok && self.returns.len() == num_envs {
            Ok(())
        } else {
            Err(RlError::InvalidInput(format!(
                "normalisation statistics do not fit {num_envs} envs of {obs_dim} observation \
                 floats"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference values computed by hand from SB3's formulas (NumPy float64).
    #[test]
    fn observations_follow_vec_normalize() {
        let mut norm = VecNormalize::new(2, 1, (true, false), (10.0, 10.0), 0.99).unwrap();
        let mut obs = [1.0f32, 3.0];
        norm.observe(&mut obs);
        // Batch mean 2, var 1; count 1e-4 + 2: mean = 2·2/2.0001, var from Chan's merge.
        let rms = norm.obs_rms.as_ref().unwrap();
        let total = 2.0001f64;
        let mean = 2.0 * 2.0 / total;
        let var = (1.0 * 1e-4 + 1.0 * 2.0 + 4.0 * 1e-4 * 2.0 / total) / total;
        assert!((rms.mean[0] - mean).abs() < 1e-12 && (rms.var[0] - var).abs() < 1e-12);
        let expected = ((1.0 - mean) / (var + 1e-8).sqrt()) as f32;
        assert_eq!(obs[0], expected);
        // Clipping.
        let mut far = [1e6f32];
        norm.normalize_obs(&mut far);
        assert_eq!(far[0], 10.0);
    }

    #[test]
    fn rewards_scale_by_the_return_std_and_reset_at_episode_ends() {
        let mut norm = VecNormalize::new(1, 3, (false, true), (10.0, 1e6), 0.5).unwrap();
        let r1 = norm.rewards(&[2.0], &[false]).unwrap();
        // returns = 2; rms over one sample: mean 2/1.0001·1, var = (1e-4 + 4·1e-4/1.0001)/1.0001.
        let total = 1.0001f64;
        let var = (1e-4 + 4.0 * 1e-4 / total) / total;
        assert!((f64::from(r1[0]) - 2.0 / (var + 1e-8).sqrt()).abs() < 1e-4 * r1[0] as f64);
        let _ = norm.rewards(&[2.0], &[true]).unwrap();
        assert_eq!(norm.returns, vec![0.0]);
        // Observations pass through when only rewards are normalised.
        let mut obs = [5.0f32, -7.0, 1e9];
        norm.observe(&mut obs);
        assert_eq!(obs, [5.0, -7.0, 1e9]);
        assert!(norm.rewards(&[1.0, 2.0], &[false, false]).is_err());
    }

    #[test]
    fn bad_settings_are_errors() {
        assert!(VecNormalize::new(1, 1, (true, true), (0.0, 10.0), 0.99).is_err());
        assert!(VecNormalize::new(1, 1, (true, true), (10.0, 10.0), 1.5).is_err());
    }
}
