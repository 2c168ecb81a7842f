//! Helpers shared by the integration tests: a fresh run dir and a small topology on test ports
//! (this crate's tests use 15400-15499, 15700-15749, 19500-19599, 19900-19999, 18000-18199 and
//! 18500-18599).
#![allow(dead_code)]

use std::path::PathBuf;

use infra::{Proc, Topology};
/// A fresh run dir under the system temp dir, removed when dropped.
pub use test_support::RunDir;

pub fn topology(toml: &str) -> Topology {
    Topology::parse(toml).expect("test topology")
}

pub fn any_alive(procs: &[Proc]) -> Vec<String> {
    procs.iter().filter(|p| p.alive()).map(|p| format!("{} pid {}", p.label(), p.pid)).collect()
}

/// A thread inserting ids into table `items` of the shop database through the pgpools at `ports`
/// in turn, as fast as they answer, recording each acknowledged id with its time: the writes a
/// fault test must find on every backend afterwards, and the gaps between acknowledgements.
pub struct Writer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    acks: std::sync::Arc<std::sync::Mutex<Vec<(std::time::Instant, String)>>>,
    thread: std::thread::JoinHandle<()>,
}

impl Writer {
    pub fn start(ports: [u16; 2]) -> Writer {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let acks: std::sync::Arc<std::sync::Mutex<Vec<(std::time::Instant, String)>>> = Default::default();
        let (s, a) = (stop.clone(), acks.clone());
        let thread = std::thread::spawn(move || {
            let mut n = 0u32;
            while !s.load(Ordering::Relaxed) {
                let id = format!("w{n}");
                let port = ports[(n % 2) as usize];
                let insert = format!("INSERT INTO items VALUES ('{id}')");
                if infra::psql::query("127.0.0.1", port, infra::SHOP_DB, &insert).is_ok() {
                    a.lock().unwrap().push((std::time::Instant::now(), id));
                }
                n += 1;
            }
        });
        Writer { stop, acks, thread }
    }

    /// The first acknowledgement after `t`.
    pub fn first_ack_after(&self, t: std::time::Instant) -> Option<std::time::Instant> {
        self.acks.lock().unwrap().iter().map(|(at, _)| *at).find(|at| *at > t)
    }

    /// The longest time between `from`, the acknowledgements in between, and `to`.
    pub fn longest_gap(&self, from: std::time::Instant, to: std::time::Instant) -> std::time::Duration {
        let acks = self.acks.lock().unwrap();
        let mut times: Vec<std::time::Instant> =
            acks.iter().map(|(t, _)| *t).filter(|t| *t >= from && *t <= to).collect();
        times.insert(0, from);
        times.push(to);
        times.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default()
    }

    /// Stops the writer; the ids it saw acknowledged.
    pub fn finish(self) -> Vec<String> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap();
        let acks = self.acks.lock().unwrap();
        acks.iter().map(|(_, id)| id.clone()).collect()
    }
}

/// Panics unless every backend at `ports` (read directly) has every id of `acked` in `items`.
pub fn assert_on_every_backend(acked: &[String], ports: [u16; 2]) {
    for port in ports {
        let ids = infra::psql::query("127.0.0.1", port, infra::SHOP_DB, "SELECT id FROM items").unwrap();
        let ids: std::collections::HashSet<&str> = ids.lines().collect();
        let missing: Vec<&String> = acked.iter().filter(|id| !ids.contains(id.as_str())).collect();
        assert!(missing.is_empty(), "backend {port} lacks acknowledged writes {missing:?}");
    }
}

/// The app binary of this build (target/<profile>/shopbench, next to the test's deps dir);
/// `cargo test --workspace` (scripts/test) builds it.
pub fn app_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().and_then(|deps| deps.parent()).unwrap().join("shopbench");
    assert!(bin.is_file(), "{} missing: build the app first (cargo build -p app; scripts/test does)", bin.display());
    bin
}

/// POST `body` as JSON to `host:port` (with `bearer` as the Authorization token when given);
/// returns the status and the body.
pub fn post_json(host: &str, port: u16, path: &str, body: &str, bearer: Option<&str>) -> (u16, String) {
    request("POST", host, port, path, body, bearer)
}

/// GET `path` of `host:port` (with `bearer` when given); returns the status and the body.
pub fn get(host: &str, port: u16, path: &str, bearer: Option<&str>) -> (u16, String) {
    request("GET", host, port, path, "", bearer)
}

fn request(method: &str, host: &str, port: u16, path: &str, body: &str, bearer: Option<&str>) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect((host, port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    let auth = bearer.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let code = resp.split_whitespace().nth(1).unwrap().parse().unwrap();
    (code, resp.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
}

/// The `[[hosts]]` tables of emulated `hosts`, named `names` in order (each host's shopbench dir
/// under its own dir).
pub fn hosts_toml(names: &[&str], hosts: &[infra::hosts::SshHost]) -> String {
    let mut toml = String::new();
    for (name, h) in names.iter().zip(hosts) {
        toml.push_str(&format!(
            "[[hosts]]\nname = \"{name}\"\naddress = \"{}\"\nkey = \"{}\"\nknown_hosts = \"{}\"\ndir = \"{}\"\n",
            h.address,
            h.key.display(),
            h.known_hosts.as_ref().unwrap().display(),
            h.dir.join("shopbench").display()
        ));
    }
    toml
}

/// `shopbench-infra <args>`: (success, stdout, stderr).
pub fn infra(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shopbench-infra")).args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// psql from `from` (a host, over SSH) to `host:port` as `user` with `password`, in database
/// shop; Err: its words.
pub fn psql_on(
    from: &infra::hosts::SshHost,
    host: &str,
    port: u16,
    user: &str,
    password: &str,
    sql: &str,
) -> Result<String, String> {
    let line = format!(
        "PGPASSWORD={password} PGCONNECT_TIMEOUT=5 psql -X -At -v ON_ERROR_STOP=1 -h {host} -p {port} -U {user} -d shop -c \"{sql}\""
    );
    from.run(&line, std::time::Duration::from_secs(30)).map_err(|e| format!("{e:#}"))
}

/// The pid of `kind` `index` in the state.json of the run dir `run_dir` (on a control machine:
/// the pid on the instance's host).
pub fn pid_in_state(run_dir: &std::path::Path, kind: &str, index: u64) -> u64 {
    let state: serde_json::Value = serde_json::from_slice(&std::fs::read(run_dir.join("state.json")).unwrap()).unwrap();
    let procs = state["processes"].as_array().unwrap();
    procs.iter().find(|p| p["kind"] == kind && p["index"] == index).unwrap()["pid"].as_u64().unwrap()
}
