//! `CartPoleVec`: many CartPole-v1 envs in struct-of-arrays layout, stepped in one pass.
//!
//! It gives exactly the results of `SyncVectorEnv` over `TimeLimit(CartPole, 500)` (same seeds,
//! same actions, same autoreset mode: bit-identical observations, rewards and flags; a test checks
//! it), faster: the state lives in one array per variable, the sines and cosines are computed in
//! one pass, and the rest of the dynamics in a second pass the compiler vectorises. Each sub-env
//! keeps its own NumPy generator, so resets draw the same initial states as Gymnasium's.

use super::cartpole::{CartPole, accelerations, euler, initial_state};
use crate::env::{Env, Info, check_discrete_action};
use crate::error::{EnvError, Result};
use crate::rng::EnvRng;
use crate::space::Space;
use crate::vector::{AutoresetMode, VecBuffers, VecStep, VectorEnv, sub_env_error};

/// `num_envs` CartPole-v1 envs with their time limit, stepped together.
#[derive(Debug, Clone)]
pub struct CartPoleVec {
    mode: AutoresetMode,
    max_episode_steps: u64,
    observation_space: Space,
    action_space: Space,
    // State, one entry per sub-env.
    x: Vec<f64>,
    x_dot: Vec<f64>,
    theta: Vec<f64>,
    theta_dot: Vec<f64>,
    sin: Vec<f64>,
    cos: Vec<f64>,
    elapsed: Vec<u64>,
    rngs: Vec<EnvRng>,
    out: VecBuffers,
}

impl CartPoleVec {
    /// `num_envs` CartPole-v1 envs with Gymnasium's time limit of 500 steps.
    pub fn new(num_envs: usize, mode: AutoresetMode) -> Result<Self> {
        Self::with_time_limit(num_envs, mode, 500)
    }

    /// `num_envs` CartPole envs truncated after `max_episode_steps` steps.
    pub fn with_time_limit(
        num_envs: usize,
        mode: AutoresetMode,
        max_episode_steps: u64,
    ) -> Result<Self> {
        if num_envs == 0 {
            return Err(EnvError::InvalidConfig(
                "a vector env needs at least one sub-env".into(),
            ));
        }
        if max_episode_steps == 0 {
            return Err(EnvError::InvalidConfig(
                "max_episode_steps must be at least 1".into(),
            ));
        }
        let single = CartPole::new();
        let n = num_envs;
        Ok(Self {
            mode,
            max_episode_steps,
            observation_space: single.observation_space(),
            action_space: single.action_space(),
            x: vec![0.0; n],
            x_dot: vec![0.0; n],
            theta: vec![0.0; n],
            theta_dot: vec![0.0; n],
            sin: vec![0.0; n],
            cos: vec![0.0; n],
            elapsed: vec![0; n],
            rngs: vec![EnvRng::default(); n],
            out: VecBuffers::new(n, 4),
        })
    }

    fn reset_one(&mut self, i: usize, seed: Option<u64>) {
        let [x, x_dot, theta, theta_dot] = initial_state(self.rngs[i].reset(seed));
        self.x[i] = x;
        self.x_dot[i] = x_dot;
        self.theta[i] = theta;
        self.theta_dot[i] = theta_dot;
        self.elapsed[i] = 0;
        self.write_obs(i);
    }

    #[inline]
    fn write_obs(&mut self, i: usize) {
        let row = &mut self.out.obs[4 * i..4 * i + 4];
        row[0] = self.x[i] as f32;
        row[1] = self.x_dot[i] as f32;
        row[2] = self.theta[i] as f32;
        row[3] = self.theta_dot[i] as f32;
    }
}

/// The saved form of a [`CartPoleVec`]: everything but its spaces.
#[derive(serde::Serialize, serde::Deserialize)]
struct CartPoleVecState {
    x: Vec<f64>,
    x_dot: Vec<f64>,
    theta: Vec<f64>,
    theta_dot: Vec<f64>,
    sin: Vec<f64>,
    cos: Vec<f64>,
    elapsed: Vec<u64>,
    rngs: Vec<EnvRng>,
    out: VecBuffers,
}

impl VectorEnv for CartPoleVec {
    type Action = usize;

    fn save_state(&self) -> Result<crate::env::EnvState> {
        crate::env::serde_state(&CartPoleVecState {
            x: self.x.clone(),
            x_dot: self.x_dot.clone(),
            theta: self.theta.clone(),
            theta_dot: self.theta_dot.clone(),
            sin: self.sin.clone(),
            cos: self.cos.clone(),
            elapsed: self.elapsed.clone(),
            rngs: self.rngs.clone(),
            out: self.out.clone(),
        })
    }

    fn load_state(&mut self, state: &crate::env::EnvState) -> Result<()> {
        let s: CartPoleVecState = crate::env::from_serde_state(state)?;
        let n = self.num_envs();
        let lengths = [
            s.x.len(),
            s.x_dot.len(),
            s.theta.len(),
            s.theta_dot.len(),
            s.sin.len(),
            s.cos.len(),
            s.elapsed.len(),
            s.rngs.len(),
            s.out.rewards.len(),
            s.out.obs.len() / 4,
        ];
        if lengths.iter().any(|&len| len != n) {
            return Err(EnvError::BadState(format!(
                "the saved state is not one of {n} CartPole envs"
            )));
        }
        let CartPoleVecState {
            x,
            x_dot,
            theta,
            theta_dot,
            sin,
            cos,
            elapsed,
            rngs,
            out,
        } = s;
        (self.x, self.x_dot, self.theta, self.theta_dot) = (x, x_dot, theta, theta_dot);
        (self.sin, self.cos, self.elapsed, self.rngs, self.out) = (sin, cos, elapsed, rngs, out);
        Ok(())
    }

    fn num_envs(&self) -> usize {
        self.x.len()
    }

    fn single_observation_space(&self) -> &Space {
        &self.observation_space
    }

    fn single_action_space(&self) -> &Space {
        &self.action_space
    }

    fn autoreset_mode(&self) -> AutoresetMode {
        self.mode
    }

    fn reset(&mut self, seed: Option<u64>) -> Result<&[f32]> {
        for i in 0..self.num_envs() {
            self.reset_one(i, seed.map(|s| s.wrapping_add(i as u64)));
        }
        self.out.after_reset();
        Ok(&self.out.obs)
    }

    fn step(&mut self, actions: &[usize]) -> Result<VecStep<'_>> {
        let n = self.num_envs();
        self.out.check_step(actions.len())?;
        // Validate everything before changing anything.
        for (i, &a) in actions.iter().enumerate() {
            if !self.out.resets_now(self.mode, i) {
                check_discrete_action(a, 2).map_err(|e| sub_env_error(i, e))?;
            }
        }
        // Pass 1: sines and cosines (libm, as Gymnasium's numpy calls).
        for ((s, c), theta) in self.sin.iter_mut().zip(&mut self.cos).zip(&self.theta) {
            *s = theta.sin();
            *c = theta.cos();
        }
        // Pass 2: the rest of the dynamics, branch-free over all sub-envs (vectorised).
        #[allow(clippy::needless_range_loop)] // indexing eight arrays in step
        for i in 0..n {
            let (xacc, thetaacc) =
                accelerations(actions[i] == 1, self.sin[i], self.cos[i], self.theta_dot[i]);
            let state = [self.x[i], self.x_dot[i], self.theta[i], self.theta_dot[i]];
            let ([x, x_dot, theta, theta_dot], terminated) = euler(state, xacc, thetaacc);
            self.x[i] = x;
            self.x_dot[i] = x_dot;
            self.theta[i] = theta;
            self.theta_dot[i] = theta_dot;
            self.out.terminated[i] = terminated;
        }
        // Pass 3: time limits, observations and automatic resets.
        for i in 0..n {
            if self.out.resets_now(self.mode, i) {
                // This sub-env ended on the previous call: it resets and ignores its action
                // (pass 2's result for it is discarded).
                self.reset_one(i, None);
                self.out.record_next_step_reset(i, Info::default());
                continue;
            }
            self.elapsed[i] += 1;
            self.out.rewards[i] = 1.0;
            self.out.truncated[i] = self.elapsed[i] >= self.max_episode_steps;
            self.write_obs(i);
            let done = self.out.terminated[i] || self.out.truncated[i];
            match self.mode {
                AutoresetMode::SameStep if done => {
                    let row = 4 * i..4 * i + 4;
                    self.out.final_obs[row.clone()].copy_from_slice(&self.out.obs[row]);
                    self.reset_one(i, None);
                }
                _ => self.out.autoreset[i] = done,
            }
        }
        Ok(self.out.view())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::NpRandom;
    use crate::vector::SyncVectorEnv;
    use crate::wrappers::TimeLimit;

    fn same_as_sync(mode: AutoresetMode, limit: u64) {
        let n = 13;
        let mut fast = CartPoleVec::with_time_limit(n, mode, limit).unwrap();
        let mut reference =
            SyncVectorEnv::from_fn(n, mode, |_| TimeLimit::new(CartPole::new(), limit).unwrap())
                .unwrap();
        assert_eq!(
            fast.reset(Some(3)).unwrap(),
            reference.reset(Some(3)).unwrap()
        );
        let mut rng = NpRandom::from_seed(9);
        let mut ends = 0;
        for t in 0..3000 {
            // Mostly-balancing actions so that some episodes reach the time limit.
            let obs = reference.observations().to_vec();
            let actions: Vec<usize> = (0..n)
                .map(|i| {
                    if rng.next_f64() < 0.2 {
                        rng.integers(2) as usize
                    } else {
                        usize::from(obs[4 * i + 2] + 0.5 * obs[4 * i + 3] > 0.0)
                    }
                })
                .collect();
            let a = fast.step(&actions).unwrap();
            let (obs, rewards, term, trunc, final_obs) = (
                a.obs.to_vec(),
                a.rewards.to_vec(),
                a.terminated.to_vec(),
                a.truncated.to_vec(),
                a.final_obs.to_vec(),
            );
            let b = reference.step(&actions).unwrap();
            assert_eq!(obs, b.obs, "step {t}");
            assert_eq!(rewards, b.rewards, "step {t}");
            assert_eq!(term, b.terminated, "step {t}");
            assert_eq!(trunc, b.truncated, "step {t}");
            for i in 0..n {
                if term[i] || trunc[i] {
                    ends += 1;
                    if mode == AutoresetMode::SameStep {
                        assert_eq!(final_obs[4 * i..4 * i + 4], b.final_obs[4 * i..4 * i + 4]);
                    }
                }
            }
        }
        assert!(ends > 20, "only {ends} episode ends");
    }

    #[test]
    fn same_step_matches_sync_vector_env() {
        same_as_sync(AutoresetMode::SameStep, 500);
        same_as_sync(AutoresetMode::SameStep, 40);
    }

    #[test]
    fn next_step_matches_sync_vector_env() {
        same_as_sync(AutoresetMode::NextStep, 500);
        same_as_sync(AutoresetMode::NextStep, 40);
    }

    #[test]
    fn bad_input_changes_nothing() {
        let mut envs = CartPoleVec::new(2, AutoresetMode::SameStep).unwrap();
        assert_eq!(envs.step(&[0, 1]).unwrap_err(), EnvError::ResetNeeded);
        let before = envs.reset(Some(0)).unwrap().to_vec();
        assert!(matches!(
            envs.step(&[0, 2]),
            Err(EnvError::SubEnv { index: 1, .. })
        ));
        assert!(matches!(envs.step(&[0]), Err(EnvError::InvalidConfig(_))));
        let after = envs.step(&[0, 0]).unwrap().obs.to_vec();
        let mut reference = CartPoleVec::new(2, AutoresetMode::SameStep).unwrap();
        reference.reset(Some(0)).unwrap();
        assert_eq!(after, reference.step(&[0, 0]).unwrap().obs);
        assert_ne!(before, after);
        assert!(CartPoleVec::new(0, AutoresetMode::SameStep).is_err());
    }
}
