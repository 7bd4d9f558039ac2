//! Request claims against a hostile PostgreSQL neighbourhood: large objects planted at a
//! request's claim ids by a user or left by a previous admin login, `lo_compat_privileges`,
//! and users made before claims existed. Each case is a test of its own, against a real
//! PostgreSQL 15.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use chrono::{Duration as TimeDelta, Utc};
use p0_core::DatabaseProvisioner;
use p0_testkit::PgServer;
use support::grant_pg::{count, p0_roles, policy, provisioner, setup, DB};

/// The first object id a claim of `plan`'s request would take (as `claims.rs` derives it).
fn first_slot(plan: &p0_core::ProvisionPlan) -> u64 {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(plan.request_id.as_str().as_bytes());
    (1u64 << 31) | u64::from(u32::from_be_bytes([d[0], d[1], d[2], d[3]]) & 0x7fff_ffff)
}

fn reader_plan() -> p0_core::ProvisionPlan {
    support::grant_pg::plan_for(
        "alice@example.com",
        p0_core::Access::Permissions(support::grant_pg::read_orders()),
        TimeDelta::minutes(5),
    )
}

/// `plan`'s claim, as the agent would record it.
fn claim_of(plan: &p0_core::ProvisionPlan) -> String {
    p0_core::provision::Claim {
        request: plan.request_id.to_string(),
        until: Utc::now() + TimeDelta::days(8),
    }
    .render()
}

/// Creates role `role` with `attrs` and, owned by it, a large object at the first id of
/// `plan`'s claim, holding that claim as its data; returns the id.
fn plant_claim(pg: &PgServer, plan: &p0_core::ProvisionPlan, role: &str, attrs: &str) -> u64 {
    let slot = first_slot(plan);
    pg.psql(
        DB,
        &format!(
            "CREATE ROLE {role} {attrs}; SELECT lo_from_bytea({slot}, convert_to('{}', 'UTF8')); \
             ALTER LARGE OBJECT {slot} OWNER TO {role}",
            claim_of(plan)
                .strip_prefix(p0_core::provision::CLAIM)
                .unwrap()
        ),
    )
    .unwrap();
    slot
}

fn replayed(e: p0_core::ProvisionError) {
    assert!(matches!(e, p0_core::ProvisionError::Replayed(_)), "{e}");
}

/// Someone who may log in to the agent's database plants a large object at the first object
/// id a request's claim would take, holding that request's claim forged as its data: it does
/// not pass for the claim (the request is provisioned, its claim taken at the next id); it does
/// not hide the real one (a replay after revocation is refused); and emptying that id later
/// (the planter's `lo_unlink`, or the `DROP OWNED` of the planter's own revocation) does not
/// let a replay claim the request afresh there. The agent never removes someone else's object.
#[tokio::test]
async fn a_forged_claim_in_someone_elses_large_object_neither_blocks_nor_hides_a_request() {
    let (pg, plan) = (setup(), reader_plan());
    let p = provisioner(&pg, policy()).await;
    let slot = plant_claim(&pg, &plan, "mallory", "LOGIN");
    // An object of the admin's own above 2^31 that holds no claim (binary data): never read
    // as one, never removed, and it breaks no sweep.
    pg.psql(DB, "SELECT lo_from_bytea(3000000001, '\\xff00fe'::bytea)")
        .unwrap();
    let c = p.provision(&plan).await.unwrap();
    p.revoke(&c.username).await.unwrap();
    replayed(p.provision(&plan).await.unwrap_err());
    let later = Utc::now() + TimeDelta::days(9);
    assert_eq!(
        count(&pg, DB, &format!("SELECT count(*) FROM pg_largeobject_metadata WHERE oid = {slot} AND lomowner = 'mallory'::regrole")),
        1,
        "the agent removed someone else's object"
    );
    pg.psql(DB, &format!("SELECT lo_unlink({slot})")).unwrap();
    replayed(p.provision(&plan).await.unwrap_err());
    assert_eq!(p0_roles(&pg), 0);
    assert_eq!(p.forget_claims(later).await.unwrap(), 1);
    assert_eq!(
        count(
            &pg,
            DB,
            "SELECT count(*) FROM pg_largeobject_metadata WHERE oid = 3000000001"
        ),
        1
    );
}

/// A claim recorded under the agent's previous admin login (any role with CREATEROLE) still
/// refuses its request after the agent moves to another login.
#[tokio::test]
async fn a_claim_made_under_a_previous_admin_login_still_counts() {
    let (pg, plan) = (setup(), reader_plan());
    let p = provisioner(&pg, policy()).await;
    plant_claim(&pg, &plan, "old_admin", "LOGIN CREATEROLE");
    replayed(p.provision(&plan).await.unwrap_err());
    assert_eq!(p0_roles(&pg), 0);
}

/// With `lo_compat_privileges` on anyone could remove the agent's claims: provisioning is
/// refused, naming the setting, and nothing is created.
#[tokio::test]
async fn claims_are_refused_while_anyone_could_remove_them() {
    let pg = setup();
    let p = provisioner(&pg, policy()).await;
    pg.psql(DB, "ALTER SYSTEM SET lo_compat_privileges = on")
        .unwrap();
    pg.psql(DB, "SELECT pg_reload_conf()").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let e = p.provision(&reader_plan()).await.unwrap_err();
    assert!(e.to_string().contains("lo_compat_privileges is on"), "{e}");
    assert_eq!(p0_roles(&pg), 0);
    assert_eq!(
        count(&pg, DB, "SELECT count(*) FROM pg_largeobject_metadata"),
        0
    );
}

/// A user made before claims existed (its marker says nothing of a claim, and there is
/// none): its request is claimed when it is revoked, so it is not provisioned again.
#[tokio::test]
async fn a_user_made_before_claims_is_claimed_when_revoked() {
    let pg = setup();
    let p = provisioner(&pg, policy()).await;
    let plan = reader_plan();
    let c = p.provision(&plan).await.unwrap();
    let user = c.username.as_str();
    let marker = pg
        .psql(
            DB,
            &format!("SELECT shobj_description('{user}'::regrole, 'pg_authid')"),
        )
        .unwrap();
    let old = marker.trim().replace(",\"claimed\":true", "");
    assert_ne!(old, marker.trim(), "{marker}");
    pg.psql(
        DB,
        &format!(
            "SELECT lo_unlink(oid) FROM pg_largeobject_metadata; COMMENT ON ROLE \"{user}\" IS '{old}'"
        ),
    )
    .unwrap();
    p.revoke(&c.username).await.unwrap();
    replayed(p.provision(&plan).await.unwrap_err());
    assert_eq!(p0_roles(&pg), 0);
}
