//! `cinder-bench`: Cinder's benchmarks from the command line.
//!
//! ```text
//! cargo run --release -p cinder-bench -- envs --out assets/bench
//! cargo run --release -p cinder-bench -- ppo --python ~/.cache/cinder-peers-venv/bin/python --out assets/bench
//! cargo run --release -p cinder-bench -- methods --out assets/bench
//! cargo run --release -p cinder-bench -- suite --out assets/bench
//! cargo run --release -p cinder-bench --features wgpu,ndarray -- backends --backends flex,ndarray,wgpu \
//!     --python ~/.cache/cinder-peers-venv/bin/python --out assets/bench
//! cargo run --release -p cinder-bench --features wgpu -- sequence --out assets/bench
//! ```

use anyhow::{Context, Result, bail};
use cinder_bench::backends::{
    BackendsArgs, BackendsReport, Environment, Progress, bench_backend, run_torch, torch_available,
};
use cinder_bench::envs::{
    ENV_IDS, EnvRow, EnvpoolReport, GymnasiumReport, SETTINGS, ThreadedRow, bench_cinder,
    bench_operant, bench_soa, markdown_table, setting_label, soa_name, threaded_table,
};
use cinder_bench::measure::machine_description;
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Parser)]
#[command(version, about = "Cinder's benchmarks")]
struct Cli {
    /// Keep glibc's default malloc settings instead of `cinder::allocator::tune` (to measure
    /// what the tuning is worth).
    #[arg(long, global = true)]
    default_malloc: bool,
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// Env steps per second: Cinder vs Gymnasium, Operant and envpool, in the same run.
    Envs(EnvsArgs),
    /// PPO on CartPole-v1: Cinder vs CleanRL's ppo.py (PyTorch) vs rl4burn, seed by seed.
    Ppo(PpoArgs),
    /// PPO, REINFORCE, GRPO and TRPO on CartPole-v1: steps and time to solve, seed by seed.
    Methods(MethodsArgs),
    /// The same RL workloads on every Burn backend compiled in, beside PyTorch in the same run.
    Backends(BackendsArgs),
    /// Every algorithm on every classic-control env, seed by seed, with the envs' presets:
    /// greedy evaluations beside the RL Zoo's results.
    Suite(SuiteArgs),
    /// The sequence pipeline on every backend compiled in: sampling tokens/s with and without
    /// the KV cache, GRPO's and PPO's step times.
    Sequence(cinder_bench::sequence::SequenceArgs),
}

fn run_sequence(args: cinder_bench::sequence::SequenceArgs) -> Result<()> {
    let report = cinder_bench::sequence::run(&args)?;
    println!("{}", report.markdown());
    if let Some(out) = &args.out {
        report.write(out)?;
        eprintln!("wrote {0}/sequence.json and {0}/sequence.md", out.display());
    }
    Ok(())
}

fn run_backends(args: BackendsArgs) -> Result<()> {
    if let Some(saved) = &args.from {
        let report = BackendsReport::read(saved)?;
        println!("{}", report.markdown());
        if let Some(out) = &args.out {
            report.write(out)?;
            eprintln!("rendered {} into {}", saved.display(), out.display());
        }
        return Ok(());
    }
    let config = args.config();
    config.validate()?;
    let backends = args.backends();
    let e2e_backends = args.e2e_backends();
    // PyTorch first, so that neither side competes with the other for the cores.
    let mut torch = Vec::new();
    let script = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tools/bench_backends_torch.py"
    ));
    match (args.no_torch, torch_available(&args.python)) {
        (true, _) => {}
        (false, None) => eprintln!(
            "torch is not importable with `{}`: no PyTorch columns (pass --python)",
            args.python
        ),
        (false, Some(cuda)) => {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let mut runs = vec![("cpu", 1)];
            if cores > 1 {
                runs.push(("cpu", cores));
            }
            if cuda {
                runs.push(("cuda", 1));
            }
            for (device, threads) in runs {
                eprintln!("PyTorch on {device} with {threads} thread(s) ...");
                torch.push(run_torch(&args.python, script, device, threads, &config)?);
            }
        }
    }
    let total: usize = backends
        .iter()
        .map(|b| Progress::steps_per_backend(&config, e2e_backends.contains(b)))
        .sum();
    let mut progress = Progress::new(total, false);
    let mut results = Vec::new();
    for &kind in &backends {
        results.push(bench_backend(
            kind,
            &config,
            e2e_backends.contains(&kind),
            &mut progress,
        )?);
    }
    let report = BackendsReport {
        environment: Environment::detect(machine_description()),
        config,
        backends: results,
        torch,
    };
    println!("{}", report.markdown());
    if let Some(out) = &args.out {
        report.write(out)?;
        eprintln!(
            "wrote {0}/backends.json, {0}/backends.md and {0}/backends.svg",
            out.display()
        );
    }
    Ok(())
}

#[derive(Parser)]
struct MethodsArgs {
    /// Seeds, one training run each per method.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    seeds: Vec<u64>,
    /// Cinder's backend (default: the default CPU backend, flex; `ndarray` needs
    /// `--features ndarray`).
    #[arg(long, default_value_t = cinder::backend::BackendKind::cpu())]
    backend: cinder::backend::BackendKind,
    /// Env steps per run.
    #[arg(long, default_value_t = 500_000)]
    total_steps: u64,
    /// Directory for `methods.json`, `methods.md` and the learning curves `methods_curves.svg`.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Keep the runs' directories (metrics, TensorBoard files, checkpoints) here; by default
    /// they go to a temporary directory, removed once the curves are drawn.
    #[arg(long)]
    runs: Option<PathBuf>,
}

/// Where a benchmark's runs keep their directories: `keep`, or a fresh temporary directory
/// (removed by [`RunsDir::finish`]).
struct RunsDir {
    path: PathBuf,
    temporary: bool,
}

impl RunsDir {
    fn new(keep: Option<PathBuf>, stem: &str) -> Result<Self> {
        let (path, temporary) = match keep {
            Some(path) => (path, false),
            None => (
                std::env::temp_dir().join(format!("cinder-bench-{stem}-{}", std::process::id())),
                true,
            ),
        };
        if temporary && path.exists() {
            std::fs::remove_dir_all(&path)?;
        }
        std::fs::create_dir_all(&path)?;
        Ok(Self { path, temporary })
    }

    /// The directory of one run (which must not hold a run yet).
    fn run(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Draws the runs' learning curves into `svg` (when given), then removes a temporary
    /// directory.
    fn finish(self, dirs: &[PathBuf], svg: Option<PathBuf>, title: &str) -> Result<()> {
        if let Some(svg) = svg {
            cinder::plot::env_curves(dirs, &svg, title)?;
            eprintln!("wrote {}", svg.display());
        }
        if self.temporary {
            std::fs::remove_dir_all(&self.path)?;
        }
        Ok(())
    }
}

fn run_methods(args: MethodsArgs) -> Result<()> {
    use cinder_bench::methods::{Method, markdown_table, run_method};
    let runs_dir = RunsDir::new(args.runs.clone(), "methods")?;
    let mut dirs = Vec::new();
    let mut runs = Vec::new();
    for &seed in &args.seeds {
        for method in Method::ALL {
            eprintln!("seed {seed}: {} ...", method.name());
            let dir = runs_dir.run(&format!("{}-s{seed}", method.name().to_lowercase()));
            let run = run_method(
                method,
                seed,
                args.total_steps,
                args.backend,
                Some(dir.clone()),
            )?;
            dirs.push(dir);
            eprintln!(
                "  {:.1} s, solved at {:?}, greedy eval {:.1}",
                run.wall_s, run.solved_step, run.eval_mean
            );
            runs.push(run);
        }
    }
    let machine = machine_description();
    let mut table = markdown_table(&runs);
    table.push_str(&format!(
        "\nMachine: {machine}. CartPole-v1, {} env steps per run, seeds {}, {} backend, \
         release build. \"Steps to 475\": first step where the mean of the last 20 training \
         returns reaches 475; times are training seconds to that point; greedy eval: mean return \
         of the final policy's most likely actions over 20 episodes.\n",
        args.total_steps,
        args.seeds
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        args.backend,
    ));
    println!("{table}");
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out)?;
        let json = serde_json::json!({
            "machine": machine,
            "total_steps": args.total_steps,
            "runs": runs,
        });
        std::fs::write(
            out.join("methods.json"),
            serde_json::to_string_pretty(&json)?,
        )?;
        std::fs::write(out.join("methods.md"), &table)?;
        eprintln!("wrote {}/methods.json and methods.md", out.display());
    }
    runs_dir.finish(
        &dirs,
        args.out.as_ref().map(|out| out.join("methods_curves.svg")),
        "CartPole-v1: PPO, REINFORCE, GRPO, TRPO (defaults; mean and min-max over seeds)",
    )
}

#[derive(Parser)]
struct PpoArgs {
    /// Seeds, one training run each per implementation.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    seeds: Vec<u64>,
    /// Env steps per run (rl4burn's example always takes 499,712).
    #[arg(long, default_value_t = 500_000)]
    total_steps: u64,
    /// Cinder's backend (default: the default CPU backend, flex; `ndarray` needs
    /// `--features ndarray`).
    #[arg(long, default_value_t = cinder::backend::BackendKind::cpu())]
    backend: cinder::backend::BackendKind,
    /// Python interpreter with torch and gymnasium 1.4 (`shared/peers/setup.sh` makes one).
    #[arg(long, default_value = "python3")]
    python: String,
    /// CleanRL-style PPO script (omit or point to a missing file to skip the PyTorch side).
    #[arg(long, default_value = "../shared/peers/ppo_cleanrl.py")]
    cleanrl_script: PathBuf,
    /// rl4burn 0.1.1's `ppo_cartpole` binary, as `bash tools/rl4burn_ppo.sh` builds it
    /// (omitted: rl4burn is not run).
    #[arg(long)]
    rl4burn: Option<PathBuf>,
    /// Directory for `ppo.json` and `ppo.md`.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn run_ppo(args: PpoArgs) -> Result<()> {
    use cinder_bench::ppo::{PeerRuns, markdown_table, run_cinder_on, run_cleanrl, run_rl4burn};
    let with_cleanrl = args.cleanrl_script.exists();
    if !with_cleanrl {
        eprintln!(
            "{} not found: CleanRL is not run (pass --cleanrl-script)",
            args.cleanrl_script.display()
        );
    }
    if args.rl4burn.is_none() {
        eprintln!("no --rl4burn binary: rl4burn is not run (bash tools/rl4burn_ppo.sh builds it)");
    }
    let mut cinder = Vec::new();
    let mut cleanrl = PeerRuns {
        name: "CleanRL ppo.py (PyTorch, 1 thread)".into(),
        runs: Vec::new(),
    };
    let mut rl4burn = PeerRuns {
        name: "rl4burn 0.1.1 ppo_cartpole (Burn 0.20, ndarray)".into(),
        runs: Vec::new(),
    };
    let mut torch = None;
    for &seed in &args.seeds {
        eprintln!("seed {seed}: Cinder ({}) ...", args.backend);
        let run = run_cinder_on(args.backend, seed, args.total_steps)?;
        eprintln!("  {:.1} s, solved at {:?}", run.wall_s, run.solved_step);
        cinder.push(run);
        if with_cleanrl {
            eprintln!("seed {seed}: {} ...", cleanrl.name);
            let (run, version) =
                run_cleanrl(&args.python, &args.cleanrl_script, seed, args.total_steps)?;
            eprintln!("  {:.1} s, solved at {:?}", run.wall_s, run.solved_step);
            cleanrl.runs.push(run);
            torch = Some(version);
        }
        if let Some(bin) = &args.rl4burn {
            eprintln!("seed {seed}: {} ...", rl4burn.name);
            let run = run_rl4burn(bin, seed)?;
            eprintln!("  {:.1} s, solved at {:?}", run.wall_s, run.solved_step);
            rl4burn.runs.push(run);
        }
    }
    let machine = machine_description();
    let peers = vec![cleanrl, rl4burn];
    let mut table = markdown_table(args.backend.name(), &cinder, &peers);
    table.push_str(&format!(
        "\nMachine: {machine}. PPO on CartPole-v1 with CleanRL's hyperparameters (4 envs × 128 steps, \
         {} steps). Cinder: {} backend, release build. CleanRL: `ppo.py` reproduced for \
         Gymnasium 1.4 (`shared/peers/ppo_cleanrl.py`), PyTorch {} on the CPU with 1 thread. \
         rl4burn: its `ppo_cartpole` example as published (release, `--features ndarray`), \
         seeded by `tools/rl4burn_ppo.sh`; its steps to 475 are read from its log, written every \
         2,560 steps. \"Steps to 475\": first step where the mean of the last 20 training returns \
         reaches 475. CleanRL treats truncation as termination; Cinder bootstraps truncated \
         episodes.\n",
        args.total_steps,
        args.backend,
        torch.as_deref().unwrap_or("(not run)"),
    ));
    println!("{table}");
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out)?;
        let json = serde_json::json!({
            "machine": machine,
            "total_steps": args.total_steps,
            "backend": args.backend.name(),
            "torch": torch,
            "cinder": cinder,
            "peers": peers,
        });
        std::fs::write(out.join("ppo.json"), serde_json::to_string_pretty(&json)?)?;
        std::fs::write(out.join("ppo.md"), &table)?;
        eprintln!("wrote {}/ppo.json and ppo.md", out.display());
    }
    Ok(())
}

#[derive(Parser)]
struct EnvsArgs {
    /// Env steps per Rust measurement (sub-env steps for vector envs).
    #[arg(long, default_value_t = 2_000_000)]
    steps: u64,
    /// Repetitions per measurement; the median is reported.
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Env steps per Gymnasium measurement.
    #[arg(long, default_value_t = 50_000)]
    gymnasium_steps: u64,
    /// Repetitions per Gymnasium measurement (after one warm-up run).
    #[arg(long, default_value_t = 3)]
    gymnasium_repeats: usize,
    /// Python interpreter with `gymnasium` installed.
    #[arg(long, default_value = "python3")]
    python: String,
    /// Skip Gymnasium even if it is importable.
    #[arg(long)]
    no_gymnasium: bool,
    /// Sub-envs of the thread comparison with envpool.
    #[arg(long, default_value_t = 1024)]
    threaded_envs: usize,
    /// Thread counts of the thread comparison (Cinder's struct-of-arrays envs and envpool).
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    threads: Vec<usize>,
    /// Env steps per envpool measurement.
    #[arg(long, default_value_t = 1_000_000)]
    envpool_steps: u64,
    /// Skip envpool even if it is importable.
    #[arg(long)]
    no_envpool: bool,
    /// Only these envs (comma-separated ids).
    #[arg(long, value_delimiter = ',')]
    envs: Option<Vec<String>>,
    /// Directory for `envs.json` and `envs.md`.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn gymnasium_report(args: &EnvsArgs, env_ids: &[String]) -> Result<Option<GymnasiumReport>> {
    if args.no_gymnasium {
        return Ok(None);
    }
    let probe = Command::new(&args.python)
        .args(["-c", "import gymnasium"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!(
            "gymnasium is not importable with `{}`: skipping the Gymnasium column \
             (pip install gymnasium==1.4.0, or pass --python)",
            args.python
        );
        return Ok(None);
    }
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tools/bench_gymnasium.py"
    );
    eprintln!("measuring Gymnasium ({script}) ...");
    let output = Command::new(&args.python)
        .args(["-W", "ignore", script, "--steps"])
        .arg(args.gymnasium_steps.to_string())
        .arg("--repeats")
        .arg(args.gymnasium_repeats.to_string())
        .arg("--envs")
        .arg(env_ids.join(","))
        .output()
        .context("running tools/bench_gymnasium.py")?;
    if !output.status.success() {
        bail!(
            "tools/bench_gymnasium.py failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(Some(
        serde_json::from_slice(&output.stdout)
            .context("parsing tools/bench_gymnasium.py output")?,
    ))
}

fn envpool_report(args: &EnvsArgs, env_ids: &[String]) -> Result<Option<EnvpoolReport>> {
    if args.no_envpool {
        return Ok(None);
    }
    let probe = Command::new(&args.python)
        .args(["-c", "import envpool"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!(
            "envpool is not importable with `{}`: skipping the envpool column \
             (../shared/peers/setup.sh installs it, or pass --python)",
            args.python
        );
        return Ok(None);
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tools/bench_envpool.py");
    eprintln!("measuring envpool ({script}) ...");
    let threads: Vec<String> = args.threads.iter().map(|t| t.to_string()).collect();
    let output = Command::new(&args.python)
        .args(["-W", "ignore", script, "--steps"])
        .arg(args.envpool_steps.to_string())
        .arg("--num-envs")
        .arg(args.threaded_envs.to_string())
        .arg("--threads")
        .arg(threads.join(","))
        .arg("--repeats")
        .arg(args.gymnasium_repeats.to_string())
        .arg("--envs")
        .arg(env_ids.join(","))
        .output()
        .context("running tools/bench_envpool.py")?;
    if !output.status.success() {
        bail!(
            "tools/bench_envpool.py failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(Some(
        serde_json::from_slice(&output.stdout).context("parsing tools/bench_envpool.py output")?,
    ))
}

fn run_envs(args: EnvsArgs) -> Result<()> {
    let env_ids: Vec<String> = match &args.envs {
        Some(ids) => ids.clone(),
        None => ENV_IDS.iter().map(|s| s.to_string()).collect(),
    };
    for id in &env_ids {
        if !ENV_IDS.contains(&id.as_str()) {
            bail!("unknown env {id}; known: {}", ENV_IDS.join(", "));
        }
    }
    // Python first, so both sides see the machine in the same state and neither competes.
    if args.threads.contains(&0) || args.threaded_envs == 0 {
        bail!("--threads and --threaded-envs must be at least 1");
    }
    let gym = gymnasium_report(&args, &env_ids)?;
    let envpool = envpool_report(&args, &env_ids)?;
    let mut rows = Vec::new();
    let total = env_ids.len() * SETTINGS.len();
    let mut done = 0;
    for id in &env_ids {
        for &n in &SETTINGS {
            done += 1;
            eprintln!("[{done:>2}/{total}] {id} {} ...", setting_label(n));
            let cinder = bench_cinder(id, n, args.steps, args.repeats);
            let operant = bench_operant(id, n, args.steps, args.repeats);
            let gymnasium = gym.as_ref().and_then(|g| g.find(id, n));
            rows.push(EnvRow {
                env_id: id.clone(),
                num_envs: n,
                implementation: if n == 1 { "Env" } else { "SyncVectorEnv" }.into(),
                cinder,
                gymnasium,
                operant,
            });
            if n > 1 {
                rows.push(EnvRow {
                    env_id: id.clone(),
                    num_envs: n,
                    implementation: format!("{} (SoA)", soa_name(id)),
                    cinder: bench_soa(id, n, 1, args.steps, args.repeats),
                    gymnasium,
                    operant,
                });
            }
        }
    }
    let mut threaded = Vec::new();
    for id in &env_ids {
        for &threads in &args.threads {
            eprintln!(
                "{id}: {} envs on {threads} thread(s) ...",
                args.threaded_envs
            );
            threaded.push(ThreadedRow {
                env_id: id.clone(),
                num_envs: args.threaded_envs,
                threads,
                cinder: bench_soa(id, args.threaded_envs, threads, args.steps, args.repeats),
                envpool: envpool
                    .as_ref()
                    .and_then(|e| e.find(id, args.threaded_envs, threads)),
            });
        }
    }
    let machine = machine_description();
    let operant_build =
        "scalar kernels (its SIMD feature needs nightly and does not build on Rust 1.95)";
    let mut table = markdown_table(&rows);
    table.push_str(&format!(
        "\nMachine: {machine}. Steps per wall-clock second, median of {} runs of {} steps \
         (Gymnasium: median of {} runs of {} steps after a warm-up{}), random actions, resets included. Cinder: typed envs with their \
         TimeLimit; `SyncVectorEnv` and the struct-of-arrays envs (SoA, one thread) in SameStep mode. \
         Operant {}: {operant_build}.\n",
        args.repeats,
        args.steps,
        args.gymnasium_repeats,
        args.gymnasium_steps,
        gym.as_ref()
            .map(|g| format!(
                ", gymnasium {} / numpy {} / Python {}",
                g.gymnasium_version, g.numpy_version, g.python_version
            ))
            .unwrap_or_default(),
        "0.3.3",
    ));
    table.push_str(&format!(
        "\nWith threads: {} envs on 1 and more threads, Cinder's struct-of-arrays envs \
         (`with_threads`) against envpool (`num_threads`, `batch_size` = envs, synchronous `step` \
         from Python{}) with the same thread count; median of {} runs ({} steps for Cinder, {} for \
         envpool).\n\n",
        args.threaded_envs,
        envpool
            .as_ref()
            .map(|e| format!(
                ", envpool {} / numpy {} / Python {}",
                e.envpool_version, e.numpy_version, e.python_version
            ))
            .unwrap_or_default(),
        args.repeats,
        args.steps,
        args.envpool_steps,
    ));
    table.push_str(&threaded_table(&threaded));
    println!("{table}");
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out)?;
        let json = serde_json::json!({
            "machine": machine,
            "steps": args.steps,
            "repeats": args.repeats,
            "gymnasium": gym,
            "operant_build": operant_build,
            "rows": rows,
            "envpool": envpool,
            "threaded": threaded,
        });
        std::fs::write(out.join("envs.json"), serde_json::to_string_pretty(&json)?)?;
        std::fs::write(out.join("envs.md"), &table)?;
        eprintln!("wrote {}/envs.json and envs.md", out.display());
    }
    Ok(())
}

#[derive(Parser)]
struct SuiteArgs {
    /// Algorithms.
    #[arg(long, value_delimiter = ',', default_value = "ppo,reinforce,grpo")]
    algos: Vec<String>,
    /// Cinder's backend (default: the default CPU backend, flex; `ndarray` needs
    /// `--features ndarray`).
    #[arg(long, default_value_t = cinder::backend::BackendKind::cpu())]
    backend: cinder::backend::BackendKind,
    /// Env ids.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "CartPole-v1,Acrobot-v1,MountainCar-v0,MountainCarContinuous-v0,Pendulum-v1"
    )]
    envs: Vec<String>,
    /// Seeds, one run each per algorithm and env.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    seeds: Vec<u64>,
    /// Greedy evaluation episodes per run.
    #[arg(long, default_value_t = 20)]
    eval_episodes: usize,
    /// Env steps per run (default: each preset's budget).
    #[arg(long)]
    total_steps: Option<u64>,
    /// Directory for `<stem>.json` and `<stem>.md`.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The output files' name (e.g. `suite_trpo` to keep one algorithm's table apart).
    #[arg(long, default_value = "suite")]
    stem: String,
    /// Keep the runs' directories (metrics, TensorBoard files, checkpoints) here; by default
    /// they go to a temporary directory, removed once the curves (`<stem>_curves.svg`) are drawn.
    #[arg(long)]
    runs: Option<PathBuf>,
    /// Python with Stable-Baselines3 (`shared/peers/setup.sh`): runs SB3 + RL Zoo's PPO on the
    /// same envs and seeds in the same run (PPO only), first, and adds the comparison table.
    #[arg(long)]
    sb3_python: Option<String>,
    /// The SB3 + RL Zoo script.
    #[arg(long, default_value = "../shared/peers/ppo_sb3_zoo.py")]
    sb3_script: PathBuf,
}

fn run_suite(args: SuiteArgs) -> Result<()> {
    use cinder::presets::Algorithm;
    use cinder_bench::suite::{markdown_table, run_one};
    let algorithms = args
        .algos
        .iter()
        .map(|a| a.parse::<Algorithm>())
        .collect::<Result<Vec<_>, _>>()?;
    let runs_dir = RunsDir::new(args.runs.clone(), &args.stem)?;
    // The peer first, so that both sides see the machine in the same state.
    let mut sb3_runs = Vec::new();
    if let Some(python) = &args.sb3_python {
        if !algorithms.contains(&Algorithm::Ppo) {
            bail!("--sb3-python compares PPO: include ppo in --algos");
        }
        if !args.sb3_script.exists() {
            bail!("no SB3 + RL Zoo script at {}", args.sb3_script.display());
        }
        for env in &args.envs {
            for &seed in &args.seeds {
                eprint!("SB3 + RL Zoo PPO {env} seed {seed} ... ");
                let run = cinder_bench::suite::run_sb3_zoo(
                    python,
                    &args.sb3_script,
                    env,
                    seed,
                    args.eval_episodes,
                )?;
                eprintln!(
                    "{:.1} ± {:.1} ({} steps, {:.1} s)",
                    run.eval_mean, run.eval_std, run.total_timesteps, run.wall_s
                );
                sb3_runs.push(run);
            }
        }
    }
    let mut dirs = Vec::new();
    let mut runs = Vec::new();
    for &algorithm in &algorithms {
        for env in &args.envs {
            for &seed in &args.seeds {
                eprint!("{algorithm} {env} seed {seed} ... ");
                let dir = runs_dir.run(&format!("{algorithm}-{env}-s{seed}"));
                let run = run_one(
                    algorithm,
                    env,
                    seed,
                    args.total_steps,
                    args.eval_episodes,
                    args.backend,
                    Some(dir.clone()),
                )?;
                dirs.push(dir);
                eprintln!(
                    "{:.1} ± {:.1} ({} steps, {:.1} s)",
                    run.eval_mean, run.eval_std, run.steps, run.train_s
                );
                runs.push(run);
            }
        }
    }
    let machine = machine_description();
    let mut table = markdown_table(&runs);
    table.push_str(&format!(
        "\nMachine: {machine}; {} backend, release build, runs one after another. Each run \
         is `cinder train --algo <algorithm> --env <env> --seed <seed> --backend {}` (the env's preset, or the \
         algorithm's defaults where it has none); its score is the greedy (deterministic) \
         evaluation of the final policy over {} episodes seeded 10000, 10001, ...; \
         \"over seeds\" is the mean ± std of the seeds' means.\n",
        args.backend,
        args.backend,
        args.eval_episodes
    ));
    if let (Some(python), false) = (&args.sb3_python, sb3_runs.is_empty()) {
        let sb3_version = Command::new(python)
            .args([
                "-c",
                "import stable_baselines3; print(stable_baselines3.__version__)",
            ])
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|| "(version unknown)".into());
        table.push_str(&format!(
            "\nPPO against Stable-Baselines3 {} with the RL Zoo's hyperparameters \
             (`shared/peers/ppo_sb3_zoo.py`: PyTorch {} on the CPU, 1 thread, the Zoo's budget; \
             greedy evaluation over {} episodes), same envs and seeds, in the same run:\n\n",
            sb3_version, sb3_runs[0].torch, args.eval_episodes,
        ));
        table.push_str(&cinder_bench::suite::sb3_table(&runs, &sb3_runs));
    }
    println!("{table}");
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out)?;
        let json = serde_json::json!({
            "machine": machine,
            "eval_episodes": args.eval_episodes,
            "runs": runs,
            "sb3_zoo": sb3_runs,
        });
        let stem = &args.stem;
        std::fs::write(
            out.join(format!("{stem}.json")),
            serde_json::to_string_pretty(&json)?,
        )?;
        std::fs::write(out.join(format!("{stem}.md")), &table)?;
        eprintln!("wrote {}/{stem}.json and {stem}.md", out.display());
    }
    let title = format!(
        "Classic control, RL Zoo presets: {} (mean and min-max over seeds {})",
        args.algos.join(", "),
        args.seeds
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    runs_dir.finish(
        &dirs,
        args.out
            .as_ref()
            .map(|out| out.join(format!("{}_curves.svg", args.stem))),
        &title,
    )
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if !cli.default_malloc {
        cinder::allocator::tune();
    }
    match cli.command {
        Commands::Suite(args) => run_suite(args),
        Commands::Envs(args) => run_envs(args),
        Commands::Ppo(args) => run_ppo(args),
        Commands::Methods(args) => run_methods(args),
        Commands::Backends(args) => run_backends(args),
        Commands::Sequence(args) => run_sequence(args),
    }
}
