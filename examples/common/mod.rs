//! What the training examples share: their common flags, the run directory and the end-of-run
//! summary. Each example (`cartpole_ppo`, `cartpole_reinforce`, `cartpole_grpo`) builds its
//! learner (or, for the policy-gradient family, its configuration); this module does the rest.

// Each example uses its part of this module.
#![allow(dead_code)]

use anyhow::{Context, Result};
use burn::tensor::backend::AutodiffBackend;
use cinder::backend::{BackendKind, BackendTask};
use cinder::env::{DynEnv, make, spec};
use cinder::rl::policy_gradient::{PolicyGradient, PolicyGradientConfig, checkpoint_config};
use cinder::rl::run::{
    Evaluation, Learner, RunDir, RunSummary, TrainOptions, TrainReport, files, train,
};
use clap::Args;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Flags every training example takes.
#[derive(Args, Debug, Clone)]
pub struct CommonArgs {
    /// Seed of the policy, the sampling and the envs.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Total env steps (default: the example's budget).
    #[arg(long)]
    pub total_steps: Option<u64>,
    /// The run directory (default: runs/<example>-s<seed>-<unix time>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in this directory from its checkpoint (its config is used; the other
    /// training flags are ignored).
    #[arg(long, conflicts_with = "out")]
    pub resume: Option<PathBuf>,
    /// Backend: ndarray, wgpu or cuda, among those compiled in (default: the best one, or on
    /// --resume the run's own).
    #[arg(long, value_parser = |s: &str| s.parse::<BackendKind>())]
    pub backend: Option<BackendKind>,
    /// Write a checkpoint every this many updates (and at the end).
    #[arg(long, default_value_t = 50)]
    pub checkpoint_every: u64,
    /// Greedy evaluation episodes at the end.
    #[arg(long, default_value_t = 20)]
    pub eval_episodes: usize,
}

impl CommonArgs {
    /// The backend to run on: `--backend`, else on `--resume` the run's own, else the best
    /// compiled one.
    pub fn backend_kind(&self) -> Result<BackendKind> {
        Ok(match (self.backend, &self.resume) {
            (Some(kind), _) => kind,
            (None, Some(dir)) => RunDir::read_config::<serde_json::Value>(dir)?["backend"]
                .as_str()
                .context("config.json names no backend")?
                .parse()?,
            (None, None) => BackendKind::best(),
        })
    }

    /// The checkpoint to resume from, if `--resume`.
    pub fn resume_checkpoint(&self) -> Option<PathBuf> {
        self.resume.as_ref().map(|dir| dir.join(files::CHECKPOINT))
    }
}

/// Creates the run directory for a new run: `config.json` holds the env, the algorithm, the
/// backend and the algorithm's configuration under the algorithm's name.
pub fn create_run(
    args: &CommonArgs,
    env_id: &str,
    algorithm: &str,
    kind: BackendKind,
    config: &impl Serialize,
) -> Result<RunDir> {
    let out = args.out.clone().unwrap_or_else(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let name = env_id.split('-').next().unwrap_or(env_id).to_lowercase();
        PathBuf::from(format!("runs/{name}_{algorithm}-s{}-{now}", args.seed))
    });
    let mut meta = serde_json::json!({
        "env": env_id,
        "algorithm": algorithm,
        "backend": kind.name(),
    });
    meta[algorithm] = serde_json::to_value(config)?;
    Ok(RunDir::create(&out, &meta)?)
}

/// Reopens `dir` to continue a run whose learner was restored at `learner`'s iteration.
pub fn reopen_run(dir: &Path, learner: &impl Learner) -> Result<RunDir> {
    let run_dir = RunDir::reopen(dir, learner.iteration())?;
    eprintln!(
        "resuming {} at step {}",
        run_dir.path().display(),
        learner.global_step()
    );
    Ok(run_dir)
}

/// Trains `learner` to the end of its budget with progress and checkpoints in `run_dir`, then
/// evaluates the greedy policy with `evaluate` (env, episodes, seed), writes `summary.json`
/// and prints the outcome.
#[allow(clippy::too_many_arguments)]
pub fn train_and_summarise<L: Learner>(
    learner: &mut L,
    run_dir: &mut RunDir,
    args: &CommonArgs,
    env_id: &str,
    algorithm: &str,
    backend: String,
    seed: u64,
    evaluate: impl Fn(&L, &mut cinder::env::DynEnv, usize, u64) -> cinder::rl::Result<Vec<f64>>,
) -> Result<RunSummary> {
    let threshold = spec(env_id).ok().and_then(|s| s.reward_threshold);
    let options = TrainOptions {
        checkpoint_every: args.checkpoint_every,
        progress: true,
        solve_threshold: threshold,
    };
    let report: TrainReport = train(learner, Some(run_dir), &options)?;

    let mut env = make(env_id)?;
    let evaluation =
        Evaluation::from_returns(evaluate(learner, &mut env, args.eval_episodes, 10_000)?);
    let steps = learner.global_step();
    let wall = learner.wall_seconds();
    let summary = RunSummary {
        env: env_id.into(),
        algorithm: algorithm.into(),
        backend,
        seed,
        total_steps: steps,
        updates: learner.iteration(),
        wall_seconds: wall,
        steps_per_second: steps as f64 / wall.max(1e-9),
        train_episodes: report.episodes,
        train_mean_return_last_20: report.mean_last_returns(),
        solved_at_step: report.solved_at_step,
        solved_at_seconds: report.solved_at_seconds,
        evaluation: Some(evaluation.clone()),
    };
    run_dir.write_summary(&summary)?;
    println!(
        "done: {steps} steps in {wall:.1} s ({:.0} steps/s) on {}",
        summary.steps_per_second, summary.backend
    );
    let threshold = threshold.unwrap_or(f64::INFINITY);
    match summary.solved_at_step {
        Some(step) => println!(
            "mean return of the last 20 training episodes reached {threshold} at step {step} \
             ({:.1} s)",
            summary.solved_at_seconds.unwrap_or_default()
        ),
        None => println!("the mean of the last 20 training returns never reached {threshold}"),
    }
    println!(
        "greedy evaluation over {} episodes: {:.1} ± {:.1}",
        evaluation.episodes, evaluation.mean_return, evaluation.std_return
    );
    println!("run directory: {}", run_dir.path().display());
    Ok(summary)
}

/// A policy-gradient run (REINFORCE, GRPO, or any composition): `config` for a new run, or the
/// checkpoint's own on `--resume`; one env `env_id` per episode of a batch.
pub struct PolicyGradientRun {
    /// The flags.
    pub args: CommonArgs,
    /// The env id.
    pub env_id: &'static str,
    /// The name in the run directory and the summary (`reinforce`, `grpo`).
    pub algorithm: &'static str,
    /// The configuration of a new run.
    pub config: PolicyGradientConfig,
    /// The backend it runs on.
    pub kind: BackendKind,
}

impl BackendTask for PolicyGradientRun {
    type Output = Result<()>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<()> {
        let Self {
            args,
            env_id,
            algorithm,
            config,
            kind,
        } = self;
        let backend = format!("{kind} ({})", B::name(&device));
        let envs = |n: usize| -> Result<Vec<DynEnv>> {
            Ok((0..n).map(|_| make(env_id)).collect::<Result<_, _>>()?)
        };
        let (mut learner, mut run_dir) = match (&args.resume, args.resume_checkpoint()) {
            (Some(dir), Some(checkpoint)) => {
                // The checkpoint holds the configuration the envs must match.
                let config = checkpoint_config(&checkpoint)?;
                let envs = envs(config.episodes_per_batch)?;
                let learner = PolicyGradient::<B, _>::resume(&checkpoint, envs, device)?;
                let run_dir = reopen_run(dir, &learner)?;
                (learner, run_dir)
            }
            _ => {
                let run_dir = create_run(&args, env_id, algorithm, kind, &config)?;
                let envs = envs(config.episodes_per_batch)?;
                (PolicyGradient::<B, _>::new(config, envs, device)?, run_dir)
            }
        };
        let seed = learner.config().seed;
        train_and_summarise(
            &mut learner,
            &mut run_dir,
            &args,
            env_id,
            algorithm,
            backend,
            seed,
            PolicyGradient::evaluate,
        )?;
        Ok(())
    }
}
