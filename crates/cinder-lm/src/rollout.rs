//! What GRPO, RLOO and PPO on sequences share before their updates: a generation batch (prompts
//! drawn from the problem sampler, each repeated `G` times, completions sampled from the policy
//! with the KV cache, scored by the reward functions), its statistics under TRL's names, the
//! rows of the log's sample table, and the learner state a checkpoint's header holds.

use crate::model::TransformerPolicy;
use crate::sampling::{SamplingConfig, sample};
use crate::task::{CompletionText, Problem, ProblemSampler, Rewards};
use crate::vocab::encode_prompt;
use burn::tensor::backend::Backend;
use cinder_env::rng::NpRandom;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Instant;

/// What of a sequence learner's state a checkpoint's header holds (the tensors go in its
/// sections).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearnerState {
    /// Steps taken.
    pub step: u64,
    /// The sampling (and shuffling) generator.
    pub rng: NpRandom,
    /// The problem sampler's generator.
    pub sampler_rng: NpRandom,
}

/// One sampled completion, for the log's table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleRow {
    /// The prompt.
    pub prompt: String,
    /// The completion's text (up to `EOS`).
    pub completion: String,
    /// Its total reward.
    pub reward: f64,
}

/// Rows kept for the log's table.
const SAMPLE_ROWS: usize = 4;

/// A sampled generation batch: prompts (each repeated `G` times), completions, rewards.
#[derive(Debug, Clone)]
pub(crate) struct Generation {
    pub(crate) problems: Vec<Problem>,
    pub(crate) prompts: Vec<Vec<u32>>,
    pub(crate) completions: Vec<Vec<u32>>,
    pub(crate) terminated: Vec<bool>,
    pub(crate) rewards: Vec<f64>,
    pub(crate) per_function: Vec<Vec<f64>>,
    pub(crate) tokens: usize,
    pub(crate) seconds: f64,
}

/// The statistics of a generation batch that every learner logs, under TRL's names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletionStats {
    /// Mean total reward of the generation batch.
    pub reward: f64,
    /// Each reward function's mean (`rewards/<name>/mean`).
    #[serde(flatten)]
    pub rewards: BTreeMap<String, f64>,
    /// Completion lengths (tokens, `EOS` included).
    #[serde(rename = "completions/mean_length")]
    pub mean_length: f64,
    /// Shortest completion.
    #[serde(rename = "completions/min_length")]
    pub min_length: usize,
    /// Longest completion.
    #[serde(rename = "completions/max_length")]
    pub max_length: usize,
    /// Fraction of completions cut at `max_completion_length`.
    #[serde(rename = "completions/clipped_ratio")]
    pub clipped_ratio: f64,
}

impl Generation {
    /// Samples `prompts` problems from `sampler`, `g` completions of each from `policy`, and
    /// scores them with `rewards`.
    pub(crate) fn sample<B: Backend>(
        policy: &TransformerPolicy<B>,
        sampler: &mut ProblemSampler,
        rewards: &Rewards,
        sampling: &SamplingConfig,
        rng: &mut NpRandom,
        prompts: usize,
        g: usize,
    ) -> crate::Result<Self> {
        let mut problems = Vec::with_capacity(prompts * g);
        for _ in 0..prompts {
            let p = sampler.next_problem()?;
            problems.extend(std::iter::repeat_n(p, g));
        }
        let prompt_tokens = problems
            .iter()
            .map(|p| encode_prompt(&p.prompt))
            .collect::<crate::Result<Vec<_>>>()?;
        let start = Instant::now();
        let out = sample(policy, &prompt_tokens, sampling, rng, true)?;
        let seconds = start.elapsed().as_secs_f64();
        let mut scores = Vec::with_capacity(problems.len());
        let mut per_function = Vec::with_capacity(problems.len());
        for (problem, tokens) in problems.iter().zip(&out.tokens) {
            let r = rewards.score(problem, &CompletionText::from_tokens(tokens)?)?;
            scores.push(r.total);
            per_function.push(r.per_function);
        }
        Ok(Self {
            tokens: out.tokens.iter().map(Vec::len).sum(),
            problems,
            prompts: prompt_tokens,
            completions: out.tokens,
            terminated: out.terminated,
            rewards: scores,
            per_function,
            seconds,
        })
    }

    /// The first completion of each of the first prompts (every `g`-th row), for the log.
    pub(crate) fn sample_rows(&self, g: usize) -> crate::Result<Vec<SampleRow>> {
        (0..self.rewards.len().div_ceil(g.max(1)).min(SAMPLE_ROWS))
            .map(|p| {
                let i = p * g;
                Ok(SampleRow {
                    prompt: self.problems[i].prompt.clone(),
                    completion: CompletionText::from_tokens(&self.completions[i])?.text,
                    reward: self.rewards[i],
                })
            })
            .collect()
    }

    /// The batch's reward and length statistics (`names`: the reward functions').
    pub(crate) fn stats(&self, names: &[String]) -> CompletionStats {
        let n = self.rewards.len().max(1) as f64;
        let rewards = names
            .iter()
            .enumerate()
            .map(|(k, name)| {
                let m = self.per_function.iter().map(|r| r[k]).sum::<f64>() / n;
                (format!("rewards/{name}/mean"), m)
            })
            .collect();
        let lengths: Vec<usize> = self.completions.iter().map(Vec::len).collect();
        CompletionStats {
            reward: self.rewards.iter().sum::<f64>() / n,
            rewards,
            mean_length: lengths.iter().sum::<usize>() as f64 / n,
            min_length: lengths.iter().copied().min().unwrap_or(0),
            max_length: lengths.iter().copied().max().unwrap_or(0),
            clipped_ratio: self.terminated.iter().filter(|&&t| !t).count() as f64 / n,
        }
    }
}

/// The frozen reference of a checkpoint's `reference` section when `wanted` (a positive KL
/// coefficient), loaded into the shape of `policy` (GRPO's and PPO's restore share it).
pub(crate) fn load_reference<B: burn::tensor::backend::AutodiffBackend>(
    checkpoint: &cinder_rl::checkpoint::Checkpoint,
    path: &std::path::Path,
    policy: &TransformerPolicy<B>,
    wanted: bool,
) -> crate::Result<Option<TransformerPolicy<B::InnerBackend>>> {
    use burn::module::AutodiffModule;
    if !wanted {
        return Ok(None);
    }
    let skeleton = policy.valid();
    let device = skeleton.device();
    Ok(Some(checkpoint.module::<B::InnerBackend, _>(
        path,
        "reference",
        "the reference policy",
        skeleton,
        &device,
    )?))
}

/// Fisher-Yates with the run's generator.
pub(crate) fn shuffle(v: &mut [usize], rng: &mut NpRandom) {
    for i in (1..v.len()).rev() {
        let j = rng.integers(i as u64 + 1) as usize;
        v.swap(i, j);
    }
}
