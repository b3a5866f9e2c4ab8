//! The five classic-control environments of Gymnasium 1.x, numerically identical to it: the same
//! seeds give the same initial states, and the same actions the same observations (bit for bit
//! in float32), rewards and flags. `tests/gymnasium_conformance.rs` replays episodes recorded
//! from Gymnasium to check it.
//!
//! Each env also has a struct-of-arrays vector form ([`CartPoleVec`], [`AcrobotVec`],
//! [`MountainCarVec`], [`MountainCarContinuousVec`], [`PendulumVec`]; see
//! [`soa_vector`](crate::soa_vector)) that steps many copies at once with identical results.

mod acrobot;
mod acrobot_vec;
mod cartpole;
mod cartpole_vec;
mod continuous_mountain_car;
mod continuous_mountain_car_vec;
mod mountain_car;
mod mountain_car_vec;
mod pendulum;
mod pendulum_vec;

pub use acrobot::Acrobot;
pub use acrobot_vec::{AcrobotKernel, AcrobotVec};
pub use cartpole::{CartPole, cartpole_dynamics};
pub use cartpole_vec::{CartPoleKernel, CartPoleVec};
pub use continuous_mountain_car::MountainCarContinuous;
pub use continuous_mountain_car_vec::{MountainCarContinuousKernel, MountainCarContinuousVec};
pub use mountain_car::MountainCar;
pub use mountain_car_vec::{MountainCarKernel, MountainCarVec};
pub use pendulum::{Pendulum, angle_normalize};
pub use pendulum_vec::{PendulumKernel, PendulumVec};

/// Physical constants of each env, named as in Gymnasium.
pub mod constants {
    /// CartPole constants.
    pub mod cartpole {
        pub use super::super::cartpole::{
            FORCE_MAG, GRAVITY, LENGTH, MASS_CART, MASS_POLE, POLEMASS_LENGTH, TAU,
            THETA_THRESHOLD_RADIANS, TOTAL_MASS, X_THRESHOLD,
        };
    }
    /// Acrobot constants.
    pub mod acrobot {
        pub use super::super::acrobot::{
            AVAIL_TORQUE, DT, LINK_COM_POS_1, LINK_COM_POS_2, LINK_LENGTH_1, LINK_MASS_1,
            LINK_MASS_2, LINK_MOI, MAX_VEL_1, MAX_VEL_2,
        };
    }
    /// MountainCar constants.
    pub mod mountain_car {
        pub use super::super::mountain_car::{
            FORCE, GOAL_POSITION, GOAL_VELOCITY, GRAVITY, MAX_POSITION, MAX_SPEED, MIN_POSITION,
        };
    }
    /// MountainCarContinuous constants.
    pub mod continuous_mountain_car {
        pub use super::super::continuous_mountain_car::{
            GOAL_POSITION, GOAL_VELOCITY, MAX_ACTION, MAX_POSITION, MAX_SPEED, MIN_ACTION,
            MIN_POSITION, POWER,
        };
    }
    /// Pendulum constants.
    pub mod pendulum {
        pub use super::super::pendulum::{DT, G, L, M, MAX_SPEED, MAX_TORQUE};
    }
}
