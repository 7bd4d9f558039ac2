//! `RulesRouter`: routing from a TOML rules file. Each permission a request needs is decided by
//! the first rule that decides it (no rule: deny); the request gets the strictest outcome over
//! all of them — deny over approval over automatic — so one allowed table never carries a
//! denied one. A rule scoped to schemas or tables decides only what it names (a granting rule
//! also covers the CONNECT, USAGE and sequences those need).
//!
//! ```toml
//! [[rule]]
//! name = "reads of public are automatic"
//! resources = ["pg/app"]
//! privileges = ["SELECT", "USAGE", "CONNECT"]   # every privilege asked for is one of these
//! schemas = ["public"]                          # every schema touched is one of these
//! action = "approve"
//! max_duration = "1h"
//!
//! [[rule]]
//! name = "writes need a DBA"
//! action = "approval"
//! approvers = ["group:dba", "user:bob@example.com"]
//! approvals = 1
//! require_reason = true
//! ```

use crate::error::RouteError;
use crate::route::{Approver, Decision, Routed, Router};
use crate::types::{AccessRequest, Intent, ObjectKind, Permission, PermissionSet, ResourceId};
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Action {
    Approve,
    Approval,
    Deny,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    privileges: Vec<String>,
    #[serde(default)]
    schemas: Vec<String>,
    #[serde(default)]
    tables: Vec<String>,
    #[serde(default)]
    roles: Vec<String>,
    action: Action,
    #[serde(default)]
    approvers: Vec<String>,
    #[serde(default)]
    approvals: Option<u32>,
    #[serde(default)]
    max_duration: Option<String>,
    #[serde(default)]
    require_reason: bool,
    #[serde(default)]
    allow_self_approval: bool,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    #[serde(default, rename = "rule")]
    rules: Vec<RawRule>,
}

#[derive(Debug, Clone)]
struct Rule {
    raw: RawRule,
    approvers: Vec<Approver>,
    max_duration: Duration,
}

/// Routes requests by the first matching rule of a rules file.
#[derive(Debug, Clone)]
pub struct RulesRouter {
    rules: Vec<Rule>,
}

/// Parses `15s`, `15m`, `2h`, `1d`.
pub fn parse_duration(s: &str) -> Result<Duration, RouteError> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| RouteError::Rules(format!("invalid duration `{s}`")))?;
    let secs = match unit {
        "s" | "" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => {
            return Err(RouteError::Rules(format!(
                "invalid duration `{s}`: use s, m, h or d"
            )))
        }
    };
    if secs == 0 {
        return Err(RouteError::Rules(format!("duration `{s}` is zero")));
    }
    Ok(Duration::from_secs(secs))
}

impl RulesRouter {
    /// Parses and validates a rules file.
    pub fn from_toml(text: &str) -> Result<Self, RouteError> {
        let raw: RawRules =
            toml::from_str(text).map_err(|e| RouteError::Rules(e.message().to_string()))?;
        let mut rules = Vec::new();
        for r in raw.rules {
            let ctx = |m: String| RouteError::Rules(format!("rule `{}`: {m}", r.name));
            for p in &r.privileges {
                p.parse::<crate::types::Privilege>()
                    .map_err(|e| ctx(e.to_string()))?;
            }
            let approvers = r
                .approvers
                .iter()
                .map(|a| {
                    Approver::parse(a).map_err(|_| {
                        ctx(format!(
                            "approver `{a}` must be `user:NAME` or `group:NAME`"
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            if r.action == Action::Approval && approvers.is_empty() {
                return Err(ctx("an approval rule needs approvers".into()));
            }
            if r.approvals == Some(0) {
                return Err(ctx("approvals must be at least 1".into()));
            }
            let max_duration = match &r.max_duration {
                Some(d) => parse_duration(d).map_err(|e| ctx(e.to_string()))?,
                None => Duration::from_secs(3600),
            };
            rules.push(Rule {
                raw: r,
                approvers,
                max_duration,
            });
        }
        Ok(Self { rules })
    }

    /// Whether `rule` applies to this requester and resource at all.
    fn applies(rule: &RawRule, req: &AccessRequest, groups: &[String]) -> bool {
        let any =
            |list: &[String], v: &str| list.is_empty() || list.iter().any(|x| x == v || x == "*");
        any(&rule.users, &req.requester)
            && (rule.groups.is_empty() || groups.iter().any(|g| rule.groups.contains(g)))
            && any(&rule.resources, req.resource.as_str())
    }

    /// Whether `rule` (already applying to the request) decides `p`. A rule scoped to
    /// schemas or tables decides only what it names; a granting rule also covers what those
    /// objects need around them (CONNECT on the database, USAGE on a schema, a sequence),
    /// but a deny rule never reaches past the objects it names.
    fn decides(rule: &RawRule, p: &Permission) -> bool {
        if !rule.roles.is_empty() {
            return false;
        }
        let privilege_ok = rule.privileges.is_empty()
            || rule
                .privileges
                .iter()
                .any(|x| x.eq_ignore_ascii_case(p.privilege.as_str()));
        let granting = rule.action != Action::Deny;
        let schema = match p.object.kind {
            ObjectKind::Database => None,
            ObjectKind::Schema => Some(p.object.name.as_str()),
            _ => p.object.schema.as_deref(),
        };
        let schema_ok = rule.schemas.is_empty()
            || match schema {
                Some(s) => rule.schemas.iter().any(|x| x == s),
                None => granting,
            };
        let table_ok = rule.tables.is_empty()
            || match p.object.kind {
                ObjectKind::Table => rule.tables.iter().any(|t| {
                    *t == format!(
                        "{}.{}",
                        p.object.schema.as_deref().unwrap_or(""),
                        p.object.name
                    )
                }),
                _ => granting,
            };
        privilege_ok && schema_ok && table_ok
    }

    /// The rule that decides a role request: the first that applies and names no objects.
    fn role_rule(&self, req: &AccessRequest, role: &str, groups: &[String]) -> Option<usize> {
        self.rules.iter().position(|rule| {
            let r = &rule.raw;
            Self::applies(r, req, groups)
                && r.privileges.is_empty()
                && r.schemas.is_empty()
                && r.tables.is_empty()
                && (r.roles.is_empty() || r.roles.iter().any(|x| x == role || x == "*"))
        })
    }

    fn deny_reason(rule: &Rule) -> String {
        rule.raw
            .message
            .clone()
            .unwrap_or_else(|| format!("denied by rule `{}`", rule.raw.name))
    }
}

impl Router for RulesRouter {
    fn route(&self, req: &AccessRequest, set: &PermissionSet, groups: &[String]) -> Decision {
        self.route_explained(req, set, groups).decision
    }

    /// Each permission is decided by the first rule that decides it; the request gets the
    /// strictest of those outcomes (deny over approval over automatic), with the approvers of
    /// every approval rule that applies, the largest approval count and the shortest maximum
    /// duration. Adding a permission never makes the outcome less strict.
    fn route_explained(
        &self,
        req: &AccessRequest,
        set: &PermissionSet,
        groups: &[String],
    ) -> Routed {
        // The rules that decide, in rule order.
        let mut applied: Vec<usize> = Vec::new();
        let by_permission = matches!(req.intent, Intent::Query(_)) && !set.is_empty();
        if by_permission {
            for p in set.iter() {
                let first = self.rules.iter().position(|rule| {
                    Self::applies(&rule.raw, req, groups) && Self::decides(&rule.raw, &p)
                });
                match first {
                    Some(i) => applied.push(i),
                    None => {
                        return Routed {
                            decision: Decision::Deny {
                                reason: format!("no rule allows {p}"),
                            },
                            rule: None,
                        }
                    }
                }
            }
        } else if let Intent::Role(role) = &req.intent {
            applied.extend(self.role_rule(req, role.as_str(), groups));
        } else {
            // A query that needs no privilege at all is granted nothing: automatic wherever a
            // granting rule applies to the requester, for the longest such rule allows.
            let longest = self
                .rules
                .iter()
                .filter(|r| r.raw.action != Action::Deny && r.raw.roles.is_empty())
                .filter(|r| Self::applies(&r.raw, req, groups))
                .map(|r| r.max_duration)
                .max();
            return match longest {
                Some(max_duration) => Routed {
                    decision: Decision::Approve { max_duration },
                    rule: None,
                },
                None => Routed {
                    decision: Decision::Deny {
                        reason: "no rule matches this request".into(),
                    },
                    rule: None,
                },
            };
        }
        applied.sort_unstable();
        applied.dedup();
        let rules: Vec<&Rule> = applied.iter().map(|i| &self.rules[*i]).collect();
        if rules.is_empty() {
            return Routed {
                decision: Decision::Deny {
                    reason: "no rule matches this request".into(),
                },
                rule: None,
            };
        }
        let named = |decision, rules: &[&Rule]| Routed {
            decision,
            rule: Some(
                rules
                    .iter()
                    .map(|r| r.raw.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        };
        if let Some(deny) = rules.iter().find(|r| r.raw.action == Action::Deny) {
            return named(
                Decision::Deny {
                    reason: Self::deny_reason(deny),
                },
                &[deny],
            );
        }
        if req.reason.trim().is_empty() {
            if let Some(r) = rules.iter().find(|r| r.raw.require_reason) {
                return named(
                    Decision::Deny {
                        reason: format!("rule `{}` requires a reason", r.raw.name),
                    },
                    &[r],
                );
            }
        }
        let max_duration = rules
            .iter()
            .map(|r| r.max_duration)
            .min()
            .unwrap_or_default();
        let approval: Vec<&Rule> = rules
            .iter()
            .copied()
            .filter(|r| r.raw.action == Action::Approval)
            .collect();
        if approval.is_empty() {
            return named(Decision::Approve { max_duration }, &rules);
        }
        let mut approvers: Vec<Approver> = Vec::new();
        for a in approval.iter().flat_map(|r| r.approvers.iter()) {
            if !approvers.contains(a) {
                approvers.push(a.clone());
            }
        }
        named(
            Decision::NeedsApproval {
                approvers,
                count: approval
                    .iter()
                    .map(|r| r.raw.approvals.unwrap_or(1))
                    .max()
                    .unwrap_or(1),
                max_duration,
                allow_self_approval: approval.iter().all(|r| r.raw.allow_self_approval),
            },
            &approval,
        )
    }

    /// The approvers of every approval rule that covers `resource` (a rule without
    /// `resources` covers all of them).
    fn approvers_of(&self, resource: &ResourceId) -> Vec<Approver> {
        let mut out: Vec<Approver> = Vec::new();
        for rule in &self.rules {
            let covers = rule.raw.resources.is_empty()
                || rule
                    .raw
                    .resources
                    .iter()
                    .any(|r| r == "*" || r == resource.as_str());
            if rule.raw.action == Action::Approval && covers {
                for a in &rule.approvers {
                    if !out.contains(a) {
                        out.push(a.clone());
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
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
}
