//! Acrobot-v1, ported from Gymnasium 1.x `classic_control/acrobot.py` ("book" dynamics).
//!
//! ## Description
//!
//! Two links connected linearly to form a chain, one end fixed; the joint between the links is
//! actuated (Sutton, 1996; Sutton and Barto, *Reinforcement Learning: An Introduction*). The goal
//! is to swing the free end above a height of 1 over the base, starting hanging down.
//!
//! ## Action Space
//!
//! `Discrete(3)`: torque `-1`, `0` or `+1` on the actuated joint.
//!
//! ## Observation Space
//!
//! `Box(6)` of float32:
//!
//! | Num | Observation                  | Min                 | Max               |
//! |-----|------------------------------|---------------------|-------------------|
//! | 0   | Cosine of `theta1`           | -1                  | 1                 |
//! | 1   | Sine of `theta1`             | -1                  | 1                 |
//! | 2   | Cosine of `theta2`           | -1                  | 1                 |
//! | 3   | Sine of `theta2`             | -1                  | 1                 |
//! | 4   | Angular velocity of `theta1` | ~ -12.567 (-4 * pi) | ~ 12.567 (4 * pi) |
//! | 5   | Angular velocity of `theta2` | ~ -28.274 (-9 * pi) | ~ 28.274 (9 * pi) |
//!
//! `theta1` is the angle of the first joint (0: pointing down); `theta2` is relative to the first
//! link.
//!
//! ## Rewards
//!
//! -1 for every step that does not reach the goal, 0 on the step that does.
//!
//! ## Starting State
//!
//! `theta1, theta2, dtheta1, dtheta2` drawn uniformly from (-0.1, 0.1), stored as float32.
//!
//! ## Episode End
//!
//! 1. Termination: `-cos(theta1) - cos(theta2 + theta1) > 1.0`.
//! 2. Truncation: 500 steps (the registered `TimeLimit` of Acrobot-v1).
//!
//! ## Version History
//!
//! - v1: maximum steps 500, reward threshold -100 (ported here).
//! - v0: initial version.
//!
//! ## Porting notes
//!
//! One RK4 step over 0.2 s with the torque as a fifth state component; angles wrapped into
//! `[-pi, pi]` with the same loops, velocities clamped. Runtime squares (`dtheta1**2`,
//! `dtheta2**2`, `d2**2`) go through libm `pow` as in Python. The reset state is float32, so the
//! reset observation's cosines and sines are NumPy's float32 ones.

use crate::Env;
use crate::env::{EpisodePhase, Info, Step, check_discrete_action};
use crate::error::Result;
use crate::numerics::{np_cos_f32, np_sin_f32, pow2};
use crate::rng::{EnvRng, NpRandom};
use crate::space::{BoxSpace, Discrete, Space};
use std::f64::consts::PI;

/// Integration time step (s).
pub const DT: f64 = 0.2;
/// Length of link 1 (m).
pub const LINK_LENGTH_1: f64 = 1.0;
/// Mass of link 1 (kg).
pub const LINK_MASS_1: f64 = 1.0;
/// Mass of link 2 (kg).
pub const LINK_MASS_2: f64 = 1.0;
/// Position of the centre of mass of link 1 (m).
pub const LINK_COM_POS_1: f64 = 0.5;
/// Position of the centre of mass of link 2 (m).
pub const LINK_COM_POS_2: f64 = 0.5;
/// Moment of inertia of both links.
pub const LINK_MOI: f64 = 1.0;
/// Maximum angular velocity of the first joint: `4 * pi`.
pub const MAX_VEL_1: f64 = 4.0 * PI;
/// Maximum angular velocity of the second joint: `9 * pi`.
pub const MAX_VEL_2: f64 = 9.0 * PI;
/// The torque of each action.
pub const AVAIL_TORQUE: [f64; 3] = [-1.0, 0.0, 1.0];
const GRAVITY: f64 = 9.8;

/// The Acrobot environment (without its time limit; [`make`](crate::make) adds it).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Acrobot {
    /// `[theta1, theta2, dtheta1, dtheta2]`.
    state: [f64; 4],
    /// True right after a reset, while the state holds float32 values.
    state_is_f32: bool,
    rng: EnvRng,
    phase: EpisodePhase,
}

impl Default for Acrobot {
    fn default() -> Self {
        Self::new()
    }
}

impl Acrobot {
    /// A new env; call `reset` before stepping.
    pub fn new() -> Self {
        Self {
            state: [0.0; 4],
            state_is_f32: false,
            rng: EnvRng::default(),
            phase: EpisodePhase::NeedsReset,
        }
    }

    /// The physical state `[theta1, theta2, dtheta1, dtheta2]`.
    pub fn state(&self) -> [f64; 4] {
        self.state
    }

    /// The environment's random generator (`np_random`), once seeded.
    pub fn np_random(&self) -> Option<&NpRandom> {
        self.rng.get()
    }

    fn obs(&self) -> [f32; 6] {
        observation(self.state, self.state_is_f32)
    }
}

/// The observation `[cos t1, sin t1, cos t2, sin t2, dt1, dt2]` of `state`; right after a reset
/// (`state_is_f32`) the angles are float32 and their cosines and sines NumPy's float32 ones.
#[inline]
pub(crate) fn observation(s: [f64; 4], state_is_f32: bool) -> [f32; 6] {
    if state_is_f32 {
        let (t1, t2) = (s[0] as f32, s[1] as f32);
        [
            np_cos_f32(t1),
            np_sin_f32(t1),
            np_cos_f32(t2),
            np_sin_f32(t2),
            s[2] as f32,
            s[3] as f32,
        ]
    } else {
        [
            s[0].cos() as f32,
            s[0].sin() as f32,
            s[1].cos() as f32,
            s[1].sin() as f32,
            s[2] as f32,
            s[3] as f32,
        ]
    }
}

/// The initial state: four float32 draws from U(-0.1, 0.1), widened to float64.
#[inline]
pub(crate) fn initial_state(rng: &mut NpRandom) -> [f64; 4] {
    std::array::from_fn(|_| f64::from(rng.uniform(-0.1, 0.1) as f32))
}

/// One step from `state` with `torque`: the new (wrapped and bounded) state and whether the
/// tip is above the line.
#[inline]
pub(crate) fn dynamics(s: [f64; 4], torque: f64) -> ([f64; 4], bool) {
    let ns = rk4([s[0], s[1], s[2], s[3], torque]);
    let s = [
        wrap(ns[0], -PI, PI),
        wrap(ns[1], -PI, PI),
        bound(ns[2], -MAX_VEL_1, MAX_VEL_1),
        bound(ns[3], -MAX_VEL_2, MAX_VEL_2),
    ];
    let terminated = -s[0].cos() - (s[1] + s[0]).cos() > 1.0;
    (s, terminated)
}

/// The time derivative of `[theta1, theta2, dtheta1, dtheta2, torque]` ("book" dynamics),
/// evaluated in Gymnasium's order of operations.
fn dsdt(s: [f64; 5]) -> [f64; 5] {
    let (m1, m2) = (LINK_MASS_1, LINK_MASS_2);
    let l1 = LINK_LENGTH_1;
    let (lc1, lc2) = (LINK_COM_POS_1, LINK_COM_POS_2);
    let (i1, i2) = (LINK_MOI, LINK_MOI);
    let g = GRAVITY;
    let a = s[4];
    let (theta1, theta2, dtheta1, dtheta2) = (s[0], s[1], s[2], s[3]);
    // Constant squares are exact; runtime ones use libm pow, as `x**2` does in Python.
    let d1 =
        m1 * (lc1 * lc1) + m2 * (l1 * l1 + lc2 * lc2 + 2.0 * l1 * lc2 * theta2.cos()) + i1 + i2;
    let d2 = m2 * (lc2 * lc2 + l1 * lc2 * theta2.cos()) + i2;
    let phi2 = m2 * lc2 * g * (theta1 + theta2 - PI / 2.0).cos();
    let phi1 = -m2 * l1 * lc2 * pow2(dtheta2) * theta2.sin()
        - 2.0 * m2 * l1 * lc2 * dtheta2 * dtheta1 * theta2.sin()
        + (m1 * lc1 + m2 * l1) * g * (theta1 - PI / 2.0).cos()
        + phi2;
    let ddtheta2 = (a + d2 / d1 * phi1 - m2 * l1 * lc2 * pow2(dtheta1) * theta2.sin() - phi2)
        / (m2 * (lc2 * lc2) + i2 - pow2(d2) / d1);
    let ddtheta1 = -(d2 * ddtheta2 + phi1) / d1;
    [dtheta1, dtheta2, ddtheta1, ddtheta2, 0.0]
}

/// One classical Runge-Kutta step of length [`DT`], as Gymnasium's `rk4` over `t = [0, dt]`.
fn rk4(y0: [f64; 5]) -> [f64; 5] {
    let dt = DT;
    let dt2 = dt / 2.0;
    let shift = |k: &[f64; 5], h: f64| std::array::from_fn(|i| y0[i] + h * k[i]);
    let k1 = dsdt(y0);
    let k2 = dsdt(shift(&k1, dt2));
    let k3 = dsdt(shift(&k2, dt2));
    let k4 = dsdt(shift(&k3, dt));
    std::array::from_fn(|i| y0[i] + dt / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]))
}

/// Gymnasium's `wrap`: shifts `x` by the period until it lies in `[m, big_m]`.
fn wrap(mut x: f64, m: f64, big_m: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    let diff = big_m - m;
    while x > big_m {
        x -= diff;
    }
    while x < m {
        x += diff;
    }
    x
}

/// Python's `min(max(x, m), big_m)`.
fn bound(x: f64, m: f64, big_m: f64) -> f64 {
    let lower = if m > x { m } else { x };
    if big_m < lower { big_m } else { lower }
}

impl Env for Acrobot {
    crate::env::serde_env_state!();

    type Obs = [f32; 6];
    type Action = usize;

    #[allow(clippy::expect_used, reason = "constant bounds, low <= high")]
    fn observation_space(&self) -> Space {
        let high = [1.0, 1.0, 1.0, 1.0, MAX_VEL_1 as f32, MAX_VEL_2 as f32];
        Space::Box(BoxSpace::new(high.map(|h| -h).to_vec(), high.to_vec()).expect("valid bounds"))
    }

    fn action_space(&self) -> Space {
        Space::Discrete(Discrete::new(3))
    }

    fn render(&self) -> Result<crate::render::Frame> {
        self.phase.check_render()?;
        crate::render::acrobot(&self.state)
    }

    fn reset(&mut self, seed: Option<u64>) -> Result<([f32; 6], Info)> {
        self.state = initial_state(self.rng.reset(seed));
        self.state_is_f32 = true;
        self.phase = EpisodePhase::Running;
        Ok((self.obs(), Info::default()))
    }

    fn step(&mut self, action: &usize) -> Result<Step<[f32; 6]>> {
        check_discrete_action(*action, 3)?;
        self.phase.check_step()?;
        let (state, terminated) = dynamics(self.state, AVAIL_TORQUE[*action]);
        self.state = state;
        self.state_is_f32 = false;
        if terminated {
            self.phase = EpisodePhase::Terminated;
        }
        Ok(Step {
            obs: self.obs(),
            reward: if terminated { 0.0 } else { -1.0 },
            terminated,
            truncated: false,
            info: Info::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_and_bound_follow_gymnasium() {
        assert_eq!(wrap(4.0, -PI, PI), 4.0 - 2.0 * PI);
        assert_eq!(wrap(-7.0, -PI, PI), -7.0 + 2.0 * PI);
        assert_eq!(wrap(-10.0, -PI, PI), -10.0 + 2.0 * PI + 2.0 * PI);
        assert_eq!(wrap(1.0, -PI, PI), 1.0);
        assert_eq!(bound(20.0, -MAX_VEL_1, MAX_VEL_1), MAX_VEL_1);
        assert_eq!(bound(-20.0, -MAX_VEL_1, MAX_VEL_1), -MAX_VEL_1);
    }

    #[test]
    fn action_three_is_an_error() {
        let mut env = Acrobot::new();
        env.reset(Some(0)).unwrap();
        assert!(env.step(&3).is_err());
        assert!(env.step(&2).is_ok());
    }
}
