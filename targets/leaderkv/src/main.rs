//! The `leaderkv` binary: parse flags, log to a file, run a node until SIGTERM/SIGINT.

use std::sync::Mutex;

use anyhow::Context;
use clap::Parser;
use leaderkv::{Args, Config, Node};
use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cfg = Config::from_args(&args).context("failed to read the configuration")?;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    match &args.log_file {
        Some(path) => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("failed to open log file {}", path.display()))?;
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_ansi(false)
                .with_writer(Mutex::new(f))
                .init();
        }
        None => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init(),
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the runtime")?;
    rt.block_on(async move {
        let mut term =
            signal(SignalKind::terminate()).context("failed to install SIGTERM handler")?;
        let mut int =
            signal(SignalKind::interrupt()).context("failed to install SIGINT handler")?;
        let node = Node::start(cfg).await.context("failed to start the node")?;
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM"),
            _ = int.recv() => tracing::info!("SIGINT"),
        }
        node.shutdown().await;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(())
}
