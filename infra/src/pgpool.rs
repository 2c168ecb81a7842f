//! pgpool-II 4.3 instances in native replication mode over all backends; pcp; SHOW pool_nodes.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::process;
use crate::render::{render, PGPOOL_CONF, PGPOOL_FAILOVER_ALONE, PGPOOL_FAILOVER_NEVER};
use crate::running::Running;
use crate::state::Proc;
use crate::tools::tool;
use crate::topology::{Failover, Kind};
use crate::{postgres, psql, rundir, secrets};

const PCP_USER: &str = "pcpadmin";
const PCPPASS: &str = "pcppass";

/// A random pcp password for this run: pcp.conf gets its md5, `pcppass` (mode 0600, read by the
/// pcp_* tools through PCPPASSFILE) the password.
pub(crate) fn write_pcp_credentials(r: &Running) -> Result<()> {
    let password = crate::secrets::random_hex(12)?;
    let path = r.run_dir().join(PCPPASS);
    std::fs::write(&path, format!("*:*:{PCP_USER}:{password}\n"))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

fn pcp_password(r: &Running) -> Result<String> {
    let text = std::fs::read_to_string(r.run_dir().join(PCPPASS)).context("reading pcppass")?;
    Ok(text.trim().rsplit(':').next().unwrap_or_default().to_string())
}

fn backends_block(r: &Running) -> String {
    let t = r.topology();
    (0..t.count(Kind::Postgres))
        .map(|i| {
            let (host, port) = t.endpoint(Kind::Postgres, i);
            let data = postgres::data_dir(r, i);
            format!(
                "backend_hostname{i} = '{host}'\nbackend_port{i} = {port}\nbackend_weight{i} = 1\n\
                 backend_data_directory{i} = '{}'\nbackend_flag{i} = 'ALLOW_TO_FAILOVER'\n",
                data.display()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

const POOL_HBA: &str = "pool_hba.conf";

/// pgpool.conf's client authentication. On loopback none (the backends trust local connections
/// too); off loopback pool_hba.conf lets in only the topology's addresses, with scram-sha-256
/// checked against pool_passwd, whose plain (`TEXT`) passwords pgpool also logs in to the
/// backends with (and its health check, as the superuser).
fn auth_block(r: &Running, dir: &Path) -> Result<String> {
    let Some(secrets) = &r.secrets else {
        return Ok("enable_pool_hba = off                 # loopback, trust: backends authenticate nobody either\n\
                   pool_passwd = ''"
            .into());
    };
    let passwd = dir.join("pool_passwd");
    let lines = format!(
        "{}:TEXT{}\n{}:TEXT{}\n",
        psql::CLIENT_USER,
        secrets.client.expose(),
        psql::SUPERUSER,
        secrets.admin.expose()
    );
    secrets::write_private(&passwd, lines.as_bytes())?;
    process::give(&passwd, r.run_as())?;
    let hba = dir.join(POOL_HBA);
    std::fs::write(&hba, postgres::hba_conf(r.topology(), ""))?;
    process::give(&hba, r.run_as())?;
    Ok(format!(
        "enable_pool_hba = on                  # {POOL_HBA}: the topology's hosts, scram-sha-256\n\
         pool_passwd = '{}'\nallow_clear_text_frontend_auth = off",
        passwd.display()
    ))
}

/// Renders pgpool i's config, starts it and waits until it sees every backend up.
pub(crate) fn start(r: &mut Running, i: usize) -> Result<()> {
    let t = r.topology().clone();
    let (host, port) = t.endpoint(Kind::Pgpool, i);
    let pcp_port = t.pgpool.pcp_port(i);
    let dir = r.instance_dir(Kind::Pgpool, i);
    let sock = r.socket_dir(Kind::Pgpool, i);
    rundir::instance_dir(&dir, r.run_as())?;
    rundir::instance_dir(&sock, r.run_as())?;
    let conf = render(
        PGPOOL_CONF,
        &[
            ("name", t.name.clone()),
            ("index", i.to_string()),
            ("host", host.clone()),
            ("port", port.to_string()),
            ("pcp_port", pcp_port.to_string()),
            ("socket_dir", sock.display().to_string()),
            ("dir", dir.display().to_string()),
            ("backends", backends_block(r)),
            ("num_init_children", r.sizing().num_init_children.to_string()),
            ("max_pool", r.sizing().max_pool.to_string()),
            ("auth", auth_block(r, &dir)?),
            (
                "failover",
                match t.pgpool_failover() {
                    Failover::Alone => PGPOOL_FAILOVER_ALONE,
                    Failover::Never => PGPOOL_FAILOVER_NEVER,
                }
                .trim_end()
                .to_string(),
            ),
        ],
    )?;
    let conf_path = dir.join("pgpool.conf");
    std::fs::write(&conf_path, conf)?;
    let mut md5 = Command::new(tool("pg_md5")?);
    md5.arg(pcp_password(r)?);
    let hash = process::run_ok(md5, Duration::from_secs(10))?;
    let pcp_path = dir.join("pcp.conf");
    std::fs::write(&pcp_path, format!("{PCP_USER}:{}\n", hash.trim()))?;
    for p in [&conf_path, &pcp_path] {
        process::give(p, r.run_as())?;
    }
    process::ensure_port_free(&host, port, &format!("pgpool {i}"))?;
    process::ensure_port_free(&host, pcp_port, &format!("pgpool {i} (pcp)"))?;

    let log = dir.join("pgpool.log");
    let mut cmd = process::server_command(&tool("pgpool")?, &log, r.run_as())?;
    // -n: foreground. Never -D: it would forget which nodes this pgpool had detached.
    cmd.arg("-n").arg("-f").arg(&conf_path).arg("-F").arg(&pcp_path).current_dir(&dir);
    if r.secrets.is_some() {
        cmd.arg("-a").arg(dir.join(POOL_HBA));
    }
    let child = process::spawn(cmd, &format!("pgpool {i}"))?;
    let pid = child.id();
    let start_time = process::start_time(pid).unwrap_or(0);
    let proc = Proc {
        kind: Kind::Pgpool,
        index: i,
        pid,
        start_time,
        host,
        port,
        pcp_port: Some(pcp_port),
        dir,
        log,
        machine: None,
    };
    r.record(proc.clone(), child)?;
    let backends = t.count(Kind::Postgres);
    process::wait_until(
        &format!("pgpool {i} on {}", proc.addr()),
        Duration::from_secs(30),
        || !proc.alive(),
        || {
            if !process::tcp_accepts(&proc.host, proc.port) {
                return Ok(false);
            }
            let nodes = pool_nodes(&proc.host, proc.port)?;
            let down: Vec<String> =
                nodes.iter().filter(|n| n.status != "up").map(|n| format!("node {} {}", n.node_id, n.status)).collect();
            if nodes.len() != backends || !down.is_empty() {
                bail!("sees {} of {backends} backends; not up: {}", nodes.len(), down.join(", "));
            }
            Ok(true)
        },
    )
    .with_context(|| process::tail(&proc.log, 15))
}

/// One row of `SHOW pool_nodes`: a pgpool's view of one backend.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NodeView {
    pub node_id: usize,
    pub host: String,
    pub port: u16,
    /// "up", "down", "waiting" or "unused".
    pub status: String,
    pub role: String,
    pub select_cnt: u64,
}

pub fn pool_nodes(host: &str, port: u16) -> Result<Vec<NodeView>> {
    let rows = psql::query_csv(host, port, "postgres", "SHOW pool_nodes")?;
    rows.into_iter()
        .map(|row| {
            let get = |k: &str| row.iter().find(|(c, _)| c == k).map(|(_, v)| v.clone()).unwrap_or_default();
            Ok(NodeView {
                node_id: get("node_id").parse().context("node_id")?,
                host: get("hostname"),
                port: get("port").parse().context("port")?,
                status: get("status"),
                role: get("role"),
                select_cnt: get("select_cnt").parse().unwrap_or(0),
            })
        })
        .collect()
}

/// [`pool_nodes`], retried for a while: during a failover pgpool refuses new sessions
/// ("failed to create a backend connection") for a moment.
pub(crate) fn pool_nodes_patient(host: &str, port: u16) -> Result<Vec<NodeView>> {
    let mut nodes = None;
    process::wait_until(
        &format!("pgpool {host}:{port} to answer"),
        Duration::from_secs(15),
        || false,
        || {
            nodes = Some(pool_nodes(host, port)?);
            Ok(true)
        },
    )?;
    Ok(nodes.expect("set when ready"))
}

/// Runs `pcp_attach_node` / `pcp_detach_node` for backend `node` against pgpool `i`.
pub(crate) fn pcp_node(r: &Running, command: &str, i: usize, node: usize) -> Result<()> {
    pcp_node_output(r, command, i, node, Duration::from_secs(30)).map(drop)
}

/// pgpool `i`'s status of backend `node` ("up", "down", "waiting", ...) through pcp_node_info,
/// which needs no backend connection (SHOW pool_nodes does: a pgpool session opens one to every
/// backend first).
pub(crate) fn pcp_node_status(r: &Running, i: usize, node: usize, timeout: Duration) -> Result<String> {
    let out = pcp_node_output(r, "pcp_node_info", i, node, timeout)?;
    // "host port status_code weight status_name ..."
    out.split_whitespace().nth(4).map(str::to_string).with_context(|| format!("pcp_node_info said {out:?}"))
}

pub(crate) fn pcp_node_output(r: &Running, command: &str, i: usize, node: usize, timeout: Duration) -> Result<String> {
    let p = r.proc(Kind::Pgpool, i)?;
    let pcp_port = p.pcp_port.context("pgpool without pcp port")?;
    let mut cmd = Command::new(tool(command)?);
    cmd.args(["-h", &p.host, "-p", &pcp_port.to_string(), "-U", PCP_USER, "-w", "-n", &node.to_string()])
        .env("PCPPASSFILE", r.run_dir().join(PCPPASS));
    process::run_ok(cmd, timeout).with_context(|| format!("{command} {node} on pgpool {i}"))
}
