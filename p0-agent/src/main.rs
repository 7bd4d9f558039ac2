//! `p0-agent --config agent.toml`: serves the agent over HTTPS (plain HTTP on loopback only)
//! and sweeps expired users; on Google Cloud Run and as an Azure Functions custom handler,
//! as the platform's environment says ([`p0_agent::Platform`]).

use anyhow::Context;
use clap::Parser;
use p0_agent::Platform;
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
    let mut platform = Platform::from_env(|k| std::env::var(k).ok())?;
    // Warnings and the start-up line by default (RUST_LOG overrides): a dangerous setting
    // must be seen without asking for it.
    p0_agent::logging::init(platform.cloud_logging());
    if let Platform::CloudRun { project, .. } = &mut platform {
        if project.is_none() {
            *project = p0_agent::metadata_project().await;
        }
    }
    let args = Args::parse();
    let text = std::fs::read_to_string(&args.config)
        .with_context(|| format!("reading `{}`", args.config))?;
    let mut config = p0_agent::AgentConfig::from_toml(&text)?;
    config.listen = platform.listen(&config);
    // Refuse a plain-HTTP listener other machines could reach before connecting to anything.
    let serving = platform.serving(&config)?;
    // Discovery happens on the first token to verify: an issuer that is briefly down when the
    // agent starts does not keep it down (the Lambda agent does the same).
    let verifier = Arc::new(p0_core::JwksVerifier::new(
        &config.issuer,
        &config.audience,
    )?);
    let state = p0_agent::AgentState::new(&config, verifier).await?;
    if platform.sweeps_itself(&config) {
        tokio::spawn(
            state
                .clone()
                .sweep_forever(std::time::Duration::from_secs(config.sweep_interval_secs)),
        );
    }
    let router = platform.router(state, &config)?;
    let listener = tokio::net::TcpListener::bind(&config.listen).await?;
    let tls = matches!(serving, p0_agent::Serving::Tls { .. });
    tracing::info!(listen = %config.listen, resource = %config.resource, tls, platform = ?platform, "p0-agent listening");
    p0_agent::serve_router(listener, serving, router, p0_core::shutdown::signal()).await?;
    tracing::info!("p0-agent stopped");
    Ok(())
}
