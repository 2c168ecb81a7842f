//! SQL through the `psql` client (the library stays synchronous and driver-free): trust auth,
//! loopback TCP. [`query`] and its kin log in as the clients' role `postgres` (what the app and
//! the tests use, also through pgpool); the `admin_*` functions as the superuser
//! `shopbench_admin`, for infra's own direct sessions on a backend (check, rejoin, readiness),
//! which may take the slots reserved for superusers when clients fill a backend. Off loopback
//! (`[[hosts]]`) the servers ask for passwords: libpq reads them from `PGPASSFILE`, which the
//! control machine sets for infra on each host (remote/).

use std::process::Command;
use std::time::Duration;

use anyhow::Result;

use crate::process;
use crate::tools::tool;

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The superuser of every backend (initdb's bootstrap user).
pub const SUPERUSER: &str = "shopbench_admin";
/// The role clients log in as (no superuser when the topology has pgpool: see sizing.rs).
pub const CLIENT_USER: &str = "postgres";

fn command(host: &str, port: u16, db: &str) -> Result<Command> {
    command_as(CLIENT_USER, host, port, db)
}

fn command_as(user: &str, host: &str, port: u16, db: &str) -> Result<Command> {
    let mut cmd = Command::new(tool("psql")?);
    cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", user, "-h", host, "-p", &port.to_string(), "-d", db])
        .env("PGCONNECT_TIMEOUT", "3")
        .env("PGAPPNAME", "shopbench-infra")
        .env_remove("PGPASSWORD")
        .env_remove("PGSERVICE");
    Ok(cmd)
}

/// Runs `sql` (one or more statements) and returns the rows unaligned, fields separated by `|`.
pub fn query(host: &str, port: u16, db: &str, sql: &str) -> Result<String> {
    query_timeout(host, port, db, sql, DEFAULT_TIMEOUT)
}

pub fn query_timeout(host: &str, port: u16, db: &str, sql: &str, timeout: Duration) -> Result<String> {
    let mut cmd = command(host, port, db)?;
    cmd.args(["-A", "-t", "-F", "|", "-c", sql]);
    process::run_ok(cmd, timeout)
}

/// [`query`] as the superuser, on a backend directly.
pub fn admin_query(host: &str, port: u16, db: &str, sql: &str) -> Result<String> {
    admin_query_timeout(host, port, db, sql, DEFAULT_TIMEOUT)
}

pub fn admin_query_timeout(host: &str, port: u16, db: &str, sql: &str, timeout: Duration) -> Result<String> {
    let mut cmd = command_as(SUPERUSER, host, port, db)?;
    cmd.args(["-A", "-t", "-F", "|", "-c", sql]);
    process::run_ok(cmd, timeout)
}

/// [`admin_query`] with the SQL fed through stdin, where no `ps` shows it (it sets passwords).
pub fn admin_query_fed(host: &str, port: u16, db: &str, sql: &str) -> Result<String> {
    let mut cmd = command_as(SUPERUSER, host, port, db)?;
    cmd.args(["-A", "-t", "-f", "-"]);
    process::run_ok_with_input(cmd, sql.as_bytes().to_vec(), DEFAULT_TIMEOUT)
}

/// Runs each statement in turn in one session (one `-c` each, so a `SET` holds for the rest) and
/// returns all their rows, unaligned, fields separated by `|`.
/// As the superuser, on a backend directly.
pub fn admin_query_each(host: &str, port: u16, db: &str, statements: &[String], timeout: Duration) -> Result<String> {
    let mut cmd = command_as(SUPERUSER, host, port, db)?;
    cmd.args(["-A", "-t", "-F", "|"]);
    for s in statements {
        cmd.arg("-c").arg(s);
    }
    process::run_ok(cmd, timeout)
}

/// Rows as CSV with a header, for results read by column name (e.g. SHOW pool_nodes).
pub fn query_csv(host: &str, port: u16, db: &str, sql: &str) -> Result<Vec<Vec<(String, String)>>> {
    let mut cmd = command(host, port, db)?;
    cmd.args(["--csv", "-c", sql]);
    let out = process::run_ok(cmd, Duration::from_secs(10))?;
    let mut lines = out.lines();
    let header: Vec<String> = lines.next().unwrap_or_default().split(',').map(str::to_string).collect();
    Ok(lines.map(|l| header.iter().cloned().zip(l.split(',').map(str::to_string)).collect()).collect())
}

/// `psql` as a long-lived superuser session on a backend, fed through stdin (rejoin holds table
/// locks in one).
pub fn admin_session_command(host: &str, port: u16, db: &str) -> Result<Command> {
    let mut cmd = command_as(SUPERUSER, host, port, db)?;
    cmd.args(["-A", "-t"]);
    Ok(cmd)
}

/// Quotes an SQL string literal.
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
