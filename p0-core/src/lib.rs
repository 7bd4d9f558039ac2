#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod error;
pub mod extract;
pub mod guard;
pub mod provision;
pub mod route;
pub mod seal;
pub mod secret;
pub mod sql;
pub mod types;
pub mod verify;

pub use error::{
    ExtractError, GuardError, ProvisionError, RouteError, SealError, TypeError, VerifyError,
};
pub use extract::PermissionExtractor;
pub use guard::GuardPolicy;
pub use provision::{Access, Credentials, DatabaseProvisioner, PostgresProvisioner, ProvisionPlan};
pub use route::{Decision, Router};
pub use seal::{KeyPair, RsaOaepSealer, Sealer};
pub use secret::{Password, SecretBytes, Token};
pub use types::*;
pub use verify::IdTokenVerifier;
