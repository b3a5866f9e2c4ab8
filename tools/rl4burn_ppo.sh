#!/usr/bin/env bash
# Builds rl4burn 0.1.1's `ppo_cartpole` example (CleanRL's CartPole configuration on Burn 0.20's
# ndarray backend) from its crates.io source, for `cinder-bench ppo --rl4burn BIN`, which runs
# it seed by seed beside Cinder and CleanRL.
#
# Usage: bash tools/rl4burn_ppo.sh [DIR]      (DIR default: ~/.cache/cinder-rl4burn)
# Prints the path of the built binary on its last line.
#
# rl4burn depends on Burn 0.20, so it cannot be a dependency of this workspace: a scratch crate
# in DIR depends on `rl4burn = "=0.1.1"`, cargo fetches the source, and the example is built
# from a copy of that source with the `ndarray` feature, as its documentation says to run it.
#
# One change is made to the copy, so that runs differ by seed as ours and CleanRL's do: the
# example hard-codes seed 42 for its action sampler and 1000 + i for its envs, and leaves
# Burn's weight initialisation unseeded. The patch reads the seed from RL4BURN_SEED (default 42,
# the example's own), seeds Burn's generator with it, the sampler with it and env i with
# 1000 * seed + i. Nothing else changes: its PPO, networks, hyperparameters and logging are as
# published.
set -euo pipefail
dir=${1:-$HOME/.cache/cinder-rl4burn}
mkdir -p "$dir/scratch/src"
cat > "$dir/scratch/Cargo.toml" <<'EOF'
[package]
name = "rl4burn-fetch"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
rl4burn = "=0.1.1"
EOF
echo 'fn main() {}' > "$dir/scratch/src/main.rs"
(cd "$dir/scratch" && cargo fetch -q)
src=$(cd "$dir/scratch" && cargo metadata --format-version 1 --locked 2>/dev/null \
  | python3 -c 'import json,sys; m=json.load(sys.stdin); print(next(p["manifest_path"] for p in m["packages"] if p["name"]=="rl4burn" and p["version"]=="0.1.1"))' \
  | xargs dirname)
test -f "$src/examples/ppo_cartpole.rs" || { echo "rl4burn 0.1.1 source not found" >&2; exit 1; }

work="$dir/rl4burn-0.1.1"
rm -rf "$work"
cp -r "$src" "$work"
ex="$work/examples/ppo_cartpole.rs"
patch_line() { # file, exact text, replacement: fails unless the text occurs exactly once
  python3 - "$@" <<'EOF'
import sys
path, old, new = sys.argv[1:4]
text = open(path).read()
if text.count(old) != 1:
    sys.exit(f"patch: expected one {old!r} in {path}, found {text.count(old)}")
open(path, "w").write(text.replace(old, new))
EOF
}
patch_line "$ex" 'let device = NdArrayDevice::Cpu;' \
  'let device = NdArrayDevice::Cpu;
    let seed: u64 = std::env::var("RL4BURN_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(42);
    <AutodiffB as burn::tensor::backend::Backend>::seed(&device, seed);'
patch_line "$ex" 'SmallRng::seed_from_u64(42)' 'SmallRng::seed_from_u64(seed)'
patch_line "$ex" 'SmallRng::seed_from_u64(1000 + i as u64)' \
  'SmallRng::seed_from_u64(1000 * seed + i as u64)'

(cd "$work" && cargo build -q --release --example ppo_cartpole --features ndarray \
  --target-dir "$dir/target")
bin="$dir/target/release/examples/ppo_cartpole"
test -x "$bin"
echo "$bin"
