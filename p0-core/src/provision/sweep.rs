//! The sweeper: removes managed users past their expiry, whatever the server does. One user
//! that cannot be removed never keeps the others: it is reported, logged, and tried again
//! later with exponential backoff.

use super::plan::SweepReport;
use super::provisioner::{sweep_once, DatabaseProvisioner};
use crate::error::ProvisionError;
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Sweeps with memory: a user that failed is tried again after `base`, then twice as long
/// each time, up to `max`; every other expired user is removed on every sweep.
#[derive(Debug)]
pub struct Sweeper {
    base: TimeDelta,
    max: TimeDelta,
    /// Failing users: attempts so far and when to try next.
    failing: Mutex<HashMap<String, (u32, DateTime<Utc>)>>,
    failures_total: AtomicU64,
}

impl Default for Sweeper {
    fn default() -> Self {
        Self::new(TimeDelta::seconds(30), TimeDelta::hours(1))
    }
}

impl Sweeper {
    /// A sweeper whose first retry waits `base` and whose waits never exceed `max`.
    pub fn new(base: TimeDelta, max: TimeDelta) -> Self {
        Self {
            base,
            max,
            failing: Mutex::new(HashMap::new()),
            failures_total: AtomicU64::new(0),
        }
    }

    /// The wait before the attempt after `attempts` failures.
    fn delay(&self, attempts: u32) -> TimeDelta {
        let factor = 1i32 << attempts.saturating_sub(1).min(20);
        (self.base * factor).min(self.max)
    }

    /// Expired users that could not be removed and are still waiting for a retry (a gauge).
    pub fn failing(&self) -> usize {
        self.failing.lock().map(|f| f.len()).unwrap_or(0)
    }

    /// Failed removal attempts since start (a counter).
    pub fn failures_total(&self) -> u64 {
        self.failures_total.load(Ordering::Relaxed)
    }

    /// One sweep: every expired user is revoked except those waiting out their backoff.
    pub async fn run<P: DatabaseProvisioner + ?Sized>(
        &self,
        provisioner: &P,
        now: DateTime<Utc>,
    ) -> Result<SweepReport, ProvisionError> {
        let waiting: HashMap<String, (u32, DateTime<Utc>)> =
            self.failing.lock().map(|f| f.clone()).unwrap_or_default();
        let mut report = sweep_once(provisioner, now, |name| {
            waiting.get(name).is_none_or(|(_, at)| *at <= now)
        })
        .await?;
        let mut next = HashMap::new();
        for name in &report.deferred {
            if let Some(entry) = waiting.get(name) {
                next.insert(name.clone(), *entry);
            }
        }
        for f in &mut report.failed {
            let attempts = waiting.get(&f.user).map_or(0, |(a, _)| *a) + 1;
            let at = now + self.delay(attempts);
            f.attempts = attempts;
            f.retry_at = Some(at);
            tracing::warn!(user = %f.user, attempts, retry_at = %at, "expired user kept; retrying with backoff");
            next.insert(f.user.clone(), (attempts, at));
        }
        self.failures_total
            .fetch_add(report.failed.len() as u64, Ordering::Relaxed);
        if let Ok(mut failing) = self.failing.lock() {
            *failing = next;
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::provision::plan::{
        AccountKind, Credentials, ManagedAccount, ProvisionPlan, RevokeReport,
    };
    use crate::types::Username;
    use async_trait::async_trait;

    /// Three expired users and one live one; `p0_stuck_1` cannot be removed.
    struct Fake {
        accounts: Mutex<Vec<ManagedAccount>>,
        attempts: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl DatabaseProvisioner for Fake {
        fn supports_valid_until(&self) -> bool {
            true
        }
        fn max_username_len(&self) -> usize {
            63
        }
        async fn provision(&self, _: &ProvisionPlan) -> Result<Credentials, ProvisionError> {
            Err(ProvisionError::Database("not here".into()))
        }
        async fn revoke(&self, user: &Username) -> Result<RevokeReport, ProvisionError> {
            self.attempts.lock().unwrap().push(user.to_string());
            if user.as_str() == "p0_stuck_1" {
                return Err(ProvisionError::Database("held by a lock".into()));
            }
            let mut accounts = self.accounts.lock().unwrap();
            let before = accounts.len();
            accounts.retain(|a| a.name != user.as_str());
            Ok(RevokeReport {
                user_dropped: accounts.len() < before,
                ..RevokeReport::default()
            })
        }
        async fn list_managed(&self) -> Result<Vec<ManagedAccount>, ProvisionError> {
            Ok(self.accounts.lock().unwrap().clone())
        }
    }

    fn fake(now: DateTime<Utc>) -> Fake {
        let user = |name: &str, expires: DateTime<Utc>| ManagedAccount {
            name: name.into(),
            kind: AccountKind::User,
            expires_at: Some(expires),
            request_id: None,
        };
        Fake {
            accounts: Mutex::new(vec![
                user("p0_a_1", now - TimeDelta::seconds(5)),
                user("p0_stuck_1", now - TimeDelta::seconds(5)),
                user("p0_z_1", now - TimeDelta::seconds(5)),
                user("p0_live_1", now + TimeDelta::minutes(5)),
            ]),
            attempts: Mutex::new(Vec::new()),
        }
    }

    #[tokio::test]
    async fn one_unremovable_user_does_not_keep_the_others() {
        let now = Utc::now();
        let p = fake(now);
        let r = p.sweep(now).await.unwrap();
        let removed: Vec<&str> = r.removed.iter().map(|u| u.as_str()).collect();
        assert_eq!(removed, ["p0_a_1", "p0_z_1"]);
        assert_eq!(r.failed.len(), 1);
        assert_eq!(r.failed[0].user, "p0_stuck_1");
        assert!(r.failed[0].error.contains("held by a lock"), "{r:?}");
    }

    #[tokio::test]
    async fn a_failing_user_is_retried_with_growing_waits() {
        let now = Utc::now();
        let p = fake(now);
        let s = Sweeper::new(TimeDelta::seconds(10), TimeDelta::seconds(25));
        let r = s.run(&p, now).await.unwrap();
        assert_eq!(r.removed.len(), 2);
        assert_eq!(r.failed[0].attempts, 1);
        assert_eq!(r.failed[0].retry_at, Some(now + TimeDelta::seconds(10)));
        assert_eq!((s.failing(), s.failures_total()), (1, 1));
        // Before its time it is left alone (and said so); after, tried again, waiting longer.
        let r = s.run(&p, now + TimeDelta::seconds(5)).await.unwrap();
        assert_eq!(r.deferred, ["p0_stuck_1"]);
        assert!(r.failed.is_empty());
        let later = now + TimeDelta::seconds(10);
        let r = s.run(&p, later).await.unwrap();
        assert_eq!(r.failed[0].attempts, 2);
        assert_eq!(r.failed[0].retry_at, Some(later + TimeDelta::seconds(20)));
        let latest = later + TimeDelta::seconds(20);
        let r = s.run(&p, latest).await.unwrap();
        assert_eq!(
            r.failed[0].retry_at,
            Some(latest + TimeDelta::seconds(25)),
            "capped"
        );
        let tries = p.attempts.lock().unwrap();
        assert_eq!(tries.iter().filter(|t| *t == "p0_stuck_1").count(), 3);
        assert_eq!(s.failures_total(), 3);
    }
}
