//! The `jetraft` binary: `server`, `dev`. All logic lives in the library.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
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
    enable_bugs_from_env()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Cmd::Server(args) => {
            let config = NodeConfig::from_args(&args)?;
            rt.block_on(jetraft_server::run_until_signal(config))
        }
        Cmd::Dev { data_dir } => rt.block_on(jetraft_server::dev::run(&data_dir)),
        Cmd::Bench(args) => rt.block_on(jetraft_bench::run(&args)).map(|_| ()),
    }
}

/// Hidden, for tests only: `JETRAFT_SIM_BUG=ack-before-fsync` (names from
/// `jetraft_types::bugs`, comma separated) switches on a deliberate bug in
/// a build that has them compiled in (jetraft-types feature `sim-bugs`), so
/// a real-process test can prove its checker catches it. A build without
/// the feature refuses to start instead of silently running without it.
fn enable_bugs_from_env() -> Result<()> {
    use jetraft_types::bugs::{self, Bug};
    let Ok(names) = std::env::var("JETRAFT_SIM_BUG") else {
        return Ok(());
    };
    for name in names.split(',').filter(|n| !n.is_empty()) {
        let bug = Bug::from_name(name)
            .ok_or_else(|| anyhow::anyhow!("JETRAFT_SIM_BUG: no bug named {name:?}"))?;
        anyhow::ensure!(
            bugs::enable(bug),
            "JETRAFT_SIM_BUG={name}: this build has no bug switches (jetraft-types feature sim-bugs)"
        );
        tracing::warn!(
            bug = name,
            "deliberate bug switched on (JETRAFT_SIM_BUG): this node breaks its guarantees"
        );
    }
    Ok(())
}
