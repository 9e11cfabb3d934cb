//! A fixed set of seeds, every fault on, must pass; run through the seed
//! runner (`--seeds`), one process per seed, as an operator would.
#![allow(clippy::unwrap_used)]

use std::process::Command;

/// Runs the seed runner with `args`; every one of its `n` seeds must pass.
fn all_pass(n: usize, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_jetraft-simulation"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    let summary = stdout.lines().last().unwrap_or_default();
    let want = format!("seeds: {n}, passed: {n}, failed: 0, seeds/s: ");
    assert!(summary.starts_with(&want), "{summary}");
    assert!(out.status.success());
}

#[test]
fn fixed_seeds_pass() {
    all_pass(4, &["--seeds", "100..104", "--jobs", "2"]);
}

#[test]
fn a_failing_seed_prints_its_replay_command_and_fails() {
    let out = Command::new(env!("CARGO_BIN_EXE_jetraft-simulation"))
        .args([
            "--seeds",
            "0..1",
            "--bug",
            "skip-cas-check",
            "--duration",
            "20",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains("FAILED seed 0: ")
            && stdout
                .contains("replay: cargo run --release -p jetraft-simulation -- --seed 0 --trace"),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .last()
            .unwrap()
            .starts_with("seeds: 1, passed: 0, failed: 1")
    );
}

/// Every fault and the leaders asked to hand over every few seconds
/// (`STREAM.LEADER.STEPDOWN`, `CONSUMER.LEADER.STEPDOWN`): every checker
/// still passes, and the handovers did happen.
#[test]
fn step_downs_keep_every_promise() {
    let all = "partition,one-way,delay,conn-fail,crash,pause,clock-jump,leader-kill,bit-flip,\
               wipe-disk,restore-backup,sync-fail,power-cut,rescale,step-down";
    all_pass(3, &["--seeds", "200..203", "--jobs", "2", "--faults", all]);
    let out = Command::new(env!("CARGO_BIN_EXE_jetraft-simulation"))
        .args(["--seed", "200", "--trace", "--faults", all])
        .output()
        .unwrap();
    let trace = String::from_utf8_lossy(&out.stdout);
    let handed = trace
        .lines()
        .filter(|l| l.contains("LEADER.STEPDOWN") && l.ends_with("handed over"))
        .count();
    assert!(handed >= 3, "only {handed} handovers:\n{trace}");
}
