//! The short chaos run CI makes (through `scripts/test`): `zk-chaos` for 30 s against a 3.8
//! ensemble, then 30 s against a 3.9 one, one after the other.
//!
//! Both versions on every run rather than one per run alternating: they differ where the checks
//! look (3.9 puts zxids in notifications, so the zxid-order rule of persistent watches is checked
//! there only; 3.8 is what Debian ships), and a CI run has no memory of the last one to alternate
//! with. Sequential, not in parallel, because two ensembles and 24 sessions at once on a
//! 2-core machine would measure the machine. About 75 s in all (72 s measured): each run adds the
//! ensemble's start-up and the final checks (which may wait for closed sessions to expire).
//!
//! The seed is fixed so that each CI run injects the same faults in the same order (the timing
//! of real servers still differs from run to run); `CHAOS_SEED=N` picks another, `CHAOS_SECS=N`
//! another length. A failing run's output (its summary names every broken rule) is printed.

use std::process::Command;

fn run(version: &str, seed: u64, secs: u64) -> Result<(), String> {
    let out = Command::new(env!("CARGO_BIN_EXE_zk-chaos"))
        .args(["--duration", &secs.to_string(), "--version", version])
        .args(["--seed", &seed.to_string()])
        .output()
        .map_err(|e| format!("cannot run zk-chaos: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The summary, for the log; the nemesis's running commentary only on failure.
    let summary = stdout
        .split_once("\n== operations")
        .map_or(stdout.as_ref(), |(_, s)| s);
    println!(
        "---- zk-chaos --version {version} --seed {seed} --duration {secs}\n== operations{summary}"
    );
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "zk-chaos --version {version} --seed {seed} --duration {secs} failed ({}):\n{stdout}\n{stderr}",
            out.status
        ))
    }
}

#[test]
fn chaos_30s_on_3_8_then_3_9() {
    let seed = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(13);
    let secs = std::env::var("CHAOS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let mut failures = Vec::new();
    for version in ["3.8", "3.9"] {
        if let Err(e) = run(version, seed, secs) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
