//! Sampling completions from a [`TransformerPolicy`]: temperature, top-k, top-p (nucleus), `EOS`
//! handling and a maximum completion length, with or without the [`KvCache`] (the uncached path
//! recomputes the whole prefix at every step; both give the same tokens for the same seed).
//!
//! Tokens are drawn on the host from the read-back logits of the last position, with the same
//! seeded generator as the rest of Cinder, so a run's completions are reproducible on every
//! backend whose logits agree.

use crate::error::LmError;
use crate::model::{KvCache, PaddedBatch, TransformerPolicy};
use crate::vocab::{EOS, PAD};
use burn::config::Config;
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use cinder_env::rng::NpRandom;
use cinder_rl::tensors::read;

/// How completions are sampled (TRL's generation settings).
#[derive(Config, Debug, PartialEq)]
pub struct SamplingConfig {
    /// Softmax temperature; 0 takes the most likely token (greedy).
    #[config(default = 1.0)]
    pub temperature: f64,
    /// Keep only the `top_k` most likely tokens (0: all).
    #[config(default = 0)]
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probability reaches `top_p` (1: all).
    #[config(default = 1.0)]
    pub top_p: f64,
    /// Tokens per completion at most, `EOS` included (TRL's `max_completion_length`); a
    /// completion cut there is "truncated".
    #[config(default = 8)]
    pub max_completion_length: usize,
}

impl SamplingConfig {
    /// Checks the values; the error says what to change.
    pub fn validate(&self) -> crate::Result<()> {
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return Err(LmError::InvalidConfig(format!(
                "temperature must be finite and >= 0 (got {})",
                self.temperature
            )));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(LmError::InvalidConfig(format!(
                "top_p must be in (0, 1] (got {})",
                self.top_p
            )));
        }
        if self.max_completion_length == 0 {
            return Err(LmError::InvalidConfig(
                "max_completion_length must be >= 1".into(),
            ));
        }
        Ok(())
    }
}

/// Sampled completions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completions {
    /// Each completion's tokens, up to and including its `EOS` (or `max_completion_length`
    /// tokens without one).
    pub tokens: Vec<Vec<u32>>,
    /// Whether each completion ended with `EOS` (false: truncated).
    pub terminated: Vec<bool>,
}

/// Samples one completion per prompt; `use_cache` selects the [`KvCache`] path.
pub fn sample<B: Backend>(
    policy: &TransformerPolicy<B>,
    prompts: &[Vec<u32>],
    config: &SamplingConfig,
    rng: &mut NpRandom,
    use_cache: bool,
) -> crate::Result<Completions> {
    config.validate()?;
    let batch = PaddedBatch::new(prompts)?;
    check_context(policy, &batch, config.max_completion_length)?;
    let n = prompts.len();
    let mut tokens: Vec<Vec<u32>> = vec![Vec::new(); n];
    let mut terminated = vec![false; n];
    if n == 0 {
        return Ok(Completions { tokens, terminated });
    }
    let mut cache: Option<KvCache<B>> = None;
    let mut last = {
        let (logits, kv) = policy.forward(&batch)?;
        if use_cache {
            cache = Some(kv);
        }
        last_position(logits)
    };
    for step in 0..config.max_completion_length {
        let logits = read(last);
        let vocab = policy.vocab_size();
        let mut fed = Vec::with_capacity(n);
        for (i, row) in logits.chunks(vocab).enumerate() {
            if terminated[i] {
                fed.push(PAD);
                continue;
            }
            let t = draw_token(row, config, rng) as u32;
            tokens[i].push(t);
            terminated[i] = t == EOS;
            fed.push(t);
        }
        if step + 1 == config.max_completion_length || terminated.iter().all(|&d| d) {
            break;
        }
        last = match cache.as_mut() {
            Some(cache) => policy.forward_step(&fed, cache)?,
            None => {
                // The whole prefix again: each prompt, its tokens so far, and padding fed to
                // finished completions exactly as the cached path feeds it.
                let sequences: Vec<Vec<u32>> = prompts
                    .iter()
                    .zip(&tokens)
                    .map(|(p, t)| {
                        let mut s = p.clone();
                        s.extend_from_slice(t);
                        s.resize(p.len() + step + 1, PAD);
                        s
                    })
                    .collect();
                let (logits, _) = policy.forward(&PaddedBatch::new(&sequences)?)?;
                last_position(logits)
            }
        };
    }
    Ok(Completions { tokens, terminated })
}

/// The policy's context must hold the longest prompt and a full completion.
pub(crate) fn check_context<B: Backend>(
    policy: &TransformerPolicy<B>,
    batch: &PaddedBatch,
    completion: usize,
) -> crate::Result<()> {
    if batch.width + completion > policy.max_len() {
        return Err(LmError::ContextOverflow {
            length: batch.width + completion,
            prompt: batch.width,
            completion,
            context: policy.max_len(),
        });
    }
    Ok(())
}

fn last_position<B: Backend>(logits: Tensor<B, 3>) -> Tensor<B, 2> {
    let [b, w, v] = logits.dims();
    logits.narrow(1, w - 1, 1).reshape([b, v])
}

/// The sampling distribution of one row of logits after temperature, top-k and top-p
/// (probabilities in token order, zero outside the kept set); `None` for greedy (temperature 0).
pub fn filtered_probs(logits: &[f32], config: &SamplingConfig) -> Option<Vec<f64>> {
    if config.temperature == 0.0 {
        return None;
    }
    let scaled: Vec<f64> = logits
        .iter()
        .map(|&l| f64::from(l) / config.temperature)
        .collect();
    // Token order by decreasing logit (ties: lower token first).
    let mut order: Vec<usize> = (0..scaled.len()).collect();
    order.sort_by(|&a, &b| scaled[b].total_cmp(&scaled[a]).then(a.cmp(&b)));
    let k = if config.top_k == 0 {
        order.len()
    } else {
        config.top_k.min(order.len())
    };
    let kept = &order[..k];
    let max = scaled[kept[0]];
    let mut probs = vec![0.0f64; scaled.len()];
    let mut total = 0.0;
    for &i in kept {
        probs[i] = (scaled[i] - max).exp();
        total += probs[i];
    }
    for &i in kept {
        probs[i] /= total;
    }
    if config.top_p < 1.0 {
        let mut cumulative = 0.0;
        let mut cut = kept.len();
        for (rank, &i) in kept.iter().enumerate() {
            cumulative += probs[i];
            if cumulative >= config.top_p {
                cut = rank + 1;
                break;
            }
        }
        let mut total = 0.0;
        for (rank, &i) in kept.iter().enumerate() {
            if rank >= cut {
                probs[i] = 0.0;
            }
            total += probs[i];
        }
        for p in &mut probs {
            *p /= total;
        }
    }
    Some(probs)
}

/// One token from a row of logits.
fn draw_token(logits: &[f32], config: &SamplingConfig, rng: &mut NpRandom) -> usize {
    match filtered_probs(logits, config) {
        None => {
            let mut best = 0;
            for (i, &l) in logits.iter().enumerate() {
                if l > logits[best] {
                    best = i;
                }
            }
            best
        }
        Some(probs) => {
            let u = rng.next_f64();
            let mut cumulative = 0.0;
            for (i, &p) in probs.iter().enumerate() {
                cumulative += p;
                if u < cumulative {
                    return i;
                }
            }
            probs.iter().rposition(|&p| p > 0.0).unwrap_or(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TransformerPolicyConfig;
    use crate::vocab::encode_prompt;
    use burn::backend::NdArray;

    type B = NdArray<f32>;

    #[test]
    fn top_k_and_top_p_keep_the_right_tokens() {
        // Logits ln(0.5), ln(0.3), ln(0.15), ln(0.05): probabilities 0.5, 0.3, 0.15, 0.05.
        let logits: Vec<f32> = [0.5f64, 0.3, 0.15, 0.05]
            .iter()
            .map(|p| p.ln() as f32)
            .collect();
        let all = filtered_probs(&logits, &SamplingConfig::new()).unwrap();
        for (p, e) in all.iter().zip([0.5, 0.3, 0.15, 0.05]) {
            assert!((p - e).abs() < 1e-6);
        }
        let k2 = filtered_probs(&logits, &SamplingConfig::new().with_top_k(2)).unwrap();
        for (p, e) in k2.iter().zip([0.625, 0.375, 0.0, 0.0]) {
            assert!((p - e).abs() < 1e-6, "{k2:?}");
        }
        // top_p 0.8: 0.5 + 0.3 reaches it; 0.5 alone does not.
        let p8 = filtered_probs(&logits, &SamplingConfig::new().with_top_p(0.8)).unwrap();
        for (p, e) in p8.iter().zip([0.625, 0.375, 0.0, 0.0]) {
            assert!((p - e).abs() < 1e-6, "{p8:?}");
        }
        // Temperature 2 on probabilities p: p^(1/2), renormalised.
        let t2 = filtered_probs(&logits, &SamplingConfig::new().with_temperature(2.0)).unwrap();
        let roots: Vec<f64> = [0.5f64, 0.3, 0.15, 0.05].iter().map(|p| p.sqrt()).collect();
        let z: f64 = roots.iter().sum();
        for (p, r) in t2.iter().zip(&roots) {
            assert!((p - r / z).abs() < 1e-6);
        }
        assert!(filtered_probs(&logits, &SamplingConfig::new().with_temperature(0.0)).is_none());
        assert!(SamplingConfig::new().with_top_p(0.0).validate().is_err());
        assert!(
            SamplingConfig::new()
                .with_temperature(-1.0)
                .validate()
                .is_err()
        );
    }

    #[test]
    fn cached_and_uncached_sampling_give_the_same_tokens() {
        let device = Default::default();
        let policy = TransformerPolicyConfig::new()
            .init_seeded::<B>(11, &device)
            .unwrap();
        let prompts: Vec<Vec<u32>> = ["12+34=", "5+6=", "s:93120=", "r:abc="]
            .iter()
            .map(|p| encode_prompt(p).unwrap())
            .collect();
        for config in [
            SamplingConfig::new().with_max_completion_length(12),
            SamplingConfig::new().with_top_k(5).with_temperature(0.7),
            SamplingConfig::new().with_top_p(0.9),
            SamplingConfig::new().with_temperature(0.0),
        ] {
            let mut a = NpRandom::from_seed(5);
            let mut b = NpRandom::from_seed(5);
            let cached = sample(&policy, &prompts, &config, &mut a, true).unwrap();
            let uncached = sample(&policy, &prompts, &config, &mut b, false).unwrap();
            assert_eq!(cached, uncached, "{config:?}");
            for (t, done) in cached.tokens.iter().zip(&cached.terminated) {
                assert!(!t.is_empty() && t.len() <= config.max_completion_length);
                assert_eq!(*done, t.last() == Some(&EOS));
                assert!(!t[..t.len() - 1].contains(&EOS));
            }
        }
        // A prompt and completion beyond the context is an error, not a panic.
        let too_long = SamplingConfig::new().with_max_completion_length(30);
        let mut rng = NpRandom::from_seed(1);
        assert!(matches!(
            sample(&policy, &prompts, &too_long, &mut rng, true),
            Err(LmError::ContextOverflow { .. })
        ));
        assert!(matches!(
            sample(&policy, &[vec![]], &SamplingConfig::new(), &mut rng, true),
            Err(LmError::EmptyPrompt { index: 0 })
        ));
    }
}
