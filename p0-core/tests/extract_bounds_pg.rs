//! What a hostile requester (or anyone who may create a function) can make extraction do,
//! against a real PostgreSQL: catalog work stays linear in what the SQL reaches, other
//! sessions' temporary objects are never resolved, and named arguments resolve to the one
//! overload PostgreSQL calls, with a signature that can be granted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use p0_core::extract::{Catalog, PostgresExtractor};
use p0_core::{ObjectKind, Permission, PermissionExtractor};
use p0_testkit::PgServer;
use sqlx::{Connection, Executor};
use std::sync::Arc;

async fn hardened(pg: &PgServer) -> sqlx::PgConnection {
    pg.create_hardened_db("app").unwrap();
    sqlx::PgConnection::connect(&pg.url("app")).await.unwrap()
}

/// `f1` calls `f2` twice, ..., `f{n-1}` calls `f{n}` twice: 2^n calls if expanded naively.
async fn doubling_chain(admin: &mut sqlx::PgConnection, n: usize) {
    admin
        .execute(
            format!("CREATE FUNCTION f{n}(x integer) RETURNS integer LANGUAGE sql AS 'SELECT x'")
                .as_str(),
        )
        .await
        .unwrap();
    for i in (1..n).rev() {
        let next = i + 1;
        admin
            .execute(
                format!(
                    "CREATE FUNCTION f{i}(x integer) RETURNS integer LANGUAGE sql \
                     AS 'SELECT f{next}(x) + f{next}(x)'"
                )
                .as_str(),
            )
            .await
            .unwrap();
    }
}

/// Grants exactly `perms` to a fresh login role and runs `sql` as it (rolled back).
async fn run_with(
    pg: &PgServer,
    role: &str,
    perms: &[Permission],
    sql: &str,
) -> Result<(), String> {
    let mut admin = sqlx::PgConnection::connect(&pg.url("app")).await.unwrap();
    admin
        .execute(format!("CREATE ROLE {role} LOGIN PASSWORD 'pw'").as_str())
        .await
        .unwrap();
    for p in perms {
        let o = &p.object;
        let what = match o.kind {
            ObjectKind::Database => format!("DATABASE \"{}\"", o.name),
            ObjectKind::Schema => format!("SCHEMA \"{}\"", o.name),
            ObjectKind::Function | ObjectKind::Procedure => format!(
                "{} \"{}\".\"{}\"({})",
                if o.kind == ObjectKind::Procedure {
                    "PROCEDURE"
                } else {
                    "FUNCTION"
                },
                o.schema.as_deref().unwrap(),
                o.name,
                o.signature.as_deref().unwrap()
            ),
            _ => format!("TABLE \"{}\".\"{}\"", o.schema.as_deref().unwrap(), o.name),
        };
        admin
            .execute(format!("GRANT {} ON {what} TO {role}", p.privilege).as_str())
            .await
            .unwrap_or_else(|e| panic!("GRANT {p}: {e}"));
    }
    let mut conn = sqlx::PgConnection::connect(&pg.url_as(role, "pw", "app"))
        .await
        .map_err(|e| e.to_string())?;
    let mut tx = conn.begin().await.unwrap();
    let result = tx.execute(sql).await.map(|_| ()).map_err(|e| e.to_string());
    tx.rollback().await.unwrap();
    result
}

/// Issue 13, part 2: a chain of 30 functions, each calling the next twice, froze the agent
/// (2^30 body expansions). Each body is now walked once: 30 bodies, and one catalog lookup
/// per call site, 2n - 1 for a chain of n; the same count for 10, 20 and 30 is linear.
#[tokio::test(flavor = "multi_thread")]
async fn a_doubling_chain_of_thirty_functions_costs_catalog_lookups_linear_in_the_chain() {
    let pg = PgServer::start().unwrap();
    let mut admin = hardened(&pg).await;
    doubling_chain(&mut admin, 30).await;
    let catalog = Arc::new(Catalog::load_postgres(&pg.url("app")).await.unwrap());
    let x = PostgresExtractor::new().with_catalog(catalog);
    let mut counts = Vec::new();
    for n in [10usize, 20, 30] {
        let sql = format!("SELECT f{}(1)", 31 - n);
        let started = std::time::Instant::now();
        let (result, stats) = x.extract_with_stats(&sql);
        let ex = result.unwrap();
        println!(
            "chain of {n}: {} catalog lookups, {} bodies, {:?}",
            stats.catalog_lookups,
            stats.bodies_expanded,
            started.elapsed()
        );
        assert_eq!(stats.bodies_expanded, n, "chain of {n}");
        assert_eq!(stats.catalog_lookups, 2 * n - 1, "chain of {n}");
        let executes = ex
            .permissions
            .iter()
            .filter(|p| p.object.kind == ObjectKind::Function)
            .count();
        assert_eq!(executes, n);
        counts.push(stats.catalog_lookups);
        if n == 10 {
            // And the set is sound: a role holding exactly it runs the query (PostgreSQL
            // itself makes 2^n calls, so only the short chain is run).
            let perms: Vec<Permission> = ex.permissions.iter().collect();
            run_with(&pg, "chain_user", &perms, &sql).await.unwrap();
        }
    }
    assert_eq!(counts[2] - counts[1], counts[1] - counts[0], "{counts:?}");
}

/// Issue 13, part 2: the agent resolved functions that other sessions created in their
/// temporary schemas (`pg_temp_N`), so a user could plant one in a request's way. A fresh
/// session of the requester sees none of them: they are not in the snapshot, and naming one
/// is "does not exist".
#[tokio::test(flavor = "multi_thread")]
async fn another_sessions_temporary_objects_are_never_resolved() {
    let pg = PgServer::start().unwrap();
    let mut planter = hardened(&pg).await;
    planter
        .execute(
            "CREATE FUNCTION pg_temp.planted() RETURNS integer LANGUAGE sql AS 'SELECT 1'; \
             CREATE TEMP TABLE planted_t (a integer)",
        )
        .await
        .unwrap();
    let schema: String = sqlx::query_scalar("SELECT pg_my_temp_schema()::regnamespace::text")
        .fetch_one(&mut planter)
        .await
        .unwrap();
    assert!(schema.starts_with("pg_temp_"), "{schema}");
    // Loaded while the planting session is still open.
    let catalog = Catalog::load_postgres(&pg.url("app")).await.unwrap();
    let temp = |s: &str| s.starts_with("pg_temp") || s.starts_with("pg_toast_temp");
    assert!(!catalog.functions.keys().any(|(s, _)| temp(s)));
    assert!(!catalog.relations.keys().any(|(s, _)| temp(s)));
    let x = PostgresExtractor::new().with_catalog(Arc::new(catalog));
    for (sql, why) in [
        (
            format!("SELECT {schema}.planted()"),
            "function `planted` does not exist",
        ),
        (
            format!("SELECT * FROM {schema}.planted_t"),
            "does not exist",
        ),
        (
            format!("SET search_path = {schema}, public; SELECT planted()"),
            "function `planted` does not exist",
        ),
    ] {
        let e = x.extract(&sql).unwrap_err().to_string();
        assert!(e.contains(why), "{sql}: {e}");
    }
    planter.close().await.unwrap();
}

/// Issue 13, part 6: `f(a => 1)` and `f(a := 1)` resolve, by the arguments' names, to the
/// overload PostgreSQL calls; its signature is granted and the call runs with nothing else.
#[tokio::test(flavor = "multi_thread")]
/// Signatures are argument types only, as `to_regprocedure` and `GRANT ... ON FUNCTION` take
/// them (parameter names are refused by `to_regprocedure`, so the agent could not grant them).
async fn named_arguments_resolve_to_a_grantable_signature() {
    let pg = PgServer::start().unwrap();
    let mut admin = hardened(&pg).await;
    admin
        .execute(
            "CREATE FUNCTION nf(a integer) RETURNS integer LANGUAGE sql AS 'SELECT a'; \
             CREATE FUNCTION nf(b text, c integer DEFAULT 0) RETURNS integer LANGUAGE sql AS 'SELECT c'; \
             CREATE FUNCTION nf(a integer, d integer, e integer DEFAULT 1) RETURNS integer \
               LANGUAGE plpgsql AS 'BEGIN RETURN a + d + e; END'",
        )
        .await
        .unwrap();
    let catalog = Arc::new(Catalog::load_postgres(&pg.url("app")).await.unwrap());
    let x = PostgresExtractor::new().with_catalog(catalog);
    for (i, (sql, signature)) in [
        ("SELECT nf(a => 1)", "integer"),
        ("SELECT nf(a := 1)", "integer"),
        ("SELECT nf(b => 'x')", "text, integer"),
        ("SELECT nf('x', c => 2)", "text, integer"),
        ("SELECT nf(d => 2, a => 1)", "integer, integer, integer"),
        ("SELECT nf(1, d := 2, e := 3)", "integer, integer, integer"),
    ]
    .into_iter()
    .enumerate()
    {
        let ex = x.extract(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        let functions: Vec<String> = ex
            .permissions
            .iter()
            .filter(|p| p.object.kind == ObjectKind::Function)
            .filter_map(|p| p.object.signature.clone())
            .collect();
        assert_eq!(functions, [signature], "{sql}");
        let known: bool = sqlx::query_scalar("SELECT to_regprocedure($1) IS NOT NULL")
            .bind(format!("public.nf({signature})"))
            .fetch_one(&mut admin)
            .await
            .unwrap();
        assert!(known, "to_regprocedure refuses `{signature}`");
        let perms: Vec<Permission> = ex.permissions.iter().collect();
        run_with(&pg, &format!("named_{i}"), &perms, sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let e = x.extract("SELECT nf(z => 1)").unwrap_err().to_string();
    assert_eq!(
        e,
        "unsupported: no function `public.nf` takes the arguments `z`"
    );
}
