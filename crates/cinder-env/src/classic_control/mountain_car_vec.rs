//! `MountainCarVec`: many MountainCar-v0 envs in struct-of-arrays layout.
//!
//! Bit-identical to `SyncVectorEnv` over `TimeLimit(MountainCar, 200)`: the cosines are taken in
//! one pass (libm, as Gymnasium's `math.cos`), the rest of the dynamics in a second pass without
//! calls, which the compiler vectorises.

use super::mountain_car::{MountainCar, dynamics, initial_state};
use crate::env::check_discrete_action;
use crate::error::Result;
use crate::rng::NpRandom;
use crate::soa_vector::{SoaKernel, SoaVectorEnv};

/// `num_envs` MountainCar-v0 envs with their time limit, stepped together
/// ([`SoaVectorEnv::new`], [`SoaVectorEnv::with_threads`]).
pub type MountainCarVec = SoaVectorEnv<MountainCarKernel>;

/// MountainCar's dynamics over many sub-envs: one array per state variable.
#[derive(Debug, Clone, Default)]
pub struct MountainCarKernel {
    position: Vec<f64>,
    velocity: Vec<f64>,
    // Scratch: `cos(3 * position)`.
    cos: Vec<f64>,
}

impl SoaKernel for MountainCarKernel {
    type Env = MountainCar;
    type Action = usize;
    /// `[position, velocity]`.
    type State = [f64; 2];

    const ENV_ID: &'static str = "MountainCar-v0";
    const OBS_DIM: usize = 2;
    const IDLE_ACTION: usize = 1;

    fn with_len(n: usize) -> Self {
        Self {
            position: vec![0.0; n],
            velocity: vec![0.0; n],
            cos: vec![0.0; n],
        }
    }

    fn len(&self) -> usize {
        self.position.len()
    }

    fn check_action(action: &usize) -> Result<()> {
        check_discrete_action(*action, 3)
    }

    fn initial_state(rng: &mut NpRandom) -> [f64; 2] {
        initial_state(rng)
    }

    fn get(&self, i: usize) -> [f64; 2] {
        [self.position[i], self.velocity[i]]
    }

    fn set(&mut self, i: usize, [position, velocity]: [f64; 2]) {
        self.position[i] = position;
        self.velocity[i] = velocity;
    }

    fn step(&mut self, actions: &[usize], rewards: &mut [f64], terminated: &mut [bool]) {
        for (c, p) in self.cos.iter_mut().zip(&self.position) {
            *c = (3.0 * p).cos();
        }
        for i in 0..self.position.len() {
            let (p, v, done) =
                dynamics(self.position[i], self.velocity[i], actions[i], self.cos[i]);
            self.position[i] = p;
            self.velocity[i] = v;
            terminated[i] = done;
            rewards[i] = -1.0;
        }
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
        // Mostly pushing with the velocity (which reaches the goal), sometimes at random.
        check_kernel::<MountainCarKernel>(2000, 30, 20, |obs, rng| {
            if rng.next_f64() < 0.3 {
                rng.integers(3) as usize
            } else if obs[1] >= 0.0 {
                2
            } else {
                0
            }
        });
    }
}
