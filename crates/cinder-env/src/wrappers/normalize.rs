//! `NormalizeObservation` and `NormalizeReward`: running statistics that rescale observations
//! and rewards, as Gymnasium 1.x's wrappers compute them (bit for bit, including the float32
//! arithmetic of the observation statistics), with Stable-Baselines3's optional clipping.

use crate::env::{Env, EnvState, Info, Step, from_serde_state, state_field};
use crate::error::{EnvError, Result};
use crate::space::{BoxSpace, Space, SpaceValue};
use serde::{Deserialize, Serialize};
use std::ops::{Add, Div, Mul, Sub};

/// The float types running statistics are kept in: `f32` for observations (Gymnasium keeps them
/// in the observation space's dtype), `f64` for returns.
pub trait StatFloat:
    Copy
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Serialize
    + for<'de> Deserialize<'de>
{
    /// `x` rounded to this type.
    fn from_f64(x: f64) -> Self;
}

impl StatFloat for f32 {
    fn from_f64(x: f64) -> Self {
        x as f32
    }
}

impl StatFloat for f64 {
    fn from_f64(x: f64) -> Self {
        x
    }
}

/// A running mean and variance, updated one sample at a time with Chan et al.'s parallel
/// algorithm, as Gymnasium's `RunningMeanStd` (and SB3's) does: the count starts at
/// `1e-4`, the mean at 0, the variance at 1, and every operation rounds as NumPy's does for
/// arrays of type `F` with a Python-float count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunningMeanStd<F> {
    /// The mean of each element.
    pub mean: Vec<F>,
    /// The (population) variance of each element.
    pub var: Vec<F>,
    /// The number of samples seen, plus the initial `1e-4`.
    pub count: f64,
}

impl<F: StatFloat> RunningMeanStd<F> {
    /// Statistics of `size` elements: mean 0, variance 1, count `1e-4`.
    pub fn new(size: usize) -> Self {
        Self {
            mean: vec![F::from_f64(0.0); size],
            var: vec![F::from_f64(1.0); size],
            count: 1e-4,
        }
    }

    /// Folds in one sample (`x.len()` must be the statistics' size; others are ignored).
    pub fn update(&mut self, x: &[F]) {
        if x.len() != self.mean.len() {
            return;
        }
        // NumPy: delta = batch_mean − mean; tot = count + 1;
        // mean += delta · 1 / tot; var = (var · count + 0 + delta² · count · 1 / tot) / tot.
        let total = self.count + 1.0;
        let (count, total_f, one) = (
            F::from_f64(self.count),
            F::from_f64(total),
            F::from_f64(1.0),
        );
        for ((mean, var), &x) in self.mean.iter_mut().zip(&mut self.var).zip(x) {
            let delta = x - *mean;
            *mean = *mean + delta * one / total_f;
            // The batch's own variance term is 0 for a single sample.
            let m2 = *var * count + delta * delta * count * one / total_f;
            *var = m2 / total_f;
        }
        self.count = total;
    }

    /// Folds in a batch of `rows.len() / size` samples at once (row-major), as
    /// Stable-Baselines3's `RunningMeanStd.update` does for a vector env's observations or
    /// returns: the batch's mean and population variance, merged with Chan et al.'s formula.
    /// A `rows` whose length is not a positive multiple of the size is ignored.
    pub fn update_batch(&mut self, rows: &[F]) {
        let size = self.mean.len();
        if size == 0 || rows.is_empty() || rows.len() % size != 0 {
            return;
        }
        let n = rows.len() / size;
        let batch = F::from_f64(n as f64);
        let total = self.count + n as f64;
        let (count, total_f) = (F::from_f64(self.count), F::from_f64(total));
        for j in 0..size {
            let column = || rows.iter().skip(j).step_by(size).copied();
            let batch_mean = column().fold(F::from_f64(0.0), |a, x| a + x) / batch;
            let batch_var = column().fold(F::from_f64(0.0), |a, x| {
                let d = x - batch_mean;
                a + d * d
            }) / batch;
            let (mean, var) = (self.mean[j], self.var[j]);
            let delta = batch_mean - mean;
            self.mean[j] = mean + delta * batch / total_f;
            let m2 = var * count + batch_var * batch + delta * delta * count * batch / total_f;
            self.var[j] = m2 / total_f;
        }
        self.count = total;
    }
}

/// Normalises observations by a running mean and variance of the observations seen so far:
/// `(obs − mean) / sqrt(var + ε)` (Gymnasium's `NormalizeObservation`, ε = 1e-8), optionally
/// clipped to `±clip` (SB3's `VecNormalize` clips at 10). The statistics update on every
/// `reset` and `step` while [`NormalizeObservation::update_running_mean`] is on; turn it off to
/// evaluate with frozen statistics. They are part of the env's saved state.
///
/// Observations become `Vec<f32>`, and the observation space an unbounded `Box` (or `±clip`).
#[derive(Debug, Clone)]
pub struct NormalizeObservation<E> {
    env: E,
    rms: RunningMeanStd<f32>,
    epsilon: f32,
    clip: Option<f32>,
    update: bool,
}

impl<E: Env> NormalizeObservation<E> {
    /// Wraps `env` (a `Box` observation space) with Gymnasium's ε = 1e-8 and no clipping.
    pub fn new(env: E) -> Result<Self> {
        Self::with_options(env, 1e-8, None)
    }

    /// Wraps `env` with stability constant `epsilon` (> 0) and optional clipping at
    /// `±clip` (> 0).
    pub fn with_options(env: E, epsilon: f32, clip: Option<f32>) -> Result<Self> {
        let size = match env.observation_space() {
            Space::Box(b) => b.size(),
            other => {
                return Err(EnvError::InvalidConfig(format!(
                    "NormalizeObservation needs a Box observation space, the env has {other}"
                )));
            }
        };
        check_epsilon_and_clip(
            "NormalizeObservation",
            f64::from(epsilon),
            clip.map(f64::from),
        )?;
        Ok(Self {
            env,
            rms: RunningMeanStd::new(size),
            epsilon,
            clip,
            update: true,
        })
    }

    /// The running statistics.
    pub fn statistics(&self) -> &RunningMeanStd<f32> {
        &self.rms
    }

    /// Replaces the running statistics (e.g. with a training run's, for evaluation); their size
    /// must be the observation's.
    pub fn set_statistics(&mut self, statistics: RunningMeanStd<f32>) -> Result<()> {
        if statistics.mean.len() != self.rms.mean.len()
            || statistics.var.len() != self.rms.var.len()
        {
            return Err(EnvError::BadState(format!(
                "statistics of {} elements for observations of {}",
                statistics.mean.len(),
                self.rms.mean.len()
            )));
        }
        self.rms = statistics;
        Ok(())
    }

    /// Whether `reset` and `step` update the statistics (Gymnasium's `update_running_mean`).
    pub fn update_running_mean(&self) -> bool {
        self.update
    }

    /// Freezes (`false`) or resumes (`true`) the statistics' updates.
    pub fn set_update_running_mean(&mut self, update: bool) {
        self.update = update;
    }

    /// The wrapped env.
    pub fn inner(&self) -> &E {
        &self.env
    }

    fn normalize(&mut self, obs: &E::Obs) -> Result<Vec<f32>> {
        let mut flat = vec![0.0f32; self.rms.mean.len()];
        obs.write_flat(&mut flat)?;
        if self.update {
            self.rms.update(&flat);
        }
        for ((x, &mean), &var) in flat.iter_mut().zip(&self.rms.mean).zip(&self.rms.var) {
            *x = (*x - mean) / (var + self.epsilon).sqrt();
            if let Some(clip) = self.clip {
                *x = x.clamp(-clip, clip);
            }
        }
        Ok(flat)
    }
}

fn check_epsilon_and_clip(wrapper: &str, epsilon: f64, clip: Option<f64>) -> Result<()> {
    if !(epsilon > 0.0 && epsilon.is_finite()) {
        return Err(EnvError::InvalidConfig(format!(
            "{wrapper} needs epsilon > 0, got {epsilon}"
        )));
    }
    if let Some(clip) = clip {
        if clip.is_nan() || clip <= 0.0 {
            return Err(EnvError::InvalidConfig(format!(
                "{wrapper} needs clip > 0 (or no clipping), got {clip}"
            )));
        }
    }
    Ok(())
}

impl<E: Env> Env for NormalizeObservation<E> {
    type Obs = Vec<f32>;
    type Action = E::Action;
    fn render(&self) -> Result<crate::render::Frame> {
        self.env.render()
    }

    fn observation_space(&self) -> Space {
        let bound = self.clip.unwrap_or(f32::INFINITY);
        Space::Box(BoxSpace::uniform_bounds(-bound, bound, self.rms.mean.len()))
    }

    fn action_space(&self) -> Space {
        self.env.action_space()
    }

    fn reset(&mut self, seed: Option<u64>) -> Result<(Vec<f32>, Info)> {
        let (obs, info) = self.env.reset(seed)?;
        Ok((self.normalize(&obs)?, info))
    }

    fn step(&mut self, action: &E::Action) -> Result<Step<Vec<f32>>> {
        let step = self.env.step(action)?;
        Ok(Step {
            obs: self.normalize(&step.obs)?,
            reward: step.reward,
            terminated: step.terminated,
            truncated: step.truncated,
            info: step.info,
        })
    }

    fn max_episode_steps(&self) -> Option<u64> {
        self.env.max_episode_steps()
    }

    fn save_state(&self) -> Result<EnvState> {
        Ok(serde_json::json!({
            "statistics": self.rms,
            "update": self.update,
            "env": self.env.save_state()?,
        }))
    }

    fn load_state(&mut self, state: &EnvState) -> Result<()> {
        let rms: RunningMeanStd<f32> = from_serde_state(state_field(state, "statistics")?)?;
        let update = from_serde_state(state_field(state, "update")?)?;
        self.env.load_state(state_field(state, "env")?)?;
        self.set_statistics(rms)?;
        self.update = update;
        Ok(())
    }
}

/// Scales rewards so that their discounted sum has roughly unit variance (Gymnasium's
/// `NormalizeReward`): each step, `G ← γ · G · (1 − terminated) + r` and the running variance
/// of `G` is updated; the reward returned is `r / sqrt(var + ε)` (never centred), optionally
/// clipped to `±clip` (SB3's `VecNormalize` clips at 10). As in Gymnasium, `G` is cut only by
/// termination, not by truncation or reset. Freeze the statistics with
/// [`NormalizeReward::set_update_running_mean`]; they are part of the env's saved state.
#[derive(Debug, Clone)]
pub struct NormalizeReward<E> {
    env: E,
    rms: RunningMeanStd<f64>,
    discounted_return: f64,
    gamma: f64,
    epsilon: f64,
    clip: Option<f64>,
    update: bool,
}

/// The part of [`NormalizeReward`] that is state.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RewardState {
    statistics: RunningMeanStd<f64>,
    discounted_return: f64,
    update: bool,
}

impl<E: Env> NormalizeReward<E> {
    /// Wraps `env` with discount `gamma` (in `[0, 1]`), Gymnasium's ε = 1e-8 and no clipping.
    pub fn new(env: E, gamma: f64) -> Result<Self> {
        Self::with_options(env, gamma, 1e-8, None)
    }

    /// Wraps `env` with discount `gamma` (in `[0, 1]`), stability constant `epsilon` (> 0) and
    /// optional clipping at `±clip` (> 0).
    pub fn with_options(env: E, gamma: f64, epsilon: f64, clip: Option<f64>) -> Result<Self> {
        if !(0.0..=1.0).contains(&gamma) {
            return Err(EnvError::InvalidConfig(format!(
                "NormalizeReward needs gamma in [0, 1], got {gamma}"
            )));
        }
        check_epsilon_and_clip("NormalizeReward", epsilon, clip)?;
        Ok(Self {
            env,
            rms: RunningMeanStd::new(1),
            discounted_return: 0.0,
            gamma,
            epsilon,
            clip,
            update: true,
        })
    }

    /// The running statistics of the discounted return.
    pub fn statistics(&self) -> &RunningMeanStd<f64> {
        &self.rms
    }

    /// Whether `step` updates the statistics.
    pub fn update_running_mean(&self) -> bool {
        self.update
    }

    /// Freezes (`false`) or resumes (`true`) the statistics' updates.
    pub fn set_update_running_mean(&mut self, update: bool) {
        self.update = update;
    }

    /// The wrapped env.
    pub fn inner(&self) -> &E {
        &self.env
    }
}

impl<E: Env> Env for NormalizeReward<E> {
    type Obs = E::Obs;
    type Action = E::Action;
    fn render(&self) -> Result<crate::render::Frame> {
        self.env.render()
    }

    fn observation_space(&self) -> Space {
        self.env.observation_space()
    }

    fn action_space(&self) -> Space {
        self.env.action_space()
    }

    fn reset(&mut self, seed: Option<u64>) -> Result<(E::Obs, Info)> {
        self.env.reset(seed)
    }

    fn step(&mut self, action: &E::Action) -> Result<Step<E::Obs>> {
        let mut step = self.env.step(action)?;
        let not_terminated = if step.terminated { 0.0 } else { 1.0 };
        self.discounted_return = self.discounted_return * self.gamma * not_terminated + step.reward;
        if self.update {
            self.rms.update(&[self.discounted_return]);
        }
        let var = self.rms.var.first().copied().unwrap_or(1.0);
        step.reward /= (var + self.epsilon).sqrt();
        if let Some(clip) = self.clip {
            step.reward = step.reward.clamp(-clip, clip);
        }
        Ok(step)
    }

    fn max_episode_steps(&self) -> Option<u64> {
        self.env.max_episode_steps()
    }

    fn save_state(&self) -> Result<EnvState> {
        let own = RewardState {
            statistics: self.rms.clone(),
            discounted_return: self.discounted_return,
            update: self.update,
        };
        Ok(serde_json::json!({
            "normalize_reward": crate::env::serde_state(&own)?,
            "env": self.env.save_state()?,
        }))
    }

    fn load_state(&mut self, state: &EnvState) -> Result<()> {
        let own: RewardState = from_serde_state(state_field(state, "normalize_reward")?)?;
        if own.statistics.mean.len() != 1 || own.statistics.var.len() != 1 {
            return Err(EnvError::BadState(
                "reward statistics must have one element".into(),
            ));
        }
        self.env.load_state(state_field(state, "env")?)?;
        self.rms = own.statistics;
        self.discounted_return = own.discounted_return;
        self.update = own.update;
        Ok(())
    }
}
