//! What an HTTP agent's platform checks of the server before the agent sees a call, and how
//! the server meets it: a Google-signed ID token for Cloud Run (google-cloud-auth, feature
//! `gcp`); a function key, an Entra ID token of the server's managed identity
//! (azure_identity, feature `azure`), or both, for Azure Functions. Tokens are cached and
//! renewed by those crates.

use super::AgentError;
use crate::config::PlatformAuth;

/// A platform's authentication, ready to attach to calls.
pub(super) enum Platform {
    None,
    /// Cloud Run.
    #[cfg(feature = "gcp")]
    Google {
        audience: String,
        tokens: google_cloud_auth::credentials::idtoken::IDTokenCredentials,
    },
    /// Azure Functions.
    Azure {
        function_key: Option<String>,
        #[cfg(feature = "azure")]
        entra: Option<(
            String,
            std::sync::Arc<azure_identity::ManagedIdentityCredential>,
        )>,
    },
}

impl Platform {
    /// The credentials `auth` asks for; a platform whose feature this server was built
    /// without is a configuration error.
    pub(super) fn new(auth: PlatformAuth) -> anyhow::Result<Self> {
        match auth {
            PlatformAuth::None => Ok(Self::None),
            PlatformAuth::GoogleIdToken { audience } => google(audience),
            PlatformAuth::Azure {
                function_key,
                entra_audience,
            } => {
                #[cfg(not(feature = "azure"))]
                if let Some(audience) = entra_audience {
                    anyhow::bail!(
                        "agent_entra_audience `{audience}` needs a server built with `--features azure`"
                    );
                }
                Ok(Self::Azure {
                    function_key,
                    #[cfg(feature = "azure")]
                    entra: match entra_audience {
                        Some(audience) => Some(entra(audience)?),
                        None => None,
                    },
                })
            }
        }
    }

    /// `req` with what the platform checks.
    pub(super) async fn authorize(
        &self,
        mut req: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, AgentError> {
        match self {
            Self::None => {}
            #[cfg(feature = "gcp")]
            Self::Google { audience, tokens } => {
                let token = tokens
                    .id_token()
                    .await
                    .map_err(|e| no_token("Google ID token", audience, &e.to_string()))?;
                // Cloud Run checks (and strips the signature of) the token in
                // X-Serverless-Authorization and passes Authorization on untouched, for the
                // agent to verify itself.
                req = req
                    .header("x-serverless-authorization", format!("Bearer {token}"))
                    .bearer_auth(token);
            }
            Self::Azure {
                function_key,
                #[cfg(feature = "azure")]
                entra,
            } => {
                if let Some(key) = function_key {
                    req = req.header("x-functions-key", key);
                }
                #[cfg(feature = "azure")]
                if let Some((audience, credential)) = entra {
                    use azure_core::credentials::TokenCredential;
                    let scope = format!("{}/.default", audience.trim_end_matches('/'));
                    let token = credential
                        .get_token(&[&scope], None)
                        .await
                        .map_err(|e| no_token("Entra ID token", audience, &e.to_string()))?;
                    req = req.bearer_auth(token.token.secret());
                }
            }
        }
        Ok(req)
    }
}

/// A token the platform would not give: the reason (which may quote the identity endpoint's
/// answer) goes to the server's log; the requester's answer says where to look.
#[cfg(any(feature = "gcp", feature = "azure"))]
fn no_token(what: &str, audience: &str, why: &str) -> AgentError {
    tracing::error!(audience, error = %one_line(why), "no {what} for the agent");
    AgentError::Unavailable(format!(
        "no {what} for the agent `{audience}`: the server's log says why"
    ))
}

/// Google ID tokens for `audience`: from the service-account key file that
/// `GOOGLE_APPLICATION_CREDENTIALS` names, or else the metadata server (`GCE_METADATA_HOST`
/// overrides its address), with the caller's e-mail in them (the agent checks it).
#[cfg(feature = "gcp")]
fn google(audience: String) -> anyhow::Result<Platform> {
    // google-cloud-auth signs with rustls' process-wide provider: ring, as everywhere here.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tokens = google_cloud_auth::credentials::idtoken::Builder::new(audience.clone())
        .with_include_email()
        .build()
        .map_err(|e| anyhow::anyhow!("Google credentials for `{audience}`: {e}"))?;
    Ok(Platform::Google { audience, tokens })
}

#[cfg(not(feature = "gcp"))]
fn google(audience: String) -> anyhow::Result<Platform> {
    anyhow::bail!("agent_google_audience `{audience}` needs a server built with `--features gcp`")
}

/// Entra ID tokens of the server's managed identity: App Service, Functions and Container
/// Apps (`IDENTITY_ENDPOINT`), or a virtual machine's instance metadata service.
#[cfg(feature = "azure")]
fn entra(
    audience: String,
) -> anyhow::Result<(
    String,
    std::sync::Arc<azure_identity::ManagedIdentityCredential>,
)> {
    let credential = azure_identity::ManagedIdentityCredential::new(None)
        .map_err(|e| anyhow::anyhow!("managed identity for `{audience}`: {e}"))?;
    Ok((audience, credential))
}

#[cfg(any(feature = "gcp", feature = "azure"))]
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
