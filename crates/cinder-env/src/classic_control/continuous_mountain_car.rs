//! MountainCarContinuous-v0, ported from Gymnasium 1.x `classic_control/continuous_mountain_car.py`.
//!
//! ## Description
//!
//! The car of [`MountainCar`](super::MountainCar) with a continuous engine: a car at the
//! bottom of a sinusoidal valley must build momentum to reach the flag on the right hill.
//!
//! ## Action Space
//!
//! `Box(-1, 1, (1,))` of float32: the directional force on the car, clipped to [-1, 1] and
//! scaled by 0.0015.
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
//! `-0.1 * action²` on every step (with the action as given, before clipping), plus 100 on the
//! step that reaches the goal.
//!
//! ## Starting State
//!
//! Position uniform in [-0.6, -0.4), velocity 0.
//!
//! ## Episode End
//!
//! 1. Termination: position >= 0.45 with velocity >= 0.
//! 2. Truncation: 999 steps (the registered `TimeLimit` of MountainCarContinuous-v0).
//!
//! ## Version History
//!
//! - v0: initial version (ported here).
//!
//! ## Porting notes
//!
//! Gymnasium keeps the state as float64 after a reset but stores it as a float32 array after
//! every step, so the first step after a reset runs in float64 and later steps in float32 under
//! NumPy 2's promotion rules (Python floats are "weak": an `np.float32` combined with a Python
//! float stays float32). A clipped action becomes the Python float ±1.0, which turns the engine
//! term into float64. Each of these cases is reproduced below.

use crate::Env;
use crate::env::{EpisodePhase, Info, Step, check_continuous_action};
use crate::error::Result;
use crate::rng::{EnvRng, NpRandom};
use crate::space::{BoxSpace, Space};

/// Smallest action (the engine force is clipped to it).
pub const MIN_ACTION: f64 = -1.0;
/// Largest action.
pub const MAX_ACTION: f64 = 1.0;
/// Leftmost position.
pub const MIN_POSITION: f64 = -1.2;
/// Rightmost position.
pub const MAX_POSITION: f64 = 0.6;
/// Maximum absolute velocity.
pub const MAX_SPEED: f64 = 0.07;
/// Position of the goal (0.45, unlike the discrete version's 0.5).
pub const GOAL_POSITION: f64 = 0.45;
/// Minimum velocity at the goal.
pub const GOAL_VELOCITY: f64 = 0.0;
/// Engine power.
pub const POWER: f64 = 0.0015;

/// The MountainCarContinuous environment (without its time limit; [`make`](crate::make) adds it).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct MountainCarContinuous {
    /// `[position, velocity]`; float32 values when `state_is_f32`.
    state: [f64; 2],
    state_is_f32: bool,
    rng: EnvRng,
    phase: EpisodePhase,
}

impl Default for MountainCarContinuous {
    fn default() -> Self {
        Self::new()
    }
}

impl MountainCarContinuous {
    /// A new env; call `reset` before stepping.
    pub fn new() -> Self {
        Self {
            state: [0.0; 2],
            state_is_f32: false,
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

/// `force * power - 0.0025 * cos(3 * position)`: an `np.float32` when the action was used as
/// is, a Python float when it was clipped to ±1.0.
#[derive(Clone, Copy)]
enum Inner {
    F32(f32),
    Py(f64),
}

impl Inner {
    fn as_f64(self) -> f64 {
        match self {
            Inner::F32(x) => f64::from(x),
            Inner::Py(x) => x,
        }
    }
    fn as_f32(self) -> f32 {
        match self {
            Inner::F32(x) => x,
            Inner::Py(x) => x as f32,
        }
    }
}

// The clamps are written out as in Gymnasium (sequential `if`s), not as `clamp`.
/// Step from a float64 state (the first step after a reset).
#[allow(clippy::manual_clamp)]
fn step_f64(state: [f64; 2], inner: Inner) -> (f64, f64, bool) {
    let [mut position, mut velocity] = state;
    velocity += inner.as_f64();
    if velocity > MAX_SPEED {
        velocity = MAX_SPEED;
    }
    if velocity < -MAX_SPEED {
        velocity = -MAX_SPEED;
    }
    position += velocity;
    if position > MAX_POSITION {
        position = MAX_POSITION;
    }
    if position < MIN_POSITION {
        position = MIN_POSITION;
    }
    if position == MIN_POSITION && velocity < 0.0 {
        velocity = 0.0;
    }
    let terminated = position >= GOAL_POSITION && velocity >= GOAL_VELOCITY;
    (position, velocity, terminated)
}

/// Step from a float32 state: every operation runs in float32, Python constants rounded.
#[allow(clippy::manual_clamp)]
fn step_f32(state: [f64; 2], inner: Inner) -> (f64, f64, bool) {
    let mut position = state[0] as f32;
    let mut velocity = state[1] as f32;
    velocity += inner.as_f32();
    if velocity > MAX_SPEED as f32 {
        velocity = MAX_SPEED as f32;
    }
    if velocity < -MAX_SPEED as f32 {
        velocity = -MAX_SPEED as f32;
    }
    position += velocity;
    if position > MAX_POSITION as f32 {
        position = MAX_POSITION as f32;
    }
    if position < MIN_POSITION as f32 {
        position = MIN_POSITION as f32;
    }
    if position == MIN_POSITION as f32 && velocity < 0.0 {
        velocity = 0.0;
    }
    let terminated = position >= GOAL_POSITION as f32 && velocity >= GOAL_VELOCITY as f32;
    (f64::from(position), f64::from(velocity), terminated)
}

/// The initial state: position from U(-0.6, -0.4), velocity 0 (float64 until the first step).
#[inline]
pub(crate) fn initial_state(rng: &mut NpRandom) -> [f64; 2] {
    [rng.uniform(-0.6, -0.4), 0.0]
}

/// One step from `state` (holding float32 values when `state_is_f32`, as after any step) with
/// the unclipped action `a0`, in Gymnasium's types and order of operations: the new state
/// (float32 values), the reward and whether the goal is reached.
#[inline]
pub(crate) fn dynamics(state: [f64; 2], state_is_f32: bool, a0: f32) -> ([f64; 2], f64, bool) {
    // `3 * position` is a float32 product once the state is float32; math.cos is float64.
    let three_p = if state_is_f32 {
        f64::from(3.0 * state[0] as f32)
    } else {
        3.0 * state[0]
    };
    let gravity_term = 0.0025 * three_p.cos();
    // force = min(max(a0, -1.0), 1.0): a0 itself (float32) unless clipped to a Python float.
    let inner = if f64::from(a0) < MIN_ACTION {
        Inner::Py(MIN_ACTION * POWER - gravity_term)
    } else if f64::from(a0) > MAX_ACTION {
        Inner::Py(MAX_ACTION * POWER - gravity_term)
    } else {
        Inner::F32(a0 * POWER as f32 - gravity_term as f32)
    };
    let (position, velocity, terminated) = if state_is_f32 {
        step_f32(state, inner)
    } else {
        step_f64(state, inner)
    };
    // The reward uses the action as given: math.pow(a0, 2) of a float32 is exact in float64.
    let a = f64::from(a0);
    let reward = (if terminated { 100.0 } else { 0.0 }) - a * a * 0.1;
    let state = [f64::from(position as f32), f64::from(velocity as f32)];
    (state, reward, terminated)
}

impl Env for MountainCarContinuous {
    crate::env::serde_env_state!();

    type Obs = [f32; 2];
    type Action = [f32; 1];

    #[allow(clippy::expect_used, reason = "constant bounds, low <= high")]
    fn observation_space(&self) -> Space {
        let low = vec![MIN_POSITION as f32, -MAX_SPEED as f32];
        let high = vec![MAX_POSITION as f32, MAX_SPEED as f32];
        Space::Box(BoxSpace::new(low, high).expect("valid bounds"))
    }

    fn action_space(&self) -> Space {
        Space::Box(BoxSpace::uniform_bounds(
            MIN_ACTION as f32,
            MAX_ACTION as f32,
            1,
        ))
    }

    fn render(&self) -> Result<crate::render::Frame> {
        self.phase.check_render()?;
        crate::render::mountain_car(self.state[0], GOAL_POSITION)
    }

    fn reset(&mut self, seed: Option<u64>) -> Result<([f32; 2], Info)> {
        let rng = self.rng.reset(seed);
        self.state = initial_state(rng);
        self.state_is_f32 = false;
        self.phase = EpisodePhase::Running;
        Ok((self.state.map(|v| v as f32), Info::default()))
    }

    fn step(&mut self, action: &[f32; 1]) -> Result<Step<[f32; 2]>> {
        check_continuous_action(action, 1)?;
        self.phase.check_step()?;
        let (state, reward, terminated) = dynamics(self.state, self.state_is_f32, action[0]);
        self.state = state;
        self.state_is_f32 = true;
        if terminated {
            self.phase = EpisodePhase::Terminated;
        }
        Ok(Step {
            obs: self.state.map(|v| v as f32),
            reward,
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
    fn out_of_range_actions_are_clipped_but_charged_in_full() {
        let mut env = MountainCarContinuous::new();
        env.reset(Some(0)).unwrap();
        let step = env.step(&[5.0]).unwrap();
        assert_eq!(step.reward, -2.5);
        let mut other = MountainCarContinuous::new();
        other.reset(Some(0)).unwrap();
        let clipped = other.step(&[1.0]).unwrap();
        assert_eq!(step.obs, clipped.obs);
    }

    #[test]
    fn non_finite_actions_are_errors() {
        let mut env = MountainCarContinuous::new();
        env.reset(Some(0)).unwrap();
        assert!(matches!(
            env.step(&[f32::NAN]),
            Err(EnvError::NonFiniteAction { index: 0, .. })
        ));
        assert!(matches!(
            env.step(&[f32::INFINITY]),
            Err(EnvError::NonFiniteAction { .. })
        ));
    }
}
