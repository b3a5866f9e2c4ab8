//! Environment throughput: Cinder's envs, single and vectorised, beside Gymnasium, Operant and
//! envpool.
//!
//! Every workload takes pre-generated random actions (so that sampling is not timed), steps
//! until it has taken the requested number of env steps, and resets finished episodes (inside
//! the vector env for vectorised runs), so resets are included.

use crate::measure::{Measurement, median_of};
use cinder_env::classic_control::{
    Acrobot, AcrobotKernel, CartPole, CartPoleKernel, MountainCar, MountainCarContinuous,
    MountainCarContinuousKernel, MountainCarKernel, Pendulum, PendulumKernel,
};
use cinder_env::rng::NpRandom;
use cinder_env::soa_vector::{SoaKernel, SoaVectorEnv};
use cinder_env::vector::{AutoresetMode, SyncVectorEnv, VectorEnv};
use cinder_env::wrappers::TimeLimit;
use cinder_env::{Env, SpaceValue, registry};
use serde::{Deserialize, Serialize};
use std::hint::black_box;

/// The envs measured, in table order.
pub const ENV_IDS: [&str; 5] = [
    "CartPole-v1",
    "Acrobot-v1",
    "MountainCar-v0",
    "MountainCarContinuous-v0",
    "Pendulum-v1",
];

/// How many envs step together: 1 means a single env without a vector wrapper.
pub const SETTINGS: [usize; 4] = [1, 8, 64, 4096];

/// The label of a setting in tables and JSON (`"single"`, `"vec8"`, ...).
pub fn setting_label(num_envs: usize) -> String {
    if num_envs == 1 {
        "single".to_string()
    } else {
        format!("vec{num_envs}")
    }
}

/// One row of the env benchmark.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnvRow {
    /// Gymnasium id.
    pub env_id: String,
    /// Number of envs stepped together (1: single env).
    pub num_envs: usize,
    /// Which Cinder implementation: `"Env"`, `"SyncVectorEnv"` or a specialised vector env.
    pub implementation: String,
    /// Cinder's figure.
    pub cinder: Measurement,
    /// Gymnasium's figure from the same run, if measured.
    pub gymnasium: Option<Measurement>,
    /// Operant's figure from the same run, if it has the env.
    pub operant: Option<Measurement>,
}

const ACTION_BUFFER: usize = 1 << 16;

fn random_actions<A: SpaceValue>(space: &cinder_env::Space, seed: u64) -> Vec<A> {
    let mut rng = NpRandom::from_seed(seed);
    (0..ACTION_BUFFER)
        .map(|_| A::from_value(space.sample(&mut rng)).expect("space matches the action type"))
        .collect()
}

/// Single env: `steps` steps with resets on episode ends.
fn run_single<E: Env>(env: &mut E, actions: &[E::Action], steps: u64) -> u64 {
    env.reset(Some(0)).expect("reset");
    let mask = ACTION_BUFFER - 1;
    for t in 0..steps as usize {
        let step = env.step(&actions[t & mask]).expect("valid action");
        let done = step.done();
        black_box(&step.obs);
        if done {
            env.reset(None).expect("reset");
        }
    }
    steps
}

/// Vector env: `steps` sub-env steps in total, automatic resets.
fn run_vector<V: VectorEnv>(envs: &mut V, actions: &[V::Action], steps: u64) -> u64 {
    let n = envs.num_envs();
    envs.reset(Some(0)).expect("reset");
    let calls = (steps as usize).div_ceil(n);
    let windows = ACTION_BUFFER / n;
    for c in 0..calls {
        let start = (c % windows) * n;
        let out = envs
            .step(&actions[start..start + n])
            .expect("valid actions");
        black_box(out.obs);
    }
    (calls * n) as u64
}

fn bench_typed<E>(
    make: fn() -> E,
    id: &str,
    num_envs: usize,
    steps: u64,
    repeats: usize,
) -> Measurement
where
    E: Env,
{
    let limit = registry::spec(id).expect("registered").max_episode_steps;
    let make_env = || TimeLimit::new(make(), limit).expect("positive limit");
    let actions: Vec<E::Action> = random_actions(&make().action_space(), 7);
    if num_envs == 1 {
        let mut env = make_env();
        median_of(repeats, || run_single(&mut env, &actions, steps))
    } else {
        let mut envs = SyncVectorEnv::from_fn(num_envs, AutoresetMode::SameStep, |_| make_env())
            .expect("vector env");
        median_of(repeats, || run_vector(&mut envs, &actions, steps))
    }
}

fn bench_kernel<K: SoaKernel>(
    num_envs: usize,
    threads: usize,
    steps: u64,
    repeats: usize,
) -> Measurement {
    let mut envs = SoaVectorEnv::<K>::new(num_envs, AutoresetMode::SameStep)
        .and_then(|envs| envs.with_threads(threads))
        .expect("vector env");
    let actions: Vec<K::Action> = random_actions(&K::Env::default().action_space(), 7);
    median_of(repeats, || run_vector(&mut envs, &actions, steps))
}

/// The struct-of-arrays vector env of `env_id`, as named in tables.
pub fn soa_name(env_id: &str) -> &'static str {
    match env_id {
        "CartPole-v1" => "CartPoleVec",
        "Acrobot-v1" => "AcrobotVec",
        "MountainCar-v0" => "MountainCarVec",
        "MountainCarContinuous-v0" => "MountainCarContinuousVec",
        "Pendulum-v1" => "PendulumVec",
        other => panic!("no struct-of-arrays env for {other}"),
    }
}

/// Throughput of `env_id`'s struct-of-arrays vector env with `num_envs` sub-envs on `threads`
/// threads (SameStep autoreset).
pub fn bench_soa(
    env_id: &str,
    num_envs: usize,
    threads: usize,
    steps: u64,
    repeats: usize,
) -> Measurement {
    let (n, t) = (num_envs, threads);
    match env_id {
        "CartPole-v1" => bench_kernel::<CartPoleKernel>(n, t, steps, repeats),
        "Acrobot-v1" => bench_kernel::<AcrobotKernel>(n, t, steps, repeats),
        "MountainCar-v0" => bench_kernel::<MountainCarKernel>(n, t, steps, repeats),
        "MountainCarContinuous-v0" => {
            bench_kernel::<MountainCarContinuousKernel>(n, t, steps, repeats)
        }
        "Pendulum-v1" => bench_kernel::<PendulumKernel>(n, t, steps, repeats),
        other => panic!("no benchmark for {other}"),
    }
}

/// Cinder's throughput for `env_id` with `num_envs` envs.
pub fn bench_cinder(env_id: &str, num_envs: usize, steps: u64, repeats: usize) -> Measurement {
    match env_id {
        "CartPole-v1" => bench_typed(CartPole::new, env_id, num_envs, steps, repeats),
        "Acrobot-v1" => bench_typed(Acrobot::new, env_id, num_envs, steps, repeats),
        "MountainCar-v0" => bench_typed(MountainCar::new, env_id, num_envs, steps, repeats),
        "MountainCarContinuous-v0" => {
            bench_typed(MountainCarContinuous::new, env_id, num_envs, steps, repeats)
        }
        "Pendulum-v1" => bench_typed(Pendulum::new, env_id, num_envs, steps, repeats),
        other => panic!("no benchmark for {other}"),
    }
}

fn run_operant<V: operant_core::VecEnvironment>(
    env: &mut V,
    actions: &[f32],
    obs: &mut [f32],
    rewards: &mut [f32],
    steps: u64,
) -> u64 {
    let n = env.num_envs();
    env.reset(0);
    let calls = (steps as usize).div_ceil(n);
    let windows = actions.len() / n;
    for c in 0..calls {
        let start = (c % windows) * n;
        env.step(&actions[start..start + n]);
        // A learner needs the observations and rewards of every step.
        env.write_observations(obs);
        env.write_rewards(rewards);
        black_box(&obs);
    }
    (calls * n) as u64
}

/// Operant's throughput (auto-reset stepping plus reading observations and rewards), for the
/// envs it has: CartPole, MountainCar and Pendulum.
pub fn bench_operant(
    env_id: &str,
    num_envs: usize,
    steps: u64,
    repeats: usize,
) -> Option<Measurement> {
    let mut rng = NpRandom::from_seed(7);
    let len = ACTION_BUFFER.max(num_envs);
    let discrete =
        |rng: &mut NpRandom, n: u64| (0..len).map(|_| rng.integers(n) as f32).collect::<Vec<_>>();
    match env_id {
        "CartPole-v1" => Some(time_operant(
            operant_envs::CartPole::with_defaults(num_envs),
            &discrete(&mut rng, 2),
            steps,
            repeats,
        )),
        "MountainCar-v0" => Some(time_operant(
            operant_envs::MountainCar::with_defaults(num_envs),
            &discrete(&mut rng, 3),
            steps,
            repeats,
        )),
        "Pendulum-v1" => {
            let actions: Vec<f32> = (0..len).map(|_| rng.uniform(-2.0, 2.0) as f32).collect();
            Some(time_operant(
                operant_envs::Pendulum::with_defaults(num_envs),
                &actions,
                steps,
                repeats,
            ))
        }
        _ => None,
    }
}

fn time_operant<V: operant_core::VecEnvironment>(
    mut env: V,
    actions: &[f32],
    steps: u64,
    repeats: usize,
) -> Measurement {
    let mut obs = vec![0.0; env.num_envs() * env.observation_size()];
    let mut rewards = vec![0.0; env.num_envs()];
    median_of(repeats, || {
        run_operant(&mut env, actions, &mut obs, &mut rewards, steps)
    })
}

/// Gymnasium's figures, as printed by `tools/bench_gymnasium.py`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GymnasiumReport {
    /// Gymnasium's version.
    pub gymnasium_version: String,
    /// NumPy's version.
    pub numpy_version: String,
    /// Python's version.
    pub python_version: String,
    /// One entry per env and setting.
    pub results: Vec<GymnasiumResult>,
}

/// One Gymnasium measurement.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GymnasiumResult {
    /// Gymnasium id.
    pub env_id: String,
    /// Number of envs (1: single env, else `SyncVectorEnv` in SAME_STEP mode).
    pub num_envs: usize,
    /// The timing.
    pub measurement: Measurement,
}

impl GymnasiumReport {
    /// The measurement for `env_id` with `num_envs` envs, if taken.
    pub fn find(&self, env_id: &str, num_envs: usize) -> Option<Measurement> {
        self.results
            .iter()
            .find(|r| r.env_id == env_id && r.num_envs == num_envs)
            .map(|r| r.measurement)
    }
}

fn fmt_rate(m: Option<Measurement>) -> String {
    match m {
        None => "—".to_string(),
        Some(m) => fmt_rate_value(m.steps_per_sec()),
    }
}

fn fmt_rate_value(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.1} M", r / 1e6)
    } else {
        format!("{:.0} k", r / 1e3)
    }
}

fn fmt_ratio(ours: Measurement, theirs: Option<Measurement>) -> String {
    match theirs {
        None => "—".to_string(),
        Some(t) => format!("{:.1}×", ours.steps_per_sec() / t.steps_per_sec()),
    }
}

/// envpool's figures, as printed by `tools/bench_envpool.py`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnvpoolReport {
    /// envpool's version.
    pub envpool_version: String,
    /// NumPy's version.
    pub numpy_version: String,
    /// Python's version.
    pub python_version: String,
    /// One entry per env and thread count.
    pub results: Vec<EnvpoolResult>,
}

/// One envpool measurement.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnvpoolResult {
    /// Gymnasium id.
    pub env_id: String,
    /// Number of envs stepped together (`batch_size == num_envs`).
    pub num_envs: usize,
    /// envpool's `num_threads`.
    pub threads: usize,
    /// The timing.
    pub measurement: Measurement,
}

impl EnvpoolReport {
    /// The measurement for `env_id` with `num_envs` envs on `threads` threads, if taken.
    pub fn find(&self, env_id: &str, num_envs: usize, threads: usize) -> Option<Measurement> {
        self.results
            .iter()
            .find(|r| r.env_id == env_id && r.num_envs == num_envs && r.threads == threads)
            .map(|r| r.measurement)
    }
}

/// One row of the thread comparison: Cinder's struct-of-arrays env and envpool with the same
/// number of envs and threads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThreadedRow {
    /// Gymnasium id.
    pub env_id: String,
    /// Number of envs stepped together.
    pub num_envs: usize,
    /// Threads used by both.
    pub threads: usize,
    /// Cinder's struct-of-arrays vector env.
    pub cinder: Measurement,
    /// envpool's figure from the same run, if measured.
    pub envpool: Option<Measurement>,
}

/// The thread comparison as a markdown table: steps per wall-clock second and per CPU second.
pub fn threaded_table(rows: &[ThreadedRow]) -> String {
    let mut out = String::from(
        "| env | envs | threads | Cinder implementation | Cinder steps/s | envpool steps/s | Cinder ÷ envpool | Cinder steps per CPU-s |\n\
         |---|---|---:|---|---:|---:|---:|---:|\n",
    );
    for row in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            row.env_id,
            row.num_envs,
            row.threads,
            soa_name(&row.env_id),
            fmt_rate(Some(row.cinder)),
            fmt_rate(row.envpool),
            fmt_ratio(row.cinder, row.envpool),
            fmt_rate_value(row.cinder.steps_per_cpu_sec()),
        ));
    }
    out
}

/// The results as a markdown table (steps per wall-clock second).
pub fn markdown_table(rows: &[EnvRow]) -> String {
    let mut out = String::from(
        "| env | envs | Cinder implementation | Cinder steps/s | Gymnasium steps/s | Cinder ÷ Gymnasium | Operant steps/s | Cinder ÷ Operant |\n\
         |---|---|---|---:|---:|---:|---:|---:|\n",
    );
    for row in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            row.env_id,
            setting_label(row.num_envs),
            row.implementation,
            fmt_rate(Some(row.cinder)),
            fmt_rate(row.gymnasium),
            fmt_ratio(row.cinder, row.gymnasium),
            fmt_rate(row.operant),
            fmt_ratio(row.cinder, row.operant),
        ));
    }
    out
}
