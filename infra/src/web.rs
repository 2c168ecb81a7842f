//! The web tier: `shopbench` instances and nginx in front of them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use settings::{CassandraSettings, HttpSettings, PostgresSettings, RedisSettings, WebSettings};

use crate::process;
use crate::render::render;
use crate::rundir;
use crate::running::Running;
use crate::state::Proc;
use crate::tools::tool;
use crate::topology::Kind;

const NGINX_CONF: &str = include_str!("../templates/nginx.conf");

/// The web binary to start, absolute. A file's relative path was taken from its directory when
/// it was read (crate::topology::anchor_paths); one still relative here was not read from a file
/// (a topology given as text) and is taken from the current directory.
pub(crate) fn binary_path(binary: &Path) -> Result<PathBuf> {
    let path = std::path::absolute(binary).with_context(|| format!("web binary {}", binary.display()))?;
    if !path.is_file() {
        bail!("web binary {} not found: build it (cargo build --release -p app) or pass --web-binary", path.display());
    }
    Ok(path)
}

fn ready_http(p: &Proc, path: &str, timeout: Duration) -> Result<()> {
    process::wait_until(
        &format!("{} on {}", p.label(), p.addr()),
        timeout,
        || !p.alive(),
        || {
            let (code, body) = process::http_get(&p.host, p.port, path, Duration::from_secs(2))?;
            if code != 200 {
                bail!("GET {path} answered {code}: {}", body.chars().take(200).collect::<String>());
            }
            Ok(true)
        },
    )
    .with_context(|| process::tail(&p.log, 15))
}

/// Web instance i: the app on its port, a pool of `app_pool_size` connections to every pgpool.
pub(crate) fn start_web(r: &mut Running, i: usize) -> Result<()> {
    let t = r.topology().clone();
    let (host, port) = t.endpoint(Kind::Web, i);
    let binary = r.state.web_binary.clone().context("no web binary recorded")?;
    process::ensure_port_free(&host, port, &format!("web {i}"))?;
    let dir = r.instance_dir(Kind::Web, i);
    rundir::instance_dir(&dir, None)?;
    let log = dir.join("web.log");
    let settings = r.settings_for_web(i);
    // The app runs as ourselves: it needs no privileges, and its binary may sit where the service
    // user cannot read.
    let mut cmd = process::server_command(&binary, &log, None)?;
    cmd.current_dir(&dir).env_remove("SHOPBENCH_CONFIG").envs(settings.env());
    let child = process::spawn(cmd, &format!("web {i}"))?;
    r.state.web_settings.insert(i, settings);
    let pid = child.id();
    let start_time = process::start_time(pid).unwrap_or(0);
    let proc = Proc { kind: Kind::Web, index: i, pid, start_time, host, port, pcp_port: None, dir, log, machine: None };
    r.record(proc.clone(), child)?;
    // The first instance runs the migrations.
    ready_http(&proc, "/health/ready", Duration::from_secs(60))
}

impl Running {
    /// What web instance `i` is started with: its address, the admin token, every pgpool with a
    /// pool of `app_pool_size` connections each, and the Sentinels and the Cassandra ring when the
    /// topology has them.
    pub fn settings_for_web(&self, i: usize) -> WebSettings {
        let t = self.topology();
        let (host, port) = t.endpoint(Kind::Web, i);
        WebSettings {
            http: HttpSettings { host, port },
            admin_token: self.admin_token(),
            postgres: PostgresSettings {
                endpoints: self.pgpool_endpoints(),
                pool_size: self.app_pool_size(),
                password: self.secrets.as_ref().map(|s| s.client.expose().to_string()),
            },
            // The app finds the master (and the replicas) through the sentinels.
            redis: (t.count(Kind::Redis) > 0).then(|| RedisSettings {
                password: self.redis_password().map(str::to_string),
                sentinel_password: self.sentinel_password().map(str::to_string),
                ..RedisSettings::new(self.sentinel_endpoints(), self.redis_master_name())
            }),
            // The driver finds the rest of the ring from any of them; a 1-node ring needs RF 1.
            // Off loopback it logs in as the ring's role.
            cassandra: (t.count(Kind::Cassandra) > 0).then(|| {
                let login = self.cassandra_login();
                CassandraSettings {
                    username: login.as_ref().map(|l| l.user.clone()),
                    password: login.map(|l| l.password),
                    ..CassandraSettings::new(self.cassandra_nodes(), self.cassandra_replication_factor())
                }
            }),
        }
    }

    /// The admin token of the web instances: off loopback the run's own (secrets.json, made per
    /// run: the files' tokens are public), else the topology's.
    pub fn admin_token(&self) -> String {
        match self.secrets.as_ref().and_then(|s| s.web_admin.as_ref()) {
            Some(token) => token.expose().to_string(),
            None => self.topology().web.admin_token.clone(),
        }
    }

    /// The settings web instance `i` was last started with (recorded in the run state, without
    /// the admin token).
    pub fn web_settings(&self, i: usize) -> Option<&WebSettings> {
        self.state.web_settings.get(&i)
    }
}

/// nginx i: balances over every web instance.
pub(crate) fn start_nginx(r: &mut Running, i: usize) -> Result<()> {
    let t = r.topology().clone();
    let (host, port) = t.endpoint(Kind::Nginx, i);
    process::ensure_port_free(&host, port, &format!("nginx {i}"))?;
    let dir = r.instance_dir(Kind::Nginx, i);
    for sub in ["", "logs", "temp", "temp/client_body", "temp/proxy", "temp/fastcgi", "temp/uwsgi", "temp/scgi"] {
        rundir::instance_dir(&dir.join(sub), r.run_as())?;
    }
    let servers: Vec<String> = (0..t.count(Kind::Web))
        .map(|w| t.endpoint(Kind::Web, w))
        .map(|(host, port)| format!("        server {host}:{port} max_fails=3 fail_timeout=5s;"))
        .collect();
    let conf = render(
        NGINX_CONF,
        &[
            ("name", t.name.clone()),
            ("index", i.to_string()),
            ("host", host.clone()),
            ("port", port.to_string()),
            ("dir", dir.display().to_string()),
            ("upstream_servers", servers.join("\n")),
            ("web_count", t.count(Kind::Web).to_string()),
            ("proxy_idle_secs", settings::PROXY_IDLE_SECS.to_string()),
            ("status_path", crate::exporter::NGINX_STATUS_PATH.to_string()),
            ("status_allow", if t.is_remote() { format!("\n            allow {host};") } else { String::new() }),
        ],
    )?;
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf)?;
    process::give(&conf_path, r.run_as())?;
    let log = dir.join("logs/stderr.log");
    let mut cmd = process::server_command(&tool("nginx")?, &log, r.run_as())?;
    // -e: the compiled-in error log path (/var/log/nginx) is opened before the config is read.
    cmd.arg("-p").arg(&dir).arg("-c").arg(&conf_path).arg("-e").arg(dir.join("logs/error.log")).current_dir(&dir);
    let child = process::spawn(cmd, &format!("nginx {i}"))?;
    let pid = child.id();
    let start_time = process::start_time(pid).unwrap_or(0);
    let proc = Proc {
        kind: Kind::Nginx,
        index: i,
        pid,
        start_time,
        host,
        port,
        pcp_port: None,
        dir: dir.clone(),
        log,
        machine: None,
    };
    r.record(proc.clone(), child)?;
    ready_http(&proc, "/health", Duration::from_secs(15))
        .with_context(|| process::tail(&dir.join("logs/error.log"), 10))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::Secrets;
    use crate::topology::Topology;

    /// Off loopback the web instances get the run's own admin token (not a file's, which is
    /// public), and the run state keeps it out; on loopback they get the topology's.
    #[test]
    fn on_hosts_the_web_instances_get_the_runs_own_admin_token_which_the_run_state_leaves_out() {
        let dir = std::env::temp_dir().join(format!("shopbench-admin-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let text = "name = \"h\"\n[postgres]\ncount = 1\nbase_port = 5000\nhosts = [\"a\"]\n\
                    [pgpool]\ncount = 1\nbase_port = 5100\nhosts = [\"a\"]\n\
                    [web]\ncount = 1\nbase_port = 6000\nhosts = [\"a\"]\n\
                    [[hosts]]\nname = \"a\"\naddress = \"192.0.2.1\"\nkey = \"/k\"\n";
        let t = Topology::parse(text).unwrap();
        let secrets = Secrets::generate().unwrap();
        let mut r = Running::recorded(&dir, t, vec![], Some(secrets.save(&dir).unwrap()));
        let token = secrets.web_admin.as_ref().unwrap().expose().to_string();
        let settings = r.settings_for_web(0);
        r.state.web_settings.insert(0, settings.clone());
        r.state.save(&dir).unwrap();
        let saved = std::fs::read_to_string(dir.join(crate::state::STATE_FILE)).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!((r.admin_token(), settings.admin_token.clone()), (token.clone(), token.clone()));
        assert_ne!(token, r.topology().web.admin_token);
        assert!(settings.env().contains(&(settings::env_name("admin_token"), token.clone())));
        assert!(!saved.contains(&token), "the run state holds the token");
    }
}
