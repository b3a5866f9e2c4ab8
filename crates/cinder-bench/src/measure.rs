//! Timing: wall clock and process CPU time, median over repetitions.

use serde::{Deserialize, Serialize};
use std::time::Instant;

/// One timed run of a workload.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// Env steps taken (sub-env steps for vector envs).
    pub steps: u64,
    /// Wall-clock seconds.
    pub wall_s: f64,
    /// Process CPU seconds (less sensitive to other load on the machine).
    pub cpu_s: f64,
}

impl Measurement {
    /// Steps per wall-clock second.
    pub fn steps_per_sec(&self) -> f64 {
        self.steps as f64 / self.wall_s.max(1e-12)
    }

    /// Steps per CPU second.
    pub fn steps_per_cpu_sec(&self) -> f64 {
        self.steps as f64 / self.cpu_s.max(1e-12)
    }
}

/// The CPU model, core count and architecture, for result tables.
pub fn machine_description() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} cores, {}", std::env::consts::ARCH)
}

/// CPU time consumed by this process so far, in seconds.
pub fn process_cpu_time() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write into; CLOCK_PROCESS_CPUTIME_ID is always valid.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return f64::NAN;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// CPU seconds used by this process's waited-for children so far.
pub fn children_cpu_time() -> f64 {
    // SAFETY: an all-zero rusage is a valid value to write into.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid rusage to write into; RUSAGE_CHILDREN is always valid.
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) } != 0 {
        return f64::NAN;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// Times `workload`, which returns the number of steps it took.
pub fn measure(workload: impl FnOnce() -> u64) -> Measurement {
    let cpu0 = process_cpu_time();
    let t0 = Instant::now();
    let steps = workload();
    let wall_s = t0.elapsed().as_secs_f64();
    let cpu_s = process_cpu_time() - cpu0;
    Measurement {
        steps,
        wall_s,
        cpu_s,
    }
}

/// Runs `workload` `repeats` times (at least once) and returns the run with the median
/// wall-clock time.
pub fn median_of(repeats: usize, mut workload: impl FnMut() -> u64) -> Measurement {
    let mut runs: Vec<Measurement> = (0..repeats.max(1))
        .map(|_| measure(&mut workload))
        .collect();
    runs.sort_by(|a, b| a.wall_s.total_cmp(&b.wall_s));
    runs[runs.len() / 2]
}

/// The `q`-th percentile (0–100) of sorted values, linearly interpolated (NumPy's default).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let pos = (q / 100.0).clamp(0.0, 1.0) * (n - 1) as f64;
            let (lo, frac) = (pos.floor() as usize, pos - pos.floor());
            let hi = (lo + 1).min(n - 1);
            sorted[lo] + (sorted[hi] - sorted[lo]) * frac
        }
    }
}

/// The median (the mean of the two middle values for an even count); NaN when empty.
pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    percentile(&xs, 50.0)
}
