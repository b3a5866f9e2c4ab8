//! Adam as every learner uses it: Burn's [`Adam`], with its step fused into one pass over
//! host memory on the CPU backends.
//!
//! Burn's Adam updates a parameter tensor with a dozen tensor operations (both moments, the
//! bias corrections, the square root, the division, the step), each a pass over memory with its
//! own allocation. At the sizes of the classic-control policies (a few thousand floats per
//! tensor, a dozen tensors) that is a fifth of a PPO gradient step at minibatch 8 to 64, almost
//! all of it per-operation cost. [`FusedAdam`] computes the same formula, in the same order of
//! `f32` operations (so to the same bits), in one loop over the parameter, its gradient and the
//! two moments, on backends marked by
//! [`install_host_optimizer`](crate::host_kernels::install_host_optimizer) (flex, where reading
//! a tensor into host memory is a move); on the others it is Burn's Adam. Its state is Burn's [`AdamState`], so checkpoints read and
//! write it as before.
//!
//! ```
//! use burn::backend::{Autodiff, NdArray};
//! use burn::module::Param;
//! use burn::optim::{GradientsParams, Optimizer};
//! use burn::tensor::{Tensor, TensorData};
//!
//! type B = Autodiff<NdArray>;
//! cinder_rl::host_kernels::install_host_optimizer::<NdArray>();
//! let device = Default::default();
//! let x = Param::from_tensor(Tensor::<B, 1>::from_data(TensorData::from([1.0f32, -2.0]), &device));
//! let mut adam = cinder_rl::adam::fused_adam::<B, Param<Tensor<B, 1>>>(1e-8);
//! let grads = x.val().square().sum().backward();
//! let grads = GradientsParams::from_grads(grads, &x);
//! let x = adam.step(0.1, x, grads);
//! // Adam's first step moves each coordinate by the learning rate, against its gradient.
//! let moved: Vec<f32> = x.val().into_data().to_vec().unwrap();
//! assert!((moved[0] - 0.9).abs() < 1e-6 && (moved[1] + 1.9).abs() < 1e-6);
//! ```

use crate::tensors::read;
use burn::module::AutodiffModule;
use burn::optim::LearningRate;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{Adam, AdamConfig, AdamState, AdaptiveMomentumState, SimpleOptimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{DType, Tensor, TensorData};

/// Adam's β₁ (Burn's and PyTorch's default).
pub const BETA_1: f32 = 0.9;
/// Adam's β₂ (Burn's and PyTorch's default).
pub const BETA_2: f32 = 0.999;

/// The learners' optimiser: [`FusedAdam`] in Burn's adaptor (which keeps its state per
/// parameter).
pub type PolicyOptimizer<B, M> = OptimizerAdaptor<FusedAdam, M, B>;

/// Adam with β₁ = 0.9, β₂ = 0.999 and the given `epsilon` (1e-5: CleanRL's and SB3's PPO; 1e-8:
/// PyTorch's default), no weight decay, no AMSGrad (see the [module docs](self)).
pub fn fused_adam<B: AutodiffBackend, M: AutodiffModule<B>>(epsilon: f32) -> PolicyOptimizer<B, M> {
    OptimizerAdaptor::from(FusedAdam::new(epsilon))
}

/// Adam whose step is one host pass on backends marked for it, Burn's [`Adam`] elsewhere
/// (see the [module docs](self)).
#[derive(Clone)]
pub struct FusedAdam {
    /// Burn's Adam, for backends without host kernels.
    adam: Adam,
    epsilon: f32,
}

impl std::fmt::Debug for FusedAdam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FusedAdam")
            .field("beta_1", &BETA_1)
            .field("beta_2", &BETA_2)
            .field("epsilon", &self.epsilon)
            .finish()
    }
}

impl FusedAdam {
    /// β₁ = [`BETA_1`], β₂ = [`BETA_2`] and `epsilon`.
    pub fn new(epsilon: f32) -> Self {
        let config = AdamConfig::new()
            .with_beta_1(BETA_1)
            .with_beta_2(BETA_2)
            .with_epsilon(epsilon);
        Self {
            adam: config.build(),
            epsilon,
        }
    }

    /// One Adam step on host values, in place: `param`, `moment_1` and `moment_2` are updated
    /// with `grad` at step `time` (1 for the first, whose moments are taken as zero). The
    /// operations are Burn's, in its order, each rounded to `f32`.
    pub fn step_host(
        &self,
        learning_rate: f32,
        time: usize,
        param: &mut [f32],
        grad: &[f32],
        moment_1: &mut [f32],
        moment_2: &mut [f32],
    ) {
        let (beta_1, beta_2) = (BETA_1, BETA_2);
        let (factor_1, factor_2) = (1.0 - beta_1, 1.0 - beta_2);
        let t = i32::try_from(time).unwrap_or(i32::MAX);
        let bias_correction2_sqrt = (1.0 - beta_2.powi(t)).sqrt();
        let combined_factor = bias_correction2_sqrt / (1.0 - beta_1.powi(t));
        let epsilon = self.epsilon * bias_correction2_sqrt;
        let first = time <= 1;
        let rows = param
            .iter_mut()
            .zip(grad)
            .zip(moment_1.iter_mut().zip(moment_2.iter_mut()));
        for ((p, &g), (m, v)) in rows {
            if first {
                *m = g * factor_1;
                *v = (g * g) * factor_2;
            } else {
                *m = *m * beta_1 + g * factor_1;
                *v = *v * beta_2 + (g * g) * factor_2;
            }
            let update = (*m * combined_factor) / (v.sqrt() + epsilon);
            *p -= update * learning_rate;
        }
    }
}

impl<B: Backend> SimpleOptimizer<B> for FusedAdam {
    type State<const D: usize> = AdamState<B, D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<B, D>, Option<Self::State<D>>) {
        let host = crate::host_kernels::host_optimizer_installed::<B>()
            && tensor.dtype() == DType::F32
            && grad.dtype() == DType::F32
            && state.as_ref().is_none_or(|s| {
                s.momentum.max_moment_2.is_none() && s.momentum.moment_1.dtype() == DType::F32
            });
        if !host {
            return self.adam.step(lr, tensor, grad, state);
        }
        let device = tensor.device();
        let shape = tensor.shape();
        let n = shape.num_elements();
        let (time, mut moment_1, mut moment_2) = match state {
            Some(s) => (
                s.momentum.time + 1,
                read(s.momentum.moment_1),
                read(s.momentum.moment_2),
            ),
            None => (1, vec![0.0; n], vec![0.0; n]),
        };
        let (mut param, grad) = (read(tensor), read(grad));
        // Burn's `mul_scalar(lr)` converts the f64 learning rate to the tensor's f32.
        self.step_host(
            lr as f32,
            time,
            &mut param,
            &grad,
            &mut moment_1,
            &mut moment_2,
        );
        let back = |values: Vec<f32>| {
            Tensor::<B, D>::from_data(TensorData::new(values, shape.clone()), &device)
        };
        let momentum = AdaptiveMomentumState {
            time,
            moment_1: back(moment_1),
            moment_2: back(moment_2),
            max_moment_2: None,
        };
        (back(param), Some(AdamState { momentum }))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &B::Device) -> Self::State<D> {
        <Adam as SimpleOptimizer<B>>::to_device(state, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, NdArray};
    use burn::module::Param;
    use burn::optim::{GradientsParams, Optimizer};
    use cinder_env::rng::NpRandom;

    type B = Autodiff<NdArray>;

    fn random(n: usize, rng: &mut NpRandom) -> Vec<f32> {
        (0..n).map(|_| rng.uniform(-2.0, 2.0) as f32).collect()
    }

    /// Six steps on a [3, 5] parameter whose loss is `Σ c ⊙ x²` (gradients of both signs and
    /// many sizes), by Burn's Adam and by the fused one (on the host), at a
    /// learning rate that changes every step: the same bits.
    #[test]
    fn the_fused_step_gives_burns_adam_bits() {
        crate::host_kernels::install_host_optimizer::<NdArray>();
        let device = Default::default();
        let mut rng = NpRandom::from_seed(3);
        let start = TensorData::new(random(15, &mut rng), [3, 5]);
        let weights =
            Tensor::<B, 2>::from_data(TensorData::new(random(15, &mut rng), [3, 5]), &device);
        let mut burn_x = Param::from_tensor(Tensor::<B, 2>::from_data(start.clone(), &device));
        let mut fused_x = Param::from_tensor(Tensor::<B, 2>::from_data(start, &device));
        let mut burn_adam = AdamConfig::new()
            .with_epsilon(1e-5)
            .init::<B, Param<Tensor<B, 2>>>();
        let mut fused = fused_adam::<B, Param<Tensor<B, 2>>>(1e-5);
        for step in 0..6 {
            let lr = 0.05 / (1.0 + step as f64);
            let grads = |x: &Param<Tensor<B, 2>>| {
                let loss = (x.val().square() * weights.clone()).sum();
                GradientsParams::from_grads(loss.backward(), x)
            };
            let g = grads(&burn_x);
            burn_x = burn_adam.step(lr, burn_x, g);
            let g = grads(&fused_x);
            fused_x = fused.step(lr, fused_x, g);
            let a: Vec<f32> = burn_x.val().into_data().to_vec().unwrap();
            let b: Vec<f32> = fused_x.val().into_data().to_vec().unwrap();
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&a), bits(&b), "step {step}");
        }
    }

    /// The host step against Adam written out in f64 for one coordinate over three steps
    /// (β₁ = 0.9, β₂ = 0.999, ε = 1e-8, bias-corrected), within f32 rounding.
    #[test]
    fn the_host_step_is_adam() {
        let adam = FusedAdam::new(1e-8);
        let grads = [0.5f64, -1.5, 2.0];
        let (mut p, mut m, mut v) = ([1.0f32], [0.0f32], [0.0f32]);
        let (mut p64, mut m64, mut v64) = (1.0f64, 0.0f64, 0.0f64);
        for (t, &g) in grads.iter().enumerate() {
            adam.step_host(0.1, t + 1, &mut p, &[g as f32], &mut m, &mut v);
            m64 = 0.9 * m64 + 0.1 * g;
            v64 = 0.999 * v64 + 0.001 * g * g;
            let tt = (t + 1) as i32;
            let m_hat = m64 / (1.0 - 0.9f64.powi(tt));
            let v_hat = v64 / (1.0 - 0.999f64.powi(tt));
            p64 -= 0.1 * m_hat / (v_hat.sqrt() + 1e-8);
            assert!(
                (f64::from(p[0]) - p64).abs() < 1e-6,
                "step {t}: {} vs {p64}",
                p[0]
            );
        }
    }

    /// The fused step's state is Burn's Adam state, kept per parameter by the adaptor (so
    /// checkpoints hold it as before): after two steps of `x ↦ Σ x`, whose gradient is 1,
    /// step 2 with first moment 0.9 · 0.1 + 0.1 and second 0.999 · 0.001 + 0.001.
    #[test]
    fn the_state_is_burns_adam_state() {
        crate::host_kernels::install_host_optimizer::<NdArray>();
        let device = Default::default();
        let mut x = Param::from_tensor(Tensor::<B, 1>::from_data(
            TensorData::from([1.0f32, 2.0]),
            &device,
        ));
        let mut adam = fused_adam::<B, Param<Tensor<B, 1>>>(1e-5);
        for _ in 0..2 {
            let grads = GradientsParams::from_grads(x.val().sum().backward(), &x);
            x = adam.step(0.1, x, grads);
        }
        let record = adam.to_record();
        assert_eq!(record.len(), 1);
        let state: AdamState<NdArray, 1> = record.into_values().next().unwrap().into_state();
        assert_eq!(state.momentum.time, 2);
        let m: Vec<f32> = state.momentum.moment_1.into_data().to_vec().unwrap();
        let v: Vec<f32> = state.momentum.moment_2.into_data().to_vec().unwrap();
        assert!(m.iter().all(|&m| (m - 0.19).abs() < 1e-7), "{m:?}");
        // 1 − β₂ is 0.00099998713 in f32.
        let f2 = 1.0f32 - 0.999;
        assert!(
            v.iter().all(|&v| (v - (0.999 * f2 + f2)).abs() < 1e-9),
            "{v:?}"
        );
        assert!(state.momentum.max_moment_2.is_none());
    }
}
