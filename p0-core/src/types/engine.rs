//! The database engines p0 extracts for and provisions on.

use crate::error::TypeError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A database engine p0 knows how to extract for and provision on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Engine {
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    #[serde(rename = "mysql")]
    MySql,
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Engine::Postgres => "postgres",
            Engine::MySql => "mysql",
        })
    }
}

impl FromStr for Engine {
    type Err = TypeError;
    fn from_str(s: &str) -> Result<Self, TypeError> {
        match s.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" | "pg" => Ok(Engine::Postgres),
            "mysql" | "mariadb" => Ok(Engine::MySql),
            _ => Err(TypeError::Invalid {
                what: "engine",
                value: s.into(),
                why: "expected `postgres` or `mysql`",
            }),
        }
    }
}
