//! Extraction without a catalog: the shapes of the results, and what is refused.

use super::*;
use crate::types::ObjectKind;

fn pg(sql: &str) -> Extraction {
    PostgresExtractor::new()
        .with_database("app")
        .extract(sql)
        .unwrap()
}

fn has(ex: &Extraction, privilege: &str, kind: ObjectKind, name: &str) -> bool {
    ex.permissions.iter().any(|p| {
        p.privilege.as_str() == privilege && p.object.kind == kind && p.object.name == name
    })
}

#[test]
fn select_needs_connect_usage_and_select() {
    let ex = pg("SELECT title FROM film");
    assert!(has(&ex, "CONNECT", ObjectKind::Database, "app"));
    assert!(has(&ex, "USAGE", ObjectKind::Schema, "public"));
    assert!(has(&ex, "SELECT", ObjectKind::Table, "film"));
    assert_eq!(ex.permissions.len(), 3);
}

#[test]
fn cte_name_is_not_a_table_but_shadowed_name_inside_is() {
    let ex = pg("WITH film AS (SELECT * FROM film) SELECT * FROM film");
    assert!(
        has(&ex, "SELECT", ObjectKind::Table, "film"),
        "the CTE body reads the real table"
    );
    let ex = pg("WITH x AS (SELECT 1) SELECT * FROM x");
    assert!(!ex
        .permissions
        .iter()
        .any(|p| p.object.kind == ObjectKind::Table));
}

#[test]
fn update_without_reading_needs_no_select() {
    let ex = pg("UPDATE t SET a = 1");
    assert!(has(&ex, "UPDATE", ObjectKind::Table, "t"));
    assert!(!has(&ex, "SELECT", ObjectKind::Table, "t"));
    let ex = pg("UPDATE t SET a = a + 1");
    assert!(has(&ex, "SELECT", ObjectKind::Table, "t"));
}

#[test]
fn unresolved_parts_are_reported_without_a_catalog() {
    let ex = PostgresExtractor::new()
        .extract("INSERT INTO t (a) VALUES (1); SELECT f(1)")
        .unwrap();
    assert!(
        ex.unresolved.iter().any(|u| u.contains("CONNECT")),
        "{:?}",
        ex.unresolved
    );
    assert!(
        ex.unresolved
            .iter()
            .any(|u| u.contains("defaults of `public.t`")),
        "{:?}",
        ex.unresolved
    );
    assert!(
        ex.unresolved
            .iter()
            .any(|u| u.contains("signature of function `public.f`")),
        "{:?}",
        ex.unresolved
    );
}

#[test]
fn quoted_names_keep_their_case() {
    let ex = pg(r#"SELECT * FROM "Sales"."Orders", sales.orders"#);
    assert!(has(&ex, "SELECT", ObjectKind::Table, "Orders"));
    assert!(has(&ex, "SELECT", ObjectKind::Table, "orders"));
    assert!(has(&ex, "USAGE", ObjectKind::Schema, "Sales"));
}

#[test]
fn refusals_are_one_line_with_a_reason() {
    for sql in [
        "DROP TABLE t",
        "GRANT postgres TO CURRENT_USER",
        "SET ROLE postgres",
        "COPY t TO PROGRAM 'id'",
        "SELECT pg_read_file('/etc/passwd')",
        "ALTER SYSTEM SET work_mem = '1GB'",
        "SELECT 1; DROP TABLE t",
    ] {
        let e = PostgresExtractor::new()
            .extract(sql)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("refused"), "{sql}: {e}");
        assert!(!e.contains('\n'));
    }
}

#[test]
fn syntax_errors_carry_the_position() {
    let e = PostgresExtractor::new()
        .extract("SELEC * FORM film")
        .unwrap_err()
        .to_string();
    assert!(e.contains("Line: 1, Column: 1"), "{e}");
    assert!(PostgresExtractor::new().extract("").is_err());
}

#[test]
fn mysql_names_are_database_qualified() {
    let ex = MySqlExtractor::new(Some("shop".into()))
        .extract("UPDATE `orders` o JOIN other.lines l ON l.id = o.id SET o.x = 1")
        .unwrap();
    assert!(ex
        .permissions
        .iter()
        .any(|p| p.privilege == Privilege::Update && p.object.schema.as_deref() == Some("shop")));
    assert!(ex
        .permissions
        .iter()
        .any(|p| p.privilege == Privilege::Select && p.object.schema.as_deref() == Some("other")));
    assert!(!ex
        .permissions
        .iter()
        .any(|p| p.object.kind == ObjectKind::Database));
    let e = MySqlExtractor::new(None)
        .extract("SELECT * FROM t INTO OUTFILE '/tmp/x'")
        .unwrap_err()
        .to_string();
    assert!(e.contains("FILE"), "{e}");
}

/// Inputs on which sqlparser 0.59 backtracked exponentially (the first found by our fuzzer: 170
/// bytes, 13 s of CPU in a release build; each level of nesting doubled it). Any requester can
/// send SQL, so extraction must stay linear in it: with the old parser this test does not end.
#[test]
fn pathological_nesting_is_answered_at_once() {
    let fuzzed = String::from_utf8_lossy(include_bytes!("testdata/nested-timeout.sql"));
    let deep = 40;
    let cases = [
        fuzzed.to_string(),
        format!("SELECT {}1", "f(".repeat(deep)),
        format!(
            "SELECT {}1{}",
            "CAST(CASE (".repeat(deep),
            ")".repeat(3 * deep)
        ),
        format!("SELECT 1 FROM {}t{}", "(".repeat(deep), ")".repeat(deep)),
        format!("SELECT {}", "a IN (SELECT ".repeat(deep)),
    ];
    for sql in &cases {
        for ex in [
            &PostgresExtractor::new() as &dyn PermissionExtractor,
            &MySqlExtractor::new(Some("app".into())),
        ] {
            let e = ex.extract(sql).unwrap_err();
            assert!(!e.to_string().contains('\n'), "{e}");
        }
    }
    // Deep but well-formed nesting still extracts.
    let ok = pg(&format!(
        "SELECT {}title{} FROM film",
        "lower(".repeat(deep),
        ")".repeat(deep)
    ));
    assert!(has(&ok, "SELECT", ObjectKind::Table, "film"));
}

/// The walk's own recursion bound stops a tree deeper than it, whatever built the tree: here
/// trees parsed past the pre-scan's bound, walked with a small one.
#[test]
fn the_walk_stops_at_its_own_depth_bound() {
    use sqlparser::dialect::PostgreSqlDialect;
    let rules = PostgresExtractor::new().rules;
    let lax = Limits {
        max_depth: 100_000,
        ..Limits::default()
    };
    let strict = Limits {
        max_depth: 10,
        ..Limits::default()
    };
    let bound = walker::walk_depth_bound(&strict);
    for sql in [
        format!("SELECT {}1", "1 + ".repeat(200)),
        format!("SELECT 1{}", " UNION SELECT 1".repeat(200)),
        format!("SELECT 1{}", "::int".repeat(200)),
    ] {
        let parsed =
            bounds::parse_statements(&PostgreSqlDialect {}, &sql, "query", &lax, Syntax::Postgres)
                .unwrap();
        let mut w = Walker::new(&rules, None, false, strict);
        let e = w.statement(&parsed[0]).unwrap_err().to_string();
        assert_eq!(e, format!("query nesting deeper than {bound} levels"));
        let mut w = Walker::new(&rules, None, false, lax);
        w.statement(&parsed[0]).unwrap();
    }
}

#[test]
fn mysql_set_refusals_name_the_variable() {
    let x = MySqlExtractor::new(Some("shop".into()));
    for (sql, word) in [
        ("SET GLOBAL max_connections = 1", "GLOBAL"),
        ("SET @x = 1, GLOBAL max_connections = 1", "GLOBAL"),
        ("SET @@global.wait_timeout = 1", "GLOBAL"),
        ("SET SESSION sql_log_bin = 0", "sql_log_bin"),
        ("SET @@session.gtid_seq_no = 1", "gtid_seq_no"),
        ("SET sql_mode = 'ANSI_QUOTES'", "sql_mode"),
        ("SET NAMES big5", "big5"),
    ] {
        let e = x.extract(sql).unwrap_err();
        assert!(
            matches!(e, ExtractError::Refused(_)) && e.to_string().contains(word),
            "{sql}: {e}"
        );
    }
    assert!(x.extract("SET SESSION wait_timeout = 100").is_ok());
}

#[test]
fn mysql_multi_table_names_resolve_to_the_statements_tables() {
    let x = MySqlExtractor::new(Some("shop".into()));
    // The alias in DELETE ... USING names the USING table, not a table called `a`.
    let ex = x
        .extract("DELETE FROM a USING order_lines AS a WHERE a.qty = 0")
        .unwrap();
    assert!(has(&ex, "DELETE", ObjectKind::Table, "order_lines"));
    assert!(!has(&ex, "DELETE", ObjectKind::Table, "a"));
    // An unqualified SET column of a multi-table UPDATE: the one table that may have it.
    let ex = x
        .extract(
            "UPDATE (SELECT sku FROM order_lines) d JOIN targets t ON d.sku = t.sku SET qty = 0",
        )
        .unwrap();
    assert!(has(&ex, "UPDATE", ObjectKind::Table, "targets"));
    let e = x
        .extract("UPDATE order_lines l JOIN targets t ON t.sku = l.sku SET qty = 1")
        .unwrap_err();
    assert!(e.to_string().contains("qualify"), "{e}");
    // WITH RECURSIVE: a later CTE's name is not a table.
    let ex = x
        .extract("WITH RECURSIVE a AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM b WHERE n < 3), b AS (SELECT n FROM a) SELECT n FROM a")
        .unwrap();
    assert!(ex.permissions.is_empty(), "{:?}", ex.permissions);
}

#[test]
fn mysql_syntax_sqlparser_lacks_is_read_or_refused_by_name() {
    let x = MySqlExtractor::new(Some("shop".into()));
    let ex = x
        .extract("HANDLER targets OPEN AS h; HANDLER h READ FIRST; HANDLER h CLOSE")
        .unwrap();
    assert!(has(&ex, "SELECT", ObjectKind::Table, "targets"));
    let ex = x
        .extract("SELECT sku FROM prices FOR SYSTEM_TIME ALL")
        .unwrap();
    assert!(has(&ex, "SELECT", ObjectKind::Table, "prices"));
    let ex = x
        .extract("SELECT qty INTO @q FROM targets WHERE sku = 'x'")
        .unwrap();
    assert!(has(&ex, "SELECT", ObjectKind::Table, "targets"));
    let ex = x.extract("USE other; SELECT note FROM audit").unwrap();
    assert!(ex
        .permissions
        .iter()
        .any(|p| p.object.schema.as_deref() == Some("other")));
    for (sql, word) in [
        (
            "HANDLER t OPEN; HANDLER t READ FIRST WHERE a = (SELECT 1 FROM u)",
            "HANDLER",
        ),
        (
            "SELECT a FROM t FOR SYSTEM_TIME AS OF (SELECT now())",
            "FOR SYSTEM_TIME",
        ),
        ("USE other; SELECT 1", "USE other"),
        ("SELECT a FROM t INTO @x", "INTO @variable"),
    ] {
        let e = x.extract(sql).unwrap_err();
        assert!(e.to_string().contains(word), "{sql}: {e}");
    }
}

#[test]
fn mariadb_sequence_functions_need_select_and_insert_on_the_sequence() {
    let x = MySqlExtractor::new(Some("shop".into()));
    for sql in [
        "SELECT NEXTVAL(s)",
        "SELECT NEXT VALUE FOR shop.s",
        "SELECT NEXT VALUE FOR s + 1",
    ] {
        let ex = x.extract(sql).unwrap();
        assert!(has(&ex, "SELECT", ObjectKind::Table, "s"), "{sql}");
        assert!(has(&ex, "INSERT", ObjectKind::Table, "s"), "{sql}");
    }
    let ex = x.extract("SELECT PREVIOUS VALUE FOR s").unwrap();
    assert!(
        has(&ex, "SELECT", ObjectKind::Table, "s") && !has(&ex, "INSERT", ObjectKind::Table, "s")
    );
    let ex = x.extract("SELECT SETVAL(s, 10)").unwrap();
    assert!(
        has(&ex, "INSERT", ObjectKind::Table, "s") && !has(&ex, "SELECT", ObjectKind::Table, "s")
    );
    // The sequence's name is not a column of the tables read.
    let ex = x
        .with_columns(true)
        .extract("SELECT NEXTVAL(s), name FROM customers")
        .unwrap();
    assert!(ex.permissions.iter().all(|p| p
        .columns
        .as_ref()
        .is_none_or(|c| !c.contains(&"s".to_string()))));
}

#[test]
fn mysql_executable_comments_meet_the_depth_bound() {
    let x = MySqlExtractor::new(Some("shop".into()));
    let chain = "+1".repeat(20_000);
    for sql in [
        format!("SELECT 1 /*M! {chain} */"),
        format!("SELECT 1 /*!100000 {chain} */"),
    ] {
        let e = x.extract(&sql).unwrap_err();
        assert!(matches!(e, ExtractError::TooDeep { .. }), "{e}");
    }
    // Skipped: never parsed, so never too deep.
    assert!(x.extract(&format!("SELECT 1 /*!999999 {chain} */")).is_ok());
}
