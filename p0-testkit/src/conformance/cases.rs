//! The cases. Each starts a database of its own through the harness `H`.

use super::{Harness, Op, OpError, Start};
use crate::LogCapture;
use chrono::{TimeDelta, Utc};
use p0_core::{
    Access, Credentials, DatabaseProvisioner, Permission, PermissionSet, Privilege, ProvisionPlan,
    RequestId, ResourceId,
};
use std::sync::Arc;

pub(super) async fn start<H: Harness>(log_statements: bool) -> H {
    H::start(Start { log_statements })
        .await
        .expect("the harness starts its database")
}

/// A plan for `set`, expiring `ttl` from now.
pub fn plan(set: PermissionSet, ttl: TimeDelta) -> ProvisionPlan {
    ProvisionPlan {
        request_id: RequestId::generate(),
        requester: "alice@example.com".into(),
        resource: ResourceId::new("db/app").expect("a resource id"),
        access: Access::Permissions(set),
        expires_at: Utc::now() + ttl,
    }
}

/// The provisioner and a fresh user who may read `orders` for five minutes.
async fn reader<H: Harness>(db: &H) -> (Arc<dyn DatabaseProvisioner>, Credentials) {
    let p = db.provisioner().await;
    let c = p
        .provision(&plan(db.read("orders"), TimeDelta::minutes(5)))
        .await
        .unwrap();
    (p, c)
}

fn denied(r: Result<(), OpError>) -> bool {
    matches!(r, Err(OpError::Denied(_)))
}

/// The user reads what the plan grants and nothing else, with its password only.
pub async fn grants_exactly_the_plan<H: Harness>() {
    let db: H = start(false).await;
    let (p, c) = reader(&db).await;
    assert!(c.username.as_str().len() <= p.max_username_len());
    let mut conn = db
        .login(c.username.as_str(), c.password.expose_secret())
        .await
        .unwrap();
    conn.run(Op::Read("orders")).await.unwrap();
    let e = conn.run(Op::Read("secrets")).await;
    assert!(denied(e.clone()), "{e:?}");
    let e = conn.run(Op::Delete("orders")).await;
    assert!(denied(e.clone()), "{e:?}");
    assert!(db.login(c.username.as_str(), "wrong").await.is_err());
}

/// Revocation ends the open session, leaves nothing, and a second one finds nothing to do.
pub async fn revoke_ends_sessions_removes_everything_twice<H: Harness>() {
    let db: H = start(false).await;
    let (p, c) = reader(&db).await;
    let mut open = db
        .login(c.username.as_str(), c.password.expose_secret())
        .await
        .unwrap();
    open.run(Op::Ping).await.unwrap();
    let before = Utc::now();
    let r = p.revoke(&c.username).await.unwrap();
    let role_dropped = r.role_dropped || !db.capabilities().shared_roles;
    assert!(
        r.user_dropped && role_dropped && r.sessions_terminated >= 1,
        "{r:?}"
    );
    // When the security-relevant step was done is reported (expiry lateness is measured on it).
    assert!(
        r.disabled_at
            .is_some_and(|t| t >= before && t <= Utc::now()),
        "{r:?}"
    );
    assert!(
        open.run(Op::Ping).await.is_err(),
        "the open session must be ended"
    );
    assert!(db
        .login(c.username.as_str(), c.password.expose_secret())
        .await
        .is_err());
    assert_eq!(db.managed_accounts(), 0);
    assert!(p.list_managed().await.unwrap().is_empty());
    assert!(!p.revoke(&c.username).await.unwrap().user_dropped);
}

/// An account p0 did not create is never touched, even under p0's prefix.
pub async fn revoke_refuses_users_p0_did_not_create<H: Harness>() {
    let db: H = start(false).await;
    db.create_foreign_user("p0_imposter");
    let p = db.provisioner().await;
    let e = p.revoke(&"p0_imposter".parse().unwrap()).await.unwrap_err();
    assert!(matches!(e, p0_core::ProvisionError::NotManaged(_)), "{e}");
    assert_eq!(db.managed_accounts(), 1, "p0_imposter must stay");
    assert!(p.list_managed().await.unwrap().is_empty());
    let swept = p.sweep(Utc::now() + TimeDelta::days(2)).await.unwrap();
    assert!(
        swept.removed.is_empty() && swept.failed.is_empty(),
        "{swept:?}"
    );
    assert_eq!(db.managed_accounts(), 1);
}

/// Past its expiry a user cannot log in (where the database does not enforce the expiry, once
/// the agent's sweeper has run).
pub async fn expired_users_cannot_log_in<H: Harness>() {
    let db: H = start(false).await;
    let p = db.provisioner().await;
    let c = p
        .provision(&plan(db.read("orders"), TimeDelta::seconds(2)))
        .await
        .unwrap();
    db.login(c.username.as_str(), c.password.expose_secret())
        .await
        .unwrap();
    let caps = db.capabilities();
    tokio::time::sleep(std::time::Duration::from_secs(2) + caps.expiry_grace).await;
    if !caps.expiry_in_database {
        let swept = p.sweep(Utc::now()).await.unwrap();
        assert_eq!(swept.removed, vec![c.username.clone()], "{swept:?}");
    }
    assert!(db
        .login(c.username.as_str(), c.password.expose_secret())
        .await
        .is_err());
}

/// Neither the server's statement log nor the agent's own log (every tracing event, the
/// database driver's included) holds the password.
pub async fn logs_hold_no_password<H: Harness>() {
    use tracing::instrument::WithSubscriber;
    keep_every_level_open();
    let db: H = start(true).await;
    let capture = LogCapture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let (c, mut conn) = async {
        let (p, c) = reader(&db).await;
        let mut conn = db
            .login(c.username.as_str(), c.password.expose_secret())
            .await
            .unwrap();
        conn.run(Op::Ping).await.unwrap();
        p.revoke(&c.username).await.unwrap();
        (c, conn)
    }
    .with_subscriber(subscriber)
    .await;
    let _ = conn.run(Op::Ping).await;
    let agent_log = capture.contents();
    assert!(
        agent_log.contains(c.username.as_str()) && agent_log.contains("provisioned"),
        "the agent's log must record the user: {agent_log}"
    );
    assert!(
        !agent_log.contains(c.password.expose_secret()),
        "password in the agent's log"
    );
    if db.capabilities().statement_log {
        let log = db.server_log();
        assert!(
            log.contains(c.username.as_str()),
            "the log must record the statements"
        );
        assert!(
            !log.contains(c.password.expose_secret()),
            "password in the server log"
        );
    }
}

/// Sixteen tasks provisioning and revoking at once, sharing one permission set (so its
/// shared role is created, joined and dropped under their feet): every user can read what it
/// was granted, no error, nothing left.
pub async fn sixteen_concurrent_loops_are_clean<H: Harness>() {
    let db: Arc<H> = Arc::new(start(false).await);
    let p = db.provisioner().await;
    let set = db.read("orders");
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (p, set, db) = (p.clone(), set.clone(), db.clone());
        tasks.push(tokio::spawn(async move {
            let mut errors = Vec::new();
            for _ in 0..3 {
                match p.provision(&plan(set.clone(), TimeDelta::minutes(5))).await {
                    Ok(c) => {
                        let read = match db
                            .login(c.username.as_str(), c.password.expose_secret())
                            .await
                        {
                            Ok(mut conn) => conn
                                .run(Op::Read("orders"))
                                .await
                                .map_err(|e| format!("{e:?}")),
                            Err(e) => Err(format!("{e:?}")),
                        };
                        if let Err(e) = read {
                            errors.push(format!("{}: {e}", c.username));
                        }
                        if let Err(e) = p.revoke(&c.username).await {
                            errors.push(e.to_string());
                        }
                    }
                    Err(e) => errors.push(e.to_string()),
                }
            }
            errors
        }));
    }
    let mut errors = Vec::new();
    for t in tasks {
        errors.extend(t.await.unwrap());
    }
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(db.managed_accounts(), 0);
}

/// Eight revocations of one user at once (the reaper's, the requester's and the sweeper's can
/// meet): each succeeds, one at least says it dropped the user, and nothing is left.
pub async fn concurrent_revocations_of_one_user_agree<H: Harness>() {
    let db = start::<H>(false).await;
    let (p, c) = reader(&db).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (p, user) = (p.clone(), c.username.clone());
        tasks.push(tokio::spawn(async move { p.revoke(&user).await }));
    }
    let mut dropped = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(r) => dropped += usize::from(r.user_dropped),
            Err(e) => panic!("a concurrent revocation failed: {e}"),
        }
    }
    assert!(dropped >= 1, "no revocation says it dropped the user");
    assert_eq!(db.managed_accounts(), 0);
}

/// Provisions a reader of `orders` and `table` and reads `table` as that user.
async fn grant_and_read<H: Harness>(db: &H, p: &dyn DatabaseProvisioner, table: &str) {
    db.create_table(table);
    let mut set = db.read("orders");
    set.insert(Permission::new(Privilege::Select, db.table(table)));
    let c = p
        .provision(&plan(set, TimeDelta::minutes(5)))
        .await
        .unwrap();
    let mut conn = db
        .login(c.username.as_str(), c.password.expose_secret())
        .await
        .unwrap();
    conn.run(Op::Read(table)).await.unwrap();
}

/// A name full of quotes, statement separators and pattern characters is granted as a name
/// (or, where the database cannot express it, refused), and a missing one is refused without
/// running anything.
pub async fn hostile_names_stay_quoted<H: Harness>() {
    let db: H = start(false).await;
    let hostile = "we\"ird`'; DROP TABLE secrets; -- \\ $$ ü";
    let p = db.provisioner().await;
    if db.capabilities().any_name {
        grant_and_read(&db, p.as_ref(), hostile).await;
    } else {
        db.create_table(hostile);
        let before = db.managed_accounts();
        let mut set = db.read("orders");
        set.insert(Permission::new(Privilege::Select, db.table(hostile)));
        let e = p.provision(&plan(set, TimeDelta::minutes(5))).await;
        assert!(e.is_err(), "a name the database cannot express was granted");
        assert_eq!(db.managed_accounts(), before);
        grant_and_read(&db, p.as_ref(), "we\"ird`';DROP_TABLE_secrets;--\\$$ü*?[x]").await;
    }
    let mut missing = db.read("orders");
    missing.insert(Permission::new(
        Privilege::Select,
        db.table("orders`; DROP TABLE secrets; --"),
    ));
    assert!(p
        .provision(&plan(missing, TimeDelta::minutes(5)))
        .await
        .is_err());
    db.admin().await.run(Op::Read("secrets")).await.unwrap();
}

/// What the user owned or defined is dropped or reported by revocation, and a second
/// revocation has nothing left to report.
pub async fn revoke_reports_objects_the_user_owned_or_defined<H: Harness>() {
    let db: H = start(false).await;
    let (p, c) = reader(&db).await;
    let expected = db
        .capabilities()
        .owned_objects
        .then(|| db.leave_owned_object(c.username.as_str()));
    let r = p.revoke(&c.username).await.unwrap();
    assert!(r.user_dropped, "{r:?}");
    if let Some(expected) = expected {
        assert!(
            r.notes.iter().any(|n| n.contains(&expected)),
            "{expected} in {r:?}"
        );
    }
    assert_eq!(db.managed_accounts(), 0);
    assert!(p.revoke(&c.username).await.unwrap().notes.is_empty());
}

/// One expired user that cannot be removed does not keep the sweeper from removing the
/// others, and is reported with the reason.
pub async fn a_sweep_goes_on_past_a_user_it_cannot_remove<H: Harness>() {
    let db: H = start(false).await;
    let p = db.provisioner().await;
    let grant = |requester: &'static str| {
        let p = p.clone();
        let set = db.read("orders");
        async move {
            let mut pl = plan(set, TimeDelta::seconds(2));
            pl.requester = requester.into();
            p.provision(&pl).await.unwrap()
        }
    };
    // `aaa` sorts first: the sweep meets it before the others.
    let stuck = grant("aaa@example.com").await;
    let others = [
        grant("bob@example.com").await,
        grant("carol@example.com").await,
    ];
    let user = stuck.username.as_str();
    let caps = db.capabilities();
    if caps.blockable_removal {
        db.block_removal(user);
    }
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let r = p.sweep(Utc::now()).await.unwrap();
    let mut removed: Vec<String> = r.removed.iter().map(|u| u.to_string()).collect();
    removed.sort();
    if !caps.blockable_removal {
        // Nothing can block a removal here: every expired user goes.
        let mut all: Vec<String> = others.iter().map(|c| c.username.to_string()).collect();
        all.push(user.to_string());
        all.sort();
        assert_eq!(removed, all, "{r:?}");
        assert!(r.failed.is_empty(), "{r:?}");
        assert_eq!(db.managed_accounts(), 0);
        return;
    }
    let mut expected: Vec<String> = others.iter().map(|c| c.username.to_string()).collect();
    expected.sort();
    assert_eq!(removed, expected, "{r:?}");
    assert_eq!(r.failed.len(), 1, "{r:?}");
    assert_eq!(r.failed[0].user, user);
    assert!(
        !r.failed[0].error.is_empty() && !r.failed[0].error.contains('\n'),
        "{r:?}"
    );
    // What is left: the stuck user (and the roles it still holds), no other user.
    let users: Vec<String> = p
        .list_managed()
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.kind == p0_core::provision::AccountKind::User)
        .map(|a| a.name)
        .collect();
    assert_eq!(users, vec![user.to_string()]);
}

/// A process-wide subscriber that records nothing but keeps every callsite and level open, so
/// that a case's own scoped subscriber sees its events whatever the cases running beside it
/// (tracing caches which levels and callsites anyone wants; a rebuild racing with another
/// case's could otherwise leave this case's info events cut off).
fn keep_every_level_open() {
    struct Open;
    impl tracing::Subscriber for Open {
        fn register_callsite(
            &self,
            _: &'static tracing::Metadata<'static>,
        ) -> tracing::subscriber::Interest {
            tracing::subscriber::Interest::sometimes()
        }
        fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
            Some(tracing::level_filters::LevelFilter::TRACE)
        }
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            false
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, _: &tracing::Event<'_>) {}
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = tracing::subscriber::set_global_default(Open);
    });
}

/// A request is provisioned once: after its user is revoked, a second provisioner on the same
/// database (a restarted agent, another instance) refuses it and creates nothing; of sixteen
/// concurrent provisionings of one request exactly one creates a user; and a claim is
/// forgotten only once its time has passed, after which nothing refuses the request.
pub async fn a_request_is_provisioned_once_even_after_its_user_is_gone<H: Harness>() {
    let db = start::<H>(false).await;
    let p = db.provisioner().await;
    let once = plan(db.read("orders"), TimeDelta::minutes(5));
    let c = p.provision(&once).await.unwrap();
    p.revoke(&c.username).await.unwrap();
    assert_eq!(db.managed_accounts(), 0);
    let other = db.provisioner().await;
    let e = other.provision(&once).await.unwrap_err();
    assert!(matches!(e, p0_core::ProvisionError::Replayed(_)), "{e}");
    assert_eq!(db.managed_accounts(), 0, "the replay created something");

    let racing = plan(db.read("orders"), TimeDelta::minutes(5));
    let mut tasks = Vec::new();
    for i in 0..16 {
        let p = if i % 2 == 0 { p.clone() } else { other.clone() };
        let plan = racing.clone();
        tasks.push(tokio::spawn(async move { p.provision(&plan).await }));
    }
    let mut users = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(c) => users.push(c.username),
            Err(p0_core::ProvisionError::Replayed(_)) => {}
            Err(e) => panic!("a concurrent provisioning failed otherwise: {e}"),
        }
    }
    assert_eq!(users.len(), 1, "{users:?}");
    p.revoke(&users[0]).await.unwrap();

    assert_eq!(
        p.forget_claims(Utc::now()).await.unwrap(),
        0,
        "a claim was forgotten early"
    );
    if db.capabilities().claims_forgotten_by_sweep {
        let later = Utc::now() + TimeDelta::seconds(p0_core::provision::CLAIM_SECS + 1);
        assert_eq!(p.forget_claims(later).await.unwrap(), 2);
        let c = other.provision(&once).await.unwrap();
        p.revoke(&c.username).await.unwrap();
    }
    assert_eq!(db.managed_accounts(), 0);
}
