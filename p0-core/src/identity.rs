//! OIDC ID tokens: [`JwksVerifier`] checks them against an issuer's published keys, and
//! [`DangerousDevIssuer`] mints them for `p0 demo` and `--dev` setups.

mod dev;
#[cfg(feature = "jwks")]
mod jwks;

pub use dev::DangerousDevIssuer;
#[cfg(feature = "jwks")]
pub use jwks::JwksVerifier;
