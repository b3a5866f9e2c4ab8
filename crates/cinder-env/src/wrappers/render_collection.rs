//! `RenderCollection`: keeps the frame of every reset and step, for a GIF of an episode.

use crate::env::{Env, EnvState, Info, Step};
use crate::error::Result;
use crate::render::Frame;
use crate::space::Space;
use std::sync::{Arc, Mutex};

/// The frames a [`RenderCollection`] kept, shared with whoever reads them after the wrapped env
/// was handed to an evaluation loop.
pub type FrameLog = Arc<Mutex<Vec<Frame>>>;

/// Renders the env after every reset and step and keeps the frames (Gymnasium's
/// `RenderCollection`), for the first `max_episodes` episodes (all by default).
///
/// ```
/// use cinder_env::wrappers::RenderCollection;
/// use cinder_env::{Env, Value, make};
///
/// let recorder = RenderCollection::new(make("CartPole-v1")?).with_max_episodes(1);
/// let frames = recorder.frames();
/// let mut env = recorder;
/// env.reset(Some(0))?;
/// env.step(&Value::Discrete(1))?;
/// assert_eq!(frames.lock().unwrap().len(), 2);
/// # Ok::<(), cinder_env::EnvError>(())
/// ```
#[derive(Debug)]
pub struct RenderCollection<E> {
    env: E,
    frames: FrameLog,
    max_episodes: Option<usize>,
    episodes: usize,
}

impl<E: Env> RenderCollection<E> {
    /// Wraps `env`, keeping every frame.
    pub fn new(env: E) -> Self {
        Self {
            env,
            frames: Arc::default(),
            max_episodes: None,
            episodes: 0,
        }
    }

    /// Keeps the frames of the first `episodes` episodes only.
    pub fn with_max_episodes(mut self, episodes: usize) -> Self {
        self.max_episodes = Some(episodes);
        self
    }

    /// The frames kept so far (a shared handle: it stays readable after the env is moved).
    pub fn frames(&self) -> FrameLog {
        Arc::clone(&self.frames)
    }

    fn recording(&self) -> bool {
        self.max_episodes.is_none_or(|m| self.episodes <= m)
    }

    fn keep(&self) -> Result<()> {
        if self.recording() {
            let frame = self.env.render()?;
            self.frames
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(frame);
        }
        Ok(())
    }
}

impl<E: Env> Env for RenderCollection<E> {
    type Obs = E::Obs;
    type Action = E::Action;

    fn observation_space(&self) -> Space {
        self.env.observation_space()
    }
    fn action_space(&self) -> Space {
        self.env.action_space()
    }
    fn reset(&mut self, seed: Option<u64>) -> Result<(E::Obs, Info)> {
        let out = self.env.reset(seed)?;
        self.episodes += 1;
        self.keep()?;
        Ok(out)
    }
    fn step(&mut self, action: &E::Action) -> Result<Step<E::Obs>> {
        let step = self.env.step(action)?;
        self.keep()?;
        Ok(step)
    }
    fn max_episode_steps(&self) -> Option<u64> {
        self.env.max_episode_steps()
    }
    fn save_state(&self) -> Result<EnvState> {
        self.env.save_state()
    }
    fn load_state(&mut self, state: &EnvState) -> Result<()> {
        self.env.load_state(state)
    }
    fn render(&self) -> Result<Frame> {
        self.env.render()
    }
}
