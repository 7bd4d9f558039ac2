//! Serving the agent over HTTP: HTTPS with rustls when the config names a certificate and key,
//! plain HTTP only on a loopback address (or with `dangerous_plain_http`).
//!
//! TLS handshakes run in tasks of their own, each with a deadline, so a client that opens a
//! connection and never finishes its handshake holds up nobody else.

use crate::{build_router, AgentConfig, AgentState};
use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// How long a client has to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How the agent serves: decided from its config before it binds.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Serving {
    /// HTTPS with this certificate chain and key (PEM files).
    Tls {
        /// The certificate chain, leaf first.
        cert: std::path::PathBuf,
        /// The private key.
        key: std::path::PathBuf,
    },
    /// Plain HTTP: on a loopback address, or explicitly allowed by `dangerous_plain_http`.
    Plain {
        /// Whether the address is one other machines may reach (logged as a warning).
        dangerous: bool,
    },
}

/// Whether `listen` (`host:port`) binds loopback only.
pub fn is_loopback_listen(listen: &str) -> bool {
    let host = listen
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(listen)
        .trim_start_matches('[')
        .trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

impl AgentConfig {
    /// How this config serves, or why it may not: a certificate needs its key (and the other
    /// way round), and plain HTTP is for loopback unless `dangerous_plain_http` says otherwise.
    pub fn serving(&self) -> anyhow::Result<Serving> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Ok(Serving::Tls {
                cert: cert.clone(),
                key: key.clone(),
            }),
            (Some(_), None) => anyhow::bail!("tls_cert is set but tls_key is not"),
            (None, Some(_)) => anyhow::bail!("tls_key is set but tls_cert is not"),
            (None, None) if is_loopback_listen(&self.listen) => {
                Ok(Serving::Plain { dangerous: false })
            }
            (None, None) if self.dangerous_plain_http => Ok(Serving::Plain { dangerous: true }),
            (None, None) => anyhow::bail!(
                "listen `{}` is not a loopback address: set tls_cert and tls_key (or dangerous_plain_http = true behind a TLS-terminating proxy)",
                self.listen
            ),
        }
    }
}

/// A rustls server configuration (ring provider, TLS 1.2 and 1.3) from PEM files: the
/// certificate chain, leaf first, and its private key.
pub fn tls_server_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading the certificate `{}`", cert.display()))?;
    if chain.is_empty() {
        anyhow::bail!("no certificate in `{}`", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading the private key `{}`", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the certificate and key do not make a TLS identity")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A TCP listener whose connections come out of a TLS handshake, for `axum::serve`.
#[derive(Debug)]
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Accepts on `listener` and completes handshakes with `config` in the background.
    pub fn new(listener: TcpListener, config: Arc<rustls::ServerConfig>) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let acceptor = TlsAcceptor::from(config);
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = tx.closed() => return,
                    a = listener.accept() => a,
                };
                let (tcp, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: wait rather than spin.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accepting task is gone (it only ends when this listener is dropped).
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Serves the agent on `listener` as `config` says: HTTPS, or plain HTTP where allowed.
pub async fn serve(
    listener: TcpListener,
    config: &AgentConfig,
    state: Arc<AgentState>,
) -> anyhow::Result<()> {
    serve_until(listener, config, state, p0_core::shutdown::signal()).await
}

/// How long calls under way may take after the signal to stop: within the 10 s that
/// Kubernetes and Cloud Run wait before SIGKILL.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

/// [`serve`] until `stop` resolves (SIGTERM or Ctrl-C in `serve`): then no new connection is
/// taken, and the calls under way get [`SHUTDOWN_GRACE`] to finish.
pub async fn serve_until(
    listener: TcpListener,
    config: &AgentConfig,
    state: Arc<AgentState>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_router(listener, config.serving()?, build_router(state), stop).await
}

/// Serves `router` on `listener` as `serving` says until `stop` resolves, as
/// [`serve_until`] does: for a router and a way of serving that a platform decides
/// ([`crate::Platform`]).
pub async fn serve_router(
    listener: TcpListener,
    serving: Serving,
    router: axum::Router,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let local = listener.local_addr()?;
    let (tx, rx) = tokio::sync::watch::channel(false);
    // axum waits for the stop signal in a task of its own, and open connections last until
    // it fires: if this future is dropped instead (an in-process agent stopped by its
    // caller), `_alive` goes with it and ends them too.
    let (_alive, dropped) = tokio::sync::oneshot::channel::<()>();
    let stop = async move {
        tokio::select! {
            _ = stop => {
                tracing::info!("stopping: no new connections; calls under way may finish");
                let _ = tx.send(true);
            }
            _ = dropped => {}
        }
    };
    let served = async move {
        match serving {
            Serving::Tls { cert, key } => {
                let tls = TlsListener::new(listener, tls_server_config(&cert, &key)?)?;
                axum::serve(tls, router)
                    .with_graceful_shutdown(stop)
                    .await?;
            }
            Serving::Plain { dangerous } => {
                if dangerous {
                    tracing::warn!(
                        listen = %local,
                        "dangerous_plain_http: serving plain HTTP on an address other machines may reach; put TLS in front of it"
                    );
                }
                axum::serve(listener, router)
                    .with_graceful_shutdown(stop)
                    .await?;
            }
        }
        Ok::<(), anyhow::Error>(())
    };
    let mut rx = rx;
    tokio::select! {
        r = served => r?,
        _ = async {
            let _ = rx.wait_for(|s| *s).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => tracing::warn!("calls still under way after the grace period; exiting"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> AgentConfig {
        let text = format!(
            "resource = \"pg/app\"\nissuer = \"https://login.example.com\"\naudience = \"p0\"\n{extra}\n[guard]\ndatabases = [\"app\"]\nservice_user = \"p0_agent\"\n"
        );
        AgentConfig::from_toml(&text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn loopback_addresses() {
        for l in [
            "127.0.0.1:7070",
            "127.1.2.3:1",
            "[::1]:7070",
            "localhost:7070",
        ] {
            assert!(is_loopback_listen(l), "{l}");
        }
        for l in [
            "0.0.0.0:7070",
            "10.0.0.1:7070",
            "[::]:7070",
            "agent.internal:7070",
        ] {
            assert!(!is_loopback_listen(l), "{l}");
        }
    }

    #[test]
    fn plain_http_only_on_loopback_unless_dangerous() {
        assert_eq!(
            config("listen = \"127.0.0.1:7070\"").serving().ok(),
            Some(Serving::Plain { dangerous: false })
        );
        let err = config("listen = \"0.0.0.0:7070\"")
            .serving()
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "listen `0.0.0.0:7070` is not a loopback address: set tls_cert and tls_key (or dangerous_plain_http = true behind a TLS-terminating proxy)"
        );
        assert_eq!(
            config("listen = \"0.0.0.0:7070\"\ndangerous_plain_http = true")
                .serving()
                .ok(),
            Some(Serving::Plain { dangerous: true })
        );
        assert_eq!(
            config("listen = \"0.0.0.0:7070\"\ntls_cert = \"a.pem\"\ntls_key = \"k.pem\"")
                .serving()
                .ok(),
            Some(Serving::Tls {
                cert: "a.pem".into(),
                key: "k.pem".into()
            })
        );
        let half = config("tls_cert = \"a.pem\"")
            .serving()
            .map(|_| ())
            .unwrap_err();
        assert_eq!(half.to_string(), "tls_cert is set but tls_key is not");
    }

    #[test]
    fn missing_certificate_files_are_named() {
        let err = tls_server_config(Path::new("/nonexistent/cert.pem"), Path::new("k.pem"))
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert_eq!(err, "reading the certificate `/nonexistent/cert.pem`");
    }
}
