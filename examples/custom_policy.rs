//! Bring your own network and your own env: a grid-reaching task written here and registered
//! under its own id, a policy network of our own (`#[derive(Module)]`: a shared trunk, then a
//! policy head and a value head) that implements Cinder's `Policy` trait, trained by Cinder's
//! PPO learner unchanged — then loaded from its checkpoint and deployed with `Predictor`, as a
//! program that only acts would.
//!
//! ```text
//! cargo run --release --example custom_policy -- --seed 1 --out runs/reach-s1
//! ```
//!
//! The env (`Reach-v0`): a walker and a target on a 7 × 7 grid, both placed at random at each
//! reset; the observation is both positions scaled to [0, 1]; four actions move the walker
//! (walls stop it). Reaching the target gives +1 and ends the episode; every other step costs
//! 0.02; episodes are cut after 40 steps. The best policy walks a shortest path: a return of
//! `1 − 0.02 · (d − 1)` for a target `d` steps away. A random walk rarely gets there in time.

use anyhow::Result;
use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, activation::tanh};
use cinder::backend::Cpu;
use cinder::env::rng::EnvRng;
use cinder::env::space::{BoxSpace, Discrete, Space};
use cinder::env::vector::{AutoresetMode, SyncVectorEnv};
use cinder::env::{Env, EnvError, EnvSpec, EnvState, Info, Step, check_env, make, register};
use cinder::rl::distributions::Categorical;
use cinder::rl::policy::{Policy, PolicyConfig, PolicyDistribution};
use cinder::rl::ppo::{Ppo, PpoConfig};
use cinder::rl::predict::Predictor;
use cinder::rl::run::{Learner, RunDir, TrainOptions, files, train};
use clap::Parser;
use std::path::PathBuf;

/// The grid's last row and column.
const EDGE: i32 = 6;
/// The time limit.
const MAX_STEPS: u64 = 40;

/// A walker and a target on a grid (see the module docs).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct Reach {
    walker: (i32, i32),
    target: (i32, i32),
    rng: EnvRng,
    running: bool,
}

impl Reach {
    fn obs(&self) -> Vec<f32> {
        let s = |v: i32| v as f32 / EDGE as f32;
        vec![
            s(self.walker.0),
            s(self.walker.1),
            s(self.target.0),
            s(self.target.1),
        ]
    }
}

impl Env for Reach {
    type Obs = Vec<f32>;
    type Action = usize;

    fn observation_space(&self) -> Space {
        Space::Box(BoxSpace::uniform_bounds(0.0, 1.0, 4))
    }
    fn action_space(&self) -> Space {
        // 0: up, 1: down, 2: left, 3: right.
        Space::Discrete(Discrete::new(4))
    }
    fn reset(&mut self, seed: Option<u64>) -> cinder::env::Result<(Vec<f32>, Info)> {
        let rng = self.rng.reset(seed);
        let mut cell = || {
            (
                rng.integers(EDGE as u64 + 1) as i32,
                rng.integers(EDGE as u64 + 1) as i32,
            )
        };
        self.walker = cell();
        self.target = cell();
        while self.target == self.walker {
            self.target = cell();
        }
        self.running = true;
        Ok((self.obs(), Info::default()))
    }
    fn step(&mut self, action: &usize) -> cinder::env::Result<Step<Vec<f32>>> {
        if !self.running {
            return Err(EnvError::ResetNeeded);
        }
        let (dx, dy) = match action {
            0 => (0, 1),
            1 => (0, -1),
            2 => (-1, 0),
            3 => (1, 0),
            &action => return Err(EnvError::ActionOutOfRange { action, n: 4 }),
        };
        self.walker = (
            (self.walker.0 + dx).clamp(0, EDGE),
            (self.walker.1 + dy).clamp(0, EDGE),
        );
        let terminated = self.walker == self.target;
        self.running = !terminated;
        Ok(Step {
            obs: self.obs(),
            reward: if terminated { 1.0 } else { -0.02 },
            terminated,
            truncated: false,
            info: Info::default(),
        })
    }
    fn save_state(&self) -> cinder::env::Result<EnvState> {
        serde_json::to_value(self).map_err(|e| EnvError::BadState(e.to_string()))
    }
    fn load_state(&mut self, state: &EnvState) -> cinder::env::Result<()> {
        *self =
            serde_json::from_value(state.clone()).map_err(|e| EnvError::BadState(e.to_string()))?;
        Ok(())
    }
}

/// Our network's architecture: what the checkpoint records, to build it again.
#[derive(Config, Debug, PartialEq)]
struct TwoHeadConfig {
    /// Floats per observation.
    obs_dim: usize,
    /// Number of actions.
    actions: usize,
    /// Width of the trunk and of each head's hidden layer.
    #[config(default = 64)]
    hidden: usize,
    /// Seed of the weights.
    #[config(default = 0)]
    seed: u64,
}

impl PolicyConfig for TwoHeadConfig {
    fn obs_dim(&self) -> usize {
        self.obs_dim
    }
    fn action_dim(&self) -> usize {
        self.actions
    }
    fn continuous(&self) -> bool {
        false
    }
}

/// A shared trunk, then a policy head and a value head, each with a hidden layer of its own
/// (with one trunk only, the value loss's gradients would crowd out the policy's).
#[derive(Module, Debug)]
struct TwoHead<B: Backend> {
    trunk: Linear<B>,
    policy_hidden: Linear<B>,
    logits: Linear<B>,
    value_hidden: Linear<B>,
    value: Linear<B>,
}

impl<B: Backend> Policy<B> for TwoHead<B> {
    type Config = TwoHeadConfig;

    fn init(c: &TwoHeadConfig, device: &B::Device) -> cinder::rl::Result<Self> {
        // Burn's initialisers draw from the backend's generator: seed it for repeatable runs.
        B::seed(device, c.seed);
        let linear = |d_in, d_out| LinearConfig::new(d_in, d_out).init(device);
        let net = Self {
            trunk: linear(c.obs_dim, c.hidden),
            policy_hidden: linear(c.hidden, c.hidden),
            logits: linear(c.hidden, c.actions),
            value_hidden: linear(c.hidden, c.hidden),
            value: linear(c.hidden, 1),
        };
        // Burn draws parameters lazily, at their first use: draw them now, right after seeding.
        let _ = net.forward(Tensor::zeros([1, c.obs_dim], device));
        Ok(net)
    }

    fn obs_dim(&self) -> usize {
        self.trunk.weight.dims()[0]
    }

    /// `obs` `[batch, obs_dim]` → the action distribution and the values `[batch]`, the trunk
    /// computed once for both.
    fn forward(&self, obs: Tensor<B, 2>) -> (PolicyDistribution<B>, Tensor<B, 1>) {
        let features = tanh(self.trunk.forward(obs));
        let pi = tanh(self.policy_hidden.forward(features.clone()));
        let v = tanh(self.value_hidden.forward(features));
        (
            PolicyDistribution::Categorical(Categorical::from_logits(self.logits.forward(pi))),
            self.value.forward(v).squeeze_dim(1),
        )
    }
}

#[derive(Parser, Debug)]
#[command(about = "PPO trains a network of this example's own on an env of its own")]
struct Args {
    /// Seed of the network, the sampling and the envs.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Total env steps.
    #[arg(long, default_value_t = 100_000)]
    total_steps: u64,
    /// Greedy evaluation episodes of the deployed policy.
    #[arg(long, default_value_t = 200)]
    eval_episodes: u64,
    /// The run directory.
    #[arg(long, default_value = "runs/reach")]
    out: PathBuf,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// The backend training runs on (the default CPU backend, flex, with autodiff), and the one
/// deployment acts on.
type Train = Cpu;
type Act = <Cpu as AutodiffBackend>::InnerBackend;

fn main() -> Result<()> {
    let args = Args::parse();
    register(EnvSpec::new("Reach-v0", MAX_STEPS, || {
        cinder::env::env::Erased::boxed(Reach::default())
    }))?;
    check_env(&mut make("Reach-v0")?)?;

    // --- Training: Cinder's PPO, our network.
    let config = PpoConfig::new()
        .with_seed(args.seed)
        .with_num_envs(8)
        .with_num_steps(128)
        .with_learning_rate(1e-3)
        .with_ent_coef(0.01)
        .with_total_timesteps(args.total_steps);
    let envs = SyncVectorEnv::new(
        (0..config.num_envs)
            .map(|_| make("Reach-v0"))
            .collect::<Result<_, _>>()?,
        AutoresetMode::SameStep,
    )?;
    let network = TwoHeadConfig::new(4, 4).with_seed(args.seed);
    let mut ppo = Ppo::<Train, _, TwoHead<Train>>::with_policy(
        config.clone(),
        envs,
        network,
        Default::default(),
    )?;
    let mut run_dir = RunDir::create(&args.out, &config)?;
    let report = train(
        &mut ppo,
        Some(&mut run_dir),
        &TrainOptions {
            progress: !args.quiet,
            ..TrainOptions::default()
        },
    )?;
    println!(
        "trained {} steps in {:.1} s; last 20 training episodes: mean return {:.3}",
        ppo.global_step(),
        ppo.wall_seconds(),
        report.mean_last_returns().unwrap_or(f64::NAN)
    );

    // --- Deployment: the policy alone, from its checkpoint, on the backend without autodiff.
    let checkpoint = args.out.join(files::CHECKPOINT);
    let mut agent = Predictor::<Act, TwoHead<Act>>::load_policy(&checkpoint, &Default::default())?
        .with_action_space(&make("Reach-v0")?.action_space())?;
    let mut env = make("Reach-v0")?;
    let (mut total, mut best, mut reached) = (0.0, 0.0, 0);
    for k in 0..args.eval_episodes {
        let (mut obs, _) = env.reset(Some(1_000_000 + k))?;
        // The shortest path's return, from the positions in the first observation.
        let cell = |x: f32| (x * EDGE as f32).round() as i32;
        let distance = (cell(obs[0]) - cell(obs[2])).abs() + (cell(obs[1]) - cell(obs[3])).abs();
        best += 1.0 - 0.02 * f64::from(distance - 1);
        loop {
            let step = env.step(&agent.predict(&obs, true)?)?;
            total += step.reward;
            if step.terminated {
                reached += 1;
            }
            if step.terminated || step.truncated {
                break;
            }
            obs = step.obs;
        }
    }
    let n = args.eval_episodes as f64;
    println!(
        "deployed greedy policy over {} episodes: mean return {:.3} (shortest paths: {:.3}); \
         target reached in {reached}; run directory {}",
        args.eval_episodes,
        total / n,
        best / n,
        args.out.display()
    );
    Ok(())
}
