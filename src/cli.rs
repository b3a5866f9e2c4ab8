//! What the `cinder` command and the training examples share: the flags of a training run
//! ([`RunArgs`]), and [`train`], which resolves the configuration (preset, `--config`, `--set`),
//! runs it through the runner ([`crate::runner`]) (or resumes a run directory) and prints the
//! outcome.

use crate::Error;
use crate::backend::BackendKind;
use crate::presets::{Algorithm, resolve_layers};
use crate::runner::{self, EVAL_SEED, PeriodicEval, RunOptions, RunSpec};
use cinder_rl::run::RunSummary;
use clap::Args;
use std::path::PathBuf;

/// The flags of a training run.
#[derive(Args, Debug, Clone, Default)]
pub struct RunArgs {
    /// Seed of the policy, the sampling and the envs (default: the preset's, else 1).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Backend: flex, ndarray, wgpu or cuda, among those compiled in (default: flex, or on
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
    /// The run directory (default: `runs/<env>_<algo>-s<seed>-<unix time>`).
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
    #[arg(long, default_value_t = RunArgs::CHECKPOINT_EVERY)]
    pub checkpoint_every: u64,
    /// Evaluate the greedy policy every this many env steps during training (SB3's
    /// `EvalCallback`): `evaluations.jsonl` and the best policy, `best.ckpt`, in the run
    /// directory (`cinder eval DIR --best`).
    #[arg(long, value_name = "STEPS")]
    pub eval_every: Option<u64>,
    /// Episodes of each evaluation during training.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub eval_every_episodes: usize,
    /// Stop training once this return is reached: by the periodic evaluation's mean with
    /// --eval-every, else by the mean of the last 20 training returns.
    #[arg(long, value_name = "RETURN", allow_hyphen_values = true)]
    pub stop_at_return: Option<f64>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

impl RunArgs {
    /// The default of `--checkpoint-every`.
    pub const CHECKPOINT_EVERY: u64 = 50;
}

/// Trains `algorithm` on `env_id` as `args` say (or resumes `args.resume`), prints the outcome
/// and returns the summary. Tunes the process's allocator first ([`crate::allocator::tune`]),
/// as a command-line program should.
pub fn train(env_id: &str, algorithm: Algorithm, args: &RunArgs) -> Result<RunSummary, Error> {
    crate::allocator::tune();
    let options = RunOptions {
        eval_episodes: args.eval_episodes,
        eval_seed: EVAL_SEED,
        checkpoint_every: args.checkpoint_every,
        progress: !args.quiet,
        periodic_eval: args.eval_every.map(|every_steps| PeriodicEval {
            every_steps,
            episodes: args.eval_every_episodes,
        }),
        stop_at_return: args.stop_at_return,
        callbacks: Vec::new(),
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
                backend: args.backend.unwrap_or_else(BackendKind::cpu),
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
    if let Some(reason) = &summary.stopped_early {
        println!("stopped early: {reason}");
    }
    if let Some(e) = &summary.evaluation {
        println!(
            "greedy evaluation over {} episodes: {:.1} ± {:.1}",
            e.episodes, e.mean_return, e.std_return
        );
    }
}

/// The knobs of a sequence run that a control run does not have (shared by the
/// `digits_grpo` example's [`SequenceArgs`] and `cinder train --task`).
#[derive(Args, Debug, Clone, Default, PartialEq)]
pub struct SequenceKnobs {
    /// The task: addition, sort or reverse.
    #[arg(long)]
    pub task: Option<String>,
    /// The task's length (digits per operand, digits, letters); the held-out set's too, the
    /// OOD set is one longer.
    #[arg(long)]
    pub length: Option<usize>,
    /// G: completions per prompt.
    #[arg(long)]
    pub num_generations: Option<usize>,
    /// β of the KL penalty to the warm start (GRPO: k3 in the loss; PPO: `kl_coef`, k1 in the
    /// rewards; 0: no reference).
    #[arg(long)]
    pub beta: Option<f64>,
    /// Adam's learning rate for RL.
    #[arg(long)]
    pub learning_rate: Option<f64>,
    /// grpo, bnpo, dr_grpo or dapo.
    #[arg(long)]
    pub loss_type: Option<String>,
    /// group, batch or none.
    #[arg(long)]
    pub scale_rewards: Option<String>,
}

/// The flags of a sequence run (a prompt task, warm start then GRPO or RLOO).
#[derive(Args, Debug, Clone, Default)]
pub struct SequenceArgs {
    /// grpo (group-mean baseline), rloo (leave-one-out baseline) or ppo (value head, GAE).
    #[arg(long, default_value = "grpo")]
    pub algo: String,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub knobs: SequenceKnobs,
    /// Seed of the policy, the problems and the sampling.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Backend: flex, ndarray, wgpu or cuda, among those compiled in (default: flex).
    #[arg(long, value_parser = |s: &str| s.parse::<BackendKind>())]
    pub backend: Option<BackendKind>,
    /// RL steps (generation batches); with --resume, a larger budget extends the run.
    #[arg(long)]
    pub total_steps: Option<u64>,
    /// A TOML file of settings (top-level keys, `[grpo]`, `[sft]`, `[model]` tables).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Override one setting, e.g. `--set grpo.num_iterations=2 --set sft.max_steps=500`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// The run directory (default: `runs/<task>_<algo>-s<seed>-<unix time>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in this directory from its checkpoint (its own configuration; only
    /// --total-steps and --backend may be given with it).
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// No progress lines.
    #[arg(long)]
    pub quiet: bool,
}

impl SequenceArgs {
    /// Which flags were given that a resumed run cannot take.
    fn settings_given(&self) -> Vec<&'static str> {
        let k = &self.knobs;
        [
            ("--task", k.task.is_some()),
            ("--length", k.length.is_some()),
            ("--num-generations", k.num_generations.is_some()),
            ("--beta", k.beta.is_some()),
            ("--learning-rate", k.learning_rate.is_some()),
            ("--loss-type", k.loss_type.is_some()),
            ("--scale-rewards", k.scale_rewards.is_some()),
            ("--seed", self.seed.is_some()),
            ("--config", self.config.is_some()),
            ("--set", !self.sets.is_empty()),
            ("--out", self.out.is_some()),
        ]
        .into_iter()
        .filter(|(_, given)| *given)
        .map(|(flag, _)| flag)
        .collect()
    }
}

/// Runs a sequence task as `args` say, prints the outcome and returns the summary.
pub fn train_sequence(args: &SequenceArgs) -> Result<cinder_lm::run::SequenceRunSummary, Error> {
    let quiet = args.quiet;
    let log = Box::new(move |line: &str| {
        if !quiet {
            eprintln!("{line}");
        }
    });
    let backend = args.backend.unwrap_or_else(BackendKind::cpu);
    if let Some(dir) = &args.resume {
        let given = args.settings_given();
        if !given.is_empty() {
            return Err(Error::Config(format!(
                "--resume continues a run with its own settings; drop {}",
                given.join(", ")
            )));
        }
        let steps = args.total_steps.map(|s| s as usize);
        let summary = runner::resume_sequence(dir, backend, steps, log)?;
        print_sequence_summary(&summary, dir);
        return Ok(summary);
    }
    let k = &args.knobs;
    let ppo = match args.algo.as_str() {
        "grpo" | "rloo" => false,
        "ppo" => true,
        other => {
            return Err(Error::Config(format!(
                "unknown sequence algorithm {other:?}: choose grpo, rloo or ppo"
            )));
        }
    };
    if ppo {
        let grpo_only = [
            ("--num-generations", k.num_generations.is_some()),
            ("--loss-type", k.loss_type.is_some()),
            ("--scale-rewards", k.scale_rewards.is_some()),
        ];
        if let Some((flag, _)) = grpo_only.iter().find(|(_, given)| *given) {
            return Err(Error::Config(format!(
                "{flag} is a GRPO setting: PPO samples one completion per prompt and has no \
                 group statistics"
            )));
        }
    }
    let section = if ppo { "ppo" } else { "grpo" };
    let mut sets = args.sets.clone();
    let mut push = |key: &str, value: Option<String>| {
        if let Some(v) = value {
            sets.insert(0, format!("{key}={v}"));
        }
    };
    push("task", k.task.clone());
    push("length", k.length.map(|l| l.to_string()));
    push("seed", args.seed.map(|s| s.to_string()));
    push("rl_steps", args.total_steps.map(|s| s.to_string()));
    push(
        "grpo.num_generations",
        k.num_generations.map(|g| g.to_string()),
    );
    let beta_key = if ppo { "ppo.kl_coef" } else { "grpo.beta" };
    push(beta_key, k.beta.map(|b| b.to_string()));
    push(
        &format!("{section}.learning_rate"),
        k.learning_rate.map(|l| l.to_string()),
    );
    push("grpo.loss_type", k.loss_type.clone());
    push("grpo.scale_rewards", k.scale_rewards.clone());
    match args.algo.as_str() {
        "rloo" => sets.insert(0, "grpo.baseline=leave_one_out".into()),
        "ppo" => sets.insert(0, "algorithm=ppo".into()),
        _ => {}
    }
    // Lengths first: a shorter or longer task moves the shortest training length with it
    // unless it is set too.
    if let Some(l) = k.length
        && !sets.iter().any(|s| s.starts_with("min_length"))
    {
        sets.insert(0, format!("min_length={l}"));
    }
    let config = crate::presets::resolve_sequence(args.config.as_deref(), &sets)?;
    let out = args.out.clone().unwrap_or_else(|| {
        runner::timestamped_run_dir(config.task.name(), &args.algo, config.seed)
    });
    let summary = runner::train_sequence(config, backend, Some(out.clone()), log)?;
    print_sequence_summary(&summary, &out);
    Ok(summary)
}

/// Whether `dir` holds a sequence run (its `config.json` names a prompt task).
pub fn is_sequence_run(dir: &std::path::Path) -> bool {
    cinder_rl::run::RunDir::read_config::<serde_json::Value>(dir)
        .is_ok_and(|c| c.get("task").is_some() && c.get("grpo").is_some())
}

/// `cinder train --task ...`: a sequence run with `cinder train`'s flags. `grpo` is GRPO,
/// `reinforce` is REINFORCE with RLOO's leave-one-out baseline, `ppo` is PPO with a value head.
/// `--checkpoint-every` counts RL steps; `--no-preset` is refused and `--eval-episodes` does not
/// apply (a task run evaluates its held-out and OOD problem sets).
pub fn train_task(
    algorithm: Algorithm,
    knobs: &SequenceKnobs,
    args: &RunArgs,
) -> Result<cinder_lm::run::SequenceRunSummary, Error> {
    let algo = match algorithm {
        Algorithm::Grpo => "grpo",
        Algorithm::Reinforce => "rloo",
        Algorithm::Ppo => "ppo",
        Algorithm::Trpo => {
            return Err(Error::Config(
                "TRPO trains env policies; a task run takes grpo, reinforce (RLOO) or ppo".into(),
            ));
        }
    };
    if args.no_preset {
        return Err(Error::Config(
            "--no-preset applies to env runs; a task run starts from its defaults".into(),
        ));
    }
    if args.eval_every.is_some() || args.stop_at_return.is_some() {
        return Err(Error::Config(
            "--eval-every and --stop-at-return apply to env runs; a task run evaluates every \
             `eval_every` steps of its own (--set eval_every=N)"
                .into(),
        ));
    }
    let mut sets = args.sets.clone();
    if args.checkpoint_every != RunArgs::CHECKPOINT_EVERY {
        sets.push(format!("checkpoint_every={}", args.checkpoint_every));
    }
    train_sequence(&SequenceArgs {
        algo: algo.into(),
        knobs: knobs.clone(),
        seed: args.seed,
        backend: args.backend,
        total_steps: args.total_steps,
        config: args.config.clone(),
        sets,
        out: args.out.clone(),
        resume: args.resume.clone(),
        quiet: args.quiet,
    })
}

/// Prints a sequence run's outcome.
fn print_sequence_summary(summary: &cinder_lm::run::SequenceRunSummary, dir: &std::path::Path) {
    println!(
        "{}: held-out exact match {:.3} -> {:.3} (OOD {:.3} -> {:.3}); warm start {} steps in \
         {:.1} s, RL {} steps in {:.1} s, {:.0} tokens/s",
        summary.task,
        summary.accuracy_before,
        summary.accuracy_after,
        summary.ood_accuracy_before,
        summary.ood_accuracy_after,
        summary.sft_steps,
        summary.sft_seconds,
        summary.rl_steps,
        summary.rl_seconds,
        summary.tokens_per_second
    );
    println!("run directory: {}", dir.display());
}
