"""The README's table of sequence runs: one row per run directory (its summary.json and the wall
time its log recorded), then mean ± std over the runs of each algorithm.

Usage: python tools/sequence_table.py RUN_DIR... (each RUN_DIR's log is RUN_DIR.log, written by
`/usr/bin/time -f "wall %e" cargo run --release --example digits_grpo -- ... --out RUN_DIR
> RUN_DIR.log 2>&1`)
"""
import json
import statistics
import sys
from pathlib import Path


def wall_seconds(run_dir):
    log = Path(str(run_dir) + ".log")
    if not log.exists():
        return None
    for line in log.read_text().splitlines():
        if line.startswith("wall "):
            return float(line.split()[1])
    return None


def first_step_at(run_dir, threshold=0.9):
    """The first RL step whose held-out evaluation reached `threshold`, or None."""
    for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines():
        v = json.loads(line)
        if v.get("phase") == "rl" and (v.get("held_out_accuracy") or 0) >= threshold:
            return v["step"]
    return None


def main():
    rows = []
    for d in sys.argv[1:]:
        d = Path(d)
        s = json.loads((d / "summary.json").read_text())
        c = json.loads((d / "config.json").read_text())
        algo = c.get("algorithm", "grpo")
        if algo == "grpo" and c["grpo"]["baseline"] == "leave_one_out":
            algo = "rloo"
        rows.append(dict(algo=algo, task=s["task"], seed=c["seed"], s=s, wall=wall_seconds(d),
                         first=first_step_at(d)))
    print("| algorithm | task | seed | warm start: steps, s | held-out exact match before → after "
          "| pass@8 after | first step ≥ 0.90 | RL steps, s | tokens/s | total wall s |")
    print("|---|---|---:|---|---|---:|---:|---|---:|---:|")
    for r in rows:
        s = r["s"]
        wall = f"{r['wall']:.0f}" if r["wall"] is not None else "–"
        print(f"| {r['algo']} | {r['task']} | {r['seed']} | {s['sft_steps']}, {s['sft_seconds']:.1f} "
              f"| {s['accuracy_before']:.3f} → {s['accuracy_after']:.3f} "
              f"| {s['held_out_after'].get('pass_at_k') or 0:.3f} | {r['first'] or '–'} "
              f"| {s['rl_steps']}, {s['rl_seconds']:.1f} | {s['tokens_per_second']:,.0f} | {wall} |")
    groups = {}
    for r in rows:
        groups.setdefault((r["algo"], r["task"]), []).append(r)
    print()
    print("| algorithm | task | runs | before | after | runs ≥ 0.90 | total wall s: mean, max "
          "| tokens/s |")
    print("|---|---|---:|---|---|---:|---|---:|")
    for (algo, task), rs in groups.items():
        before = [r["s"]["accuracy_before"] for r in rs]
        after = [r["s"]["accuracy_after"] for r in rs]
        walls = [r["wall"] for r in rs if r["wall"] is not None]
        rates = [r["s"]["tokens_per_second"] for r in rs]
        wall = f"{statistics.mean(walls):.0f}, {max(walls):.0f}" if walls else "–"
        print(f"| {algo} | {task} | {len(rs)} | {spread(before)} | {spread(after)} "
              f"| {sum(a >= 0.9 for a in after)} of {len(rs)} | {wall} "
              f"| {statistics.mean(rates):,.0f} |")


def spread(xs):
    """Mean ± sample standard deviation; a single run is shown alone."""
    if len(xs) == 1:
        return f"{xs[0]:.3f}"
    return f"{statistics.mean(xs):.3f} ± {statistics.stdev(xs):.3f}"

if __name__ == "__main__":
    main()
