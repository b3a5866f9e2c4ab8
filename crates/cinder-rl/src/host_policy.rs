//! Host inference: a copy of a policy's weights in plain vectors, for the rollout's small
//! batches.
//!
//! A rollout asks its policy for one action per env at every env step, for a handful of envs
//! (CleanRL's CartPole configuration: 4). At 4 rows the built-in 64-64 actor-critic is about 35k
//! multiply-adds, a few microseconds on one core, while Burn spends its fixed cost per operation
//! (a tensor upload, a dozen kernels, a read back) on each call. So the rollouts
//! ([`crate::rollout::RolloutEnvs::collect`], [`crate::policy_gradient::collect_episodes`]) take a
//! [`HostPolicy`] from [`Policy::host_policy`](crate::policy::Policy::host_policy) once per
//! rollout (one read of the weights) and run it on the host when the batch is at most
//! [`HOST_INFERENCE_MAX_ROWS`] rows; larger batches, and policies that offer no host copy (the
//! default for one's own networks; gSDE), run on the backend as before.
//!
//! The host copy computes what the backend computes, in a different order of float32
//! additions (the two agree to ~1e-6, as two backends do): its `tanh` is the CPU backends'
//! fused one ([`crate::host_kernels::tanh_f32`], bit for bit). Actions are drawn by the same host sampling
//! ([`SampledActions::categorical`], [`SampledActions::gaussian`]) on the same generator, so a
//! seeded run stays deterministic.

use crate::error::{Result, RlError};
use crate::host_kernels::{log_softmax_row, tanh_in_place};
use crate::policy::{Activation, SampledActions, clipped_actions};
use cinder_env::Value;
use cinder_env::rng::NpRandom;

/// The largest rollout batch (envs or episodes stepped together) the rollouts run on a
/// [`HostPolicy`]; above it the backend's matrix products win.
pub const HOST_INFERENCE_MAX_ROWS: usize = 64;

/// One dense layer on the host: `y = x · W + b`.
#[derive(Debug, Clone, PartialEq)]
pub struct HostLinear {
    /// `W`, `[d_in, d_out]` row-major (Burn's `Linear` layout).
    pub weight: Vec<f32>,
    /// `b`, `[d_out]`.
    pub bias: Vec<f32>,
    /// Inputs per row.
    pub d_in: usize,
    /// Outputs per row.
    pub d_out: usize,
}

impl HostLinear {
    /// `x · W + b` for the first `rows` rows of `input` (`[rows, d_in]` row-major), with AVX2
    /// where the CPU has it: the same operations in the same order in wider registers (each
    /// output sums its products over the inputs first to last), so the same bits.
    pub fn forward(&self, input: &[f32], rows: usize) -> Vec<f32> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { self.forward_avx2(input, rows) };
        }
        self.forward_portable(input, rows)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn forward_avx2(&self, input: &[f32], rows: usize) -> Vec<f32> {
        self.forward_portable(input, rows)
    }

    /// Rows four at a time and outputs eight at a time, accumulated in registers (each
    /// weight is loaded once per four rows); each output is `b + Σ_k x_k·w_k` summed over `k`
    /// in order, whatever the blocking.
    #[inline(always)]
    fn forward_portable(&self, input: &[f32], rows: usize) -> Vec<f32> {
        let rows = match self.d_in {
            0 => rows,
            d_in => rows.min(input.len() / d_in),
        };
        let mut out = vec![0.0f32; rows * self.d_out];
        let mut r0 = 0;
        while r0 < rows {
            let block = (rows - r0).min(4);
            match block {
                4 => self.rows_block::<4>(input, r0, &mut out),
                3 => self.rows_block::<3>(input, r0, &mut out),
                2 => self.rows_block::<2>(input, r0, &mut out),
                _ => self.rows_block::<1>(input, r0, &mut out),
            }
            r0 += block;
        }
        out
    }

    /// Rows `r0 .. r0 + NR` of the output.
    #[inline(always)]
    fn rows_block<const NR: usize>(&self, input: &[f32], r0: usize, out: &mut [f32]) {
        const C: usize = 8;
        let (d_in, d_out) = (self.d_in, self.d_out);
        let x: [&[f32]; NR] = std::array::from_fn(|r| &input[(r0 + r) * d_in..][..d_in]);
        let mut c0 = 0;
        while c0 + C <= d_out {
            let mut acc = [[0.0f32; C]; NR];
            for row in acc.iter_mut() {
                row.copy_from_slice(&self.bias[c0..c0 + C]);
            }
            for k in 0..d_in {
                let w = &self.weight[k * d_out + c0..][..C];
                for (row, x) in acc.iter_mut().zip(&x) {
                    let xk = x[k];
                    for (y, &wc) in row.iter_mut().zip(w) {
                        *y += xk * wc;
                    }
                }
            }
            for (r, row) in acc.iter().enumerate() {
                out[(r0 + r) * d_out + c0..][..C].copy_from_slice(row);
            }
            c0 += C;
        }
        // The last outputs when `d_out` is not a multiple of 8 (the heads: 1 or 2 wide).
        for c in c0..d_out {
            for (r, x) in x.iter().enumerate() {
                let mut acc = self.bias[c];
                for (k, &xk) in x.iter().enumerate() {
                    acc += xk * self.weight[k * d_out + c];
                }
                out[(r0 + r) * d_out + c] = acc;
            }
        }
    }
}

/// A multi-layer perceptron on the host: dense layers with an activation between them (none
/// after the last), as [`crate::policy::Mlp`].
#[derive(Debug, Clone, PartialEq)]
pub struct HostMlp {
    layers: Vec<HostLinear>,
    activation: Activation,
}

impl HostMlp {
    /// From its layers, first to last. Errors ([`RlError::InvalidConfig`]): no layer, a layer
    /// whose weight or bias does not have its stated size, or consecutive layers whose sizes
    /// do not chain.
    pub fn new(layers: Vec<HostLinear>, activation: Activation) -> Result<Self> {
        if layers.is_empty() {
            return Err(RlError::InvalidConfig("an MLP without layers".into()));
        }
        for (i, layer) in layers.iter().enumerate() {
            if layer.weight.len() != layer.d_in * layer.d_out || layer.bias.len() != layer.d_out {
                return Err(RlError::InvalidConfig(format!(
                    "layer {i}: a [{}, {}] layer holds {} weights and {} biases",
                    layer.d_in,
                    layer.d_out,
                    layer.weight.len(),
                    layer.bias.len()
                )));
            }
            if i > 0 && layers[i - 1].d_out != layer.d_in {
                return Err(RlError::InvalidConfig(format!(
                    "layer {i} takes {} inputs, layer {} gives {}",
                    layer.d_in,
                    i - 1,
                    layers[i - 1].d_out
                )));
            }
        }
        Ok(Self { layers, activation })
    }

    /// Inputs per row.
    pub fn d_in(&self) -> usize {
        self.layers[0].d_in
    }

    /// Outputs per row.
    pub fn d_out(&self) -> usize {
        self.layers[self.layers.len() - 1].d_out
    }

    /// # Shapes
    /// - input: `[rows, d_in]` row-major
    /// - output: `[rows, d_out]`
    pub fn forward(&self, input: &[f32], rows: usize) -> Vec<f32> {
        let last = self.layers.len() - 1;
        let mut x: Vec<f32> = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            // The first layer reads the caller's rows in place; later ones the previous output.
            let rows_in = if i == 0 { input } else { x.as_slice() };
            let mut out = layer.forward(rows_in, rows);
            if i < last {
                match self.activation {
                    // The CPU backends' fused tanh (crate::host_kernels): the same f32
                    // roundings as the backend where those kernels are installed.
                    Activation::Tanh => tanh_in_place(&mut out),
                    Activation::Relu => out.iter_mut().for_each(|v| *v = v.max(0.0)),
                }
            }
            x = out;
        }
        x
    }
}

/// A host copy of an actor-critic policy with a categorical or a state-independent Gaussian
/// head (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq)]
pub struct HostPolicy {
    actor: HostMlp,
    critic: HostMlp,
    /// The Gaussian's log standard deviation, `[action_dim]`; `None`: categorical.
    log_std: Option<Vec<f32>>,
}

impl HostPolicy {
    /// From an actor (logits, or the Gaussian's mean), a critic (one value per row) and, for
    /// continuous actions, the log standard deviation. Errors ([`RlError::InvalidConfig`]):
    /// actor and critic with different inputs, a critic with more than one output, or a
    /// log-std whose length is not the actor's output width.
    pub fn new(actor: HostMlp, critic: HostMlp, log_std: Option<Vec<f32>>) -> Result<Self> {
        if actor.d_in() != critic.d_in() || critic.d_out() != 1 {
            return Err(RlError::InvalidConfig(format!(
                "an actor taking {} inputs with a critic taking {} and giving {}",
                actor.d_in(),
                critic.d_in(),
                critic.d_out()
            )));
        }
        if let Some(log_std) = &log_std
            && log_std.len() != actor.d_out()
        {
            return Err(RlError::InvalidConfig(format!(
                "a log-std of {} for {} actions",
                log_std.len(),
                actor.d_out()
            )));
        }
        Ok(Self {
            actor,
            critic,
            log_std,
        })
    }

    /// Floats per observation.
    pub fn obs_dim(&self) -> usize {
        self.actor.d_in()
    }

    /// One action per row of `obs` (`[rows, obs_dim]`), drawn with `rng` as
    /// [`crate::policy::PolicyDistribution::sample`] draws it.
    pub fn sample(&self, obs: &[f32], rows: usize, rng: &mut NpRandom) -> SampledActions {
        let out = self.actor.forward(obs, rows);
        let width = self.actor.d_out();
        match &self.log_std {
            None => {
                let mut log_probs = out;
                for row in log_probs.chunks_exact_mut(width) {
                    log_softmax_row(row);
                }
                SampledActions::categorical(&log_probs, width, rng)
            }
            Some(log_std) => SampledActions::gaussian(&out, log_std, width, rng),
        }
    }

    /// The greedy action per row of `obs` (`[rows, obs_dim]`), as
    /// [`crate::policy::PolicyDistribution::mode_actions`] gives it: the most probable index
    /// (the first of equals), or the Gaussian's mean clipped to `bounds` (`(low, high)`).
    pub fn greedy(&self, obs: &[f32], rows: usize, bounds: Option<(&[f32], &[f32])>) -> Vec<Value> {
        let out = self.actor.forward(obs, rows);
        let width = self.actor.d_out();
        match &self.log_std {
            None => out
                .chunks_exact(width)
                .map(|row| {
                    let mut log_probs = row.to_vec();
                    log_softmax_row(&mut log_probs);
                    let best = log_probs.iter().enumerate().fold(
                        (0, f32::NEG_INFINITY),
                        |(bi, bv), (i, &v)| {
                            if v > bv { (i, v) } else { (bi, bv) }
                        },
                    );
                    Value::Discrete(best.0)
                })
                .collect(),
            Some(_) => clipped_actions(&out, width, bounds),
        }
    }

    /// The critic's values `V(s)`, `[rows]`.
    pub fn values(&self, obs: &[f32], rows: usize) -> Vec<f32> {
        self.critic.forward(obs, rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(d_in: usize, d_out: usize, seed: u64) -> HostLinear {
        let mut rng = NpRandom::from_seed(seed);
        HostLinear {
            weight: (0..d_in * d_out)
                .map(|_| rng.uniform(-1.0, 1.0) as f32)
                .collect(),
            bias: (0..d_out).map(|_| rng.uniform(-1.0, 1.0) as f32).collect(),
            d_in,
            d_out,
        }
    }

    #[test]
    fn a_layer_is_x_times_w_plus_b() {
        // [[1, 2]] · [[1, 2, 3], [4, 5, 6]] + [0.5, 0, -1] = [[9.5, 12, 14]]
        let linear = HostLinear {
            weight: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            bias: vec![0.5, 0.0, -1.0],
            d_in: 2,
            d_out: 3,
        };
        let mlp = HostMlp::new(vec![linear], Activation::Tanh).unwrap();
        assert_eq!(
            mlp.forward(&[1.0, 2.0, -1.0, 0.0], 2),
            vec![9.5, 12.0, 14.0, -0.5, -2.0, -4.0]
        );
    }

    /// Every blocking (rows by four, outputs by eight, the tails) gives the plain triple loop's
    /// bits: `b + Σ_k x_k·w_k`, summed over `k` in order.
    #[test]
    fn a_layer_sums_in_input_order_whatever_the_blocking() {
        for (d_in, d_out, rows) in [(7, 64, 9), (4, 20, 6), (64, 2, 3), (3, 1, 1), (5, 8, 4)] {
            let linear = layer(d_in, d_out, 3);
            let mut rng = NpRandom::from_seed(4);
            let input: Vec<f32> = (0..rows * d_in)
                .map(|_| rng.uniform(-3.0, 3.0) as f32)
                .collect();
            let mut expected = Vec::new();
            for r in 0..rows {
                for c in 0..d_out {
                    let mut y = linear.bias[c];
                    for k in 0..d_in {
                        y += input[r * d_in + k] * linear.weight[k * d_out + c];
                    }
                    expected.push(y.to_bits());
                }
            }
            let got: Vec<u32> = linear
                .forward(&input, rows)
                .into_iter()
                .map(f32::to_bits)
                .collect();
            assert_eq!(got, expected, "[{d_in}, {d_out}] × {rows} rows");
        }
    }

    /// The AVX2 copy of a layer gives the portable loop's bits.
    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        let linear = layer(7, 64, 5);
        let mut rng = NpRandom::from_seed(9);
        let input: Vec<f32> = (0..5 * 7).map(|_| rng.uniform(-3.0, 3.0) as f32).collect();
        let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<_>>();
        assert_eq!(
            bits(linear.forward(&input, 5)),
            bits(linear.forward_portable(&input, 5))
        );
    }

    #[test]
    fn the_activation_sits_between_layers_only() {
        let first = HostLinear {
            weight: vec![2.0],
            bias: vec![-3.0],
            d_in: 1,
            d_out: 1,
        };
        let second = HostLinear {
            weight: vec![-1.0],
            bias: vec![0.0],
            d_in: 1,
            d_out: 1,
        };
        let relu = HostMlp::new(vec![first.clone(), second.clone()], Activation::Relu).unwrap();
        // relu(2·1 − 3) = 0, then −0; relu(2·4 − 3) = 5, then −5 (not clamped at the output).
        assert_eq!(relu.forward(&[1.0, 4.0], 2), vec![0.0, -5.0]);
        let tanh = HostMlp::new(vec![first, second], Activation::Tanh).unwrap();
        let y = tanh.forward(&[4.0], 1);
        assert!((y[0] + 5.0f32.tanh()).abs() < 1e-6, "{y:?}");
    }

    #[test]
    fn sizes_that_do_not_chain_are_errors() {
        let err = HostMlp::new(vec![layer(4, 8, 1), layer(7, 2, 2)], Activation::Tanh);
        assert!(matches!(err, Err(RlError::InvalidConfig(m)) if m.contains("layer 1 takes 7")));
        let mut short = layer(4, 8, 1);
        short.bias.pop();
        assert!(HostMlp::new(vec![short], Activation::Tanh).is_err());
        assert!(HostMlp::new(Vec::new(), Activation::Tanh).is_err());
        let actor = HostMlp::new(vec![layer(4, 2, 1)], Activation::Tanh).unwrap();
        let wide_critic = HostMlp::new(vec![layer(4, 2, 2)], Activation::Tanh).unwrap();
        assert!(HostPolicy::new(actor.clone(), wide_critic, None).is_err());
        let critic = HostMlp::new(vec![layer(4, 1, 2)], Activation::Tanh).unwrap();
        assert!(HostPolicy::new(actor, critic, Some(vec![0.0; 3])).is_err());
    }

    /// The host copy of the built-in actor-critic gives the backend's distribution and values,
    /// and draws the same actions from the same generator.
    #[test]
    fn the_host_copy_computes_what_the_backend_computes() {
        use crate::policy::{ActorCritic, ActorCriticConfig, NetworkConfig, Policy};
        use crate::tensors::{read, tensor2};
        use burn::backend::NdArray;
        type B = NdArray<f32>;
        let device = Default::default();
        let rows = 5;
        for (continuous, activation) in [
            (false, Activation::Tanh),
            (true, Activation::Tanh),
            (false, Activation::Relu),
        ] {
            let network = NetworkConfig::new()
                .with_hidden_sizes(vec![16, 8])
                .with_activation(activation)
                // PyTorch's default initialisation: non-zero biases everywhere.
                .with_ortho_init(false)
                .with_init_log_std(-0.4);
            let model: ActorCritic<B> = ActorCriticConfig::new(3, 2)
                .with_continuous(continuous)
                .with_network(network)
                .with_seed(7)
                .init(&device)
                .unwrap();
            let host = Policy::host_policy(&model).unwrap();
            assert_eq!(host.obs_dim(), 3);
            let mut rng = NpRandom::from_seed(3);
            let obs: Vec<f32> = (0..rows * 3)
                .map(|_| rng.uniform(-2.0, 2.0) as f32)
                .collect();
            let obs_t = || tensor2::<B>(obs.clone(), rows, 3, &device);
            let close = |a: &[f32], b: &[f32], what: &str| {
                assert_eq!(a.len(), b.len(), "{what}");
                for (x, y) in a.iter().zip(b) {
                    assert!(
                        (x - y).abs() <= 1e-5 * y.abs().max(1.0),
                        "{what}: {x} vs {y}"
                    );
                }
            };
            close(
                &host.values(&obs, rows),
                &read(model.value(obs_t())),
                "values",
            );
            let on_host = host.sample(&obs, rows, &mut NpRandom::from_seed(11));
            let on_backend = model
                .distribution(obs_t())
                .sample(&mut NpRandom::from_seed(11));
            assert_eq!(on_host.actions.len(), rows);
            close(&on_host.flat, &on_backend.flat, "actions");
            close(&on_host.log_probs, &on_backend.log_probs, "log-probs");
            if !continuous {
                assert_eq!(on_host.actions, on_backend.actions);
            }
            // Greedy actions: the backend's argmax, or its mean clipped to the bounds (some
            // of these means fall outside ±0.3).
            let bounds = (vec![-0.3f32; 2], vec![0.3f32; 2]);
            let bounds = Some((&bounds.0[..], &bounds.1[..]));
            let greedy_host = host.greedy(&obs, rows, bounds);
            let greedy_backend = model.distribution(obs_t()).mode_actions(bounds).unwrap();
            assert_eq!(greedy_host.len(), rows);
            for (h, b) in greedy_host.iter().zip(&greedy_backend) {
                match (h, b) {
                    (Value::Continuous(h), Value::Continuous(b)) => close(h, b, "greedy"),
                    _ => assert_eq!(h, b),
                }
            }
        }
    }

    #[test]
    fn gsde_has_no_host_copy() {
        use crate::policy::{ActorCritic, ActorCriticConfig, Policy};
        use burn::backend::NdArray;
        let model: ActorCritic<NdArray<f32>> = ActorCriticConfig::new(3, 1)
            .with_continuous(true)
            .with_use_sde(true)
            .init(&Default::default())
            .unwrap();
        assert!(Policy::host_policy(&model).is_none());
    }

    #[test]
    fn log_softmax_normalises_each_row() {
        let mut row = [1.0f32, 2.0, 3.0];
        log_softmax_row(&mut row);
        // ln(e + e² + e³) = 3.40760596...
        let expected = [1.0 - 3.407_606, 2.0 - 3.407_606, 3.0 - 3.407_606];
        for (x, e) in row.iter().zip(expected) {
            assert!((x - e).abs() < 1e-6, "{x} vs {e}");
        }
        // Large logits do not overflow.
        let mut big = [1000.0f32, 1000.0];
        log_softmax_row(&mut big);
        assert!((big[0] + std::f32::consts::LN_2).abs() < 1e-6);
    }
}
