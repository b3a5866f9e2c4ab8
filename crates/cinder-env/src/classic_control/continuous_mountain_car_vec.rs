//! `MountainCarContinuousVec`: many MountainCarContinuous-v0 envs in struct-of-arrays layout.
//!
//! Bit-identical to `SyncVectorEnv` over `TimeLimit(MountainCarContinuous, 999)`, including
//! Gymnasium's switch from float64 (first step after a reset) to float32 arithmetic.

use super::continuous_mountain_car::{MountainCarContinuous, dynamics, initial_state};
use crate::env::check_continuous_action;
use crate::error::Result;
use crate::rng::NpRandom;
use crate::soa_vector::{SoaKernel, SoaVectorEnv};

/// `num_envs` MountainCarContinuous-v0 envs with their time limit, stepped together
/// ([`SoaVectorEnv::new`], [`SoaVectorEnv::with_threads`]).
pub type MountainCarContinuousVec = SoaVectorEnv<MountainCarContinuousKernel>;

/// MountainCarContinuous's dynamics over many sub-envs: one array per state variable.
#[derive(Debug, Clone, Default)]
pub struct MountainCarContinuousKernel {
    position: Vec<f64>,
    velocity: Vec<f64>,
    /// Whether the state holds float32 values (after the first step of an episode).
    state_is_f32: Vec<bool>,
}

impl SoaKernel for MountainCarContinuousKernel {
    type Env = MountainCarContinuous;
    type Action = [f32; 1];
    /// `([position, velocity], state_is_f32)`.
    type State = ([f64; 2], bool);

    const ENV_ID: &'static str = "MountainCarContinuous-v0";
    const OBS_DIM: usize = 2;
    const IDLE_ACTION: [f32; 1] = [0.0];

    fn with_len(n: usize) -> Self {
        Self {
            position: vec![0.0; n],
            velocity: vec![0.0; n],
            state_is_f32: vec![false; n],
        }
    }

    fn len(&self) -> usize {
        self.position.len()
    }

    fn check_action(action: &[f32; 1]) -> Result<()> {
        check_continuous_action(action, 1)
    }

    fn initial_state(rng: &mut NpRandom) -> ([f64; 2], bool) {
        (initial_state(rng), false)
    }

    fn get(&self, i: usize) -> ([f64; 2], bool) {
        ([self.position[i], self.velocity[i]], self.state_is_f32[i])
    }

    fn set(&mut self, i: usize, ([position, velocity], state_is_f32): ([f64; 2], bool)) {
        self.position[i] = position;
        self.velocity[i] = velocity;
        self.state_is_f32[i] = state_is_f32;
    }

    fn step(&mut self, actions: &[[f32; 1]], rewards: &mut [f64], terminated: &mut [bool]) {
        for i in 0..self.position.len() {
            let state = [self.position[i], self.velocity[i]];
            let ([p, v], reward, done) = dynamics(state, self.state_is_f32[i], actions[i][0]);
            self.position[i] = p;
            self.velocity[i] = v;
            rewards[i] = reward;
            terminated[i] = done;
        }
        self.state_is_f32.fill(true);
    }

    #[inline]
    fn write_obs(&self, i: usize, row: &mut [f32]) {
        row[0] = self.position[i] as f32;
        row[1] = self.velocity[i] as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soa_vector::tests::check_kernel;

    #[test]
    fn matches_sync_vector_env() {
        // Full throttle with the velocity (reaches the goal), sometimes a random push beyond the
        // bounds (clipped, float64 engine term) or inside them.
        check_kernel::<MountainCarContinuousKernel>(1500, 30, 20, |obs, rng| {
            if rng.next_f64() < 0.3 {
                [(rng.next_f64() * 3.0 - 1.5) as f32]
            } else if obs[1] >= 0.0 {
                [0.9]
            } else {
                [-0.9]
            }
        });
    }
}
