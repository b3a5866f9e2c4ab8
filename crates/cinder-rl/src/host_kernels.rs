//! Host kernels: the policy's `tanh`, a categorical's log-softmax and entropy as fused
//! operations on backends whose tensors live in host memory (flex, ndarray).
//!
//! [`crate::policy::tanh`] builds `tanh` out of Burn operations (`exp`, a reciprocal, three
//! scalar ops and a clamp), so that it runs on every backend. On an eager CPU backend each of
//! those is a pass over memory with its own allocation and autodiff node, forward and backward:
//! about 16 operations per hidden layer, a third of a PPO minibatch update at CleanRL's sizes.
//! Here `tanh` is one pass over the pre-activations, in place, which also writes the
//! derivative `1 − tanh²` the backward pass multiplies the incoming gradient by (one
//! operation). The pass computes [`tanh_f32`], built without libm calls so that the compiler
//! vectorises it (with AVX2 where the CPU has it, to the same bits). Likewise a
//! [`crate::distributions::Categorical`]'s log-softmax (about six operations) and entropy
//! (five) are one pass and one autodiff node each, and [`install`] also enables the other
//! host path of the same kind, PPO's loss ([`crate::host_loss`]);
//! [`install_host_optimizer`] moves Adam's step ([`crate::adam`]) and the gradient norm
//! ([`crate::gradients::clip_grad_norm`]) to the host as well.
//!
//! Kernels are installed per backend, by whoever chooses the backend ([`install`]; the
//! `cinder` facade installs them for its CPU backends). A backend without them, or a tensor
//! that is not `f32`, takes the composite path: results differ by float32 rounding only
//! (~1e-7).
//!
//! ```
//! use burn::backend::{Autodiff, NdArray};
//! use burn::tensor::{Tensor, TensorData};
//!
//! cinder_rl::host_kernels::install::<NdArray>();
//! assert!(cinder_rl::host_kernels::installed::<Autodiff<NdArray>>());
//! let data = TensorData::new(vec![0.5f32, -2.0], [1, 2]);
//! let x = Tensor::<Autodiff<NdArray>, 2>::from_data(data, &Default::default()).require_grad();
//! let y = cinder_rl::policy::tanh(x.clone());
//! let grads = y.sum().backward();
//! let dx: Vec<f32> = x.grad(&grads).unwrap().into_data().to_vec().unwrap();
//! assert!((dx[0] - (1.0 - 0.5f32.tanh().powi(2))).abs() < 1e-6);
//! ```

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorData, TensorMetadata, TensorPrimitive, try_read_sync};
use std::any::{Any, TypeId};
use std::sync::RwLock;

/// `tanh(x)` in `f32`, vectorisable: the odd Taylor series to `x⁹` for `|x| < 0.25` (relative
/// error below 1e-8), `1 − 2/(e^{2x} + 1)` with [`exp_f32`] above, `±1` past `|x| = 10` (where
/// `tanh` rounds to `±1` in `f32`); NaN stays NaN. Within 2.5e-7 of the exact value everywhere.
#[inline]
pub fn tanh_f32(x: f32) -> f32 {
    let xc = x.clamp(-10.0, 10.0);
    let e = exp_f32(2.0 * xc);
    let far = 1.0 - 2.0 / (e + 1.0);
    let x2 = x * x;
    // x − x³/3 + 2x⁵/15 − 17x⁷/315 + 62x⁹/2835
    let near = x
        * (1.0
            + x2 * (-1.0 / 3.0 + x2 * (2.0 / 15.0 + x2 * (-17.0 / 315.0 + x2 * (62.0 / 2835.0)))));
    if x2 < 0.0625 { near } else { far }
}

/// `eˣ` in `f32` for `|x| ≤ 87`, vectorisable (no libm call): `x = n·ln 2 + r` with
/// `|r| ≤ ln 2 / 2` (Cody–Waite: `ln 2` split in two so that `n·ln 2` is exact), `eʳ` by its
/// Taylor series to `r⁷` (truncation below 1.1e-8 relative), times `2ⁿ` built from its bits.
/// Relative error ~2 ulp. NaN stays NaN.
#[inline]
pub fn exp_f32(x: f32) -> f32 {
    // 1.5 · 2²³: adding and subtracting it rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    const LN2_HI: f32 = 0.693_359_4; // 355/512, exact in 9 bits
    const LN2_LO: f32 = -2.121_944_4e-4;
    let shifted = x * std::f32::consts::LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (1.0 / 2.0
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    // `shifted`'s low mantissa bits hold n + 2²² (integer arithmetic, no float-to-int
    // conversion, which does not vectorise): 2ⁿ's exponent field is n + 127.
    let biased = shifted
        .to_bits()
        .wrapping_sub(ROUND.to_bits())
        .wrapping_add(127);
    let scale = f32::from_bits(biased << 23);
    p * scale
}

/// `values ← tanh(values)` by [`tanh_f32`]: with AVX2 where the CPU has it (the same
/// operations in wider registers, so the same results: Rust does not fuse multiply-adds).
pub fn tanh_in_place(values: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        unsafe { avx2::tanh_in_place(values) };
        return;
    }
    portable::tanh_in_place(values);
}

/// `values ← tanh(values)` and `1 − tanh²(values)` returned beside them (as
/// [`tanh_in_place`]).
pub fn tanh_and_derivative(values: &mut [f32]) -> Vec<f32> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { avx2::tanh_and_derivative(values) };
    }
    portable::tanh_and_derivative(values)
}

/// The loops, written once, inlined into each instruction set's copy.
mod portable {
    use super::tanh_f32;

    // Plain `for` loops over slices: the compiler vectorises them where they are inlined (a
    // `push` loop, or an iterator adapter's `fold` compiled on its own, stays scalar).

    #[inline(always)]
    pub(super) fn tanh_in_place(values: &mut [f32]) {
        for v in values.iter_mut() {
            *v = tanh_f32(*v);
        }
    }

    #[inline(always)]
    pub(super) fn tanh_and_derivative(values: &mut [f32]) -> Vec<f32> {
        let mut derivative = vec![0.0f32; values.len()];
        for (v, d) in values.iter_mut().zip(derivative.iter_mut()) {
            let y = tanh_f32(*v);
            *v = y;
            *d = 1.0 - y * y;
        }
        derivative
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    #[target_feature(enable = "avx2")]
    pub(super) fn tanh_in_place(values: &mut [f32]) {
        super::portable::tanh_in_place(values)
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn tanh_and_derivative(values: &mut [f32]) -> Vec<f32> {
        super::portable::tanh_and_derivative(values)
    }
}

/// Whether kernels are installed for backend `B` (as [`crate::policy::tanh`] sees it).
pub fn installed<B: Backend>() -> bool {
    lookup::<B, 2>().is_some()
}

/// Installs the host kernels for backend `B` and for `Autodiff<B>`: [`crate::policy::tanh`] on
/// their two-dimensional tensors (every hidden layer of [`crate::policy::Mlp`]), a
/// [`crate::distributions::Categorical`]'s log-softmax and entropy, and PPO's loss
/// ([`crate::host_loss`]) each become one fused operation. Only for backends whose tensors live in host memory (flex, ndarray): on a
/// GPU backend every call would read its tensor back and upload the result. Installing twice
/// is harmless; there is no uninstall (the kernels compute what the composite computes).
pub fn install<B: Backend>() {
    register::<B, 2>(tanh_forward::<B, 2> as fn(Tensor<B, 2>) -> Tensor<B, 2>);
    register::<Autodiff<B>, 2>(
        tanh_autodiff::<B, 2> as fn(Tensor<Autodiff<B>, 2>) -> Tensor<Autodiff<B>, 2>,
    );
    register_kernel(LogSoftmaxKernel::<B>(log_softmax_forward::<B>));
    register_kernel(LogSoftmaxKernel::<Autodiff<B>>(log_softmax_autodiff::<B>));
    register_kernel(EntropyKernel::<B>(entropy_forward::<B>));
    register_kernel(EntropyKernel::<Autodiff<B>>(entropy_autodiff::<B>));
    crate::host_loss::install::<B>();
}

/// Marks backend `B` for host-side optimisation steps: [`crate::adam::FusedAdam`]'s step and
/// [`crate::gradients::clip_grad_norm`]'s norm read each parameter, gradient and moment into
/// host memory once per step. That pays where the read is a move or a plain copy (flex) and
/// not where a shared tensor is read element by element (ndarray reads a shared array through
/// its iterator: 0.2 ms per step for Adam at CleanRL's sizes against 0.04 ms in tensor
/// operations), so it is separate from [`install`]. Installing twice is harmless.
pub fn install_host_optimizer<B: Backend>() {
    register_kernel(HostOptimizer::<B>(std::marker::PhantomData));
}

/// Whether [`install_host_optimizer`] was called for backend `B`.
pub fn host_optimizer_installed<B: Backend>() -> bool {
    lookup_kernel::<HostOptimizer<B>>().is_some()
}

/// The registry's marker for [`install_host_optimizer`].
struct HostOptimizer<B: Backend>(std::marker::PhantomData<fn() -> B>);

impl<B: Backend> Clone for HostOptimizer<B> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<B: Backend> Copy for HostOptimizer<B> {}

/// `tanh(x)` by an installed kernel, or `Err(x)` (untouched) when `B` has none for rank `D`.
pub(crate) fn try_tanh<B: Backend, const D: usize>(
    x: Tensor<B, D>,
) -> Result<Tensor<B, D>, Tensor<B, D>> {
    match lookup::<B, D>() {
        Some(kernel) => Ok(kernel(x)),
        None => Err(x),
    }
}

type Registry = RwLock<Vec<(TypeId, Box<dyn Any + Send + Sync>)>>;

/// Kernels by their type: a function pointer type names its backend (`fn(Tensor<B, D>) ->
/// Tensor<B, D>` is one type per `B` and `D`), so it is its own key.
static KERNELS: Registry = RwLock::new(Vec::new());

/// Registers `kernel` under its type (once; a second registration of the type is ignored).
pub(crate) fn register_kernel<F: Copy + Send + Sync + 'static>(kernel: F) {
    let key = TypeId::of::<F>();
    let mut kernels = KERNELS.write().unwrap_or_else(|e| e.into_inner());
    if !kernels.iter().any(|(k, _)| *k == key) {
        kernels.push((key, Box::new(kernel)));
    }
}

/// The kernel registered under type `F`, if any.
pub(crate) fn lookup_kernel<F: Copy + Send + Sync + 'static>() -> Option<F> {
    let key = TypeId::of::<F>();
    let kernels = KERNELS.read().unwrap_or_else(|e| e.into_inner());
    kernels
        .iter()
        .find(|(k, _)| *k == key)
        .and_then(|(_, kernel)| kernel.downcast_ref::<F>())
        .copied()
}

fn register<B: Backend, const D: usize>(kernel: fn(Tensor<B, D>) -> Tensor<B, D>) {
    register_kernel(kernel);
}

fn lookup<B: Backend, const D: usize>() -> Option<fn(Tensor<B, D>) -> Tensor<B, D>> {
    lookup_kernel::<fn(Tensor<B, D>) -> Tensor<B, D>>()
}

/// A host backend's `f32` tensor primitive as a vector (without a copy where the backend hands
/// its buffer over: flex does when the tensor is not shared); `None` if it cannot be read or is
/// not `f32`.
pub(crate) fn host_vec<B: Backend>(x: B::FloatTensorPrimitive) -> Option<Vec<f32>> {
    try_read_sync(B::float_into_data(x))
        .and_then(Result::ok)
        .and_then(|data| data.into_vec::<f32>().ok())
}

/// `tanh` of a host backend's `f32` tensor, on the host, in place (without a copy when the
/// backend hands its buffer over: flex does when the tensor is not shared), and `1 − tanh²`
/// beside it when `with_derivative`. A tensor that cannot be read (never on a host backend)
/// gives NaN, which the learners' loss checks report as an error, rather than a panic here.
fn host_tanh<B: Backend>(
    x: B::FloatTensorPrimitive,
    with_derivative: bool,
) -> (TensorData, Option<Vec<f32>>) {
    let shape = x.shape();
    if let Some(mut data) = try_read_sync(B::float_into_data(x)).and_then(Result::ok) {
        let derivative = match data.as_mut_slice::<f32>() {
            Ok(values) if with_derivative => Some(Some(tanh_and_derivative(values))),
            Ok(values) => {
                tanh_in_place(values);
                Some(None)
            }
            Err(_) => None,
        };
        if let Some(derivative) = derivative {
            return (data, derivative);
        }
    }
    let nan = vec![f32::NAN; shape.num_elements()];
    (
        TensorData::new(nan.clone(), shape),
        with_derivative.then_some(nan),
    )
}

/// [`host_tanh`] without the derivative, back on the backend.
fn tanh_values<B: Backend>(x: B::FloatTensorPrimitive) -> B::FloatTensorPrimitive {
    let device = B::float_device(&x);
    let (data, _) = host_tanh::<B>(x, false);
    B::float_from_data(data, &device)
}

/// `tanh` on a backend without autodiff (rollout inference): in place on the host.
fn tanh_forward<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    if x.dtype() != DType::F32 {
        return crate::policy::tanh_by_exp(x);
    }
    match x.into_primitive() {
        TensorPrimitive::Float(x) => {
            Tensor::from_primitive(TensorPrimitive::Float(tanh_values::<B>(x)))
        }
        quantized => crate::policy::tanh_by_exp(Tensor::from_primitive(quantized)),
    }
}

/// The fused `tanh`'s backward step: the incoming gradient times `1 − tanh²(x)`, which the
/// forward pass left as its state (a tensor of the inner backend).
#[derive(Debug)]
struct FusedTanh;

impl<B: Backend> Backward<B, 1> for FusedTanh {
    type State = B::FloatTensorPrimitive;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let derivative = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |grad| {
            B::float_mul(grad, derivative)
        });
    }
}

/// `tanh` on `Autodiff<B>`: one pass that writes `tanh(x)` over `x` and, when a gradient will
/// flow, `1 − tanh²(x)` beside it; one node in the graph, one multiplication backward.
fn tanh_autodiff<B: Backend, const D: usize>(x: Tensor<Autodiff<B>, D>) -> Tensor<Autodiff<B>, D> {
    if x.dtype() != DType::F32 {
        return crate::policy::tanh_by_exp(x);
    }
    let x = match x.into_primitive() {
        TensorPrimitive::Float(x) => x,
        quantized => return crate::policy::tanh_by_exp(Tensor::from_primitive(quantized)),
    };
    let device = B::float_device(&x.primitive);
    let prep = FusedTanh
        .prepare::<NoCheckpointing>([x.node.clone()])
        .compute_bound()
        .stateful();
    let out = match prep {
        OpsKind::Tracked(prep) => {
            let (data, derivative) = host_tanh::<B>(x.primitive, true);
            let shape = data.shape.clone();
            let derivative = TensorData::new(derivative.unwrap_or_default(), shape);
            prep.finish(
                B::float_from_data(derivative, &device),
                B::float_from_data(data, &device),
            )
        }
        OpsKind::UnTracked(prep) => prep.finish(tanh_values::<B>(x.primitive)),
    };
    Tensor::from_primitive(TensorPrimitive::Float(out))
}

// --- A categorical's log-softmax and entropy -------------------------------------------------

/// `x − max − ln Σ exp(x − max)` over one row, in place: the log-probabilities of a row of
/// logits (the host copy's and the fused operation's formula).
pub(crate) fn log_softmax_row(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = row.iter().map(|&x| (x - max).exp()).sum();
    let log_sum = sum.ln();
    row.iter_mut().for_each(|x| *x = *x - max - log_sum);
}

/// `−Σ exp(l)·l` of one row of log-probabilities.
fn entropy_row(row: &[f32]) -> f32 {
    -row.iter().map(|&l| l.exp() * l).sum::<f32>()
}

/// The log-softmax kernel of backend `B` (its own type: its signature is `tanh`'s).
struct LogSoftmaxKernel<B: Backend>(fn(Tensor<B, 2>) -> Tensor<B, 2>);

impl<B: Backend> Clone for LogSoftmaxKernel<B> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<B: Backend> Copy for LogSoftmaxKernel<B> {}

/// The categorical-entropy kernel of backend `B`.
struct EntropyKernel<B: Backend>(fn(Tensor<B, 2>) -> Tensor<B, 1>);

impl<B: Backend> Clone for EntropyKernel<B> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<B: Backend> Copy for EntropyKernel<B> {}

/// The log-softmax of each row of `logits` (`[batch, n]`), by the installed kernel or Burn's
/// `log_softmax`.
pub(crate) fn log_softmax<B: Backend>(logits: Tensor<B, 2>) -> Tensor<B, 2> {
    match lookup_kernel::<LogSoftmaxKernel<B>>() {
        Some(kernel) if logits.dtype() == DType::F32 => (kernel.0)(logits),
        _ => burn::tensor::activation::log_softmax(logits, 1),
    }
}

/// The entropy `−Σ p log p` of each row of `log_probs` (`[batch, n]`), `[batch]`, by the
/// installed kernel or tensor operations.
pub(crate) fn categorical_entropy<B: Backend>(log_probs: Tensor<B, 2>) -> Tensor<B, 1> {
    match lookup_kernel::<EntropyKernel<B>>() {
        Some(kernel) if log_probs.dtype() == DType::F32 => (kernel.0)(log_probs),
        _ => (log_probs.clone().exp() * log_probs)
            .sum_dim(1)
            .squeeze_dim::<1>(1)
            .neg(),
    }
}

/// Reads a host backend's `f32` tensor (NaN where it cannot be read: never on a host backend,
/// and the learners' checks report it), applies `f` to its values, and gives `f`'s output of
/// `shape` back on the device.
fn on_host<B: Backend>(
    x: B::FloatTensorPrimitive,
    shape: Vec<usize>,
    f: impl FnOnce(Vec<f32>) -> Vec<f32>,
) -> B::FloatTensorPrimitive {
    let device = B::float_device(&x);
    let n = x.shape().num_elements();
    let values = host_vec::<B>(x)
        .filter(|v| v.len() == n)
        .unwrap_or_else(|| vec![f32::NAN; n]);
    B::float_from_data(TensorData::new(f(values), shape), &device)
}

fn host_log_softmax<B: Backend>(x: B::FloatTensorPrimitive, k: usize) -> B::FloatTensorPrimitive {
    let shape = x.shape().to_vec();
    on_host::<B>(x, shape, |mut values| {
        values.chunks_exact_mut(k.max(1)).for_each(log_softmax_row);
        values
    })
}

fn host_entropy<B: Backend>(x: B::FloatTensorPrimitive, k: usize) -> B::FloatTensorPrimitive {
    let rows = x.shape().num_elements() / k.max(1);
    on_host::<B>(x, vec![rows], |values| {
        values.chunks_exact(k.max(1)).map(entropy_row).collect()
    })
}

fn log_softmax_forward<B: Backend>(logits: Tensor<B, 2>) -> Tensor<B, 2> {
    let [_, k] = logits.dims();
    match logits.into_primitive() {
        TensorPrimitive::Float(x) => {
            Tensor::from_primitive(TensorPrimitive::Float(host_log_softmax::<B>(x, k)))
        }
        quantized => burn::tensor::activation::log_softmax(Tensor::from_primitive(quantized), 1),
    }
}

fn entropy_forward<B: Backend>(log_probs: Tensor<B, 2>) -> Tensor<B, 1> {
    let [_, k] = log_probs.dims();
    match log_probs.into_primitive() {
        TensorPrimitive::Float(x) => {
            Tensor::from_primitive(TensorPrimitive::Float(host_entropy::<B>(x, k)))
        }
        quantized => {
            let log_probs = Tensor::<B, 2>::from_primitive(quantized);
            (log_probs.clone().exp() * log_probs)
                .sum_dim(1)
                .squeeze_dim::<1>(1)
                .neg()
        }
    }
}

/// The fused log-softmax's backward step: `∂x = g − softmax(x) · Σ g` per row, from the
/// log-probabilities the forward pass kept (and the row width).
#[derive(Debug)]
struct FusedLogSoftmax;

impl<B: Backend> Backward<B, 1> for FusedLogSoftmax {
    type State = (B::FloatTensorPrimitive, usize);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (log_probs, k) = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |grad| {
            let lp = host_vec::<B>(log_probs);
            let shape = grad.shape().to_vec();
            on_host::<B>(grad, shape, |mut g| match lp {
                Some(lp) if lp.len() == g.len() => {
                    for (g, lp) in g.chunks_exact_mut(k.max(1)).zip(lp.chunks_exact(k.max(1))) {
                        let total: f32 = g.iter().sum();
                        g.iter_mut()
                            .zip(lp)
                            .for_each(|(g, l)| *g -= l.exp() * total);
                    }
                    g
                }
                _ => vec![f32::NAN; g.len()],
            })
        });
    }
}

/// The fused entropy's backward step: `∂l_j = −g · exp(l_j) · (l_j + 1)` for each row's
/// log-probabilities `l`, kept by the forward pass (with the row width).
#[derive(Debug)]
struct FusedEntropy;

impl<B: Backend> Backward<B, 1> for FusedEntropy {
    type State = (B::FloatTensorPrimitive, usize);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (log_probs, k) = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |grad| {
            let shape = log_probs.shape().to_vec();
            let g = host_vec::<B>(grad);
            on_host::<B>(log_probs, shape, |mut lp| match g {
                Some(g) if g.len() * k.max(1) == lp.len() => {
                    for (row, g) in lp.chunks_exact_mut(k.max(1)).zip(g) {
                        row.iter_mut().for_each(|l| *l = -g * l.exp() * (*l + 1.0));
                    }
                    lp
                }
                _ => vec![f32::NAN; lp.len()],
            })
        });
    }
}

/// Log-softmax on `Autodiff<B>`: one host pass, one node.
fn log_softmax_autodiff<B: Backend>(logits: Tensor<Autodiff<B>, 2>) -> Tensor<Autodiff<B>, 2> {
    let [_, k] = logits.dims();
    let x = match logits.into_primitive() {
        TensorPrimitive::Float(x) => x,
        quantized => {
            return burn::tensor::activation::log_softmax(Tensor::from_primitive(quantized), 1);
        }
    };
    let out = host_log_softmax::<B>(x.primitive, k);
    let prep = FusedLogSoftmax
        .prepare::<NoCheckpointing>([x.node])
        .compute_bound()
        .stateful();
    let out = match prep {
        OpsKind::Tracked(prep) => prep.finish((out.clone(), k), out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Tensor::from_primitive(TensorPrimitive::Float(out))
}

/// A categorical's entropy on `Autodiff<B>`: one host pass, one node.
fn entropy_autodiff<B: Backend>(log_probs: Tensor<Autodiff<B>, 2>) -> Tensor<Autodiff<B>, 1> {
    let [_, k] = log_probs.dims();
    let x = match log_probs.into_primitive() {
        TensorPrimitive::Float(x) => x,
        quantized => {
            let log_probs = Tensor::<Autodiff<B>, 2>::from_primitive(quantized);
            return (log_probs.clone().exp() * log_probs)
                .sum_dim(1)
                .squeeze_dim::<1>(1)
                .neg();
        }
    };
    let out = host_entropy::<B>(x.primitive.clone(), k);
    let prep = FusedEntropy
        .prepare::<NoCheckpointing>([x.node])
        .compute_bound()
        .stateful();
    let out = match prep {
        OpsKind::Tracked(prep) => prep.finish((x.primitive, k), out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Tensor::from_primitive(TensorPrimitive::Float(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    type B = NdArray<f32>;
    type AB = Autodiff<B>;

    /// Every 1/1024 over ±12 (past the clamp at ±10), plus the edges.
    fn grid() -> Vec<f32> {
        let mut xs: Vec<f32> = (-12 * 1024..=12 * 1024)
            .map(|i| i as f32 / 1024.0)
            .collect();
        xs.extend([
            1e-30,
            -1e-30,
            1e-6,
            -1e-6,
            0.249_999_98,
            0.25,
            -0.25,
            9.999_999,
            10.0,
            10.000_001,
            1e4,
            -1e4,
            3e38,
            -3e38,
        ]);
        xs
    }

    #[test]
    fn tanh_f32_is_within_2_5e_7_of_tanh() {
        for x in grid() {
            let exact = f64::from(x).tanh();
            let y = f64::from(tanh_f32(x));
            assert!(
                (y - exact).abs() <= 2.5e-7,
                "tanh_f32({x}) = {y}, not {exact}"
            );
            if x.abs() < 0.25 && x != 0.0 {
                assert!(
                    ((y - exact) / exact).abs() <= 4e-7,
                    "tanh_f32({x}) = {y}: relative error against {exact}"
                );
            }
        }
        assert_eq!(tanh_f32(0.0), 0.0);
        assert_eq!(tanh_f32(f32::INFINITY), 1.0);
        assert_eq!(tanh_f32(f32::NEG_INFINITY), -1.0);
        assert!(tanh_f32(f32::NAN).is_nan());
    }

    #[test]
    fn exp_f32_is_within_3e_7_relative_of_exp() {
        for i in -87 * 256..=87 * 256 {
            let x = i as f32 / 256.0 + 1.0 / 1024.0;
            let exact = f64::from(x).exp();
            let e = f64::from(exp_f32(x));
            assert!(
                ((e - exact) / exact).abs() <= 3e-7,
                "exp_f32({x}) = {e}, not {exact}"
            );
        }
        assert_eq!(exp_f32(0.0), 1.0);
        assert!(exp_f32(f32::NAN).is_nan());
    }

    fn tensor<Bk: Backend>(xs: &[f32], rows: usize) -> Tensor<Bk, 2> {
        Tensor::from_data(
            TensorData::new(xs.to_vec(), [rows, xs.len() / rows]),
            &Default::default(),
        )
    }

    fn values<Bk: Backend, const D: usize>(t: Tensor<Bk, D>) -> Vec<f32> {
        t.into_data().to_vec().unwrap()
    }

    /// With the kernels installed, `policy::tanh` gives `tanh_f32` bit for bit, forward with and
    /// without autodiff, and the gradient `upstream · (1 − tanh²)`: the composite's to 1e-5,
    /// through a graph where the output has two consumers and the input a second use.
    #[test]
    fn the_fused_tanh_computes_what_the_composite_computes() {
        install::<B>();
        assert!(installed::<B>() && installed::<AB>());
        let xs: Vec<f32> = grid().into_iter().step_by(97).collect();
        let rows = 3;
        let xs = &xs[..xs.len() / rows * rows];
        let expected: Vec<f32> = xs.iter().map(|&x| tanh_f32(x)).collect();
        assert_eq!(values(crate::policy::tanh(tensor::<B>(xs, rows))), expected);

        let weights: Vec<f32> = (0..xs.len()).map(|i| (i % 7) as f32 - 3.0).collect();
        let gradient = |fused: bool| {
            let x = tensor::<AB>(xs, rows).require_grad();
            let w = tensor::<AB>(&weights, rows);
            let y = if fused {
                crate::policy::tanh(x.clone())
            } else {
                crate::policy::tanh_by_exp(x.clone())
            };
            // Two consumers of y, and x used again beside it.
            let loss = (y.clone() * w).sum() + (y.clone() * y.clone()).sum() + x.clone().sum();
            let grads = loss.backward();
            (values(y), values(x.grad(&grads).unwrap()))
        };
        let (y_fused, g_fused) = gradient(true);
        let (y_composite, g_composite) = gradient(false);
        assert_eq!(y_fused, expected);
        for ((&a, &b), &x) in g_fused.iter().zip(&g_composite).zip(xs) {
            assert!(
                (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                "d/dx at {x}: {a} vs {b}"
            );
        }
        for (a, b) in y_fused.iter().zip(&y_composite) {
            assert!((a - b).abs() <= 5e-7, "{a} vs {b}");
        }
        // Untracked: no gradient wanted, the same values.
        assert_eq!(
            values(crate::policy::tanh(tensor::<AB>(xs, rows))),
            expected
        );
    }

    /// The AVX2 copies of the loops give the portable loops' bits.
    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        let xs = grid();
        let mut portable_y = xs.clone();
        let portable_d = portable::tanh_and_derivative(&mut portable_y);
        let mut y = xs.clone();
        let d = tanh_and_derivative(&mut y);
        let mut in_place = xs.clone();
        tanh_in_place(&mut in_place);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&y), bits(&portable_y));
        assert_eq!(bits(&d), bits(&portable_d));
        assert_eq!(bits(&in_place), bits(&portable_y));
        let scalar: Vec<f32> = xs.iter().map(|&x| tanh_f32(x)).collect();
        assert_eq!(bits(&scalar), bits(&y));
    }

    /// A backend without installed kernels, and tensors of another rank, take the composite.
    #[test]
    fn without_kernels_tanh_is_the_composite() {
        type Nested = Autodiff<Autodiff<B>>;
        assert!(!installed::<Nested>());
        let xs = [0.5f32, -1.5, 3.0, 0.1];
        let composite = values(crate::policy::tanh_by_exp(tensor::<Nested>(&xs, 2)));
        assert_eq!(
            values(crate::policy::tanh(tensor::<Nested>(&xs, 2))),
            composite
        );
        install::<B>();
        let one_d = |f: fn(Tensor<B, 1>) -> Tensor<B, 1>| {
            values(f(Tensor::from_data(
                TensorData::new(xs.to_vec(), [4]),
                &Default::default(),
            )))
        };
        assert_eq!(
            one_d(crate::policy::tanh),
            one_d(crate::policy::tanh_by_exp)
        );
    }

    /// The fused log-softmax and entropy against Burn's `log_softmax` and the tensor-op
    /// entropy: values, and the gradient of the logits through a loss that weighs every
    /// log-probability and entropy differently (so that both backward steps and their sum
    /// into one parent are checked).
    #[test]
    fn fused_log_softmax_and_entropy_match_the_tensor_ops() {
        let device = Default::default();
        let (rows, k) = (7, 3);
        let wave = |n: usize, a: f32, f: f32| -> Vec<f32> {
            (0..n).map(|i| a * (f * i as f32 + 0.3).sin()).collect()
        };
        let logits = wave(rows * k, 4.0, 1.7);
        let weights_lp = Tensor::<AB, 2>::from_data(
            TensorData::new(wave(rows * k, 1.0, 0.9), [rows, k]),
            &device,
        );
        let weights_h =
            Tensor::<AB, 1>::from_data(TensorData::new(wave(rows, 2.0, 2.3), [rows]), &device);
        let run = |fused: bool| {
            let x = Tensor::<AB, 2>::from_data(TensorData::new(logits.clone(), [rows, k]), &device)
                .require_grad();
            let (lp, h) = if fused {
                let lp = log_softmax_autodiff::<B>(x.clone());
                (lp.clone(), entropy_autodiff::<B>(lp))
            } else {
                let lp = burn::tensor::activation::log_softmax(x.clone(), 1);
                let h = (lp.clone().exp() * lp.clone())
                    .sum_dim(1)
                    .squeeze_dim::<1>(1)
                    .neg();
                (lp, h)
            };
            let loss =
                (lp.clone() * weights_lp.clone()).sum() + (h.clone() * weights_h.clone()).sum();
            let grads = loss.backward();
            let values = |t: Tensor<B, 2>| -> Vec<f32> { t.into_data().to_vec().unwrap() };
            (
                values(lp.inner()),
                h.inner().into_data().to_vec::<f32>().unwrap(),
                values(x.grad(&grads).unwrap()),
            )
        };
        let (lp_a, h_a, g_a) = run(false);
        let (lp_b, h_b, g_b) = run(true);
        for (name, a, b) in [
            ("log-probs", lp_a, lp_b),
            ("entropy", h_a, h_b),
            ("gradient", g_a, g_b),
        ] {
            for (x, y) in a.iter().zip(&b) {
                assert!(
                    (x - y).abs() <= 1e-5 * (1.0 + x.abs()),
                    "{name}: {a:?} vs {b:?}"
                );
            }
        }
    }

    /// With the kernels installed, a categorical built from logits gives rows that sum to one
    /// and the entropy of a uniform row is ln n.
    #[test]
    fn an_installed_categorical_normalises() {
        install::<B>();
        let device = Default::default();
        let logits = Tensor::<AB, 2>::from_data(
            TensorData::new(vec![0.0f32, 0.0, 0.0, 0.0, 5.0, -3.0, 1.0, 2.0], [2, 4]),
            &device,
        );
        let c = crate::distributions::Categorical::from_logits(logits);
        let p: Vec<f32> = c.probs().into_data().to_vec().unwrap();
        assert!((p[..4].iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!((p[4..].iter().sum::<f32>() - 1.0).abs() < 1e-6);
        let h: Vec<f32> = c.entropy().into_data().to_vec().unwrap();
        assert!((h[0] - 4f32.ln()).abs() < 1e-6, "{h:?}");
    }
}
