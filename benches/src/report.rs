//! `zk-bench-report DIR`: the table of a `scripts/bench` run. DIR holds one file per
//! invocation, `<workload>.<column>.<run>.out` (zk-bench's stdout), `mem.<column>.out`
//! (zk-bench-mem's), and `machine.txt`. For every workload's headline metric the table gives
//! each column's median over the runs, and its ratio to `raw` and to `zookeeper-client`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// The columns, in table order.
pub const COLUMNS: [&str; 6] = [
    "tokio",
    "async-std",
    "smol",
    "blocking",
    "zookeeper-client",
    "raw",
];

/// One `PHASE` line.
#[derive(Debug, Clone, Copy, Default)]
struct PhaseLine {
    ops: f64,
    wall: f64,
    cpu: f64,
    server: f64,
}

/// What one invocation printed.
#[derive(Debug, Clone, Default)]
struct Run {
    phases: BTreeMap<String, PhaseLine>,
    lat: Option<(f64, f64)>,
    na: Option<String>,
    /// `FAIL <workload> <reason>`: written by `scripts/bench` for a W7 or W8 run that failed
    /// (a missing watch event is a failure, not a number); the other workloads stop the run.
    fail: Option<String>,
}

fn parse_run(text: &str) -> Run {
    let mut run = Run::default();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
        match f.first() {
            Some(&"PHASE") => {
                if let (Some(name), Some(ops), Some(wall), Some(cpu), Some(server)) =
                    (f.get(1), num(2), num(3), num(4), num(5))
                {
                    run.phases.insert(
                        (*name).to_owned(),
                        PhaseLine {
                            ops,
                            wall,
                            cpu,
                            server,
                        },
                    );
                }
            }
            Some(&"LAT") => {
                if let (Some(p50), Some(p99)) = (num(2), num(3)) {
                    run.lat = Some((p50, p99));
                }
            }
            Some(&"NA") => run.na = Some(f.get(2..).unwrap_or_default().join(" ")),
            Some(&"FAIL") => run.fail = Some(f.get(2..).unwrap_or_default().join(" ")),
            _ => {}
        }
    }
    run
}

/// A headline metric of one workload.
struct Metric {
    workload: &'static str,
    label: &'static str,
    /// The target for the ratio to raw, as text.
    target: &'static str,
    value: fn(&Run) -> Option<f64>,
}

fn phase(run: &Run, name: &str) -> Option<PhaseLine> {
    run.phases.get(name).copied().filter(|p| p.ops > 0.0)
}

fn cpu_us(run: &Run, name: &str) -> Option<f64> {
    phase(run, name).map(|p| p.cpu / p.ops * 1e6)
}

const METRICS: [Metric; 13] = [
    Metric {
        workload: "w1",
        label: "W1 p50 latency, µs",
        target: "≤ 1.05",
        value: |r| r.lat.map(|l| l.0),
    },
    Metric {
        workload: "w1",
        label: "W1 p99 latency, µs",
        target: "≤ 1.2",
        value: |r| r.lat.map(|l| l.1),
    },
    Metric {
        workload: "w2",
        label: "W2 throughput, ops/s",
        target: "≥ 1.0",
        value: |r| phase(r, "w2").map(|p| p.ops / p.wall),
    },
    Metric {
        workload: "w2",
        label: "W2 client CPU, µs/op",
        target: "≤ 1.2",
        value: |r| cpu_us(r, "w2"),
    },
    Metric {
        workload: "w3",
        label: "W3 create client CPU, µs/op",
        target: "≤ 1.2",
        value: |r| cpu_us(r, "w3_create"),
    },
    Metric {
        workload: "w3",
        label: "W3 delete client CPU, µs/op",
        target: "≤ 1.2",
        value: |r| cpu_us(r, "w3_delete"),
    },
    Metric {
        workload: "w4",
        label: "W4 MB/s",
        target: "≥ 1.0",
        value: |r| phase(r, "w4").map(|p| p.ops / p.wall),
    },
    Metric {
        workload: "w5",
        label: "W5 ms/call",
        target: "≤ 1.1",
        value: |r| phase(r, "w5").map(|p| p.wall / p.ops * 1e3),
    },
    Metric {
        workload: "w6",
        label: "W6 ms/session",
        target: "≤ 1.053 (≥ 0.95× sessions/s)",
        value: |r| phase(r, "w6").map(|p| p.wall / p.ops * 1e3),
    },
    Metric {
        workload: "w7",
        label: "W7 ms until the last of 10,000 events",
        target: "–",
        value: |r| phase(r, "w7").map(|p| p.wall * 1e3),
    },
    Metric {
        workload: "w7",
        label: "W7 client CPU, µs/event (both sessions)",
        target: "–",
        value: |r| cpu_us(r, "w7"),
    },
    Metric {
        workload: "w8",
        label: "W8 ms from kill -9 to re-armed (10,000 + 1 watches)",
        target: "–",
        value: |r| phase(r, "w8").map(|p| p.wall * 1e3),
    },
    Metric {
        workload: "w8",
        label: "W8 client CPU, ms",
        target: "–",
        value: |r| phase(r, "w8").map(|p| p.cpu * 1e3),
    },
];

/// Phases, for the supporting table.
const PHASES: [&str; 9] = [
    "w1",
    "w2",
    "w3_create",
    "w3_delete",
    "w4",
    "w5",
    "w6",
    "w7",
    "w8",
];

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn num(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Every run of every (workload, column).
type Runs = BTreeMap<(String, String), Vec<Run>>;

/// Every `MEM` reading (baseline, idle, watches, watch count, in KiB) of every column.
type MemRuns = BTreeMap<String, Vec<[f64; 4]>>;

/// Why a column's memory run failed (`FAIL mem <reason>`, written by `scripts/bench`).
type MemFailures = BTreeMap<String, String>;

/// A derived number of one phase, for the supporting table.
type PhaseRow = (&'static str, fn(PhaseLine) -> f64);

fn load(dir: &Path) -> std::io::Result<(Runs, MemRuns, MemFailures)> {
    let mut runs: Runs = BTreeMap::new();
    let mut mem: MemRuns = BTreeMap::new();
    let mut mem_failed = MemFailures::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(stem) = name.strip_suffix(".out") else {
            continue;
        };
        let text = std::fs::read_to_string(&path)?;
        if let Some(column) = stem.strip_prefix("mem.") {
            for line in text.lines() {
                let f: Vec<f64> = line
                    .split_whitespace()
                    .skip(2)
                    .filter_map(|v| v.parse().ok())
                    .collect();
                if line.starts_with("MEM ") && f.len() == 4 {
                    mem.entry(column.to_owned())
                        .or_default()
                        .push([f[0], f[1], f[2], f[3]]);
                } else if let Some(reason) = line.strip_prefix("FAIL mem ") {
                    mem_failed.insert(column.to_owned(), reason.to_owned());
                }
            }
            continue;
        }
        // <workload>.<column>.<run>; the column may not contain a dot.
        let parts: Vec<&str> = stem.split('.').collect();
        if let [workload, column, _run] = parts[..] {
            runs.entry((workload.to_owned(), column.to_owned()))
                .or_default()
                .push(parse_run(&text));
        }
    }
    Ok((runs, mem, mem_failed))
}

fn med_of(
    runs: &Runs,
    workload: &str,
    column: &str,
    f: impl Fn(&Run) -> Option<f64>,
) -> Option<f64> {
    let rs = runs.get(&(workload.to_owned(), column.to_owned()))?;
    median(rs.iter().filter_map(f).collect())
}

fn na_of(runs: &Runs, workload: &str, column: &str) -> Option<String> {
    runs.get(&(workload.to_owned(), column.to_owned()))?
        .iter()
        .find_map(|r| r.na.clone())
}

/// How many of the runs of (workload, column) failed, and the first reason.
fn fails_of(runs: &Runs, workload: &str, column: &str) -> (usize, Option<String>) {
    let Some(rs) = runs.get(&(workload.to_owned(), column.to_owned())) else {
        return (0, None);
    };
    let n = rs.iter().filter(|r| r.fail.is_some()).count();
    (n, rs.iter().find_map(|r| r.fail.clone()))
}

/// The report for the run in `dir`, as Markdown.
///
/// Errors if the directory cannot be read.
pub fn report(dir: &Path) -> std::io::Result<String> {
    let (runs, mem, mem_failed) = load(dir)?;
    let mut out = String::new();
    let n_runs = runs.values().map(Vec::len).max().unwrap_or(0);
    let _ = writeln!(
        out,
        "Medians of {n_runs} runs per cell; \"÷ raw\" and \"÷ zookeeper-client\" divide a \
         column's median by that column's median from the same run (the target applies to \
         \"÷ raw\").\n"
    );
    let _ = writeln!(out, "| metric | {} |", COLUMNS.join(" | "));
    let _ = writeln!(out, "|---|{}", "---:|".repeat(COLUMNS.len()));
    let mut failures = Vec::new();
    let ran = |workload: &str| runs.keys().any(|(w, _)| w == workload);
    for m in METRICS.iter().filter(|m| ran(m.workload)) {
        // A column with a failed run has no number for that workload: the medians of the runs
        // that passed would hide the failure.
        let vals: Vec<Option<f64>> = COLUMNS
            .iter()
            .map(|c| match fails_of(&runs, m.workload, c) {
                (0, _) => med_of(&runs, m.workload, c, m.value),
                _ => None,
            })
            .collect();
        let cells: Vec<String> = COLUMNS
            .iter()
            .zip(&vals)
            .map(|(c, v)| {
                let (failed, why) = fails_of(&runs, m.workload, c);
                if failed > 0 {
                    let line = format!("{} {c}: {}", m.workload, why.unwrap_or_default());
                    if !failures.contains(&line) {
                        failures.push(line);
                    }
                    let total = runs
                        .get(&(m.workload.to_owned(), (*c).to_owned()))
                        .map_or(0, Vec::len);
                    return format!("FAIL ({failed}/{total})");
                }
                match (v, na_of(&runs, m.workload, c)) {
                    (Some(v), _) => num(*v),
                    (None, Some(_)) => "NA".to_owned(),
                    (None, None) => "–".to_owned(),
                }
            })
            .collect();
        let _ = writeln!(out, "| **{}** | {} |", m.label, cells.join(" | "));
        for (reference, target) in [("raw", m.target), ("zookeeper-client", "≤ 1 / ≥ 1")] {
            // W7 and W8 have no raw column (NA): no row of ratios to it.
            if target == "–" {
                continue;
            }
            let r = COLUMNS
                .iter()
                .position(|c| *c == reference)
                .and_then(|i| vals[i]);
            let cells: Vec<String> = vals
                .iter()
                .map(|v| match (v, r) {
                    (Some(v), Some(r)) if r != 0.0 => format!("{:.2}", v / r),
                    _ => "–".to_owned(),
                })
                .collect();
            let _ = writeln!(
                out,
                "| ÷ {reference} (target {target}) | {} |",
                cells.join(" | ")
            );
        }
    }

    for f in &failures {
        let _ = writeln!(out, "\nFAIL {f}");
    }

    let _ = writeln!(
        out,
        "\nSupporting numbers (medians): client and server CPU per operation, and throughput, \
         for every phase.\n"
    );
    let _ = writeln!(out, "| phase | measure | {} |", COLUMNS.join(" | "));
    let _ = writeln!(out, "|---|---|{}", "---:|".repeat(COLUMNS.len()));
    for p in PHASES {
        let workload = p.split('_').next().unwrap_or(p);
        if !ran(workload) {
            continue;
        }
        let rows: [PhaseRow; 3] = [
            ("ops/s", |l| l.ops / l.wall),
            ("client CPU µs/op", |l| l.cpu / l.ops * 1e6),
            ("server CPU µs/op", |l| {
                if l.server < 0.0 {
                    f64::NAN
                } else {
                    l.server / l.ops * 1e6
                }
            }),
        ];
        for (label, f) in rows {
            let cells: Vec<String> = COLUMNS
                .iter()
                .map(|c| {
                    med_of(&runs, workload, c, |r| {
                        phase(r, p).map(f).filter(|v| v.is_finite())
                    })
                    .map(num)
                    .unwrap_or_else(|| "–".to_owned())
                })
                .collect();
            let _ = writeln!(out, "| {p} | {label} | {} |", cells.join(" | "));
        }
    }

    if !mem.is_empty() {
        let _ = writeln!(
            out,
            "\nResident memory (VmRSS, MiB; median of runs): the process before connecting, with \
             an idle session, and holding 100,000 watches (50,000 data + 50,000 exist).\n"
        );
        let _ = writeln!(
            out,
            "| column | before connect | idle session | 100,000 watches | per watch |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|");
        for c in COLUMNS {
            let Some(rows) = mem.get(c) else { continue };
            let col = |i: usize| median(rows.iter().map(|r| r[i]).collect()).unwrap_or(0.0);
            let (base, idle, watches, count) = (col(0), col(1), col(2), col(3));
            let _ = writeln!(
                out,
                "| {c} | {:.1} | {:.1} | {:.1} | {:.0} B |",
                base / 1024.0,
                idle / 1024.0,
                watches / 1024.0,
                (watches - idle) * 1024.0 / count.max(1.0)
            );
        }
    }
    for (c, reason) in &mem_failed {
        let _ = writeln!(out, "\nFAIL memory {c}: {reason}");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[(&str, &str)]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "zkb-report-test-{}-{}",
            std::process::id(),
            files.len()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn a_failed_memory_run_is_named_and_the_others_still_reported() {
        let dir = dir_with(&[
            ("mem.tokio.out", "MEM tokio 3000 3500 20000 100000\n"),
            (
                "mem.zookeeper-client.out",
                "FAIL mem zk-bench-mem: session ended as Expired\n",
            ),
        ]);
        let out = report(&dir).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            out.contains("| tokio | 2.9 | 3.4 | 19.5 | 169 B |"),
            "{out}"
        );
        assert!(
            !out.lines().any(|l| l.starts_with("| zookeeper-client |")),
            "{out}"
        );
        assert!(
            out.contains("FAIL memory zookeeper-client: zk-bench-mem: session ended as Expired"),
            "{out}"
        );
    }

    #[test]
    fn a_failed_w8_run_is_a_fail_cell_not_a_median_of_the_others() {
        let dir = dir_with(&[
            ("w8.tokio.1.out", "PHASE w8 10000 0.080 0.003 0.020\n"),
            (
                "w8.zookeeper-client.1.out",
                "PHASE w8 10000 0.050 0.003 0.020\n",
            ),
            (
                "w8.zookeeper-client.2.out",
                "FAIL w8 zk-bench: w8: the read after the reconnect: session expired\n",
            ),
            ("w8.raw.1.out", "NA    w8 raw is one session\n"),
        ]);
        let out = report(&dir).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let row = out
            .lines()
            .find(|l| l.starts_with("| **W8 ms from kill"))
            .unwrap();
        assert_eq!(
            row,
            "| **W8 ms from kill -9 to re-armed (10,000 + 1 watches)** | 80.0 | – | – | – | \
             FAIL (1/2) | NA |"
        );
        assert!(out.contains("FAIL w8 zookeeper-client: zk-bench: w8: the read after"));
        // Workloads that did not run have no rows.
        assert!(!out.contains("W1 p50"));
    }
}
