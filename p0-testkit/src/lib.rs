//! Throwaway database servers for tests: PostgreSQL 15 and MariaDB, each in a temp dir on a
//! random loopback port, torn down on drop. When running as root, PostgreSQL runs as the
//! `postgres` user (initdb refuses root) and MariaDB as root with `--user=root`.
//!
//! Neither lets anyone in without a password, on any path: PostgreSQL authenticates every
//! local and TCP connection with SCRAM-SHA-256, MariaDB has only password accounts for root
//! (no anonymous, socket or passwordless accounts, set before it accepts a connection). The
//! admin password comes from the OS CSPRNG, reaches the testkit's own clients through their
//! environment or a 0600 defaults file (never a command line), and every file that holds a
//! secret is created mode 0600 inside the server's 0700 directory.
//!
//! [`conformance`] is the provisioner conformance suite: any back-end, p0's own or yours,
//! runs every case through a small [`conformance::Harness`].

pub mod conformance;
mod files;
mod logs;
mod mariadb;
mod pg;
mod process;
mod stand_in;

pub use files::{private_tempdir, write_secret_file};
pub use logs::LogCapture;
pub use mariadb::MariaDbServer;
pub use pg::{PgOptions, PgServer};
pub use stand_in::explain_only_agent;
