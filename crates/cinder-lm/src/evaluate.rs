//! Held-out evaluation of a sequence policy on a [`ProblemSet`]: greedy exact-match accuracy,
//! its accuracy per answer position, and with sampled completions pass@1 and pass@k.

use crate::error::Result;
use crate::model::TransformerPolicy;
use crate::sampling::{SamplingConfig, sample};
use crate::task::{CompletionText, ExactMatch, ProblemSet, RewardFunction};
use crate::vocab::encode_prompt;
use burn::tensor::backend::Backend;
use cinder_env::rng::NpRandom;
use serde::{Deserialize, Serialize};

/// A policy's scores on a problem set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    /// Problems scored.
    pub problems: usize,
    /// Greedy (temperature 0) exact-match accuracy.
    pub exact_match: f64,
    /// Greedy accuracy of each answer position (position 0 first; over the problems whose
    /// answer is that long).
    pub per_position: Vec<f64>,
    /// The mean fraction of `k` sampled completions (temperature 1) that are exact: an unbiased
    /// estimate of pass@1. `None` when `k` was 0.
    pub pass_at_1: Option<f64>,
    /// The fraction of problems with at least one exact completion among `k` samples.
    pub pass_at_k: Option<f64>,
    /// The `k` of pass@k.
    pub k: usize,
}

/// Batches of at most this many prompts per sampling call.
const CHUNK: usize = 256;

/// Scores `policy` on `set`: greedy completions of at most `max_completion_length` tokens, and
/// `k` sampled ones per problem (none when `k` is 0) from `seed`.
pub fn accuracy<B: Backend>(
    policy: &TransformerPolicy<B>,
    set: &ProblemSet,
    max_completion_length: usize,
    k: usize,
    seed: u64,
) -> Result<Accuracy> {
    let prompts = set
        .problems
        .iter()
        .map(|p| encode_prompt(&p.prompt))
        .collect::<Result<Vec<_>>>()?;
    let greedy = SamplingConfig::new()
        .with_temperature(0.0)
        .with_max_completion_length(max_completion_length);
    let mut rng = NpRandom::from_seed(seed);
    let mut exact = 0usize;
    let mut right = Vec::<usize>::new();
    let mut seen = Vec::<usize>::new();
    for (problems, prompts) in set.problems.chunks(CHUNK).zip(prompts.chunks(CHUNK)) {
        let out = sample(policy, prompts, &greedy, &mut rng, true)?;
        for (problem, tokens) in problems.iter().zip(&out.tokens) {
            let completion = CompletionText::from_tokens(tokens)?;
            exact += usize::from(ExactMatch.score(problem, &completion) == 1.0);
            for (j, a) in problem.answer.chars().enumerate() {
                if right.len() <= j {
                    right.push(0);
                    seen.push(0);
                }
                seen[j] += 1;
                right[j] += usize::from(completion.text.chars().nth(j) == Some(a));
            }
        }
    }
    let n = set.problems.len().max(1) as f64;
    let (pass_at_1, pass_at_k) = if k == 0 {
        (None, None)
    } else {
        let sampled = SamplingConfig::new().with_max_completion_length(max_completion_length);
        let mut correct_fraction = 0.0;
        let mut any = 0usize;
        let per_chunk = CHUNK.checked_div(k).unwrap_or(1).max(1);
        for (problems, prompts) in set
            .problems
            .chunks(per_chunk)
            .zip(prompts.chunks(per_chunk))
        {
            let repeated: Vec<Vec<u32>> = prompts
                .iter()
                .flat_map(|p| std::iter::repeat_n(p.clone(), k))
                .collect();
            let out = sample(policy, &repeated, &sampled, &mut rng, true)?;
            for (i, problem) in problems.iter().enumerate() {
                let mut hits = 0usize;
                for s in i * k..(i + 1) * k {
                    let completion = CompletionText::from_tokens(&out.tokens[s])?;
                    hits += usize::from(ExactMatch.score(problem, &completion) == 1.0);
                }
                correct_fraction += hits as f64 / k as f64;
                any += usize::from(hits > 0);
            }
        }
        (Some(correct_fraction / n), Some(any as f64 / n))
    };
    Ok(Accuracy {
        problems: set.problems.len(),
        exact_match: exact as f64 / n,
        per_position: right
            .iter()
            .zip(&seen)
            .map(|(&r, &s)| r as f64 / s.max(1) as f64)
            .collect(),
        pass_at_1,
        pass_at_k,
        k,
    })
}
