//! MariaDB against a catalog snapshot shaped as `Catalog::load_mysql` reads it: stored routines
//! by kind and security, INVOKER views, sequences behind defaults (the rules each test holds
//! were verified on MariaDB 10.11; `tests/corpus/my-implicit` checks them on a live server).

use super::catalog::{ColumnInfo, FuncInfo, RelInfo, RelKind, MYSQL_ROUTINE};
use super::implicit_tests::has;
use super::*;
use crate::types::ObjectKind;

fn key(s: &str, n: &str) -> (String, String) {
    (s.into(), n.into())
}

fn table(cols: &[(&str, Option<&str>)]) -> RelInfo {
    RelInfo {
        kind: RelKind::Table,
        columns: cols
            .iter()
            .map(|(c, d)| ColumnInfo {
                name: (*c).into(),
                default: d.map(Into::into),
            })
            .collect(),
        invoker_body: None,
    }
}

fn routine(procedure: bool, body: Option<&str>) -> FuncInfo {
    FuncInfo {
        signature: String::new(),
        nargs: 1,
        ndefaults: 0,
        variadic: false,
        arg_names: vec!["x".into()],
        security_definer: body.is_none(),
        procedure,
        body: body.map(|b| (MYSQL_ROUTINE.to_string(), b.to_string())),
    }
}

fn catalog() -> Arc<Catalog> {
    let mut c = Catalog {
        database: "shop".into(),
        search_path: vec!["shop".into()],
        server_version: Some((10, 11, 6)),
        ..Catalog::default()
    };
    let r = &mut c.relations;
    r.insert(key("shop", "items"), table(&[("id", None), ("name", None)]));
    r.insert(key("shop", "notes"), table(&[("id", None), ("note", None)]));
    r.insert(key("shop", "secret"), table(&[("s", None)]));
    r.insert(
        key("shop", "orders"),
        table(&[("id", Some("nextval(`shop`.`oseq`)")), ("item", None)]),
    );
    r.insert(
        key("shop", "oseq"),
        RelInfo {
            kind: RelKind::Sequence,
            ..table(&[])
        },
    );
    r.insert(
        key("shop", "v_inv"),
        RelInfo {
            kind: RelKind::View,
            invoker_body: Some(
                "select `shop`.`items`.`id` AS `id`,`shop`.`items`.`name` AS `name` from `shop`.`items`"
                    .into(),
            ),
            ..table(&[("id", None), ("name", None)])
        },
    );
    r.insert(
        key("other", "notes"),
        table(&[("id", None), ("note", None)]),
    );
    let f = &mut c.functions;
    let read_notes = "RETURN (SELECT note FROM notes WHERE id = x)";
    f.insert(key("shop", "f_inv"), vec![routine(false, Some(read_notes))]);
    f.insert(
        key("other", "f_inv"),
        vec![routine(false, Some(read_notes))],
    );
    f.insert(key("shop", "f_def"), vec![routine(false, None)]);
    f.insert(
        key("shop", "reverse"),
        vec![routine(false, Some("RETURN (SELECT s FROM secret)"))],
    );
    f.insert(
        key("shop", "p_inv"),
        vec![routine(
            true,
            Some("BEGIN DECLARE n INT; SELECT count(*) INTO n FROM notes; UPDATE items SET name = f_inv(n); END"),
        )],
    );
    f.insert(
        key("shop", "twin"),
        vec![
            routine(true, Some("BEGIN DELETE FROM notes; END")),
            routine(false, None),
        ],
    );
    c.builtins.insert("reverse".into());
    Arc::new(c)
}

fn my(sql: &str) -> Extraction {
    MySqlExtractor::new(None)
        .with_catalog(catalog())
        .extract(sql)
        .unwrap()
}

use ObjectKind::{Function, Procedure, Table};

#[test]
fn an_unqualified_stored_function_needs_execute_and_its_invoker_body() {
    // From the text alone it is taken for a built-in; the catalog knows better.
    let alone = MySqlExtractor::new(Some("shop".into()))
        .extract("SELECT f_inv(1)")
        .unwrap();
    assert!(alone.permissions.is_empty());
    for sql in ["SELECT f_inv(1)", "SELECT F_INV(1)", "SELECT shop.f_inv(1)"] {
        let ex = my(sql);
        assert!(has(&ex, "EXECUTE", Function, "shop", "f_inv"), "{sql}");
        assert!(has(&ex, "SELECT", Table, "shop", "notes"), "{sql}");
        let grant = ex.permissions.iter().next().unwrap();
        assert_eq!(grant.object.signature, None, "MariaDB has no overloads");
    }
    let ex = my("SELECT f_def(1)");
    assert!(has(&ex, "EXECUTE", Function, "shop", "f_def"));
    assert_eq!(
        ex.permissions.len(),
        1,
        "a DEFINER body runs as its definer"
    );
}

#[test]
fn a_native_name_unqualified_is_the_native_function() {
    let ex = my("SELECT reverse(name) FROM items");
    assert!(!has(&ex, "EXECUTE", Function, "shop", "reverse"));
    assert!(!has(&ex, "SELECT", Table, "shop", "secret"));
    let ex = my("SELECT shop.reverse(name) FROM items");
    assert!(has(&ex, "EXECUTE", Function, "shop", "reverse"));
    assert!(has(&ex, "SELECT", Table, "shop", "secret"));
}

#[test]
fn a_procedure_body_runs_as_the_caller_in_the_procedures_database() {
    for sql in ["CALL p_inv", "CALL p_inv()", "CALL shop.p_inv()"] {
        let ex = my(sql);
        assert!(has(&ex, "EXECUTE", Procedure, "shop", "p_inv"), "{sql}");
        assert!(has(&ex, "SELECT", Table, "shop", "notes"), "{sql}");
        assert!(has(&ex, "UPDATE", Table, "shop", "items"), "{sql}");
        assert!(has(&ex, "EXECUTE", Function, "shop", "f_inv"), "{sql}");
    }
    // The other database's function reads the other database's table.
    let ex = my("SELECT other.f_inv(1)");
    assert!(has(&ex, "SELECT", Table, "other", "notes"));
    assert!(!has(&ex, "SELECT", Table, "shop", "notes"));
}

#[test]
fn call_names_the_procedure_and_an_expression_the_function() {
    let ex = my("CALL twin(1)");
    assert!(has(&ex, "EXECUTE", Procedure, "shop", "twin"));
    assert!(has(&ex, "DELETE", Table, "shop", "notes"));
    let ex = my("SELECT twin(1)");
    assert!(has(&ex, "EXECUTE", Function, "shop", "twin"));
    assert_eq!(ex.permissions.len(), 1);
    let err = MySqlExtractor::new(None)
        .with_catalog(catalog())
        .extract("CALL f_inv(1)")
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("procedure `shop.f_inv` does not exist"),
        "{err}"
    );
}

#[test]
fn every_insert_runs_the_sequence_behind_a_default() {
    for sql in [
        "INSERT INTO orders (item) VALUES (1)",
        "INSERT INTO orders (id, item) VALUES (5, 1)",
    ] {
        let ex = my(sql);
        assert!(has(&ex, "INSERT", Table, "shop", "orders"), "{sql}");
        // A MariaDB sequence is granted as a table.
        assert!(has(&ex, "SELECT", Table, "shop", "oseq"), "{sql}");
        assert!(has(&ex, "INSERT", Table, "shop", "oseq"), "{sql}");
    }
    let ex = my("UPDATE orders SET item = 3 WHERE id = 1");
    assert!(!has(&ex, "INSERT", Table, "shop", "oseq"));
}

#[test]
fn writing_through_an_invoker_view_writes_its_table_as_the_caller() {
    let ex = my("INSERT INTO v_inv (id, name) VALUES (1, 'a')");
    assert!(has(&ex, "INSERT", Table, "shop", "v_inv"));
    assert!(has(&ex, "INSERT", Table, "shop", "items"));
    assert!(has(&ex, "SELECT", Table, "shop", "items"));
    let ex = my("UPDATE v_inv SET name = 'b' WHERE id = 1");
    assert!(has(&ex, "UPDATE", Table, "shop", "items"));
    assert!(has(&ex, "SELECT", Table, "shop", "items"));
    assert!(
        !has(&ex, "SELECT", Table, "shop", "v_inv"),
        "{:?}",
        ex.permissions
    );
    // (MariaDB does not check SELECT on `items` for the WHERE here; p0 grants it: the view
    // is read, and a read of an INVOKER view is a read of its definition.)
    let ex = my("DELETE FROM v_inv WHERE id = 1");
    assert!(has(&ex, "DELETE", Table, "shop", "items"));
    assert!(has(&ex, "SELECT", Table, "shop", "v_inv"));
}

#[test]
fn unknown_names_stop_extraction_against_a_catalog() {
    let x = MySqlExtractor::new(None).with_catalog(catalog());
    assert!(x.extract("SELECT * FROM nowhere").is_err());
    assert!(x.extract("CALL nowhere()").is_err());
}

#[test]
fn explain_of_a_view_is_refused_naming_show_view() {
    let err = MySqlExtractor::new(None)
        .with_catalog(catalog())
        .extract("EXPLAIN SELECT * FROM v_inv")
        .unwrap_err();
    assert!(err.to_string().contains("SHOW VIEW"), "{err}");
    assert!(my("EXPLAIN SELECT * FROM items").permissions.len() == 1);
}
