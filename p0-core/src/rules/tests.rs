//! Unit tests of `rules`.

use super::*;
use crate::types::*;

fn req(sql: &str) -> AccessRequest {
    AccessRequest {
        id: RequestId::generate(),
        requester: "alice@example.com".into(),
        resource: ResourceId::new("pg/app").unwrap(),
        intent: Intent::Query(sql.into()),
        reason: "".into(),
        duration_secs: 60,
        public_key: String::new(),
    }
}

fn set(privs: &[(Privilege, &str)]) -> PermissionSet {
    privs
        .iter()
        .map(|(p, t)| Permission::new(*p, ObjectRef::table("public", *t)))
        .collect()
}

const RULES: &str = r#"
[[rule]]
name = "reads"
privileges = ["SELECT", "USAGE", "CONNECT"]
action = "approve"
max_duration = "15m"

[[rule]]
name = "writes"
action = "approval"
approvers = ["group:dba"]
require_reason = true
"#;

#[test]
fn first_match_wins_and_mixed_sets_need_approval() {
    let r = RulesRouter::from_toml(RULES).unwrap();
    let read = set(&[(Privilege::Select, "a")]);
    assert_eq!(
        r.route(&req("x"), &read, &[]),
        Decision::Approve {
            max_duration: Duration::from_secs(900)
        }
    );
    let mixed = set(&[(Privilege::Select, "a"), (Privilege::Delete, "b")]);
    assert!(
        matches!(r.route(&req("x"), &mixed, &[]), Decision::Deny { .. }),
        "reason required"
    );
    let mut with_reason = req("x");
    with_reason.reason = "fix".into();
    assert!(matches!(
        r.route(&with_reason, &mixed, &[]),
        Decision::NeedsApproval { count: 1, .. }
    ));
}

#[test]
fn the_matched_rule_is_named_and_approvers_of_a_resource_come_from_the_rules() {
    let r = RulesRouter::from_toml(
        r#"
[[rule]]
name = "reads"
privileges = ["SELECT", "USAGE", "CONNECT"]
action = "approve"

[[rule]]
name = "app writes"
resources = ["pg/app"]
action = "approval"
approvers = ["user:bob@example.com"]

[[rule]]
name = "anything"
action = "approval"
approvers = ["group:dba", "user:bob@example.com"]
"#,
    )
    .unwrap();
    let routed = r.route_explained(&req("x"), &set(&[(Privilege::Delete, "a")]), &[]);
    assert_eq!(routed.rule.as_deref(), Some("app writes"));
    assert!(matches!(routed.decision, Decision::NeedsApproval { .. }));
    assert_eq!(
        r.approvers_of(&ResourceId::new("pg/app").unwrap()),
        vec![
            Approver::User("bob@example.com".into()),
            Approver::Group("dba".into())
        ]
    );
    assert_eq!(
        r.approvers_of(&ResourceId::new("pg/other").unwrap()),
        vec![
            Approver::Group("dba".into()),
            Approver::User("bob@example.com".into())
        ]
    );
    assert!(RulesRouter::from_toml("")
        .unwrap()
        .approvers_of(&ResourceId::new("pg/app").unwrap())
        .is_empty());
    assert!(Approver::Group("dba".into()).includes("x", &["dba".into()]));
    assert!(!Approver::User("bob".into()).includes("bobby", &["bob".into()]));
    assert_eq!(
        Approver::parse("group:dba").unwrap().to_string(),
        "group:dba"
    );
    assert!(Approver::parse("dba").is_err());
}

#[test]
fn no_match_denies_and_bad_rules_are_refused() {
    let r = RulesRouter::from_toml("").unwrap();
    assert!(matches!(
        r.route(&req("x"), &PermissionSet::new(), &[]),
        Decision::Deny { .. }
    ));
    for bad in [
        "[[rule]]\nname='a'\naction='approval'",
        "[[rule]]\nname='a'\naction='approve'\nprivileges=['SUPERUSER']",
        "[[rule]]\nname='a'\naction='approve'\nmax_duration='5x'",
        "[[rule]]\nname='a'\naction='maybe'",
        "[[rule]]\nname='a'\naction='approval'\napprovers=['bob']",
    ] {
        assert!(RulesRouter::from_toml(bad).is_err(), "{bad}");
    }
}

const PAYROLL: &str = r#"
[[rule]]
name = "payroll is off limits"
tables = ["public.payroll"]
action = "deny"
message = "payroll is off limits"

[[rule]]
name = "reads"
privileges = ["SELECT", "USAGE", "CONNECT"]
action = "approve"
max_duration = "1h"

[[rule]]
name = "orders writes"
tables = ["public.orders"]
action = "approval"
approvers = ["user:carol@example.com"]

[[rule]]
name = "writes"
action = "approval"
approvers = ["group:dba"]
approvals = 2
max_duration = "10m"
"#;

fn connect() -> Permission {
    Permission::new(Privilege::Connect, ObjectRef::database("app"))
}

#[test]
fn a_denied_table_is_denied_even_beside_an_allowed_one() {
    let r = RulesRouter::from_toml(PAYROLL).unwrap();
    let mut join = set(&[
        (Privilege::Select, "customers"),
        (Privilege::Select, "payroll"),
    ]);
    join.insert(connect());
    let routed = r.route_explained(&req("x"), &join, &[]);
    assert_eq!(
        routed.decision,
        Decision::Deny {
            reason: "payroll is off limits".into()
        }
    );
    assert_eq!(routed.rule.as_deref(), Some("payroll is off limits"));
}

#[test]
fn a_rule_scoped_to_objects_does_not_match_a_request_that_touches_none() {
    let r = RulesRouter::from_toml(PAYROLL).unwrap();
    let only_connect: PermissionSet = [connect()].into_iter().collect();
    assert!(matches!(
        r.route(&req("SELECT now()"), &only_connect, &[]),
        Decision::Approve { .. }
    ));
    assert!(matches!(
        r.route(&req("SELECT 1"), &PermissionSet::new(), &[]),
        Decision::Approve { .. }
    ));
}

#[test]
fn the_strictest_outcome_wins_with_every_applying_rules_approvers() {
    let r = RulesRouter::from_toml(PAYROLL).unwrap();
    let mut with_reason = req("x");
    with_reason.reason = "fix".into();
    let writes = set(&[
        (Privilege::Select, "customers"),
        (Privilege::Delete, "customers"),
        (Privilege::Update, "orders"),
    ]);
    match r.route(&with_reason, &writes, &[]) {
        Decision::NeedsApproval {
            approvers,
            count,
            max_duration,
            ..
        } => {
            assert_eq!(
                approvers,
                vec![
                    Approver::User("carol@example.com".into()),
                    Approver::Group("dba".into())
                ]
            );
            assert_eq!(count, 2);
            assert_eq!(max_duration, Duration::from_secs(600));
        }
        other => panic!("{other:?}"),
    }
}

fn strictness(d: &Decision) -> u8 {
    match d {
        Decision::Approve { .. } => 0,
        Decision::NeedsApproval { .. } => 1,
        Decision::Deny { .. } => 2,
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    const PRIVILEGES: [Privilege; 5] = [
        Privilege::Select,
        Privilege::Update,
        Privilege::Delete,
        Privilege::Usage,
        Privilege::Connect,
    ];

    fn permission() -> impl Strategy<Value = Permission> {
        (0..PRIVILEGES.len(), 0..3usize, 0..2usize, 0..3usize).prop_map(|(p, t, sc, kind)| {
            let schema = ["s1", "s2"][sc];
            let object = match kind {
                0 => ObjectRef::database("app"),
                1 => ObjectRef::schema(schema),
                _ => ObjectRef::table(schema, ["a", "b", "c"][t]),
            };
            Permission::new(PRIVILEGES[p], object)
        })
    }

    fn rule() -> impl Strategy<Value = String> {
        (
            0..3usize,
            proptest::collection::vec(0..PRIVILEGES.len(), 0..3),
            proptest::option::of(0..2usize),
            proptest::option::of((0..2usize, 0..3usize)),
            proptest::bool::ANY,
            1..4u32,
            1..5u64,
        )
            .prop_map(|(action, privs, schema, table, reason, count, minutes)| {
                let mut r = format!(
                    "[[rule]]\nname = \"r\"\naction = \"{}\"\nmax_duration = \"{minutes}m\"\n",
                    ["approve", "approval", "deny"][action]
                );
                if action == 1 {
                    r.push_str(&format!(
                        "approvers = [\"group:g{count}\"]\napprovals = {count}\n"
                    ));
                }
                if !privs.is_empty() {
                    let list: Vec<String> = privs
                        .iter()
                        .map(|p| format!("\"{}\"", PRIVILEGES[*p].as_str()))
                        .collect();
                    r.push_str(&format!("privileges = [{}]\n", list.join(", ")));
                }
                if let Some(s) = schema {
                    r.push_str(&format!("schemas = [\"s{}\"]\n", s + 1));
                }
                if let Some((s, t)) = table {
                    r.push_str(&format!(
                        "tables = [\"s{}.{}\"]\n",
                        s + 1,
                        ["a", "b", "c"][t]
                    ));
                }
                if reason {
                    r.push_str("require_reason = true\n");
                }
                r
            })
    }

    proptest! {
        #[test]
        fn adding_a_permission_never_makes_the_outcome_less_strict(
            rules in proptest::collection::vec(rule(), 0..6),
            perms in proptest::collection::vec(permission(), 0..5),
            extra in permission(),
            reason in proptest::bool::ANY,
        ) {
            let router = RulesRouter::from_toml(&rules.join("\n")).unwrap();
            let mut r = req("x");
            if reason {
                r.reason = "because".into();
            }
            let before: PermissionSet = perms.iter().cloned().collect();
            let mut after = before.clone();
            after.insert(extra);
            let (a, b) = (router.route(&r, &before, &[]), router.route(&r, &after, &[]));
            prop_assert!(strictness(&b) >= strictness(&a), "{a:?} -> {b:?}");
            if let (
                Decision::NeedsApproval { count: c1, max_duration: d1, approvers: a1, .. },
                Decision::NeedsApproval { count: c2, max_duration: d2, approvers: a2, .. },
            ) = (&a, &b) {
                prop_assert!(c2 >= c1 && d2 <= d1);
                prop_assert!(a1.iter().all(|x| a2.contains(x)));
            }
            if let (Decision::Approve { max_duration: d1 }, Decision::Approve { max_duration: d2 }) = (&a, &b) {
                prop_assert!(d2 <= d1);
            }
        }
    }
}

#[test]
fn durations_read_as_people_write_them_and_never_wrap() {
    for (text, secs) in [
        ("90", 90),
        ("90m", 5400),
        ("1h30m", 5400),
        ("2d", 172_800),
        (" 1h ", 3600),
    ] {
        assert_eq!(parse_duration(text).unwrap().as_secs(), secs, "{text}");
    }
    // 213,503,982,334,602 days is past u64 seconds: once a 44-second lease by wrap-around.
    for bad in [
        "213503982334602d",
        "99999999999999999999",
        "0",
        "0m",
        "",
        "1x",
        "-5m",
        // `M` is humantime's month, one letter from a minute: months and years have no fixed
        // length, and a typo must not grant thirty days.
        "15M",
        "1month",
        "2 months",
        "1y",
        "1year",
    ] {
        let e = parse_duration(bad).unwrap_err().to_string();
        assert!(!e.contains('\n') && e.contains("duration"), "{bad}: {e}");
    }
}
