//! A synchronous vector env: `n` copies of an env stepped together, with automatic reset.
//!
//! ## Autoreset semantics
//!
//! Two modes, as in Gymnasium 1.x (`gymnasium.vector.AutoresetMode`):
//!
//! - [`AutoresetMode::SameStep`] (the default here; Gymnasium 0.29's behaviour, which CleanRL and
//!   Stable-Baselines3 expect): when sub-env `i` ends an episode, it is reset inside the same
//!   `step` call. `rewards[i]`, `terminated[i]`, `truncated[i]` and `infos[i]` are those of the
//!   final step; `obs` row `i` is the first observation of the new episode, and the final
//!   observation of the finished episode is in `final_obs` row `i` (needed to bootstrap the value
//!   of a truncated episode).
//! - [`AutoresetMode::NextStep`] (Gymnasium 1.x's default): the step that ends an episode returns
//!   its final observation; the *next* `step` call ignores that sub-env's action, resets it and
//!   returns the reset observation with reward 0 and both flags false.
//!
//! `reset(Some(seed))` seeds sub-env `i` with `seed + i`, as `SyncVectorEnv.reset(seed=seed)`
//! does; `reset(None)` and automatic resets continue each sub-env's own random stream.
//!
//! Observations are flattened into one row-major `[num_envs, obs_dim]` buffer of `f32`, ready
//! to become a tensor.

use crate::env::{Env, EnvState, Info, from_serde_state, serde_state, state_field};
use crate::error::{EnvError, Result};
use crate::space::{Space, SpaceValue};

/// When a sub-env that finished an episode is reset. See the [module docs](self).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AutoresetMode {
    /// Reset in the same `step` call; the final observation goes to `final_obs`.
    #[default]
    SameStep,
    /// Reset in the next `step` call, which ignores that sub-env's action.
    NextStep,
}

/// What [`SyncVectorEnv::step`] returns: views of the batch buffers.
#[derive(Debug, Clone, Copy)]
pub struct VecStep<'a> {
    /// Observations, `[num_envs, obs_dim]` row-major.
    pub obs: &'a [f32],
    /// Rewards, `[num_envs]`.
    pub rewards: &'a [f64],
    /// Terminated flags, `[num_envs]`.
    pub terminated: &'a [bool],
    /// Truncated flags, `[num_envs]`.
    pub truncated: &'a [bool],
    /// Final observations, `[num_envs, obs_dim]`; row `i` is meaningful where sub-env `i` just
    /// ended an episode in `SameStep` mode (in `NextStep` mode the final observation is in `obs`).
    pub final_obs: &'a [f32],
    /// Infos of the step each sub-env took (for an ended episode, its final step's info).
    pub infos: &'a [Info],
}

/// A batch of envs stepped together with automatic reset: what training loops consume.
///
/// [`SyncVectorEnv`] implements it for any [`Env`]; specialised struct-of-arrays envs such as
/// [`CartPoleVec`](crate::classic_control::CartPoleVec) implement it faster, with identical
/// results.
pub trait VectorEnv {
    /// The action of one sub-env.
    type Action: SpaceValue;

    /// Number of sub-envs.
    fn num_envs(&self) -> usize;
    /// The observation space of one sub-env.
    fn single_observation_space(&self) -> &Space;
    /// The action space of one sub-env.
    fn single_action_space(&self) -> &Space;
    /// The autoreset mode.
    fn autoreset_mode(&self) -> AutoresetMode;
    /// Resets every sub-env; `Some(seed)` seeds sub-env `i` with `seed + i`. Returns the
    /// observations, `[num_envs, obs_dim]`.
    fn reset(&mut self, seed: Option<u64>) -> Result<&[f32]>;
    /// Steps every sub-env with its action (`actions.len() == num_envs`).
    fn step(&mut self, actions: &[Self::Action]) -> Result<VecStep<'_>>;

    /// Floats per observation.
    fn obs_dim(&self) -> usize {
        self.single_observation_space().flat_dim()
    }

    /// The complete state of every sub-env and of the batch (pending autoresets, current
    /// observations), for training checkpoints. The default returns
    /// [`EnvError::StateUnsupported`].
    fn save_state(&self) -> Result<EnvState> {
        Err(EnvError::StateUnsupported(
            std::any::type_name::<Self>().into(),
        ))
    }

    /// Restores a state from [`VectorEnv::save_state`] of a vector env of the same kind and
    /// size. If a sub-env refuses its state, the vector env may be partly restored: reset it.
    fn load_state(&mut self, state: &EnvState) -> Result<()> {
        let _ = state;
        Err(EnvError::StateUnsupported(
            std::any::type_name::<Self>().into(),
        ))
    }
}

/// The batch buffers every vector env fills, and the bookkeeping of its autoreset.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct VecBuffers {
    pub(crate) obs: Vec<f32>,
    pub(crate) final_obs: Vec<f32>,
    pub(crate) rewards: Vec<f64>,
    pub(crate) terminated: Vec<bool>,
    pub(crate) truncated: Vec<bool>,
    pub(crate) infos: Vec<Info>,
    /// NextStep mode: sub-envs to reset on the next call.
    pub(crate) autoreset: Vec<bool>,
    was_reset: bool,
}

impl VecBuffers {
    pub(crate) fn new(num_envs: usize, obs_dim: usize) -> Self {
        Self {
            obs: vec![0.0; num_envs * obs_dim],
            final_obs: vec![0.0; num_envs * obs_dim],
            rewards: vec![0.0; num_envs],
            terminated: vec![false; num_envs],
            truncated: vec![false; num_envs],
            infos: vec![Info::default(); num_envs],
            autoreset: vec![false; num_envs],
            was_reset: false,
        }
    }

    /// Clears rewards, flags and pending autoresets after every sub-env was reset.
    pub(crate) fn after_reset(&mut self) {
        self.rewards.fill(0.0);
        self.terminated.fill(false);
        self.truncated.fill(false);
        self.autoreset.fill(false);
        self.was_reset = true;
    }

    /// `Ok` if a step with `num_actions` actions may be taken now.
    pub(crate) fn check_step(&self, num_actions: usize) -> Result<()> {
        if !self.was_reset {
            return Err(EnvError::ResetNeeded);
        }
        let n = self.rewards.len();
        if num_actions != n {
            return Err(EnvError::InvalidConfig(format!(
                "got {num_actions} actions for {n} sub-envs"
            )));
        }
        Ok(())
    }

    /// Whether sub-env `i` resets in this call instead of stepping (NextStep mode).
    pub(crate) fn resets_now(&self, mode: AutoresetMode, i: usize) -> bool {
        mode == AutoresetMode::NextStep && self.autoreset[i]
    }

    /// Records a NextStep-mode reset of sub-env `i`: reward 0, both flags false.
    pub(crate) fn record_next_step_reset(&mut self, i: usize, info: Info) {
        self.rewards[i] = 0.0;
        self.terminated[i] = false;
        self.truncated[i] = false;
        self.infos[i] = info;
        self.autoreset[i] = false;
    }

    pub(crate) fn view(&self) -> VecStep<'_> {
        VecStep {
            obs: &self.obs,
            rewards: &self.rewards,
            terminated: &self.terminated,
            truncated: &self.truncated,
            final_obs: &self.final_obs,
            infos: &self.infos,
        }
    }
}

/// Steps `num_envs` envs in lock step on the calling thread, with automatic reset.
#[derive(Debug, Clone)]
pub struct SyncVectorEnv<E: Env> {
    envs: Vec<E>,
    mode: AutoresetMode,
    obs_dim: usize,
    observation_space: Space,
    action_space: Space,
    buffers: VecBuffers,
}

impl<E: Env> SyncVectorEnv<E> {
    /// Builds a vector env from sub-envs that share their spaces.
    pub fn new(envs: Vec<E>, mode: AutoresetMode) -> Result<Self> {
        let first = envs.first().ok_or_else(|| {
            EnvError::InvalidConfig("a vector env needs at least one sub-env".into())
        })?;
        let observation_space = first.observation_space();
        let action_space = first.action_space();
        if let Some(i) = envs.iter().position(|e| {
            e.observation_space() != observation_space || e.action_space() != action_space
        }) {
            return Err(EnvError::InvalidConfig(format!(
                "sub-env {i} has different spaces from sub-env 0"
            )));
        }
        let n = envs.len();
        let obs_dim = observation_space.flat_dim();
        Ok(Self {
            envs,
            mode,
            obs_dim,
            observation_space,
            action_space,
            buffers: VecBuffers::new(n, obs_dim),
        })
    }

    /// `num_envs` envs made by `make_env(i)`.
    pub fn from_fn(
        num_envs: usize,
        mode: AutoresetMode,
        make_env: impl FnMut(usize) -> E,
    ) -> Result<Self> {
        Self::new((0..num_envs).map(make_env).collect(), mode)
    }

    /// The sub-envs.
    pub fn envs(&self) -> &[E] {
        &self.envs
    }

    /// The sub-envs, mutably (to read wrapper statistics, for example).
    pub fn envs_mut(&mut self) -> &mut [E] {
        &mut self.envs
    }

    /// The current observations, `[num_envs, obs_dim]`.
    pub fn observations(&self) -> &[f32] {
        &self.buffers.obs
    }
}

impl<E: Env> VectorEnv for SyncVectorEnv<E> {
    type Action = E::Action;

    fn num_envs(&self) -> usize {
        self.envs.len()
    }

    fn obs_dim(&self) -> usize {
        self.obs_dim
    }

    fn autoreset_mode(&self) -> AutoresetMode {
        self.mode
    }

    fn single_observation_space(&self) -> &Space {
        &self.observation_space
    }

    fn single_action_space(&self) -> &Space {
        &self.action_space
    }

    fn save_state(&self) -> Result<EnvState> {
        let envs = self
            .envs
            .iter()
            .enumerate()
            .map(|(i, env)| env.save_state().map_err(|e| sub_env_error(i, e)))
            .collect::<Result<Vec<_>>>()?;
        Ok(serde_json::json!({ "buffers": serde_state(&self.buffers)?, "envs": envs }))
    }

    fn load_state(&mut self, state: &EnvState) -> Result<()> {
        let buffers: VecBuffers = from_serde_state(state_field(state, "buffers")?)?;
        let envs = state_field(state, "envs")?
            .as_array()
            .filter(|envs| envs.len() == self.envs.len() && buffers.rewards.len() == envs.len())
            .ok_or_else(|| {
                EnvError::BadState(format!(
                    "the saved state is not one of {} sub-envs",
                    self.envs.len()
                ))
            })?;
        if buffers.obs.len() != self.buffers.obs.len() {
            return Err(EnvError::BadState(format!(
                "saved observations have {} floats, this vector env has {}",
                buffers.obs.len(),
                self.buffers.obs.len()
            )));
        }
        for (i, (env, env_state)) in self.envs.iter_mut().zip(envs).enumerate() {
            env.load_state(env_state).map_err(|e| sub_env_error(i, e))?;
        }
        self.buffers = buffers;
        Ok(())
    }

    fn reset(&mut self, seed: Option<u64>) -> Result<&[f32]> {
        let d = self.obs_dim;
        let b = &mut self.buffers;
        for (i, env) in self.envs.iter_mut().enumerate() {
            let (obs, info) = env
                .reset(seed.map(|s| s.wrapping_add(i as u64)))
                .map_err(|e| sub_env_error(i, e))?;
            obs.write_flat(&mut b.obs[i * d..(i + 1) * d])
                .map_err(|e| sub_env_error(i, e))?;
            b.infos[i] = info;
        }
        b.after_reset();
        Ok(&b.obs)
    }

    fn step(&mut self, actions: &[E::Action]) -> Result<VecStep<'_>> {
        self.buffers.check_step(actions.len())?;
        let d = self.obs_dim;
        let b = &mut self.buffers;
        for (i, (env, action)) in self.envs.iter_mut().zip(actions).enumerate() {
            let row = i * d..(i + 1) * d;
            if b.resets_now(self.mode, i) {
                let (obs, info) = env.reset(None).map_err(|e| sub_env_error(i, e))?;
                obs.write_flat(&mut b.obs[row])
                    .map_err(|e| sub_env_error(i, e))?;
                b.record_next_step_reset(i, info);
                continue;
            }
            let step = env.step(action).map_err(|e| sub_env_error(i, e))?;
            let done = step.done();
            b.rewards[i] = step.reward;
            b.terminated[i] = step.terminated;
            b.truncated[i] = step.truncated;
            b.infos[i] = step.info;
            match self.mode {
                AutoresetMode::SameStep if done => {
                    step.obs
                        .write_flat(&mut b.final_obs[row.clone()])
                        .map_err(|e| sub_env_error(i, e))?;
                    let (obs, _reset_info) = env.reset(None).map_err(|e| sub_env_error(i, e))?;
                    obs.write_flat(&mut b.obs[row])
                        .map_err(|e| sub_env_error(i, e))?;
                }
                _ => {
                    step.obs
                        .write_flat(&mut b.obs[row])
                        .map_err(|e| sub_env_error(i, e))?;
                    b.autoreset[i] = done;
                }
            }
        }
        Ok(b.view())
    }
}

pub(crate) fn sub_env_error(index: usize, source: EnvError) -> EnvError {
    EnvError::SubEnv {
        index,
        source: Box::new(source),
    }
}
