//! How fast the sequence pipeline runs on one backend, what `cinder-bench sequence` reports:
//!
//! - **sampling throughput** (completion tokens per second) with and without the
//!   [`KvCache`](crate::model::KvCache), at several completion lengths. The uncached path
//!   recomputes attention over the whole prefix for every new token, as Burn's
//!   `forward_autoregressive_inference` does, so its cost per token grows with the length; the
//!   cached path feeds one position per token;
//! - **RL step time** of GRPO and PPO with the run's default settings
//!   ([`SequenceRunConfig`]) on 3-digit addition, split into generation (sampling) and the rest
//!   (reference and rollout log-probs, advantages, the gradient steps).
//!
//! The policy is untrained, with `EOS` suppressed ([`TransformerPolicy::suppressing`]), so that
//! every completion runs to its maximum length and each workload does the same work on every
//! backend and every repetition. Times are medians over repetitions after untimed warm-up
//! ones; sampling reads the logits back at every token, so the clock stops only after the
//! device has finished.

use crate::error::LmError;
use crate::grpo::Grpo;
use crate::model::{TransformerPolicy, TransformerPolicyConfig};
use crate::ppo::Ppo;
use crate::run::SequenceRunConfig;
use crate::sampling::{SamplingConfig, sample};
use crate::task::{ProblemSampler, Rewards};
use crate::vocab::{EOS, encode_prompt};
use burn::config::Config;
use burn::tensor::backend::{AutodiffBackend, Backend};
use cinder_env::rng::NpRandom;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// What to measure.
#[derive(Config, Debug, PartialEq)]
pub struct ThroughputConfig {
    /// Completions sampled at once (the run's generation batch: 32 prompts × 8 completions).
    #[config(default = 256)]
    pub batch: usize,
    /// Completion lengths (tokens) at which sampling is timed; the policy's context holds the
    /// prompt and the longest.
    #[config(default = "vec![8, 24, 56]")]
    pub completion_lengths: Vec<usize>,
    /// Timed repetitions of each sampling workload (the median is reported).
    #[config(default = 3)]
    pub repetitions: usize,
    /// Timed RL steps of each algorithm (the median is reported).
    #[config(default = 3)]
    pub rl_steps: usize,
    /// Untimed repetitions (and RL steps) before the timed ones.
    #[config(default = 1)]
    pub warmup: usize,
    /// Seed of the policy, the prompts and the sampling.
    #[config(default = 1)]
    pub seed: u64,
}

impl ThroughputConfig {
    /// Checks the values; the error says what to change.
    pub fn validate(&self) -> crate::Result<()> {
        if self.batch == 0
            || self.repetitions == 0
            || self.rl_steps == 0
            || self.completion_lengths.is_empty()
            || self.completion_lengths.contains(&0)
        {
            return Err(LmError::InvalidConfig(format!(
                "the throughput benchmark needs batch, repetitions and rl_steps >= 1 and at \
                 least one completion length, each >= 1 (got {self:?})"
            )));
        }
        Ok(())
    }
}

/// Sampling at one completion length, with or without the cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplingTiming {
    /// Tokens per completion.
    pub completion_length: usize,
    /// Whether the [`KvCache`](crate::model::KvCache) was used.
    pub cached: bool,
    /// Completions per call.
    pub batch: usize,
    /// Median seconds of one call (the whole batch).
    pub seconds: f64,
    /// Completion tokens per second (`batch × completion_length / seconds`).
    pub tokens_per_second: f64,
}

/// One RL algorithm's step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepTiming {
    /// `grpo` or `ppo`.
    pub algorithm: String,
    /// Completions per step.
    pub completions: usize,
    /// Median seconds of a whole step.
    pub step_seconds: f64,
    /// Median seconds of its generation (sampling the completions).
    pub generation_seconds: f64,
    /// Median seconds of the rest: log-probs, advantages and the gradient steps.
    pub update_seconds: f64,
}

/// Everything measured on one backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThroughputReport {
    /// What was measured.
    pub config: ThroughputConfig,
    /// The run settings the RL steps used (the policy's size, GRPO's and PPO's batches).
    pub run: SequenceRunConfig,
    /// Prompt tokens of the widest prompt (3-digit addition).
    pub prompt_width: usize,
    /// Sampling, cached and uncached, per completion length.
    pub sampling: Vec<SamplingTiming>,
    /// GRPO's and PPO's steps.
    pub steps: Vec<StepTiming>,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        0.5 * (values[n / 2 - 1] + values[n / 2])
    }
}

/// Runs every workload of `config` on `device`; `log` receives a line per workload.
pub fn measure<B: AutodiffBackend>(
    config: &ThroughputConfig,
    device: &B::Device,
    log: &mut dyn FnMut(&str),
) -> crate::Result<ThroughputReport> {
    config.validate()?;
    let run = SequenceRunConfig::new().with_seed(config.seed);
    run.validate()?;
    let mut problems = ProblemSampler::new(run.task, run.length..=run.length, config.seed, &[])?;
    let prompts = (0..config.batch)
        .map(|_| encode_prompt(&problems.next_problem()?.prompt))
        .collect::<crate::Result<Vec<_>>>()?;
    let prompt_width = prompts.iter().map(Vec::len).max().unwrap_or(0);
    let longest = config.completion_lengths.iter().copied().max().unwrap_or(1);
    let policy: TransformerPolicy<B::InnerBackend> = TransformerPolicyConfig::new()
        .with_max_len(prompt_width + longest)
        .init_seeded(config.seed, device)?
        .suppressing(EOS)?;
    let mut sampling = Vec::new();
    for &length in &config.completion_lengths {
        for cached in [true, false] {
            let timing = time_sampling(&policy, &prompts, length, cached, config)?;
            log(&format!(
                "sampling {} x {length} tokens, {}: {:.4} s, {:.0} tokens/s",
                config.batch,
                if cached { "KV cache" } else { "no cache" },
                timing.seconds,
                timing.tokens_per_second
            ));
            sampling.push(timing);
        }
    }
    let steps = vec![
        time_grpo::<B>(&run, config, device)?,
        time_ppo::<B>(&run, config, device)?,
    ];
    for s in &steps {
        log(&format!(
            "{} step ({} completions): {:.3} s = generation {:.3} s + update {:.3} s",
            s.algorithm, s.completions, s.step_seconds, s.generation_seconds, s.update_seconds
        ));
    }
    Ok(ThroughputReport {
        config: config.clone(),
        run,
        prompt_width,
        sampling,
        steps,
    })
}

fn time_sampling<B: Backend>(
    policy: &TransformerPolicy<B>,
    prompts: &[Vec<u32>],
    length: usize,
    cached: bool,
    config: &ThroughputConfig,
) -> crate::Result<SamplingTiming> {
    let sampling = SamplingConfig::new().with_max_completion_length(length);
    let mut seconds = Vec::with_capacity(config.repetitions);
    for rep in 0..config.warmup + config.repetitions {
        let mut rng = NpRandom::from_seed(config.seed.wrapping_add(rep as u64));
        let start = Instant::now();
        let out = sample(policy, prompts, &sampling, &mut rng, cached)?;
        let elapsed = start.elapsed().as_secs_f64();
        if out.tokens.iter().any(|t| t.len() != length) {
            return Err(LmError::InvalidConfig(format!(
                "a completion stopped before {length} tokens although EOS was suppressed"
            )));
        }
        if rep >= config.warmup {
            seconds.push(elapsed);
        }
    }
    let seconds = median(seconds);
    Ok(SamplingTiming {
        completion_length: length,
        cached,
        batch: prompts.len(),
        seconds,
        tokens_per_second: (prompts.len() * length) as f64 / seconds.max(1e-12),
    })
}

/// The run's untrained policy with `EOS` suppressed, and a fresh problem sampler and rewards.
fn rl_parts<B: AutodiffBackend>(
    run: &SequenceRunConfig,
    device: &B::Device,
) -> crate::Result<(TransformerPolicy<B>, ProblemSampler, Rewards)> {
    let policy = run
        .model
        .init_seeded::<B>(run.seed, device)?
        .suppressing(EOS)?;
    let sampler = ProblemSampler::new(run.task, run.min_length..=run.length, run.seed, &[])?;
    let rewards = Rewards::builtin(&run.reward_funcs, run.reward_weights.clone(), run.task)?;
    Ok((policy, sampler, rewards))
}

/// Runs `config.warmup` untimed and `config.rl_steps` timed steps of `step`, which returns a
/// step's seconds, its completions' mean length and its sampling tokens per second; a step's
/// generation time is its tokens over that rate.
fn time_steps(
    algorithm: &str,
    completions: usize,
    config: &ThroughputConfig,
    mut step: impl FnMut() -> crate::Result<(f64, f64, f64)>,
) -> crate::Result<StepTiming> {
    let (mut total, mut generation, mut update) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..config.warmup + config.rl_steps {
        let (seconds, mean_length, tokens_per_second) = step()?;
        if i >= config.warmup {
            let generating = mean_length * completions as f64 / tokens_per_second.max(1e-12);
            total.push(seconds);
            generation.push(generating);
            update.push(seconds - generating);
        }
    }
    Ok(StepTiming {
        algorithm: algorithm.into(),
        completions,
        step_seconds: median(total),
        generation_seconds: median(generation),
        update_seconds: median(update),
    })
}

fn time_grpo<B: AutodiffBackend>(
    run: &SequenceRunConfig,
    config: &ThroughputConfig,
    device: &B::Device,
) -> crate::Result<StepTiming> {
    let (policy, sampler, rewards) = rl_parts::<B>(run, device)?;
    let steps = (config.warmup + config.rl_steps) as u64;
    let mut grpo = Grpo::new(run.grpo.clone(), policy, sampler, rewards, run.seed, steps)?;
    let completions = run.grpo.prompts_per_step * run.grpo.num_generations;
    time_steps("grpo", completions, config, || {
        let m = grpo.step()?;
        Ok((
            m.step_seconds,
            m.completions.mean_length,
            m.tokens_per_second,
        ))
    })
}

fn time_ppo<B: AutodiffBackend>(
    run: &SequenceRunConfig,
    config: &ThroughputConfig,
    device: &B::Device,
) -> crate::Result<StepTiming> {
    let (policy, sampler, rewards) = rl_parts::<B>(run, device)?;
    let mut ppo = Ppo::new(run.ppo.clone(), policy, sampler, rewards, run.seed)?;
    time_steps("ppo", run.ppo.prompts_per_step, config, || {
        let m = ppo.step()?;
        Ok((
            m.step_seconds,
            m.completions.mean_length,
            m.tokens_per_second,
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, NdArray};

    #[test]
    fn every_workload_is_measured_and_completions_run_to_their_length() {
        let config = ThroughputConfig::new()
            .with_batch(4)
            .with_completion_lengths(vec![2, 5])
            .with_repetitions(1)
            .with_rl_steps(1)
            .with_warmup(0);
        let report =
            measure::<Autodiff<NdArray>>(&config, &Default::default(), &mut |_| {}).unwrap();
        let shapes: Vec<(usize, bool)> = report
            .sampling
            .iter()
            .map(|s| (s.completion_length, s.cached))
            .collect();
        assert_eq!(shapes, vec![(2, true), (2, false), (5, true), (5, false)]);
        assert!(report.sampling.iter().all(|s| s.tokens_per_second > 0.0));
        let names: Vec<&str> = report.steps.iter().map(|s| s.algorithm.as_str()).collect();
        assert_eq!(names, ["grpo", "ppo"]);
        for s in &report.steps {
            assert!(
                s.generation_seconds > 0.0 && s.generation_seconds < s.step_seconds,
                "{s:?}"
            );
        }
        assert!(ThroughputConfig::new().with_batch(0).validate().is_err());
        assert!(
            ThroughputConfig::new()
                .with_completion_lengths(vec![])
                .validate()
                .is_err()
        );
    }
}
