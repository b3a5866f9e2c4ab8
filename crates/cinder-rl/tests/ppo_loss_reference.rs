//! PPO's loss terms and gradients against PyTorch: `tools/ppo_loss_reference.py` computes them as
//! CleanRL's `ppo.py` / `ppo_continuous_action.py` do, for fixed weights and a fixed batch
//! (`tests/data/ppo_loss_reference.json`); Cinder's policy loaded with the same weights must
//! reproduce every value.

use burn::backend::{Autodiff, NdArray};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Int, Tensor, TensorData};
use cinder_rl::advantages::normalize;
use cinder_rl::policy::{Actions, ActorCritic, ActorCriticConfig};
use cinder_rl::ppo::{Minibatch, PpoConfig, ppo_loss};
use serde::Deserialize;

type AB = Autodiff<NdArray<f32>>;
type B = NdArray<f32>;

#[derive(Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Param_ {
    name: String,
    shape: Vec<usize>,
    data: Vec<f32>,
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
    params: Vec<Param_>,
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

/// PyTorch's `Linear.weight` is `[out, in]`; Burn's is `[in, out]`.
fn transpose(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; data.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = data[r * cols + c];
        }
    }
    out
}

/// Replaces the parameters, in visiting order, by the fixture's (converted to Burn's layout).
struct Load {
    params: std::vec::IntoIter<Vec<f32>>,
}

impl ModuleMapper<AB> for Load {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<AB, D>>) -> Param<Tensor<AB, D>> {
        let data = self
            .params
            .next()
            .expect("as many fixture parameters as module parameters");
        param.map(|t| {
            let shape = t.dims();
            Tensor::<AB, D>::from_data(TensorData::new(data, shape), &Default::default())
                .require_grad()
        })
    }
}

/// The gradient of every parameter, in visiting order, in PyTorch's layout.
struct Grads<'a> {
    grads: &'a GradientsParams,
    out: Vec<Vec<f32>>,
}

impl ModuleVisitor<AB> for Grads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<AB, D>>) {
        let g = self
            .grads
            .get::<B, D>(param.id)
            .expect("every parameter has a gradient");
        let dims = g.dims();
        let data = g.into_data().to_vec::<f32>().unwrap();
        self.out.push(if D == 2 && dims[0] > 1 {
            transpose(&data, dims[0], dims[1])
        } else {
            data
        });
    }
}

fn close(name: &str, got: f32, want: f32) {
    let tol = 2e-5 * (1.0 + want.abs());
    assert!(
        (got - want).abs() <= tol,
        "{name}: got {got}, PyTorch {want}"
    );
}

fn scalar(t: Tensor<AB, 1>) -> f32 {
    t.into_data().to_vec::<f32>().unwrap()[0]
}

fn check(case: &Case) {
    let device = Default::default();
    let model: ActorCritic<AB> = ActorCriticConfig::new(case.obs_dim, case.action_dim)
        .with_continuous(case.continuous)
        .with_hidden(case.hidden)
        .init(&device)
        .unwrap();
    let params: Vec<Vec<f32>> = case
        .params
        .iter()
        .map(|p| {
            if p.name.ends_with("weight") {
                transpose(&p.data, p.shape[0], p.shape[1])
            } else {
                p.data.clone()
            }
        })
        .collect();
    let model = model.map(&mut Load {
        params: params.into_iter(),
    });

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
