//! `RecordEpisodeStatistics`: reports each episode's return, length and time.

use crate::env::{Env, EnvState, EpisodeStatistics, Info, Step, from_serde_state, state_field};
use crate::error::Result;
use crate::space::Space;
use std::collections::VecDeque;
use std::time::Instant;

/// Adds [`EpisodeStatistics`] to the info of each episode's last step, and keeps the last
/// `buffer_length` returns and lengths (Gymnasium's `RecordEpisodeStatistics`).
#[derive(Debug, Clone)]
pub struct RecordEpisodeStatistics<E> {
    env: E,
    episode_return: f64,
    episode_length: u64,
    episode_start: Instant,
    buffer_length: usize,
    return_queue: VecDeque<f64>,
    length_queue: VecDeque<u64>,
    episode_count: u64,
}

impl<E: Env> RecordEpisodeStatistics<E> {
    /// Wraps `env`, keeping the statistics of the last 100 episodes.
    pub fn new(env: E) -> Self {
        Self::with_buffer_length(env, 100)
    }

    /// Wraps `env`, keeping the statistics of the last `buffer_length` episodes.
    pub fn with_buffer_length(env: E, buffer_length: usize) -> Self {
        Self {
            env,
            episode_return: 0.0,
            episode_length: 0,
            episode_start: Instant::now(),
            buffer_length,
            return_queue: VecDeque::with_capacity(buffer_length),
            length_queue: VecDeque::with_capacity(buffer_length),
            episode_count: 0,
        }
    }

    /// Returns of the most recent episodes, oldest first.
    pub fn return_queue(&self) -> &VecDeque<f64> {
        &self.return_queue
    }

    /// Lengths of the most recent episodes, oldest first.
    pub fn length_queue(&self) -> &VecDeque<u64> {
        &self.length_queue
    }

    /// Number of episodes finished so far.
    pub fn episode_count(&self) -> u64 {
        self.episode_count
    }

    /// The wrapped env.
    pub fn inner(&self) -> &E {
        &self.env
    }

    /// The wrapped env, mutably.
    pub fn inner_mut(&mut self) -> &mut E {
        &mut self.env
    }
}

impl<E: Env> Env for RecordEpisodeStatistics<E> {
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

    /// Saves the counters and queues; the episode's wall-clock start is not state (a restored
    /// episode's time counts from the restore).
    fn save_state(&self) -> Result<EnvState> {
        Ok(serde_json::json!({
            "episode_return": self.episode_return,
            "episode_length": self.episode_length,
            "return_queue": self.return_queue,
            "length_queue": self.length_queue,
            "episode_count": self.episode_count,
            "env": self.env.save_state()?,
        }))
    }

    fn load_state(&mut self, state: &EnvState) -> Result<()> {
        let episode_return = from_serde_state(state_field(state, "episode_return")?)?;
        let episode_length = from_serde_state(state_field(state, "episode_length")?)?;
        let return_queue = from_serde_state(state_field(state, "return_queue")?)?;
        let length_queue = from_serde_state(state_field(state, "length_queue")?)?;
        let episode_count = from_serde_state(state_field(state, "episode_count")?)?;
        self.env.load_state(state_field(state, "env")?)?;
        self.episode_return = episode_return;
        self.episode_length = episode_length;
        self.return_queue = return_queue;
        self.length_queue = length_queue;
        self.episode_count = episode_count;
        self.episode_start = Instant::now();
        Ok(())
    }

    fn reset(&mut self, seed: Option<u64>) -> Result<(E::Obs, Info)> {
        let out = self.env.reset(seed)?;
        self.episode_return = 0.0;
        self.episode_length = 0;
        self.episode_start = Instant::now();
        Ok(out)
    }

    fn step(&mut self, action: &E::Action) -> Result<Step<E::Obs>> {
        let mut step = self.env.step(action)?;
        self.episode_return += step.reward;
        self.episode_length += 1;
        if step.done() {
            let stats = EpisodeStatistics {
                r: self.episode_return,
                l: self.episode_length,
                t: self.episode_start.elapsed().as_secs_f64(),
            };
            step.info.episode = Some(stats);
            if self.buffer_length > 0 {
                if self.return_queue.len() == self.buffer_length {
                    self.return_queue.pop_front();
                    self.length_queue.pop_front();
                }
                self.return_queue.push_back(stats.r);
                self.length_queue.push_back(stats.l);
            }
            self.episode_count += 1;
        }
        Ok(step)
    }

    fn max_episode_steps(&self) -> Option<u64> {
        self.env.max_episode_steps()
    }
}
