//! `ClipAction`: clips continuous actions into the action space's bounds.

use crate::env::{Env, Info, Step};
use crate::error::{EnvError, Result};
use crate::space::{BoxSpace, Space, SpaceValue, Value, ValueRef};

/// Clips each continuous action into the wrapped env's `Box` action space before stepping
/// (Gymnasium's `ClipAction`). The wrapper's own action space is unbounded.
///
/// Useful for a Gaussian policy whose samples can fall outside the bounds. Note that some envs
/// (MountainCarContinuous) charge their reward on the unclipped action, so clipping first
/// changes the reward, as it does in Gymnasium.
#[derive(Debug, Clone)]
pub struct ClipAction<E> {
    env: E,
    bounds: BoxSpace,
}

impl<E: Env> ClipAction<E> {
    /// Wraps `env`; errors if its action space is not a `Box`.
    pub fn new(env: E) -> Result<Self> {
        match env.action_space() {
            Space::Box(bounds) => Ok(Self { env, bounds }),
            other => Err(EnvError::InvalidConfig(format!(
                "ClipAction needs a Box action space, the env has {other}"
            ))),
        }
    }

    /// The wrapped env.
    pub fn inner(&self) -> &E {
        &self.env
    }
}

impl<E: Env> Env for ClipAction<E> {
    type Obs = E::Obs;
    type Action = E::Action;
    fn render(&self) -> Result<crate::render::Frame> {
        self.env.render()
    }

    fn observation_space(&self) -> Space {
        self.env.observation_space()
    }

    fn action_space(&self) -> Space {
        let n = self.bounds.size();
        Space::Box(BoxSpace {
            low: vec![f32::NEG_INFINITY; n],
            high: vec![f32::INFINITY; n],
            shape: self.bounds.shape.clone(),
        })
    }

    fn reset(&mut self, seed: Option<u64>) -> Result<(E::Obs, Info)> {
        self.env.reset(seed)
    }

    fn save_state(&self) -> Result<crate::env::EnvState> {
        self.env.save_state()
    }

    fn load_state(&mut self, state: &crate::env::EnvState) -> Result<()> {
        self.env.load_state(state)
    }

    fn step(&mut self, action: &E::Action) -> Result<Step<E::Obs>> {
        let mut values = match action.as_value() {
            ValueRef::Continuous(x) => x.to_vec(),
            other => {
                return Err(EnvError::ActionKind {
                    expected: "continuous",
                    got: other.kind(),
                });
            }
        };
        if values.len() != self.bounds.size() {
            return Err(EnvError::ActionShape {
                expected: self.bounds.size(),
                got: values.len(),
            });
        }
        self.bounds.clip(&mut values);
        let clipped =
            E::Action::from_value(Value::Continuous(values)).ok_or(EnvError::ActionShape {
                expected: self.bounds.size(),
                got: 0,
            })?;
        self.env.step(&clipped)
    }

    fn max_episode_steps(&self) -> Option<u64> {
        self.env.max_episode_steps()
    }
}
