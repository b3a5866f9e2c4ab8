//! The registry of environment ids: `make("CartPole-v1")` gives the env as Gymnasium registers
//! it (wrapped in its [`TimeLimit`]). Users add their own envs with [`register`] (Gymnasium's
//! `gymnasium.register`): they then get [`make`], their time limit, the wrappers, the env
//! checker and Cinder's runner like the built-in ones.
//!
//! ```
//! use cinder_env::registry::{EnvSpec, make, register};
//! use cinder_env::classic_control::CartPole;
//! use cinder_env::env::Erased;
//! # use cinder_env::Env;
//!
//! // A short-episode CartPole under an id of its own.
//! register(EnvSpec::new("ShortCartPole-v0", 50, || Erased::boxed(CartPole::default())))?;
//! assert_eq!(make("ShortCartPole-v0")?.max_episode_steps(), Some(50));
//! // An id is registered once.
//! assert!(register(EnvSpec::new("ShortCartPole-v0", 50, || Erased::boxed(CartPole::default()))).is_err());
//! # Ok::<(), cinder_env::EnvError>(())
//! ```

use crate::classic_control::{Acrobot, CartPole, MountainCar, MountainCarContinuous, Pendulum};
use crate::env::{DynEnv, Env, Erased};
use crate::error::{EnvError, Result};
use crate::wrappers::TimeLimit;
use std::sync::{Arc, RwLock};

/// How a registered env is built (without its time limit).
#[derive(Clone)]
enum Constructor {
    /// A built-in env.
    Builtin(fn() -> DynEnv),
    /// A user's env.
    User(Arc<dyn Fn() -> DynEnv + Send + Sync>),
}

/// How an id is registered: its time limit and the return at which it counts as solved.
#[derive(Clone)]
pub struct EnvSpec {
    /// The id, e.g. `"CartPole-v1"`.
    pub id: &'static str,
    /// The `TimeLimit` that [`make`] applies.
    pub max_episode_steps: u64,
    /// Mean return over 100 episodes at which the task counts as solved, if defined.
    pub reward_threshold: Option<f64>,
    /// Frames per second of a recording (Gymnasium's `metadata["render_fps"]`).
    pub render_fps: u32,
    make_unwrapped: Constructor,
}

impl std::fmt::Debug for EnvSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvSpec")
            .field("id", &self.id)
            .field("max_episode_steps", &self.max_episode_steps)
            .field("reward_threshold", &self.reward_threshold)
            .field("render_fps", &self.render_fps)
            .finish_non_exhaustive()
    }
}

impl EnvSpec {
    /// A spec for [`register`]: the id, the time limit [`make`] applies (at least 1 step; the
    /// learners and evaluation need episodes that end), and how to build the env without it.
    /// The id is kept for the life of the program.
    pub fn new(
        id: impl Into<String>,
        max_episode_steps: u64,
        constructor: impl Fn() -> DynEnv + Send + Sync + 'static,
    ) -> Self {
        Self {
            id: Box::leak(id.into().into_boxed_str()),
            max_episode_steps,
            reward_threshold: None,
            render_fps: 30,
            make_unwrapped: Constructor::User(Arc::new(constructor)),
        }
    }

    /// The same spec with another frame rate for recordings (30 by default).
    pub fn with_render_fps(mut self, fps: u32) -> Self {
        self.render_fps = fps.max(1);
        self
    }

    /// The same spec with the return at which the env counts as solved (the runner records
    /// when training reaches it).
    pub fn with_reward_threshold(mut self, threshold: f64) -> Self {
        self.reward_threshold = Some(threshold);
        self
    }

    /// The env without its time limit.
    pub fn make_unwrapped(&self) -> DynEnv {
        match &self.make_unwrapped {
            Constructor::Builtin(f) => f(),
            Constructor::User(f) => f(),
        }
    }

    /// The env as registered: wrapped in its `TimeLimit`.
    #[allow(
        clippy::expect_used,
        reason = "register() and the built-in constants keep limits >= 1"
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
    render_fps: 50,
    make_unwrapped: Constructor::Builtin(boxed::<CartPole>),
};
/// Acrobot-v1: 500 steps, solved at -100.
pub const ACROBOT_V1: EnvSpec = EnvSpec {
    id: "Acrobot-v1",
    max_episode_steps: 500,
    reward_threshold: Some(-100.0),
    render_fps: 15,
    make_unwrapped: Constructor::Builtin(boxed::<Acrobot>),
};
/// MountainCar-v0: 200 steps, solved at -110.
pub const MOUNTAIN_CAR_V0: EnvSpec = EnvSpec {
    id: "MountainCar-v0",
    max_episode_steps: 200,
    reward_threshold: Some(-110.0),
    render_fps: 30,
    make_unwrapped: Constructor::Builtin(boxed::<MountainCar>),
};
/// MountainCarContinuous-v0: 999 steps, solved at 90.
pub const MOUNTAIN_CAR_CONTINUOUS_V0: EnvSpec = EnvSpec {
    id: "MountainCarContinuous-v0",
    max_episode_steps: 999,
    reward_threshold: Some(90.0),
    render_fps: 30,
    make_unwrapped: Constructor::Builtin(boxed::<MountainCarContinuous>),
};
/// Pendulum-v1: 200 steps, no reward threshold.
pub const PENDULUM_V1: EnvSpec = EnvSpec {
    id: "Pendulum-v1",
    max_episode_steps: 200,
    reward_threshold: None,
    render_fps: 30,
    make_unwrapped: Constructor::Builtin(boxed::<Pendulum>),
};

/// The built-in envs (Gymnasium's classic control).
pub const REGISTRY: [EnvSpec; 5] = [
    CARTPOLE_V1,
    ACROBOT_V1,
    MOUNTAIN_CAR_V0,
    MOUNTAIN_CAR_CONTINUOUS_V0,
    PENDULUM_V1,
];

/// Envs registered by the program, in registration order.
static USER_ENVS: RwLock<Vec<EnvSpec>> = RwLock::new(Vec::new());

/// Runs `f` on the user-registered envs (a poisoned lock, left by a panicking thread, still
/// holds a valid list: registration pushes one complete spec).
fn with_user_envs<T>(f: impl FnOnce(&Vec<EnvSpec>) -> T) -> T {
    let guard = USER_ENVS.read().unwrap_or_else(|e| e.into_inner());
    f(&guard)
}

/// Registers a user's env under `spec.id` (Gymnasium's `register`): from then on [`make`],
/// [`spec`] and [`ids`] know it, and so do Cinder's runner and command-line helpers in this
/// program. Errors: an id already registered (built-in or not), an empty id or one with
/// whitespace, a time limit of 0.
pub fn register(spec: EnvSpec) -> Result<()> {
    if spec.id.is_empty() || spec.id.chars().any(char::is_whitespace) {
        return Err(EnvError::InvalidConfig(format!(
            "env id {:?} must be non-empty and without whitespace (e.g. \"GridWalk-v0\")",
            spec.id
        )));
    }
    if spec.max_episode_steps == 0 {
        return Err(EnvError::InvalidConfig(format!(
            "{}: max_episode_steps must be at least 1",
            spec.id
        )));
    }
    let mut user = USER_ENVS.write().unwrap_or_else(|e| e.into_inner());
    if REGISTRY.iter().chain(user.iter()).any(|s| s.id == spec.id) {
        return Err(EnvError::DuplicateEnv {
            id: spec.id.to_string(),
        });
    }
    user.push(spec);
    Ok(())
}

/// The registered ids: the built-in ones, then the user's in registration order.
pub fn ids() -> Vec<&'static str> {
    let mut ids: Vec<&'static str> = REGISTRY.iter().map(|s| s.id).collect();
    with_user_envs(|user| ids.extend(user.iter().map(|s| s.id)));
    ids
}

/// The spec of `id`, or [`EnvError::UnknownEnv`] listing the known ids.
pub fn spec(id: &str) -> Result<EnvSpec> {
    if let Some(spec) = REGISTRY.iter().find(|s| s.id == id) {
        return Ok(spec.clone());
    }
    with_user_envs(|user| user.iter().find(|s| s.id == id).cloned()).ok_or_else(|| {
        EnvError::UnknownEnv {
            id: id.to_string(),
            known: ids().into_iter().map(String::from).collect(),
        }
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
    fn user_envs_register_once_and_make_like_built_in_ones() {
        let short = || EnvSpec::new("UnitShortPendulum-v0", 7, boxed::<Pendulum>);
        register(short().with_reward_threshold(-1.0)).unwrap();
        assert!(ids().contains(&"UnitShortPendulum-v0"));
        let mut env = make("UnitShortPendulum-v0").unwrap();
        assert_eq!(env.max_episode_steps(), Some(7));
        env.reset(Some(0)).unwrap();
        let mut steps = 0;
        loop {
            steps += 1;
            if env
                .step(&crate::Value::Continuous(vec![0.0]))
                .unwrap()
                .truncated
            {
                break;
            }
        }
        assert_eq!(steps, 7);
        assert_eq!(
            spec("UnitShortPendulum-v0").unwrap().reward_threshold,
            Some(-1.0)
        );
        let err = register(short()).unwrap_err();
        assert!(
            matches!(&err, EnvError::DuplicateEnv { id } if id == "UnitShortPendulum-v0"),
            "{err}"
        );
        assert!(register(EnvSpec::new("CartPole-v1", 500, boxed::<CartPole>)).is_err());
        assert!(register(EnvSpec::new("", 5, boxed::<CartPole>)).is_err());
        assert!(register(EnvSpec::new("Zero-v0", 0, boxed::<CartPole>)).is_err());
        assert!(make("Zero-v0").is_err());
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
