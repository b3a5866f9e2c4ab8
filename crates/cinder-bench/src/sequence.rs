//! `cinder-bench sequence`: the sequence pipeline's speed on every backend compiled in —
//! sampling throughput with and without the KV cache at several completion lengths, and
//! GRPO's and PPO's step times (generation and update) with the run's default settings. The
//! workloads are `cinder_lm::throughput`'s, instantiated once in the facade's runner.

use crate::backends::Environment;
use crate::measure::machine_description;
use anyhow::Result;
use cinder::backend::BackendKind;
use cinder::lm::throughput::{ThroughputConfig, ThroughputReport};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The command's arguments.
#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct SequenceArgs {
    /// Backends to measure (default: every backend compiled in).
    #[arg(long, value_delimiter = ',')]
    pub backends: Option<Vec<BackendKind>>,
    /// Completions sampled at once (the run's generation batch is 256).
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Completion lengths at which sampling is timed.
    #[arg(long, value_delimiter = ',', default_value = "8,24,56")]
    pub lengths: Vec<usize>,
    /// Timed repetitions of each sampling workload.
    #[arg(long, default_value_t = 3)]
    pub repetitions: usize,
    /// Timed RL steps per algorithm.
    #[arg(long, default_value_t = 3)]
    pub rl_steps: usize,
    /// Untimed repetitions and RL steps before the timed ones.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Directory for `sequence.json` and `sequence.md`.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl SequenceArgs {
    /// The workloads' configuration.
    pub fn config(&self) -> ThroughputConfig {
        ThroughputConfig::new()
            .with_batch(self.batch)
            .with_completion_lengths(self.lengths.clone())
            .with_repetitions(self.repetitions)
            .with_rl_steps(self.rl_steps)
            .with_warmup(self.warmup)
    }
}

/// One backend's measurements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SequenceBackend {
    /// `flex`, `ndarray`, `wgpu` or `cuda`.
    pub backend: String,
    /// What it measured.
    pub report: ThroughputReport,
}

/// Everything `cinder-bench sequence` measured, as written to `sequence.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SequenceReport {
    /// Machine, versions, threads.
    pub environment: Environment,
    /// One entry per backend.
    pub backends: Vec<SequenceBackend>,
}

/// Measures every backend of `args` one after another.
pub fn run(args: &SequenceArgs) -> Result<SequenceReport> {
    let config = args.config();
    config.validate()?;
    let backends = args.backends.clone().unwrap_or_else(BackendKind::compiled);
    let mut results = Vec::new();
    for kind in backends {
        eprintln!("{} ...", kind.name());
        let report = cinder::runner::sequence_throughput(
            &config,
            kind,
            Box::new(|line: &str| eprintln!("  {line}")),
        )?;
        results.push(SequenceBackend {
            backend: kind.name().into(),
            report,
        });
    }
    Ok(SequenceReport {
        environment: Environment::detect(machine_description()),
        backends: results,
    })
}

fn rate(tokens_per_second: f64) -> String {
    if tokens_per_second >= 10_000.0 {
        format!("{:.0}k", tokens_per_second / 1000.0)
    } else {
        format!("{tokens_per_second:.0}")
    }
}

impl SequenceReport {
    /// The README's tables.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        s.push_str(
            "| backend | completion tokens | KV cache: tokens/s | no cache: tokens/s | cache speed-up |\n\
             |---|---:|---:|---:|---:|\n",
        );
        for b in &self.backends {
            let sampling = &b.report.sampling;
            for cached in sampling.iter().filter(|t| t.cached) {
                let Some(plain) = sampling
                    .iter()
                    .find(|t| !t.cached && t.completion_length == cached.completion_length)
                else {
                    continue;
                };
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {:.1}× |",
                    b.backend,
                    cached.completion_length,
                    rate(cached.tokens_per_second),
                    rate(plain.tokens_per_second),
                    plain.seconds / cached.seconds.max(1e-12)
                );
            }
        }
        s.push_str(
            "\n| backend | algorithm | completions per step | step s | generation s | update s |\n\
             |---|---|---:|---:|---:|---:|\n",
        );
        for b in &self.backends {
            for t in &b.report.steps {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {:.3} | {:.3} | {:.3} |",
                    b.backend,
                    t.algorithm,
                    t.completions,
                    t.step_seconds,
                    t.generation_seconds,
                    t.update_seconds
                );
            }
        }
        if let Some(first) = self.backends.first() {
            let r = &first.report;
            let (model, grpo, ppo) = (&r.run.model, &r.run.grpo, &r.run.ppo);
            let _ = write!(
                s,
                "\nMachine: {}. Threads: {}. Release build, medians of {} timed repetitions after \
                 {} untimed. Sampling: {} completions at once after {} prompts of length {} ({} tokens), an \
                 untrained policy (d_model {}, {} layers, {} heads) with EOS suppressed so that \
                 every completion runs to its length; \"no cache\" recomputes the whole prefix for \
                 every token, as Burn's `forward_autoregressive_inference` does. Steps: the run's \
                 defaults (GRPO: {} prompts × {} completions, μ {}; PPO: {} prompts, {} epochs), \
                 {}-token completions (EOS suppressed), {} timed steps each.\n",
                self.environment.machine,
                self.environment.threads,
                r.config.repetitions,
                r.config.warmup,
                r.config.batch,
                r.run.task.name(),
                r.run.length,
                r.prompt_width,
                model.d_model,
                model.n_layers,
                model.n_heads,
                grpo.prompts_per_step,
                grpo.num_generations,
                grpo.num_iterations,
                ppo.prompts_per_step,
                ppo.num_ppo_epochs,
                grpo.max_completion_length,
                r.config.rl_steps,
            );
        }
        s
    }

    /// Writes `sequence.json` and `sequence.md` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(
            dir.join("sequence.json"),
            serde_json::to_string_pretty(self)?,
        )?;
        std::fs::write(dir.join("sequence.md"), self.markdown())?;
        Ok(())
    }
}
