//! MountainCar-v0, ported from Gymnasium 1.x `classic_control/mountain_car.py`.
//!
//! ## Description
//!
//! A car is placed stochastically at the bottom of a sinusoidal valley (Moore, 1990). The only
//! possible actions are accelerations in either direction; the engine is too weak to climb the
//! right hill directly, so the car must build momentum.
//!
//! ## Action Space
//!
//! `Discrete(3)`: `0` accelerate left, `1` do not accelerate, `2` accelerate right.
//!
//! ## Observation Space
//!
//! `Box(2)` of float32:
//!
//! | Num | Observation                 | Min   | Max  |
//! |-----|-----------------------------|-------|------|
//! | 0   | position of the car (m)     | -1.2  | 0.6  |
//! | 1   | velocity of the car         | -0.07 | 0.07 |
//!
//! ## Rewards
//!
//! -1 for every step, including the one that reaches the goal.
//!
//! ## Starting State
//!
//! Position uniform in [-0.6, -0.4), velocity 0.
//!
//! ## Episode End
//!
//! 1. Termination: position >= 0.5 (the flag on the right hill) with velocity >= 0.
//! 2. Truncation: 200 steps (the registered `TimeLimit` of MountainCar-v0).
//!
//! ## Version History
//!
//! - v0: initial version (ported here).
//!
//! ## Porting notes
//!
//! Float64 throughout; semi-implicit Euler (the position moves with the new velocity); hitting
//! the left wall stops the car.

use crate::Env;
use crate::env::{EpisodePhase, Info, Step, check_discrete_action};
use crate::error::Result;
use crate::rng::{EnvRng, NpRandom};
use crate::space::{BoxSpace, Discrete, Space};

/// Leftmost position.
pub const MIN_POSITION: f64 = -1.2;
/// Rightmost position.
pub const MAX_POSITION: f64 = 0.6;
/// Maximum absolute velocity.
pub const MAX_SPEED: f64 = 0.07;
/// Position of the goal.
pub const GOAL_POSITION: f64 = 0.5;
/// Minimum velocity at the goal.
pub const GOAL_VELOCITY: f64 = 0.0;
/// Engine force per unit of action.
pub const FORCE: f64 = 0.001;
/// Gravity term.
pub const GRAVITY: f64 = 0.0025;

/// The MountainCar environment (without its time limit; [`make`](crate::make) adds it).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct MountainCar {
    /// `[position, velocity]`.
    state: [f64; 2],
    rng: EnvRng,
    phase: EpisodePhase,
}

impl Default for MountainCar {
    fn default() -> Self {
        Self::new()
    }
}

impl MountainCar {
    /// A new env; call `reset` before stepping.
    pub fn new() -> Self {
        Self {
            state: [0.0; 2],
            rng: EnvRng::default(),
            phase: EpisodePhase::NeedsReset,
        }
    }

    /// The physical state `[position, velocity]`.
    pub fn state(&self) -> [f64; 2] {
        self.state
    }

    /// The environment's random generator (`np_random`), once seeded.
    pub fn np_random(&self) -> Option<&NpRandom> {
        self.rng.get()
    }
}

/// NumPy's `np.clip` for a float64 scalar with ordered bounds.
fn clip(x: f64, low: f64, high: f64) -> f64 {
    if x < low {
        low
    } else if x > high {
        high
    } else {
        x
    }
}

/// The initial state: position from U(-0.6, -0.4), velocity 0.
#[inline]
pub(crate) fn initial_state(rng: &mut NpRandom) -> [f64; 2] {
    [rng.uniform(-0.6, -0.4), 0.0]
}

/// One step from `(position, velocity)` given `cos(3 * position)`, in Gymnasium's order of
/// operations: the new position, velocity and whether the goal is reached.
#[inline(always)]
pub(crate) fn dynamics(
    position: f64,
    velocity: f64,
    action: usize,
    cos_3_position: f64,
) -> (f64, f64, bool) {
    // `velocity += ...`: the increment is summed first.
    let velocity = velocity + ((action as f64 - 1.0) * FORCE + cos_3_position * (-GRAVITY));
    let velocity = clip(velocity, -MAX_SPEED, MAX_SPEED);
    let position = clip(position + velocity, MIN_POSITION, MAX_POSITION);
    let velocity = if position == MIN_POSITION && velocity < 0.0 {
        0.0
    } else {
        velocity
    };
    let terminated = position >= GOAL_POSITION && velocity >= GOAL_VELOCITY;
    (position, velocity, terminated)
}

impl Env for MountainCar {
    crate::env::serde_env_state!();

    type Obs = [f32; 2];
    type Action = usize;

    #[allow(clippy::expect_used, reason = "constant bounds, low <= high")]
    fn observation_space(&self) -> Space {
        let low = vec![MIN_POSITION as f32, -MAX_SPEED as f32];
        let high = vec![MAX_POSITION as f32, MAX_SPEED as f32];
        Space::Box(BoxSpace::new(low, high).expect("valid bounds"))
    }

    fn action_space(&self) -> Space {
        Space::Discrete(Discrete::new(3))
    }

    fn render(&self) -> Result<crate::render::Frame> {
        self.phase.check_render()?;
        crate::render::mountain_car(self.state[0], GOAL_POSITION)
    }

    fn reset(&mut self, seed: Option<u64>) -> Result<([f32; 2], Info)> {
        let rng = self.rng.reset(seed);
        self.state = initial_state(rng);
        self.phase = EpisodePhase::Running;
        Ok((self.state.map(|v| v as f32), Info::default()))
    }

    fn step(&mut self, action: &usize) -> Result<Step<[f32; 2]>> {
        check_discrete_action(*action, 3)?;
        self.phase.check_step()?;
        let [position, velocity] = self.state;
        let (position, velocity, terminated) =
            dynamics(position, velocity, *action, (3.0 * position).cos());
        self.state = [position, velocity];
        if terminated {
            self.phase = EpisodePhase::Terminated;
        }
        Ok(Step {
            obs: self.state.map(|v| v as f32),
            reward: -1.0,
            terminated,
            truncated: false,
            info: Info::default(),
        })
    }
}
