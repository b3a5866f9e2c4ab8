//! The pieces of a trust-region policy step (Schulman et al. 2015, as Stable-Baselines3-contrib's
//! `TRPO` computes it), over the actor's flat parameter vector θ ([`ActorLayout`]):
//!
//! - [`surrogate_and_gradient`]: `L(θ) = mean(Â · π_θ(a|s) / π_old(a|s))` and its gradient `g`;
//! - [`fisher_vector_product`]: `F v`, the Hessian of `mean_s KL(π_θ(·|s) ‖ π_old(·|s))` at
//!   `θ = θ_old` times `v` — exactly, by differentiating the KL's gradient again on a nested
//!   autodiff backend (`Autodiff<B>`, [`FisherProduct::Exact`]), or by a central difference of
//!   KL gradients ([`FisherProduct::FiniteDifference`]) on backends where nesting fails;
//! - [`conjugate_gradient`]: `s ≈ (F + λI)⁻¹ g` from products alone;
//! - [`line_search`]: backtracking from the largest step `sqrt(2δ / sᵀ(F + λI)s) · s` that the
//!   quadratic model allows, accepting the first step whose exact mean KL is below δ and whose
//!   surrogate improves.
//!
//! Host vectors (`&[f32]`) go in and out: the solver's arithmetic is a few thousand floats, done
//! in `f64` on the host; the products run on the device.

use crate::distributions::{Categorical, DiagGaussian};
use crate::error::{Result, RlError};
use crate::policy::{Actions, ActorLayout, PolicyDistribution};
use crate::tensors::{indices1, read, tensor1, tensor2};
use burn::backend::Autodiff;
use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};
use serde::{Deserialize, Serialize};

/// How [`fisher_vector_product`] computes `F v`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FisherProduct {
    /// `∇_θ (∇_θ KL · v)` by nested reverse-mode autodiff (what PyTorch's double backward gives
    /// SB3-contrib): exact up to rounding.
    Exact,
    /// `(∇KL(θ + εv̂) − ∇KL(θ − εv̂)) / 2ε · ‖v‖` with `v̂ = v / ‖v‖`: first derivatives only,
    /// for backends where nested autodiff does not work; error `O(ε²)` plus rounding `O(1/ε)`.
    FiniteDifference {
        /// The perturbation's length `ε` in parameter space.
        epsilon: f64,
    },
}

/// One batch of a policy step, on the host: what the surrogate, the KL and their derivatives
/// are computed on.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyBatch {
    /// Observations, `[rows · obs_dim]`.
    pub obs: Vec<f32>,
    /// Floats per observation.
    pub obs_dim: usize,
    /// Actions: indices (as floats) for a categorical policy, `[rows · action_dim]` for a
    /// Gaussian one.
    pub actions: Vec<f32>,
    /// Whether the actions are continuous.
    pub continuous: bool,
    /// `log π_old(a|s)` from the rollout, `[rows]`.
    pub old_log_probs: Vec<f32>,
    /// Advantages (normalised by the caller if wanted), `[rows]`.
    pub advantages: Vec<f32>,
}

impl PolicyBatch {
    /// Rows in the batch.
    pub fn rows(&self) -> usize {
        self.old_log_probs.len()
    }

    /// Checks that the buffers agree with each other, for actions of `action_dim` floats
    /// (continuous) or indices.
    pub fn check(&self, action_dim: usize) -> Result<()> {
        let rows = self.rows();
        let width = if self.continuous { action_dim } else { 1 };
        let bad = |what: &str, got: usize, want: usize| {
            Err(RlError::InvalidInput(format!(
                "policy batch: {what} has {got} floats, {rows} rows need {want}"
            )))
        };
        if rows == 0 {
            return Err(RlError::InvalidInput("policy batch: no rows".into()));
        }
        if self.obs.len() != rows * self.obs_dim {
            return bad("obs", self.obs.len(), rows * self.obs_dim);
        }
        if self.actions.len() != rows * width {
            return bad("actions", self.actions.len(), rows * width);
        }
        if self.advantages.len() != rows {
            return bad("advantages", self.advantages.len(), rows);
        }
        Ok(())
    }

    fn obs_tensor<Bk: Backend>(&self, device: &Bk::Device) -> Tensor<Bk, 2> {
        tensor2::<Bk>(self.obs.clone(), self.rows(), self.obs_dim, device)
    }

    fn action_tensor<Bk: Backend>(&self, device: &Bk::Device) -> Actions<Bk> {
        if self.continuous {
            let width = self.actions.len() / self.rows().max(1);
            Actions::Continuous(tensor2::<Bk>(
                self.actions.clone(),
                self.rows(),
                width,
                device,
            ))
        } else {
            Actions::Discrete(indices1::<Bk>(&self.actions, device))
        }
    }

    /// `mean(Â · exp(log π_θ(a|s) − log π_old(a|s)))`, `[1]`, and the distribution `π_θ`.
    fn surrogate<Bk: Backend>(
        &self,
        layout: &ActorLayout,
        theta: Tensor<Bk, 1>,
        device: &Bk::Device,
    ) -> Result<(Tensor<Bk, 1>, PolicyDistribution<Bk>)> {
        let dist = layout.distribution(theta, self.obs_tensor(device))?;
        let log_probs = dist.log_prob(self.action_tensor(device))?;
        let ratio = (log_probs - tensor1::<Bk>(self.old_log_probs.clone(), device)).exp();
        let surrogate = (ratio * tensor1::<Bk>(self.advantages.clone(), device)).mean();
        Ok((surrogate, dist))
    }
}

/// The surrogate `L(θ)` at `theta` and its gradient `∇_θ L`, `[layout.len()]`.
pub fn surrogate_and_gradient<B: AutodiffBackend>(
    layout: &ActorLayout,
    theta: &[f32],
    batch: &PolicyBatch,
    device: &B::Device,
) -> Result<(f32, Vec<f32>)> {
    let theta = tensor1::<B>(theta.to_vec(), device).require_grad();
    let (surrogate, _) = batch.surrogate(layout, theta.clone(), device)?;
    let value = read(surrogate.clone().inner())[0];
    let grads = surrogate.backward();
    let gradient = theta
        .grad(&grads)
        .map(read)
        .unwrap_or_else(|| vec![0.0; layout.len()]);
    Ok((value, gradient))
}

/// The surrogate `L(θ)` and the exact mean `KL(π_θ ‖ π_old)` at `theta`, given the old policy's
/// distribution on the batch (no gradients: the line search's check).
pub fn surrogate_and_kl<Bk: Backend>(
    layout: &ActorLayout,
    theta: &[f32],
    batch: &PolicyBatch,
    old: &PolicyDistribution<Bk>,
    device: &Bk::Device,
) -> Result<(f32, f32)> {
    let (surrogate, dist) =
        batch.surrogate(layout, tensor1::<Bk>(theta.to_vec(), device), device)?;
    let kl = dist.mean_kl(old)?;
    let values = read(Tensor::cat(vec![surrogate, kl], 0));
    Ok((values[0], values[1]))
}

/// The policy `π_θ` on the batch's observations, detached (`π_old` for the line search).
pub fn distribution_at<Bk: Backend>(
    layout: &ActorLayout,
    theta: &[f32],
    batch: &PolicyBatch,
    device: &Bk::Device,
) -> Result<PolicyDistribution<Bk>> {
    Ok(layout
        .distribution(
            tensor1::<Bk>(theta.to_vec(), device),
            batch.obs_tensor(device),
        )?
        .detach())
}

/// `F v` at `theta` (= θ_old): the Hessian of `mean_s KL(π_θ(·|s) ‖ π_old(·|s))` at `θ_old`,
/// which is the Fisher information of the policy, times `v` (without damping), by `method`.
pub fn fisher_vector_product<B: AutodiffBackend>(
    layout: &ActorLayout,
    theta: &[f32],
    batch: &PolicyBatch,
    v: &[f32],
    method: FisherProduct,
    device: &B::Device,
) -> Result<Vec<f32>> {
    if v.len() != layout.len() || theta.len() != layout.len() {
        return Err(RlError::InvalidInput(format!(
            "Fisher-vector product: θ has {} and v {} floats, the actor {}",
            theta.len(),
            v.len(),
            layout.len()
        )));
    }
    match method {
        FisherProduct::Exact => exact_product::<B>(layout, theta, batch, v, device),
        FisherProduct::FiniteDifference { epsilon } => {
            let norm = v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
            if norm == 0.0 {
                return Ok(vec![0.0; v.len()]);
            }
            let old = distribution_at::<B>(layout, theta, batch, device)?;
            let shifted = |sign: f64| -> Vec<f32> {
                theta
                    .iter()
                    .zip(v)
                    .map(|(&t, &x)| (f64::from(t) + sign * epsilon * f64::from(x) / norm) as f32)
                    .collect()
            };
            let plus = kl_gradient::<B>(layout, &shifted(1.0), batch, &old, device)?;
            let minus = kl_gradient::<B>(layout, &shifted(-1.0), batch, &old, device)?;
            Ok(plus
                .iter()
                .zip(&minus)
                .map(|(&p, &m)| ((f64::from(p) - f64::from(m)) / (2.0 * epsilon) * norm) as f32)
                .collect())
        }
    }
}

/// `∇_θ mean KL(π_θ ‖ old)` at `theta`.
fn kl_gradient<B: AutodiffBackend>(
    layout: &ActorLayout,
    theta: &[f32],
    batch: &PolicyBatch,
    old: &PolicyDistribution<B>,
    device: &B::Device,
) -> Result<Vec<f32>> {
    let theta = tensor1::<B>(theta.to_vec(), device).require_grad();
    let dist = layout.distribution(theta.clone(), batch.obs_tensor(device))?;
    let grads = dist.mean_kl(old)?.backward();
    Ok(theta
        .grad(&grads)
        .map(read)
        .unwrap_or_else(|| vec![0.0; layout.len()]))
}

/// `∇_θ (∇_θ KL(π_θ ‖ π_old) · v)` at `theta` = θ_old, on `Autodiff<B>` over `B`: the outer
/// backward gives `∇KL` as a tensor of `B` that is still tracked, whose product with `v` is
/// differentiated again by `B`. The old policy is a constant at both levels (computed on the
/// inner backend and lifted): a copy detached only at the outer level would still depend on θ
/// at `B`'s, and the two dependencies cancel to a zero product.
fn exact_product<B: AutodiffBackend>(
    layout: &ActorLayout,
    theta: &[f32],
    batch: &PolicyBatch,
    v: &[f32],
    device: &B::Device,
) -> Result<Vec<f32>> {
    let old = lift::<B>(distribution_at::<B::InnerBackend>(
        layout, theta, batch, device,
    )?);
    let theta_inner = tensor1::<B>(theta.to_vec(), device).require_grad();
    let theta_outer = Tensor::<Autodiff<B>, 1>::from_inner(theta_inner.clone()).require_grad();
    let dist = layout.distribution(theta_outer.clone(), batch.obs_tensor(device))?;
    let grads = dist.mean_kl(&old)?.backward();
    let Some(kl_gradient) = theta_outer.grad(&grads) else {
        return Ok(vec![0.0; layout.len()]);
    };
    let directional = (kl_gradient * tensor1::<B>(v.to_vec(), device)).sum();
    let grads = directional.backward();
    Ok(theta_inner
        .grad(&grads)
        .map(read)
        .unwrap_or_else(|| vec![0.0; layout.len()]))
}

/// A distribution of the inner backend as constants of `Autodiff<B>` (untracked at both levels).
fn lift<B: AutodiffBackend>(
    dist: PolicyDistribution<B::InnerBackend>,
) -> PolicyDistribution<Autodiff<B>> {
    let up = |t: Tensor<B::InnerBackend, 2>| {
        Tensor::<Autodiff<B>, 2>::from_inner(Tensor::<B, 2>::from_inner(t))
    };
    match dist {
        PolicyDistribution::Categorical(d) => PolicyDistribution::Categorical(Categorical {
            log_probs: up(d.log_probs),
        }),
        PolicyDistribution::Gaussian(d) => PolicyDistribution::Gaussian(DiagGaussian {
            mean: up(d.mean),
            log_std: up(d.log_std),
        }),
    }
}

/// What [`conjugate_gradient`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct CgSolution {
    /// The approximate solution `x` of `A x = b`.
    pub x: Vec<f32>,
    /// Products `A p` taken (not counting the one for the starting residual).
    pub iterations: usize,
    /// `‖b − A x‖²` as the iteration tracked it when it stopped.
    pub residual: f64,
    /// Whether it stopped early on a direction `p` with `pᵀAp ≤ 0`: rounding in the products
    /// of a nearly singular `A` (keeping the iterate reached so far, as truncated CG does).
    pub nonpositive_curvature: bool,
}

/// Conjugate gradient for `A x = b` with `A` symmetric positive definite, given only products
/// `A v` (`product`), as SB3-contrib's `conjugate_gradient_solver`: start from `x0` (SB3-contrib:
/// `1e-4 · N(0, 1)` draws), stop once `‖r‖² < residual_tol` or after `max_iter` products.
pub fn conjugate_gradient(
    mut product: impl FnMut(&[f32]) -> Result<Vec<f32>>,
    b: &[f32],
    x0: &[f32],
    max_iter: usize,
    residual_tol: f64,
) -> Result<CgSolution> {
    if x0.len() != b.len() {
        return Err(RlError::InvalidInput(format!(
            "conjugate gradient: x0 has {} floats, b {}",
            x0.len(),
            b.len()
        )));
    }
    let to64 = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<f64>>();
    let to32 = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let mut x = to64(x0);
    let ax = to64(&product(x0)?);
    let mut r: Vec<f64> = to64(b).iter().zip(&ax).map(|(b, a)| b - a).collect();
    let mut rr = dot(&r, &r);
    let mut iterations = 0;
    let mut nonpositive_curvature = false;
    if rr < residual_tol {
        return Ok(CgSolution {
            x: to32(&x),
            iterations,
            residual: rr,
            nonpositive_curvature,
        });
    }
    let mut p = r.clone();
    for i in 0..max_iter {
        let ap = to64(&product(&to32(&p))?);
        iterations += 1;
        let p_ap = dot(&p, &ap);
        if !p_ap.is_finite() {
            return Err(RlError::InvalidInput(format!(
                "conjugate gradient: pᵀAp = {p_ap} at iteration {}: a product is not finite",
                i + 1
            )));
        }
        if p_ap <= 0.0 {
            nonpositive_curvature = true;
            break;
        }
        let alpha = rr / p_ap;
        for (x, p) in x.iter_mut().zip(&p) {
            *x += alpha * p;
        }
        if i + 1 == max_iter {
            break;
        }
        for (r, ap) in r.iter_mut().zip(&ap) {
            *r -= alpha * ap;
        }
        let rr_new = dot(&r, &r);
        if rr_new < residual_tol {
            rr = rr_new;
            break;
        }
        let beta = rr_new / rr;
        rr = rr_new;
        for (p, r) in p.iter_mut().zip(&r) {
            *p = r + beta * *p;
        }
    }
    Ok(CgSolution {
        x: to32(&x),
        iterations,
        residual: rr,
        nonpositive_curvature,
    })
}

/// What [`line_search`] decided.
#[derive(Debug, Clone, PartialEq)]
pub struct LineSearch {
    /// The parameters to keep: the accepted step's, or `θ_old` when none was accepted.
    pub theta: Vec<f32>,
    /// Whether a step was accepted.
    pub accepted: bool,
    /// Steps tried (1 to `max_iter`).
    pub tries: usize,
    /// The surrogate at the kept parameters.
    pub surrogate: f32,
    /// The mean KL from `θ_old` at the kept parameters (0 when none was accepted).
    pub kl: f32,
    /// The fraction of the full step taken (`shrink^(tries − 1)`, 0 when none was accepted).
    pub fraction: f32,
}

/// Backtracking along `direction` from `theta_old`: tries `θ_old + c · direction` for
/// `c = 1, shrink, shrink², …` (at most `max_iter` tries) and accepts the first whose
/// `evaluate(θ) = (surrogate, kl)` has `kl < max_kl` and `surrogate > surrogate_old`; otherwise
/// keeps `θ_old` (SB3-contrib's rule).
pub fn line_search(
    mut evaluate: impl FnMut(&[f32]) -> Result<(f32, f32)>,
    theta_old: &[f32],
    direction: &[f32],
    surrogate_old: f32,
    max_kl: f32,
    shrink: f32,
    max_iter: usize,
) -> Result<LineSearch> {
    let mut fraction = 1.0f32;
    for tries in 1..=max_iter {
        let theta: Vec<f32> = theta_old
            .iter()
            .zip(direction)
            .map(|(&t, &d)| t + fraction * d)
            .collect();
        let (surrogate, kl) = evaluate(&theta)?;
        if kl < max_kl && surrogate > surrogate_old {
            return Ok(LineSearch {
                theta,
                accepted: true,
                tries,
                surrogate,
                kl,
                fraction,
            });
        }
        fraction *= shrink;
    }
    Ok(LineSearch {
        theta: theta_old.to_vec(),
        accepted: false,
        tries: max_iter,
        surrogate: surrogate_old,
        kl: 0.0,
        fraction: 0.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3×3 SPD matrix and the solution of `A x = b`, worked by hand: A = [[4,1,0],[1,3,1],
    /// [0,1,2]], x = [1, −1, 2] gives b = [3, 0, 3].
    #[test]
    fn conjugate_gradient_solves_a_small_spd_system() {
        let a = [[4.0f32, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 1.0, 2.0]];
        let product = |v: &[f32]| -> Result<Vec<f32>> {
            Ok(a.iter()
                .map(|row| row.iter().zip(v).map(|(x, y)| x * y).sum())
                .collect())
        };
        let solution = conjugate_gradient(product, &[3.0, 0.0, 3.0], &[0.0; 3], 10, 1e-10).unwrap();
        for (x, want) in solution.x.iter().zip([1.0, -1.0, 2.0]) {
            assert!((x - want).abs() < 1e-5, "{:?}", solution.x);
        }
        // Exact arithmetic needs at most n = 3 iterations.
        assert!(solution.iterations <= 3, "{}", solution.iterations);
        assert!(solution.residual < 1e-10);
        // Capped at one product: one steepest-descent step from 0, x = (rᵀr / rᵀAr) r with
        // r = b: rᵀr = 18, rᵀAr = 3·12 + 0 + 3·6 = 54, x = b / 3.
        let one = conjugate_gradient(product, &[3.0, 0.0, 3.0], &[0.0; 3], 1, 1e-10).unwrap();
        assert_eq!(one.iterations, 1);
        for (x, want) in one.x.iter().zip([1.0, 0.0, 1.0]) {
            assert!((x - want).abs() < 1e-6, "{:?}", one.x);
        }
    }

    /// A direction of non-positive curvature stops the iteration with the iterate reached so
    /// far (here the start), and says so; a non-finite product is an error.
    #[test]
    fn conjugate_gradient_stops_on_nonpositive_curvature() {
        let product = |v: &[f32]| -> Result<Vec<f32>> { Ok(vec![-v[0], -v[1]]) };
        let solution = conjugate_gradient(product, &[1.0, 1.0], &[0.0; 2], 5, 1e-10).unwrap();
        assert!(solution.nonpositive_curvature);
        assert_eq!(solution.x, vec![0.0, 0.0]);
        assert_eq!(solution.iterations, 1);
        let nan = |v: &[f32]| -> Result<Vec<f32>> { Ok(vec![f32::NAN; v.len()]) };
        let err = conjugate_gradient(nan, &[1.0, 1.0], &[0.0; 2], 5, 1e-10).unwrap_err();
        assert!(err.to_string().contains("not finite"), "{err}");
    }

    /// A one-parameter problem: surrogate θ, KL θ²/2 from θ_old = 0. The full step 1 has KL 0.5
    /// (rejected at δ = 0.1), 0.5 has KL 0.125 (rejected), 0.25 has KL 0.03125 (accepted).
    #[test]
    fn line_search_backtracks_to_the_first_step_inside_the_trust_region() {
        let evaluate = |t: &[f32]| -> Result<(f32, f32)> { Ok((t[0], t[0] * t[0] / 2.0)) };
        let found = line_search(evaluate, &[0.0], &[1.0], 0.0, 0.1, 0.5, 10).unwrap();
        assert!(found.accepted);
        assert_eq!(found.tries, 3);
        assert_eq!(found.theta, vec![0.25]);
        assert_eq!(found.fraction, 0.25);
        assert_eq!(found.kl, 0.03125);
    }

    /// Every step violates the KL bound (or fails to improve): the old parameters stay and the
    /// result says so.
    #[test]
    fn line_search_reverts_when_no_step_satisfies_the_constraint() {
        let evaluate = |t: &[f32]| -> Result<(f32, f32)> { Ok((t[0], 1.0)) };
        let found = line_search(evaluate, &[2.0, 3.0], &[1.0, 1.0], 0.0, 0.01, 0.8, 10).unwrap();
        assert!(!found.accepted);
        assert_eq!(found.tries, 10);
        assert_eq!(found.theta, vec![2.0, 3.0]);
        assert_eq!(found.kl, 0.0);
        // Improving the KL but not the surrogate is rejected too.
        let worse = |t: &[f32]| -> Result<(f32, f32)> { Ok((-t[0], 0.0)) };
        let found = line_search(worse, &[0.0], &[1.0], 0.0, 0.01, 0.8, 4).unwrap();
        assert!(!found.accepted);
        assert_eq!(found.theta, vec![0.0]);
    }
}
