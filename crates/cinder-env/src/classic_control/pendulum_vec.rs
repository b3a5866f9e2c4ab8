//! `PendulumVec`: many Pendulum-v1 envs in struct-of-arrays layout.
//!
//! Bit-identical to `SyncVectorEnv` over `TimeLimit(Pendulum, 200)`. The sine and cosine of each
//! angle are computed once, in their own pass: the cosine and sine go into the observation, and
//! the same sine drives the next step's dynamics (the single env takes it twice).

use super::pendulum::{Pendulum, clip_torque, dynamics, initial_state};
use crate::env::check_continuous_action;
use crate::error::Result;
use crate::rng::NpRandom;
use crate::soa_vector::{SoaKernel, SoaVectorEnv};

/// `num_envs` Pendulum-v1 envs with their time limit, stepped together
/// ([`SoaVectorEnv::new`], [`SoaVectorEnv::with_threads`]).
pub type PendulumVec = SoaVectorEnv<PendulumKernel>;

/// Pendulum's dynamics over many sub-envs: one array per state variable.
#[derive(Debug, Clone, Default)]
pub struct PendulumKernel {
    theta: Vec<f64>,
    theta_dot: Vec<f64>,
    // `sin(theta)` and `cos(theta)`, kept in step with `theta`.
    sin: Vec<f64>,
    cos: Vec<f64>,
}

impl PendulumKernel {
    fn trig_pass(&mut self) {
        for ((s, c), theta) in self.sin.iter_mut().zip(&mut self.cos).zip(&self.theta) {
            *s = theta.sin();
            *c = theta.cos();
        }
    }
}

impl SoaKernel for PendulumKernel {
    type Env = Pendulum;
    type Action = [f32; 1];
    /// `[theta, theta_dot]`.
    type State = [f64; 2];

    const ENV_ID: &'static str = "Pendulum-v1";
    const OBS_DIM: usize = 3;
    const IDLE_ACTION: [f32; 1] = [0.0];

    fn with_len(n: usize) -> Self {
        Self {
            theta: vec![0.0; n],
            theta_dot: vec![0.0; n],
            sin: vec![0.0; n],
            cos: vec![1.0; n],
        }
    }

    fn len(&self) -> usize {
        self.theta.len()
    }

    fn check_action(action: &[f32; 1]) -> Result<()> {
        check_continuous_action(action, 1)
    }

    fn initial_state(rng: &mut NpRandom) -> [f64; 2] {
        initial_state(rng)
    }

    fn get(&self, i: usize) -> [f64; 2] {
        [self.theta[i], self.theta_dot[i]]
    }

    fn set(&mut self, i: usize, [theta, theta_dot]: [f64; 2]) {
        self.theta[i] = theta;
        self.theta_dot[i] = theta_dot;
        self.sin[i] = theta.sin();
        self.cos[i] = theta.cos();
    }

    fn step(&mut self, actions: &[[f32; 1]], rewards: &mut [f64], terminated: &mut [bool]) {
        for i in 0..self.theta.len() {
            let u = clip_torque(actions[i][0]);
            let (theta, theta_dot, costs) =
                dynamics(self.theta[i], self.theta_dot[i], self.sin[i], u);
            self.theta[i] = theta;
            self.theta_dot[i] = theta_dot;
            rewards[i] = -costs;
        }
        terminated.fill(false);
        self.trig_pass();
    }

    #[inline]
    fn write_obs(&self, i: usize, row: &mut [f32]) {
        row[0] = self.cos[i] as f32;
        row[1] = self.sin[i] as f32;
        row[2] = self.theta_dot[i] as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soa_vector::tests::check_kernel;

    #[test]
    fn matches_sync_vector_env() {
        // Torques beyond the bounds (clipped) as well as inside; every episode is truncated.
        check_kernel::<PendulumKernel>(
            1000,
            30,
            20,
            |_, rng| [(rng.next_f64() * 6.0 - 3.0) as f32],
        );
    }
}
