//! The harness itself: each server starts, answers, and is gone after drop.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use p0_testkit::{MariaDbServer, PgServer};
use std::net::TcpStream;

#[test]
fn postgres_starts_answers_and_stops() {
    let pg = PgServer::start().unwrap();
    assert_eq!(pg.psql("postgres", "SELECT 40 + 2").unwrap().trim(), "42");
    let port = pg.port;
    drop(pg);
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn mariadb_starts_answers_and_stops() {
    let db = MariaDbServer::start().unwrap();
    assert_eq!(db.sql("SELECT 40 + 2").unwrap().trim(), "42");
    assert!(db.general_log().unwrap().contains("SELECT 40 + 2"));
    let port = db.port;
    drop(db);
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}
