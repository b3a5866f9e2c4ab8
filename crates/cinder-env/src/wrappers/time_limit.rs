//! `TimeLimit`: truncates episodes after a number of steps.

use crate::env::{Env, EnvState, EpisodePhase, Info, Step, from_serde_state, state_field};
use crate::error::{EnvError, Result};
use crate::space::Space;

/// Truncates an episode once it has lasted `max_episode_steps` steps (Gymnasium's `TimeLimit`).
///
/// The flag is set after the inner step, so `terminated` and `truncated` can both be true on the
/// same step. Only `truncated` is ever changed: a time limit is not a terminal state.
#[derive(Debug, Clone)]
pub struct TimeLimit<E> {
    env: E,
    max_episode_steps: u64,
    elapsed_steps: u64,
    phase: EpisodePhase,
}

impl<E: Env> TimeLimit<E> {
    /// Wraps `env`. A limit of 0 is refused.
    pub fn new(env: E, max_episode_steps: u64) -> Result<Self> {
        if max_episode_steps == 0 {
            return Err(EnvError::InvalidConfig(
                "TimeLimit needs max_episode_steps >= 1".into(),
            ));
        }
        Ok(Self {
            env,
            max_episode_steps,
            elapsed_steps: 0,
            phase: EpisodePhase::NeedsReset,
        })
    }

    /// Steps taken in the current episode.
    pub fn elapsed_steps(&self) -> u64 {
        self.elapsed_steps
    }

    /// The wrapped env.
    pub fn inner(&self) -> &E {
        &self.env
    }

    /// The wrapped env, mutably.
    pub fn inner_mut(&mut self) -> &mut E {
        &mut self.env
    }

    /// Unwraps the env.
    pub fn into_inner(self) -> E {
        self.env
    }
}

impl<E: Env> Env for TimeLimit<E> {
    type Obs = E::Obs;
    type Action = E::Action;
    fn render(&self) -> Result<crate::render::Frame> {
        self.env.render()
    }

    fn observation_space(&self) -> Space {
        self.env.observation_space()
    }

    fn action_space(&self) -> Space {
        self.env.action_space()
    }

    fn save_state(&self) -> Result<EnvState> {
        Ok(serde_json::json!({
            "elapsed_steps": self.elapsed_steps,
            "phase": crate::env::serde_state(&self.phase)?,
            "env": self.env.save_state()?,
        }))
    }

    fn load_state(&mut self, state: &EnvState) -> Result<()> {
        let elapsed_steps = from_serde_state(state_field(state, "elapsed_steps")?)?;
        let phase = from_serde_state(state_field(state, "phase")?)?;
        self.env.load_state(state_field(state, "env")?)?;
        self.elapsed_steps = elapsed_steps;
        self.phase = phase;
        Ok(())
    }

    fn reset(&mut self, seed: Option<u64>) -> Result<(E::Obs, Info)> {
        let out = self.env.reset(seed)?;
        self.elapsed_steps = 0;
        self.phase = EpisodePhase::Running;
        Ok(out)
    }

    fn step(&mut self, action: &E::Action) -> Result<Step<E::Obs>> {
        self.phase.check_step()?;
        let mut step = self.env.step(action)?;
        self.elapsed_steps += 1;
        if self.elapsed_steps >= self.max_episode_steps {
            step.truncated = true;
        }
        if step.truncated {
            self.phase = EpisodePhase::Truncated;
        } else if step.terminated {
            self.phase = EpisodePhase::Terminated;
        }
        Ok(step)
    }

    fn max_episode_steps(&self) -> Option<u64> {
        Some(self.max_episode_steps)
    }
}
