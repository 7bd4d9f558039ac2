//! An agent stand-in for tests of the server alone: it answers only its explain, handing out
//! every role and granting nothing for SQL (the server asks the agent about a role before
//! anyone is asked to approve it); every other call gets 404, as from an agent that refuses.

/// Starts the stand-in on a loopback port, in the current tokio runtime; its base URL.
pub fn explain_only_agent() -> std::io::Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let url = format!("http://{}", listener.local_addr()?);
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let router = axum::Router::new().route(
        "/v1/explain",
        axum::routing::post(|| async { axum::Json(p0_core::extract::Extraction::default()) }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(url)
}
