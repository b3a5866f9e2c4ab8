//! Runs a user can keep: the run directory, the training loop around any [`Learner`] (progress,
//! metrics, periodic checkpoints) and the end-of-run summary.
//!
//! A run directory holds
//!
//! - `config.json`: the algorithm's configuration, as given;
//! - `metrics.jsonl`: one JSON object per update (losses, KL, clip fraction, explained variance,
//!   gradient norm, learning rate, steps/s, the returns and lengths of the episodes that ended);
//! - `checkpoint.ckpt`: the latest checkpoint (policy, optimiser, counters, random generators,
//!   env states), replaced atomically every `checkpoint_every` updates and at the end;
//! - `summary.json`: written at the end (env, algorithm, backend, seed, steps, wall time,
//!   steps/s, final evaluation);
//! - `events.out.tfevents.*`: the same metrics for TensorBoard (`tensorboard --logdir DIR`),
//!   under CleanRL's and SB3's names ([`crate::tensorboard`]).
//!
//! Resuming reopens the directory, drops metric lines written after the checkpoint (by a run
//! that died later), rewrites the TensorBoard file from the lines kept, and continues from the
//! checkpoint.

use crate::callbacks::{Callback, UpdateEvent};
use crate::error::{Result, RlError};
use crate::tensorboard::{self, EventWriter};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fs;
use std::io::{IsTerminal, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// File names inside a run directory.
pub mod files {
    /// The configuration.
    pub const CONFIG: &str = "config.json";
    /// Metrics, one JSON line per update.
    pub const METRICS: &str = "metrics.jsonl";
    /// The latest checkpoint.
    pub const CHECKPOINT: &str = "checkpoint.ckpt";
    /// The end-of-run summary.
    pub const SUMMARY: &str = "summary.json";
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> RlError + '_ {
    move |source| RlError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What every algorithm's per-update metrics expose to the training loop.
pub trait UpdateReport: Serialize {
    /// 1-based update number.
    fn iteration(&self) -> u64;
    /// Env steps taken so far.
    fn global_step(&self) -> u64;
    /// The fields every update reports after its algorithm's own.
    fn common(&self) -> &UpdateCommon;
    /// Wall-clock seconds of training so far (across resumes).
    fn wall_seconds(&self) -> f64 {
        self.common().wall_seconds
    }
    /// Returns of the episodes that ended during this update.
    fn episode_returns(&self) -> &[f64] {
        &self.common().episode_returns
    }
    /// Where this update's time went.
    fn timings(&self) -> Timings {
        self.common().timings
    }
}

/// What every algorithm's update reports after its own figures: speed, time and the episodes
/// that ended. Flattened into the algorithm's metrics (`#[serde(flatten)]`), so a line of
/// `metrics.jsonl` carries these keys at its top level, last.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateCommon {
    /// Env steps per second over this update (rollout and optimisation).
    pub steps_per_second: f64,
    /// Where this update's time went.
    pub timings: Timings,
    /// Wall-clock seconds of training so far (rollouts and updates, across resumes).
    pub wall_seconds: f64,
    /// Returns of the episodes that ended during this update.
    pub episode_returns: Vec<f64>,
    /// Lengths of those episodes.
    pub episode_lengths: Vec<u64>,
}

impl UpdateCommon {
    /// These fields with the wall-clock ones (steps/s, timings, wall seconds) zeroed: what must
    /// be equal between two runs with the same seed.
    pub fn without_timings(self) -> Self {
        Self {
            steps_per_second: 0.0,
            timings: Timings::default(),
            wall_seconds: 0.0,
            ..self
        }
    }
}

/// Seconds spent in each phase of one update.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Stepping the envs.
    pub env: f64,
    /// Rollout inference (policy and values on the inner backend or the host copy, sampling).
    pub inference: f64,
    /// Advantages, then the optimisation steps.
    pub update: f64,
}

impl std::ops::AddAssign for Timings {
    fn add_assign(&mut self, other: Self) {
        self.env += other.env;
        self.inference += other.inference;
        self.update += other.update;
    }
}

/// What the training loop needs from an earlier update's metric line (on resume).
#[derive(Debug, Clone, Deserialize)]
struct HistoryEntry {
    global_step: u64,
    #[serde(default)]
    wall_seconds: f64,
    #[serde(default)]
    episode_returns: Vec<f64>,
}

/// An algorithm the training loop can drive: one `iterate` per update, checkpoints on demand.
pub trait Learner {
    /// What one update reports.
    type Report: UpdateReport;
    /// Runs one update (rollout and optimisation).
    fn iterate(&mut self) -> Result<Self::Report>;
    /// Updates done so far.
    fn iteration(&self) -> u64;
    /// Whether the run's budget is spent (no further `iterate`).
    fn finished(&self) -> bool;
    /// The run's seed (of its policy initialisation, sampling and envs).
    fn seed(&self) -> u64;
    /// Env steps taken so far.
    fn global_step(&self) -> u64;
    /// Env steps the whole run takes (a learner whose updates take a variable number of steps
    /// stops at the first update that reaches it).
    fn total_steps(&self) -> u64;
    /// Wall-clock seconds spent in `iterate`, including before a resume.
    fn wall_seconds(&self) -> f64;
    /// Writes a checkpoint that resumes this learner exactly ([`crate::ppo::Ppo::resume`],
    /// [`crate::policy_gradient::PolicyGradient::resume`]).
    fn save_checkpoint(&self, path: &Path) -> Result<()>;
    /// Runs `episodes` episodes of the current greedy policy on `env` (episode `k` seeded
    /// `seed + k`), seeing observations as the policy saw them in training (frozen
    /// normalisation statistics, if any), and returns the env's undiscounted returns.
    fn evaluate(
        &self,
        env: &mut cinder_env::DynEnv,
        episodes: usize,
        seed: u64,
    ) -> Result<Vec<f64>>;
}

/// A run directory (see the [module docs](self)).
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    metrics: fs::File,
    events: EventWriter,
    /// The updates before a resume, so that episode statistics span the whole run.
    history: Vec<HistoryEntry>,
}

impl RunDir {
    /// Creates a new run directory at `path` (and its parents) and writes `config`. Refuses a
    /// directory that already holds a run, so that nothing is overwritten by mistake.
    pub fn create(path: impl AsRef<Path>, config: &impl Serialize) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        fs::create_dir_all(&path).map_err(io_error(&path))?;
        for existing in [files::CHECKPOINT, files::METRICS] {
            if path.join(existing).exists() {
                return Err(RlError::InvalidConfig(format!(
                    "{} already holds a run ({existing} exists): resume it, or choose another directory",
                    path.display()
                )));
            }
        }
        let config_json = serde_json::to_vec_pretty(config).map_err(|e| {
            RlError::InvalidConfig(format!("the configuration does not serialise: {e}"))
        })?;
        crate::checkpoint::write_file_atomic(&path.join(files::CONFIG), &config_json)?;
        let metrics_path = path.join(files::METRICS);
        let metrics = fs::File::create(&metrics_path).map_err(io_error(&metrics_path))?;
        let events = EventWriter::create(&path)?;
        Ok(Self {
            path,
            metrics,
            events,
            history: Vec::new(),
        })
    }

    /// Reopens a run directory to resume it after update `iteration` (the checkpoint's):
    /// metric lines of later updates are dropped, new ones are appended.
    pub fn reopen(path: impl AsRef<Path>, iteration: u64) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let metrics_path = path.join(files::METRICS);
        let text = fs::read_to_string(&metrics_path).unwrap_or_default();
        let mut kept = String::with_capacity(text.len());
        let mut kept_values = Vec::new();
        let mut history = Vec::new();
        for line in text.lines() {
            let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let keep = value
                .get("iteration")
                .and_then(|i| i.as_u64())
                .is_some_and(|i| i <= iteration);
            if keep {
                if let Ok(entry) = HistoryEntry::deserialize(&value) {
                    history.push(entry);
                }
                kept.push_str(line);
                kept.push('\n');
                kept_values.push(value);
            }
        }
        crate::checkpoint::write_file_atomic(&metrics_path, kept.as_bytes())?;
        let metrics = fs::OpenOptions::new()
            .append(true)
            .open(&metrics_path)
            .map_err(io_error(&metrics_path))?;
        // The TensorBoard file follows metrics.jsonl: written afresh from the lines kept, so
        // that it holds no update the resumed run will redo.
        for old in tensorboard::event_files(&path)? {
            fs::remove_file(&old).map_err(io_error(&old))?;
        }
        let mut events = EventWriter::create(&path)?;
        let wall_time = tensorboard::now();
        for value in &kept_values {
            events.add_metrics(value, wall_time)?;
        }
        events.flush()?;
        Ok(Self {
            path,
            metrics,
            events,
            history,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the checkpoint goes.
    pub fn checkpoint_path(&self) -> PathBuf {
        self.path.join(files::CHECKPOINT)
    }

    /// Reads `config.json` back.
    pub fn read_config<C: serde::de::DeserializeOwned>(path: impl AsRef<Path>) -> Result<C> {
        let file = path.as_ref().join(files::CONFIG);
        let text = fs::read_to_string(&file).map_err(io_error(&file))?;
        serde_json::from_str(&text).map_err(|e| {
            RlError::InvalidConfig(format!(
                "{} is not a valid configuration: {e}",
                file.display()
            ))
        })
    }

    /// Appends one update's metrics as a JSON line, and its scalars to the TensorBoard file
    /// (flushed, so that a running TensorBoard sees them).
    pub fn append_metrics(&mut self, metrics: &impl Serialize) -> Result<()> {
        let metrics_path = self.path.join(files::METRICS);
        let value = serde_json::to_value(metrics)
            .map_err(|e| RlError::InvalidConfig(format!("metrics do not serialise: {e}")))?;
        // Written from `metrics` itself, not `value`, to keep the fields in their order.
        let mut line = serde_json::to_vec(metrics)
            .map_err(|e| RlError::InvalidConfig(format!("metrics do not serialise: {e}")))?;
        line.push(b'\n');
        self.metrics
            .write_all(&line)
            .map_err(io_error(&metrics_path))?;
        self.events.add_metrics(&value, tensorboard::now())?;
        self.events.flush()
    }

    /// The TensorBoard event file this run writes to.
    pub fn events_path(&self) -> &Path {
        self.events.path()
    }

    /// Writes `summary.json`.
    pub fn write_summary(&self, summary: &RunSummary) -> Result<()> {
        let json = serde_json::to_vec_pretty(summary)
            .map_err(|e| RlError::InvalidConfig(format!("summary does not serialise: {e}")))?;
        crate::checkpoint::write_file_atomic(&self.path.join(files::SUMMARY), &json)
    }
}

/// Mean and (population) standard deviation of evaluation returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Episodes run.
    pub episodes: usize,
    /// Mean return.
    pub mean_return: f64,
    /// Standard deviation of the returns.
    pub std_return: f64,
    /// Every episode's return.
    pub returns: Vec<f64>,
}

impl Evaluation {
    /// Statistics of `returns`.
    pub fn from_returns(returns: Vec<f64>) -> Self {
        let n = returns.len().max(1) as f64;
        let mean = returns.iter().sum::<f64>() / n;
        let var = returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n;
        Self {
            episodes: returns.len(),
            mean_return: mean,
            std_return: var.sqrt(),
            returns,
        }
    }
}

/// `summary.json`: what a run did, in one place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// The env id (for example `CartPole-v1`).
    pub env: String,
    /// The algorithm (for example `ppo`).
    pub algorithm: String,
    /// The Burn backend and device.
    pub backend: String,
    /// The run's seed.
    pub seed: u64,
    /// Env steps taken.
    pub total_steps: u64,
    /// Updates done.
    pub updates: u64,
    /// Wall-clock seconds of training (rollouts and updates, across resumes).
    pub wall_seconds: f64,
    /// `total_steps / wall_seconds`.
    pub steps_per_second: f64,
    /// Training episodes that ended.
    pub train_episodes: u64,
    /// Mean return of the last 20 training episodes.
    pub train_mean_return_last_20: Option<f64>,
    /// The first env step at which the mean of the last 20 training returns reached the env's
    /// reward threshold (the criterion of `shared/peers/ppo_cleanrl.py`), if it did.
    pub solved_at_step: Option<u64>,
    /// Wall-clock seconds when it did.
    pub solved_at_seconds: Option<f64>,
    /// The greedy policy's evaluation at the end.
    pub evaluation: Option<Evaluation>,
    /// Where the training time went (this process's part of the run, after any resume).
    #[serde(default)]
    pub timings: Timings,
    /// Why a callback stopped training before the budget was spent (a return threshold
    /// reached), if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_early: Option<String>,
}

/// How [`train`] runs.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Write a checkpoint every this many updates (and always at the end); 0: only at the end.
    pub checkpoint_every: u64,
    /// Show progress: a bar on a terminal, a line every 5% of the run otherwise.
    pub progress: bool,
    /// Mean of the last-20 training returns that counts as solved (recorded, not a stop).
    pub solve_threshold: Option<f64>,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            checkpoint_every: 50,
            progress: true,
            solve_threshold: None,
        }
    }
}

/// What [`train`] saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrainReport {
    /// Training episodes that ended during this call.
    pub episodes: u64,
    /// The last 20 training returns.
    pub last_returns: Vec<f64>,
    /// See [`RunSummary::solved_at_step`].
    pub solved_at_step: Option<u64>,
    /// See [`RunSummary::solved_at_seconds`].
    pub solved_at_seconds: Option<f64>,
    /// The updates' [`Timings`], summed over this call.
    pub timings: Timings,
    /// Why a callback stopped training before the budget was spent, if one did.
    pub stopped_early: Option<String>,
}

impl TrainReport {
    /// Mean of [`TrainReport::last_returns`].
    pub fn mean_last_returns(&self) -> Option<f64> {
        (!self.last_returns.is_empty())
            .then(|| self.last_returns.iter().sum::<f64>() / self.last_returns.len() as f64)
    }
}

/// Trains `learner` to the end of its budget: metrics to `run_dir` after every update, a
/// checkpoint every `checkpoint_every` updates and at the end, progress on stderr. An error
/// (a non-finite loss, an env failure) stops training at once, so the last checkpoint written
/// is the last good state.
pub fn train<L: Learner>(
    learner: &mut L,
    run_dir: Option<&mut RunDir>,
    options: &TrainOptions,
) -> Result<TrainReport> {
    train_with_callbacks(learner, run_dir, options, &mut [])
}

/// [`train`], calling every callback after each update (after its metrics and any periodic
/// checkpoint are written, in order). The first callback that breaks stops training after
/// that update: the learner is checkpointed (with a run directory) and the report names the
/// reason.
pub fn train_with_callbacks<L: Learner>(
    learner: &mut L,
    mut run_dir: Option<&mut RunDir>,
    options: &TrainOptions,
    callbacks: &mut [&mut dyn Callback],
) -> Result<TrainReport> {
    let progress = Progress::new(options.progress, learner);
    let mut report = TrainReport::default();
    let mut window: VecDeque<f64> = VecDeque::with_capacity(20);
    let window_len = std::cell::Cell::new(0);
    let mut record = |returns: &[f64], step: u64, wall: f64, report: &mut TrainReport| {
        for &r in returns {
            if window.len() == 20 {
                window.pop_front();
            }
            window.push_back(r);
            window_len.set(window.len());
            report.episodes += 1;
            let mean = window.iter().sum::<f64>() / window.len() as f64;
            if let (None, Some(threshold)) = (report.solved_at_step, options.solve_threshold) {
                if window.len() == 20 && mean >= threshold {
                    report.solved_at_step = Some(step);
                    report.solved_at_seconds = Some(wall);
                }
            }
        }
        (!window.is_empty()).then(|| window.iter().sum::<f64>() / window.len() as f64)
    };
    // A resumed run: the episodes before the checkpoint count too.
    if let Some(dir) = run_dir.as_deref() {
        for entry in &dir.history {
            record(
                &entry.episode_returns,
                entry.global_step,
                entry.wall_seconds,
                &mut report,
            );
        }
    }
    let mut mean = None;
    while !learner.finished() {
        let metrics = learner.iterate()?;
        report.timings += metrics.timings();
        mean = record(
            metrics.episode_returns(),
            metrics.global_step(),
            metrics.wall_seconds(),
            &mut report,
        )
        .or(mean);
        let it = metrics.iteration();
        let mut checkpointed = false;
        if let Some(dir) = run_dir.as_deref_mut() {
            dir.append_metrics(&metrics)?;
            let last = learner.finished();
            if last || (options.checkpoint_every > 0 && it % options.checkpoint_every == 0) {
                learner.save_checkpoint(&dir.checkpoint_path())?;
                checkpointed = true;
            }
        }
        progress.update(learner, mean);
        if !callbacks.is_empty() {
            let line = serde_json::to_value(&metrics)
                .map_err(|e| RlError::InvalidInput(format!("metrics do not serialise: {e}")))?;
            let event = UpdateEvent {
                iteration: it,
                global_step: metrics.global_step(),
                total_steps: learner.total_steps(),
                wall_seconds: metrics.wall_seconds(),
                metrics: &line,
                episode_returns: metrics.episode_returns(),
                mean_return_last_20: mean,
                episodes_in_window: window_len.get(),
                run_dir: run_dir.as_deref().map(RunDir::path),
            };
            let mut stop = None;
            for callback in callbacks.iter_mut() {
                if let ControlFlow::Break(reason) = callback.on_update(&event, &*learner)? {
                    stop = Some(reason);
                    break;
                }
            }
            if let Some(reason) = stop {
                if let (Some(dir), false) = (run_dir.as_deref(), checkpointed) {
                    learner.save_checkpoint(&dir.checkpoint_path())?;
                }
                if options.progress {
                    eprintln!("stopped early: {reason}");
                }
                report.stopped_early = Some(reason);
                break;
            }
        }
    }
    progress.finish();
    report.last_returns = window.into_iter().collect();
    Ok(report)
}

/// A progress bar on a terminal; plain lines otherwise (logs, CI).
struct Progress {
    bar: Option<ProgressBar>,
    lines: bool,
    /// The step count after which the next plain line is printed (every 5% of the run).
    next_line: std::cell::Cell<u64>,
    every: u64,
}

impl Progress {
    #[allow(clippy::expect_used, reason = "a constant, valid template")]
    fn new<L: Learner>(enabled: bool, learner: &L) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let bar = (enabled && terminal).then(|| {
            let bar = ProgressBar::new(learner.total_steps());
            bar.set_style(
                ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:30.cyan/blue}] {human_pos}/{human_len} steps  {per_sec}  {msg}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bar.set_position(learner.global_step());
            bar
        });
        Self {
            bar,
            lines: enabled && !terminal,
            next_line: std::cell::Cell::new(0),
            every: (learner.total_steps() / 20).max(1),
        }
    }

    fn update<L: Learner>(&self, learner: &L, mean_return: Option<f64>) {
        let msg = match mean_return {
            Some(m) => format!("return(last 20) {m:.1}"),
            None => "no episode finished yet".into(),
        };
        if let Some(bar) = &self.bar {
            bar.set_position(learner.global_step());
            bar.set_message(msg);
        } else if self.lines
            && (learner.global_step() >= self.next_line.get() || learner.finished())
        {
            let step = learner.global_step();
            self.next_line.set((step / self.every + 1) * self.every);
            eprintln!(
                "update {}  step {step}/{}  {:.0} steps/s  {msg}",
                learner.iteration(),
                learner.total_steps(),
                learner.global_step() as f64 / learner.wall_seconds().max(1e-9),
            );
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}
