#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod agent;
pub mod api;
pub mod audit;
pub mod error;
pub mod extract;
pub mod grant;
pub mod guard;
pub mod identity;
pub mod proof;
pub mod provision;
pub mod route;
pub mod rules;
pub mod seal;
pub mod secret;
pub mod shutdown;
pub mod sign;
pub mod sql;
pub mod types;
pub mod verify;

pub use agent::{Agent, AgentSettings};
pub use error::{
    ExtractError, GrantError, GuardError, ProvisionError, RouteError, SealError, TypeError,
    VerifyError,
};
pub use extract::PermissionExtractor;
pub use extract::{MySqlExtractor, PostgresExtractor};
pub use guard::GuardPolicy;
pub use identity::DangerousDevIssuer;
#[cfg(feature = "jwks")]
pub use identity::JwksVerifier;
#[cfg(feature = "postgres")]
pub use provision::PostgresProvisioner;
pub use provision::{Access, Credentials, DatabaseProvisioner, ProvisionPlan};
pub use route::{Decision, Router};
pub use rules::RulesRouter;
pub use seal::{KeyPair, RsaOaepSealer, Sealer};
pub use secret::{Password, SecretBytes, Token};
pub use sign::SignedRequest;
pub use types::{
    AccessRequest, Engine, Intent, ObjectKind, ObjectRef, Permission, PermissionSet, Privilege,
    RequestId, ResourceId, RoleName, Username,
};
pub use verify::{IdClaims, IdTokenVerifier};
