//! `zk-bench-mem [--client NAME] HOST:PORT`: resident memory of a client process before it
//! connects, with an idle session, and holding 100,000 watches. Prints
//! `MEM <column> <baseline_kib> <idle_kib> <watches_kib> <watch_count>`. With `--soak`, the RSS
//! over a million pipelined reads instead: `SOAK <column> <warm_kib> <mid_kib> <end_kib> <n>`.
//! Needs `zk-bench setup`.

use std::process::ExitCode;

use zk_benches::mem::{self, Mem};
use zk_benches::{fail, BenchResult};

fn measure(client: &str, addr: &str) -> BenchResult<Mem> {
    let tokio_rt = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    match client {
        "tokio" => tokio_rt()?
            .block_on(async { mem::ours(zk_tokio::TokioRuntime::default().shared(), addr).await }),
        "async-std" => zk_benches::on_async_std(|rt| mem::ours(rt, addr)),
        "smol" => zk_benches::on_smol(|rt| mem::ours(rt, addr)),
        "blocking" => mem::blocking(addr),
        "zookeeper-client" => tokio_rt()?.block_on(mem::peer(addr)),
        other => Err(fail(format!("no memory measurement for client {other:?}"))),
    }
}

fn soak(client: &str, addr: &str) -> BenchResult<mem::Soak> {
    match client {
        "tokio" => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(mem::soak(zk_tokio::TokioRuntime::default().shared(), addr)),
        "async-std" => zk_benches::on_async_std(|rt| mem::soak(rt, addr)),
        "smol" => zk_benches::on_smol(|rt| mem::soak(rt, addr)),
        other => Err(fail(format!("no soak for client {other:?}"))),
    }
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "--soak") {
        args.remove(0);
        let (client, addr) = match args.as_slice() {
            [flag, client, addr] if flag == "--client" => (client.as_str(), addr.as_str()),
            [addr] => ("tokio", addr.as_str()),
            _ => {
                eprintln!("usage: zk-bench-mem --soak [--client NAME] HOST:PORT");
                return ExitCode::FAILURE;
            }
        };
        return match soak(client, addr) {
            Ok(s) => {
                println!("{}", s.line(client));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("zk-bench-mem: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let (client, addr) = match args.as_slice() {
        [flag, client, addr] if flag == "--client" => (client.as_str(), addr.as_str()),
        [addr] => ("tokio", addr.as_str()),
        _ => {
            eprintln!("usage: zk-bench-mem [--soak] [--client NAME] HOST:PORT");
            return ExitCode::FAILURE;
        }
    };
    match measure(client, addr) {
        Ok(m) => {
            println!("{}", m.line(client));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("zk-bench-mem: {e}");
            ExitCode::FAILURE
        }
    }
}
