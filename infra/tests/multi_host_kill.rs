//! Kills and hangs on emulated hosts, from the control machine over SSH (issue 13): the instance's
//! host signals it and all its descendants by PID there (`host kill`) and answers what became of
//! each process. pgpool 0 (its main process and its children) is held with SIGSTOP under writes
//! through nginx, then continued: every write nginx acknowledged is there afterwards and the
//! backends are identical. web 0 is SIGKILLed and restarted. Needs root (emulated hosts); ports
//! 23000-23999.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{app_binary, infra, RunDir};
use infra::hosts::{EmulatedHosts, SshHost};
use infra::{Kind, RunState, Running, Signal};

const T: Duration = Duration::from_secs(30);
const NAMES: [&str; 3] = ["db1", "db2", "web1"];
const NGINX: u16 = 23000;
const WEB: u16 = 23080;

fn topology(hosts: &[SshHost], web: &Path) -> String {
    let mut toml = format!(
        "name = \"multi-kill\"\n\
         [postgres]\ncount = 2\nbase_port = 23432\nhosts = [\"db1\", \"db2\"]\n\
         [pgpool]\ncount = 1\nbase_port = 23500\npcp_base_port = 23600\nhosts = [\"db1\"]\n\
         [web]\ncount = 2\nbase_port = {WEB}\nhosts = [\"web1\", \"web1\"]\nbinary = \"{}\"\n\
         [nginx]\ncount = 1\nbase_port = {NGINX}\nhosts = [\"web1\"]\n",
        web.display()
    );
    toml.push_str(&common::hosts_toml(&NAMES, hosts));
    toml
}

/// The `ps` state letters of `pids` on `host` (over SSH), one per pid still there.
fn ps_states(host: &SshHost, pids: &[u32]) -> Vec<String> {
    let list: Vec<String> = pids.iter().map(u32::to_string).collect();
    let out = host.run(&format!("ps -o stat= -p {} || true", list.join(",")), T).unwrap();
    out.lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect()
}

/// Products created through nginx as fast as it answers, recording the ids it acknowledged
/// (201); any other answer or a broken connection is a write not acknowledged.
struct Writer {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<(Instant, String)>>>,
    thread: std::thread::JoinHandle<usize>,
}

impl Writer {
    fn start(host: String, token: String) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let acked: Arc<Mutex<Vec<(Instant, String)>>> = Default::default();
        let (s, a) = (stop.clone(), acked.clone());
        let thread = std::thread::spawn(move || {
            let mut n = 0;
            while !s.load(Ordering::Relaxed) {
                let body = format!(r#"{{"name":"hang-{n}","description":"d","category":"tools","price_cents":100}}"#);
                let answer =
                    std::panic::catch_unwind(|| common::post_json(&host, NGINX, "/products", &body, Some(&token)));
                if let Ok((201, body)) = answer {
                    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                    a.lock().unwrap().push((Instant::now(), v["id"].as_str().unwrap().to_string()));
                }
                n += 1;
            }
            n
        });
        Writer { stop, acked, thread }
    }

    fn acked_after(&self, t: Instant) -> usize {
        self.acked.lock().unwrap().iter().filter(|(at, _)| *at > t).count()
    }

    /// Stops the writer: (writes tried, ids acknowledged).
    fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let tried = self.thread.join().unwrap();
        let acked = self.acked.lock().unwrap().iter().map(|(_, id)| id.clone()).collect();
        (tried, acked)
    }
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_pgpool_hung_on_its_host_loses_no_acknowledged_write_and_a_killed_web_instance_restarts() {
    let run = RunDir::new("multi-host-kill");
    let emulated = EmulatedHosts::create(&run.path().join("hosts"), 3).expect("3 emulated hosts");
    let all = emulated.hosts();
    let (db1, web1) = (&all[0], &all[2]);
    let file = run.path().join("multi-kill.toml");
    std::fs::write(&file, topology(&all, &app_binary())).unwrap();
    let run_dir = run.path().join("run");
    let (topo, dir) = (file.to_str().unwrap(), run_dir.to_str().unwrap());
    let (ok, out, err) = infra(&["up", "--topology", topo, "--run-dir", dir]);
    assert!(ok, "up failed:\n{out}\n{err}");
    let secrets: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("secrets.json")).unwrap()).unwrap();
    let token = secrets["web_admin"].as_str().unwrap().to_string();
    let web_host = web1.address.to_string();

    // SIGSTOP of pgpool 0 on db1: its host answers the main process and its children, stopped;
    // ps on db1 agrees.
    let writer = Writer::start(web_host.clone(), token.clone());
    let started = Instant::now();
    wait_for("writes through nginx", T, || writer.acked_after(started) >= 5);
    let mut running = Running::open(&run_dir).unwrap();
    let stopped = running.signal_instance(Kind::Pgpool, 0, Signal::Stop).expect("SIGSTOP pgpool 0 on db1");
    let pids: Vec<u32> = stopped.tree.iter().map(|p| p.pid).collect();
    assert!(stopped.descendants() >= 2, "pgpool 0 has children: {stopped:?}");
    assert!(stopped.tree.iter().all(|p| p.state == RunState::Stopped), "{stopped:?}");
    let states = ps_states(db1, &pids);
    assert_eq!(states.len(), pids.len(), "{states:?}");
    assert!(states.iter().all(|s| s.starts_with('T')), "ps on db1: {states:?}");
    std::thread::sleep(Duration::from_secs(6));

    // SIGCONT through the command: every process runs again, and writes are acknowledged again.
    let (ok, out, err) =
        infra(&["kill", "--topology", topo, "--run-dir", dir, "--kind", "pgpool", "--index", "0", "--signal", "CONT"]);
    assert!(ok, "SIGCONT pgpool 0: {out}\n{err}");
    assert!(out.contains(&format!("SIGCONT pgpool 0 and its {} descendant(s)", stopped.descendants())), "{out}");
    let states = ps_states(db1, &pids);
    assert!(states.len() == pids.len() && states.iter().all(|s| !s.starts_with('T')), "ps on db1: {states:?}");
    let resumed = Instant::now();
    wait_for("writes after SIGCONT", T, || writer.acked_after(resumed) >= 5);
    let (tried, acked) = writer.finish();
    eprintln!("{tried} writes tried, {} acknowledged", acked.len());

    // Nothing acknowledged was lost: each product reads back through nginx, and the backends
    // hold the same rows.
    for id in &acked {
        let (code, body) = common::get(&web_host, NGINX, &format!("/products/{id}"), None);
        assert_eq!(code, 200, "acknowledged product {id}: {body}");
    }
    let (ok, report, err) = infra(&["check", "--topology", topo, "--run-dir", dir]);
    assert!(ok && report.starts_with("identical: 2 backends"), "check: {report}\n{err}");

    // SIGKILL of web 0 on web1: gone there; restarted, it answers again from here.
    let killed = running.signal_instance(Kind::Web, 0, Signal::Kill).expect("SIGKILL web 0 on web1");
    assert!(killed.tree.iter().all(|p| p.state == RunState::Gone), "{killed:?}");
    let web0 = killed.tree[0].pid;
    // Gone, or a zombie its new parent (the host's init) has not reaped yet.
    let left = ps_states(web1, &[web0]);
    assert!(left.iter().all(|s| s.starts_with('Z')), "web 0 (pid {web0}) on web1: {left:?}");
    assert!(!infra::http_get(&web_host, WEB, "/health", Duration::from_secs(2)).is_ok_and(|(c, _)| c == 200));
    let e = running.signal_instance(Kind::Web, 0, Signal::Kill).unwrap_err();
    assert!(format!("{e:#}").contains("is not running"), "{e:#}");
    let (ok, out, err) = infra(&["restart", "--topology", topo, "--run-dir", dir, "--kind", "web", "--index", "0"]);
    assert!(ok, "restart of web 0: {out}\n{err}");
    assert_eq!(infra::http_get(&web_host, WEB, "/health/ready", Duration::from_secs(5)).unwrap().0, 200);
    let body = r#"{"name":"Knot","description":"A bowline","category":"tools","price_cents":100}"#;
    assert_eq!(common::post_json(&web_host, NGINX, "/products", body, Some(&token)).0, 201);

    let (ok, out, err) = infra(&["down", "--topology", topo, "--run-dir", dir]);
    assert!(ok, "down failed:\n{out}\n{err}");
    emulated.down().expect("teardown");
}
