//! The Prometheus exporters of a topology, one per observed server, started after it and stopped
//! with it by PID: Debian's prometheus-postgres-exporter (each backend, and each pgpool through
//! custom queries: SHOW POOL_NODES and SHOW POOL_PROCESSES), prometheus-redis-exporter (each Redis
//! instance and each Sentinel) and prometheus-nginx-exporter (each nginx's stub_status).
//! Cassandra's is a java agent inside each node (cassandra.rs).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::process;
use crate::psql;
use crate::rundir;
use crate::running::Running;
use crate::secrets::{Secret, Secrets};
use crate::state::Proc;
use crate::tools::tool;
use crate::topology::Kind;

/// The custom queries of a pgpool's exporter (pgpool answers its SHOW commands itself).
const PGPOOL_QUERIES: &str = include_str!("../templates/pgpool-queries.yaml");

/// nginx's stub_status location: loopback only, and on a host of `[[hosts]]` also that host's
/// own address, where its exporter connects from (infra/templates/nginx.conf).
pub const NGINX_STATUS_PATH: &str = "/_nginx_status";

/// The Debian executable of an exporter kind.
pub(crate) fn binary(kind: Kind) -> &'static str {
    match kind {
        Kind::PostgresExporter | Kind::PgpoolExporter => "prometheus-postgres-exporter",
        Kind::RedisExporter | Kind::SentinelExporter => "prometheus-redis-exporter",
        Kind::NginxExporter => "prometheus-nginx-exporter",
        other => unreachable!("{other} is no exporter"),
    }
}

/// A PostgreSQL connection URL for the postgres exporter: trust on loopback; off loopback the
/// clients' role `postgres` (pg_monitor) with the run's password (hex: nothing to escape). It goes
/// into the exporter's environment only (its log writes the URL with the password removed).
fn postgres_dsn(host: &str, port: u16, password: Option<&Secret>) -> String {
    let user = match password {
        Some(p) => format!("{}:{}", psql::CLIENT_USER, p.expose()),
        None => psql::CLIENT_USER.to_string(),
    };
    format!("postgresql://{user}@{host}:{port}/postgres?sslmode=disable")
}

/// The password exporter `kind` logs in with: none on loopback (trust); off loopback the run's
/// client password for PostgreSQL and pgpool (pool_passwd has it), Redis' or Sentinel's own.
fn password(kind: Kind, secrets: Option<&Secrets>) -> Option<&Secret> {
    let s = secrets?;
    match kind {
        Kind::PostgresExporter | Kind::PgpoolExporter => Some(&s.client),
        Kind::RedisExporter => Some(&s.redis),
        Kind::SentinelExporter => Some(&s.sentinel),
        _ => None,
    }
}

/// The command line of exporter `i` of `kind`, listening on `listen`, observing `target`, logging
/// in with `password` (never on the command line, which any user of the host can read).
fn command(
    kind: Kind,
    listen: &str,
    target: (&str, u16),
    password: Option<&Secret>,
    dir: &Path,
    log: &Path,
) -> Result<Command> {
    let (host, port) = target;
    let mut cmd = process::server_command(&tool(binary(kind))?, log, None)?;
    // The host's infra runs with PGPASSFILE (every role's password): an exporter gets only its own.
    cmd.current_dir(dir).env_remove("PGPASSFILE");
    match kind {
        Kind::PostgresExporter => {
            cmd.env("DATA_SOURCE_NAME", postgres_dsn(host, port, password))
                .arg(format!("--web.listen-address={listen}"))
                .arg("--disable-settings-metrics");
        }
        Kind::PgpoolExporter => {
            // Only the custom queries: pgpool is no PostgreSQL server to the default ones.
            let queries = dir.join("queries.yaml");
            std::fs::write(&queries, PGPOOL_QUERIES)?;
            cmd.env("DATA_SOURCE_NAME", postgres_dsn(host, port, password))
                .arg(format!("--web.listen-address={listen}"))
                .arg(format!("--extend.query-path={}", queries.display()))
                .args(["--disable-default-metrics", "--disable-settings-metrics"])
                .args(["--no-collector.database", "--no-collector.bgwriter"]);
        }
        // A Sentinel answers INFO with its masters: the exporter tells it apart by itself.
        Kind::RedisExporter | Kind::SentinelExporter => {
            if let Some(p) = password {
                // The exporter's default for -redis.password.
                cmd.env("REDIS_PASSWORD", p.expose());
            }
            cmd.arg(format!("-redis.addr=redis://{host}:{port}"))
                .arg(format!("-web.listen-address={listen}"))
                .arg("-connection-timeout=2s");
        }
        Kind::NginxExporter => {
            cmd.arg(format!("-nginx.scrape-uri=http://{host}:{port}{NGINX_STATUS_PATH}"))
                .arg(format!("-web.listen-address={listen}"))
                .args(["-nginx.retries=10", "-nginx.retry-interval=1s", "-nginx.timeout=2s"]);
        }
        other => bail!("{other} is no exporter"),
    }
    Ok(cmd)
}

/// Starts exporter `i` of `kind` (an exporter kind) and waits until it serves /metrics.
pub(crate) fn start(r: &mut Running, kind: Kind, i: usize) -> Result<()> {
    let t = r.topology().clone();
    let observed = kind.observed().with_context(|| format!("{kind} is no exporter"))?;
    let (host, port) = t.endpoint(kind, i);
    let (target_host, target_port) = t.endpoint(observed, i);
    process::ensure_port_free(&host, port, &format!("{kind} {i}"))?;
    let dir = r.instance_dir(kind, i);
    rundir::instance_dir(&dir, None)?;
    let log = dir.join("exporter.log");
    let password = password(kind, r.secrets.as_ref());
    let cmd = command(kind, &format!("{host}:{port}"), (&target_host, target_port), password, &dir, &log)?;
    let child = process::spawn(cmd, &format!("{kind} {i}"))?;
    let pid = child.id();
    let start_time = process::start_time(pid).unwrap_or(0);
    let proc = Proc { kind, index: i, pid, start_time, host, port, pcp_port: None, dir, log, machine: None };
    r.record(proc.clone(), child)?;
    process::wait_until(
        &format!("{} on {}", proc.label(), proc.addr()),
        Duration::from_secs(30),
        || !proc.alive(),
        || {
            let (code, _) = process::http_get(&proc.host, proc.port, "/metrics", Duration::from_secs(5))?;
            Ok(code == 200)
        },
    )
    .with_context(|| process::tail(&proc.log, 15))
}

/// Starts every exporter of the topology (none unless its Prometheus wants them).
pub(crate) fn start_all(r: &mut Running) -> Result<()> {
    let t = r.topology().clone();
    for kind in Kind::EXPORTERS {
        for i in 0..t.count(kind) {
            start(r, kind, i)?;
        }
    }
    Ok(())
}
