//! TRPO: learning, determinism, exact resume, and its Fisher-vector products, conjugate
//! gradient and step against PyTorch (`tools/trpo_reference.py`, as SB3-contrib computes them).

use burn::backend::{Autodiff, NdArray};
use burn::module::AutodiffModule;
use cinder_env::AutoresetMode;
use cinder_env::classic_control::CartPoleVec;
use cinder_rl::advantages::normalize;
use cinder_rl::policy::{ActorCritic, ActorCriticConfig, NetworkConfig};
use cinder_rl::run::Learner;
use cinder_rl::run::files;
use cinder_rl::trpo::{Trpo, TrpoConfig, TrpoMetrics};
use cinder_rl::trust_region::{
    FisherProduct, PolicyBatch, conjugate_gradient, distribution_at, fisher_vector_product,
    line_search, surrogate_and_gradient, surrogate_and_kl,
};
use serde::Deserialize;

type AB = Autodiff<NdArray<f32>>;
type B = NdArray<f32>;

/// RL Zoo's CartPole-v1 preset for TRPO (2 envs, n_steps 512, cg_damping 1e-3, λ 0.98,
/// 20 critic epochs of minibatch 512) with a `budget` of env steps.
fn cartpole_config(seed: u64, budget: u64) -> TrpoConfig {
    TrpoConfig::new()
        .with_seed(seed)
        .with_total_timesteps(budget)
        .with_num_envs(2)
        .with_num_steps(512)
        .with_batch_size(512)
        .with_cg_damping(1e-3)
        .with_gae_lambda(0.98)
        .with_n_critic_updates(20)
}

fn cartpole_trpo(config: TrpoConfig) -> Trpo<AB, CartPoleVec> {
    let envs = CartPoleVec::new(config.num_envs, AutoresetMode::SameStep).unwrap();
    Trpo::new(config, envs, Default::default()).unwrap()
}

/// Returns improve on CartPole within a CI budget (30 updates of 1024 steps), for three seeds.
#[test]
fn learns_cartpole_across_seeds() {
    for seed in [1, 2, 3] {
        let mut trpo = cartpole_trpo(cartpole_config(seed, 30 * 1024));
        let mut returns: Vec<f64> = Vec::new();
        let mut first = None;
        let mut accepted = 0;
        while !trpo.finished() {
            let m = trpo.iterate().unwrap();
            let episodes = &m.common.episode_returns;
            first.get_or_insert(episodes.iter().sum::<f64>() / episodes.len() as f64);
            returns.extend(episodes);
            accepted += usize::from(m.line_search_success);
            assert!(m.kl_divergence <= 0.01, "{m:?}");
        }
        let first = first.unwrap();
        let last = returns[returns.len() - 20..].iter().sum::<f64>() / 20.0;
        eprintln!(
            "TRPO seed {seed}: first update {first:.1}, last 20 {last:.1}, {accepted} steps accepted"
        );
        assert!(last >= first + 100.0, "seed {seed}: {first} -> {last}");
    }
}

/// Two runs with the same seed give the same metrics; a run killed after its checkpoint and
/// resumed continues exactly as the uninterrupted one (metrics, then weights).
#[test]
fn same_seed_same_run_and_resume_continues_exactly() {
    let config = cartpole_config(4, 6 * 256)
        .with_num_steps(128)
        .with_n_critic_updates(2);
    let run = |n: usize, trpo: &mut Trpo<AB, CartPoleVec>| -> Vec<TrpoMetrics> {
        (0..n)
            .map(|_| trpo.iterate().unwrap().without_timings())
            .collect()
    };
    let mut straight = cartpole_trpo(config.clone());
    let expected = run(6, &mut straight);
    assert_eq!(run(6, &mut cartpole_trpo(config.clone())), expected);

    let dir = std::env::temp_dir().join(format!("cinder-trpo-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(files::CHECKPOINT);
    let mut first = cartpole_trpo(config.clone());
    assert_eq!(run(3, &mut first), expected[..3]);
    first.save_checkpoint(&path).unwrap();
    first.iterate().unwrap();
    drop(first);
    let envs = CartPoleVec::new(2, AutoresetMode::SameStep).unwrap();
    let mut resumed = Trpo::<AB, _>::resume(&path, envs, Default::default()).unwrap();
    assert_eq!(resumed.iteration(), 3);
    assert_eq!(run(3, &mut resumed), expected[3..]);
    assert!(resumed.finished());
    let weights = |t: &Trpo<AB, CartPoleVec>| {
        t.model()
            .valid()
            .actor_parameters()
            .into_data()
            .to_vec::<f32>()
            .unwrap()
    };
    assert_eq!(weights(&resumed), weights(&straight));
    // A PPO checkpoint is not a TRPO one.
    std::fs::write(&path, b"not a checkpoint").unwrap();
    let envs = CartPoleVec::new(2, AutoresetMode::SameStep).unwrap();
    assert!(Trpo::<AB, _>::resume(&path, envs, Default::default()).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn invalid_configs_say_what_to_change() {
    for (config, needle) in [
        (TrpoConfig::new().with_target_kl(0.0), "target_kl"),
        (TrpoConfig::new().with_cg_max_steps(0), "cg_max_steps"),
        (TrpoConfig::new().with_cg_damping(-1.0), "cg_damping"),
        (
            TrpoConfig::new().with_line_search_shrinking_factor(1.0),
            "line_search_shrinking_factor",
        ),
        (
            TrpoConfig::new().with_total_timesteps(10),
            "total_timesteps",
        ),
        (
            TrpoConfig::new().with_fisher_product(FisherProduct::FiniteDifference { epsilon: 0.0 }),
            "epsilon",
        ),
    ] {
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains(needle), "{needle}: {err}");
    }
}

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
    cg_damping: f64,
    target_kl: f32,
    cg_max_steps: usize,
    theta: Vec<f32>,
    obs: Vec<f32>,
    actions: Vec<f32>,
    old_log_probs: Vec<f32>,
    raw_advantages: Vec<f32>,
    expected: Expected,
}

#[derive(Deserialize)]
struct Expected {
    advantages: Vec<f32>,
    policy_objective: f32,
    gradient: Vec<f32>,
    v: Vec<f32>,
    fisher_v: Vec<f32>,
    x0: Vec<f32>,
    search_direction: Vec<f32>,
    max_step_size: f32,
    line_search_accepted: bool,
    line_search_tries: usize,
    theta_after: Vec<f32>,
}

/// `got` within `tol` of `want`, relative to the larger of 1 and `want`'s largest magnitude.
fn close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(1.0f32, |m, x| m.max(x.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * scale,
            "{what}[{i}]: {g} vs PyTorch {w} (tolerance {tol} × {scale})"
        );
    }
}

/// The policy step against SB3-contrib's computation in PyTorch (float64): normalised
/// advantages, surrogate and gradient, the Fisher-vector product (exact, and by finite
/// differences more loosely), the conjugate-gradient direction from the same start, the step
/// size, and the parameters the line search leaves — for a categorical and a Gaussian policy.
#[test]
fn policy_step_matches_sb3_contrib_in_pytorch() {
    let text = include_str!("data/trpo_reference.json");
    let fixture: Fixture = serde_json::from_str(text).unwrap();
    let device = Default::default();
    for case in &fixture.cases {
        let e = &case.expected;
        let model: ActorCritic<AB> = ActorCriticConfig::new(case.obs_dim, case.action_dim)
            .with_continuous(case.continuous)
            .with_network(NetworkConfig::new().with_hidden_sizes(vec![case.hidden, case.hidden]))
            .init(&device)
            .unwrap();
        let layout = model.actor_layout();
        assert_eq!(layout.len(), case.theta.len(), "{}", case.name);
        let theta = &case.theta;

        let mut advantages = case.raw_advantages.clone();
        normalize(&mut advantages);
        close(
            &format!("{} advantages", case.name),
            &advantages,
            &e.advantages,
            1e-5,
        );
        let batch = PolicyBatch {
            obs: case.obs.clone(),
            obs_dim: case.obs_dim,
            actions: case.actions.clone(),
            continuous: case.continuous,
            old_log_probs: case.old_log_probs.clone(),
            advantages,
        };
        batch.check(case.action_dim).unwrap();

        let (objective, gradient) =
            surrogate_and_gradient::<AB>(&layout, theta, &batch, &device).unwrap();
        close(
            &format!("{} objective", case.name),
            &[objective],
            &[e.policy_objective],
            1e-5,
        );
        close(
            &format!("{} gradient", case.name),
            &gradient,
            &e.gradient,
            1e-4,
        );

        let exact = fisher_vector_product::<AB>(
            &layout,
            theta,
            &batch,
            &e.v,
            FisherProduct::Exact,
            &device,
        )
        .unwrap();
        close(
            &format!("{} F v (exact)", case.name),
            &exact,
            &e.fisher_v,
            1e-4,
        );
        let fd = FisherProduct::FiniteDifference { epsilon: 1e-2 };
        let approx =
            fisher_vector_product::<AB>(&layout, theta, &batch, &e.v, fd, &device).unwrap();
        close(
            &format!("{} F v (finite difference)", case.name),
            &approx,
            &e.fisher_v,
            2e-3,
        );

        let damping = case.cg_damping;
        let product = |v: &[f32]| {
            let fv = fisher_vector_product::<AB>(
                &layout,
                theta,
                &batch,
                v,
                FisherProduct::Exact,
                &device,
            )?;
            Ok(fv
                .iter()
                .zip(v)
                .map(|(&f, &x)| (f64::from(f) + damping * f64::from(x)) as f32)
                .collect())
        };
        let solution =
            conjugate_gradient(product, &gradient, &e.x0, case.cg_max_steps, 1e-10).unwrap();
        close(
            &format!("{} search direction", case.name),
            &solution.x,
            &e.search_direction,
            1e-4,
        );
        let fs = product(&solution.x).unwrap();
        let curvature: f64 = solution
            .x
            .iter()
            .zip(&fs)
            .map(|(&a, &b)| f64::from(a) * f64::from(b))
            .sum();
        let step = (2.0 * f64::from(case.target_kl) / curvature).sqrt() as f32;
        close(
            &format!("{} step size", case.name),
            &[step],
            &[e.max_step_size],
            1e-4,
        );

        let direction: Vec<f32> = solution.x.iter().map(|&s| s * step).collect();
        let old = distribution_at::<B>(&layout, theta, &batch, &device).unwrap();
        let search = line_search(
            |t| surrogate_and_kl(&layout, t, &batch, &old, &device),
            theta,
            &direction,
            objective,
            case.target_kl,
            0.8,
            10,
        )
        .unwrap();
        assert_eq!(search.accepted, e.line_search_accepted, "{}", case.name);
        assert_eq!(search.tries, e.line_search_tries, "{}", case.name);
        close(
            &format!("{} parameters after", case.name),
            &search.theta,
            &e.theta_after,
            1e-4,
        );
    }
}

/// The flat actor round-trips through the module, and the functional forward gives the
/// module's own distribution.
#[test]
fn flat_actor_parameters_round_trip() {
    let device = Default::default();
    for continuous in [false, true] {
        let model: ActorCritic<AB> = ActorCriticConfig::new(3, 2)
            .with_continuous(continuous)
            .init(&device)
            .unwrap();
        let theta = model.actor_parameters();
        let shifted = theta.clone().add_scalar(0.25);
        let moved = model
            .clone()
            .with_actor_parameters(shifted.clone())
            .unwrap();
        assert_eq!(
            moved
                .actor_parameters()
                .into_data()
                .to_vec::<f32>()
                .unwrap(),
            shifted.clone().into_data().to_vec::<f32>().unwrap()
        );
        // The critic is untouched.
        let obs = burn::tensor::Tensor::<AB, 2>::ones([5, 3], &device);
        assert_eq!(
            moved
                .value(obs.clone())
                .into_data()
                .to_vec::<f32>()
                .unwrap(),
            model
                .value(obs.clone())
                .into_data()
                .to_vec::<f32>()
                .unwrap()
        );
        let layout = moved.actor_layout();
        let functional = layout.distribution(shifted, obs.clone()).unwrap();
        let module = moved.distribution(obs);
        assert!(
            module
                .mean_kl(&functional)
                .unwrap()
                .into_data()
                .to_vec::<f32>()
                .unwrap()[0]
                .abs()
                < 1e-7
        );
        assert!(model.with_actor_parameters(theta.slice(0..3)).is_err());
    }
}
