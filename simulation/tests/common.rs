//! Runs the simulation binary, one seed per process (in-process reuse is
//! known to break determinism).
#![allow(dead_code, clippy::unwrap_used)]

use std::process::Command;

use serde_json::Value;

/// Runs `--seed N --json` with extra flags and returns the result line.
pub fn run_seed(seed: u64, extra: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_jetraft-simulation"))
        .args(["--seed", &seed.to_string(), "--json"])
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| {
            panic!(
                "seed {seed} printed no result ({}):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        });
    serde_json::from_str(line).unwrap()
}

pub fn violations(result: &Value) -> Vec<String> {
    result["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}
