//! What the server runs for the invoker, from a catalog snapshot: functions reached through
//! views, `security_invoker` views, and what else the catalog calls implicitly.

use super::catalog::{
    ColumnCalls, ColumnInfo, FuncInfo, RelInfo, RelKind, TriggerInfo, ViewCall, ViewDeps,
    WritePolicy,
};
use super::*;
use crate::types::ObjectKind;

fn key(s: &str, n: &str) -> (String, String) {
    (s.into(), n.into())
}

fn rel(kind: RelKind, cols: &[&str], invoker_body: Option<&str>) -> RelInfo {
    RelInfo {
        kind,
        columns: cols
            .iter()
            .map(|c| ColumnInfo {
                name: (*c).into(),
                default: None,
            })
            .collect(),
        invoker_body: invoker_body.map(Into::into),
    }
}

fn call(name: &str) -> ViewCall {
    ViewCall {
        schema: "fx".into(),
        name: name.into(),
        signature: "integer".into(),
        volatile: false,
    }
}

fn func(signature: &str, body: Option<(&str, &str)>) -> FuncInfo {
    FuncInfo {
        signature: signature.into(),
        nargs: 1,
        ndefaults: 0,
        variadic: false,
        arg_names: vec![String::new()],
        security_definer: body.is_none(),
        procedure: false,
        body: body.map(|(l, b)| (l.into(), b.into())),
    }
}

/// Tables in `base`, functions in `fx`, views in `imp` (as the pg-implicit corpus has them).
fn catalog() -> Arc<Catalog> {
    let mut c = Catalog {
        database: "app".into(),
        search_path: vec!["public".into()],
        ..Catalog::default()
    };
    c.relations.insert(
        key("base", "items"),
        rel(RelKind::Table, &["id", "name"], None),
    );
    c.relations.insert(
        key("base", "notes"),
        rel(RelKind::Table, &["id", "note"], None),
    );
    for v in ["v_func", "v_nested", "v_over_inv"] {
        c.relations
            .insert(key("imp", v), rel(RelKind::View, &["id", "b", "n"], None));
    }
    c.relations.insert(
        key("imp", "v_inv"),
        rel(
            RelKind::View,
            &["id", "name"],
            Some("SELECT items.id, items.name FROM base.items"),
        ),
    );
    c.functions
        .insert(key("fx", "bump"), vec![func("integer", None)]);
    c.functions.insert(
        key("fx", "note_inv"),
        vec![func(
            "integer",
            Some(("sql", "SELECT note FROM base.notes WHERE id = $1")),
        )],
    );
    c.views.insert(
        key("imp", "v_func"),
        ViewDeps {
            views: vec![],
            functions: vec![call("bump"), call("note_inv")],
            base: Some(key("base", "items")),
            definition: Some(
                "SELECT items.id, fx.bump(items.id) AS b, fx.note_inv(items.id) AS n FROM base.items"
                    .into(),
            ),
        },
    );
    c.views.insert(
        key("imp", "v_nested"),
        ViewDeps {
            views: vec![key("imp", "v_func")],
            ..ViewDeps::default()
        },
    );
    c.views.insert(
        key("imp", "v_over_inv"),
        ViewDeps {
            views: vec![key("imp", "v_inv")],
            ..ViewDeps::default()
        },
    );
    // Writes: a domain CHECK on priced.amount, a generated column, a view over a table whose
    // default takes a sequence.
    c.relations.insert(
        key("imp", "priced"),
        rel(RelKind::Table, &["id", "amount"], None),
    );
    c.writes.insert(
        key("imp", "priced"),
        vec![ColumnCalls {
            column: "amount".into(),
            functions: vec![call("is_pos")],
            generated_from: None,
        }],
    );
    let mut tickets = rel(RelKind::Table, &["id", "title"], None);
    tickets.columns[0].default = Some("nextval('base.tickets_id_seq'::regclass)".into());
    c.relations.insert(key("base", "tickets"), tickets);
    c.relations.insert(
        key("base", "tickets_id_seq"),
        rel(RelKind::Sequence, &[], None),
    );
    c.relations.insert(
        key("imp", "v_tickets"),
        rel(RelKind::View, &["id", "title"], None),
    );
    c.views.insert(
        key("imp", "v_tickets"),
        ViewDeps {
            base: Some(key("base", "tickets")),
            ..ViewDeps::default()
        },
    );
    c.relations.insert(
        key("imp", "docs"),
        rel(RelKind::Table, &["id", "owner", "body"], None),
    );
    c.relations.insert(
        key("base", "acl"),
        rel(RelKind::Table, &["doc_id", "ok"], None),
    );
    c.functions
        .insert(key("fx", "visible"), vec![func("text", None)]);
    c.read_policies.insert(
        key("imp", "docs"),
        vec![
            "fx.visible(owner)".into(),
            "(id IN ( SELECT acl.doc_id FROM base.acl WHERE acl.ok))".into(),
        ],
    );
    c.relations.insert(
        key("imp", "wdocs"),
        rel(RelKind::Table, &["id", "owner"], None),
    );
    c.functions
        .insert(key("fx", "may_write"), vec![func("text", None)]);
    c.write_policies.insert(
        key("imp", "wdocs"),
        vec![
            WritePolicy {
                command: 'a',
                using: None,
                check: Some("fx.may_write(owner)".into()),
            },
            WritePolicy {
                command: 'd',
                using: Some("(id IN ( SELECT acl.doc_id FROM base.acl))".into()),
                check: None,
            },
        ],
    );
    c.relations.insert(
        key("imp", "tracked"),
        rel(RelKind::Table, &["id", "v"], None),
    );
    c.relations
        .insert(key("base", "audit"), rel(RelKind::Table, &["what"], None));
    c.triggers.insert(
        key("imp", "tracked"),
        vec![TriggerInfo {
            name: "t_log".into(),
            events: 4,
            function: "fx.log_it".into(),
            language: "plpgsql".into(),
            body: Some(
                "BEGIN INSERT INTO base.audit (what) VALUES (TG_OP); RETURN NEW; END".into(),
            ),
            security_definer: false,
            when_calls: vec![call("bump")],
        }],
    );
    Arc::new(c)
}

fn pg(sql: &str) -> Extraction {
    PostgresExtractor::new()
        .with_catalog(catalog())
        .extract(sql)
        .unwrap()
}

/// Whether `ex` holds `privilege` on the object (a schema by its name alone).
pub(super) fn has(
    ex: &Extraction,
    privilege: &str,
    kind: ObjectKind,
    schema: &str,
    name: &str,
) -> bool {
    ex.permissions.iter().any(|p| {
        p.privilege.as_str() == privilege
            && p.object.kind == kind
            && p.object.name == name
            && (kind == ObjectKind::Schema || p.object.schema.as_deref() == Some(schema))
    })
}

fn schema_usage(ex: &Extraction, schema: &str) -> bool {
    has(ex, "USAGE", ObjectKind::Schema, "", schema)
}

#[test]
fn functions_in_a_nested_view_need_execute_of_the_caller_and_no_schema_usage() {
    let ex = pg("SELECT * FROM imp.v_nested");
    assert!(has(&ex, "SELECT", ObjectKind::Table, "imp", "v_nested"));
    assert!(has(&ex, "EXECUTE", ObjectKind::Function, "fx", "bump"));
    assert!(has(&ex, "EXECUTE", ObjectKind::Function, "fx", "note_inv"));
    assert!(!schema_usage(&ex, "fx"), "{:?}", ex.permissions);
    // The invoker-rights body runs as the caller and names its table: schema USAGE too.
    assert!(has(&ex, "SELECT", ObjectKind::Table, "base", "notes"));
    assert!(schema_usage(&ex, "base"));
    // The view's own relations are checked as its owner.
    assert!(!has(&ex, "SELECT", ObjectKind::Table, "base", "items"));
    assert!(!has(&ex, "SELECT", ObjectKind::Table, "imp", "v_func"));
}

#[test]
fn a_security_invoker_view_under_an_ordinary_view_checks_its_tables_as_the_caller() {
    let ex = pg("SELECT * FROM imp.v_over_inv");
    assert!(has(&ex, "SELECT", ObjectKind::Table, "base", "items"));
    assert!(!schema_usage(&ex, "base"), "{:?}", ex.permissions);
    let ex = pg("SELECT * FROM imp.v_inv");
    assert!(has(&ex, "SELECT", ObjectKind::Table, "base", "items"));
    assert!(!schema_usage(&ex, "base"), "{:?}", ex.permissions);
}

#[test]
fn a_function_only_in_columns_the_query_does_not_read_needs_nothing() {
    let ex = pg("SELECT id, b FROM imp.v_func");
    assert!(has(&ex, "EXECUTE", ObjectKind::Function, "fx", "bump"));
    assert!(!has(&ex, "EXECUTE", ObjectKind::Function, "fx", "note_inv"));
    assert!(!has(&ex, "SELECT", ObjectKind::Table, "base", "notes"));
    let ex = pg("SELECT * FROM imp.v_func");
    assert!(has(&ex, "EXECUTE", ObjectKind::Function, "fx", "note_inv"));
}

#[test]
fn a_domain_check_runs_on_insert_and_on_update_of_its_column_only() {
    let ex = pg("INSERT INTO imp.priced VALUES (2, 7)");
    assert!(has(&ex, "EXECUTE", ObjectKind::Function, "fx", "is_pos"));
    assert!(!schema_usage(&ex, "fx"), "{:?}", ex.permissions);
    let ex = pg("UPDATE imp.priced SET amount = 3");
    assert!(has(&ex, "EXECUTE", ObjectKind::Function, "fx", "is_pos"));
    let ex = pg("UPDATE imp.priced SET id = 3");
    assert!(!has(&ex, "EXECUTE", ObjectKind::Function, "fx", "is_pos"));
}

#[test]
fn an_insert_through_a_view_runs_the_base_tables_defaults_as_the_caller() {
    let ex = pg("INSERT INTO imp.v_tickets (title) VALUES ('x')");
    assert!(has(
        &ex,
        "USAGE",
        ObjectKind::Sequence,
        "base",
        "tickets_id_seq"
    ));
    assert!(!schema_usage(&ex, "base"), "{:?}", ex.permissions);
    let ex = pg("INSERT INTO imp.v_tickets (id, title) VALUES (9, 'x')");
    assert!(!has(
        &ex,
        "USAGE",
        ObjectKind::Sequence,
        "base",
        "tickets_id_seq"
    ));
}

#[test]
fn row_security_policies_run_as_the_caller_bound_by_oid() {
    let ex = PostgresExtractor::new()
        .with_catalog(catalog())
        .with_columns(true)
        .extract("SELECT body FROM imp.docs")
        .unwrap();
    assert!(has(&ex, "EXECUTE", ObjectKind::Function, "fx", "visible"));
    assert!(!schema_usage(&ex, "fx"), "{:?}", ex.permissions);
    let acl = ex
        .permissions
        .iter()
        .find(|p| p.object.name == "acl")
        .expect("SELECT on base.acl");
    assert_eq!(acl.privilege.as_str(), "SELECT");
    assert!(!schema_usage(&ex, "base"), "{:?}", ex.permissions);
    // The columns only the policies read need no privilege.
    let docs = ex
        .permissions
        .iter()
        .find(|p| p.object.name == "docs")
        .expect("SELECT on imp.docs");
    assert_eq!(docs.columns.as_deref(), Some(&["body".to_string()][..]));
}

#[test]
fn an_insert_fires_its_triggers_as_the_caller_and_says_what_it_assumed() {
    let ex = pg("INSERT INTO imp.tracked VALUES (1, 'a')");
    // What the body does, as the caller; the WHEN clause's function; not the trigger function.
    assert!(has(&ex, "INSERT", ObjectKind::Table, "base", "audit"));
    assert!(schema_usage(&ex, "base"));
    assert!(has(&ex, "EXECUTE", ObjectKind::Function, "fx", "bump"));
    assert!(!has(&ex, "EXECUTE", ObjectKind::Function, "fx", "log_it"));
    assert!(
        ex.unresolved
            .iter()
            .any(|u| u.contains("t_log") && u.contains("PL/pgSQL")),
        "{:?}",
        ex.unresolved
    );
    // An UPDATE does not fire an INSERT trigger.
    let ex = pg("UPDATE imp.tracked SET v = 'b'");
    assert!(!has(&ex, "INSERT", ObjectKind::Table, "base", "audit"));
}

#[test]
fn write_policies_run_for_their_command_as_the_caller() {
    let ex = pg("INSERT INTO imp.wdocs (id, owner) VALUES (1, 'a')");
    assert!(has(&ex, "EXECUTE", ObjectKind::Function, "fx", "may_write"));
    assert!(!has(&ex, "SELECT", ObjectKind::Table, "base", "acl"));
    let ex = pg("DELETE FROM imp.wdocs");
    assert!(has(&ex, "SELECT", ObjectKind::Table, "base", "acl"));
    assert!(!has(
        &ex,
        "EXECUTE",
        ObjectKind::Function,
        "fx",
        "may_write"
    ));
    // UPDATE runs neither (no policy FOR UPDATE or ALL).
    let ex = pg("UPDATE imp.wdocs SET owner = 'b'");
    assert!(!has(&ex, "SELECT", ObjectKind::Table, "base", "acl"));
    assert!(!has(
        &ex,
        "EXECUTE",
        ObjectKind::Function,
        "fx",
        "may_write"
    ));
}

#[test]
fn provenance_names_what_needs_each_permission() {
    // Not asked for, none is kept.
    assert!(pg("SELECT * FROM imp.v_nested").provenance.is_empty());
    let ex = PostgresExtractor::new()
        .with_catalog(catalog())
        .with_provenance(true)
        .extract("SELECT * FROM imp.v_nested")
        .unwrap();
    let because = |privilege: &str, name: &str| -> Vec<String> {
        ex.provenance
            .iter()
            .find(|p| p.privilege.as_str() == privilege && p.object.name == name)
            .map(|p| p.because.clone())
            .unwrap_or_default()
    };
    assert_eq!(because("SELECT", "v_nested"), ["the statement"]);
    assert_eq!(because("EXECUTE", "bump"), ["view `imp.v_func`"]);
    let notes = because("SELECT", "notes");
    assert!(
        notes.len() == 1
            && notes[0].starts_with("body of function `fx.note_inv(integer)`")
            && notes[0].ends_with("reached from the view `imp.v_func`"),
        "{notes:?}"
    );
    // Every permission has its reasons.
    assert_eq!(ex.provenance.len(), ex.permissions.len());
    assert!(ex.provenance.iter().all(|p| !p.because.is_empty()));
}

#[test]
fn a_table_under_row_security_with_no_policy_for_every_role_is_reported() {
    let mut c = (*catalog()).clone();
    c.relations
        .insert(key("imp", "sealed"), rel(RelKind::Table, &["id"], None));
    c.row_security.insert(key("imp", "sealed"));
    c.row_security.insert(key("imp", "docs"));
    let x = PostgresExtractor::new().with_catalog(Arc::new(c));
    let ex = x.extract("SELECT id FROM imp.sealed").unwrap();
    assert!(
        ex.unresolved
            .iter()
            .any(|u| u.contains("`imp.sealed`") && u.contains("none of its rows")),
        "{:?}",
        ex.unresolved
    );
    // A table with a policy for every role is not reported.
    let ex = x.extract("SELECT id FROM imp.docs").unwrap();
    assert!(ex.unresolved.is_empty(), "{:?}", ex.unresolved);
}
