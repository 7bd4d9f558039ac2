//! Statement coverage: `TABLE`, `PREPARE`/`EXECUTE`, `EXPLAIN` with and without ANALYZE,
//! and the refusal of every other form; identifiers as the server folds and searches them.

use super::*;
use crate::types::ObjectKind;

/// A catalog with `public.film`, `app.log` whose `id` defaults to a sequence, and that sequence.
fn catalog() -> Arc<Catalog> {
    let col = |name: &str, default: Option<&str>| ColumnInfo {
        name: name.into(),
        default: default.map(Into::into),
    };
    let rel = |kind, columns| RelInfo {
        kind,
        columns,
        invoker_body: None,
    };
    let mut c = Catalog {
        database: "app".into(),
        search_path: vec!["public".into()],
        ..Catalog::default()
    };
    c.relations.insert(
        ("public".into(), "film".into()),
        rel(
            RelKind::Table,
            vec![col("film_id", None), col("title", None)],
        ),
    );
    c.relations.insert(
        ("app".into(), "log".into()),
        rel(
            RelKind::Table,
            vec![
                col("id", Some("nextval('app.log_id_seq'::regclass)")),
                col("msg", None),
            ],
        ),
    );
    c.relations.insert(
        ("app".into(), "log_id_seq".into()),
        rel(RelKind::Sequence, Vec::new()),
    );
    for (schema, name) in [
        ("app", "Ä"),
        ("app", "ä"),
        ("app", "mixed"),
        ("app", "Mixed"),
        ("public", "pg_class"),
        ("pg_catalog", "pg_class"),
    ] {
        c.relations.insert(
            (schema.into(), name.into()),
            rel(RelKind::Table, vec![col("id", None)]),
        );
    }
    c.functions.insert(
        ("public".into(), "now".into()),
        vec![FuncInfo {
            signature: String::new(),
            nargs: 0,
            ndefaults: 0,
            variadic: false,
            arg_names: Vec::new(),
            security_definer: false,
            procedure: false,
            body: None,
        }],
    );
    c.builtins.insert("now".into());
    Arc::new(c)
}

fn pg(sql: &str) -> Result<Extraction, ExtractError> {
    PostgresExtractor::new()
        .with_catalog(catalog())
        .extract(sql)
}

/// The permissions as `PRIVILEGE kind schema.name` lines, sorted.
fn shown(ex: &Extraction) -> Vec<String> {
    let mut v: Vec<String> = ex
        .permissions
        .iter()
        .map(|p| {
            let kind = format!("{:?}", p.object.kind).to_lowercase();
            let schema = p
                .object
                .schema
                .as_deref()
                .map(|s| format!("{s}."))
                .unwrap_or_default();
            format!("{} {kind} {schema}{}", p.privilege.as_str(), p.object.name)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn table_is_select_star_from() {
    for sql in [
        "TABLE film",
        "TABLE public.film ORDER BY film_id LIMIT 1",
        "TABLE film UNION ALL TABLE film",
        "WITH c AS (TABLE film) SELECT count(*) FROM c",
        "SELECT 1; TABLE film",
    ] {
        assert_eq!(
            shown(&pg(sql).unwrap()),
            shown(&pg("SELECT * FROM film").unwrap()),
            "{sql}"
        );
    }
}

#[test]
fn table_keeps_the_quoting_of_its_name() {
    let ex = PostgresExtractor::new()
        .with_database("app")
        .extract(r#"TABLE s."Mixed"; TABLE S.Lower"#)
        .unwrap();
    let names: Vec<String> = ex
        .permissions
        .iter()
        .map(|p| p.object.name.clone())
        .collect();
    assert!(names.iter().any(|n| n == "Mixed"), "{names:?}");
    assert!(names.iter().any(|n| n == "lower"), "{names:?}");
}

#[test]
fn table_in_ddl_is_not_a_query() {
    // Still the statements they were: a temporary table, and refusals.
    assert!(pg("CREATE TEMP TABLE t (a int)").is_ok());
    for sql in [
        "LOCK TABLE film",
        "DROP TABLE film",
        "ALTER TABLE film ADD x int",
    ] {
        assert!(pg(sql).is_err(), "{sql}");
    }
}

#[test]
fn execute_walks_the_prepared_statement() {
    let ex =
        pg("PREPARE q(int) AS SELECT title FROM film WHERE film_id = $1; EXECUTE q(1)").unwrap();
    assert_eq!(shown(&ex), shown(&pg("SELECT title FROM film").unwrap()));
    let ex =
        pg("PREPARE ins(text) AS INSERT INTO app.log (msg) VALUES ($1); EXECUTE INS('x')").unwrap();
    assert!(shown(&ex).contains(&"USAGE sequence app.log_id_seq".to_string()));
    assert!(shown(&ex).contains(&"INSERT table app.log".to_string()));
}

#[test]
fn a_statement_prepared_and_never_executed_is_still_checked() {
    let ex = pg("PREPARE q AS DELETE FROM film").unwrap();
    assert!(shown(&ex).contains(&"DELETE table public.film".to_string()));
    assert!(pg("PREPARE q AS DROP TABLE film").is_err());
}

#[test]
fn execute_of_a_statement_not_prepared_here_is_refused() {
    for sql in [
        "EXECUTE q(1)",
        "PREPARE q AS SELECT 1; DEALLOCATE q; EXECUTE q",
        "PREPARE q AS SELECT 1; DEALLOCATE ALL; EXECUTE q",
    ] {
        let e = pg(sql).unwrap_err().to_string();
        assert!(e.starts_with("refused: `EXECUTE q"), "{sql}: {e}");
        assert!(e.contains("not prepared in this request"), "{e}");
    }
}

#[test]
fn explain_checks_privileges_but_evaluates_no_default() {
    let ex = pg("EXPLAIN INSERT INTO app.log (msg) VALUES ('x')").unwrap();
    assert_eq!(
        shown(&ex),
        [
            "CONNECT database app",
            "INSERT table app.log",
            "USAGE schema app"
        ]
    );
    let ex =
        pg("EXPLAIN (ANALYZE false, COSTS OFF) INSERT INTO app.log (msg) VALUES ('x')").unwrap();
    assert!(!shown(&ex).iter().any(|p| p.contains("log_id_seq")));
    // A sequence named in the query is looked up, not used.
    let ex = pg("EXPLAIN SELECT nextval('app.log_id_seq')").unwrap();
    assert_eq!(shown(&ex), ["CONNECT database app", "USAGE schema app"]);
}

#[test]
fn explain_analyze_runs_the_statement() {
    for sql in [
        "EXPLAIN ANALYZE INSERT INTO app.log (msg) VALUES ('x')",
        "EXPLAIN (ANALYZE) INSERT INTO app.log (msg) VALUES ('x')",
        "EXPLAIN (COSTS OFF, ANALYZE true) INSERT INTO app.log (msg) VALUES ('x')",
    ] {
        let ex = pg(sql).unwrap();
        assert_eq!(
            shown(&ex),
            shown(&pg("INSERT INTO app.log (msg) VALUES ('x')").unwrap()),
            "{sql}"
        );
        assert!(shown(&ex).contains(&"USAGE sequence app.log_id_seq".to_string()));
    }
}

#[test]
fn explain_execute_is_planned_only() {
    let ex = pg("PREPARE i AS INSERT INTO app.log (msg) VALUES ('x'); EXPLAIN EXECUTE i").unwrap();
    assert!(!shown(&ex).iter().any(|p| p.contains("log_id_seq")));
    assert!(shown(&ex).contains(&"INSERT table app.log".to_string()));
}

#[test]
fn unknown_statement_forms_are_refused_in_one_line_naming_them() {
    for (sql, named) in [
        ("LISTEN channel", "LISTEN"),
        ("DECLARE c CURSOR FOR SELECT 1", "DECLARE"),
        ("LOCK TABLE film", "LOCK"),
        ("DO $$BEGIN PERFORM 1; END$$", "DO"),
        ("EXECUTE IMMEDIATE 'SELECT 1'", "EXECUTE"),
    ] {
        let e = pg(sql).unwrap_err().to_string();
        assert!(
            e.starts_with("refused") || e.starts_with("unsupported"),
            "{sql}: {e}"
        );
        assert!(e.contains(named), "{sql}: {e}");
        assert!(!e.contains('\n'), "{e}");
    }
}

#[test]
fn kinds_of_the_explained_objects_are_unchanged() {
    let ex = pg("EXPLAIN TABLE film").unwrap();
    assert!(ex
        .permissions
        .iter()
        .any(|p| p.object.kind == ObjectKind::Table && p.object.name == "film"));
}

#[test]
fn unquoted_names_fold_only_ascii() {
    assert_eq!(
        shown(&pg("SELECT * FROM app.Ä").unwrap()),
        [
            "CONNECT database app",
            "SELECT table app.Ä",
            "USAGE schema app"
        ]
    );
    assert_eq!(
        shown(&pg(r#"SELECT * FROM "app"."ä""#).unwrap()),
        [
            "CONNECT database app",
            "SELECT table app.ä",
            "USAGE schema app"
        ]
    );
    assert_eq!(
        shown(&pg("SELECT * FROM APP.MiXeD").unwrap()),
        [
            "CONNECT database app",
            "SELECT table app.mixed",
            "USAGE schema app"
        ]
    );
    assert_eq!(
        shown(&pg(r#"SELECT * FROM app."Mixed""#).unwrap()),
        [
            "CONNECT database app",
            "SELECT table app.Mixed",
            "USAGE schema app"
        ]
    );
    // Also in names written as text (a sequence passed to nextval).
    let ex = PostgresExtractor::new()
        .with_database("app")
        .extract("SELECT nextval('S.Ä'), nextval('\"S\".Seq')")
        .unwrap();
    let names: Vec<String> = shown(&ex);
    assert!(
        names.contains(&"USAGE sequence s.Ä".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"USAGE sequence S.seq".to_string()),
        "{names:?}"
    );
}

#[test]
fn pg_catalog_is_searched_first_unless_the_path_places_it() {
    // `now()` is the built-in, though public has one of its own.
    assert_eq!(
        shown(&pg("SELECT now()").unwrap()),
        ["CONNECT database app"]
    );
    assert_eq!(
        shown(&pg("SET search_path = public, pg_catalog; SELECT now()").unwrap()),
        [
            "CONNECT database app",
            "EXECUTE function public.now",
            "USAGE schema public"
        ]
    );
    // A relation named like a system catalog: the system catalog, when the catalog knows it.
    let ex = pg("SELECT * FROM pg_class").unwrap();
    assert!(!shown(&ex).iter().any(|p| p.contains("public")), "{ex:?}");
    let ex = pg("SET search_path = public, pg_catalog; SELECT * FROM pg_class").unwrap();
    assert!(shown(&ex).contains(&"SELECT table public.pg_class".to_string()));
}

#[test]
fn call_grants_execute_on_a_procedure() {
    let ex = PostgresExtractor::new()
        .with_database("app")
        .extract("CALL app.add_log('x'); SELECT app.f(1)")
        .unwrap();
    let kind = |name: &str| {
        ex.permissions
            .iter()
            .find(|p| p.object.name == name)
            .map(|p| p.object.kind)
    };
    assert_eq!(kind("add_log"), Some(ObjectKind::Procedure));
    assert_eq!(kind("f"), Some(ObjectKind::Function));
    // Functions in the arguments of CALL are still functions.
    let ex = MySqlExtractor::new(Some("shop".into()))
        .extract("CALL restock(shop.price_of(1))")
        .unwrap();
    let kinds: Vec<(String, ObjectKind)> = ex
        .permissions
        .iter()
        .map(|p| (p.object.name.clone(), p.object.kind))
        .collect();
    assert!(
        kinds.contains(&("restock".into(), ObjectKind::Procedure)),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("price_of".into(), ObjectKind::Function)),
        "{kinds:?}"
    );
}

#[test]
fn temporary_tables_that_need_more_than_temporary_are_refused() {
    assert!(pg("CREATE TEMP TABLE t (a int DEFAULT 0, b text)").is_ok());
    for sql in [
        "CREATE TEMP TABLE t (a int REFERENCES film (film_id))",
        "CREATE TEMP TABLE t (a int, FOREIGN KEY (a) REFERENCES film (film_id))",
        "CREATE TEMP TABLE t (LIKE film)",
        "CREATE TEMP TABLE t () INHERITS (film)",
    ] {
        let e = pg(sql).unwrap_err().to_string();
        assert!(e.contains("CREATE TEMP TABLE"), "{sql}: {e}");
        assert!(!e.contains('\n'), "{e}");
    }
}

#[test]
fn mariadb_set_statement_for_is_a_session_set_and_its_statement() {
    let x = MySqlExtractor::new(Some("shop".into()));
    let ex = x
        .extract("SET STATEMENT max_statement_time = 1 FOR SELECT id FROM items")
        .unwrap();
    assert_eq!(ex.permissions.len(), 1);
    // A variable only SUPER may set stays refused, hidden in the per-statement form too.
    for sql in [
        "SET STATEMENT sql_log_bin = 0 FOR DELETE FROM items",
        "SET STATEMENT max_statement_time = 1, sql_log_bin = 0 FOR DELETE FROM items",
    ] {
        let err = x.extract(sql).unwrap_err().to_string();
        assert!(err.contains("sql_log_bin"), "{sql}: {err}");
    }
    for sql in ["SET CHARACTER SET utf8mb4", "SET CHARSET utf8mb4"] {
        assert!(x.extract(sql).unwrap().permissions.is_empty(), "{sql}");
    }
}
