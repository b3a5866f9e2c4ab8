//! Global gradient-norm clipping, as PyTorch's `clip_grad_norm_` (which PPO uses): the norm is
//! taken over all parameters together. Burn's own clipping works per parameter tensor.

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};

struct SquaredNorm<'a, B: Backend> {
    grads: &'a GradientsParams,
    total: Option<Tensor<B, 1>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for SquaredNorm<'_, B::InnerBackend> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
            let sq = g.square().sum();
            self.total = Some(match self.total.take() {
                Some(total) => total + sq,
                None => sq,
            });
        }
    }
}

struct Scale<'a, B: Backend> {
    grads: &'a mut GradientsParams,
    factor: Tensor<B, 1>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Scale<'_, B::InnerBackend> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.remove::<B::InnerBackend, D>(param.id) {
            let factor = self.factor.clone().reshape([1; D]);
            self.grads.register(param.id, g * factor);
        }
    }
}

/// The L2 norm of all of `model`'s gradients in `grads` taken together, on the device, `[1]`
/// (zero without gradients). Reading it is a device sync: learners keep it on the device and
/// read their diagnostics once per update.
pub fn global_grad_norm_tensor<B: AutodiffBackend, M: AutodiffModule<B>>(
    model: &M,
    grads: &GradientsParams,
    device: &B::Device,
) -> Tensor<B::InnerBackend, 1> {
    squared_grad_norm::<B, M>(model, grads).map_or_else(|| Tensor::zeros([1], device), Tensor::sqrt)
}

/// The sum of squares of all of `model`'s gradients in `grads`, `[1]` (`None`: no gradients).
fn squared_grad_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    model: &M,
    grads: &GradientsParams,
) -> Option<Tensor<B::InnerBackend, 1>> {
    let mut visitor = SquaredNorm::<B::InnerBackend> { grads, total: None };
    model.visit(&mut visitor);
    visitor.total
}

/// The L2 norm of all of `model`'s gradients in `grads` taken together (read back once).
pub fn global_grad_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    model: &M,
    grads: &GradientsParams,
) -> f32 {
    match squared_grad_norm::<B, M>(model, grads) {
        Some(total) => total
            .into_data()
            .to_vec::<f32>()
            .map_or(f32::NAN, |v| v.first().map_or(f32::NAN, |x| x.sqrt())),
        None => 0.0,
    }
}

/// Scales all gradients by `min(1, max_norm / (norm + 1e-6))` (PyTorch's `clip_grad_norm_`),
/// entirely on the device: nothing is read back. Returns the norm before clipping, `[1]`, which
/// may be NaN or infinite (then so are the clipped gradients): learners check it, with their
/// loss, once per update. An infinite `max_norm` measures the norm without scaling.
///
/// On backends marked by [`install_host_optimizer`](crate::host_kernels::install_host_optimizer)
/// (flex: host memory, where reading is a move or a copy)
/// the norm is summed on the host in `f64` from one read of each gradient, and the gradients
/// are scaled only when the factor is below 1: four dozen tensor operations fewer per gradient
/// step. The norm then differs from the device's `f32` sums by rounding only.
pub fn clip_grad_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    model: &M,
    grads: GradientsParams,
    max_norm: f32,
    device: &B::Device,
) -> (GradientsParams, Tensor<B::InnerBackend, 1>) {
    if crate::host_kernels::host_optimizer_installed::<B::InnerBackend>() {
        clip_grad_norm_on_host::<B, M>(model, grads, max_norm, device)
    } else {
        clip_grad_norm_on_device::<B, M>(model, grads, max_norm, device)
    }
}

/// [`clip_grad_norm`] in tensor operations, for every backend.
fn clip_grad_norm_on_device<B: AutodiffBackend, M: AutodiffModule<B>>(
    model: &M,
    grads: GradientsParams,
    max_norm: f32,
    device: &B::Device,
) -> (GradientsParams, Tensor<B::InnerBackend, 1>) {
    let mut grads = grads;
    let norm = global_grad_norm_tensor::<B, M>(model, &grads, device);
    if max_norm.is_finite() {
        let factor = norm
            .clone()
            .add_scalar(1e-6)
            .recip()
            .mul_scalar(max_norm)
            .clamp_max(1.0);
        let mut visitor = Scale::<B::InnerBackend> {
            grads: &mut grads,
            factor,
        };
        model.visit(&mut visitor);
    }
    (grads, norm)
}

/// [`clip_grad_norm`] on a host backend: the norm from one read of each gradient, the scaling
/// (one multiplication by a number per gradient) only when it changes something.
fn clip_grad_norm_on_host<B: AutodiffBackend, M: AutodiffModule<B>>(
    model: &M,
    grads: GradientsParams,
    max_norm: f32,
    device: &B::Device,
) -> (GradientsParams, Tensor<B::InnerBackend, 1>) {
    let mut grads = grads;
    let mut squares = HostSquares::<B::InnerBackend> {
        grads: &grads,
        total: 0.0,
        _backend: std::marker::PhantomData,
    };
    model.visit(&mut squares);
    let norm = squares.total.sqrt() as f32;
    if max_norm.is_finite() {
        // The device path's order, (norm + 1e-6)⁻¹ · max_norm, applied only below 1 (the
        // device path's clamp at 1 leaves the others as they are); a NaN norm scales the
        // gradients to NaN, as there.
        let factor = 1.0 / (norm + 1e-6) * max_norm;
        if factor.is_nan() || factor < 1.0 {
            let mut visitor = ScaleBy::<B::InnerBackend> {
                grads: &mut grads,
                factor,
                _backend: std::marker::PhantomData,
            };
            model.visit(&mut visitor);
        }
    }
    let norm = Tensor::from_data(burn::tensor::TensorData::new(vec![norm], [1]), device);
    (grads, norm)
}

/// Sums the squares of the gradients on the host (`f64`).
struct HostSquares<'a, B: Backend> {
    grads: &'a GradientsParams,
    total: f64,
    _backend: std::marker::PhantomData<B>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for HostSquares<'_, B::InnerBackend> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
            let values = crate::tensors::read(g);
            self.total += values.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>();
        }
    }
}

/// Multiplies every gradient by one number.
struct ScaleBy<'a, B: Backend> {
    grads: &'a mut GradientsParams,
    factor: f32,
    _backend: std::marker::PhantomData<B>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for ScaleBy<'_, B::InnerBackend> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.remove::<B::InnerBackend, D>(param.id) {
            self.grads.register(param.id, g.mul_scalar(self.factor));
        }
    }
}

struct ParamSquares<B: Backend> {
    total: Option<Tensor<B, 1>>,
}

impl<B: Backend> ModuleVisitor<B> for ParamSquares<B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let sq = param.val().square().sum();
        self.total = Some(match self.total.take() {
            Some(total) => total + sq,
            None => sq,
        });
    }
}

/// The L2 norm of all of `module`'s float parameters together, on the device, `[1]`: NaN or
/// infinite as soon as one parameter is.
pub fn parameter_norm_tensor<B: Backend, M: burn::module::Module<B>>(
    module: &M,
    device: &B::Device,
) -> Tensor<B, 1> {
    let mut visitor = ParamSquares::<B> { total: None };
    module.visit(&mut visitor);
    match visitor.total {
        Some(total) => total.sqrt(),
        None => Tensor::zeros([1], device),
    }
}

/// The L2 norm of all of `module`'s float parameters together (read back once): NaN or
/// infinite as soon as one parameter is.
pub fn parameter_norm<B: Backend, M: burn::module::Module<B>>(
    module: &M,
    device: &B::Device,
) -> f32 {
    parameter_norm_tensor(module, device)
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .map_or(f32::NAN, |v| v.first().copied().unwrap_or(f32::NAN))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::ActorCriticConfig;
    use burn::backend::{Autodiff, NdArray};
    use burn::module::Module;

    type AB = Autodiff<NdArray<f32>>;

    fn grads_of(model: &crate::policy::ActorCritic<AB>, scale: f32) -> GradientsParams {
        let obs = Tensor::<AB, 2>::ones([3, 4], &Default::default());
        let loss = model.value(obs.clone()).sum().mul_scalar(scale)
            + model.distribution(obs).entropy().sum();
        GradientsParams::from_grads(loss.backward(), model)
    }

    /// The norm computed by hand: every gradient tensor read back and squared.
    fn norm_by_hand(model: &crate::policy::ActorCritic<AB>, grads: &GradientsParams) -> f32 {
        struct Collect<'a>(&'a GradientsParams, f64);
        impl ModuleVisitor<AB> for Collect<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<AB, D>>) {
                if let Some(g) = self.0.get::<NdArray<f32>, D>(param.id) {
                    let v: Vec<f32> = g.into_data().to_vec().unwrap();
                    self.1 += v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>();
                }
            }
        }
        let mut c = Collect(grads, 0.0);
        model.visit(&mut c);
        c.1.sqrt() as f32
    }

    type Clip = fn(
        &crate::policy::ActorCritic<AB>,
        GradientsParams,
        f32,
        &burn::tensor::Device<AB>,
    ) -> (GradientsParams, Tensor<NdArray<f32>, 1>);

    /// Both ways of clipping (tensor operations; host sums), whichever `clip_grad_norm` takes
    /// in this test binary (other tests install the host kernels for ndarray).
    const CLIPS: [(&str, Clip); 2] = [
        ("device", clip_grad_norm_on_device::<AB, _>),
        ("host", clip_grad_norm_on_host::<AB, _>),
    ];

    #[test]
    fn clipping_is_global_and_only_shrinks() {
        let model = ActorCriticConfig::new(4, 2)
            .init::<AB>(&Default::default())
            .unwrap();
        for (name, clip) in CLIPS {
            let grads = grads_of(&model, 100.0);
            let before = norm_by_hand(&model, &grads);
            assert!(before > 1.0);
            let (clipped, norm) = clip(&model, grads, 0.5, &Default::default());
            let norm = norm.into_data().to_vec::<f32>().unwrap()[0];
            assert!((norm - before).abs() / before < 1e-5, "{name}");
            let after = norm_by_hand(&model, &clipped);
            assert!((after - 0.5).abs() < 1e-4, "{name}: {after}");

            let small = grads_of(&model, 1e-4);
            let small_norm = norm_by_hand(&model, &small);
            let (unchanged, _) = clip(&model, small, 1e3, &Default::default());
            assert!(
                (norm_by_hand(&model, &unchanged) - small_norm).abs() < 1e-9,
                "{name}"
            );
        }
    }

    /// A NaN gradient gives a NaN norm and NaN gradients either way (the learners' checks
    /// report it); an infinite `max_norm` measures without scaling.
    #[test]
    fn a_nan_gradient_spreads_and_infinity_only_measures() {
        let model = ActorCriticConfig::new(4, 2)
            .init::<AB>(&Default::default())
            .unwrap();
        for (name, clip) in CLIPS {
            let (nan, norm) = clip(&model, grads_of(&model, f32::NAN), 0.5, &Default::default());
            assert!(
                norm.into_data().to_vec::<f32>().unwrap()[0].is_nan(),
                "{name}"
            );
            assert!(norm_by_hand(&model, &nan).is_nan(), "{name}");
            let grads = grads_of(&model, 100.0);
            let before = norm_by_hand(&model, &grads);
            let (same, _) = clip(&model, grads, f32::INFINITY, &Default::default());
            assert_eq!(norm_by_hand(&model, &same), before, "{name}");
        }
    }
}
