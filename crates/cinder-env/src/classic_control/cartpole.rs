//! CartPole-v1, ported from Gymnasium 1.x `classic_control/cartpole.py`.
//!
//! ## Description
//!
//! A pole is attached by an un-actuated joint to a cart, which moves along a frictionless track
//! (Barto, Sutton and Anderson, 1983). The pole starts upright; the goal is to balance it by
//! pushing the cart left or right.
//!
//! ## Action Space
//!
//! `Discrete(2)`: `0` pushes the cart to the left, `1` to the right, with a force of 10 N.
//!
//! ## Observation Space
//!
//! `Box(4)` of float32:
//!
//! | Num | Observation           | Min                 | Max               |
//! |-----|-----------------------|---------------------|-------------------|
//! | 0   | Cart Position         | -4.8                | 4.8               |
//! | 1   | Cart Velocity         | -Inf                | Inf               |
//! | 2   | Pole Angle            | ~ -0.418 rad (-24°) | ~ 0.418 rad (24°) |
//! | 3   | Pole Angular Velocity | -Inf                | Inf               |
//!
//! The episode terminates well inside these bounds (±2.4 for the position, ±12° for the angle).
//!
//! ## Rewards
//!
//! +1 for every step taken, including the terminating step.
//!
//! ## Starting State
//!
//! All four state variables are drawn uniformly from (-0.05, 0.05), in that order.
//!
//! ## Episode End
//!
//! 1. Termination: the pole angle leaves ±12° (0.2095 rad).
//! 2. Termination: the cart position leaves ±2.4.
//! 3. Truncation: 500 steps (the registered `TimeLimit` of CartPole-v1).
//!
//! ## Version History
//!
//! - v1: time limit raised to 500 (Gymnasium's current version, ported here).
//! - v0: initial version, time limit 200.
//!
//! ## Porting notes
//!
//! The state is float64 and integrated with explicit Euler (positions use the old velocities);
//! the observation is the state rounded to float32. Gymnasium lets a terminated episode be stepped
//! on (with reward 0); Cinder returns [`EnvError::EpisodeEnded`](crate::EnvError::EpisodeEnded).

use crate::Env;
use crate::env::{EpisodePhase, Info, Step, check_discrete_action};
use crate::error::Result;
use crate::rng::EnvRng;
use crate::rng::NpRandom;
use crate::space::{BoxSpace, Discrete, Space};

/// Gravity (m/s²).
pub const GRAVITY: f64 = 9.8;
/// Mass of the cart (kg).
pub const MASS_CART: f64 = 1.0;
/// Mass of the pole (kg).
pub const MASS_POLE: f64 = 0.1;
/// `MASS_POLE + MASS_CART`, computed in that order as Gymnasium does.
pub const TOTAL_MASS: f64 = MASS_POLE + MASS_CART;
/// Half the pole's length (m).
pub const LENGTH: f64 = 0.5;
/// `MASS_POLE * LENGTH`.
pub const POLEMASS_LENGTH: f64 = MASS_POLE * LENGTH;
/// Magnitude of the push (N).
pub const FORCE_MAG: f64 = 10.0;
/// Seconds between state updates.
pub const TAU: f64 = 0.02;
/// Angle at which the episode terminates: `12 * 2 * pi / 360` rad.
pub const THETA_THRESHOLD_RADIANS: f64 = 12.0 * 2.0 * std::f64::consts::PI / 360.0;
/// Cart position at which the episode terminates.
pub const X_THRESHOLD: f64 = 2.4;

/// The CartPole environment (without its time limit; [`make`](crate::make) adds it).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CartPole {
    /// `[x, x_dot, theta, theta_dot]`, float64.
    state: [f64; 4],
    rng: EnvRng,
    phase: EpisodePhase,
}

impl Default for CartPole {
    fn default() -> Self {
        Self::new()
    }
}

impl CartPole {
    /// A new env; call `reset` before stepping.
    pub fn new() -> Self {
        Self {
            state: [0.0; 4],
            rng: EnvRng::default(),
            phase: EpisodePhase::NeedsReset,
        }
    }

    /// The float64 physical state `[x, x_dot, theta, theta_dot]`.
    pub fn state(&self) -> [f64; 4] {
        self.state
    }

    /// The environment's random generator (`np_random`), once seeded.
    pub fn np_random(&self) -> Option<&NpRandom> {
        self.rng.get()
    }

    #[inline]
    fn obs(&self) -> [f32; 4] {
        self.state.map(|v| v as f32)
    }
}

/// The initial state: four draws from U(-0.05, 0.05), in the order x, x_dot, theta, theta_dot.
#[inline]
pub(crate) fn initial_state(rng: &mut NpRandom) -> [f64; 4] {
    std::array::from_fn(|_| rng.uniform(-0.05, 0.05))
}

/// The accelerations `(xacc, thetaacc)`, evaluated in Gymnasium's order of operations.
#[inline(always)]
pub(crate) fn accelerations(
    push_right: bool,
    sintheta: f64,
    costheta: f64,
    theta_dot: f64,
) -> (f64, f64) {
    let force = if push_right { FORCE_MAG } else { -FORCE_MAG };
    // np.square is a plain product.
    let temp = (force + POLEMASS_LENGTH * (theta_dot * theta_dot) * sintheta) / TOTAL_MASS;
    let thetaacc = (GRAVITY * sintheta - costheta * temp)
        / (LENGTH * (4.0 / 3.0 - MASS_POLE * (costheta * costheta) / TOTAL_MASS));
    let xacc = temp - POLEMASS_LENGTH * thetaacc * costheta / TOTAL_MASS;
    (xacc, thetaacc)
}

/// Explicit Euler (positions move with the old velocities) and the termination test.
#[inline(always)]
#[allow(clippy::manual_range_contains)] // written as Gymnasium writes it
pub(crate) fn euler(state: [f64; 4], xacc: f64, thetaacc: f64) -> ([f64; 4], bool) {
    let [x, x_dot, theta, theta_dot] = state;
    let x = x + TAU * x_dot;
    let x_dot = x_dot + TAU * xacc;
    let theta = theta + TAU * theta_dot;
    let theta_dot = theta_dot + TAU * thetaacc;
    let terminated = x < -X_THRESHOLD
        || x > X_THRESHOLD
        || theta < -THETA_THRESHOLD_RADIANS
        || theta > THETA_THRESHOLD_RADIANS;
    ([x, x_dot, theta, theta_dot], terminated)
}

/// One Euler step of the cart-pole dynamics, exactly as Gymnasium evaluates it.
/// Returns the new state and whether it is terminal.
#[inline]
pub fn cartpole_dynamics(state: [f64; 4], push_right: bool) -> ([f64; 4], bool) {
    let theta = state[2];
    let (xacc, thetaacc) = accelerations(push_right, theta.sin(), theta.cos(), state[3]);
    euler(state, xacc, thetaacc)
}

impl Env for CartPole {
    crate::env::serde_env_state!();

    type Obs = [f32; 4];
    type Action = usize;

    #[allow(clippy::expect_used, reason = "constant bounds, low <= high")]
    fn observation_space(&self) -> Space {
        let high = [
            (X_THRESHOLD * 2.0) as f32,
            f32::INFINITY,
            (THETA_THRESHOLD_RADIANS * 2.0) as f32,
            f32::INFINITY,
        ];
        Space::Box(BoxSpace::new(high.map(|h| -h).to_vec(), high.to_vec()).expect("valid bounds"))
    }

    fn action_space(&self) -> Space {
        Space::Discrete(Discrete::new(2))
    }

    fn render(&self) -> Result<crate::render::Frame> {
        self.phase.check_render()?;
        crate::render::cartpole(&self.state)
    }

    fn reset(&mut self, seed: Option<u64>) -> Result<([f32; 4], Info)> {
        self.state = initial_state(self.rng.reset(seed));
        self.phase = EpisodePhase::Running;
        Ok((self.obs(), Info::default()))
    }

    fn step(&mut self, action: &usize) -> Result<Step<[f32; 4]>> {
        check_discrete_action(*action, 2)?;
        self.phase.check_step()?;
        let (state, terminated) = cartpole_dynamics(self.state, *action == 1);
        self.state = state;
        if terminated {
            self.phase = EpisodePhase::Terminated;
        }
        Ok(Step {
            obs: self.obs(),
            reward: 1.0,
            terminated,
            truncated: false,
            info: Info::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EnvError;

    #[test]
    fn reset_matches_gymnasium_seed_42() {
        // gymnasium.make("CartPole-v1").reset(seed=42)[0]
        let mut env = CartPole::new();
        let (obs, _) = env.reset(Some(42)).unwrap();
        assert_eq!(
            obs.map(f64::from),
            [
                0.02739560417830944,
                -0.006112155970185995,
                0.03585979342460632,
                0.019736802205443382
            ]
        );
    }

    #[test]
    fn unseeded_reset_continues_the_stream() {
        // Gymnasium 1.4.0: env = gymnasium.make("CartPole-v1"); env.reset(seed=5);
        // env.reset()[0], then env.reset()[0] again.
        let mut env = CartPole::new();
        env.reset(Some(5)).unwrap();
        let (second, _) = env.reset(None).unwrap();
        assert_eq!(
            second.map(f64::from),
            [
                -0.04460693150758743,
                -0.011663111858069897,
                -0.009152679704129696,
                -0.04547248035669327
            ]
        );
        let (third, _) = env.reset(None).unwrap();
        assert_eq!(
            third.map(f64::from),
            [
                -0.04512422904372215,
                0.049917612224817276,
                0.015236911363899708,
                -0.026548979803919792
            ]
        );
    }

    #[test]
    fn bad_actions_and_order_are_errors() {
        let mut env = CartPole::new();
        assert_eq!(env.step(&0), Err(EnvError::ResetNeeded));
        env.reset(Some(0)).unwrap();
        assert_eq!(
            env.step(&2),
            Err(EnvError::ActionOutOfRange { action: 2, n: 2 })
        );
        let mut steps = 0;
        loop {
            steps += 1;
            if env.step(&1).unwrap().terminated {
                break;
            }
        }
        assert!(steps < 100);
        assert_eq!(
            env.step(&1),
            Err(EnvError::EpisodeEnded {
                reason: "terminated"
            })
        );
    }
}
