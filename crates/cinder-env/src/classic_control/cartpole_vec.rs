//! `CartPoleVec`: many CartPole-v1 envs in struct-of-arrays layout, stepped in one pass.
//!
//! It gives exactly the results of `SyncVectorEnv` over `TimeLimit(CartPole, 500)` (same seeds,
//! same actions, same autoreset mode: bit-identical observations, rewards and flags; a test checks
//! it), faster: the state lives in one array per variable, the sines and cosines are computed in
//! one pass, and the rest of the dynamics in a second pass the compiler vectorises.

use super::cartpole::{CartPole, accelerations, euler, initial_state};
use crate::env::check_discrete_action;
use crate::error::Result;
use crate::rng::NpRandom;
use crate::soa_vector::{SoaKernel, SoaVectorEnv};

/// `num_envs` CartPole-v1 envs with their time limit, stepped together
/// ([`SoaVectorEnv::new`], [`SoaVectorEnv::with_threads`]).
pub type CartPoleVec = SoaVectorEnv<CartPoleKernel>;

/// CartPole's dynamics over many sub-envs: one array per state variable.
#[derive(Debug, Clone, Default)]
pub struct CartPoleKernel {
    x: Vec<f64>,
    x_dot: Vec<f64>,
    theta: Vec<f64>,
    theta_dot: Vec<f64>,
    // Scratch: the sines and cosines of `theta`.
    sin: Vec<f64>,
    cos: Vec<f64>,
}

impl SoaKernel for CartPoleKernel {
    type Env = CartPole;
    type Action = usize;
    /// `[x, x_dot, theta, theta_dot]`.
    type State = [f64; 4];

    const ENV_ID: &'static str = "CartPole-v1";
    const OBS_DIM: usize = 4;
    const IDLE_ACTION: usize = 0;

    fn with_len(n: usize) -> Self {
        Self {
            x: vec![0.0; n],
            x_dot: vec![0.0; n],
            theta: vec![0.0; n],
            theta_dot: vec![0.0; n],
            sin: vec![0.0; n],
            cos: vec![0.0; n],
        }
    }

    fn len(&self) -> usize {
        self.x.len()
    }

    fn check_action(action: &usize) -> Result<()> {
        check_discrete_action(*action, 2)
    }

    fn initial_state(rng: &mut NpRandom) -> [f64; 4] {
        initial_state(rng)
    }

    fn get(&self, i: usize) -> [f64; 4] {
        [self.x[i], self.x_dot[i], self.theta[i], self.theta_dot[i]]
    }

    fn set(&mut self, i: usize, [x, x_dot, theta, theta_dot]: [f64; 4]) {
        self.x[i] = x;
        self.x_dot[i] = x_dot;
        self.theta[i] = theta;
        self.theta_dot[i] = theta_dot;
    }

    fn step(&mut self, actions: &[usize], rewards: &mut [f64], terminated: &mut [bool]) {
        // Pass 1: sines and cosines (libm, as Gymnasium's numpy calls).
        for ((s, c), theta) in self.sin.iter_mut().zip(&mut self.cos).zip(&self.theta) {
            *s = theta.sin();
            *c = theta.cos();
        }
        // Pass 2: the rest of the dynamics, branch-free over all sub-envs (vectorised).
        for i in 0..self.x.len() {
            let (xacc, thetaacc) =
                accelerations(actions[i] == 1, self.sin[i], self.cos[i], self.theta_dot[i]);
            let ([x, x_dot, theta, theta_dot], done) = euler(self.get(i), xacc, thetaacc);
            self.set(i, [x, x_dot, theta, theta_dot]);
            terminated[i] = done;
            rewards[i] = 1.0;
        }
    }

    #[inline]
    fn write_obs(&self, i: usize, row: &mut [f32]) {
        row[0] = self.x[i] as f32;
        row[1] = self.x_dot[i] as f32;
        row[2] = self.theta[i] as f32;
        row[3] = self.theta_dot[i] as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::EnvError;
    use crate::soa_vector::tests::check_kernel;
    use crate::vector::{AutoresetMode, VectorEnv};

    #[test]
    fn matches_sync_vector_env() {
        // Mostly-balancing actions so that some episodes reach the time limit.
        check_kernel::<CartPoleKernel>(3000, 40, 20, |obs, rng| {
            if rng.next_f64() < 0.2 {
                rng.integers(2) as usize
            } else {
                usize::from(obs[2] + 0.5 * obs[3] > 0.0)
            }
        });
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
        assert!(
            CartPoleVec::new(2, AutoresetMode::SameStep)
                .unwrap()
                .with_threads(0)
                .is_err()
        );
    }
}
