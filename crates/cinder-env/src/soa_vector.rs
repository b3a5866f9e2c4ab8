//! Struct-of-arrays vector envs: many sub-envs of one kind, their state held in one array per
//! variable and stepped in passes the compiler can vectorise, on one thread or several.
//!
//! A [`SoaVectorEnv`] gives exactly the results of [`SyncVectorEnv`](crate::SyncVectorEnv) over
//! the same env with its registered `TimeLimit` (same seeds, same actions, same autoreset mode:
//! bit-identical observations, rewards and flags), faster. The env-specific part is a
//! [`SoaKernel`]: the dynamics of `n` sub-envs over their arrays. The vector env does the rest —
//! time limits, automatic resets in either [`AutoresetMode`], one NumPy generator per sub-env (so
//! resets draw Gymnasium's initial states), action checks, checkpoints — once for every kernel.
//!
//! Every classic-control env has one: [`CartPoleVec`](crate::classic_control::CartPoleVec),
//! [`AcrobotVec`](crate::classic_control::AcrobotVec),
//! [`MountainCarVec`](crate::classic_control::MountainCarVec),
//! [`MountainCarContinuousVec`](crate::classic_control::MountainCarContinuousVec) and
//! [`PendulumVec`](crate::classic_control::PendulumVec).
//!
//! ## Threads
//!
//! [`SoaVectorEnv::with_threads`] splits the sub-envs into that many contiguous shards, stepped in
//! parallel: the first on the calling thread, the others on a pool of threads kept for the env
//! (the caller spins, rather than sleeps, until they finish: a step takes microseconds).
//! Sub-envs never interact, and each keeps its own random generator, so the results do not
//! depend on the thread count (a test checks it). Threads pay off when a step's work outweighs
//! handing it over: about a thousand sub-envs, or fewer of an expensive env such as Acrobot.
//!
//! ```
//! use cinder_env::classic_control::PendulumVec;
//! use cinder_env::vector::{AutoresetMode, VectorEnv};
//!
//! let mut envs = PendulumVec::new(1024, AutoresetMode::SameStep)?.with_threads(2)?;
//! envs.reset(Some(0))?;
//! let step = envs.step(&vec![[0.5]; 1024])?;
//! assert_eq!(step.obs.len(), 1024 * 3);
//! # Ok::<(), cinder_env::EnvError>(())
//! ```

use crate::env::{Env, EnvState, Info, from_serde_state, serde_state};
use crate::error::{EnvError, Result};
use crate::rng::{EnvRng, NpRandom};
use crate::space::{Space, SpaceValue};
use crate::vector::{AutoresetMode, VecBuffers, VecStep, VectorEnv, sub_env_error};
use serde::{Serialize, de::DeserializeOwned};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The dynamics of `n` sub-envs of one kind, in struct-of-arrays layout: the part of a
/// [`SoaVectorEnv`] that depends on the env.
///
/// A kernel holds only the physical state (and any scratch arrays it likes); the vector env owns
/// time limits, resets, random generators and the output buffers. Its results must equal those
/// of [`SoaKernel::Env`] stepped one by one, bit for bit.
pub trait SoaKernel: Clone + std::fmt::Debug + Send {
    /// The single env this kernel steps many copies of (it gives the spaces).
    type Env: Env<Action = Self::Action> + Default;
    /// One sub-env's action.
    type Action: SpaceValue + Copy + Send + Sync;
    /// One sub-env's complete physical state: what a checkpoint saves.
    type State: Copy + Serialize + DeserializeOwned;

    /// The registered id whose time limit [`SoaVectorEnv::new`] applies.
    const ENV_ID: &'static str;
    /// Floats per observation.
    const OBS_DIM: usize;
    /// A valid action, stepped in place of the (unchecked, ignored) action of a sub-env that
    /// resets in `NextStep` mode.
    const IDLE_ACTION: Self::Action;

    /// A kernel of `num_envs` sub-envs (their state is set before the first step).
    fn with_len(num_envs: usize) -> Self;
    /// The number of sub-envs.
    fn len(&self) -> usize;
    /// Whether the kernel has no sub-envs.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// `Ok` if `action` is valid for one sub-env, else the error the single env returns.
    fn check_action(action: &Self::Action) -> Result<()>;
    /// The state a reset draws from the sub-env's generator, as the single env's `reset` draws it.
    fn initial_state(rng: &mut NpRandom) -> Self::State;
    /// Sub-env `i`'s state.
    fn get(&self, i: usize) -> Self::State;
    /// Sets sub-env `i`'s state.
    fn set(&mut self, i: usize, state: Self::State);
    /// Steps every sub-env with its action (`actions.len() == self.len()`, all valid), writing
    /// each reward and termination flag.
    fn step(&mut self, actions: &[Self::Action], rewards: &mut [f64], terminated: &mut [bool]);
    /// Writes sub-env `i`'s observation into `row` (`OBS_DIM` floats).
    fn write_obs(&self, i: usize, row: &mut [f32]);
}

/// A contiguous range of sub-envs with their kernel, generators and episode lengths; the unit
/// a thread steps.
#[derive(Debug, Clone)]
struct Shard<K> {
    kernel: K,
    rngs: Vec<EnvRng>,
    elapsed: Vec<u64>,
}

/// A shard's slice of the output buffers.
struct Outputs<'a> {
    obs: &'a mut [f32],
    final_obs: &'a mut [f32],
    rewards: &'a mut [f64],
    terminated: &'a mut [bool],
    truncated: &'a mut [bool],
    infos: &'a mut [Info],
    autoreset: &'a mut [bool],
}

impl<K: SoaKernel> Shard<K> {
    fn new(len: usize) -> Self {
        Self {
            kernel: K::with_len(len),
            rngs: vec![EnvRng::default(); len],
            elapsed: vec![0; len],
        }
    }

    fn reset_one(&mut self, i: usize, seed: Option<u64>, row: &mut [f32]) {
        let state = K::initial_state(self.rngs[i].reset(seed));
        self.kernel.set(i, state);
        self.elapsed[i] = 0;
        self.kernel.write_obs(i, row);
    }

    /// One step of this shard: dynamics, observations, time limits, then automatic resets.
    fn step(
        &mut self,
        mode: AutoresetMode,
        max_episode_steps: u64,
        actions: &[K::Action],
        out: Outputs<'_>,
    ) {
        let d = K::OBS_DIM;
        self.kernel.step(actions, out.rewards, out.terminated);
        for (i, row) in out.obs.chunks_exact_mut(d).enumerate() {
            self.kernel.write_obs(i, row);
        }
        for (elapsed, truncated) in self.elapsed.iter_mut().zip(out.truncated.iter_mut()) {
            *elapsed += 1;
            *truncated = *elapsed >= max_episode_steps;
        }
        for i in 0..self.kernel.len() {
            let row = d * i..d * i + d;
            match mode {
                AutoresetMode::SameStep => {
                    if out.terminated[i] || out.truncated[i] {
                        out.final_obs[row.clone()].copy_from_slice(&out.obs[row.clone()]);
                        self.reset_one(i, None, &mut out.obs[row]);
                    }
                }
                AutoresetMode::NextStep if out.autoreset[i] => {
                    // This sub-env ended on the previous call: it resets, and the step it took
                    // with the idle action is discarded.
                    self.reset_one(i, None, &mut out.obs[row]);
                    out.rewards[i] = 0.0;
                    out.terminated[i] = false;
                    out.truncated[i] = false;
                    out.infos[i] = Info::default();
                    out.autoreset[i] = false;
                }
                AutoresetMode::NextStep => out.autoreset[i] = out.terminated[i] || out.truncated[i],
            }
        }
    }
}

/// Counts a shard as done when dropped: after its step, or while a panic unwinds it (so the
/// caller's wait ends and the scope passes the panic on).
struct Done<'a>(&'a AtomicUsize);

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Release);
    }
}

/// `num_envs` sub-envs of one kind with their time limit, in struct-of-arrays layout, stepped
/// together with automatic reset. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct SoaVectorEnv<K: SoaKernel> {
    mode: AutoresetMode,
    max_episode_steps: u64,
    num_envs: usize,
    observation_space: Space,
    action_space: Space,
    shards: Vec<Shard<K>>,
    out: VecBuffers,
    /// The actions stepped: the caller's, with the ignored ones replaced by the idle action.
    actions: Vec<K::Action>,
    pool: Option<Arc<rayon::ThreadPool>>,
}

/// The saved form of a [`SoaVectorEnv`]: per sub-env, whatever the thread count.
#[derive(serde::Serialize, serde::Deserialize)]
struct SoaState<S> {
    states: Vec<S>,
    rngs: Vec<EnvRng>,
    elapsed: Vec<u64>,
    out: VecBuffers,
}

impl<K: SoaKernel> SoaVectorEnv<K> {
    /// `num_envs` sub-envs with the registered time limit of [`SoaKernel::ENV_ID`], on the
    /// calling thread.
    pub fn new(num_envs: usize, mode: AutoresetMode) -> Result<Self> {
        let limit = crate::registry::spec(K::ENV_ID)?.max_episode_steps;
        Self::with_time_limit(num_envs, mode, limit)
    }

    /// `num_envs` sub-envs truncated after `max_episode_steps` steps, on the calling thread.
    pub fn with_time_limit(
        num_envs: usize,
        mode: AutoresetMode,
        max_episode_steps: u64,
    ) -> Result<Self> {
        if num_envs == 0 {
            return Err(EnvError::InvalidConfig(
                "a vector env needs at least one sub-env".into(),
            ));
        }
        if max_episode_steps == 0 {
            return Err(EnvError::InvalidConfig(
                "max_episode_steps must be at least 1".into(),
            ));
        }
        let single = K::Env::default();
        Ok(Self {
            mode,
            max_episode_steps,
            num_envs,
            observation_space: single.observation_space(),
            action_space: single.action_space(),
            shards: vec![Shard::new(num_envs)],
            out: VecBuffers::new(num_envs, K::OBS_DIM),
            actions: vec![K::IDLE_ACTION; num_envs],
            pool: None,
        })
    }

    /// Steps the sub-envs on `threads` threads (1: the calling thread), in as many contiguous
    /// shards; more threads than sub-envs is capped at one per sub-env. The results are the same
    /// for every thread count.
    ///
    /// Each step hands the shards to the threads and waits for the slowest, which costs
    /// microseconds: threads pay off when every shard has several microseconds of work — about
    /// 512 sub-envs per thread for CartPole or MountainCar, a few dozen for Acrobot
    /// (`cinder-bench envs` measures 1024 envs on 1 and 2 threads). With fewer, one thread is
    /// faster.
    pub fn with_threads(mut self, threads: usize) -> Result<Self> {
        if threads == 0 {
            return Err(EnvError::InvalidConfig(
                "a vector env needs at least one thread".into(),
            ));
        }
        let threads = threads.min(self.num_envs);
        let (states, rngs, elapsed) = self.per_env();
        let mut start = 0;
        self.shards = shard_lengths(self.num_envs, threads)
            .map(|len| {
                let mut shard = Shard::<K>::new(len);
                for i in 0..len {
                    shard.kernel.set(i, states[start + i]);
                }
                shard.rngs.clone_from_slice(&rngs[start..start + len]);
                shard.elapsed.copy_from_slice(&elapsed[start..start + len]);
                start += len;
                shard
            })
            .collect();
        // The calling thread steps the first shard: the pool has one thread fewer.
        self.pool = if threads > 1 {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads - 1)
                .thread_name(|i| format!("cinder-env-{i}"))
                .build()
                .map_err(|e| {
                    EnvError::InvalidConfig(format!("cannot start {threads} threads: {e}"))
                })?;
            Some(Arc::new(pool))
        } else {
            None
        };
        Ok(self)
    }

    /// The number of threads that step the sub-envs.
    pub fn num_threads(&self) -> usize {
        self.shards.len()
    }

    /// The time limit of every sub-env.
    pub fn max_episode_steps(&self) -> u64 {
        self.max_episode_steps
    }

    /// The current observations, `[num_envs, obs_dim]`.
    pub fn observations(&self) -> &[f32] {
        &self.out.obs
    }

    /// Every sub-env's state, generator and episode length, in sub-env order.
    fn per_env(&self) -> (Vec<K::State>, Vec<EnvRng>, Vec<u64>) {
        let mut states = Vec::with_capacity(self.num_envs);
        let mut rngs = Vec::with_capacity(self.num_envs);
        let mut elapsed = Vec::with_capacity(self.num_envs);
        for shard in &self.shards {
            states.extend((0..shard.kernel.len()).map(|i| shard.kernel.get(i)));
            rngs.extend_from_slice(&shard.rngs);
            elapsed.extend_from_slice(&shard.elapsed);
        }
        (states, rngs, elapsed)
    }

    /// Splits the output buffers into `parts` consecutive parts of the shards' lengths (see
    /// [`shard_lengths`]).
    fn outputs(out: &mut VecBuffers, parts: usize) -> impl Iterator<Item = Outputs<'_>> {
        let d = K::OBS_DIM;
        let num_envs = out.rewards.len();
        let VecBuffers {
            obs,
            final_obs,
            rewards,
            terminated,
            truncated,
            infos,
            autoreset,
            ..
        } = out;
        let mut rest = Outputs {
            obs,
            final_obs,
            rewards,
            terminated,
            truncated,
            infos,
            autoreset,
        };
        shard_lengths(num_envs, parts).map(move |n| Outputs {
            obs: split_off_front(&mut rest.obs, n * d),
            final_obs: split_off_front(&mut rest.final_obs, n * d),
            rewards: split_off_front(&mut rest.rewards, n),
            terminated: split_off_front(&mut rest.terminated, n),
            truncated: split_off_front(&mut rest.truncated, n),
            infos: split_off_front(&mut rest.infos, n),
            autoreset: split_off_front(&mut rest.autoreset, n),
        })
    }
}

/// The first `n` items of `rest`, which keeps the others.
fn split_off_front<'a, T>(rest: &mut &'a mut [T], n: usize) -> &'a mut [T] {
    let (front, back) = std::mem::take(rest).split_at_mut(n);
    *rest = back;
    front
}

/// The lengths of `parts` contiguous shards of `num_envs` sub-envs: as equal as possible, the
/// longer ones first.
fn shard_lengths(num_envs: usize, parts: usize) -> impl Iterator<Item = usize> {
    let (base, extra) = (num_envs / parts, num_envs % parts);
    (0..parts).map(move |t| base + usize::from(t < extra))
}

impl<K: SoaKernel> VectorEnv for SoaVectorEnv<K> {
    type Action = K::Action;

    fn num_envs(&self) -> usize {
        self.num_envs
    }

    fn obs_dim(&self) -> usize {
        K::OBS_DIM
    }

    fn single_observation_space(&self) -> &Space {
        &self.observation_space
    }

    fn single_action_space(&self) -> &Space {
        &self.action_space
    }

    fn autoreset_mode(&self) -> AutoresetMode {
        self.mode
    }

    fn save_state(&self) -> Result<EnvState> {
        let (states, rngs, elapsed) = self.per_env();
        serde_state(&SoaState {
            states,
            rngs,
            elapsed,
            out: self.out.clone(),
        })
    }

    fn load_state(&mut self, state: &EnvState) -> Result<()> {
        let s: SoaState<K::State> = from_serde_state(state)?;
        let n = self.num_envs;
        let lengths = [
            s.states.len(),
            s.rngs.len(),
            s.elapsed.len(),
            s.out.rewards.len(),
            s.out.obs.len() / K::OBS_DIM,
        ];
        if lengths.iter().any(|&len| len != n) || s.out.obs.len() != n * K::OBS_DIM {
            return Err(EnvError::BadState(format!(
                "the saved state is not one of {n} {} envs",
                K::ENV_ID
            )));
        }
        let mut start = 0;
        for shard in &mut self.shards {
            let len = shard.kernel.len();
            for i in 0..len {
                shard.kernel.set(i, s.states[start + i]);
            }
            shard.rngs.clone_from_slice(&s.rngs[start..start + len]);
            shard
                .elapsed
                .copy_from_slice(&s.elapsed[start..start + len]);
            start += len;
        }
        self.out = s.out;
        Ok(())
    }

    fn reset(&mut self, seed: Option<u64>) -> Result<&[f32]> {
        let d = K::OBS_DIM;
        let mut first = 0;
        for shard in &mut self.shards {
            for i in 0..shard.kernel.len() {
                let g = first + i;
                let row = &mut self.out.obs[d * g..d * g + d];
                shard.reset_one(i, seed.map(|s| s.wrapping_add(g as u64)), row);
            }
            first += shard.kernel.len();
        }
        self.out.infos.fill(Info::default());
        self.out.after_reset();
        Ok(&self.out.obs)
    }

    fn step(&mut self, actions: &[K::Action]) -> Result<VecStep<'_>> {
        self.out.check_step(actions.len())?;
        // Validate everything before changing anything.
        for (i, action) in actions.iter().enumerate() {
            if self.out.resets_now(self.mode, i) {
                self.actions[i] = K::IDLE_ACTION;
            } else {
                K::check_action(action).map_err(|e| sub_env_error(i, e))?;
                self.actions[i] = *action;
            }
        }
        let (mode, limit) = (self.mode, self.max_episode_steps);
        match &self.pool {
            None => {
                // One shard: no splitting, no allocation.
                for (shard, out) in self.shards.iter_mut().zip(Self::outputs(&mut self.out, 1)) {
                    shard.step(mode, limit, &self.actions, out);
                }
            }
            Some(pool) => {
                let mut outputs = Self::outputs(&mut self.out, self.shards.len());
                let first_out = outputs.next();
                let (first, rest) = self.shards.split_at_mut(1);
                let first_len = first[0].kernel.len();
                let actions = &self.actions;
                let pending = AtomicUsize::new(rest.len());
                pool.in_place_scope(|scope| {
                    // Every shard but the first on the pool ...
                    let mut start = first_len;
                    for (shard, out) in rest.iter_mut().zip(outputs) {
                        let len = shard.kernel.len();
                        let shard_actions = &actions[start..start + len];
                        start += len;
                        let done = Done(&pending);
                        scope.spawn(move |_| {
                            shard.step(mode, limit, shard_actions, out);
                            drop(done);
                        });
                    }
                    // ... and the first on the calling thread meanwhile.
                    if let Some(out) = first_out {
                        first[0].step(mode, limit, &actions[..first_len], out);
                    }
                    // Spin rather than sleep until the others finish (a step takes microseconds,
                    // less than a sleeping thread takes to wake), yielding the core after a
                    // while in case a shard's thread waits for it.
                    let mut spins = 0u32;
                    while pending.load(Ordering::Acquire) > 0 {
                        if spins < 4096 {
                            spins += 1;
                            std::hint::spin_loop();
                        } else {
                            std::thread::yield_now();
                        }
                    }
                });
            }
        }
        Ok(self.out.view())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! Checks shared by every kernel: identical to `SyncVectorEnv` over the single env with its
    //! time limit, in both modes and at every thread count.

    use super::*;
    use crate::rng::NpRandom;
    use crate::vector::SyncVectorEnv;
    use crate::wrappers::TimeLimit;

    /// Steps a [`SoaVectorEnv<K>`] on `threads` threads and a `SyncVectorEnv` side by side for
    /// `steps` calls with actions from `policy(obs row, rng)`, asserting identical outputs;
    /// returns the number of episode ends seen.
    pub(crate) fn same_as_sync<K: SoaKernel>(
        mode: AutoresetMode,
        limit: u64,
        threads: usize,
        steps: usize,
        policy: impl Fn(&[f32], &mut NpRandom) -> K::Action,
    ) -> usize {
        let n = 13;
        let d = K::OBS_DIM;
        let mut fast = SoaVectorEnv::<K>::with_time_limit(n, mode, limit)
            .unwrap()
            .with_threads(threads)
            .unwrap();
        let mut reference = SyncVectorEnv::from_fn(n, mode, |_| {
            TimeLimit::new(K::Env::default(), limit).unwrap()
        })
        .unwrap();
        assert_eq!(fast.obs_dim(), reference.obs_dim());
        assert_eq!(fast.single_action_space(), reference.single_action_space());
        assert_eq!(
            fast.reset(Some(3)).unwrap(),
            reference.reset(Some(3)).unwrap()
        );
        let mut rng = NpRandom::from_seed(9);
        let mut ends = 0;
        for t in 0..steps {
            let obs = reference.observations().to_vec();
            let actions: Vec<K::Action> = (0..n)
                .map(|i| policy(&obs[d * i..d * i + d], &mut rng))
                .collect();
            let a = fast.step(&actions).unwrap();
            let (obs, rewards, term, trunc, final_obs) = (
                a.obs.to_vec(),
                a.rewards.to_vec(),
                a.terminated.to_vec(),
                a.truncated.to_vec(),
                a.final_obs.to_vec(),
            );
            let b = reference.step(&actions).unwrap();
            assert_eq!(obs, b.obs, "step {t}");
            assert_eq!(rewards, b.rewards, "step {t}");
            assert_eq!(term, b.terminated, "step {t}");
            assert_eq!(trunc, b.truncated, "step {t}");
            for i in 0..n {
                if term[i] || trunc[i] {
                    ends += 1;
                    if mode == AutoresetMode::SameStep {
                        assert_eq!(final_obs[d * i..d * i + d], b.final_obs[d * i..d * i + d]);
                    }
                }
            }
        }
        ends
    }

    /// Runs [`same_as_sync`] in both modes, at 1 and 3 threads, with the registered time limit
    /// and a short one; asserts that at least `min_ends` episodes ended in each run.
    pub(crate) fn check_kernel<K: SoaKernel>(
        steps: usize,
        short_limit: u64,
        min_ends: usize,
        policy: impl Fn(&[f32], &mut NpRandom) -> K::Action + Copy,
    ) {
        let limit = crate::registry::spec(K::ENV_ID).unwrap().max_episode_steps;
        for mode in [AutoresetMode::SameStep, AutoresetMode::NextStep] {
            for threads in [1, 3] {
                for limit in [limit, short_limit] {
                    let ends = same_as_sync::<K>(mode, limit, threads, steps, policy);
                    assert!(
                        ends >= min_ends,
                        "{mode:?}, {threads} threads, limit {limit}: only {ends} episode ends"
                    );
                }
            }
        }
    }

    #[test]
    fn a_checkpoint_moves_between_thread_counts() {
        use crate::classic_control::{AcrobotVec, PendulumVec};
        for mode in [AutoresetMode::SameStep, AutoresetMode::NextStep] {
            // Acrobot: the saved state includes the float32 flag and the cached observation.
            let mut one = AcrobotVec::with_time_limit(7, mode, 5).unwrap();
            one.reset(Some(1)).unwrap();
            for t in 0..12 {
                one.step(&[t % 3; 7]).unwrap();
            }
            let saved = one.save_state().unwrap();
            let mut three = AcrobotVec::with_time_limit(7, mode, 5)
                .unwrap()
                .with_threads(3)
                .unwrap();
            three.load_state(&saved).unwrap();
            assert_eq!(three.observations(), one.observations());
            for t in 0..12 {
                let a = one.step(&[(t + 1) % 3; 7]).unwrap().obs.to_vec();
                assert_eq!(three.step(&[(t + 1) % 3; 7]).unwrap().obs, a, "step {t}");
            }
            // Pendulum keeps sines in step with its angles: re-sharding recomputes them.
            let mut envs = PendulumVec::new(5, mode).unwrap();
            envs.reset(Some(4)).unwrap();
            envs.step(&[[1.0]; 5]).unwrap();
            let mut resharded = envs.clone().with_threads(2).unwrap();
            for _ in 0..300 {
                let a = envs.step(&[[-0.7]; 5]).unwrap();
                let (obs, rewards) = (a.obs.to_vec(), a.rewards.to_vec());
                let b = resharded.step(&[[-0.7]; 5]).unwrap();
                assert_eq!((obs.as_slice(), rewards.as_slice()), (b.obs, b.rewards));
            }
            // A state of another size or kind is refused.
            let mut other = AcrobotVec::new(6, mode).unwrap();
            assert!(matches!(
                other.load_state(&saved),
                Err(EnvError::BadState(_))
            ));
            assert!(envs.load_state(&saved).is_err());
        }
    }
}
