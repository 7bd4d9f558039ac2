//! `RulesRouter`: routing from a TOML rules file. First match wins; no match denies.
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
use crate::types::{AccessRequest, Intent, ObjectKind, PermissionSet, ResourceId};
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

    fn matches(
        rule: &RawRule,
        req: &AccessRequest,
        set: &PermissionSet,
        groups: &[String],
    ) -> bool {
        let any =
            |list: &[String], v: &str| list.is_empty() || list.iter().any(|x| x == v || x == "*");
        if !any(&rule.users, &req.requester) {
            return false;
        }
        if !rule.groups.is_empty() && !groups.iter().any(|g| rule.groups.contains(g)) {
            return false;
        }
        if !any(&rule.resources, req.resource.as_str()) {
            return false;
        }
        match &req.intent {
            Intent::Role(r) => {
                rule.privileges.is_empty()
                    && rule.schemas.is_empty()
                    && rule.tables.is_empty()
                    && any(&rule.roles, r.as_str())
            }
            Intent::Query(_) => {
                if !rule.roles.is_empty() {
                    return false;
                }
                set.iter().all(|p| {
                    let privilege_ok = rule.privileges.is_empty()
                        || rule
                            .privileges
                            .iter()
                            .any(|x| x.eq_ignore_ascii_case(p.privilege.as_str()));
                    let schema = match p.object.kind {
                        ObjectKind::Database => None,
                        ObjectKind::Schema => Some(p.object.name.as_str()),
                        _ => p.object.schema.as_deref(),
                    };
                    let schema_ok = rule.schemas.is_empty()
                        || schema.is_none_or(|s| rule.schemas.iter().any(|x| x == s));
                    let table_ok = rule.tables.is_empty()
                        || !matches!(p.object.kind, ObjectKind::Table)
                        || rule.tables.iter().any(|t| {
                            *t == format!(
                                "{}.{}",
                                p.object.schema.as_deref().unwrap_or(""),
                                p.object.name
                            )
                        });
                    privilege_ok && schema_ok && table_ok
                })
            }
        }
    }
}

impl Router for RulesRouter {
    fn route(&self, req: &AccessRequest, set: &PermissionSet, groups: &[String]) -> Decision {
        self.route_explained(req, set, groups).decision
    }

    fn route_explained(
        &self,
        req: &AccessRequest,
        set: &PermissionSet,
        groups: &[String],
    ) -> Routed {
        for rule in &self.rules {
            if !Self::matches(&rule.raw, req, set, groups) {
                continue;
            }
            let named = |decision| Routed {
                decision,
                rule: Some(rule.raw.name.clone()),
            };
            if rule.raw.require_reason && req.reason.trim().is_empty() {
                return named(Decision::Deny {
                    reason: format!("rule `{}` requires a reason", rule.raw.name),
                });
            }
            return named(match rule.raw.action {
                Action::Approve => Decision::Approve {
                    max_duration: rule.max_duration,
                },
                Action::Approval => Decision::NeedsApproval {
                    approvers: rule.approvers.clone(),
                    count: rule.raw.approvals.unwrap_or(1),
                    max_duration: rule.max_duration,
                    allow_self_approval: rule.raw.allow_self_approval,
                },
                Action::Deny => Decision::Deny {
                    reason: rule
                        .raw
                        .message
                        .clone()
                        .unwrap_or_else(|| format!("denied by rule `{}`", rule.raw.name)),
                },
            });
        }
        Routed {
            decision: Decision::Deny {
                reason: "no rule matches this request".into(),
            },
            rule: None,
        }
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
}
