//! What the `cinder` command and the training examples share: the flags of a training run
//! ([`RunArgs`]), and [`train`], which resolves the configuration (preset, `--config`, `--set`),
//! runs it through the [runner](crate::runner) (or resumes a run directory) and prints the
//! outcome.

use crate::Error;
use crate::backend::BackendKind;
use crate::presets::{Algorithm, resolve_layers};
use crate::runner::{self, EVAL_SEED, RunOptions, RunSpec};
use cinder_rl::run::RunSummary;
use clap::Args;
use std::path::PathBuf;

/// The flags of a training run.
#[derive(Args, Debug, Clone, Default)]
pub struct RunArgs {
    /// Seed of the policy, the sampling and the envs (default: the preset's, else 1).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Backend: ndarray, wgpu or cuda, among those compiled in (default: ndarray, or on
    /// --resume the run's own).
    #[arg(long, value_parser = |s: &str| s.parse::<BackendKind>())]
    pub backend: Option<BackendKind>,
    /// Total env steps (default: the preset's budget).
    #[arg(long)]
    pub total_steps: Option<u64>,
    /// A TOML file of hyperparameters: only the keys it names change (top-level keys, or a
    /// table per env id).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Override one hyperparameter, e.g. `--set learning_rate=3e-4 --set hidden_sizes=[32,32]`
    /// (repeatable; applied after the preset and --config).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Start from the algorithm's defaults (PPO: CleanRL's `ppo.py`), not the env's preset.
    #[arg(long)]
    pub no_preset: bool,
    /// The run directory (default: runs/<env>_<algo>-s<seed>-<unix time>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in this directory from its checkpoint (its own configuration; the
    /// hyperparameter flags are refused).
    #[arg(long, conflicts_with_all = ["out", "config", "sets", "seed", "total_steps", "no_preset"])]
    pub resume: Option<PathBuf>,
    /// Greedy evaluation episodes at the end.
    #[arg(long, default_value_t = 20)]
    pub eval_episodes: usize,
    /// Write a checkpoint every this many updates (and at the end).
    #[arg(long, default_value_t = 50)]
    pub checkpoint_every: u64,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Trains `algorithm` on `env_id` as `args` say (or resumes `args.resume`), prints the outcome
/// and returns the summary.
pub fn train(env_id: &str, algorithm: Algorithm, args: &RunArgs) -> Result<RunSummary, Error> {
    let options = RunOptions {
        eval_episodes: args.eval_episodes,
        eval_seed: EVAL_SEED,
        checkpoint_every: args.checkpoint_every,
        progress: !args.quiet,
    };
    let (summary, dir) = match &args.resume {
        Some(dir) => {
            eprintln!("resuming {}", dir.display());
            (runner::resume(dir, args.backend, &options)?, dir.clone())
        }
        None => {
            let mut sets = args.sets.clone();
            if let Some(seed) = args.seed {
                sets.push(format!("seed={seed}"));
            }
            if let Some(steps) = args.total_steps {
                sets.push(format!("total_timesteps={steps}"));
            }
            let resolved = resolve_layers(
                algorithm,
                env_id,
                !args.no_preset,
                args.config.as_deref(),
                &sets,
            )?;
            if let Some(source) = &resolved.preset_source {
                eprintln!("preset: {source}");
            }
            let out = args.out.clone().unwrap_or_else(|| {
                runner::default_run_dir(env_id, algorithm, resolved.config.seed())
            });
            let spec = RunSpec {
                env_id: env_id.into(),
                algorithm,
                config: resolved.config,
                preset_source: resolved.preset_source,
                backend: args.backend.unwrap_or(BackendKind::NdArray),
                out: Some(out.clone()),
                options,
            };
            (runner::train(spec)?, out)
        }
    };
    print_summary(&summary);
    println!("run directory: {}", dir.display());
    Ok(summary)
}

/// Prints a run's outcome: steps, time, when it solved the env, its evaluation.
pub fn print_summary(summary: &RunSummary) {
    println!(
        "done: {} on {}: {} steps in {:.1} s ({:.0} steps/s) on {}",
        summary.algorithm,
        summary.env,
        summary.total_steps,
        summary.wall_seconds,
        summary.steps_per_second,
        summary.backend
    );
    if let Some(mean) = summary.train_mean_return_last_20 {
        println!("mean return of the last 20 training episodes: {mean:.1}");
    }
    if let Some(step) = summary.solved_at_step {
        println!(
            "it reached the env's reward threshold (last-20 mean) at step {step} ({:.1} s)",
            summary.solved_at_seconds.unwrap_or_default()
        );
    }
    if let Some(e) = &summary.evaluation {
        println!(
            "greedy evaluation over {} episodes: {:.1} ± {:.1}",
            e.episodes, e.mean_return, e.std_return
        );
    }
}
