//! PPO's loss on the host: the clipped surrogate, the value loss, the entropy bonus and the KL
//! penalty as one operation in the autodiff graph, on backends whose tensors live in host
//! memory.
//!
//! Written with tensor operations ([`crate::ppo::ppo_terms`]), the part of PPO's loss after the
//! policy's outputs (`log π(a|s)`, the entropy, `V(s)`) is about thirty operations (the
//! ratio, both surrogates, their maximum, the clip fraction, the KL estimate, the value error,
//! five means and the weighted sum), each with its allocation and, for twenty of them, a node
//! in the autodiff graph and a backward step. At the minibatches of the classic-control presets
//! (8 to 256 samples) that is per-operation cost, not arithmetic. Here one pass over the
//! minibatch computes the loss, its diagnostics and its gradient with respect to the three
//! policy outputs; the graph gets one node whose backward step hands those gradients (times
//! the incoming one) to the three parents.
//!
//! The formulas are those of [`crate::losses::clipped_surrogate`] and
//! [`crate::losses::value_loss`], the same branch taken per sample (for each `max`, the larger
//! side; for each `clamp`, no gradient outside the interval); sums are taken in `f64`, so
//! results differ from the tensor path's `f32` reductions by rounding only (a test checks both
//! against each other, values and gradients, in every configuration). Installed with the
//! other [host kernels](crate::host_kernels::install); other backends take the tensor path.

use crate::host_kernels::{host_vec, lookup_kernel, register_kernel};
use crate::ppo::PpoLoss;
use crate::tensors::read;
use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorData, TensorPrimitive};

/// The numbers PPO's loss is configured with (see [`crate::ppo::PpoConfig`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PpoObjective {
    /// The ratio is clipped below at `1 − clip_low` (infinite: not clipped).
    pub clip_low: f32,
    /// The ratio is clipped above at `1 + clip_high` (infinite: not clipped).
    pub clip_high: f32,
    /// CleanRL's clipped value loss with this range, or the plain squared error (`None`).
    pub value_clip: Option<f32>,
    /// Weight of the entropy bonus.
    pub ent_coef: f32,
    /// Weight of the value loss.
    pub vf_coef: f32,
    /// Weight `β` of the KL penalty `mean((ρ − 1) − log ρ)`, if any.
    pub kl_coef: Option<f32>,
}

/// PPO's loss inputs on one minibatch, each `[batch]`: the policy's outputs (differentiable)
/// and the rollout's numbers (constants).
#[derive(Debug, Clone)]
pub struct PpoInputs<B: Backend> {
    /// `log π_θ(a|s)` of the actions taken.
    pub log_probs: Tensor<B, 1>,
    /// The policy's entropy at each observation.
    pub entropy: Tensor<B, 1>,
    /// The critic's `V(s)`.
    pub values: Tensor<B, 1>,
    /// `log π_old(a|s)` at rollout time.
    pub old_log_probs: Tensor<B, 1>,
    /// Advantages.
    pub advantages: Tensor<B, 1>,
    /// The critic's values at rollout time.
    pub old_values: Tensor<B, 1>,
    /// Return targets.
    pub returns: Tensor<B, 1>,
}

impl<B: Backend> PpoInputs<B> {
    fn all(&self) -> [&Tensor<B, 1>; 7] {
        [
            &self.log_probs,
            &self.entropy,
            &self.values,
            &self.old_log_probs,
            &self.advantages,
            &self.old_values,
            &self.returns,
        ]
    }
}

type Kernel<B> = fn(PpoInputs<B>, &PpoObjective) -> PpoLoss<B>;

/// Registers the fused loss for `Autodiff<B>` (called by [`crate::host_kernels::install`]).
pub(crate) fn install<B: Backend>() {
    register_kernel(fused_loss::<B> as Kernel<Autodiff<B>>);
}

/// PPO's loss by the installed host kernel, or `Err(inputs)` (untouched) when backend `B` has
/// none, or the inputs are not seven `f32` vectors of one length.
pub fn try_ppo_loss<B: Backend>(
    inputs: PpoInputs<B>,
    objective: &PpoObjective,
) -> Result<PpoLoss<B>, PpoInputs<B>> {
    let Some(kernel) = lookup_kernel::<Kernel<B>>() else {
        return Err(inputs);
    };
    let n = inputs.log_probs.dims()[0];
    let fits = inputs
        .all()
        .iter()
        .all(|t| t.dims()[0] == n && t.dtype() == DType::F32);
    if !fits || n == 0 {
        return Err(inputs);
    }
    Ok(kernel(inputs, objective))
}

/// The loss, its parts and its gradient with respect to the policy's outputs, on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct HostPpoLoss {
    /// `policy_loss − ent_coef · entropy + vf_coef · value_loss (+ β · approx_kl)`; NaN if
    /// any input is.
    pub loss: f32,
    /// The clipped surrogate, `mean(max(−ρÂ, −clip(ρ)Â))`.
    pub policy_loss: f32,
    /// `½ mean((V − R)²)`, or its clipped version.
    pub value_loss: f32,
    /// The mean entropy.
    pub entropy: f32,
    /// `mean((ρ − 1) − log ρ)`.
    pub approx_kl: f32,
    /// The fraction of ratios outside the clip range.
    pub clip_fraction: f32,
    /// `∂loss/∂log π_θ(a|s)`, `[batch]`.
    pub d_log_probs: Vec<f32>,
    /// `∂loss/∂entropy`, the same for every sample.
    pub d_entropy: f32,
    /// `∂loss/∂V(s)`, `[batch]`.
    pub d_values: Vec<f32>,
}

/// Computes [`HostPpoLoss`] from the seven input vectors (in [`PpoInputs`]' order, equal
/// lengths, at least one sample).
pub fn host_ppo_loss(inputs: [&[f32]; 7], objective: &PpoObjective) -> HostPpoLoss {
    let [
        log_probs,
        entropy,
        values,
        old_log_probs,
        advantages,
        old_values,
        returns,
    ] = inputs;
    let n = log_probs.len();
    let inv_n = 1.0 / n as f32;
    let (low, high) = (1.0 - objective.clip_low, 1.0 + objective.clip_high);
    let kl_coef = objective.kl_coef.unwrap_or(0.0);
    let (mut pg_sum, mut v_sum, mut ent_sum, mut kl_sum) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    let mut outside = 0usize;
    let mut any_nan = false;
    let mut d_log_probs = Vec::with_capacity(n);
    let mut d_values = Vec::with_capacity(n);
    for i in 0..n {
        let log_ratio = log_probs[i] - old_log_probs[i];
        let ratio = log_ratio.exp();
        kl_sum += f64::from((ratio - 1.0) - log_ratio);
        let a = advantages[i];
        let unclipped = -(ratio * a);
        let clipped = -(ratio.max(low).min(high) * a);
        let inside = low <= ratio && ratio <= high;
        // max(−ρÂ, −clip(ρ)Â): the unclipped side carries the gradient −Â·ρ, the clipped side
        // carries it only inside the clip range.
        let (pg, d_pg) = if unclipped >= clipped {
            (unclipped, -a * ratio)
        } else {
            (clipped, if inside { -a * ratio } else { 0.0 })
        };
        pg_sum += f64::from(pg);
        outside += usize::from(!inside);
        d_log_probs.push((d_pg + kl_coef * (ratio - 1.0)) * inv_n);

        let error = values[i] - returns[i];
        let (squared, d_value) = match objective.value_clip {
            None => (error * error, error),
            Some(eps) => {
                let delta = values[i] - old_values[i];
                let clipped_error = old_values[i] + delta.max(-eps).min(eps) - returns[i];
                let (a2, b2) = (error * error, clipped_error * clipped_error);
                if a2 >= b2 {
                    (a2, error)
                } else {
                    let kept = -eps <= delta && delta <= eps;
                    (b2, if kept { clipped_error } else { 0.0 })
                }
            }
        };
        v_sum += f64::from(squared);
        d_values.push(objective.vf_coef * d_value * inv_n);
        ent_sum += f64::from(entropy[i]);
        any_nan |= [
            log_ratio,
            a,
            values[i],
            returns[i],
            old_values[i],
            entropy[i],
        ]
        .iter()
        .any(|x| x.is_nan());
    }
    let mean = |sum: f64| (sum / n as f64) as f32;
    let (policy_loss, value_loss) = (mean(pg_sum), 0.5 * mean(v_sum));
    let (entropy, approx_kl) = (mean(ent_sum), mean(kl_sum));
    let mut loss = policy_loss - objective.ent_coef * entropy + objective.vf_coef * value_loss;
    if objective.kl_coef.is_some() {
        loss += kl_coef * approx_kl;
    }
    HostPpoLoss {
        loss: if any_nan { f32::NAN } else { loss },
        policy_loss,
        value_loss,
        entropy,
        approx_kl,
        clip_fraction: outside as f32 * inv_n,
        d_log_probs,
        d_entropy: -objective.ent_coef * inv_n,
        d_values,
    }
}

/// The fused loss's backward step: the gradients computed in the forward pass, times the
/// incoming gradient (1 for `loss.backward()`), to the log-probabilities, the entropies and
/// the values.
#[derive(Debug)]
struct FusedPpoLoss;

/// The forward pass's gradients and the device to put them on.
#[derive(Debug, Clone)]
struct LossGradients<D> {
    d_log_probs: Vec<f32>,
    d_entropy: f32,
    d_values: Vec<f32>,
    device: D,
}

impl<B: Backend> Backward<B, 3> for FusedPpoLoss {
    type State = LossGradients<B::Device>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let incoming = grads.consume::<B>(&ops.node);
        let scale = host_vec::<B>(incoming)
            .and_then(|g| g.first().copied())
            .unwrap_or(f32::NAN);
        let LossGradients {
            d_log_probs,
            d_entropy,
            d_values,
            device,
        } = ops.state;
        let n = d_log_probs.len();
        let tensor = |mut values: Vec<f32>| {
            if scale != 1.0 {
                values.iter_mut().for_each(|x| *x *= scale);
            }
            B::float_from_data(TensorData::new(values, [n]), &device)
        };
        let [log_probs, entropy, values] = ops.parents;
        if let Some(node) = log_probs {
            grads.register::<B>(node.id, tensor(d_log_probs));
        }
        if let Some(node) = entropy {
            grads.register::<B>(node.id, tensor(vec![d_entropy; n]));
        }
        if let Some(node) = values {
            grads.register::<B>(node.id, tensor(d_values));
        }
    }
}

/// PPO's loss on `Autodiff<B>`: one host pass, one node.
fn fused_loss<B: Backend>(
    inputs: PpoInputs<Autodiff<B>>,
    objective: &PpoObjective,
) -> PpoLoss<Autodiff<B>> {
    let device = inputs.log_probs.device();
    let n = inputs.log_probs.dims()[0];
    let tracked = |t: Tensor<Autodiff<B>, 1>| match t.into_primitive() {
        TensorPrimitive::Float(x) => {
            let values = host_vec::<B>(x.primitive.clone()).unwrap_or_else(|| vec![f32::NAN; n]);
            (values, Some(x.node))
        }
        TensorPrimitive::QFloat(_) => (vec![f32::NAN; n], None),
    };
    let (log_probs, lp_node) = tracked(inputs.log_probs);
    let (entropy, ent_node) = tracked(inputs.entropy);
    let (values, v_node) = tracked(inputs.values);
    let [old_log_probs, advantages, old_values, returns] = [
        inputs.old_log_probs,
        inputs.advantages,
        inputs.old_values,
        inputs.returns,
    ]
    .map(read);
    let host = host_ppo_loss(
        [
            &log_probs,
            &entropy,
            &values,
            &old_log_probs,
            &advantages,
            &old_values,
            &returns,
        ],
        objective,
    );
    let scalar =
        |x: f32| Tensor::<Autodiff<B>, 1>::from_data(TensorData::new(vec![x], [1]), &device);
    let loss_value = B::float_from_data(TensorData::new(vec![host.loss], [1]), &device);
    let loss = match (lp_node, ent_node, v_node) {
        (Some(lp), Some(ent), Some(v)) => {
            let prep = FusedPpoLoss
                .prepare::<NoCheckpointing>([lp, ent, v])
                .compute_bound()
                .stateful();
            let out = match prep {
                OpsKind::Tracked(prep) => prep.finish(
                    LossGradients {
                        d_log_probs: host.d_log_probs,
                        d_entropy: host.d_entropy,
                        d_values: host.d_values,
                        device: device.clone(),
                    },
                    loss_value,
                ),
                OpsKind::UnTracked(prep) => prep.finish(loss_value),
            };
            Tensor::from_primitive(TensorPrimitive::Float(out))
        }
        // A quantized input (never an f32 one): no graph, a NaN loss the checks report.
        _ => scalar(f32::NAN),
    };
    PpoLoss {
        loss,
        policy_loss: scalar(host.policy_loss),
        value_loss: scalar(host.value_loss),
        entropy: scalar(host.entropy),
        approx_kl: scalar(host.approx_kl),
        clip_fraction: scalar(host.clip_fraction),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ppo::ppo_terms;
    use burn::backend::NdArray;
    use cinder_env::rng::NpRandom;

    type B = NdArray<f32>;
    type AB = Autodiff<B>;

    fn tensor(values: &[f32]) -> Tensor<AB, 1> {
        Tensor::from_data(
            TensorData::new(values.to_vec(), [values.len()]),
            &Default::default(),
        )
    }

    fn read(t: Tensor<B, 1>) -> Vec<f32> {
        t.into_data().to_vec().unwrap()
    }

    /// Inputs that put samples on every branch: ratios from e^−0.6 to e^0.6 against a clip of
    /// 0.2 (both sides clipped and not, for positive and negative advantages), values within
    /// and beyond the value clip of the rollout's.
    fn inputs(n: usize, seed: u64) -> [Vec<f32>; 7] {
        let mut rng = NpRandom::from_seed(seed);
        let mut u =
            |lo: f64, hi: f64| -> Vec<f32> { (0..n).map(|_| rng.uniform(lo, hi) as f32).collect() };
        let old_log_probs = u(-2.0, -0.1);
        let shift = u(-0.6, 0.6);
        let log_probs = old_log_probs
            .iter()
            .zip(&shift)
            .map(|(a, b)| a + b)
            .collect();
        let entropy = u(0.1, 1.2);
        let old_values = u(-1.0, 1.0);
        let value_shift = u(-0.5, 0.5);
        let values = old_values
            .iter()
            .zip(&value_shift)
            .map(|(a, b)| a + b)
            .collect();
        [
            log_probs,
            entropy,
            values,
            old_log_probs,
            u(-2.0, 2.0),
            old_values,
            u(-1.5, 1.5),
        ]
    }

    /// The fused loss and the tensor path (`ppo_terms`) on the same inputs, in every
    /// configuration: loss, parts and the gradients of the three policy outputs agree to
    /// float32 rounding.
    #[test]
    fn the_fused_loss_is_the_tensor_loss() {
        let objectives = [
            PpoObjective {
                clip_low: 0.2,
                clip_high: 0.2,
                value_clip: None,
                ent_coef: 0.01,
                vf_coef: 0.5,
                kl_coef: None,
            },
            PpoObjective {
                clip_low: 0.2,
                clip_high: 0.28,
                value_clip: Some(0.2),
                ent_coef: 0.0,
                vf_coef: 1.0,
                kl_coef: Some(0.3),
            },
            PpoObjective {
                clip_low: f32::INFINITY,
                clip_high: f32::INFINITY,
                value_clip: Some(0.1),
                ent_coef: 0.05,
                vf_coef: 0.25,
                kl_coef: Some(1.0),
            },
        ];
        for (k, objective) in objectives.iter().enumerate() {
            let data = inputs(64, k as u64 + 1);
            let make = || {
                let [lp, ent, v, old, adv, old_v, ret] = data.each_ref().map(|d| tensor(d));
                PpoInputs {
                    log_probs: lp.require_grad(),
                    entropy: ent.require_grad(),
                    values: v.require_grad(),
                    old_log_probs: old,
                    advantages: adv,
                    old_values: old_v,
                    returns: ret,
                }
            };
            let run = |inputs: PpoInputs<AB>, fused: bool| {
                let (lp, ent, v) = (
                    inputs.log_probs.clone(),
                    inputs.entropy.clone(),
                    inputs.values.clone(),
                );
                let terms = if fused {
                    fused_loss::<B>(inputs, objective)
                } else {
                    ppo_terms(inputs, objective)
                };
                let parts = [
                    &terms.loss,
                    &terms.policy_loss,
                    &terms.value_loss,
                    &terms.entropy,
                    &terms.approx_kl,
                    &terms.clip_fraction,
                ]
                .map(|t| read(t.clone().inner())[0]);
                let grads = terms.loss.backward();
                let g = |t: Tensor<AB, 1>| read(t.grad(&grads).unwrap());
                (parts, [g(lp), g(ent), g(v)])
            };
            let (tensor_parts, tensor_grads) = run(make(), false);
            let (fused_parts, fused_grads) = run(make(), true);
            for (a, b) in tensor_parts.iter().zip(&fused_parts) {
                assert!(
                    (a - b).abs() <= 1e-6 * (1.0 + a.abs()),
                    "objective {k}: {tensor_parts:?} vs {fused_parts:?}"
                );
            }
            assert!(
                tensor_parts[5] > 0.0 || objective.clip_low.is_infinite(),
                "objective {k}: no clipped sample"
            );
            for (which, (a, b)) in tensor_grads.iter().zip(&fused_grads).enumerate() {
                for (x, y) in a.iter().zip(b) {
                    assert!(
                        (x - y).abs() <= 1e-7 + 1e-5 * x.abs(),
                        "objective {k}, input {which}: {x} vs {y}"
                    );
                }
            }
        }
    }

    /// Hand-computed: two samples, clip 0.2, `vf_coef` 0.5, `ent_coef` 0.1. Sample 0: ρ = e^0.5
    /// ≈ 1.6487 with Â = 1: clipped to 1.2, loss −1.2, no gradient; sample 1: ρ = 1, Â = −2:
    /// loss 2, gradient −Â·ρ/2 = 1. Values 1 and 0 against returns 0 and 0: value loss
    /// ½ · ½ · (1 + 0) = 0.25, gradients 0.5 · (1, 0) / 2.
    #[test]
    fn a_hand_computed_loss() {
        let objective = PpoObjective {
            clip_low: 0.2,
            clip_high: 0.2,
            value_clip: None,
            ent_coef: 0.1,
            vf_coef: 0.5,
            kl_coef: None,
        };
        let host = host_ppo_loss(
            [
                &[0.5, -1.0],
                &[1.0, 0.5],
                &[1.0, 0.0],
                &[0.0, -1.0],
                &[1.0, -2.0],
                &[0.0, 0.0],
                &[0.0, 0.0],
            ],
            &objective,
        );
        assert!((host.policy_loss - 0.4).abs() < 1e-6, "{host:?}");
        assert!((host.value_loss - 0.25).abs() < 1e-6);
        assert!((host.entropy - 0.75).abs() < 1e-6);
        assert!((host.loss - (0.4 - 0.075 + 0.125)).abs() < 1e-6);
        assert_eq!(host.clip_fraction, 0.5);
        assert_eq!(host.d_log_probs, vec![0.0, 1.0]);
        assert_eq!(host.d_values, vec![0.25, 0.0]);
        assert!((host.d_entropy + 0.05).abs() < 1e-8);
    }

    /// A NaN anywhere makes the loss NaN (the learners' checks report it), even where the
    /// clipped side of the surrogate would hide it.
    #[test]
    fn a_nan_input_gives_a_nan_loss() {
        let objective = PpoObjective {
            clip_low: 0.2,
            clip_high: 0.2,
            value_clip: Some(0.2),
            ent_coef: 0.0,
            vf_coef: 0.5,
            kl_coef: None,
        };
        let good = [0.0f32, 0.1];
        for k in 0..7 {
            let mut columns = [good; 7];
            columns[k][1] = f32::NAN;
            let refs = columns.each_ref().map(|c| c.as_slice());
            assert!(host_ppo_loss(refs, &objective).loss.is_nan(), "input {k}");
        }
    }
}
