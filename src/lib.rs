//! # Cinder
//!
//! Reinforcement learning in Rust. This facade crate re-exports Cinder's member crates so that a
//! user depends on one crate:
//!
//! - [`env`] (crate `cinder-env`): a Gymnasium-style environment API (spaces, wrappers, a
//!   registry, a vector env with automatic reset, an env checker) and the five classic-control
//!   environments, bit-for-bit identical to Gymnasium 1.x for the same seed and actions;
//! - [`rl`] (crate `cinder-rl`): policy-gradient building blocks and PPO, generic over Burn's
//!   backend;
//! - [`backend`]: the concrete Burn backends compiled in, chosen by cargo features.
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
pub use cinder_rl as rl;

/// The Burn backends compiled in (cargo features), as the autodiff backends training uses. This
/// is the one place that names a concrete backend.
pub mod backend {
    /// The CPU backend (feature `ndarray`, on by default), with autodiff.
    #[cfg(feature = "ndarray")]
    pub type NdArray = burn::backend::Autodiff<burn::backend::NdArray<f32>>;

    /// The ndarray device.
    #[cfg(feature = "ndarray")]
    pub type NdArrayDevice = burn::backend::ndarray::NdArrayDevice;
}
