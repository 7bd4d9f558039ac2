//! `p0-server --config server.toml`: the control plane.

use anyhow::Context;
use clap::Parser;
use std::sync::Arc;

#[derive(Debug, Parser)]
#[command(name = "p0-server", version, about = "The p0 control plane")]
struct Args {
    /// Path to the server's TOML configuration.
    #[arg(long, env = "P0_SERVER_CONFIG")]
    config: String,
    /// Serve a development identity issuer at `<issuer>` (set `issuer` to
    /// `http://<listen>/dev`). Anyone who can reach it can log in as anyone.
    #[arg(long)]
    dangerous_dev_issuer: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Warnings and the start-up line by default (RUST_LOG overrides): a dangerous setting
    // must be seen without asking for it.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::builder()
                .with_default_directive(tracing_subscriber::filter::LevelFilter::INFO.into())
                .from_env_lossy(),
        )
        .init();
    let args = Args::parse();
    let text = std::fs::read_to_string(&args.config)
        .with_context(|| format!("reading `{}`", args.config))?;
    let config = p0_server::ServerConfig::from_toml(&text)?;
    let rules = std::fs::read_to_string(&config.rules)
        .with_context(|| format!("reading rules `{}`", config.rules))?;
    let router = Arc::new(p0_core::RulesRouter::from_toml(&rules)?);
    let store = p0_server::store::open(&config.store).await?;
    let verifier = Arc::new(p0_core::JwksVerifier::new(
        &config.issuer,
        &config.audience,
    )?);
    let dev = if args.dangerous_dev_issuer {
        tracing::warn!(
            "the development issuer is on: anyone who can reach this server can log in as anyone"
        );
        Some(Arc::new(p0_core::DangerousDevIssuer::new(
            config.issuer.clone(),
        )?))
    } else {
        None
    };
    let state = p0_server::AppState::new(&config, store, router, verifier, dev)?;
    tokio::spawn(p0_server::run_reaper(
        state.clone(),
        std::time::Duration::from_secs(config.reaper_interval_secs),
    ));
    let listener = tokio::net::TcpListener::bind(&config.listen).await?;
    // What it runs with, never a credential: the store's kind only (its URL may hold one).
    let store_kind = if config.store.starts_with("postgres") {
        "postgres"
    } else {
        "sqlite"
    };
    let resources: Vec<String> = config
        .resources
        .iter()
        .map(|r| r.name.to_string())
        .collect();
    tracing::info!(listen = %config.listen, store = store_kind, issuer = %config.issuer, resources = ?resources, "p0-server listening");
    p0_server::serve(listener, state).await?;
    tracing::info!("p0-server stopped");
    Ok(())
}
