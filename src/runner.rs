//! The runner: one non-generic entry point from "which env, which algorithm, which
//! configuration, which backend" to a trained, evaluated run (a [`RunSummary`]).
//!
//! This is the pipeline the `cinder` command, the examples and the benchmarks share: build the
//! envs and the learner on the chosen backend, train with progress and checkpoints into a run
//! directory, evaluate the final greedy policy, write `summary.json`; or resume a run
//! directory; or reload one to evaluate it. Each learner is instantiated here once per compiled
//! backend, so callers compile none of the training code. Library users with their own envs or
//! networks use the generic learners ([`cinder_rl::ppo::Ppo`],
//! [`cinder_rl::policy_gradient::PolicyGradient`]) and [`cinder_rl::run::train`] directly.
//!
//! A run directory holds `config.json` (env, algorithm, backend, preset source and the
//! complete configuration under the algorithm's name), `metrics.jsonl` (one line per update),
//! a TensorBoard event file of the same metrics, `checkpoint.ckpt` and `summary.json`; with
//! [`RunOptions::periodic_eval`], also `evaluations.jsonl` and the best policy, `best.ckpt`.
//!
//! ```no_run
//! use cinder::backend::BackendKind;
//! use cinder::presets::{Algorithm, resolve};
//! use cinder::runner::{RunOptions, RunSpec, train};
//!
//! let resolved = resolve(Algorithm::Ppo, "Pendulum-v1", None, &[])?;
//! let summary = train(RunSpec {
//!     env_id: "Pendulum-v1".into(),
//!     algorithm: Algorithm::Ppo,
//!     config: resolved.config,
//!     preset_source: resolved.preset_source,
//!     backend: BackendKind::cpu(),
//!     out: Some("runs/pendulum".into()),
//!     options: RunOptions::default(),
//! })?;
//! println!("{:?}", summary.evaluation);
//! # Ok::<(), cinder::Error>(())
//! ```

use crate::Error;
use crate::backend::{BackendKind, BackendTask, dispatch};
use crate::presets::{Algorithm, AlgorithmConfig};
use burn::tensor::backend::AutodiffBackend;
use cinder_env::classic_control::{
    AcrobotVec, CartPoleVec, MountainCarContinuousVec, MountainCarVec, PendulumVec,
};
use cinder_env::vector::VecStep;
use cinder_env::wrappers::{FrameLog, RenderCollection};
use cinder_env::{
    AutoresetMode, DynEnv, EnvState, Frame, Space, SyncVectorEnv, Value, VectorEnv, make, spec,
};
use cinder_rl::callbacks::{Callback, EvalCallback, EvalOptions, StopOnTrainingReturn};
use cinder_rl::policy_gradient::{self, PolicyGradient};
use cinder_rl::ppo::{self, Ppo};
use cinder_rl::run::{self, Evaluation, Learner, RunDir, RunSummary, TrainOptions, files};
use cinder_rl::trpo::{self, Trpo};

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The seed of the first evaluation episode unless told otherwise (episode `k` uses
/// `EVAL_SEED + k`): far from the training seeds, so that evaluation starts from states the
/// training run did not reset to.
pub const EVAL_SEED: u64 = 10_000;

/// How a run is driven, besides its configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOptions {
    /// Greedy evaluation episodes at the end (0: none).
    pub eval_episodes: usize,
    /// Seed of the first evaluation episode.
    pub eval_seed: u64,
    /// Write a checkpoint every this many updates (and at the end; 0: only at the end).
    pub checkpoint_every: u64,
    /// Show a progress bar (plain lines when the output is not a terminal).
    pub progress: bool,
    /// Evaluate during training (SB3's `EvalCallback`): greedy episodes on a separate env every
    /// so many steps, `evaluations.jsonl` and the best policy as `best.ckpt` in the run
    /// directory.
    pub periodic_eval: Option<PeriodicEval>,
    /// Stop training once this return is reached: by the periodic evaluation's mean when there
    /// is one, else by the mean of the last 20 training returns.
    pub stop_at_return: Option<f64>,
    /// The user's own hooks, called after every update after the built-in ones.
    pub callbacks: Vec<UserCallback>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            eval_episodes: 20,
            eval_seed: EVAL_SEED,
            checkpoint_every: 50,
            progress: true,
            periodic_eval: None,
            stop_at_return: None,
            callbacks: Vec::new(),
        }
    }
}

/// Evaluation during training (see [`RunOptions::periodic_eval`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeriodicEval {
    /// Evaluate every this many env steps.
    pub every_steps: u64,
    /// Greedy episodes per evaluation (seeded [`RunOptions::eval_seed`], `+ 1`, ...).
    pub episodes: usize,
}

/// A user's [`Callback`] shared with the runner (which locks it during training).
#[derive(Clone)]
pub struct UserCallback(pub Arc<Mutex<dyn Callback + Send>>);

impl UserCallback {
    /// Shares `callback` with the runner; keep a clone of the `Arc` to read it afterwards.
    pub fn new(callback: Arc<Mutex<dyn Callback + Send>>) -> Self {
        Self(callback)
    }
}

impl std::fmt::Debug for UserCallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UserCallback")
    }
}

impl PartialEq for UserCallback {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// A new run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSpec {
    /// The registered env id (`cinder envs` lists them).
    pub env_id: String,
    /// The algorithm.
    pub algorithm: Algorithm,
    /// Its complete configuration (seed and budget included), e.g. from
    /// [`crate::presets::resolve`].
    pub config: AlgorithmConfig,
    /// Where the configuration's preset came from, recorded in `config.json`.
    pub preset_source: Option<String>,
    /// The backend to train on.
    pub backend: BackendKind,
    /// The run directory to create; `None` trains without writing files.
    pub out: Option<PathBuf>,
    /// Evaluation, checkpoints, progress.
    pub options: RunOptions,
}

/// What `config.json` says about a run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    /// The env id.
    pub env_id: String,
    /// The algorithm.
    pub algorithm: Algorithm,
    /// The backend it was created on.
    pub backend: String,
}

impl RunInfo {
    /// Reads the run directory's `config.json`.
    pub fn read(dir: &Path) -> Result<Self, Error> {
        let json: serde_json::Value = RunDir::read_config(dir)?;
        let field = |name: &str| {
            json[name].as_str().map(str::to_string).ok_or_else(|| {
                Error::Config(format!(
                    "{}: config.json names no {name}; is this a Cinder run directory?",
                    dir.display()
                ))
            })
        };
        Ok(Self {
            env_id: field("env")?,
            algorithm: field("algorithm")?.parse()?,
            backend: field("backend")?,
        })
    }
}

/// The directory a run is written to when none is given:
/// `runs/<env>_<algorithm>-s<seed>-<unix time>`.
pub fn default_run_dir(env_id: &str, algorithm: Algorithm, seed: u64) -> PathBuf {
    let name = env_id.split('-').next().unwrap_or(env_id).to_lowercase();
    timestamped_run_dir(&name, algorithm.name(), seed)
}

/// `runs/<name>_<algorithm>-s<seed>-<unix time>`: a new run directory's default path.
pub fn timestamped_run_dir(name: &str, algorithm: &str, seed: u64) -> PathBuf {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    PathBuf::from(format!("runs/{name}_{algorithm}-s{seed}-{now}"))
}

/// Trains a new run to the end of its budget, evaluates it and (with a run directory) writes
/// `summary.json`.
///
/// Errors: an unknown env id (listing the known ones), a configuration that does not fit the
/// algorithm, the env or itself, a backend not compiled in, a run directory that already holds
/// a run, I/O, and any training error (e.g. a non-finite loss).
pub fn train(spec: RunSpec) -> Result<RunSummary, Error> {
    spec_check(&spec)?;
    let kind = spec.backend;
    dispatch(kind, Task::Train(spec))?.map(Outcome::summary)
}

/// Continues the run in `dir` from its checkpoint to the end of its budget (on its own backend
/// unless `backend` says otherwise), then evaluates it and rewrites `summary.json`.
pub fn resume(
    dir: &Path,
    backend: Option<BackendKind>,
    options: &RunOptions,
) -> Result<RunSummary, Error> {
    let info = RunInfo::read(dir)?;
    let kind = backend_of(&info, backend)?;
    let task = Task::Resume {
        dir: dir.to_path_buf(),
        info,
        kind,
        options: options.clone(),
    };
    dispatch(kind, task)?.map(Outcome::summary)
}

/// Reloads the policy (and its normalisation statistics) of the run in `dir` from its
/// checkpoint and runs `episodes` greedy episodes, the first seeded `seed`. With the seed and
/// episode count of the run's own evaluation it reproduces `summary.json`'s evaluation.
pub fn evaluate(
    dir: &Path,
    episodes: usize,
    seed: u64,
    backend: Option<BackendKind>,
) -> Result<Evaluation, Error> {
    evaluate_checkpoint(dir, files::CHECKPOINT, episodes, seed, backend)
}

/// [`evaluate`] with another checkpoint of the run in `dir`, such as the best policy of its
/// periodic evaluation ([`cinder_rl::callbacks::files::BEST_CHECKPOINT`]); an error names a
/// checkpoint the run does not have.
pub fn evaluate_checkpoint(
    dir: &Path,
    checkpoint: &str,
    episodes: usize,
    seed: u64,
    backend: Option<BackendKind>,
) -> Result<Evaluation, Error> {
    let info = RunInfo::read(dir)?;
    let kind = backend_of(&info, backend)?;
    let checkpoint = existing_checkpoint(dir, checkpoint)?;
    let task = Task::Evaluate {
        checkpoint,
        info,
        episodes,
        seed,
        record: None,
    };
    match dispatch(kind, task)?? {
        Outcome::Evaluation(evaluation) => Ok(evaluation),
        Outcome::Summary(summary) => summary
            .evaluation
            .ok_or_else(|| Error::Config("no evaluation was run".into())),
    }
}

/// [`evaluate_checkpoint`], also drawing the first episode: its frames (one after the reset
/// and one per step, as the env's `render` draws them) and the env's recording frame rate.
/// [`save_gif`](cinder_env::render::save_gif) turns them into an animated GIF.
pub fn record_episode(
    dir: &Path,
    checkpoint: &str,
    episodes: usize,
    seed: u64,
    backend: Option<BackendKind>,
) -> Result<(Evaluation, Vec<Frame>, u32), Error> {
    let info = RunInfo::read(dir)?;
    let fps = spec(&info.env_id)?.render_fps;
    let kind = backend_of(&info, backend)?;
    let checkpoint = existing_checkpoint(dir, checkpoint)?;
    let frames = FrameLog::default();
    let task = Task::Evaluate {
        checkpoint,
        info,
        episodes: episodes.max(1),
        seed,
        record: Some(Arc::clone(&frames)),
    };
    let evaluation = match dispatch(kind, task)?? {
        Outcome::Evaluation(evaluation) => evaluation,
        Outcome::Summary(summary) => summary
            .evaluation
            .ok_or_else(|| Error::Config("no evaluation was run".into()))?,
    };
    let frames = std::mem::take(&mut *frames.lock().unwrap_or_else(|e| e.into_inner()));
    Ok((evaluation, frames, fps))
}

/// `dir/name`, or an error saying that the run has no such checkpoint.
fn existing_checkpoint(dir: &Path, name: &str) -> Result<PathBuf, Error> {
    let checkpoint = dir.join(name);
    if checkpoint.is_file() {
        return Ok(checkpoint);
    }
    Err(Error::Config(format!(
        "{} does not exist{}",
        checkpoint.display(),
        if name == cinder_rl::callbacks::files::BEST_CHECKPOINT {
            " (the best policy is kept by runs trained with periodic evaluation, --eval-every)"
        } else {
            ""
        }
    )))
}

/// The backend to use: the one asked for, else the run's own.
fn backend_of(info: &RunInfo, asked: Option<BackendKind>) -> Result<BackendKind, Error> {
    match asked {
        Some(kind) => Ok(kind),
        // The recorded name may carry the device ("wgpu (…)"): its first word is the backend.
        None => Ok(info
            .backend
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .parse()?),
    }
}

/// Checks what can be checked before a backend starts.
fn spec_check(run: &RunSpec) -> Result<(), Error> {
    spec(&run.env_id)?;
    let fits = matches!(
        (&run.config, run.algorithm),
        (AlgorithmConfig::Ppo(_), Algorithm::Ppo)
            | (
                AlgorithmConfig::PolicyGradient(_),
                Algorithm::Reinforce | Algorithm::Grpo
            )
            | (AlgorithmConfig::Trpo(_), Algorithm::Trpo)
    );
    if !fits {
        return Err(Error::Config(format!(
            "the configuration given is not a {} configuration",
            run.algorithm
        )));
    }
    run.config.validate()
}

/// What a task gives back.
enum Outcome {
    Summary(Box<RunSummary>),
    Evaluation(Evaluation),
}

impl Outcome {
    fn summary(self) -> RunSummary {
        match self {
            Self::Summary(summary) => *summary,
            Self::Evaluation(evaluation) => RunSummary {
                env: String::new(),
                algorithm: String::new(),
                backend: String::new(),
                seed: 0,
                total_steps: 0,
                updates: 0,
                wall_seconds: 0.0,
                steps_per_second: 0.0,
                train_episodes: 0,
                train_mean_return_last_20: None,
                solved_at_step: None,
                solved_at_seconds: None,
                evaluation: Some(evaluation),
                timings: Default::default(),
                stopped_early: None,
            },
        }
    }
}

/// The runner's work, generic over the backend (instantiated once per compiled backend, here).
enum Task {
    Train(RunSpec),
    Resume {
        dir: PathBuf,
        info: RunInfo,
        kind: BackendKind,
        options: RunOptions,
    },
    Evaluate {
        checkpoint: PathBuf,
        info: RunInfo,
        episodes: usize,
        seed: u64,
        /// Where to keep the first episode's frames, if drawn.
        record: Option<FrameLog>,
    },
}

/// PPO's and TRPO's vector env, with same-step autoreset: a classic-control env's
/// struct-of-arrays vector env (identical results, faster), or any registered env stepped in
/// lockstep.
pub enum PpoEnvs {
    /// A classic-control env with discrete actions, and a buffer for the actions' indices.
    Discrete(Box<dyn VectorEnv<Action = usize> + Send>, Vec<usize>),
    /// A classic-control env with a one-dimensional continuous action, and a buffer for them.
    Continuous(Box<dyn VectorEnv<Action = [f32; 1]> + Send>, Vec<[f32; 1]>),
    /// Any other env.
    Any(Box<SyncVectorEnv<DynEnv>>),
}

fn ppo_envs(env_id: &str, n: usize) -> Result<PpoEnvs, Error> {
    let same = AutoresetMode::SameStep;
    let discrete = |envs: Box<dyn VectorEnv<Action = usize> + Send>| {
        Ok(PpoEnvs::Discrete(envs, Vec::with_capacity(n)))
    };
    let continuous = |envs: Box<dyn VectorEnv<Action = [f32; 1]> + Send>| {
        Ok(PpoEnvs::Continuous(envs, Vec::with_capacity(n)))
    };
    match env_id {
        "CartPole-v1" => discrete(Box::new(CartPoleVec::new(n, same)?)),
        "Acrobot-v1" => discrete(Box::new(AcrobotVec::new(n, same)?)),
        "MountainCar-v0" => discrete(Box::new(MountainCarVec::new(n, same)?)),
        "MountainCarContinuous-v0" => continuous(Box::new(MountainCarContinuousVec::new(n, same)?)),
        "Pendulum-v1" => continuous(Box::new(PendulumVec::new(n, same)?)),
        _ => {
            let envs = (0..n).map(|_| make(env_id)).collect::<Result<_, _>>()?;
            Ok(PpoEnvs::Any(Box::new(SyncVectorEnv::new(envs, same)?)))
        }
    }
}

/// Dispatches a `VectorEnv` method to the variant's vector env.
macro_rules! each_envs {
    ($self:expr, $v:ident => $body:expr) => {
        match $self {
            PpoEnvs::Discrete($v, _) => $body,
            PpoEnvs::Continuous($v, _) => $body,
            PpoEnvs::Any($v) => $body,
        }
    };
}

impl VectorEnv for PpoEnvs {
    type Action = Value;

    fn num_envs(&self) -> usize {
        each_envs!(self, v => v.num_envs())
    }
    fn single_observation_space(&self) -> &Space {
        each_envs!(self, v => v.single_observation_space())
    }
    fn single_action_space(&self) -> &Space {
        each_envs!(self, v => v.single_action_space())
    }
    fn autoreset_mode(&self) -> AutoresetMode {
        each_envs!(self, v => v.autoreset_mode())
    }
    fn reset(&mut self, seed: Option<u64>) -> cinder_env::Result<&[f32]> {
        each_envs!(self, v => v.reset(seed))
    }
    fn step(&mut self, actions: &[Value]) -> cinder_env::Result<VecStep<'_>> {
        match self {
            Self::Discrete(v, buffer) => {
                buffer.clear();
                for action in actions {
                    match action {
                        Value::Discrete(a) => buffer.push(*a),
                        Value::Continuous(_) => {
                            return Err(cinder_env::EnvError::ActionKind {
                                expected: "discrete",
                                got: "continuous",
                            });
                        }
                    }
                }
                v.step(buffer)
            }
            Self::Continuous(v, buffer) => {
                buffer.clear();
                for action in actions {
                    match action {
                        Value::Continuous(a) if a.len() == 1 => buffer.push([a[0]]),
                        Value::Continuous(a) => {
                            return Err(cinder_env::EnvError::ActionShape {
                                expected: 1,
                                got: a.len(),
                            });
                        }
                        Value::Discrete(_) => {
                            return Err(cinder_env::EnvError::ActionKind {
                                expected: "continuous",
                                got: "discrete",
                            });
                        }
                    }
                }
                v.step(buffer)
            }
            Self::Any(v) => v.step(actions),
        }
    }
    fn obs_dim(&self) -> usize {
        each_envs!(self, v => v.obs_dim())
    }
    fn save_state(&self) -> cinder_env::Result<EnvState> {
        each_envs!(self, v => v.save_state())
    }
    fn load_state(&mut self, state: &EnvState) -> cinder_env::Result<()> {
        each_envs!(self, v => v.load_state(state))
    }
}

fn pg_envs(env_id: &str, n: usize) -> Result<Vec<DynEnv>, Error> {
    Ok((0..n).map(|_| make(env_id)).collect::<Result<_, _>>()?)
}

impl BackendTask for Task {
    type Output = Result<Outcome, Error>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<Outcome, Error> {
        match self {
            Task::Train(spec) => {
                let backend = format!("{} ({})", spec.backend, B::name(&device));
                let mut run_dir = match &spec.out {
                    Some(out) => {
                        let mut meta = serde_json::json!({
                            "env": spec.env_id,
                            "algorithm": spec.algorithm.name(),
                            "backend": backend,
                            "preset": spec.preset_source,
                        });
                        meta[spec.algorithm.name()] = spec.config.to_json();
                        Some(RunDir::create(out, &meta)?)
                    }
                    None => None,
                };
                let summary = match spec.config {
                    AlgorithmConfig::Ppo(config) => {
                        let envs = ppo_envs(&spec.env_id, config.num_envs)?;
                        let mut learner = Ppo::<B, _>::new(config, envs, device)?;
                        finish(
                            &mut learner,
                            run_dir.as_mut(),
                            &spec.env_id,
                            spec.algorithm,
                            backend,
                            &spec.options,
                        )?
                    }
                    AlgorithmConfig::PolicyGradient(config) => {
                        let envs = pg_envs(&spec.env_id, config.episodes_per_batch)?;
                        let mut learner = PolicyGradient::<B, _>::new(config, envs, device)?;
                        finish(
                            &mut learner,
                            run_dir.as_mut(),
                            &spec.env_id,
                            spec.algorithm,
                            backend,
                            &spec.options,
                        )?
                    }
                    AlgorithmConfig::Trpo(config) => {
                        let envs = ppo_envs(&spec.env_id, config.num_envs)?;
                        let mut learner = Trpo::<B, _>::new(config, envs, device)?;
                        finish(
                            &mut learner,
                            run_dir.as_mut(),
                            &spec.env_id,
                            spec.algorithm,
                            backend,
                            &spec.options,
                        )?
                    }
                };
                Ok(Outcome::Summary(Box::new(summary)))
            }
            Task::Resume {
                dir,
                info,
                kind,
                options,
            } => {
                let backend = format!("{kind} ({})", B::name(&device));
                let checkpoint = dir.join(files::CHECKPOINT);
                let summary = match info.algorithm {
                    Algorithm::Ppo => continue_run(
                        &mut resume_ppo::<B>(&checkpoint, &info.env_id, device)?,
                        &dir,
                        &info,
                        backend,
                        &options,
                    )?,
                    Algorithm::Reinforce | Algorithm::Grpo => continue_run(
                        &mut resume_pg::<B>(&checkpoint, &info.env_id, device)?,
                        &dir,
                        &info,
                        backend,
                        &options,
                    )?,
                    Algorithm::Trpo => continue_run(
                        &mut resume_trpo::<B>(&checkpoint, &info.env_id, device)?,
                        &dir,
                        &info,
                        backend,
                        &options,
                    )?,
                };
                Ok(Outcome::Summary(Box::new(summary)))
            }
            Task::Evaluate {
                checkpoint,
                info,
                episodes,
                seed,
                record,
            } => {
                let mut env = make(&info.env_id)?;
                let mut log = None;
                if record.is_some() {
                    let recorder = RenderCollection::new(env).with_max_episodes(1);
                    log = Some(recorder.frames());
                    env = Box::new(recorder);
                }
                let returns = match info.algorithm {
                    Algorithm::Ppo => resume_ppo::<B>(&checkpoint, &info.env_id, device)?
                        .evaluate(&mut env, episodes, seed)?,
                    Algorithm::Reinforce | Algorithm::Grpo => {
                        resume_pg::<B>(&checkpoint, &info.env_id, device)?
                            .evaluate(&mut env, episodes, seed)?
                    }
                    Algorithm::Trpo => resume_trpo::<B>(&checkpoint, &info.env_id, device)?
                        .evaluate(&mut env, episodes, seed)?,
                };
                if let (Some(out), Some(log)) = (record, log) {
                    let kept = std::mem::take(&mut *log.lock().unwrap_or_else(|e| e.into_inner()));
                    *out.lock().unwrap_or_else(|e| e.into_inner()) = kept;
                }
                Ok(Outcome::Evaluation(Evaluation::from_returns(returns)))
            }
        }
    }
}

fn resume_ppo<B: AutodiffBackend>(
    checkpoint: &Path,
    env_id: &str,
    device: B::Device,
) -> Result<Ppo<B, PpoEnvs>, Error> {
    // The checkpoint holds the configuration the envs must match.
    let config = ppo::checkpoint_config(checkpoint)?;
    let envs = ppo_envs(env_id, config.num_envs)?;
    Ok(Ppo::resume(checkpoint, envs, device)?)
}

fn resume_trpo<B: AutodiffBackend>(
    checkpoint: &Path,
    env_id: &str,
    device: B::Device,
) -> Result<Trpo<B, PpoEnvs>, Error> {
    let config = trpo::checkpoint_config(checkpoint)?;
    let envs = ppo_envs(env_id, config.num_envs)?;
    Ok(Trpo::resume(checkpoint, envs, device)?)
}

fn resume_pg<B: AutodiffBackend>(
    checkpoint: &Path,
    env_id: &str,
    device: B::Device,
) -> Result<PolicyGradient<B, DynEnv>, Error> {
    let config = policy_gradient::checkpoint_config(checkpoint)?;
    let envs = pg_envs(env_id, config.episodes_per_batch)?;
    Ok(PolicyGradient::resume(checkpoint, envs, device)?)
}

/// Continues a resumed `learner` in its run directory `dir` (metric lines after its
/// checkpoint dropped) to the end of its budget, as [`finish`] does.
fn continue_run<L: Learner>(
    learner: &mut L,
    dir: &Path,
    info: &RunInfo,
    backend: String,
    options: &RunOptions,
) -> Result<RunSummary, Error> {
    let mut run_dir = RunDir::reopen(dir, learner.iteration())?;
    finish(
        learner,
        Some(&mut run_dir),
        &info.env_id,
        info.algorithm,
        backend,
        options,
    )
}

/// Trains `learner` to the end of its budget, evaluates it, and writes the summary.
fn finish<L: Learner>(
    learner: &mut L,
    run_dir: Option<&mut RunDir>,
    env_id: &str,
    algorithm: Algorithm,
    backend: String,
    options: &RunOptions,
) -> Result<RunSummary, Error> {
    let threshold = spec(env_id)?.reward_threshold;
    let train_options = TrainOptions {
        checkpoint_every: options.checkpoint_every,
        progress: options.progress,
        solve_threshold: threshold,
    };
    let mut run_dir = run_dir;
    // The built-in hooks first (periodic evaluation, or the training-return stop), then the
    // user's, in order.
    let mut eval_callback = match options.periodic_eval {
        Some(periodic) => Some(EvalCallback::new(
            make(env_id)?,
            EvalOptions {
                every_steps: periodic.every_steps,
                episodes: periodic.episodes,
                seed: options.eval_seed,
                stop_at_return: options.stop_at_return,
            },
        )?),
        None => None,
    };
    let mut training_stop = match (options.periodic_eval, options.stop_at_return) {
        (None, Some(threshold)) => Some(StopOnTrainingReturn { threshold }),
        _ => None,
    };
    let mut user_guards = Vec::with_capacity(options.callbacks.len());
    for callback in &options.callbacks {
        user_guards.push(callback.0.lock().map_err(|_| {
            Error::Config(
                "a user callback panicked in an earlier run (its lock is poisoned)".into(),
            )
        })?);
    }
    let mut callbacks: Vec<&mut dyn Callback> = Vec::new();
    if let Some(c) = eval_callback.as_mut() {
        callbacks.push(c);
    }
    if let Some(c) = training_stop.as_mut() {
        callbacks.push(c);
    }
    for guard in user_guards.iter_mut() {
        callbacks.push(&mut **guard);
    }
    let report = run::train_with_callbacks(
        learner,
        run_dir.as_deref_mut(),
        &train_options,
        &mut callbacks,
    )?;
    drop(callbacks);
    drop(user_guards);
    let evaluation = if options.eval_episodes > 0 {
        let mut env = make(env_id)?;
        Some(Evaluation::from_returns(learner.evaluate(
            &mut env,
            options.eval_episodes,
            options.eval_seed,
        )?))
    } else {
        None
    };
    let steps = learner.global_step();
    let wall = learner.wall_seconds();
    let summary = RunSummary {
        env: env_id.into(),
        algorithm: algorithm.name().into(),
        backend,
        seed: learner.seed(),
        total_steps: steps,
        updates: learner.iteration(),
        wall_seconds: wall,
        steps_per_second: steps as f64 / wall.max(1e-9),
        train_episodes: report.episodes,
        train_mean_return_last_20: report.mean_last_returns(),
        solved_at_step: report.solved_at_step,
        solved_at_seconds: report.solved_at_seconds,
        evaluation,
        timings: report.timings,
        stopped_early: report.stopped_early,
    };
    if let Some(run_dir) = run_dir {
        run_dir.write_summary(&summary)?;
    }
    Ok(summary)
}

/// Continues the sequence run in `dir` from its checkpoint to `rl_steps` RL steps (`None`:
/// its own budget), then evaluates it and rewrites `summary.json` (see
/// [`cinder_lm::run::resume`]); `log` receives progress lines.
pub fn resume_sequence(
    dir: &Path,
    backend: BackendKind,
    rl_steps: Option<usize>,
    log: Box<dyn FnMut(&str)>,
) -> Result<cinder_lm::run::SequenceRunSummary, Error> {
    struct ResumeTask {
        dir: PathBuf,
        rl_steps: Option<usize>,
        log: Box<dyn FnMut(&str)>,
    }
    impl BackendTask for ResumeTask {
        type Output = cinder_lm::Result<cinder_lm::run::SequenceRunSummary>;
        fn run<B: AutodiffBackend>(mut self, device: B::Device) -> Self::Output {
            cinder_lm::run::resume::<B>(&self.dir, self.rl_steps, &device, &mut *self.log)
        }
    }
    let task = ResumeTask {
        dir: dir.to_path_buf(),
        rl_steps,
        log,
    };
    let summary = dispatch(backend, task)??;
    write_curves(dir, &summary)?;
    Ok(summary)
}

/// Writes `curves.svg` (reward and held-out accuracy against the RL step) into a sequence
/// run's directory.
fn write_curves(dir: &Path, summary: &cinder_lm::run::SequenceRunSummary) -> Result<(), Error> {
    let title = format!(
        "{}: held-out exact match {:.3} -> {:.3} ({})",
        summary.task,
        summary.accuracy_before,
        summary.accuracy_after,
        dir.display()
    );
    crate::plot::sequence_curves(&[dir.to_path_buf()], &dir.join(CURVES), &title)
}

/// The learning curves' file in a sequence run's directory.
pub const CURVES: &str = "curves.svg";

/// Runs a sequence task (warm start, then GRPO or RLOO; [`cinder_lm::run`]) on `backend`,
/// writing the run directory `out` when given (with `curves.svg`); `log` receives progress lines. The one place the
/// sequence pipeline is instantiated per compiled backend.
///
/// ```no_run
/// use cinder::backend::BackendKind;
/// use cinder::lm::run::SequenceRunConfig;
///
/// let summary = cinder::runner::train_sequence(
///     SequenceRunConfig::new(),
///     BackendKind::cpu(),
///     Some("runs/addition".into()),
///     Box::new(|line: &str| eprintln!("{line}")),
/// )?;
/// println!("{} -> {}", summary.accuracy_before, summary.accuracy_after);
/// # Ok::<(), cinder::Error>(())
/// ```
pub fn train_sequence(
    config: cinder_lm::run::SequenceRunConfig,
    backend: BackendKind,
    out: Option<PathBuf>,
    log: Box<dyn FnMut(&str)>,
) -> Result<cinder_lm::run::SequenceRunSummary, Error> {
    struct SequenceTask {
        config: cinder_lm::run::SequenceRunConfig,
        out: Option<PathBuf>,
        log: Box<dyn FnMut(&str)>,
    }
    impl BackendTask for SequenceTask {
        type Output = cinder_lm::Result<cinder_lm::run::SequenceRunSummary>;
        fn run<B: AutodiffBackend>(mut self, device: B::Device) -> Self::Output {
            cinder_lm::run::run::<B>(&self.config, &device, self.out.as_deref(), &mut *self.log)
        }
    }
    let summary = dispatch(
        backend,
        SequenceTask {
            config,
            out: out.clone(),
            log,
        },
    )??;
    if let Some(dir) = &out {
        write_curves(dir, &summary)?;
    }
    Ok(summary)
}

/// Measures the sequence pipeline's sampling throughput (with and without the KV cache) and
/// GRPO's and PPO's step times on `backend` ([`cinder_lm::throughput`], what
/// `cinder-bench sequence` reports); `log` receives a line per workload.
pub fn sequence_throughput(
    config: &cinder_lm::throughput::ThroughputConfig,
    backend: BackendKind,
    log: Box<dyn FnMut(&str)>,
) -> Result<cinder_lm::throughput::ThroughputReport, Error> {
    struct ThroughputTask<'a> {
        config: &'a cinder_lm::throughput::ThroughputConfig,
        log: Box<dyn FnMut(&str)>,
    }
    impl BackendTask for ThroughputTask<'_> {
        type Output = cinder_lm::Result<cinder_lm::throughput::ThroughputReport>;
        fn run<B: AutodiffBackend>(mut self, device: B::Device) -> Self::Output {
            cinder_lm::throughput::measure::<B>(self.config, &device, &mut *self.log)
        }
    }
    Ok(dispatch(backend, ThroughputTask { config, log })??)
}
