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
    let invalid = |why: String| RouteError::Rules(format!("invalid duration `{s}`: {why}"));
    // Bare seconds, or units as people write them (`90m`, `1h30m`, `2d`); a number too large
    // for its unit is an error, never a wrap-around.
    let d = if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        Duration::from_secs(s.parse().map_err(|_| invalid("too large".into()))?)
    } else if let Some(unit) = s
        .split(|c: char| !c.is_ascii_alphabetic())
        .find(|u| matches!(*u, "M" | "month" | "months" | "y" | "year" | "years"))
    {
        // humantime reads `M` as a month: one letter from `m`, and of no fixed length.
        return Err(invalid(format!(
            "`{unit}` is a month or a year, which have no fixed length: use d, h, m (minutes) or s"
        )));
    } else {
        humantime::parse_duration(s).map_err(|e| invalid(e.to_string()))?
    };
    if d.is_zero() {
        return Err(RouteError::Rules(format!("duration `{s}` is zero")));
    }
    Ok(d)
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
mod tests;
