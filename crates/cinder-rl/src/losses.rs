//! Surrogate losses, the value loss and KL estimators, as functions of tensors (all minimised).
//! The formulas are those of `shared/design/ALGORITHMS.md`; the clipped surrogate and the clipped
//! value loss follow CleanRL's `ppo.py`.

use burn::tensor::{Tensor, backend::Backend};

/// The vanilla policy-gradient surrogate per sample, `−log π(a|s) · Â`, `[batch]`
/// (REINFORCE; mean it, or [`aggregate`] it over trajectories).
///
/// # Shapes
/// - `log_probs`, `advantages`: `[batch]`
pub fn vanilla_surrogate<B: Backend>(
    log_probs: Tensor<B, 1>,
    advantages: Tensor<B, 1>,
) -> Tensor<B, 1> {
    (log_probs * advantages).neg()
}

/// Which surrogate a policy-gradient method minimises.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Surrogate {
    /// `−log π · Â` (REINFORCE, [`vanilla_surrogate`]).
    Vanilla,
    /// `−min(ρ Â, clip(ρ, 1 − ε_low, 1 + ε_high) Â)` (PPO, GRPO, [`clipped_surrogate`]).
    Clipped {
        /// ε_low: the ratio is clipped below at `1 − clip_low`.
        clip_low: f32,
        /// ε_high: the ratio is clipped above at `1 + clip_high` (DAPO's "clip-higher" when
        /// larger than `clip_low`).
        clip_high: f32,
    },
}

impl Surrogate {
    /// Checks the clip ranges; the error says what to change.
    pub fn validate(&self) -> crate::Result<()> {
        if let Self::Clipped {
            clip_low,
            clip_high,
        } = *self
        {
            if !(clip_low > 0.0 && clip_low < 1.0 && clip_high > 0.0 && clip_high.is_finite()) {
                return Err(crate::RlError::InvalidConfig(format!(
                    "the clipped surrogate needs 0 < clip_low < 1 and clip_high > 0 \
                     (got {clip_low}, {clip_high})"
                )));
            }
        }
        Ok(())
    }

    /// The surrogate's terms for `log_probs` (differentiable) against the rollout's
    /// `old_log_probs` (constants).
    pub fn terms<B: Backend>(
        &self,
        log_probs: Tensor<B, 1>,
        old_log_probs: Tensor<B, 1>,
        advantages: Tensor<B, 1>,
    ) -> SurrogateTerms<B> {
        let log_ratio = log_probs.clone() - old_log_probs.detach();
        let ratio = log_ratio.clone().exp();
        // KL(π_old ‖ π_θ) ≈ mean((ρ − 1) − log ρ) on actions drawn from π_old (k3).
        let kl = (ratio.clone().sub_scalar(1.0) - log_ratio).mean();
        let (per_sample, clip_fraction) = match *self {
            Self::Vanilla => {
                let zero = Tensor::zeros([1], &advantages.device());
                (vanilla_surrogate(log_probs, advantages), zero)
            }
            Self::Clipped {
                clip_low,
                clip_high,
            } => {
                let unclipped = ratio.clone() * advantages.clone();
                let clipped = ratio.clone().clamp(1.0 - clip_low, 1.0 + clip_high) * advantages;
                // −min(a, b) = max(−a, −b), as CleanRL writes it.
                let per_sample = unclipped.neg().max_pair(clipped.neg());
                let ratio = ratio.detach();
                let outside = ratio
                    .clone()
                    .lower_elem(1.0 - clip_low)
                    .bool_or(ratio.greater_elem(1.0 + clip_high));
                (per_sample, outside.float().mean())
            }
        };
        SurrogateTerms {
            loss: per_sample.clone().mean(),
            per_sample,
            approx_kl: kl.clone().detach(),
            kl,
            clip_fraction,
        }
    }
}

/// A surrogate loss and its diagnostics.
#[derive(Debug, Clone)]
pub struct SurrogateTerms<B: Backend> {
    /// The loss of each sample, differentiable, `[batch]`.
    pub per_sample: Tensor<B, 1>,
    /// Its mean, `[1]`.
    pub loss: Tensor<B, 1>,
    /// `mean((ρ − 1) − log ρ)`, an estimator of `KL(π_old ‖ π_θ)`, differentiable (PPO's
    /// adaptive penalty adds it to the loss), `[1]`.
    pub kl: Tensor<B, 1>,
    /// The same, detached (a diagnostic), `[1]`.
    pub approx_kl: Tensor<B, 1>,
    /// Fraction of samples with `ρ` outside `[1 − ε_low, 1 + ε_high]` (detached; 0 for the
    /// vanilla surrogate), `[1]`.
    pub clip_fraction: Tensor<B, 1>,
}

/// PPO's clipped surrogate with separate lower and upper clip ranges (DAPO's "clip-higher" when
/// `clip_high > clip_low`; PPO uses 0.2 for both): [`Surrogate::Clipped`]'s terms.
///
/// `ρ = exp(log π_θ − log π_old)` with `old_log_probs` treated as constants.
///
/// # Shapes
/// - `log_probs`, `old_log_probs`, `advantages`: `[batch]`
pub fn clipped_surrogate<B: Backend>(
    log_probs: Tensor<B, 1>,
    old_log_probs: Tensor<B, 1>,
    advantages: Tensor<B, 1>,
    clip_low: f32,
    clip_high: f32,
) -> SurrogateTerms<B> {
    Surrogate::Clipped {
        clip_low,
        clip_high,
    }
    .terms(log_probs, old_log_probs, advantages)
}

/// The value loss `½ mean((V − R)²)`, or with `clip = Some(ε)` CleanRL's clipped version
/// `½ mean(max((V − R)², (V_old + clip(V − V_old, −ε, ε) − R)²))`.
///
/// # Shapes
/// - `values`, `old_values`, `returns`: `[batch]`
pub fn value_loss<B: Backend>(
    values: Tensor<B, 1>,
    old_values: Tensor<B, 1>,
    returns: Tensor<B, 1>,
    clip: Option<f32>,
) -> Tensor<B, 1> {
    let unclipped = (values.clone() - returns.clone()).square();
    match clip {
        None => unclipped.mean().mul_scalar(0.5),
        Some(eps) => {
            let old_values = old_values.detach();
            let clipped_values = old_values.clone() + (values - old_values).clamp(-eps, eps);
            let clipped = (clipped_values - returns).square();
            unclipped.max_pair(clipped).mean().mul_scalar(0.5)
        }
    }
}

/// Schulman's estimators of `KL(π_θ ‖ π_ref)` from samples `a ~ π_θ`, with
/// `x = log π_ref(a) − log π_θ(a)`: `k1 = −x` (unbiased, can be negative), `k2 = x²/2` (biased,
/// low variance), `k3 = exp(x) − x − 1` (unbiased and ≥ 0).
///
/// As *values* all three estimate the reverse KL `KL(π_θ ‖ π_ref)`. Used as a *loss term*
/// (differentiated through `log π_θ`, samples drawn from the current policy) their expected
/// gradients differ (`shared/design/ALGORITHMS.md`, "What a KL penalty's gradient really is";
/// checked by the test `kl_estimator_gradients` in `tests/kl_gradients.rs`):
///
/// | estimator | expected gradient as a loss term |
/// |---|---|
/// | k1 | **0**: `E[∇log π_θ] = 0`, the term only adds noise. Use it in the reward instead ([`crate::policy_gradient::ReferenceKlConfig::in_reward`], PPO-RLHF); the policy-gradient learner refuses k1 as a loss term. |
/// | k2 | `∇ KL(π_θ ‖ π_ref)`, the reverse KL the penalty is written with. |
/// | k3 | `∇ KL(π_ref ‖ π_θ)`, the **forward** KL (what TRL's GRPO trainer optimises with its k3 penalty). |
///
/// [`ReferenceKl::ExactCategorical`] differentiates the exact reverse KL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum KlEstimator {
    /// `−x`: as a loss term its expected gradient is zero.
    K1,
    /// `x² / 2`: as a loss term, the gradient of the reverse KL `KL(π_θ ‖ π_ref)`.
    K2,
    /// `exp(x) − x − 1`: as a loss term, the gradient of the forward KL `KL(π_ref ‖ π_θ)`.
    K3,
}

/// The per-sample KL estimate, `[batch]`, differentiable in `log_probs` (the reference is
/// treated as constant).
pub fn kl_estimate<B: Backend>(
    log_probs: Tensor<B, 1>,
    ref_log_probs: Tensor<B, 1>,
    estimator: KlEstimator,
) -> Tensor<B, 1> {
    let x = ref_log_probs.detach() - log_probs;
    match estimator {
        KlEstimator::K1 => x.neg(),
        KlEstimator::K2 => x.square().mul_scalar(0.5),
        KlEstimator::K3 => x.clone().exp() - x.add_scalar(1.0),
    }
}

/// How a KL penalty to a reference policy is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ReferenceKl {
    /// A sample estimator ([`kl_estimate`]) on the actions taken; see [`KlEstimator`] for the
    /// gradient each one gives.
    Estimator(KlEstimator),
    /// The exact `KL(π_θ(·|s) ‖ π_ref(·|s))` summed over the actions of a categorical policy
    /// ([`crate::distributions::Categorical::kl`]); its gradient is that of the reverse KL.
    ExactCategorical,
}

/// How per-step losses of a batch of trajectories (or sequences) of different lengths become one
/// number, as in TRL's GRPO trainer (`loss_type`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum LossAggregation {
    /// "grpo": the mean over each trajectory's steps, then the mean over trajectories (short
    /// trajectories weigh as much as long ones).
    Grpo,
    /// "bnpo": the sum over all steps of the batch divided by the number of steps (DAPO's
    /// token-level mean).
    Bnpo,
    /// "dr_grpo": the sum over all steps divided by `trajectories × max_length`, a constant
    /// (no length bias).
    DrGrpo {
        /// The length budget (TRL's `max_completion_length`; here the episode step limit).
        max_length: usize,
    },
}

impl LossAggregation {
    /// The weight of each step when the steps of trajectories of `lengths` are laid end to end
    /// (trajectory 0's steps, then trajectory 1's...): `Σ weight · loss` equals [`aggregate`]
    /// on the padded batch, without the padding.
    pub fn weights(&self, lengths: &[usize]) -> Vec<f32> {
        let trajectories = lengths.len().max(1) as f64;
        let steps = lengths.iter().sum::<usize>().max(1) as f64;
        let mut weights = Vec::with_capacity(steps as usize);
        for &len in lengths {
            let w = match *self {
                Self::Grpo => 1.0 / (len.max(1) as f64 * trajectories),
                Self::Bnpo => 1.0 / steps,
                Self::DrGrpo { max_length } => 1.0 / (trajectories * max_length.max(1) as f64),
            };
            weights.extend(std::iter::repeat_n(w as f32, len));
        }
        weights
    }

    /// Checks the configuration; the error says what to change.
    pub fn validate(&self) -> crate::Result<()> {
        match self {
            Self::DrGrpo { max_length: 0 } => Err(crate::RlError::InvalidConfig(
                "dr_grpo aggregation needs max_length >= 1 (the episode step limit)".into(),
            )),
            _ => Ok(()),
        }
    }
}

/// Aggregates `per_step` losses `[trajectories, max_len]` over the valid steps given by `mask`
/// (1 for a step, 0 for padding), `[1]`. Trajectories without a valid step count as zero loss
/// rather than dividing by zero.
pub fn aggregate<B: Backend>(
    per_step: Tensor<B, 2>,
    mask: Tensor<B, 2>,
    mode: LossAggregation,
) -> Tensor<B, 1> {
    let [trajectories, _] = per_step.dims();
    let masked = per_step * mask.clone();
    match mode {
        LossAggregation::Grpo => {
            let lengths = mask.sum_dim(1).clamp_min(1.0);
            (masked.sum_dim(1) / lengths).mean().reshape([1])
        }
        LossAggregation::Bnpo => masked.sum().div(mask.sum().clamp_min(1.0)),
        LossAggregation::DrGrpo { max_length } => masked
            .sum()
            .div_scalar((trajectories * max_length.max(1)) as f32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, NdArray};
    use burn::tensor::TensorData;

    type B = NdArray<f32>;
    type AB = Autodiff<NdArray<f32>>;

    fn t<Bk: Backend>(xs: &[f32]) -> Tensor<Bk, 1> {
        Tensor::from_data(
            TensorData::new(xs.to_vec(), [xs.len()]),
            &Default::default(),
        )
    }

    fn scalar<Bk: Backend>(x: Tensor<Bk, 1>) -> f32 {
        x.into_data().to_vec::<f32>().unwrap()[0]
    }

    #[test]
    fn clipped_surrogate_at_the_boundaries() {
        let eps = 0.2f32;
        // Ratios just inside and just outside [0.8, 1.2], with positive and negative advantages.
        let ratios = [1.19f32, 1.21, 0.81, 0.79, 1.21, 0.79];
        let advantages = [1.0f32, 1.0, -1.0, -1.0, -1.0, 1.0];
        let log_probs: Vec<f32> = ratios.iter().map(|r| r.ln()).collect();
        let old = [0.0f32; 6];
        // Known answer, worked by hand: min(ρA, clip(ρ, 0.8, 1.2)A) per sample is
        // min(1.19, 1.19) = 1.19, min(1.21, 1.2) = 1.2, min(-0.81, -0.81) = -0.81,
        // min(-0.79, -0.8) = -0.8, min(-1.21, -1.2) = -1.21, min(0.79, 0.8) = 0.79: they sum to
        // 0.36, so the loss is -0.36 / 6 = -0.06.
        let expected = -0.06f32;

        let lp = t::<AB>(&log_probs).require_grad();
        let out = clipped_surrogate(lp.clone(), t(&old), t(&advantages), eps, eps);
        assert!((scalar(out.loss.clone()) - expected).abs() < 1e-6);
        // Outside the range: samples 1, 3, 4, 5.
        assert!((scalar(out.clip_fraction) - 4.0 / 6.0).abs() < 1e-6);
        // mean((ρ − 1) − ln ρ) over the six ratios, computed in Python's f64 `math`.
        let kl = 0.021_161_945_f32;
        assert!((scalar(out.approx_kl) - kl).abs() < 1e-6);

        // Gradient: zero where the clipped term is the active minimum (ρ > 1 + ε with A > 0,
        // ρ < 1 − ε with A < 0), −ρA/n elsewhere (d/dlogπ of −ρA/n).
        let grads = out.loss.backward();
        let g: Vec<f32> = lp.grad(&grads).unwrap().into_data().to_vec().unwrap();
        let clipped_active = [false, true, false, true, false, false];
        for i in 0..6 {
            let expected = if clipped_active[i] {
                0.0
            } else {
                -ratios[i] * advantages[i] / 6.0
            };
            assert!(
                (g[i] - expected).abs() < 1e-6,
                "sample {i}: {} vs {expected}",
                g[i]
            );
        }
    }

    #[test]
    fn asymmetric_clip_uses_its_upper_range() {
        let out = clipped_surrogate::<B>(t(&[1.25f32.ln()]), t(&[0.0]), t(&[1.0]), 0.2, 0.28);
        // 1.25 is inside [0.8, 1.28]: unclipped.
        assert!((scalar(out.loss) + 1.25).abs() < 1e-6);
        assert_eq!(scalar(out.clip_fraction), 0.0);
    }

    #[test]
    fn vanilla_and_value_losses() {
        let per_sample = vanilla_surrogate::<B>(t(&[-1.0, -2.0]), t(&[1.0, -0.5]));
        let per_sample: Vec<f32> = per_sample.into_data().to_vec().unwrap();
        assert_eq!(per_sample, [1.0, -1.0]);
        let values = t::<B>(&[1.0, 3.0]);
        let old = t::<B>(&[0.5, 0.5]);
        let returns = t::<B>(&[0.0, 0.0]);
        assert!(
            (scalar(value_loss(
                values.clone(),
                old.clone(),
                returns.clone(),
                None
            )) - 2.5)
                .abs()
                < 1e-6
        );
        // Clipped values: 0.5 + clip(0.5) = 0.7, 0.5 + clip(2.5) = 0.7; max of squares: 1 and 9.
        assert!(
            (scalar(value_loss(values, old, returns, Some(0.2))) - 0.5 * (1.0 + 9.0) / 2.0).abs()
                < 1e-6
        );
    }

    #[test]
    fn kl_estimators_closed_forms_and_signs() {
        let lp = [-1.0f32, -0.5, -2.0];
        let rf = [-1.5f32, -0.5, -1.0];
        // x = ref − lp = [-0.5, 0, 1]. Known answers: k1 = −x, k2 = x²/2, and
        // k3 = eˣ − x − 1 = [e^-0.5 − 0.5, 0, e − 2] (values from Python's f64 `math.exp`).
        let expected_k1 = [0.5f32, 0.0, -1.0];
        let expected_k2 = [0.125f32, 0.0, 0.5];
        let expected_k3 = [0.106_530_66_f32, 0.0, 0.718_281_8];
        let k1: Vec<f32> = kl_estimate::<B>(t(&lp), t(&rf), KlEstimator::K1)
            .into_data()
            .to_vec()
            .unwrap();
        let k2: Vec<f32> = kl_estimate::<B>(t(&lp), t(&rf), KlEstimator::K2)
            .into_data()
            .to_vec()
            .unwrap();
        let k3: Vec<f32> = kl_estimate::<B>(t(&lp), t(&rf), KlEstimator::K3)
            .into_data()
            .to_vec()
            .unwrap();
        for i in 0..3 {
            assert!((k1[i] - expected_k1[i]).abs() < 1e-6, "k1 {k1:?}");
            assert!((k2[i] - expected_k2[i]).abs() < 1e-6, "k2 {k2:?}");
            assert!((k3[i] - expected_k3[i]).abs() < 1e-6, "k3 {k3:?}");
        }
        assert!(k1[2] < 0.0, "k1 can be negative");
    }

    #[test]
    fn k1_and_k3_are_unbiased_for_categorical_kl() {
        use crate::distributions::sample_categorical;
        use cinder_env::rng::NpRandom;
        // π_θ = [0.7, 0.2, 0.1], π_ref = [0.4, 0.4, 0.2]: KL(π_θ ‖ π_ref) by sampling from π_θ.
        let p = [0.7f32, 0.2, 0.1];
        let q = [0.4f32, 0.4, 0.2];
        let exact: f32 = p.iter().zip(&q).map(|(p, q)| p * (p / q).ln()).sum();
        let mut rng = NpRandom::from_seed(1);
        let n = 100_000;
        let (mut lp, mut rf) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for _ in 0..n {
            let a = sample_categorical(&p, &mut rng);
            lp.push(p[a].ln());
            rf.push(q[a].ln());
        }
        for est in [KlEstimator::K1, KlEstimator::K3] {
            let mean = scalar(kl_estimate::<B>(t(&lp), t(&rf), est).mean());
            assert!((mean - exact).abs() < 0.01, "{est:?}: {mean} vs {exact}");
        }
    }

    #[test]
    fn aggregations_on_a_ragged_batch() {
        // Two trajectories: lengths 1 and 3, padded to 3.
        let per_step = Tensor::<B, 2>::from_data(
            TensorData::new(vec![4.0f32, 99.0, 99.0, 1.0, 2.0, 3.0], [2, 3]),
            &Default::default(),
        );
        let mask = Tensor::<B, 2>::from_data(
            TensorData::new(vec![1.0f32, 0.0, 0.0, 1.0, 1.0, 1.0], [2, 3]),
            &Default::default(),
        );
        let value = |mode| {
            aggregate(per_step.clone(), mask.clone(), mode)
                .into_data()
                .to_vec::<f32>()
                .unwrap()[0]
        };
        // grpo: mean(4/1, (1+2+3)/3) = 3; bnpo: (4+1+2+3)/4 = 2.5; dr_grpo: 10/(2·5) = 1.
        assert_eq!(value(LossAggregation::Grpo), 3.0);
        assert_eq!(value(LossAggregation::Bnpo), 2.5);
        assert_eq!(value(LossAggregation::DrGrpo { max_length: 5 }), 1.0);
        // The same through per-step weights on the unpadded steps [4, 1, 2, 3].
        let steps = [4.0f32, 1.0, 2.0, 3.0];
        for mode in [
            LossAggregation::Grpo,
            LossAggregation::Bnpo,
            LossAggregation::DrGrpo { max_length: 5 },
        ] {
            let weighted: f32 = mode
                .weights(&[1, 3])
                .iter()
                .zip(&steps)
                .map(|(w, l)| w * l)
                .sum();
            assert!((weighted - value(mode)).abs() < 1e-6, "{mode:?}");
        }
        // An empty trajectory does not divide by zero.
        let empty = Tensor::<B, 2>::zeros([2, 3], &Default::default());
        let v = aggregate(per_step, empty, LossAggregation::Grpo)
            .into_data()
            .to_vec::<f32>()
            .unwrap()[0];
        assert_eq!(v, 0.0);
    }
}
