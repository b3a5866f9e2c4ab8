//! Hooks into training, as Stable-Baselines3's callbacks: [`run::train_with_callbacks`](crate::run::train_with_callbacks)
//! calls every [`Callback`] after each update with the update's metrics and a view of the
//! learner, and stops training when one says so.
//!
//! Two come with Cinder:
//!
//! - [`EvalCallback`] (SB3's `EvalCallback`): every `eval_every` env steps, runs greedy episodes
//!   on its own env, appends them to `evaluations.jsonl` in the run directory, keeps the best
//!   policy so far as `best.ckpt` (a full checkpoint: `cinder eval DIR --best` evaluates it, and
//!   training can resume from it), and optionally stops training once the evaluation's mean
//!   return reaches a threshold (SB3's `StopTrainingOnRewardThreshold`);
//! - [`StopOnTrainingReturn`]: stops once the mean of the last 20 training returns reaches a
//!   threshold.
//!
//! A callback of one's own implements [`Callback::on_update`]:
//!
//! ```
//! use cinder_rl::callbacks::{Callback, LearnerView, UpdateEvent};
//! use std::ops::ControlFlow;
//!
//! /// Stops after a fixed number of updates, printing each update's value loss.
//! struct StopAfter(u64);
//!
//! impl Callback for StopAfter {
//!     fn on_update(
//!         &mut self,
//!         event: &UpdateEvent<'_>,
//!         _learner: &dyn LearnerView,
//!     ) -> cinder_rl::Result<ControlFlow<String>> {
//!         println!("value loss {:?}", event.metrics["value_loss"].as_f64());
//!         Ok(if event.iteration >= self.0 {
//!             ControlFlow::Break(format!("{} updates done", self.0))
//!         } else {
//!             ControlFlow::Continue(())
//!         })
//!     }
//! }
//! ```

use crate::error::{Result, RlError};
use crate::run::{Evaluation, Learner};
use cinder_env::DynEnv;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// File names a callback writes into the run directory.
pub mod files {
    /// [`super::EvalCallback`]'s evaluations, one JSON line each.
    pub const EVALUATIONS: &str = "evaluations.jsonl";
    /// [`super::EvalCallback`]'s best policy so far (a full checkpoint).
    pub const BEST_CHECKPOINT: &str = "best.ckpt";
}

/// What a callback sees after an update.
#[derive(Debug, Clone, Copy)]
pub struct UpdateEvent<'a> {
    /// The update just done (1-based).
    pub iteration: u64,
    /// Env steps taken so far.
    pub global_step: u64,
    /// Env steps the whole run takes.
    pub total_steps: u64,
    /// Wall-clock seconds of training so far.
    pub wall_seconds: f64,
    /// The update's metrics, as written to `metrics.jsonl` (the algorithm's own keys, then
    /// `steps_per_second`, `timings`, `wall_seconds`, `episode_returns`, `episode_lengths`).
    pub metrics: &'a serde_json::Value,
    /// Returns of the training episodes that ended during the update.
    pub episode_returns: &'a [f64],
    /// Mean of the last 20 training returns (fewer at the start), if any episode ended yet.
    pub mean_return_last_20: Option<f64>,
    /// Training episodes that ended so far in the window above (at most 20).
    pub episodes_in_window: usize,
    /// The run directory, when the run writes one.
    pub run_dir: Option<&'a Path>,
}

/// What a callback may do with the learner: evaluate its current policy, checkpoint it.
pub trait LearnerView {
    /// Greedy episodes of the current policy on `env` (see [`Learner::evaluate`]).
    fn evaluate(&self, env: &mut DynEnv, episodes: usize, seed: u64) -> Result<Vec<f64>>;
    /// Writes a checkpoint that resumes the learner exactly (see [`Learner::save_checkpoint`]).
    fn save_checkpoint(&self, path: &Path) -> Result<()>;
    /// The run's seed.
    fn seed(&self) -> u64;
}

impl<L: Learner> LearnerView for L {
    fn evaluate(&self, env: &mut DynEnv, episodes: usize, seed: u64) -> Result<Vec<f64>> {
        Learner::evaluate(self, env, episodes, seed)
    }
    fn save_checkpoint(&self, path: &Path) -> Result<()> {
        Learner::save_checkpoint(self, path)
    }
    fn seed(&self) -> u64 {
        Learner::seed(self)
    }
}

/// A hook called after every update (after its metrics and any periodic checkpoint are
/// written).
pub trait Callback {
    /// Sees the update; `ControlFlow::Break(reason)` stops training after it (the run then
    /// checkpoints, evaluates and writes its summary as at the end of its budget, with the
    /// reason in `summary.json`'s `stopped_early`). An error stops training with that error.
    fn on_update(
        &mut self,
        event: &UpdateEvent<'_>,
        learner: &dyn LearnerView,
    ) -> Result<ControlFlow<String>>;
}

/// Stops training once the mean of the last 20 training returns reaches `threshold` (20
/// episodes needed).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StopOnTrainingReturn {
    /// The mean return to reach.
    pub threshold: f64,
}

impl Callback for StopOnTrainingReturn {
    fn on_update(
        &mut self,
        event: &UpdateEvent<'_>,
        _learner: &dyn LearnerView,
    ) -> Result<ControlFlow<String>> {
        Ok(match event.mean_return_last_20 {
            Some(mean) if event.episodes_in_window >= 20 && mean >= self.threshold => {
                ControlFlow::Break(format!(
                    "the mean of the last 20 training returns, {mean:.2}, reached {} at step {}",
                    self.threshold, event.global_step
                ))
            }
            _ => ControlFlow::Continue(()),
        })
    }
}

/// How [`EvalCallback`] evaluates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvalOptions {
    /// Evaluate every this many env steps (at the first update at or past each multiple).
    pub every_steps: u64,
    /// Greedy episodes per evaluation.
    pub episodes: usize,
    /// Seed of the first episode (episode `k` uses `seed + k`): every evaluation plays the
    /// same starts, so that their means compare.
    pub seed: u64,
    /// Stop training once an evaluation's mean return reaches this.
    pub stop_at_return: Option<f64>,
}

/// One line of `evaluations.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationRecord {
    /// The update after which it ran.
    pub iteration: u64,
    /// Env steps taken then.
    pub global_step: u64,
    /// Its episodes' statistics.
    #[serde(flatten)]
    pub evaluation: Evaluation,
    /// Whether it beat every earlier evaluation (and was saved as `best.ckpt`).
    pub new_best: bool,
    /// The best mean return so far, this one included.
    pub best_mean_return: f64,
}

/// Evaluates the policy periodically, keeps the best one, and can stop training at a return
/// threshold (see the [module docs](self)).
pub struct EvalCallback {
    env: DynEnv,
    options: EvalOptions,
    next_eval: Option<u64>,
    best: Option<f64>,
    history: Vec<EvaluationRecord>,
}

impl std::fmt::Debug for EvalCallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvalCallback")
            .field("options", &self.options)
            .field("next_eval", &self.next_eval)
            .field("best", &self.best)
            .finish_non_exhaustive()
    }
}

impl EvalCallback {
    /// Evaluates on `env` (a separate env of the training env's id) as `options` say; an
    /// error names an `every_steps` or `episodes` of 0.
    pub fn new(env: DynEnv, options: EvalOptions) -> Result<Self> {
        if options.every_steps == 0 || options.episodes == 0 {
            return Err(RlError::InvalidConfig(format!(
                "evaluation every {} steps over {} episodes: both must be at least 1",
                options.every_steps, options.episodes
            )));
        }
        Ok(Self {
            env,
            options,
            next_eval: None,
            best: None,
            history: Vec::new(),
        })
    }

    /// The evaluations run so far by this callback (after a resume: with the run's earlier
    /// ones it kept).
    pub fn history(&self) -> &[EvaluationRecord] {
        &self.history
    }

    /// The best mean return so far.
    pub fn best_mean_return(&self) -> Option<f64> {
        self.best
    }

    /// On the first update: picks up the run's earlier evaluations (a resumed run), dropping
    /// those made after the checkpoint the run resumed from, and finds the next evaluation
    /// step.
    fn start(&mut self, event: &UpdateEvent<'_>) -> Result<()> {
        let every = self.options.every_steps;
        // The update that just ran began at a step below `global_step`: evaluations recorded
        // at or past it belong to a run that died after the checkpoint.
        let resumed_from = event.global_step.saturating_sub(1);
        if let Some(dir) = event.run_dir {
            let path = dir.join(files::EVALUATIONS);
            if let Ok(text) = std::fs::read_to_string(&path) {
                let records: Vec<EvaluationRecord> = text
                    .lines()
                    .filter_map(|l| serde_json::from_str(l).ok())
                    .collect();
                let (kept, dropped): (Vec<_>, Vec<_>) = records
                    .into_iter()
                    .partition(|r| r.global_step <= resumed_from);
                let best_kept = kept
                    .iter()
                    .map(|r| r.evaluation.mean_return)
                    .fold(None, max);
                let best_dropped = dropped
                    .iter()
                    .map(|r| r.evaluation.mean_return)
                    .fold(None, max);
                if best_dropped.is_some_and(|d| best_kept.is_none_or(|k| d > k)) {
                    // best.ckpt came from the discarded part of the run.
                    let best = dir.join(files::BEST_CHECKPOINT);
                    if best.exists() {
                        std::fs::remove_file(&best).map_err(|source| RlError::Io {
                            path: best.clone(),
                            source,
                        })?;
                    }
                }
                let mut text = String::new();
                for r in &kept {
                    text.push_str(&to_line(r)?);
                }
                crate::checkpoint::write_file_atomic(&path, text.as_bytes())?;
                self.best = best_kept;
                self.history = kept;
            }
        }
        let done = self.history.last().map_or(0, |r| r.global_step);
        self.next_eval = Some((done / every + 1) * every);
        Ok(())
    }
}

fn max(acc: Option<f64>, x: f64) -> Option<f64> {
    Some(acc.map_or(x, |a| a.max(x)))
}

fn to_line(record: &EvaluationRecord) -> Result<String> {
    let mut line = serde_json::to_string(record)
        .map_err(|e| RlError::InvalidInput(format!("evaluation does not serialise: {e}")))?;
    line.push('\n');
    Ok(line)
}

impl Callback for EvalCallback {
    fn on_update(
        &mut self,
        event: &UpdateEvent<'_>,
        learner: &dyn LearnerView,
    ) -> Result<ControlFlow<String>> {
        if self.next_eval.is_none() {
            self.start(event)?;
        }
        let every = self.options.every_steps;
        let due = self.next_eval.unwrap_or(every);
        if event.global_step < due {
            return Ok(ControlFlow::Continue(()));
        }
        self.next_eval = Some((event.global_step / every + 1) * every);
        let returns = learner.evaluate(&mut self.env, self.options.episodes, self.options.seed)?;
        let evaluation = Evaluation::from_returns(returns);
        let mean = evaluation.mean_return;
        let new_best = self.best.is_none_or(|b| mean > b);
        if new_best {
            self.best = Some(mean);
        }
        let record = EvaluationRecord {
            iteration: event.iteration,
            global_step: event.global_step,
            evaluation,
            new_best,
            best_mean_return: self.best.unwrap_or(mean),
        };
        if let Some(dir) = event.run_dir {
            if new_best {
                learner.save_checkpoint(&dir.join(files::BEST_CHECKPOINT))?;
            }
            let path: PathBuf = dir.join(files::EVALUATIONS);
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|source| RlError::Io {
                    path: path.clone(),
                    source,
                })?;
            file.write_all(to_line(&record)?.as_bytes())
                .map_err(|source| RlError::Io { path, source })?;
        }
        self.history.push(record);
        Ok(match self.options.stop_at_return {
            Some(threshold) if mean >= threshold => ControlFlow::Break(format!(
                "the evaluation's mean return, {mean:.2} over {} episodes, reached {threshold} at step {}",
                self.options.episodes, event.global_step
            )),
            _ => ControlFlow::Continue(()),
        })
    }
}
