//! Do flex and ndarray compute the same gSDE PPO update? The question behind
//! MountainCarContinuous's preset finding the flag on fewer seeds on flex than on ndarray
//! (README, "Against Stable-Baselines3 + RL Zoo").
//!
//! For the preset's policy (gSDE, `log_std_init` −3.29, no orthogonal init, 2 observations,
//! 1 action) on one seeded minibatch of 256 samples, it prints the largest difference between
//! the two backends, relative to the largest magnitude, of: the loss terms and every gradient;
//! the parameters after 50 Adam steps (lr 1e-3) on that minibatch, with and without the
//! surrogate's clip; and batch-1 inference (features, mean, log-std, value) of the trained
//! policy on each of the 256 observations.
//!
//! ```sh
//! cargo run --release -p cinder-bench --features ndarray --example gsde_agreement
//! ```

use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use cinder::backend::{Flex, NdArray};
use cinder::env::rng::NpRandom;
use cinder::rl::distributions::standard_normal;
use cinder::rl::policy::{
    Actions, ActorCritic, ActorCriticConfig, NetworkConfig, PolicyDistribution,
};
use cinder::rl::ppo::{Minibatch, PpoConfig, ppo_loss};

/// Samples in the minibatch.
const BATCH: usize = 256;
/// Adam steps on the minibatch.
const STEPS: usize = 50;

/// Every float of each visited parameter's gradient.
struct Gradients<'a> {
    grads: &'a GradientsParams,
    out: Vec<Vec<f32>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Gradients<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let grad = self
            .grads
            .get::<B::InnerBackend, D>(param.id)
            .expect("a gradient");
        self.out.push(floats(grad));
    }
}

/// Every float of each visited parameter.
struct Parameters(Vec<Vec<f32>>);

impl<B: Backend> ModuleVisitor<B> for Parameters {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.0.push(floats(param.val()));
    }
}

fn floats<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> Vec<f32> {
    tensor
        .into_data()
        .convert::<f32>()
        .to_vec()
        .expect("f32 data")
}

/// What is compared: `(part, values)` groups.
type Outputs = Vec<(&'static str, Vec<Vec<f32>>)>;

fn run<B: AutodiffBackend>(clip_coef: f32) -> anyhow::Result<Outputs> {
    let device = B::Device::default();
    let (obs_dim, action_dim) = (2, 1);
    let model: ActorCritic<B> = ActorCriticConfig::new(obs_dim, action_dim)
        .with_continuous(true)
        .with_use_sde(true)
        .with_network(
            NetworkConfig::new()
                .with_init_log_std(-3.29)
                .with_ortho_init(false),
        )
        .with_seed(42)
        .init(&device)?;
    let mut rng = NpRandom::from_seed(7);
    let mut normal = |n: usize, scale: f64| -> Vec<f32> {
        (0..n)
            .map(|_| (standard_normal(&mut rng) * scale) as f32)
            .collect()
    };
    let obs = normal(BATCH * obs_dim, 1.0);
    let actions = normal(BATCH * action_dim, 0.2);
    let old_log_probs: Vec<f32> = normal(BATCH, 0.3).iter().map(|x| x + 1.0).collect();
    let mut advantages = normal(BATCH, 1.0);
    cinder::rl::advantages::normalize(&mut advantages);
    let old_values = normal(BATCH, 0.5);
    let returns = normal(BATCH, 1.0);
    let column =
        |v: &[f32]| Tensor::<B, 1>::from_data(TensorData::new(v.to_vec(), [BATCH]), &device);
    let minibatch = || Minibatch {
        obs: Tensor::from_data(TensorData::new(obs.clone(), [BATCH, obs_dim]), &device),
        actions: Actions::Continuous(Tensor::from_data(
            TensorData::new(actions.clone(), [BATCH, action_dim]),
            &device,
        )),
        old_log_probs: column(&old_log_probs),
        advantages: column(&advantages),
        old_values: column(&old_values),
        returns: column(&returns),
    };
    let config = PpoConfig::new().with_clip_coef(clip_coef);

    let terms = ppo_loss(&model, minibatch(), &config, None)?;
    let loss_terms = vec![
        floats(terms.loss.clone()),
        floats(terms.policy_loss),
        floats(terms.value_loss),
        floats(terms.entropy),
        floats(terms.approx_kl),
    ];
    let grads = GradientsParams::from_grads(terms.loss.backward(), &model);
    let mut gradients = Gradients {
        grads: &grads,
        out: Vec::new(),
    };
    model.visit(&mut gradients);

    let mut optimizer = AdamConfig::new().with_epsilon(1e-5).init();
    let mut model = model;
    for _ in 0..STEPS {
        let loss = ppo_loss(&model, minibatch(), &config, None)?.loss;
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(1e-3, model, grads);
    }
    let policy = model.valid();
    let mut parameters = Parameters(Vec::new());
    policy.visit(&mut parameters);

    let mut inference = Vec::new();
    for row in obs.chunks(obs_dim) {
        let one = || Tensor::from_data(TensorData::new(row.to_vec(), [1, obs_dim]), &device);
        let (dist, features) = policy.distribution_and_features(one());
        inference.push(floats(features));
        if let PolicyDistribution::Gaussian(g) = dist {
            inference.push(floats(g.mean));
            inference.push(floats(g.log_std));
        }
        inference.push(floats(policy.value(one())));
    }
    Ok(vec![
        ("loss terms", loss_terms),
        ("gradients", gradients.out),
        ("parameters after the Adam steps", parameters.0),
        ("batch-1 inference after them", inference),
    ])
}

/// The largest absolute difference and the largest magnitude over a group.
fn difference(a: &[Vec<f32>], b: &[Vec<f32>]) -> (f32, f32) {
    let mut worst = 0f32;
    let mut scale = 0f32;
    for (x, y) in a.iter().zip(b) {
        for (p, q) in x.iter().zip(y) {
            worst = worst.max((p - q).abs());
            scale = scale.max(q.abs());
        }
    }
    (worst, scale)
}

fn main() -> anyhow::Result<()> {
    println!("| surrogate | compared | largest difference | largest magnitude | relative |");
    println!("|---|---|---:|---:|---:|");
    for (surrogate, clip_coef) in [("clipped, ε = 0.2", 0.2f32), ("not clipped", 1e6)] {
        let flex = run::<Flex>(clip_coef)?;
        let ndarray = run::<NdArray>(clip_coef)?;
        for ((part, a), (_, b)) in flex.iter().zip(&ndarray) {
            let (worst, scale) = difference(a, b);
            println!(
                "| {surrogate} | {part} | {worst:.1e} | {scale:.2} | {:.1e} |",
                worst / scale.max(f32::MIN_POSITIVE)
            );
        }
    }
    Ok(())
}
