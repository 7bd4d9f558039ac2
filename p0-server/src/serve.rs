//! Serving until the platform says stop: at SIGTERM (or Ctrl-C) the server takes no new
//! connection, long polls answer at once with what they have, the reaper claims no more
//! leases, and the calls under way get up to a grace period to finish; then it exits.

use crate::state::AppState;
use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

/// How long calls under way may take after the signal: within the 10 s that Kubernetes and
/// Cloud Run wait before SIGKILL.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

/// Serves `state` on `listener` until SIGTERM or Ctrl-C, then stops as the module says.
pub async fn serve(listener: tokio::net::TcpListener, state: Arc<AppState>) -> anyhow::Result<()> {
    serve_until(listener, state, p0_core::shutdown::signal(), SHUTDOWN_GRACE).await
}

/// [`serve`], stopping when `stop` resolves, with `grace` for the calls under way.
pub async fn serve_until(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> anyhow::Result<()> {
    let stopping = state.clone();
    // axum waits for the stop signal in a task of its own, and open connections last until
    // it fires: if this future is dropped instead, `_alive` goes with it and ends them too.
    let (_alive, dropped) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, crate::build_router(state.clone()))
        .with_graceful_shutdown(async move {
            tokio::select! {
                _ = stop => {
                    tracing::info!("stopping: no new connections; calls under way may finish");
                    stopping.stop();
                }
                _ = dropped => {}
            }
        })
        .into_future();
    let mut watch = state.stopping.subscribe();
    tokio::select! {
        r = server => r?,
        _ = async {
            let _ = watch.wait_for(|s| *s).await;
            tokio::time::sleep(grace).await;
        } => tracing::warn!(grace_secs = grace.as_secs(), "calls still under way after the grace period; exiting"),
    }
    Ok(())
}
