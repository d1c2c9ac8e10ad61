//! `zk-bench-report DIR`: prints the Markdown table of a `scripts/bench` run (medians, ratios to
//! `raw` and to `zookeeper-client`, memory), preceded by DIR/machine.txt if present.

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: zk-bench-report DIR");
        return ExitCode::FAILURE;
    };
    let dir = Path::new(&dir);
    if let Ok(machine) = std::fs::read_to_string(dir.join("machine.txt")) {
        println!("```text\n{}```\n", machine);
    }
    match zk_benches::report::report(dir) {
        Ok(table) => {
            print!("{table}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("zk-bench-report: {}: {e}", dir.display());
            ExitCode::FAILURE
        }
    }
}
