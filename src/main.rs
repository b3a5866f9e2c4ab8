//! The `cinder` command: train any algorithm on any registered env, evaluate a run, list the
//! envs.
//!
//! ```text
//! cinder train --algo ppo --env Pendulum-v1 [--seed N] [--backend B] [--total-steps N]
//!              [--config FILE.toml] [--set key=value ...] [--out DIR] [--resume DIR]
//!              [--eval-episodes N]
//! cinder train --algo grpo|reinforce --task addition|sort|reverse [--length N]
//!              [--num-generations G] [--beta B] [--learning-rate LR] [--loss-type T]
//!              [--scale-rewards S] [--seed N] [--total-steps RL_STEPS] [--set key=value ...]
//! cinder eval DIR [--episodes N] [--seed N] [--best] [--gif FILE.gif [--gif-stride K]]
//! cinder plot DIR... [--out curves.svg] [--title T]
//! cinder envs
//! cinder presets [--algo ppo]
//! ```

use anyhow::Result;
use cinder::backend::BackendKind;
use cinder::cli::{RunArgs, SequenceKnobs};
use cinder::env::registry::ids;
use cinder::env::{Space, spec};
use cinder::presets::{Algorithm, preset, preset_envs};
use cinder::runner::{self, EVAL_SEED};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "cinder",
    version,
    about = "Reinforcement learning in Rust: train PPO, REINFORCE, GRPO or TRPO on Gymnasium's classic-control envs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train an algorithm on an env (with the env's preset hyperparameters), evaluate the final
    /// policy, and keep the run directory (config, metrics, checkpoint, summary).
    Train {
        /// ppo, reinforce, grpo or trpo (trpo: envs only).
        #[arg(long, value_parser = |s: &str| s.parse::<Algorithm>())]
        algo: Algorithm,
        /// A registered env id (`cinder envs` lists them).
        #[arg(long, conflicts_with = "task")]
        env: Option<String>,
        /// A prompt task instead of an env (`--task addition|sort|reverse`, with its knobs):
        /// a supervised warm start, then GRPO or REINFORCE (RLOO) on sampled completions.
        #[command(flatten)]
        task: Box<SequenceKnobs>,
        #[command(flatten)]
        run: Box<RunArgs>,
    },
    /// Reload a run's policy (and normalisation statistics) and evaluate it greedily.
    Eval {
        /// The run directory.
        dir: PathBuf,
        /// Episodes.
        #[arg(long, default_value_t = 20)]
        episodes: usize,
        /// Seed of the first episode (the default is the one training's own evaluation used).
        #[arg(long, default_value_t = EVAL_SEED)]
        seed: u64,
        /// Backend (default: the run's own).
        #[arg(long, value_parser = |s: &str| s.parse::<BackendKind>())]
        backend: Option<BackendKind>,
        /// Evaluate the best policy of the run's periodic evaluation (`best.ckpt`, kept by
        /// `--eval-every`) instead of the last one.
        #[arg(long)]
        best: bool,
        /// Also record the first episode as an animated GIF, at the env's frame rate.
        #[arg(long, value_name = "FILE.gif")]
        gif: Option<PathBuf>,
        /// Keep every k-th frame of the GIF (played back at the env's frame rate divided by
        /// k, so the episode lasts as long): smaller files for long episodes.
        #[arg(long, default_value_t = 1, value_name = "K", requires = "gif")]
        gif_stride: usize,
    },
    /// Draw learning curves into an SVG: env runs (the last-20 training return against env
    /// steps; per env, a line per algorithm with the mean over its runs and a min-max band over
    /// seeds) or sequence runs (reward and held-out accuracy against the RL step).
    Plot {
        /// Run directories.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// The SVG to write.
        #[arg(long, default_value = "curves.svg")]
        out: PathBuf,
        /// The plot's title.
        #[arg(long)]
        title: Option<String>,
    },
    /// The registered envs: spaces, time limit, reward threshold.
    Envs,
    /// The presets: which envs each algorithm has tuned hyperparameters for, and their source.
    Presets {
        /// Only this algorithm's.
        #[arg(long, value_parser = |s: &str| s.parse::<Algorithm>())]
        algo: Option<Algorithm>,
    },
}

/// Writing to a closed pipe (`cinder envs | head -1`) ends the command quietly, as it does any
/// Unix tool, instead of panicking in `println!`: Rust ignores SIGPIPE by default, so every
/// write would fail with EPIPE; the default action restored, the process simply ends.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: setting SIGPIPE's disposition to its default, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> Result<()> {
    restore_sigpipe();
    cinder::allocator::tune();
    match Cli::parse().command {
        Command::Train {
            algo,
            env,
            task,
            run,
        } => {
            let resumes_a_task = run
                .resume
                .as_deref()
                .is_some_and(cinder::cli::is_sequence_run);
            if task.task.is_some() || resumes_a_task {
                cinder::cli::train_task(algo, &task, &run)?;
                return Ok(());
            }
            if *task != SequenceKnobs::default() {
                anyhow::bail!(
                    "--length, --num-generations, --beta, --learning-rate, --loss-type and \
                     --scale-rewards apply to --task runs"
                );
            }
            let env = match (env, &run.resume) {
                (Some(env), _) => env,
                (None, Some(dir)) => runner::RunInfo::read(dir)?.env_id,
                (None, None) => anyhow::bail!(
                    "--env is required for a new run (one of: {})",
                    ids().join(", ")
                ),
            };
            cinder::cli::train(&env, algo, &run)?;
        }
        Command::Eval {
            dir,
            episodes,
            seed,
            backend,
            best,
            gif,
            gif_stride,
        } => {
            let checkpoint = if best {
                cinder::rl::callbacks::files::BEST_CHECKPOINT
            } else {
                cinder::rl::run::files::CHECKPOINT
            };
            let evaluation = match &gif {
                Some(path) => {
                    let (evaluation, frames, fps) =
                        runner::record_episode(&dir, checkpoint, episodes, seed, backend)?;
                    let stride = gif_stride.max(1);
                    let frames: Vec<_> = frames.into_iter().step_by(stride).collect();
                    let fps = (fps / stride as u32).max(1);
                    cinder::env::render::save_gif(path, &frames, fps)?;
                    println!(
                        "wrote {} ({} frames at {fps} fps: the episode seeded {seed}, return {:.1})",
                        path.display(),
                        frames.len(),
                        evaluation.returns.first().copied().unwrap_or_default()
                    );
                    evaluation
                }
                None => runner::evaluate_checkpoint(&dir, checkpoint, episodes, seed, backend)?,
            };
            println!(
                "{}: greedy evaluation over {} episodes (seeds {seed}..): {:.2} ± {:.2}",
                dir.display(),
                evaluation.episodes,
                evaluation.mean_return,
                evaluation.std_return
            );
        }
        Command::Plot { dirs, out, title } => {
            cinder::plot::curves(&dirs, &out, title.as_deref())?;
            println!("wrote {}", out.display());
        }
        Command::Envs => {
            println!(
                "{:<26} {:<44} {:<22} {:>10} {:>10}",
                "id", "observation space", "action space", "time limit", "threshold"
            );
            for id in ids() {
                let spec = spec(id)?;
                let env = spec.make();
                println!(
                    "{:<26} {:<44} {:<22} {:>10} {:>10}",
                    id,
                    describe(&env.observation_space()),
                    describe(&env.action_space()),
                    spec.max_episode_steps,
                    spec.reward_threshold
                        .map_or("none".to_string(), |t| t.to_string())
                );
            }
        }
        Command::Presets { algo } => {
            let algorithms = algo.map_or(Algorithm::ALL.to_vec(), |a| vec![a]);
            for algorithm in algorithms {
                println!("{algorithm} (presets/{algorithm}.toml):");
                for env in preset_envs(algorithm)? {
                    if let Some(p) = preset(algorithm, &env)? {
                        let keys: Vec<String> =
                            p.values.iter().map(|(k, v)| format!("{k}={v}")).collect();
                        println!("  {env}: {}\n    source: {}", keys.join(" "), p.source);
                    }
                }
            }
        }
    }
    Ok(())
}

/// A space in one line.
fn describe(space: &Space) -> String {
    match space {
        Space::Discrete(d) => format!("Discrete({})", d.n),
        Space::Box(b) => {
            let fmt = |v: &[f32]| {
                v.iter()
                    .map(|x| format!("{x:.3}"))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            if b.size() <= 2 {
                format!("Box([{}], [{}])", fmt(&b.low), fmt(&b.high))
            } else {
                format!("Box(shape {:?})", b.shape)
            }
        }
    }
}
