//! Pendulum-v1, ported from Gymnasium 1.x `classic_control/pendulum.py`.
//!
//! ## Description
//!
//! The inverted pendulum swing-up problem: a pendulum attached at one end to a fixed point
//! starts in a random position, and the goal is to apply torque on its free end to swing it into
//! an upright position, with its centre of gravity right above the fixed point.
//!
//! ## Action Space
//!
//! `Box(-2, 2, (1,))` of float32: the torque applied to the free end (clipped to [-2, 2]).
//!
//! ## Observation Space
//!
//! `Box(3)` of float32:
//!
//! | Num | Observation      | Min  | Max |
//! |-----|------------------|------|-----|
//! | 0   | x = cos(theta)   | -1.0 | 1.0 |
//! | 1   | y = sin(theta)   | -1.0 | 1.0 |
//! | 2   | Angular Velocity | -8.0 | 8.0 |
//!
//! ## Rewards
//!
//! `-(theta² + 0.1 * theta_dt² + 0.001 * torque²)`, with theta normalised into [-pi, pi) (0 is
//! upright) and the clipped torque, from the state before the step. The minimum is about
//! -16.27, the maximum 0.
//!
//! ## Starting State
//!
//! Angle uniform in [-pi, pi), angular velocity uniform in [-1, 1).
//!
//! ## Episode End
//!
//! Never terminates; truncated at 200 steps (the registered `TimeLimit` of Pendulum-v1).
//!
//! ## Version History
//!
//! - v1: simpler transition dynamics (semi-implicit Euler), ported here.
//! - v0: initial version.
//!
//! ## Porting notes
//!
//! The state is float64, but the clipped float32 torque keeps the torque terms in float32
//! (`0.001 * u**2` with `u**2` from libm `powf`, and `3.0 * u`); runtime float64 squares use libm
//! `pow`. The angle itself is never wrapped.

use crate::Env;
use crate::env::{EpisodePhase, Info, Step, check_continuous_action};
use crate::error::Result;
use crate::numerics::{pow2, powf2};
use crate::rng::{EnvRng, NpRandom};
use crate::space::{BoxSpace, Space};
use std::f64::consts::PI;

/// Maximum angular speed.
pub const MAX_SPEED: f64 = 8.0;
/// Maximum torque.
pub const MAX_TORQUE: f64 = 2.0;
/// Time step (s).
pub const DT: f64 = 0.05;
/// Gravity.
pub const G: f64 = 10.0;
/// Mass.
pub const M: f64 = 1.0;
/// Length.
pub const L: f64 = 1.0;

/// The Pendulum environment (without its time limit; [`make`](crate::make) adds it).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Pendulum {
    /// `[theta, theta_dot]`.
    state: [f64; 2],
    rng: EnvRng,
    phase: EpisodePhase,
    /// The torque of the last step (clipped), drawn by `render`; `None` after a reset.
    #[serde(default)]
    last_u: Option<f32>,
}

impl Default for Pendulum {
    fn default() -> Self {
        Self::new()
    }
}

/// Gymnasium's `angle_normalize`: `((x + pi) % (2 * pi)) - pi` with Python's floored modulo.
#[inline]
pub fn angle_normalize(x: f64) -> f64 {
    let shifted = x + PI;
    // The modulo of a value already in [0, 2 pi) is the value itself (fmod is exact): skip it.
    if (0.0..2.0 * PI).contains(&shifted) {
        shifted - PI
    } else {
        shifted.rem_euclid(2.0 * PI) - PI
    }
}

/// The torque applied: the action clipped to `[-MAX_TORQUE, MAX_TORQUE]` in float32.
#[inline(always)]
pub(crate) fn clip_torque(action: f32) -> f32 {
    action.clamp(-MAX_TORQUE as f32, MAX_TORQUE as f32)
}

/// The initial state: `theta` from U(-pi, pi), then `theta_dot` from U(-1, 1).
#[inline]
pub(crate) fn initial_state(rng: &mut NpRandom) -> [f64; 2] {
    let theta = rng.uniform(-PI, PI);
    let theta_dot = rng.uniform(-1.0, 1.0);
    [theta, theta_dot]
}

/// One step from `(th, thdot)` given `sin(th)` and the clipped torque `u`, in Gymnasium's order
/// of operations: the new angle, the new angular velocity and the step's cost (minus the reward).
#[inline(always)]
pub(crate) fn dynamics(th: f64, thdot: f64, sin_th: f64, u: f32) -> (f64, f64, f64) {
    let torque_cost = 0.001_f32 * powf2(u);
    let costs = pow2(angle_normalize(th)) + 0.1 * pow2(thdot) + f64::from(torque_cost);
    let torque_term = 3.0 / (M * L * L);
    let newthdot = thdot + (3.0 * G / (2.0 * L) * sin_th + f64::from(torque_term as f32 * u)) * DT;
    let newthdot = newthdot.clamp(-MAX_SPEED, MAX_SPEED);
    let newth = th + newthdot * DT;
    (newth, newthdot, costs)
}

impl Pendulum {
    /// A new env; call `reset` before stepping.
    pub fn new() -> Self {
        Self {
            state: [0.0; 2],
            rng: EnvRng::default(),
            phase: EpisodePhase::NeedsReset,
            last_u: None,
        }
    }

    /// The physical state `[theta, theta_dot]`.
    pub fn state(&self) -> [f64; 2] {
        self.state
    }

    /// The environment's random generator (`np_random`), once seeded.
    pub fn np_random(&self) -> Option<&NpRandom> {
        self.rng.get()
    }

    fn obs(&self) -> [f32; 3] {
        let [theta, theta_dot] = self.state;
        [theta.cos() as f32, theta.sin() as f32, theta_dot as f32]
    }
}

impl Env for Pendulum {
    crate::env::serde_env_state!();

    type Obs = [f32; 3];
    type Action = [f32; 1];

    #[allow(clippy::expect_used, reason = "constant bounds, low <= high")]
    fn observation_space(&self) -> Space {
        let high = vec![1.0, 1.0, MAX_SPEED as f32];
        let low = high.iter().map(|h| -h).collect();
        Space::Box(BoxSpace::new(low, high).expect("valid bounds"))
    }

    fn action_space(&self) -> Space {
        Space::Box(BoxSpace::uniform_bounds(
            -MAX_TORQUE as f32,
            MAX_TORQUE as f32,
            1,
        ))
    }

    fn render(&self) -> Result<crate::render::Frame> {
        self.phase.check_render()?;
        crate::render::pendulum(self.state[0], self.last_u)
    }

    fn reset(&mut self, seed: Option<u64>) -> Result<([f32; 3], Info)> {
        let rng = self.rng.reset(seed);
        self.state = initial_state(rng);
        self.phase = EpisodePhase::Running;
        self.last_u = None;
        Ok((self.obs(), Info::default()))
    }

    fn step(&mut self, action: &[f32; 1]) -> Result<Step<[f32; 3]>> {
        check_continuous_action(action, 1)?;
        self.phase.check_step()?;
        let [th, thdot] = self.state;
        let u = clip_torque(action[0]);
        self.last_u = Some(u);
        let (newth, newthdot, costs) = dynamics(th, thdot, th.sin(), u);
        self.state = [newth, newthdot];
        Ok(Step {
            obs: self.obs(),
            reward: -costs,
            terminated: false,
            truncated: false,
            info: Info::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn angle_normalize_is_floored_modulo() {
        assert!((angle_normalize(3.0 * PI) - (-PI)).abs() < 1e-12);
        assert!((angle_normalize(-0.5) - (-0.5)).abs() < 1e-15);
        assert!((angle_normalize(7.0) - (7.0 - 2.0 * PI)).abs() < 1e-12);
    }

    #[test]
    fn never_terminates() {
        let mut env = Pendulum::new();
        env.reset(Some(3)).unwrap();
        for _ in 0..1000 {
            let step = env.step(&[2.0]).unwrap();
            assert!(!step.terminated && !step.truncated);
        }
    }
}
