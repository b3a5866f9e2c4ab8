//! Records Burn's version (from the workspace lock file) and the compiler's, so that every
//! benchmark result says what built it.

use std::process::Command;

fn main() {
    let lock = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.lock");
    println!("cargo:rerun-if-changed={lock}");
    let burn = std::fs::read_to_string(lock)
        .ok()
        .and_then(|text| {
            let mut lines = text.lines();
            while let Some(line) = lines.next() {
                if line.trim() == "name = \"burn\"" {
                    return lines.next().and_then(|v| {
                        v.trim()
                            .strip_prefix("version = \"")
                            .and_then(|v| v.strip_suffix('"'))
                            .map(str::to_string)
                    });
                }
            }
            None
        })
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=CINDER_BENCH_BURN_VERSION={burn}");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "rustc (unknown version)".into());
    println!("cargo:rustc-env=CINDER_BENCH_RUSTC_VERSION={version}");
}
