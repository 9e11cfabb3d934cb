//! Runs the simulation binary, one seed per process (in-process reuse is
//! known to break determinism).
#![allow(dead_code, clippy::unwrap_used)]

use std::process::Command;

use serde_json::Value;

/// Runs `--seed N --json` with extra flags and returns the result line.
/// A run that died instead (a panic in the nodes, e.g. one of openraft's
/// consistency assertions, which only debug builds check) becomes a result
/// whose one violation says so, with the panic message.
pub fn run_seed(seed: u64, extra: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_jetraft-simulation"))
        .args(["--seed", &seed.to_string(), "--json"])
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    match stdout.lines().find_map(|l| l.strip_prefix("RESULT ")) {
        Some(line) => serde_json::from_str(line).unwrap(),
        None => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let panic: Vec<&str> = stderr
                .lines()
                .skip_while(|l| !l.contains("panicked at"))
                .take(2)
                .collect();
            assert!(
                !panic.is_empty(),
                "seed {seed} printed no result ({}):\n{stderr}",
                out.status
            );
            serde_json::json!({
                "seed": seed,
                "violations": [format!("the run died ({}): {}", out.status, panic.join(" "))],
            })
        }
    }
}

pub fn violations(result: &Value) -> Vec<String> {
    result["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}
