//! PPO's loss terms and gradients against PyTorch: `tools/ppo_loss_reference.py` computes them as
//! CleanRL's `ppo.py` / `ppo_continuous_action.py` do, for fixed weights and a fixed batch
//! (`tests/data/ppo_loss_reference.json`); Cinder's policy loaded with the same weights must
//! reproduce every value.

use burn::backend::{Autodiff, NdArray};
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Int, Tensor, TensorData};
use cinder_rl::advantages::normalize;
use cinder_rl::policy::{Actions, ActorCritic, ActorCriticConfig, NetworkConfig};
use cinder_rl::ppo::{Minibatch, PpoConfig, ppo_loss};
use common::{Grads, TorchParam, close, with_torch_params};
use serde::Deserialize;

mod common;

type AB = Autodiff<NdArray<f32>>;

#[derive(Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    obs_dim: usize,
    action_dim: usize,
    continuous: bool,
    hidden: usize,
    clip_coef: f32,
    ent_coef: f32,
    vf_coef: f32,
    params: Vec<TorchParam>,
    obs: Vec<f32>,
    actions: Vec<f32>,
    old_log_probs: Vec<f32>,
    old_values: Vec<f32>,
    returns: Vec<f32>,
    raw_advantages: Vec<f32>,
    expected: Expected,
}

#[derive(Deserialize)]
struct Expected {
    normalized_advantages: Vec<f32>,
    loss: f32,
    policy_loss: f32,
    value_loss: f32,
    entropy: f32,
    approx_kl: f32,
    clip_fraction: f32,
    grads: Vec<Vec<f32>>,
}

fn scalar(t: Tensor<AB, 1>) -> f32 {
    t.into_data().to_vec::<f32>().unwrap()[0]
}

fn check(case: &Case) {
    let device = Default::default();
    let model: ActorCritic<AB> = ActorCriticConfig::new(case.obs_dim, case.action_dim)
        .with_continuous(case.continuous)
        .with_network(NetworkConfig::new().with_hidden_sizes(vec![case.hidden, case.hidden]))
        .init(&device)
        .unwrap();
    let model = with_torch_params(model, &case.params);

    let mut advantages = case.raw_advantages.clone();
    normalize(&mut advantages);
    for (i, (a, e)) in advantages
        .iter()
        .zip(&case.expected.normalized_advantages)
        .enumerate()
    {
        close(&format!("{} advantage {i}", case.name), *a, *e);
    }

    let n = case.old_log_probs.len();
    let tensor1 = |v: &[f32]| Tensor::<AB, 1>::from_data(TensorData::new(v.to_vec(), [n]), &device);
    let actions = if case.continuous {
        Actions::Continuous(Tensor::from_data(
            TensorData::new(case.actions.clone(), [n, case.action_dim]),
            &device,
        ))
    } else {
        let idx: Vec<i64> = case.actions.iter().map(|&a| a as i64).collect();
        Actions::Discrete(Tensor::<AB, 1, Int>::from_data(
            TensorData::new(idx, [n]),
            &device,
        ))
    };
    let config = PpoConfig::new()
        .with_clip_coef(case.clip_coef)
        .with_ent_coef(case.ent_coef)
        .with_vf_coef(case.vf_coef);
    let terms = ppo_loss(
        &model,
        Minibatch {
            obs: Tensor::from_data(
                TensorData::new(case.obs.clone(), [n, case.obs_dim]),
                &device,
            ),
            actions,
            old_log_probs: tensor1(&case.old_log_probs),
            advantages: tensor1(&advantages),
            old_values: tensor1(&case.old_values),
            returns: tensor1(&case.returns),
        },
        &config,
        None,
    )
    .unwrap();
    let e = &case.expected;
    let name = &case.name;
    close(
        &format!("{name} policy loss"),
        scalar(terms.policy_loss.clone()),
        e.policy_loss,
    );
    close(
        &format!("{name} value loss"),
        scalar(terms.value_loss.clone()),
        e.value_loss,
    );
    close(
        &format!("{name} entropy"),
        scalar(terms.entropy.clone()),
        e.entropy,
    );
    close(
        &format!("{name} approx_kl"),
        scalar(terms.approx_kl.clone()),
        e.approx_kl,
    );
    close(
        &format!("{name} clip fraction"),
        scalar(terms.clip_fraction.clone()),
        e.clip_fraction,
    );
    close(&format!("{name} loss"), scalar(terms.loss.clone()), e.loss);

    let grads = GradientsParams::from_grads(terms.loss.backward(), &model);
    let mut visitor = Grads {
        grads: &grads,
        out: Vec::new(),
    };
    model.visit(&mut visitor);
    assert_eq!(visitor.out.len(), e.grads.len());
    for (k, (got, want)) in visitor.out.iter().zip(&e.grads).enumerate() {
        assert_eq!(got.len(), want.len(), "{name} {}", case.params[k].name);
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            close(&format!("{name} grad {}[{i}]", case.params[k].name), *g, *w);
        }
    }
}

#[test]
fn ppo_loss_and_gradients_match_pytorch() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/ppo_loss_reference.json"
    ))
    .unwrap();
    let fixture: Fixture = serde_json::from_str(&text).unwrap();
    assert_eq!(fixture.cases.len(), 2);
    for case in &fixture.cases {
        check(case);
    }
}
