//! The `jetraft` binary: `server`, `dev`, `bench`, `admin`. All logic lives in the library.

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
    /// Operator requests to running nodes (over their monitoring port).
    #[command(subcommand)]
    Admin(AdminCmd),
}

#[derive(Subcommand)]
enum AdminCmd {
    /// When a majority of a group's replicas is gone for good or lost
    /// their disks, let the nodes that remain form the group again,
    /// accepting that acknowledged writes only the lost replicas held are
    /// gone. Run it against every node that remains.
    AcceptLoss {
        /// Monitoring addresses of the nodes that remain (host:port, comma
        /// separated).
        #[arg(long, value_delimiter = ',', required = true)]
        http: Vec<String>,
        /// The stream whose group to recover.
        #[arg(long, conflicts_with = "meta", required_unless_present = "meta")]
        stream: Option<String>,
        /// Recover the meta group (the catalog of streams) instead.
        #[arg(long)]
        meta: bool,
    },
}

/// POSTs to `path` on each node and prints what it answers.
fn admin(cmd: &AdminCmd) -> Result<()> {
    use std::io::{Read, Write};
    let AdminCmd::AcceptLoss { http, stream, meta } = cmd;
    let group = if *meta {
        "meta".to_string()
    } else {
        stream.clone().unwrap_or_default()
    };
    eprintln!(
        "accept-loss for {group}: acknowledged writes that only lost replicas held will be \
         gone for good; the remaining replica with the longest log leads"
    );
    let mut failed = false;
    for addr in http {
        let mut conn =
            std::net::TcpStream::connect(addr).map_err(|e| anyhow::anyhow!("{addr}: {e}"))?;
        write!(
            conn,
            "POST /admin/accept-loss/{group} HTTP/1.1\r\nHost: {addr}\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
        )?;
        let mut answer = String::new();
        conn.read_to_string(&mut answer)?;
        let ok = answer.starts_with("HTTP/1.1 200");
        failed |= !ok;
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or("");
        println!("{addr}: {body}");
    }
    if failed {
        anyhow::bail!("some nodes refused");
    }
    Ok(())
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
        Cmd::Admin(cmd) => admin(&cmd),
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
