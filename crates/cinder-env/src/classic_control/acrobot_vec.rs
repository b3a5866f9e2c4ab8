//! `AcrobotVec`: many Acrobot-v1 envs in struct-of-arrays layout.
//!
//! Bit-identical to `SyncVectorEnv` over `TimeLimit(Acrobot, 500)`. Acrobot's step is dominated by
//! the sines and cosines of its four Runge-Kutta stages (libm, as Gymnasium's NumPy calls), which
//! no layout removes; the kernel computes each observation once, with the termination test's
//! cosine, and threads ([`SoaVectorEnv::with_threads`]) share out the rest.

use super::acrobot::{AVAIL_TORQUE, Acrobot, dynamics, initial_state, observation};
use crate::env::check_discrete_action;
use crate::error::Result;
use crate::rng::NpRandom;
use crate::soa_vector::{SoaKernel, SoaVectorEnv};

/// `num_envs` Acrobot-v1 envs with their time limit, stepped together
/// ([`SoaVectorEnv::new`], [`SoaVectorEnv::with_threads`]).
pub type AcrobotVec = SoaVectorEnv<AcrobotKernel>;

/// Acrobot's dynamics over many sub-envs: one array per state variable.
#[derive(Debug, Clone, Default)]
pub struct AcrobotKernel {
    /// `[theta1, theta2, dtheta1, dtheta2]` per sub-env.
    state: [Vec<f64>; 4],
    /// Whether the state holds a reset's float32 values.
    state_is_f32: Vec<bool>,
    /// Each sub-env's current observation.
    obs: Vec<[f32; 6]>,
}

impl SoaKernel for AcrobotKernel {
    type Env = Acrobot;
    type Action = usize;
    /// `([theta1, theta2, dtheta1, dtheta2], state_is_f32)`.
    type State = ([f64; 4], bool);

    const ENV_ID: &'static str = "Acrobot-v1";
    const OBS_DIM: usize = 6;
    const IDLE_ACTION: usize = 1;

    fn with_len(n: usize) -> Self {
        Self {
            state: std::array::from_fn(|_| vec![0.0; n]),
            state_is_f32: vec![false; n],
            obs: vec![[0.0; 6]; n],
        }
    }

    fn len(&self) -> usize {
        self.obs.len()
    }

    fn check_action(action: &usize) -> Result<()> {
        check_discrete_action(*action, 3)
    }

    fn initial_state(rng: &mut NpRandom) -> ([f64; 4], bool) {
        (initial_state(rng), true)
    }

    fn get(&self, i: usize) -> ([f64; 4], bool) {
        (self.state.each_ref().map(|v| v[i]), self.state_is_f32[i])
    }

    fn set(&mut self, i: usize, (state, state_is_f32): ([f64; 4], bool)) {
        for (column, value) in self.state.iter_mut().zip(state) {
            column[i] = value;
        }
        self.state_is_f32[i] = state_is_f32;
        self.obs[i] = observation(state, state_is_f32);
    }

    fn step(&mut self, actions: &[usize], rewards: &mut [f64], terminated: &mut [bool]) {
        for (i, &action) in actions.iter().enumerate() {
            let torque = AVAIL_TORQUE.get(action).copied().unwrap_or(0.0);
            let (state, done) = dynamics(self.state.each_ref().map(|v| v[i]), torque);
            for (column, value) in self.state.iter_mut().zip(state) {
                column[i] = value;
            }
            self.obs[i] = observation(state, false);
            terminated[i] = done;
            rewards[i] = if done { 0.0 } else { -1.0 };
        }
        self.state_is_f32.fill(false);
    }

    #[inline]
    fn write_obs(&self, i: usize, row: &mut [f32]) {
        row.copy_from_slice(&self.obs[i]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soa_vector::tests::check_kernel;

    #[test]
    fn matches_sync_vector_env() {
        // Pumping energy with the first joint's velocity reaches the line in a few hundred
        // steps; random torques a third of the time.
        check_kernel::<AcrobotKernel>(1500, 25, 20, |obs, rng| {
            if rng.next_f64() < 0.3 {
                rng.integers(3) as usize
            } else if obs[4] >= 0.0 {
                2
            } else {
                0
            }
        });
    }
}
