//! Action distributions: [`Categorical`] for discrete actions and [`DiagGaussian`] for
//! continuous ones, as Stable-Baselines3 separates them from policies.
//!
//! Log-probabilities and entropies are tensors (differentiable on an autodiff backend).
//! Sampling happens on the host from values read back once per rollout step, with Cinder's
//! seeded NumPy-compatible generator, so that a run is reproducible whatever the backend.

use burn::tensor::{Int, Tensor, backend::Backend};
use cinder_env::rng::NpRandom;

/// `ln(2π) / 2`.
pub(crate) const HALF_LN_2PI: f32 = 0.918_938_5;

/// A batch of categorical distributions over `n` actions.
#[derive(Debug, Clone)]
pub struct Categorical<B: Backend> {
    /// Normalised log-probabilities, `[batch, n]`.
    pub log_probs: Tensor<B, 2>,
}

impl<B: Backend> Categorical<B> {
    /// From unnormalised logits `[batch, n]`.
    pub fn from_logits(logits: Tensor<B, 2>) -> Self {
        Self {
            log_probs: crate::host_kernels::log_softmax(logits),
        }
    }

    /// Probabilities, `[batch, n]`.
    pub fn probs(&self) -> Tensor<B, 2> {
        self.log_probs.clone().exp()
    }

    /// `log π(a)` of one action per row, `[batch]`.
    pub fn log_prob(&self, actions: Tensor<B, 1, Int>) -> Tensor<B, 1> {
        self.log_probs
            .clone()
            .gather(1, actions.unsqueeze_dim(1))
            .squeeze_dim(1)
    }

    /// Entropy `−Σ p log p`, `[batch]`.
    pub fn entropy(&self) -> Tensor<B, 1> {
        crate::host_kernels::categorical_entropy(self.log_probs.clone())
    }

    /// The exact `KL(self ‖ other) = Σ p (log p − log q)`, `[batch]`.
    pub fn kl(&self, other: &Self) -> Tensor<B, 1> {
        (self.probs() * (self.log_probs.clone() - other.log_probs.clone()))
            .sum_dim(1)
            .squeeze_dim(1)
    }

    /// The most likely action of each row, `[batch]`.
    pub fn mode(&self) -> Tensor<B, 1, Int> {
        self.log_probs.clone().argmax(1).squeeze_dim(1)
    }
}

/// Draws an index from `probs` (one row of probabilities summing to about 1) by inverse CDF.
pub fn sample_categorical(probs: &[f32], rng: &mut NpRandom) -> usize {
    let u = rng.next_f64();
    let mut cumulative = 0.0f64;
    for (i, &p) in probs.iter().enumerate() {
        cumulative += f64::from(p);
        if u < cumulative {
            return i;
        }
    }
    // Rounding left the total just under u: take the last action with positive probability.
    probs.iter().rposition(|&p| p > 0.0).unwrap_or(0)
}

/// A batch of diagonal Gaussians with a state-independent log standard deviation.
#[derive(Debug, Clone)]
pub struct DiagGaussian<B: Backend> {
    /// Means, `[batch, d]`.
    pub mean: Tensor<B, 2>,
    /// Log standard deviations, `[batch, d]` (a learned `[1, d]` parameter, expanded).
    pub log_std: Tensor<B, 2>,
}

impl<B: Backend> DiagGaussian<B> {
    /// From means `[batch, d]` and a log-std `[1, d]` shared by the batch.
    pub fn new(mean: Tensor<B, 2>, log_std: Tensor<B, 2>) -> Self {
        let shape = mean.shape();
        let log_std = log_std.expand(shape);
        Self { mean, log_std }
    }

    /// `log π(a)` of one action vector per row (sum over dimensions), `[batch]`.
    pub fn log_prob(&self, actions: Tensor<B, 2>) -> Tensor<B, 2> {
        let std = self.log_std.clone().exp();
        let z = (actions - self.mean.clone()) / std;
        (z.square().mul_scalar(-0.5) - self.log_std.clone()).sub_scalar(HALF_LN_2PI)
    }

    /// Summed log-probability, `[batch]`.
    pub fn log_prob_sum(&self, actions: Tensor<B, 2>) -> Tensor<B, 1> {
        self.log_prob(actions).sum_dim(1).squeeze_dim(1)
    }

    /// Entropy `Σ_d (½ + ½ ln 2π + log σ_d)`, `[batch]`.
    pub fn entropy(&self) -> Tensor<B, 1> {
        self.log_std
            .clone()
            .add_scalar(0.5 + HALF_LN_2PI)
            .sum_dim(1)
            .squeeze_dim(1)
    }

    /// The means (the most likely actions).
    pub fn mode(&self) -> Tensor<B, 2> {
        self.mean.clone()
    }

    /// The exact `KL(self ‖ other)`, summed over dimensions, `[batch]`:
    /// `Σ_d log(σ_o/σ_s) + (σ_s² + (μ_s − μ_o)²) / (2σ_o²) − ½` (PyTorch's `kl_divergence` of
    /// two `Normal`s, summed as SB3 sums it).
    pub fn kl(&self, other: &Self) -> Tensor<B, 1> {
        let var_ratio = (self.log_std.clone() - other.log_std.clone())
            .mul_scalar(2.0)
            .exp();
        let mean_term = (self.mean.clone() - other.mean.clone()).square()
            / other.log_std.clone().mul_scalar(2.0).exp();
        ((var_ratio + mean_term).mul_scalar(0.5) - (self.log_std.clone() - other.log_std.clone()))
            .sub_scalar(0.5)
            .sum_dim(1)
            .squeeze_dim(1)
    }
}

/// A standard normal draw (Box-Muller on the NumPy-compatible generator).
pub fn standard_normal(rng: &mut NpRandom) -> f64 {
    let u1 = 1.0 - rng.next_f64();
    let u2 = rng.next_f64();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;
    use burn::tensor::TensorData;

    type B = NdArray<f32>;

    fn vec1(t: Tensor<B, 1>) -> Vec<f32> {
        t.into_data().to_vec::<f32>().unwrap()
    }

    fn close(a: &[f32], b: &[f32], tol: f32) {
        assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < tol, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn categorical_matches_closed_forms() {
        let device = Default::default();
        // Row 0: probabilities 1/6, 2/6, 3/6 (logits ln 1, ln 2, ln 3); row 1: uniform.
        let logits = Tensor::<B, 2>::from_data(
            TensorData::new(vec![0.0, 2f32.ln(), 3f32.ln(), 5.0, 5.0, 5.0], [2, 3]),
            &device,
        );
        let dist = Categorical::from_logits(logits);
        let actions = Tensor::<B, 1, Int>::from_data(TensorData::new(vec![2i64, 0], [2]), &device);
        close(
            &vec1(dist.log_prob(actions)),
            &[(0.5f32).ln(), (1.0f32 / 3.0).ln()],
            1e-6,
        );
        let p = [1.0f32 / 6.0, 2.0 / 6.0, 3.0 / 6.0];
        let h0: f32 = -p.iter().map(|p| p * p.ln()).sum::<f32>();
        close(&vec1(dist.entropy()), &[h0, 3f32.ln()], 1e-6);
        // KL(row0 ‖ uniform) = Σ p ln(3p).
        let uniform = Categorical::from_logits(Tensor::<B, 2>::zeros([2, 3], &device));
        let kl0: f32 = p.iter().map(|p| p * (3.0 * p).ln()).sum();
        close(&vec1(dist.kl(&uniform)), &[kl0, 0.0], 1e-6);
        let mode: Vec<i64> = dist.mode().into_data().iter::<i64>().collect();
        assert_eq!(mode[0], 2);
    }

    #[test]
    fn host_sampling_follows_the_probabilities() {
        let mut rng = NpRandom::from_seed(0);
        let probs = [0.2f32, 0.5, 0.3];
        let mut counts = [0usize; 3];
        let n = 60_000;
        for _ in 0..n {
            counts[sample_categorical(&probs, &mut rng)] += 1;
        }
        for (c, p) in counts.iter().zip(probs) {
            let freq = *c as f32 / n as f32;
            assert!((freq - p).abs() < 0.01, "{counts:?}");
        }
        assert_eq!(sample_categorical(&[0.0, 0.0], &mut rng), 0);
    }

    #[test]
    fn gaussian_matches_closed_forms() {
        let device = Default::default();
        let mean = Tensor::<B, 2>::from_data(
            TensorData::new(vec![0.0f32, 1.0, -1.0, 2.0], [2, 2]),
            &device,
        );
        let log_std =
            Tensor::<B, 2>::from_data(TensorData::new(vec![0.0f32, 0.5f32.ln()], [1, 2]), &device);
        let dist = DiagGaussian::new(mean, log_std);
        let actions = Tensor::<B, 2>::from_data(
            TensorData::new(vec![1.0f32, 1.0, -1.0, 3.0], [2, 2]),
            &device,
        );
        // N(1; 0, 1) + N(1; 1, 0.5) and N(-1; -1, 1) + N(3; 2, 0.5).
        let ln_n = |x: f32, m: f32, s: f32| -0.5 * ((x - m) / s).powi(2) - s.ln() - HALF_LN_2PI;
        let expected = [
            ln_n(1.0, 0.0, 1.0) + ln_n(1.0, 1.0, 0.5),
            ln_n(-1.0, -1.0, 1.0) + ln_n(3.0, 2.0, 0.5),
        ];
        close(&vec1(dist.log_prob_sum(actions)), &expected, 1e-5);
        let h = |s: f32| 0.5 + HALF_LN_2PI + s.ln();
        close(&vec1(dist.entropy()), &[h(1.0) + h(0.5); 2], 1e-5);
    }

    #[test]
    fn standard_normal_has_unit_moments() {
        let mut rng = NpRandom::from_seed(4);
        let xs: Vec<f64> = (0..50_000).map(|_| standard_normal(&mut rng)).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(
            mean.abs() < 0.02 && (var - 1.0).abs() < 0.03,
            "{mean} {var}"
        );
    }
}
