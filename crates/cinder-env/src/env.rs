//! The environment contract, Gymnasium-shaped: `reset(seed) -> (obs, info)` and
//! `step(action) -> (obs, reward, terminated, truncated, info)`.

use crate::error::{EnvError, Result};
use crate::render::Frame;
use crate::space::{Space, SpaceValue, Value};

/// Statistics of a finished episode, reported by
/// [`RecordEpisodeStatistics`](crate::wrappers::RecordEpisodeStatistics) in the info of the
/// episode's last step (Gymnasium's `info["episode"]`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpisodeStatistics {
    /// Undiscounted return `r`: the sum of the episode's rewards.
    pub r: f64,
    /// Length `l` in steps.
    pub l: u64,
    /// Wall time `t` of the episode in seconds.
    pub t: f64,
}

/// Extra information returned with an observation (Gymnasium's `info` dict). The built-in envs
/// put nothing here; wrappers add what they record.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Info {
    /// Set on the last step of an episode by `RecordEpisodeStatistics`.
    pub episode: Option<EpisodeStatistics>,
    /// Named scalar values for users' own envs and wrappers.
    pub extra: Vec<(String, f64)>,
}

/// What one step of an environment returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Step<O> {
    /// The observation after the step.
    pub obs: O,
    /// The reward for the step.
    pub reward: f64,
    /// Whether the episode reached a terminal state of the MDP (no bootstrapping past it).
    pub terminated: bool,
    /// Whether the episode was cut short by something outside the MDP, such as a time limit
    /// (training bootstraps from `obs`). Both flags can be true on the same step.
    pub truncated: bool,
    /// Extra information.
    pub info: Info,
}

impl<O> Step<O> {
    /// Whether the episode ended (`terminated || truncated`): call `reset` before stepping again.
    pub fn done(&self) -> bool {
        self.terminated || self.truncated
    }
}

/// An environment, as in Gymnasium: a small contract of spaces, `reset` and `step`.
///
/// Implementations must
/// - make `reset(Some(seed))` fully determine the episode for a given sequence of actions, and
///   make later `reset(None)` calls continue the same random stream;
/// - return [`EnvError::ResetNeeded`] from `step` before the first reset and
///   [`EnvError::EpisodeEnded`] after an episode ended, and validate actions, never panicking;
/// - return observations inside `observation_space()`.
///
/// [`check_env`](crate::check_env) checks these properties on any env.
pub trait Env {
    /// The observation type.
    type Obs: SpaceValue;
    /// The action type.
    type Action: SpaceValue;

    /// The space observations live in.
    fn observation_space(&self) -> Space;
    /// The space actions are taken from.
    fn action_space(&self) -> Space;

    /// Starts a new episode. `Some(seed)` reseeds the env's random generator; `None` continues
    /// its stream (seeding it from system entropy the first time).
    fn reset(&mut self, seed: Option<u64>) -> Result<(Self::Obs, Info)>;

    /// Advances the episode by one step.
    fn step(&mut self, action: &Self::Action) -> Result<Step<Self::Obs>>;

    /// The time limit after which the episode is truncated, if the env has one
    /// ([`TimeLimit`](crate::wrappers::TimeLimit) sets it).
    fn max_episode_steps(&self) -> Option<u64> {
        None
    }

    /// The env's complete state (physics, random generator, episode phase, wrapper counters) as
    /// JSON, so that a training checkpoint can continue exactly where it stopped. Every built-in
    /// env and wrapper implements it; the default returns [`EnvError::StateUnsupported`].
    fn save_state(&self) -> Result<EnvState> {
        Err(EnvError::StateUnsupported(
            std::any::type_name::<Self>().into(),
        ))
    }

    /// Restores a state from [`Env::save_state`] of an env of the same kind. On error the env is
    /// unchanged.
    fn load_state(&mut self, state: &EnvState) -> Result<()> {
        let _ = state;
        Err(EnvError::StateUnsupported(
            std::any::type_name::<Self>().into(),
        ))
    }

    /// The current state drawn as Gymnasium's `render()` in `rgb_array` mode draws it
    /// ([`crate::render`]). The built-in envs draw themselves (after a reset; before one,
    /// [`EnvError::ResetNeeded`]) and wrappers pass it through; the default returns
    /// [`EnvError::RenderUnsupported`].
    fn render(&self) -> Result<Frame> {
        Err(EnvError::RenderUnsupported(
            std::any::type_name::<Self>().into(),
        ))
    }
}

/// A saved env state: JSON, so that it reads in a checkpoint and survives format changes of
/// unrelated fields. Made by [`Env::save_state`].
pub type EnvState = serde_json::Value;

/// `save_state` for a type whose serde form is its whole state.
pub(crate) fn serde_state<T: serde::Serialize>(value: &T) -> Result<EnvState> {
    serde_json::to_value(value).map_err(|e| EnvError::BadState(e.to_string()))
}

/// `load_state` for a type whose serde form is its whole state.
pub(crate) fn from_serde_state<T: serde::de::DeserializeOwned>(state: &EnvState) -> Result<T> {
    T::deserialize(state).map_err(|e| {
        EnvError::BadState(format!(
            "not a state of {}: {e}",
            std::any::type_name::<T>()
        ))
    })
}

/// Implements `save_state`/`load_state` of an env through its serde derive.
macro_rules! serde_env_state {
    () => {
        fn save_state(&self) -> $crate::error::Result<$crate::env::EnvState> {
            $crate::env::serde_state(self)
        }
        fn load_state(&mut self, state: &$crate::env::EnvState) -> $crate::error::Result<()> {
            *self = $crate::env::from_serde_state(state)?;
            Ok(())
        }
    };
}
pub(crate) use serde_env_state;

/// Field `key` of a wrapper's saved state.
pub(crate) fn state_field<'a>(state: &'a EnvState, key: &str) -> Result<&'a EnvState> {
    state
        .get(key)
        .ok_or_else(|| EnvError::BadState(format!("the saved state has no field {key:?}")))
}

impl<E: Env + ?Sized> Env for Box<E> {
    type Obs = E::Obs;
    type Action = E::Action;
    fn observation_space(&self) -> Space {
        (**self).observation_space()
    }
    fn action_space(&self) -> Space {
        (**self).action_space()
    }
    fn reset(&mut self, seed: Option<u64>) -> Result<(Self::Obs, Info)> {
        (**self).reset(seed)
    }
    fn step(&mut self, action: &Self::Action) -> Result<Step<Self::Obs>> {
        (**self).step(action)
    }
    fn max_episode_steps(&self) -> Option<u64> {
        (**self).max_episode_steps()
    }
    fn save_state(&self) -> Result<EnvState> {
        (**self).save_state()
    }
    fn load_state(&mut self, state: &EnvState) -> Result<()> {
        (**self).load_state(state)
    }
    fn render(&self) -> Result<Frame> {
        (**self).render()
    }
}

/// A type-erased env: observations as flat `Vec<f32>`, actions as [`Value`]. This is what
/// [`make`](crate::make) returns, so that envs with different types can be chosen at run time.
pub type DynEnv = Box<dyn Env<Obs = Vec<f32>, Action = Value> + Send>;

/// Adapts a typed env to the [`DynEnv`] interface (see [`Erased::boxed`]).
#[derive(Debug, Clone)]
pub struct Erased<E> {
    inner: E,
    obs_dim: usize,
}

impl<E: Env + Send + 'static> Erased<E> {
    /// Wraps `env` as a [`DynEnv`].
    pub fn boxed(env: E) -> DynEnv {
        let obs_dim = env.observation_space().flat_dim();
        Box::new(Self {
            inner: env,
            obs_dim,
        })
    }
}

impl<E: Env> Erased<E> {
    fn flatten(&self, obs: &E::Obs) -> Result<Vec<f32>> {
        let mut out = vec![0.0; self.obs_dim];
        obs.write_flat(&mut out)?;
        Ok(out)
    }
}

impl<E: Env> Env for Erased<E> {
    type Obs = Vec<f32>;
    type Action = Value;
    fn render(&self) -> Result<crate::render::Frame> {
        self.inner.render()
    }

    fn observation_space(&self) -> Space {
        self.inner.observation_space()
    }
    fn action_space(&self) -> Space {
        self.inner.action_space()
    }
    fn reset(&mut self, seed: Option<u64>) -> Result<(Vec<f32>, Info)> {
        let (obs, info) = self.inner.reset(seed)?;
        Ok((self.flatten(&obs)?, info))
    }
    fn step(&mut self, action: &Value) -> Result<Step<Vec<f32>>> {
        let expected = match self.inner.action_space() {
            Space::Discrete(_) => "discrete",
            Space::Box(_) => "continuous",
        };
        let got = crate::space::SpaceValue::as_value(action).kind();
        let typed = E::Action::from_value(action.clone()).ok_or(if expected == got {
            // Right kind, wrong size for a fixed-size action type.
            EnvError::ActionShape {
                expected: self.inner.action_space().flat_dim(),
                got: match action {
                    Value::Continuous(x) => x.len(),
                    Value::Discrete(_) => 1,
                },
            }
        } else {
            EnvError::ActionKind { expected, got }
        })?;
        let step = self.inner.step(&typed)?;
        Ok(Step {
            obs: self.flatten(&step.obs)?,
            reward: step.reward,
            terminated: step.terminated,
            truncated: step.truncated,
            info: step.info,
        })
    }
    fn max_episode_steps(&self) -> Option<u64> {
        self.inner.max_episode_steps()
    }
    fn save_state(&self) -> Result<EnvState> {
        self.inner.save_state()
    }
    fn load_state(&mut self, state: &EnvState) -> Result<()> {
        self.inner.load_state(state)
    }
}

/// Where an episode stands; the built-in envs use it to refuse steps out of order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum EpisodePhase {
    /// No reset yet.
    #[default]
    NeedsReset,
    /// Between a reset and the end of the episode.
    Running,
    /// The episode terminated.
    Terminated,
    /// The episode was truncated.
    Truncated,
}

impl EpisodePhase {
    /// `Ok` once the env was reset (a state to draw), else [`EnvError::ResetNeeded`].
    pub fn check_render(self) -> Result<()> {
        match self {
            EpisodePhase::NeedsReset => Err(EnvError::ResetNeeded),
            _ => Ok(()),
        }
    }

    /// `Ok` if a step may be taken now, else the error that says why not.
    #[inline]
    pub fn check_step(self) -> Result<()> {
        match self {
            EpisodePhase::Running => Ok(()),
            EpisodePhase::NeedsReset => Err(EnvError::ResetNeeded),
            EpisodePhase::Terminated => Err(EnvError::EpisodeEnded {
                reason: "terminated",
            }),
            EpisodePhase::Truncated => Err(EnvError::EpisodeEnded {
                reason: "truncated",
            }),
        }
    }
}

/// Checks a discrete action against `Discrete(n)`.
#[inline]
pub fn check_discrete_action(action: usize, n: usize) -> Result<()> {
    if action < n {
        Ok(())
    } else {
        Err(EnvError::ActionOutOfRange { action, n })
    }
}

/// Checks a continuous action's length and finiteness (values outside the bounds are allowed:
/// envs clip them as Gymnasium's do).
#[inline]
pub fn check_continuous_action(action: &[f32], expected: usize) -> Result<()> {
    if action.len() != expected {
        return Err(EnvError::ActionShape {
            expected,
            got: action.len(),
        });
    }
    match action.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(EnvError::NonFiniteAction {
            index,
            value: action[index],
        }),
        None => Ok(()),
    }
}
