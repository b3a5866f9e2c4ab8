//! The registry of environment ids: `make("CartPole-v1")` gives the env as Gymnasium registers
//! it (wrapped in its [`TimeLimit`]).

use crate::classic_control::{Acrobot, CartPole, MountainCar, MountainCarContinuous, Pendulum};
use crate::env::{DynEnv, Env, Erased};
use crate::error::{EnvError, Result};
use crate::wrappers::TimeLimit;

/// How an id is registered: its time limit and the return at which it counts as solved.
#[derive(Debug, Clone, Copy)]
pub struct EnvSpec {
    /// The id, e.g. `"CartPole-v1"`.
    pub id: &'static str,
    /// The `TimeLimit` that [`make`] applies.
    pub max_episode_steps: u64,
    /// Mean return over 100 episodes at which the task counts as solved, if defined.
    pub reward_threshold: Option<f64>,
    make_unwrapped: fn() -> DynEnv,
}

impl EnvSpec {
    /// The env without its time limit.
    pub fn make_unwrapped(&self) -> DynEnv {
        (self.make_unwrapped)()
    }

    /// The env as registered: wrapped in its `TimeLimit`.
    #[allow(
        clippy::expect_used,
        reason = "the registered limits are constants >= 1"
    )]
    pub fn make(&self) -> DynEnv {
        let env = self.make_unwrapped();
        Erased::boxed(
            TimeLimit::new(env, self.max_episode_steps).expect("registered limits are positive"),
        )
    }
}

fn boxed<E: Env + Default + Send + 'static>() -> DynEnv {
    Erased::boxed(E::default())
}

/// CartPole-v1: 500 steps, solved at 475.
pub const CARTPOLE_V1: EnvSpec = EnvSpec {
    id: "CartPole-v1",
    max_episode_steps: 500,
    reward_threshold: Some(475.0),
    make_unwrapped: boxed::<CartPole>,
};
/// Acrobot-v1: 500 steps, solved at -100.
pub const ACROBOT_V1: EnvSpec = EnvSpec {
    id: "Acrobot-v1",
    max_episode_steps: 500,
    reward_threshold: Some(-100.0),
    make_unwrapped: boxed::<Acrobot>,
};
/// MountainCar-v0: 200 steps, solved at -110.
pub const MOUNTAIN_CAR_V0: EnvSpec = EnvSpec {
    id: "MountainCar-v0",
    max_episode_steps: 200,
    reward_threshold: Some(-110.0),
    make_unwrapped: boxed::<MountainCar>,
};
/// MountainCarContinuous-v0: 999 steps, solved at 90.
pub const MOUNTAIN_CAR_CONTINUOUS_V0: EnvSpec = EnvSpec {
    id: "MountainCarContinuous-v0",
    max_episode_steps: 999,
    reward_threshold: Some(90.0),
    make_unwrapped: boxed::<MountainCarContinuous>,
};
/// Pendulum-v1: 200 steps, no reward threshold.
pub const PENDULUM_V1: EnvSpec = EnvSpec {
    id: "Pendulum-v1",
    max_episode_steps: 200,
    reward_threshold: None,
    make_unwrapped: boxed::<Pendulum>,
};

/// Every registered env.
pub const REGISTRY: [EnvSpec; 5] = [
    CARTPOLE_V1,
    ACROBOT_V1,
    MOUNTAIN_CAR_V0,
    MOUNTAIN_CAR_CONTINUOUS_V0,
    PENDULUM_V1,
];

/// The registered ids.
pub fn ids() -> Vec<&'static str> {
    REGISTRY.iter().map(|s| s.id).collect()
}

/// The spec of `id`, or [`EnvError::UnknownEnv`] listing the known ids.
pub fn spec(id: &str) -> Result<&'static EnvSpec> {
    REGISTRY
        .iter()
        .find(|s| s.id == id)
        .ok_or_else(|| EnvError::UnknownEnv {
            id: id.to_string(),
            known: ids().into_iter().map(String::from).collect(),
        })
}

/// The env registered as `id`, wrapped in its time limit (Gymnasium's `gym.make(id)`).
///
/// ```
/// let mut env = cinder_env::make("Pendulum-v1")?;
/// assert_eq!(env.max_episode_steps(), Some(200));
/// assert!(cinder_env::make("Pendulum-v9").is_err());
/// # use cinder_env::Env;
/// # Ok::<(), cinder_env::EnvError>(())
/// ```
pub fn make(id: &str) -> Result<DynEnv> {
    Ok(spec(id)?.make())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_id_lists_known_ones() {
        let err = make("CartPole-v0").err().unwrap();
        let message = err.to_string();
        assert!(message.contains("CartPole-v0"));
        for id in ids() {
            assert!(message.contains(id), "{message}");
        }
    }

    #[test]
    fn registered_limits_match_gymnasium() {
        let limits: Vec<(&str, u64)> = REGISTRY
            .iter()
            .map(|s| (s.id, s.max_episode_steps))
            .collect();
        assert_eq!(
            limits,
            [
                ("CartPole-v1", 500),
                ("Acrobot-v1", 500),
                ("MountainCar-v0", 200),
                ("MountainCarContinuous-v0", 999),
                ("Pendulum-v1", 200)
            ]
        );
        for s in REGISTRY {
            assert_eq!(
                make(s.id).unwrap().max_episode_steps(),
                Some(s.max_episode_steps)
            );
        }
    }
}
