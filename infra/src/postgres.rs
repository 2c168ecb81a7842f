//! PostgreSQL 15 backends: initdb, config, start, readiness, database `shop`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use endpoints::HostPort;

use crate::process::{self, RunAs};
use crate::render::{render, POSTGRESQL_CONF};
use crate::running::Running;
use crate::secrets::{self, Secret};
use crate::state::Proc;
use crate::tools::tool;
use crate::topology::{Kind, Topology};
use crate::{psql, rundir};

pub const SHOP_DB: &str = "shop";

pub(crate) fn data_dir(r: &Running, i: usize) -> PathBuf {
    r.instance_dir(Kind::Postgres, i).join("data")
}

/// initdb for every backend, in parallel (each takes ~0.7 s).
pub(crate) fn init_all(r: &mut Running) -> Result<()> {
    let jobs: Vec<(usize, PathBuf)> =
        r.local(Kind::Postgres).into_iter().map(|i| (i, r.instance_dir(Kind::Postgres, i))).collect();
    for (_, dir) in &jobs {
        rundir::instance_dir(dir, r.run_as())?;
    }
    let run_as = r.run_as().cloned();
    let admin = r.secrets.as_ref().map(|s| &s.admin);
    let results: Vec<Result<()>> = std::thread::scope(|s| {
        let handles: Vec<_> = jobs.iter().map(|(_, dir)| s.spawn(|| initdb(dir, run_as.as_ref(), admin))).collect();
        handles.into_iter().map(|h| h.join().expect("initdb thread panicked")).collect()
    });
    for ((i, _), res) in jobs.iter().zip(results) {
        res.with_context(|| format!("initdb of postgres {i}"))?;
        write_config(r, *i)?;
    }
    Ok(())
}

/// initdb; with a password (off loopback) the superuser gets it (`--pwfile`, a file only the
/// service user reads, removed right after).
fn initdb(dir: &Path, run_as: Option<&RunAs>, password: Option<&Secret>) -> Result<()> {
    let mut cmd = Command::new(tool("initdb")?);
    cmd.arg("-D").arg(dir.join("data"));
    let pwfile = dir.join("initdb-pwfile");
    if let Some(p) = password {
        secrets::write_private(&pwfile, p.expose().as_bytes())?;
        process::give(&pwfile, run_as)?;
        cmd.arg(format!("--pwfile={}", pwfile.display()));
    }
    cmd.args([
        "-U",
        psql::SUPERUSER,
        "-A",
        "trust",
        "-E",
        "UTF8",
        "--locale=C.UTF-8",
        "--no-sync",
        "--no-instructions",
    ]);
    cmd.current_dir(dir);
    if let Some(u) = run_as {
        use std::os::unix::process::CommandExt;
        cmd.uid(u.uid).gid(u.gid);
    }
    let done = process::run_ok(cmd, Duration::from_secs(120));
    let _ = std::fs::remove_file(&pwfile);
    done.map(drop)
}

/// Renders postgresql.conf into backend i's data dir (also after a base backup copied another
/// node's config there).
pub(crate) fn write_config(r: &Running, i: usize) -> Result<()> {
    let t = r.topology();
    let (host, port) = t.endpoint(Kind::Postgres, i);
    let sock = r.socket_dir(Kind::Postgres, i);
    rundir::instance_dir(&sock, r.run_as())?;
    let conf = render(
        POSTGRESQL_CONF,
        &[
            ("name", t.name.clone()),
            ("index", i.to_string()),
            ("host", host),
            ("port", port.to_string()),
            ("socket_dir", sock.display().to_string()),
            ("max_connections", r.sizing().max_connections.to_string()),
            ("superuser_reserved", r.sizing().superuser_reserved.to_string()),
        ],
    )?;
    let mut conf = conf;
    if !t.postgres.settings.is_empty() {
        conf.push_str("\n# [postgres.settings] of the topology file\n");
        for (k, v) in &t.postgres.settings {
            conf.push_str(&format!("{k} = {}\n", psql::literal(v)));
        }
    }
    let path = data_dir(r, i).join("postgresql.conf");
    std::fs::write(&path, conf).with_context(|| format!("writing {}", path.display()))?;
    process::give(&path, r.run_as())?;
    if r.secrets.is_some() {
        let hba = data_dir(r, i).join("pg_hba.conf");
        std::fs::write(&hba, hba_conf(t, "replication")).with_context(|| format!("writing {}", hba.display()))?;
        process::give(&hba, r.run_as())?;
    }
    Ok(())
}

/// Off loopback: password (scram-sha-256) logins from the topology's addresses only, no unix
/// socket logins; `replication` adds the same lines for pg_basebackup (pgpool's pool_hba.conf
/// has none).
pub(crate) fn hba_conf(t: &Topology, replication: &str) -> String {
    let mut out = String::from(
        "# Rendered by shopbench-infra: the topology's hosts (and loopback) with a password, nobody else.\n",
    );
    for addr in t.allowed_clients() {
        let cidr = if addr.is_ipv4() { format!("{addr}/32") } else { format!("{addr}/128") };
        out.push_str(&format!("host all all {cidr} scram-sha-256\n"));
        if !replication.is_empty() {
            out.push_str(&format!("host {replication} all {cidr} scram-sha-256\n"));
        }
    }
    out
}

/// Starts backend i from its data dir and waits until it answers a query.
pub(crate) fn start(r: &mut Running, i: usize) -> Result<()> {
    start_within(r, i, Duration::from_secs(30))
}

/// [`start`], waiting at most `timeout` for it to answer (the rejoin has writes paused).
pub(crate) fn start_within(r: &mut Running, i: usize, timeout: Duration) -> Result<()> {
    let (host, port) = r.topology().endpoint(Kind::Postgres, i);
    process::ensure_port_free(&host, port, &format!("postgres {i}"))?;
    let dir = r.instance_dir(Kind::Postgres, i);
    let log = dir.join("postgres.log");
    let mut cmd = process::server_command(&tool("postgres")?, &log, r.run_as())?;
    cmd.arg("-D").arg(data_dir(r, i)).current_dir(&dir);
    let child = process::spawn(cmd, &format!("postgres {i}"))?;
    let pid = child.id();
    let start_time = process::start_time(pid).unwrap_or(0);
    let proc =
        Proc { kind: Kind::Postgres, index: i, pid, start_time, host, port, pcp_port: None, dir, log, machine: None };
    r.record(proc.clone(), child)?;
    wait_ready(&proc, timeout)
}

fn wait_ready(p: &Proc, timeout: Duration) -> Result<()> {
    let isready = tool("pg_isready")?;
    process::wait_until(
        &format!("postgres {} on {}", p.index, p.addr()),
        timeout,
        || !p.alive(),
        || {
            let mut cmd = Command::new(&isready);
            cmd.args([
                "-q",
                "-h",
                &p.host,
                "-p",
                &p.port.to_string(),
                "-U",
                psql::SUPERUSER,
                "-d",
                "postgres",
                "-t",
                "1",
            ]);
            Ok(process::run_with_timeout(cmd, Duration::from_secs(3))?.status.success())
        },
    )
    .and_then(|()| psql::admin_query_timeout(&p.host, p.port, "postgres", "SELECT 1", timeout).map(drop))
    .with_context(|| process::tail(&p.log, 15))
}

/// Creates the clients' role `postgres` on every backend (initdb made only the superuser
/// `shopbench_admin`). With pgpool it is no superuser, so clients cannot take the slots reserved
/// for pgpool's health check and infra's tools; it creates databases (tests make their own), owns
/// what it creates, and sees and may end other sessions as the monitoring roles allow. Without
/// pgpool (direct clients such as the test suite) it stays a superuser, as before.
/// Off loopback the role gets the run's client password (fed through stdin: never on a command
/// line or in a log).
pub(crate) fn create_client_role(r: &Running) -> Result<()> {
    let attrs = if r.topology().count(Kind::Pgpool) > 0 { "NOSUPERUSER CREATEDB" } else { "SUPERUSER" };
    let password = match &r.secrets {
        Some(s) => format!(" PASSWORD {}", psql::literal(s.client.expose())),
        None => String::new(),
    };
    // A failed statement is logged with its text: not this one, which may hold the password.
    let sql = format!(
        "SET log_min_error_statement = panic; \
         CREATE ROLE {CLIENT} LOGIN {attrs}{password}; GRANT pg_monitor, pg_signal_backend TO {CLIENT}",
        CLIENT = psql::CLIENT_USER
    );
    for i in r.local(Kind::Postgres) {
        let (host, port) = r.topology().endpoint(Kind::Postgres, i);
        psql::admin_query_fed(&host, port, "postgres", &sql)?;
    }
    Ok(())
}

/// Creates database `shop` through the first pgpool (which replicates it to every backend) and
/// checks that each backend has it; without pgpool, on each backend directly.
pub(crate) fn create_shop_database(r: &Running) -> Result<()> {
    let t = r.topology();
    let exists = format!("SELECT count(*) FROM pg_database WHERE datname = {}", psql::literal(SHOP_DB));
    let create = format!("CREATE DATABASE {SHOP_DB}");
    let targets: Vec<HostPort> = if t.count(Kind::Pgpool) > 0 {
        r.endpoints(Kind::Pgpool).into_iter().take(1).collect()
    } else {
        r.endpoints(Kind::Postgres)
    };
    for HostPort { host, port } in &targets {
        if psql::query(host, *port, "postgres", &exists)?.trim() == "0" {
            psql::query(host, *port, "postgres", &create).with_context(|| format!("creating database {SHOP_DB}"))?;
        }
    }
    for (i, HostPort { host, port }) in r.endpoints(Kind::Postgres).iter().enumerate() {
        if psql::query(host, *port, "postgres", &exists)?.trim() != "1" {
            bail!("database {SHOP_DB} was not replicated to postgres {i} ({host}:{port})");
        }
    }
    Ok(())
}
