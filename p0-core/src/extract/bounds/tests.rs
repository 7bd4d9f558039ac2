//! The bounds: what is refused, with which message, and that nothing below them can
//! overflow a thread's stack.

use super::super::{
    Catalog, ExtractStats, Extraction, FuncInfo, Limits, MySqlExtractor, PostgresExtractor,
};
use super::*;
use crate::PermissionExtractor;
use sqlparser::dialect::PostgreSqlDialect;
use std::sync::Arc;

fn pg(sql: &str) -> Result<Extraction, ExtractError> {
    PostgresExtractor::new().with_database("app").extract(sql)
}

fn mysql(sql: &str) -> Result<Extraction, ExtractError> {
    MySqlExtractor::new(Some("app".into())).extract(sql)
}

/// Runs `f` on a thread with `kib` KiB of stack, as a test of what fits in it.
fn on_stack<T: Send + 'static>(kib: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(kib * 1024)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

fn chain(term: &str, op: &str, n: usize) -> String {
    vec![term; n].join(op)
}

/// The request that crashed the agent (issue 13): 40,000 terms, 80 KB. Past the size bound
/// with the default limits; past the depth bound with any size limit.
#[test]
fn forty_thousand_terms_are_refused_naming_the_limit() {
    let sql = format!("SELECT {}", chain("1", "+", 40_000));
    let e = pg(&sql).unwrap_err().to_string();
    assert_eq!(e, "query larger than 65536 bytes");
    let big = Limits {
        max_bytes: 1 << 20,
        ..Limits::default()
    };
    for x in [
        &PostgresExtractor::new().with_limits(big) as &dyn PermissionExtractor,
        &MySqlExtractor::new(None).with_limits(big),
    ] {
        let e = x.extract(&sql).unwrap_err().to_string();
        assert_eq!(e, "query nesting deeper than 1000 levels");
    }
}

#[test]
fn long_chains_of_any_operator_are_refused_before_parsing() {
    let cases = [
        format!("SELECT 1 WHERE {}", chain("a = 1", " AND ", 2_000)),
        format!("SELECT 1 WHERE {}", chain("a", " OR ", 2_000)),
        format!("SELECT {}", chain("'a'", " || ", 2_000)),
        format!("SELECT 1{}", "::int".repeat(2_000)),
        format!("SELECT 1 FROM t WHERE x{}", " IS NULL".repeat(2_000)),
        chain("SELECT 1, 2", " UNION ALL ", 2_000),
        format!("SELECT {}1{}", "(".repeat(2_000), ")".repeat(2_000)),
        format!("SELECT {}1{}", "ARRAY[".repeat(2_000), "]".repeat(2_000)),
        format!(
            "SELECT {}1{}",
            "CASE WHEN a THEN ".repeat(2_000),
            " END".repeat(2_000)
        ),
        format!("SELECT {}", chain("-1", " - ", 2_000)),
    ];
    for sql in &cases {
        let e = pg(sql).unwrap_err().to_string();
        assert_eq!(e, "query nesting deeper than 1000 levels", "{}", &sql[..40]);
        let e = mysql(sql).unwrap_err().to_string();
        assert_eq!(e, "query nesting deeper than 1000 levels", "{}", &sql[..40]);
    }
}

/// Parentheses below the depth bound still meet sqlparser's own recursion limit: named too.
#[test]
fn deep_parentheses_name_the_parsers_limit() {
    let sql = format!("SELECT {}1{}", "(".repeat(200), ")".repeat(200));
    let e = pg(&sql).unwrap_err().to_string();
    assert_eq!(e, "parenthesis and subquery nesting deeper than 50 levels");
}

#[test]
fn the_size_limit_is_the_extractors_own() {
    let list = (0..9_000).map(|i| i.to_string()).collect::<Vec<_>>();
    let sql = format!("SELECT * FROM film WHERE film_id IN ({})", list.join(", "));
    assert!(sql.len() > 40_000 && sql.len() < 64 * 1024);
    assert!(
        pg(&sql).is_ok(),
        "a generated IN list of 9,000 values is fine"
    );
    let small = Limits {
        max_bytes: 1_000,
        ..Limits::default()
    };
    let e = PostgresExtractor::new()
        .with_limits(small)
        .extract(&sql)
        .unwrap_err();
    assert_eq!(e.to_string(), "query larger than 1000 bytes");
    let e = MySqlExtractor::new(None)
        .with_limits(small)
        .extract(&sql)
        .unwrap_err();
    assert_eq!(e.to_string(), "query larger than 1000 bytes");
}

/// What people and ORMs write stays well inside the depth bound.
#[test]
fn long_but_ordinary_queries_are_not_refused() {
    let ors = (0..300)
        .map(|i| format!("film_id = {i}"))
        .collect::<Vec<_>>()
        .join(" OR ");
    let whens = (0..200)
        .map(|i| format!("WHEN rating = 'R{i}' THEN {i}"))
        .collect::<Vec<_>>()
        .join(" ");
    for sql in [
        format!("SELECT * FROM film WHERE {ors}"),
        format!("SELECT CASE {whens} ELSE 0 END FROM film"),
        format!("SELECT {} FROM film", chain("length", " + ", 400)),
        chain("SELECT title FROM film", " UNION ", 300),
    ] {
        assert!(pg(&sql).is_ok(), "{}", &sql[..60]);
    }
}

/// Every shape that repeats without bound, at the most repetitions the depth bound lets
/// through, parses, walks and drops within half the 2 MiB stack of a tokio worker (debug
/// build), in both dialects; one more repetition is refused.
#[test]
fn the_deepest_input_allowed_fits_in_half_a_tokio_workers_stack() {
    let shapes: &[(&str, &str, &str, &str)] = &[
        ("SELECT ", "1 + ", "1", ""),
        ("SELECT 1 WHERE ", "a = 1 AND ", "true", ""),
        ("SELECT ", "'a' || ", "'b'", ""),
        ("SELECT 1", "::int", "", ""),
        ("SELECT 1 FROM t WHERE x", " IS NULL", "", ""),
        ("", "SELECT 1 UNION ", "SELECT 1", ""),
        ("SELECT ", "(", "1", ")"),
        ("SELECT ", "f(", "1", ")"),
        ("SELECT ", "NOT ", "true", ""),
        ("SELECT ", "- ", "1", ""),
        ("SELECT ", "ARRAY[", "1", "]"),
        ("SELECT ", "CASE WHEN a THEN ", "1", " END"),
        ("SELECT ", "a[1]", "", ""),
        ("SELECT ", "a.", "b", ""),
        ("SELECT ", "x -> ", "'a'", ""),
        ("SELECT 1::", "int[]", "", ""),
        ("SELECT ", "x AT TIME ZONE 'utc' + ", "1", ""),
        (
            "SELECT * FROM t WHERE x IN ",
            "(SELECT x FROM t WHERE x IN ",
            "(1)",
            ")",
        ),
        ("SELECT * FROM ", "t JOIN ", "t ON true", ""),
        ("SELECT * FROM t", " JOIN t JOIN t ON true", "", ""),
        ("SELECT * FROM t", " CROSS JOIN t", "", ""),
        ("SELECT * FROM ", "(t JOIN ", "t", " ON true)"),
        ("SELECT * FROM t", " FOR UPDATE", "", ""),
        ("", "EXPLAIN ", "SELECT 1", ""),
        ("CALL ", "f(", "1", ")"),
        ("SELECT 1", "; SELECT 1", "", ""),
    ];
    let limits = Limits {
        max_bytes: 1 << 20,
        ..Limits::default()
    };
    for &(head, rep, tail, close) in shapes {
        let sql = move |n: usize| format!("{head}{}{tail}{}", rep.repeat(n), close.repeat(n));
        let depth = |n: usize| {
            let t = Tokenizer::new(&PostgreSqlDialect {}, &sql(n))
                .tokenize_with_location()
                .unwrap();
            nesting(&t, usize::MAX)
        };
        // The most repetitions within the bound (or 20,000 for shapes that do not nest).
        let (mut lo, mut hi) = (0usize, 20_000usize);
        if depth(hi) <= limits.max_depth {
            lo = hi;
        }
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if depth(mid) <= limits.max_depth {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        eprintln!("{head}{rep}{tail}: {lo} repetitions");
        let (at_most, one_more) = (sql(lo), sql(lo + 1));
        on_stack(1024, move || {
            for x in [
                &PostgresExtractor::new().with_limits(limits) as &dyn PermissionExtractor,
                &MySqlExtractor::new(None).with_limits(limits),
            ] {
                if let Err(e) = x.extract(&at_most) {
                    let e = e.to_string();
                    assert!(!e.contains('\n') && !e.starts_with("query nesting"), "{e}");
                }
                if lo < 20_000 {
                    let e = x.extract(&one_more).unwrap_err().to_string();
                    assert!(e.contains("nesting deeper than"), "{e}");
                }
            }
        });
    }
}

#[test]
fn a_spent_time_budget_stops_extraction() {
    let none = Limits {
        time_budget: std::time::Duration::ZERO,
        ..Limits::default()
    };
    let e = PostgresExtractor::new()
        .with_limits(none)
        .extract("SELECT title FROM film")
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "extraction took longer than its budget of 0 ms"
    );
}

fn func(signature: &str, names: &[&str], ndefaults: usize, body: Option<&str>) -> FuncInfo {
    let nargs = if signature.is_empty() {
        0
    } else {
        signature.split(',').count()
    };
    FuncInfo {
        signature: signature.into(),
        nargs,
        ndefaults,
        variadic: false,
        arg_names: names.iter().map(|s| s.to_string()).collect(),
        security_definer: false,
        procedure: false,
        body: body.map(|b| ("sql".to_string(), b.to_string())),
    }
}

fn catalog(functions: Vec<(&str, &str, FuncInfo)>) -> Arc<Catalog> {
    let mut c = Catalog {
        database: "app".into(),
        search_path: vec!["public".into()],
        ..Catalog::default()
    };
    for (schema, name, f) in functions {
        c.functions
            .entry((schema.into(), name.into()))
            .or_default()
            .push(f);
    }
    Arc::new(c)
}

/// Thirty functions, each calling the next twice: 2^30 expansions before, 30 now.
fn doubling_chain(n: usize) -> Arc<Catalog> {
    catalog(
        (1..=n)
            .map(|i| {
                let body = if i == n {
                    "SELECT $1".to_string()
                } else {
                    format!("SELECT f{}($1) + f{}($1)", i + 1, i + 1)
                };
                let name: &'static str = Box::leak(format!("f{i}").into_boxed_str());
                ("public", name, func("integer", &["x"], 0, Some(&body)))
            })
            .collect(),
    )
}

#[test]
fn each_body_is_walked_once_per_extraction() {
    let x = PostgresExtractor::new().with_catalog(doubling_chain(30));
    let (result, stats) = x.extract_with_stats("SELECT f1(1)");
    let ex = result.unwrap();
    assert_eq!(
        ex.permissions
            .iter()
            .filter(|p| p.privilege.as_str() == "EXECUTE")
            .count(),
        30
    );
    assert_eq!(stats.bodies_expanded, 30);
    // One lookup for f1, two per body that calls the next.
    assert_eq!(stats.catalog_lookups, 1 + 2 * 29);
}

#[test]
fn catalog_work_past_the_bound_is_refused() {
    let few = Limits {
        max_catalog_lookups: 20,
        ..Limits::default()
    };
    let x = PostgresExtractor::new()
        .with_catalog(doubling_chain(30))
        .with_limits(few);
    let (result, stats) = x.extract_with_stats("SELECT f1(1)");
    assert_eq!(
        result.unwrap_err().to_string(),
        "catalog work beyond 20 lookups"
    );
    assert_eq!(stats.catalog_lookups, 21);
}

/// A body too large or too deep, planted by whoever may create functions, is refused like a
/// request would be.
#[test]
fn planted_bodies_meet_the_same_bounds() {
    let deep = format!("SELECT {}", chain("1", "+", 5_000));
    let x = PostgresExtractor::new().with_catalog(catalog(vec![(
        "public",
        "deep",
        func("", &[], 0, Some(&deep)),
    )]));
    assert_eq!(
        x.extract("SELECT deep()").unwrap_err().to_string(),
        "body of function `public.deep()` nesting deeper than 1000 levels"
    );
    let large = format!("SELECT 1 -- {}", "x".repeat(70_000));
    let x = PostgresExtractor::new().with_catalog(catalog(vec![(
        "public",
        "large",
        func("", &[], 0, Some(&large)),
    )]));
    assert_eq!(
        x.extract("SELECT large()").unwrap_err().to_string(),
        "body of function `public.large()` larger than 65536 bytes"
    );
}

#[test]
fn other_sessions_temporary_schemas_are_not_resolved() {
    let c = catalog(vec![
        ("pg_temp_3", "f", func("", &[], 0, Some("SELECT 1"))),
        ("public", "g", func("", &[], 0, Some("SELECT 1"))),
    ]);
    let x = PostgresExtractor::new().with_catalog(c);
    for sql in [
        "SELECT pg_temp_3.f()",
        "SET search_path = pg_temp_3, public; SELECT f()",
    ] {
        let e = x.extract(sql).unwrap_err().to_string();
        assert!(e.contains("function `f` does not exist"), "{sql}: {e}");
    }
    assert!(x
        .extract("SET search_path = pg_temp_3, public; SELECT g()")
        .is_ok());
}

#[test]
fn named_arguments_pick_the_overload_that_has_them() {
    let c = catalog(vec![
        ("public", "f", func("integer", &["a"], 0, None)),
        ("public", "f", func("text, integer", &["b", "c"], 1, None)),
    ]);
    let x = PostgresExtractor::new().with_catalog(c);
    let sig = |sql: &str| -> Vec<String> {
        x.extract(sql)
            .unwrap()
            .permissions
            .iter()
            .filter_map(|p| p.object.signature.clone())
            .collect()
    };
    assert_eq!(sig("SELECT f(a => 1)"), ["integer"]);
    assert_eq!(sig("SELECT f(a := 1)"), ["integer"]);
    assert_eq!(sig("SELECT f(b => 'x')"), ["text, integer"]);
    assert_eq!(sig("SELECT f('x', c => 2)"), ["text, integer"]);
    assert_eq!(sig("SELECT f(1)"), ["integer", "text, integer"]);
    let e = x.extract("SELECT f(z => 1)").unwrap_err().to_string();
    assert_eq!(
        e,
        "unsupported: no function `public.f` takes the arguments `z`"
    );
    // An argument's name is not a column.
    let ex = PostgresExtractor::new()
        .with_columns(true)
        .extract("SELECT f(a => title) FROM film")
        .unwrap();
    let cols: Vec<_> = ex
        .permissions
        .iter()
        .filter_map(|p| p.columns.clone())
        .collect();
    assert_eq!(cols, [vec!["title".to_string()]]);
}

#[test]
fn locking_reads_report_the_tables_they_lock() {
    let locked =
        |ex: &Extraction| -> Vec<String> { ex.locked.iter().map(|o| o.name.clone()).collect() };
    for clause in [
        "FOR UPDATE",
        "FOR NO KEY UPDATE",
        "FOR SHARE",
        "FOR KEY SHARE",
        "FOR NO KEY UPDATE OF f NOWAIT",
        "FOR KEY SHARE SKIP LOCKED",
    ] {
        let ex = pg(&format!(
            "SELECT f.title FROM film f JOIN language l USING (language_id) {clause}"
        ))
        .unwrap();
        let want: &[&str] = if clause.contains("OF f") {
            &["film"]
        } else {
            &["film", "language"]
        };
        assert_eq!(locked(&ex), want, "{clause}");
        // PostgreSQL: every lock strength needs UPDATE.
        assert!(ex
            .permissions
            .iter()
            .any(|p| p.privilege.as_str() == "UPDATE" && p.object.name == "film"));
    }
    assert!(pg("SELECT title FROM film").unwrap().locked.is_empty());
    for sql in [
        "SELECT title FROM film WHERE film_id = 1 LOCK IN SHARE MODE",
        "SELECT title FROM film WHERE film_id = 1 FOR SHARE",
        "SELECT title FROM film WHERE film_id = 1 FOR UPDATE",
    ] {
        // MariaDB: SELECT is all a locking read needs.
        let ex = mysql(sql).unwrap();
        assert_eq!(locked(&ex), ["film"], "{sql}");
        assert!(!ex
            .permissions
            .iter()
            .any(|p| p.privilege.as_str() == "UPDATE"));
        // MySQL 8: UPDATE as well.
        let ex = MySqlExtractor::new(Some("app".into()))
            .for_mysql8()
            .extract(sql)
            .unwrap();
        assert_eq!(locked(&ex), ["film"], "{sql}");
        assert!(ex
            .permissions
            .iter()
            .any(|p| p.privilege.as_str() == "UPDATE"));
    }
    // Serialized only when there is something locked.
    let json = serde_json::to_value(pg("SELECT 1").unwrap()).unwrap();
    assert!(json.get("locked").is_none());
    let json = serde_json::to_value(pg("SELECT 1 FROM film FOR UPDATE").unwrap()).unwrap();
    assert_eq!(json["locked"][0]["name"], "film");
}

#[test]
fn the_estimate_counts_chains_not_lists() {
    let depth = |sql: &str| {
        let t = Tokenizer::new(&PostgreSqlDialect {}, sql)
            .tokenize_with_location()
            .unwrap();
        nesting(&t, usize::MAX)
    };
    assert_eq!(depth("SELECT a, b, c FROM t"), 1);
    assert_eq!(depth("SELECT 1 + 1 + 1"), 3);
    assert_eq!(depth("SELECT f(1 + 1) + 1"), 4);
    assert_eq!(depth("SELECT 1 UNION SELECT 2, 3 UNION SELECT 4"), 3);
    assert_eq!(depth("SELECT 1 + 1; SELECT 1"), 2);
    let _: ExtractStats = ExtractStats::default();
}
