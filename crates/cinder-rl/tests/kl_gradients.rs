//! What gradient each KL penalty really gives (`shared/design/ALGORITHMS.md`, "What a KL
//! penalty's gradient really is"), checked by Monte Carlo on a small categorical policy.
//!
//! The policy is `π = softmax(z)` over 4 actions, the reference `q` a fixed distribution. For
//! each estimator `k(x)`, `x = log q(a) − log π(a)`, the loss `mean_i k(x_i)` over N samples
//! `a_i ~ π` is differentiated with respect to the logits `z` by Burn's autodiff, through
//! [`kl_estimate`]. Its mean gradient is compared with closed forms computed here in f64,
//! independently of the crate:
//!
//! - reverse KL: `∂KL(π ‖ q)/∂z_j = π_j (l_j − KL(π ‖ q))`, `l_j = log π_j − log q_j`;
//! - forward KL: `∂KL(q ‖ π)/∂z_j = π_j − q_j`.
//!
//! Monte-Carlo tolerance: each sample's gradient coordinate is bounded in absolute value by
//! `max_a |l_a| ≈ 1.6` (k2), `max_a |1 − q_a/π_a| ≈ 2.8` (k3) and 1 (k1), so with
//! N = 400,000 samples the standard error of a mean coordinate is below 2.8 / √N ≈ 0.0044.
//! The tolerance is 0.025 (over 5 standard errors); the two KLs' gradients differ by up to 0.15
//! here, so each estimator is also checked to be *far* (> 0.1) from the gradient it does not
//! follow.

use burn::backend::{Autodiff, NdArray};
use burn::tensor::{Int, Tensor, TensorData};
use cinder_env::rng::NpRandom;
use cinder_rl::distributions::{Categorical, sample_categorical};
use cinder_rl::losses::{KlEstimator, ReferenceKl, kl_estimate};
use cinder_rl::policy_gradient::ReferenceKlConfig;
use cinder_rl::reinforce;

type AB = Autodiff<NdArray<f32>>;

const LOGITS: [f64; 4] = [0.9, -0.4, 0.2, -1.0];
const REFERENCE_LOGITS: [f64; 4] = [-0.6, 0.5, 0.3, 0.4];
const SAMPLES: usize = 400_000;
const TOLERANCE: f64 = 0.025;

fn softmax(z: &[f64]) -> Vec<f64> {
    let max = z.iter().cloned().fold(f64::MIN, f64::max);
    let e: Vec<f64> = z.iter().map(|x| (x - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.iter().map(|x| x / sum).collect()
}

/// `∂KL(π ‖ q)/∂z` and `∂KL(q ‖ π)/∂z`, in f64 from the closed forms.
fn exact_gradients() -> (Vec<f64>, Vec<f64>) {
    let p = softmax(&LOGITS);
    let q = softmax(&REFERENCE_LOGITS);
    let l: Vec<f64> = p.iter().zip(&q).map(|(p, q)| (p / q).ln()).collect();
    let kl: f64 = p.iter().zip(&l).map(|(p, l)| p * l).sum();
    let reverse = p.iter().zip(&l).map(|(p, l)| p * (l - kl)).collect();
    let forward = p.iter().zip(&q).map(|(p, q)| p - q).collect();
    (reverse, forward)
}

/// The logits as a differentiable `[1, 4]` parameter and a `[SAMPLES, 4]` view of them.
fn logits() -> (Tensor<AB, 2>, Tensor<AB, 2>) {
    let device = Default::default();
    let z: Vec<f32> = LOGITS.iter().map(|&x| x as f32).collect();
    let z = Tensor::<AB, 2>::from_data(TensorData::new(z, [1, 4]), &device).require_grad();
    let rows = z.clone().repeat_dim(0, SAMPLES);
    (z, rows)
}

/// The mean gradient of `mean_i k(x_i)` with respect to the logits, samples drawn from π.
fn estimator_gradient(estimator: KlEstimator) -> Vec<f64> {
    let device = Default::default();
    let p: Vec<f32> = softmax(&LOGITS).iter().map(|&x| x as f32).collect();
    let q = softmax(&REFERENCE_LOGITS);
    let mut rng = NpRandom::from_seed(2024);
    let actions: Vec<usize> = (0..SAMPLES)
        .map(|_| sample_categorical(&p, &mut rng))
        .collect();
    let ref_log_probs: Vec<f32> = actions.iter().map(|&a| q[a].ln() as f32).collect();
    let (z, rows) = logits();
    let index: Vec<i64> = actions.iter().map(|&a| a as i64).collect();
    let log_probs = Categorical::from_logits(rows).log_prob(Tensor::<AB, 1, Int>::from_data(
        TensorData::new(index, [SAMPLES]),
        &device,
    ));
    let ref_log_probs =
        Tensor::<AB, 1>::from_data(TensorData::new(ref_log_probs, [SAMPLES]), &device);
    let loss = kl_estimate(log_probs, ref_log_probs, estimator).mean();
    let grads = loss.backward();
    let g: Vec<f32> = z.grad(&grads).unwrap().into_data().to_vec().unwrap();
    g.iter().map(|&x| f64::from(x)).collect()
}

fn max_difference(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn kl_estimator_gradients() {
    let (reverse, forward) = exact_gradients();
    assert!(
        max_difference(&reverse, &forward) > 0.1,
        "the test cannot tell the KLs apart"
    );
    let zero = vec![0.0; 4];

    // k1 as a loss: zero mean gradient (noise), not the reverse KL's.
    let k1 = estimator_gradient(KlEstimator::K1);
    assert!(max_difference(&k1, &zero) < TOLERANCE, "k1: {k1:?}");
    assert!(
        max_difference(&k1, &reverse) > 0.1,
        "k1: {k1:?} vs {reverse:?}"
    );

    // k2 as a loss: the reverse KL's gradient.
    let k2 = estimator_gradient(KlEstimator::K2);
    assert!(
        max_difference(&k2, &reverse) < TOLERANCE,
        "k2: {k2:?} vs {reverse:?}"
    );
    assert!(
        max_difference(&k2, &forward) > 0.1,
        "k2: {k2:?} vs {forward:?}"
    );

    // k3 as a loss: the forward KL's gradient (TRL's GRPO penalty).
    let k3 = estimator_gradient(KlEstimator::K3);
    assert!(
        max_difference(&k3, &forward) < TOLERANCE,
        "k3: {k3:?} vs {forward:?}"
    );
    assert!(
        max_difference(&k3, &reverse) > 0.1,
        "k3: {k3:?} vs {reverse:?}"
    );
}

/// The exact categorical KL differentiates the reverse KL exactly (no sampling).
#[test]
fn exact_categorical_kl_gradient_is_the_reverse_kl_gradient() {
    let device = Default::default();
    let (reverse, _) = exact_gradients();
    let z: Vec<f32> = LOGITS.iter().map(|&x| x as f32).collect();
    let r: Vec<f32> = REFERENCE_LOGITS.iter().map(|&x| x as f32).collect();
    let z = Tensor::<AB, 2>::from_data(TensorData::new(z, [1, 4]), &device).require_grad();
    let reference = Categorical::from_logits(Tensor::<AB, 2>::from_data(
        TensorData::new(r, [1, 4]),
        &device,
    ));
    let kl = Categorical::from_logits(z.clone()).kl(&reference).sum();
    let grads = kl.backward();
    let g: Vec<f64> = z
        .grad(&grads)
        .unwrap()
        .into_data()
        .to_vec::<f32>()
        .unwrap()
        .iter()
        .map(|&x| f64::from(x))
        .collect();
    assert!(max_difference(&g, &reverse) < 1e-5, "{g:?} vs {reverse:?}");
}

/// k1 as a loss term is refused with an error that says where to put it; in the reward it is
/// accepted; the exact KL cannot go in the reward.
#[test]
fn k1_goes_in_the_reward_not_in_the_loss() {
    let with = |kl: ReferenceKl, in_reward: bool| {
        reinforce::config().with_reference_kl(Some(
            ReferenceKlConfig::new()
                .with_kl(kl)
                .with_in_reward(in_reward),
        ))
    };
    let err = with(ReferenceKl::Estimator(KlEstimator::K1), false)
        .validate()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("zero-mean gradient") && err.contains("in_reward = true"),
        "{err}"
    );
    with(ReferenceKl::Estimator(KlEstimator::K1), true)
        .validate()
        .unwrap();
    with(ReferenceKl::Estimator(KlEstimator::K2), false)
        .validate()
        .unwrap();
    with(ReferenceKl::Estimator(KlEstimator::K3), true)
        .validate()
        .unwrap();
    let err = with(ReferenceKl::ExactCategorical, true)
        .validate()
        .unwrap_err()
        .to_string();
    assert!(err.contains("sample estimator"), "{err}");
}
