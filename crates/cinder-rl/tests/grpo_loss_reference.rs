//! GRPO's loss against PyTorch: `tools/grpo_loss_reference.py` computes it as TRL's
//! `GRPOTrainer` does (group-relative advantages with the sample std, k3 KL to a reference
//! policy, the clipped ratio with ε_low ≠ ε_high, padded trajectories with a mask, the "grpo",
//! "bnpo" and "dr_grpo" aggregations) for fixed weights and a fixed ragged batch
//! (`tests/data/grpo_loss_reference.json`); `policy_gradient::pg_loss` with the same weights,
//! on the unpadded steps with aggregation weights, must reproduce every value and gradient.

use burn::backend::{Autodiff, NdArray};
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Int, Tensor, TensorData};
use cinder_rl::advantages::{GroupScale, group_relative};
use cinder_rl::grpo;
use cinder_rl::losses::{KlEstimator, LossAggregation, ReferenceKl, Surrogate};
use cinder_rl::policy::{Actions, ActorCritic, ActorCriticConfig, NetworkConfig};
use cinder_rl::policy_gradient::{
    AdvantageEstimator, PgBatch, ReferenceKlConfig, ReferenceOutputs, pg_loss,
};
use common::{Grads, TorchParam, close, with_torch_params};
use serde::Deserialize;

mod common;

type AB = Autodiff<NdArray<f32>>;
type B = NdArray<f32>;

#[derive(Deserialize)]
struct Fixture {
    hidden: usize,
    obs_dim: usize,
    action_dim: usize,
    group_size: usize,
    lengths: Vec<usize>,
    rewards: Vec<f64>,
    clip_low: f32,
    clip_high: f32,
    beta: f32,
    max_length: usize,
    params: Vec<TorchParam>,
    ref_params: Vec<TorchParam>,
    obs: Vec<f32>,
    actions: Vec<f32>,
    old_log_probs: Vec<f32>,
    advantages: Vec<f32>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    loss_type: String,
    loss: f32,
    policy_loss: f32,
    kl_to_reference: f32,
    clip_fraction: f32,
    grads: Vec<Vec<f32>>,
}

fn scalar(t: Tensor<AB, 1>) -> f32 {
    t.into_data().to_vec::<f32>().unwrap()[0]
}

#[test]
fn grpo_loss_and_gradients_match_trl_in_pytorch() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/grpo_loss_reference.json"
    ))
    .unwrap();
    let f: Fixture = serde_json::from_str(&text).unwrap();
    let device = Default::default();
    let policy = ActorCriticConfig::new(f.obs_dim, f.action_dim)
        .with_network(NetworkConfig::new().with_hidden_sizes(vec![f.hidden, f.hidden]));
    let model: ActorCritic<AB> = with_torch_params(policy.init(&device).unwrap(), &f.params);
    let reference: ActorCritic<B> = with_torch_params(policy.init(&device).unwrap(), &f.ref_params);

    // Group-relative advantages, TRL's way.
    let advantages = group_relative(&f.rewards, f.group_size, GroupScale::Std).unwrap();
    for (i, (a, e)) in advantages.iter().zip(&f.advantages).enumerate() {
        close(&format!("advantage {i}"), *a as f32, *e);
    }
    assert!(advantages[3..6].iter().all(|a| *a == 0.0), "equal rewards");
    let per_step: Vec<f32> = advantages
        .iter()
        .zip(&f.lengths)
        .flat_map(|(&a, &len)| std::iter::repeat_n(a as f32, len))
        .collect();

    let n = per_step.len();
    let tensor1 = |v: &[f32]| Tensor::<AB, 1>::from_data(TensorData::new(v.to_vec(), [n]), &device);
    let idx: Vec<i64> = f.actions.iter().map(|&a| a as i64).collect();
    let actions = Tensor::<AB, 1, Int>::from_data(TensorData::new(idx, [n]), &device);
    let obs = Tensor::<AB, 2>::from_data(TensorData::new(f.obs.clone(), [n, f.obs_dim]), &device);
    let ref_log_probs = match reference.distribution(obs.clone().inner()) {
        cinder_rl::policy::PolicyDistribution::Categorical(c) => {
            c.log_prob(actions.clone().inner())
        }
        _ => unreachable!(),
    };

    assert_eq!(f.cases.len(), 3);
    for case in &f.cases {
        let aggregation = match case.loss_type.as_str() {
            "grpo" => LossAggregation::Grpo,
            "bnpo" => LossAggregation::Bnpo,
            "dr_grpo" => LossAggregation::DrGrpo {
                max_length: f.max_length,
            },
            other => panic!("unknown loss type {other}"),
        };
        let config = grpo::config()
            .with_advantage(AdvantageEstimator::GroupRelative {
                group_size: f.group_size,
                scale: GroupScale::Std,
            })
            .with_surrogate(Surrogate::Clipped {
                clip_low: f.clip_low,
                clip_high: f.clip_high,
            })
            .with_reference_kl(Some(
                ReferenceKlConfig::new()
                    .with_coef(f.beta)
                    .with_kl(ReferenceKl::Estimator(KlEstimator::K3)),
            ))
            .with_aggregation(aggregation);
        let terms = pg_loss(
            &model,
            PgBatch {
                obs: obs.clone(),
                actions: Actions::Discrete(actions.clone()),
                old_log_probs: tensor1(&f.old_log_probs),
                advantages: tensor1(&per_step),
                weights: tensor1(&aggregation.weights(&f.lengths)),
                returns: None,
                reference: Some(ReferenceOutputs::LogProbs(Tensor::from_inner(
                    ref_log_probs.clone(),
                ))),
            },
            &config,
        )
        .unwrap();
        let name = &case.loss_type;
        close(
            &format!("{name} loss"),
            scalar(terms.loss.clone()),
            case.loss,
        );
        close(
            &format!("{name} policy loss"),
            scalar(terms.policy_loss.clone()),
            case.policy_loss,
        );
        close(
            &format!("{name} kl"),
            scalar(terms.kl_to_reference.clone().unwrap()),
            case.kl_to_reference,
        );
        close(
            &format!("{name} clip fraction"),
            scalar(terms.clip_fraction.clone()),
            case.clip_fraction,
        );
        assert!(terms.value_loss.is_none());

        let grads = GradientsParams::from_grads(terms.loss.backward(), &model);
        let mut visitor = Grads {
            grads: &grads,
            out: Vec::new(),
        };
        // The critic is not in GRPO's loss: only the actor's parameters have gradients.
        model.actor().visit(&mut visitor);
        let actor_grads = &case.grads[..visitor.out.len()];
        for (k, (got, want)) in visitor.out.iter().zip(actor_grads).enumerate() {
            for (i, (g, w)) in got.iter().zip(want).enumerate() {
                close(&format!("{name} grad {}[{i}]", f.params[k].name), *g, *w);
            }
        }
        assert!(
            case.grads[visitor.out.len()..]
                .iter()
                .flatten()
                .all(|g| *g == 0.0)
        );
    }
}
