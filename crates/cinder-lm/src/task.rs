//! Prompt tasks with verifiable rewards: a seeded generator of problems (prompt and answer) and
//! reward functions that score a completion against the answer, as TRL's `reward_funcs` and
//! `reward_weights`.
//!
//! Three char-level tasks, each with a difficulty knob (`length`):
//! - [`Task::Addition`]: `"{a}+{b}="` with `length`-digit operands; the answer is the sum written
//!   least-significant digit first (`"57+68="` → `"521"`), so the carries are the hard tokens;
//! - [`Task::Sort`]: `"s:{digits}="` → the digits in ascending order;
//! - [`Task::Reverse`]: `"r:{letters}="` → the letters reversed.
//!
//! A [`ProblemSet`] is a fixed, seeded set of problems: the held-out evaluation set (at the
//! training lengths) and the out-of-distribution set (longer than trained on). The training
//! sampler ([`ProblemSampler`]) never draws a held-out problem.

use crate::error::{LmError, Result};
use cinder_env::rng::NpRandom;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// One problem: the prompt the policy sees and the answer a completion is scored against.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Problem {
    /// The prompt's text (without the `BOS` token).
    pub prompt: String,
    /// The correct completion's text (without the `EOS` token).
    pub answer: String,
}

/// The procedurally generated tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Multi-digit addition, the answer least-significant digit first.
    Addition,
    /// Sorting digits in ascending order.
    Sort,
    /// Reversing a string of lowercase letters.
    Reverse,
}

impl Task {
    /// All tasks.
    pub const ALL: [Task; 3] = [Task::Addition, Task::Sort, Task::Reverse];

    /// The task's name (`addition`, `sort`, `reverse`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Addition => "addition",
            Self::Sort => "sort",
            Self::Reverse => "reverse",
        }
    }

    /// The task named `name`; the error lists the known names.
    pub fn from_name(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.name() == name)
            .ok_or_else(|| {
                LmError::InvalidConfig(format!(
                    "unknown task {name:?}: the tasks are addition, sort and reverse"
                ))
            })
    }

    /// The characters an answer of this task may contain (the format reward checks them).
    pub fn answer_alphabet(self) -> &'static str {
        match self {
            Self::Addition | Self::Sort => "0123456789",
            Self::Reverse => "abcdefghijklmnopqrstuvwxyz",
        }
    }

    /// The longest prompt and answer (in characters) of a problem of `length`.
    pub fn max_text_lengths(self, length: usize) -> (usize, usize) {
        match self {
            Self::Addition => (2 * length + 2, length + 1),
            Self::Sort | Self::Reverse => (length + 3, length),
        }
    }

    /// Draws one problem of difficulty `length` (digits per operand, digits or letters).
    pub fn sample(self, length: usize, rng: &mut NpRandom) -> Problem {
        match self {
            Self::Addition => {
                let a = random_number(length, rng);
                let b = random_number(length, rng);
                let sum = add_decimal(&a, &b);
                Problem {
                    prompt: format!("{a}+{b}="),
                    answer: sum.chars().rev().collect(),
                }
            }
            Self::Sort => {
                let digits: String = (0..length)
                    .map(|_| char::from(b'0' + rng.integers(10) as u8))
                    .collect();
                let mut sorted: Vec<char> = digits.chars().collect();
                sorted.sort_unstable();
                Problem {
                    prompt: format!("s:{digits}="),
                    answer: sorted.into_iter().collect(),
                }
            }
            Self::Reverse => {
                let letters: String = (0..length)
                    .map(|_| char::from(b'a' + rng.integers(26) as u8))
                    .collect();
                Problem {
                    prompt: format!("r:{letters}="),
                    answer: letters.chars().rev().collect(),
                }
            }
        }
    }
}

/// A `length`-digit decimal number without a leading zero (a single digit may be 0).
fn random_number(length: usize, rng: &mut NpRandom) -> String {
    (0..length)
        .map(|i| {
            let digit = if i == 0 && length > 1 {
                1 + rng.integers(9)
            } else {
                rng.integers(10)
            };
            char::from(b'0' + digit as u8)
        })
        .collect()
}

/// The sum of two decimal strings, most significant digit first (any length, no overflow).
fn add_decimal(a: &str, b: &str) -> String {
    let (a, b): (Vec<u8>, Vec<u8>) = (
        a.bytes().rev().map(|d| d - b'0').collect(),
        b.bytes().rev().map(|d| d - b'0').collect(),
    );
    let mut digits = Vec::with_capacity(a.len().max(b.len()) + 1);
    let mut carry = 0u8;
    for i in 0..a.len().max(b.len()) {
        let s = a.get(i).copied().unwrap_or(0) + b.get(i).copied().unwrap_or(0) + carry;
        digits.push(char::from(b'0' + s % 10));
        carry = s / 10;
    }
    if carry > 0 {
        digits.push(char::from(b'0' + carry));
    }
    digits.into_iter().rev().collect()
}

/// A fixed set of problems (a held-out or out-of-distribution evaluation set).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProblemSet {
    /// The task.
    pub task: Task,
    /// The problems, in order, without duplicates.
    pub problems: Vec<Problem>,
}

impl ProblemSet {
    /// `count` distinct problems of `task` with lengths drawn uniformly from `lengths`, from
    /// `seed` (the same arguments give the same set). Fewer when the lengths have fewer distinct
    /// problems.
    pub fn generate(
        task: Task,
        lengths: std::ops::RangeInclusive<usize>,
        count: usize,
        seed: u64,
    ) -> Result<Self> {
        check_lengths(&lengths)?;
        let mut rng = NpRandom::from_seed(seed);
        let mut seen = HashSet::new();
        let mut problems = Vec::with_capacity(count);
        // Give up after many repeats: a tiny problem space has fewer than `count` problems.
        let mut attempts = 0usize;
        while problems.len() < count && attempts < count.saturating_mul(50).max(1000) {
            attempts += 1;
            let length = draw_length(&lengths, &mut rng);
            let p = task.sample(length, &mut rng);
            if seen.insert(p.clone()) {
                problems.push(p);
            }
        }
        Ok(Self { task, problems })
    }

    /// Whether the set holds `problem`.
    pub fn contains(&self, problem: &Problem) -> bool {
        self.problems.contains(problem)
    }
}

fn check_lengths(lengths: &std::ops::RangeInclusive<usize>) -> Result<()> {
    if *lengths.start() == 0 || lengths.start() > lengths.end() {
        return Err(LmError::InvalidConfig(format!(
            "task lengths {}..={} must be a non-empty range of lengths >= 1",
            lengths.start(),
            lengths.end()
        )));
    }
    Ok(())
}

fn draw_length(lengths: &std::ops::RangeInclusive<usize>, rng: &mut NpRandom) -> usize {
    let span = (lengths.end() - lengths.start() + 1) as u64;
    lengths.start() + rng.integers(span) as usize
}

/// Draws training problems: uniform lengths in a range, never a problem of the excluded
/// (held-out) sets. Its generator state is part of a checkpoint, for exact resume.
#[derive(Debug, Clone)]
pub struct ProblemSampler {
    task: Task,
    lengths: std::ops::RangeInclusive<usize>,
    excluded: HashSet<Problem>,
    rng: NpRandom,
}

impl ProblemSampler {
    /// A sampler of `task` problems with lengths in `lengths`, seeded, skipping every problem of
    /// `excluded`.
    pub fn new(
        task: Task,
        lengths: std::ops::RangeInclusive<usize>,
        seed: u64,
        excluded: &[&ProblemSet],
    ) -> Result<Self> {
        check_lengths(&lengths)?;
        Ok(Self {
            task,
            lengths,
            excluded: excluded
                .iter()
                .flat_map(|s| s.problems.iter().cloned())
                .collect(),
            rng: NpRandom::from_seed(seed),
        })
    }

    /// The next problem. An error when the excluded sets cover (nearly) every problem of the
    /// training lengths (10,000 draws in a row were all excluded).
    pub fn next_problem(&mut self) -> Result<Problem> {
        for _ in 0..10_000 {
            let length = draw_length(&self.lengths, &mut self.rng);
            let p = self.task.sample(length, &mut self.rng);
            if !self.excluded.contains(&p) {
                return Ok(p);
            }
        }
        Err(LmError::InvalidConfig(format!(
            "the held-out problems cover the {} problems of lengths {}..={}: nothing is left to \
             train on; lower eval_problems or train on longer problems",
            self.task.name(),
            self.lengths.start(),
            self.lengths.end()
        )))
    }

    /// The generator (serialisable, for a checkpoint).
    pub fn rng(&self) -> &NpRandom {
        &self.rng
    }

    /// Restores the generator from a checkpoint.
    pub fn set_rng(&mut self, rng: NpRandom) {
        self.rng = rng;
    }
}

/// A completion as the reward functions see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletionText {
    /// The text up to the first `EOS` (or all of it).
    pub text: String,
    /// Whether an `EOS` ended it (false: cut at the length limit).
    pub terminated: bool,
}

impl CompletionText {
    /// The text of sampled completion tokens (up to the first `EOS`) and whether an `EOS`
    /// ended them.
    pub fn from_tokens(tokens: &[u32]) -> Result<Self> {
        let (text, terminated) = crate::vocab::decode(tokens)?;
        Ok(Self { text, terminated })
    }
}

/// A reward function: scores a completion of a problem (TRL's `reward_funcs`). Implement it for
/// your own rewards; the built-ins are [`ExactMatch`], [`PartialCredit`] and [`Format`].
pub trait RewardFunction: Send + Sync {
    /// The name under which its mean is logged (`rewards/<name>/mean`).
    fn name(&self) -> &str;
    /// The reward of `completion` for `problem`.
    fn score(&self, problem: &Problem, completion: &CompletionText) -> f64;
}

/// 1 when the completion is the answer and ended with `EOS`, else 0.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExactMatch;

impl RewardFunction for ExactMatch {
    fn name(&self) -> &str {
        "exact_match"
    }
    fn score(&self, problem: &Problem, completion: &CompletionText) -> f64 {
        f64::from(u8::from(
            completion.terminated && completion.text == problem.answer,
        ))
    }
}

/// The fraction of the answer's positions the completion gets right, divided by
/// `max(answer length, completion length)` so that padding the answer with extra characters does
/// not pay.
#[derive(Debug, Clone, Copy, Default)]
pub struct PartialCredit;

impl RewardFunction for PartialCredit {
    fn name(&self) -> &str {
        "partial_credit"
    }
    fn score(&self, problem: &Problem, completion: &CompletionText) -> f64 {
        let right = problem
            .answer
            .chars()
            .zip(completion.text.chars())
            .filter(|(a, b)| a == b)
            .count();
        let len = problem
            .answer
            .chars()
            .count()
            .max(completion.text.chars().count())
            .max(1);
        right as f64 / len as f64
    }
}

/// 1 when the completion ended with `EOS`, has the answer's length and uses only the task's
/// answer alphabet, else 0.
#[derive(Debug, Clone, Copy)]
pub struct Format {
    /// The task whose alphabet applies.
    pub task: Task,
}

impl RewardFunction for Format {
    fn name(&self) -> &str {
        "format"
    }
    fn score(&self, problem: &Problem, completion: &CompletionText) -> f64 {
        let alphabet = self.task.answer_alphabet();
        let ok = completion.terminated
            && completion.text.chars().count() == problem.answer.chars().count()
            && completion.text.chars().all(|c| alphabet.contains(c));
        f64::from(u8::from(ok))
    }
}

/// The built-in reward functions by name (`exact_match`, `partial_credit`, `format`); the error
/// lists them.
pub fn builtin_reward(name: &str, task: Task) -> Result<Box<dyn RewardFunction>> {
    match name {
        "exact_match" => Ok(Box::new(ExactMatch)),
        "partial_credit" => Ok(Box::new(PartialCredit)),
        "format" => Ok(Box::new(Format { task })),
        other => Err(LmError::InvalidConfig(format!(
            "unknown reward function {other:?}: the built-ins are exact_match, partial_credit \
             and format"
        ))),
    }
}

/// Reward functions and their weights: the reward of a completion is `Σ weight · score`.
pub struct Rewards {
    functions: Vec<(Box<dyn RewardFunction>, f64)>,
}

impl std::fmt::Debug for Rewards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.functions.iter().map(|(r, w)| (r.name(), w)))
            .finish()
    }
}

/// One completion's reward: the weighted total and each function's own score.
#[derive(Debug, Clone, PartialEq)]
pub struct Reward {
    /// `Σ weight · score`.
    pub total: f64,
    /// Each function's score (unweighted), in the order of [`Rewards::names`].
    pub per_function: Vec<f64>,
}

impl Rewards {
    /// `functions` with their `weights` (TRL's `reward_weights`; `None`: all 1).
    pub fn new(functions: Vec<Box<dyn RewardFunction>>, weights: Option<Vec<f64>>) -> Result<Self> {
        if functions.is_empty() {
            return Err(LmError::InvalidConfig(
                "at least one reward function is needed".into(),
            ));
        }
        let weights = weights.unwrap_or_else(|| vec![1.0; functions.len()]);
        if weights.len() != functions.len() || weights.iter().any(|w| !w.is_finite()) {
            return Err(LmError::InvalidConfig(format!(
                "reward_weights needs one finite weight per reward function ({} functions, \
                 weights {weights:?})",
                functions.len()
            )));
        }
        Ok(Self {
            functions: functions.into_iter().zip(weights).collect(),
        })
    }

    /// The built-in functions named in `names`, with `weights`.
    pub fn builtin(names: &[String], weights: Option<Vec<f64>>, task: Task) -> Result<Self> {
        let functions = names
            .iter()
            .map(|n| builtin_reward(n, task))
            .collect::<Result<Vec<_>>>()?;
        Self::new(functions, weights)
    }

    /// The functions' names, in order.
    pub fn names(&self) -> Vec<String> {
        self.functions
            .iter()
            .map(|(f, _)| f.name().to_string())
            .collect()
    }

    /// Scores `completion`; a non-finite score is an error naming the function.
    pub fn score(&self, problem: &Problem, completion: &CompletionText) -> Result<Reward> {
        let mut total = 0.0;
        let mut per_function = Vec::with_capacity(self.functions.len());
        for (f, w) in &self.functions {
            let s = f.score(problem, completion);
            if !s.is_finite() {
                return Err(LmError::NonFiniteReward {
                    function: f.name().to_string(),
                    value: s,
                    prompt: problem.prompt.clone(),
                    completion: completion.text.clone(),
                });
            }
            total += w * s;
            per_function.push(s);
        }
        Ok(Reward {
            total,
            per_function,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(text: &str) -> CompletionText {
        CompletionText {
            text: text.into(),
            terminated: true,
        }
    }

    #[test]
    fn addition_answers_are_sums_written_backwards() {
        let mut rng = NpRandom::from_seed(3);
        for length in 1..=6 {
            for _ in 0..200 {
                let p = Task::Addition.sample(length, &mut rng);
                let (a, b) = p.prompt.trim_end_matches('=').split_once('+').unwrap();
                assert_eq!(a.len(), length);
                let sum: u64 = a.parse::<u64>().unwrap() + b.parse::<u64>().unwrap();
                let forwards: String = p.answer.chars().rev().collect();
                assert_eq!(forwards.parse::<u64>().unwrap(), sum, "{p:?}");
                assert!(p.prompt.len() <= Task::Addition.max_text_lengths(length).0);
                assert!(p.answer.len() <= Task::Addition.max_text_lengths(length).1);
            }
        }
        // Known answers, worked by hand.
        assert_eq!(add_decimal("57", "68"), "125");
        assert_eq!(add_decimal("999", "1"), "1000");
    }

    #[test]
    fn sort_and_reverse_answers() {
        let mut rng = NpRandom::from_seed(5);
        let p = Task::Sort.sample(6, &mut rng);
        let digits = &p.prompt[2..8];
        let mut v: Vec<char> = digits.chars().collect();
        v.sort();
        assert_eq!(p.answer, v.into_iter().collect::<String>());
        let p = Task::Reverse.sample(5, &mut rng);
        let letters = &p.prompt[2..7];
        assert_eq!(p.answer, letters.chars().rev().collect::<String>());
        for t in Task::ALL {
            assert_eq!(Task::from_name(t.name()).unwrap(), t);
        }
        assert!(Task::from_name("division").is_err());
    }

    #[test]
    fn held_out_sets_are_fixed_and_excluded_from_training() {
        let a = ProblemSet::generate(Task::Addition, 2..=2, 100, 7).unwrap();
        let b = ProblemSet::generate(Task::Addition, 2..=2, 100, 7).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.problems.len(), 100);
        let mut sampler = ProblemSampler::new(Task::Addition, 2..=2, 1, &[&a]).unwrap();
        for _ in 0..5000 {
            assert!(!a.contains(&sampler.next_problem().unwrap()));
        }
        // A tiny space: 1-digit sorting has only 10 problems.
        let tiny = ProblemSet::generate(Task::Sort, 1..=1, 100, 1).unwrap();
        assert_eq!(tiny.problems.len(), 10);
        assert!(ProblemSet::generate(Task::Sort, 0..=3, 10, 1).is_err());
        // Resume: the sampler continues identically from a saved generator state.
        let state = sampler.rng().clone();
        let next: Vec<Problem> = (0..5).map(|_| sampler.next_problem().unwrap()).collect();
        sampler.set_rng(state);
        let again: Vec<Problem> = (0..5).map(|_| sampler.next_problem().unwrap()).collect();
        // Every problem held out: an error, not an endless loop.
        let all = ProblemSet::generate(Task::Sort, 1..=1, 10, 2).unwrap();
        let mut stuck = ProblemSampler::new(Task::Sort, 1..=1, 1, &[&all]).unwrap();
        assert!(stuck.next_problem().is_err());
        assert_eq!(next, again);
    }

    #[test]
    fn rewards() {
        let p = Problem {
            prompt: "57+68=".into(),
            answer: "521".into(),
        };
        assert_eq!(ExactMatch.score(&p, &done("521")), 1.0);
        assert_eq!(
            ExactMatch.score(
                &p,
                &CompletionText {
                    text: "521".into(),
                    terminated: false
                }
            ),
            0.0
        );
        assert_eq!(PartialCredit.score(&p, &done("511")), 2.0 / 3.0);
        assert_eq!(PartialCredit.score(&p, &done("5210")), 3.0 / 4.0);
        let format = Format {
            task: Task::Addition,
        };
        assert_eq!(format.score(&p, &done("999")), 1.0);
        assert_eq!(format.score(&p, &done("99a")), 0.0);
        let rewards = Rewards::builtin(
            &["exact_match".into(), "format".into()],
            Some(vec![1.0, 0.1]),
            Task::Addition,
        )
        .unwrap();
        let r = rewards.score(&p, &done("521")).unwrap();
        assert!((r.total - 1.1).abs() < 1e-12);
        assert_eq!(r.per_function, vec![1.0, 1.0]);
        assert!(Rewards::builtin(&["nope".into()], None, Task::Sort).is_err());
        assert!(Rewards::builtin(&["format".into()], Some(vec![1.0, 2.0]), Task::Sort).is_err());

        struct Broken;
        impl RewardFunction for Broken {
            fn name(&self) -> &str {
                "broken"
            }
            fn score(&self, _: &Problem, _: &CompletionText) -> f64 {
                f64::NAN
            }
        }
        let rewards = Rewards::new(vec![Box::new(Broken)], None).unwrap();
        let err = rewards.score(&p, &done("1")).unwrap_err();
        assert!(err.to_string().contains("broken"), "{err}");
    }
}
