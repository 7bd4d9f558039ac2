//! Least-privilege extraction: which permissions a piece of SQL needs.

use crate::error::ExtractError;
use crate::types::{Engine, PermissionSet};
use serde::Serialize;

/// The result of extraction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Extraction {
    /// The permissions the SQL needs.
    pub permissions: PermissionSet,
    /// Parts that could not be resolved without the live catalog (e.g. whether a name is a
    /// view, which sequence backs a column default). Empty when a catalog was used.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unresolved: Vec<String>,
}

/// SQL text (and optionally a snapshot of the live catalog) → the permissions it needs.
pub trait PermissionExtractor: Send + Sync {
    /// The dialect this extractor reads.
    fn engine(&self) -> Engine;

    /// Extracts the permissions needed by `sql` (one or more statements).
    fn extract(&self, sql: &str) -> Result<Extraction, ExtractError>;
}
