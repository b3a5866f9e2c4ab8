//! # cinder-env
//!
//! Gymnasium-style environments for Cinder, with no deep-learning dependency:
//!
//! - the [`Env`] contract (`reset(seed) -> (obs, info)`, `step(action) -> Step`), [spaces](space)
//!   (`Discrete`, `Box`), [wrappers] that each change one thing (`TimeLimit`,
//!   `RecordEpisodeStatistics`, `ClipAction`, `NormalizeObservation`, `NormalizeReward`), a [registry] of ids with [`make`], a
//!   [vector env](vector) with automatic reset, [struct-of-arrays vector envs](soa_vector) for
//!   speed, and an env checker, [`check_env`];
//! - the five [classic-control](classic_control) environments, bit for bit identical to
//!   Gymnasium 1.x: the same seed gives the same initial state, and the same actions give the same
//!   float32 observations, rewards and flags. That includes NumPy's random generator, ported in
//!   [`rng`].
//!
//! No method panics on user input: a bad action, a step before `reset` or after the end of an
//! episode, or an unknown id returns an [`EnvError`] that names the problem.
//!
//! ```
//! use cinder_env::{make, Env, Value};
//!
//! let mut env = make("CartPole-v1")?;
//! let (mut obs, _info) = env.reset(Some(0))?;
//! let mut episode_return = 0.0;
//! loop {
//!     // Push the cart towards the side the pole leans to.
//!     let action = Value::Discrete(usize::from(obs[2] + 0.5 * obs[3] > 0.0));
//!     let step = env.step(&action)?;
//!     episode_return += step.reward;
//!     obs = step.obs;
//!     if step.terminated || step.truncated {
//!         break;
//!     }
//! }
//! assert!(episode_return > 100.0);
//! # Ok::<(), cinder_env::EnvError>(())
//! ```
//!
//! Typed envs avoid the type erasure of [`make`] (no allocation per step):
//!
//! ```
//! use cinder_env::classic_control::CartPole;
//! use cinder_env::vector::{AutoresetMode, SyncVectorEnv, VectorEnv};
//! use cinder_env::wrappers::TimeLimit;
//!
//! let mut envs = SyncVectorEnv::from_fn(8, AutoresetMode::SameStep, |_| {
//!     TimeLimit::new(CartPole::new(), 500).unwrap()
//! })?;
//! envs.reset(Some(42))?;
//! let step = envs.step(&[1; 8])?;
//! assert_eq!(step.obs.len(), 8 * 4);
//! # Ok::<(), cinder_env::EnvError>(())
//! ```

// Library code returns typed errors: no unwrap, expect or panic outside tests (constants are
// allowed case by case, with the reason).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::todo,
        clippy::unimplemented
    )
)]

pub mod checker;
pub mod classic_control;
pub mod env;
pub mod error;
pub mod numerics;
pub mod registry;
pub mod render;
pub mod rng;
pub mod soa_vector;
pub mod space;
pub mod vector;
pub mod wrappers;

pub use checker::{CheckConfig, check_env, check_env_with};
pub use env::{DynEnv, Env, EnvState, EpisodeStatistics, Info, Step};
pub use error::{EnvError, Result};
pub use registry::{EnvSpec, make, register, spec};
pub use render::Frame;
pub use soa_vector::{SoaKernel, SoaVectorEnv};
pub use space::{BoxSpace, Discrete, Space, SpaceValue, Value};
pub use vector::{AutoresetMode, SyncVectorEnv, VectorEnv};
