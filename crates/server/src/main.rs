//! The `jetraft` binary: `server`, `dev`. All logic lives in the library.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use jetraft_server::FatalStop;
use jetraft_server::config::{NodeConfig, ServerArgs};

/// mimalloc instead of glibc's malloc: under publish load glibc's
/// allocator (with its consolidation passes) took about a fifth of the
/// stream leader's CPU (`perf record`, docs/performance.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "jetraft",
    version,
    about = "A clustered, durable message store that speaks NATS"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one node.
    Server(ServerArgs),
    /// Run a local three-node cluster (child processes) until Ctrl-C.
    Dev {
        /// Where the three nodes keep their data.
        #[arg(long, default_value = "data/dev")]
        data_dir: PathBuf,
    },
    /// Measure publish latency and throughput of any JetStream endpoint
    /// (jetraft or nats-server).
    Bench(jetraft_bench::BenchArgs),
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,openraft=warn,h2=warn,tower=warn,async_nats=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Cmd::Server(args) => {
            let config = NodeConfig::from_args(&args)?;
            match rt.block_on(jetraft_server::run_until_signal(config)) {
                Err(e) if e.is::<FatalStop>() => {
                    // One line, then out at once: no shutdown, no drop of
                    // the store (nothing may be written or synced now).
                    tracing::error!("{e}; the node stopped acking and voting and exits");
                    std::process::exit(FatalStop::EXIT_CODE)
                }
                other => other,
            }
        }
        Cmd::Dev { data_dir } => rt.block_on(jetraft_server::dev::run(&data_dir)),
        Cmd::Bench(args) => rt.block_on(jetraft_bench::run(&args)).map(|_| ()),
    }
}
