//! What a signed query needs, extracted by the agent itself in its engine's dialect, against
//! a recent snapshot of the live catalog where there is one.

use super::reply::{unavailable, unprocessable, Refusal};
use crate::error::ExtractError;
use crate::extract::{Catalog, Extraction};
use crate::extract::{MySqlExtractor, PermissionExtractor, PostgresExtractor};
use crate::types::Engine;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// How long a catalog snapshot is reused. Extraction only decides which permissions a query
/// needs; the provisioner's guard re-checks every object against the live catalog when it
/// grants, so a few seconds of staleness cannot widen a grant.
const CATALOG_TTL: Duration = Duration::from_secs(5);

/// The agent's extractor.
pub(crate) struct QueryExtractor {
    engine: Engine,
    default_database: Option<String>,
    /// Where the live catalog is read; none for a custom provisioner, whose
    /// agent extracts from the SQL alone.
    catalog_url: Option<String>,
    /// The last catalog snapshot and when it was read.
    snapshot: Mutex<Option<(Instant, Arc<Catalog>)>>,
}

impl QueryExtractor {
    pub(crate) fn new(
        engine: Engine,
        default_database: Option<String>,
        catalog_url: Option<String>,
    ) -> Self {
        Self {
            engine,
            default_database,
            catalog_url,
            snapshot: Mutex::new(None),
        }
    }

    /// The live catalog, reused for [`CATALOG_TTL`]; none without a catalog URL.
    async fn catalog(&self) -> Result<Option<Arc<Catalog>>, Refusal> {
        let Some(url) = &self.catalog_url else {
            return Ok(None);
        };
        let mut slot = self.snapshot.lock().await;
        if let Some((at, c)) = slot.as_ref() {
            if at.elapsed() < CATALOG_TTL {
                return Ok(Some(c.clone()));
            }
        }
        let loaded = match self.engine {
            Engine::MySql => Catalog::load_mysql(url, self.default_database.as_deref()).await,
            _ => Catalog::load_postgres(url).await,
        };
        let c = Arc::new(loaded.map_err(|e| unavailable(format!("cannot read the catalog: {e}")))?);
        *slot = Some((Instant::now(), c.clone()));
        Ok(Some(c))
    }

    /// What `sql` needs, in this agent's engine, against its live catalog where there is one.
    pub(crate) async fn extract(&self, sql: &str) -> Result<Extraction, Refusal> {
        let refused = |e: ExtractError| unprocessable(e.to_string());
        match self.engine {
            Engine::MySql => {
                let x = MySqlExtractor::new(self.default_database.clone());
                let x = match self.catalog().await? {
                    Some(c) => x.with_catalog(c),
                    None => x,
                };
                x.extract(sql).map_err(refused)
            }
            _ => {
                let x = PostgresExtractor::new();
                let x = match self.catalog().await? {
                    Some(c) => x.with_catalog(c),
                    None => x,
                };
                x.extract(sql).map_err(refused)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn without_a_catalog_the_text_alone_decides() {
        let x = QueryExtractor::new(Engine::Postgres, None, None);
        let e = x.extract("SELECT id FROM orders").await.unwrap();
        assert!(!e.permissions.is_empty());
        let refused = x.extract("DROP TABLE orders").await.unwrap_err();
        assert_eq!((refused.status, refused.code), (422, "refused"));
        let unreachable = QueryExtractor::new(
            Engine::Postgres,
            None,
            Some("postgres://127.0.0.1:1/x".into()),
        );
        let e = unreachable.extract("SELECT 1").await.unwrap_err();
        assert_eq!((e.status, e.code), (503, "unavailable"));
        assert!(
            e.message.starts_with("cannot read the catalog: "),
            "{}",
            e.message
        );
    }
}
