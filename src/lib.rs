//! # Cinder
//!
//! Reinforcement learning in Rust. This facade crate re-exports Cinder's member crates so that a
//! user depends on one crate:
//!
//! - [`env`] (crate `cinder-env`): a Gymnasium-style environment API (spaces, wrappers, a
//!   registry, a vector env with automatic reset, an env checker) and the five classic-control
//!   environments, bit-for-bit identical to Gymnasium 1.x for the same seed and actions.
//!
//! ```
//! use cinder::env::{make, Value};
//!
//! let mut env = make("CartPole-v1")?;
//! let (obs, _info) = env.reset(Some(42))?;
//! assert_eq!(obs.len(), 4);
//! let step = env.step(&Value::Discrete(1))?;
//! assert_eq!(step.reward, 1.0);
//! # Ok::<(), cinder::env::EnvError>(())
//! ```

pub use cinder_env as env;
