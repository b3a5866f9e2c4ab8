//! Per-token log-probabilities of completions given their prompts, in one batched
//! teacher-forced pass: `log π(c_j | prompt, c_<j)` for every completion token, the policy's
//! entropy at each of those positions, and the mask of real (not padding) tokens.

use crate::error::{LmError, Result};
use crate::model::{PaddedBatch, TransformerPolicy, int_tensor};
use crate::vocab::PAD;
use burn::nn::Linear;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

/// Per-token quantities of a batch of completions, `[batch, longest completion]` each; padding
/// cells hold 0 in `mask` (and meaningless values elsewhere).
#[derive(Debug, Clone)]
pub struct TokenLogProbs<B: Backend> {
    /// `log π(c_j | prompt, c_<j)`.
    pub log_probs: Tensor<B, 2>,
    /// The entropy of the policy's next-token distribution at each completion position.
    pub entropy: Tensor<B, 2>,
    /// 1 for a completion token, 0 for padding.
    pub mask: Tensor<B, 2>,
    /// Each completion's length.
    pub lengths: Vec<usize>,
}

/// The per-token log-probabilities of `completions` (each up to and including its `EOS`, if it
/// has one) after `prompts`.
pub fn completion_log_probs<B: Backend>(
    policy: &TransformerPolicy<B>,
    prompts: &[Vec<u32>],
    completions: &[Vec<u32>],
) -> Result<TokenLogProbs<B>> {
    let forced = teacher_forced(policy, prompts, completions)?;
    Ok(forced.log_probs(policy))
}

/// [`completion_log_probs`] and, from the same pass, `value_head`'s estimate `[batch, longest
/// completion]` at each completion token: the value of the state the token is chosen in (the
/// prompt and the completion before it), read from the hidden state that predicts the token.
pub fn completion_log_probs_and_values<B: Backend>(
    policy: &TransformerPolicy<B>,
    value_head: &Linear<B>,
    prompts: &[Vec<u32>],
    completions: &[Vec<u32>],
) -> Result<(TokenLogProbs<B>, Tensor<B, 2>)> {
    let forced = teacher_forced(policy, prompts, completions)?;
    let [b, c, _] = forced.hidden.dims();
    let values = value_head.forward(forced.hidden.clone()).reshape([b, c]);
    Ok((forced.log_probs(policy), values))
}

/// One teacher-forced pass: the final hidden states at the positions that predict each
/// completion token, `[batch, c, d_model]`, and what scoring them needs.
struct TeacherForced<B: Backend> {
    hidden: Tensor<B, 3>,
    targets: Vec<i64>,
    mask: Vec<f32>,
    lengths: Vec<usize>,
}

impl<B: Backend> TeacherForced<B> {
    fn log_probs(self, policy: &TransformerPolicy<B>) -> TokenLogProbs<B> {
        let [b, c, _] = self.hidden.dims();
        let device = self.hidden.device();
        let log_softmax = log_softmax(policy.logits(self.hidden), 2);
        let targets = int_tensor::<B>(self.targets, [b, c], &device).reshape([b, c, 1]);
        let log_probs = log_softmax.clone().gather(2, targets).reshape([b, c]);
        let entropy = (log_softmax.clone().exp() * log_softmax)
            .sum_dim(2)
            .neg()
            .reshape([b, c]);
        TokenLogProbs {
            log_probs,
            entropy,
            mask: Tensor::from_data(TensorData::new(self.mask, [b, c]), &device),
            lengths: self.lengths,
        }
    }
}

fn teacher_forced<B: Backend>(
    policy: &TransformerPolicy<B>,
    prompts: &[Vec<u32>],
    completions: &[Vec<u32>],
) -> Result<TeacherForced<B>> {
    if prompts.len() != completions.len() {
        return Err(LmError::InvalidConfig(format!(
            "{} prompts but {} completions",
            prompts.len(),
            completions.len()
        )));
    }
    let prompt_batch = PaddedBatch::new(prompts)?;
    let lengths: Vec<usize> = completions.iter().map(Vec::len).collect();
    let c = lengths.iter().copied().max().unwrap_or(0);
    if c == 0 {
        return Err(LmError::InvalidConfig(
            "every completion is empty: nothing to score".into(),
        ));
    }
    let p = prompt_batch.width;
    if p + c > policy.max_len() {
        return Err(LmError::ContextOverflow {
            length: p + c,
            prompt: p,
            completion: c,
            context: policy.max_len(),
        });
    }
    let b = prompts.len();
    // The input: each left-padded prompt, then its completion right-padded, without the last
    // column (no token follows it).
    let width = p + c - 1;
    let mut tokens = Vec::with_capacity(b * width);
    let mut targets = Vec::with_capacity(b * c);
    let mut mask = Vec::with_capacity(b * c);
    for (row, completion) in completions.iter().enumerate() {
        let prompt_row = &prompt_batch.tokens[row * p..(row + 1) * p];
        let mut padded = completion.clone();
        padded.resize(c, PAD);
        tokens.extend_from_slice(prompt_row);
        tokens.extend_from_slice(&padded[..c - 1]);
        targets.extend(padded.iter().map(|&t| i64::from(t)));
        mask.extend((0..c).map(|j| f32::from(u8::from(j < completion.len()))));
    }
    let batch = PaddedBatch {
        batch: b,
        width,
        tokens,
        padding: prompt_batch.padding,
    };
    let (hidden, _) = policy.forward_hidden(&batch)?;
    // Position p − 1 + j predicts completion token j.
    Ok(TeacherForced {
        hidden: hidden.narrow(1, p - 1, c),
        targets,
        mask,
        lengths,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TransformerPolicyConfig;
    use crate::vocab::{encode_completion, encode_prompt};
    use burn::backend::NdArray;

    type B = NdArray<f32>;

    fn host<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
        t.into_data().to_vec::<f32>().unwrap()
    }

    #[test]
    fn log_probs_equal_log_softmax_and_pick_computed_independently() {
        let device = Default::default();
        let policy = TransformerPolicyConfig::new()
            .init_seeded::<B>(7, &device)
            .unwrap();
        let prompts: Vec<Vec<u32>> = ["123+45=", "9+9=", "s:4401="]
            .iter()
            .map(|p| encode_prompt(p).unwrap())
            .collect();
        let completions: Vec<Vec<u32>> = ["8631", "81", "0144"]
            .iter()
            .map(|c| encode_completion(c).unwrap())
            .collect();
        let out = completion_log_probs(&policy, &prompts, &completions).unwrap();
        let lp = host(out.log_probs);
        let ent = host(out.entropy);
        let mask = host(out.mask);
        let c = 5;
        assert_eq!(out.lengths, vec![5, 3, 5]);
        for (row, (prompt, completion)) in prompts.iter().zip(&completions).enumerate() {
            // Each sequence alone, unpadded: the logits of every position, then a log-softmax
            // and the pick of the next token on the host, in f64.
            let mut seq = prompt.clone();
            seq.extend_from_slice(completion);
            let (logits, _) = policy
                .forward(&PaddedBatch::new(&[seq.clone()]).unwrap())
                .unwrap();
            let logits = host(logits);
            let v = policy.vocab_size();
            for j in 0..c {
                let m = mask[row * c + j];
                if j >= completion.len() {
                    assert_eq!(m, 0.0);
                    continue;
                }
                assert_eq!(m, 1.0);
                let pos = prompt.len() - 1 + j;
                let row_logits: Vec<f64> = logits[pos * v..(pos + 1) * v]
                    .iter()
                    .map(|&x| f64::from(x))
                    .collect();
                let max = row_logits.iter().cloned().fold(f64::MIN, f64::max);
                let lse = max + row_logits.iter().map(|x| (x - max).exp()).sum::<f64>().ln();
                let expected = row_logits[completion[j] as usize] - lse;
                let entropy: f64 = row_logits
                    .iter()
                    .map(|x| {
                        let l = x - lse;
                        -l.exp() * l
                    })
                    .sum();
                let got = f64::from(lp[row * c + j]);
                assert!(
                    (got - expected).abs() < 1e-4,
                    "row {row} token {j}: {got} vs {expected}"
                );
                assert!((f64::from(ent[row * c + j]) - entropy).abs() < 1e-4);
            }
        }
        assert!(completion_log_probs(&policy, &prompts[..1], &completions).is_err());
        assert!(completion_log_probs(&policy, &prompts[..1], &[vec![]]).is_err());
    }
}
