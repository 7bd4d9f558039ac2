//! `p0-agent --config agent.toml`: serves the agent over HTTPS (plain HTTP on loopback only)
//! and sweeps expired users.

use anyhow::Context;
use clap::Parser;
use std::sync::Arc;

#[derive(Debug, Parser)]
#[command(name = "p0-agent", version, about = "The p0 agent")]
struct Args {
    /// Path to the agent's TOML configuration.
    #[arg(long, env = "P0_AGENT_CONFIG")]
    config: String,
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
    let config = p0_agent::AgentConfig::from_toml(&text)?;
    // Refuse a plain-HTTP listener other machines could reach before connecting to anything.
    let serving = config.serving()?;
    // Discovery happens on the first token to verify: an issuer that is briefly down when the
    // agent starts does not keep it down (the Lambda agent does the same).
    let verifier = Arc::new(p0_core::JwksVerifier::new(
        &config.issuer,
        &config.audience,
    )?);
    let state = p0_agent::AgentState::new(&config, verifier).await?;
    if config.sweep_interval_secs > 0 {
        tokio::spawn(
            state
                .clone()
                .sweep_forever(std::time::Duration::from_secs(config.sweep_interval_secs)),
        );
    }
    let listener = tokio::net::TcpListener::bind(&config.listen).await?;
    let tls = matches!(serving, p0_agent::Serving::Tls { .. });
    tracing::info!(listen = %config.listen, resource = %config.resource, tls, "p0-agent listening");
    p0_agent::serve(listener, &config, state).await?;
    tracing::info!("p0-agent stopped");
    Ok(())
}
