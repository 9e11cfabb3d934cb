//! `jetraft dev`: a local three-node cluster as child processes.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result};
use tokio::process::{Child, Command};

/// The three node configs, also shipped in `deploy/` as examples.
pub const NODE_CONFIGS: [(&str, &str); 3] = [
    ("n1", include_str!("../../../deploy/n1.toml")),
    ("n2", include_str!("../../../deploy/n2.toml")),
    ("n3", include_str!("../../../deploy/n3.toml")),
];

pub async fn run(data_dir: &Path) -> Result<()> {
    let exe = std::env::current_exe().context("locating the jetraft binary")?;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let mut children: Vec<(String, Child)> = Vec::new();
    for (name, text) in NODE_CONFIGS {
        let cfg_path = data_dir.join(format!("{name}.toml"));
        std::fs::write(&cfg_path, text)
            .with_context(|| format!("writing {}", cfg_path.display()))?;
        let node_dir: PathBuf = data_dir.join(name);
        let child = Command::new(&exe)
            .arg("server")
            .arg("--config")
            .arg(&cfg_path)
            .arg("--data-dir")
            .arg(&node_dir)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting node {name}"))?;
        children.push((name.to_string(), child));
    }
    println!(
        "jetraft dev: three nodes running (data in {})",
        data_dir.display()
    );
    println!(
        "  NATS clients:   nats://127.0.0.1:4222, nats://127.0.0.1:4223, nats://127.0.0.1:4224"
    );
    println!("  monitoring:     http://127.0.0.1:8222/jsz (8223, 8224)");
    println!(
        "  try:            nats -s nats://127.0.0.1:4222 stream add ORDERS --subjects 'orders.>' --replicas 3 --defaults"
    );
    println!("Ctrl-C stops all three.");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => println!("stopping"),
        _ = term.recv() => println!("SIGTERM: stopping"),
        res = wait_any(&mut children) => println!("a node exited ({res}); stopping the others"),
    }
    for (name, child) in &mut children {
        terminate(child).await;
        tracing::info!(node = %name, "stopped");
    }
    Ok(())
}

async fn wait_any(children: &mut [(String, Child)]) -> String {
    let waits = children.iter_mut().map(|(name, c)| {
        Box::pin(async move {
            let status = c.wait().await;
            format!("{name}: {status:?}")
        })
    });
    futures::future::select_all(waits).await.0
}

/// SIGTERM, then SIGKILL if the node has not exited within 10 s.
pub async fn terminate(child: &mut Child) {
    if let Some(pid) = child.id() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX)),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    if tokio::time::timeout(std::time::Duration::from_secs(10), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}
