//! The Redis tier on 2 emulated hosts (rs1: redis 0, the first master, and sentinels 0 and 2;
//! rs2: redis 1 and sentinel 1), killed instances restarted from the control machine over SSH
//! (issue 13): the master, once the sentinels promoted redis 1, comes back as its replica with
//! what was written meanwhile; a killed sentinel comes back naming the new master; a running
//! instance's restart is refused. The control machine decides the master to follow (it knows
//! every host's instances) and the host starts the instance. Needs root (emulated hosts); ports
//! 24900-24999.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{infra, pid_in_state, RunDir};
use infra::hosts::{EmulatedHosts, SshHost};
use infra::redis::{info_as, master_addr_as, query_as};

const T: Duration = Duration::from_secs(30);
const NAMES: [&str; 2] = ["rs1", "rs2"];
const REDIS: u16 = 24979;
const SENTINEL: u16 = 24990;

fn topology(hosts: &[SshHost]) -> String {
    let mut toml = format!(
        "name = \"rs\"\n\
         [redis]\ncount = 2\nbase_port = {REDIS}\nhosts = [\"rs1\", \"rs2\"]\n\
         [sentinel]\ncount = 3\nbase_port = {SENTINEL}\nhosts = [\"rs1\", \"rs2\"]\ndown_after_ms = 2000\n"
    );
    toml.push_str(&common::hosts_toml(&NAMES, hosts));
    toml
}

/// Polls `probe` for up to 60 s.
fn eventually(what: &str, mut probe: impl FnMut() -> Option<String>) {
    let t0 = Instant::now();
    let mut last = None;
    while t0.elapsed() < Duration::from_secs(60) {
        match probe() {
            None => return,
            Some(seen) => last = Some(seen),
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("{what}: last seen {last:?}");
}

#[test]
fn killed_redis_and_sentinel_on_hosts_restart_following_the_current_master() {
    let t0 = Instant::now();
    let tmp = RunDir::new("multi-host-redis-restart");
    let emulated = EmulatedHosts::create(&tmp.path().join("hosts"), 2).expect("2 emulated hosts");
    let hosts = emulated.hosts();
    let file = tmp.path().join("rs.toml");
    std::fs::write(&file, topology(&hosts)).unwrap();
    let run_dir = tmp.path().join("run");
    let (topo, dir) = (file.to_str().unwrap(), run_dir.to_str().unwrap());
    let run = |command: &str, more: &[&str]| {
        let mut args = vec![command, "--topology", topo, "--run-dir", dir];
        args.extend(more);
        infra(&args)
    };
    let (ok, out, err) = run("up", &[]);
    assert!(ok, "up failed:\n{out}\n{err}");
    eprintln!("up in {:.1?}", t0.elapsed());
    let secrets: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("secrets.json")).unwrap()).unwrap();
    let (pw, sentinel_pw) = (secrets["redis"].as_str().unwrap(), secrets["sentinel"].as_str().unwrap());
    let redis = [format!("{}:{REDIS}", hosts[0].address), format!("{}:{}", hosts[1].address, REDIS + 1)];
    let sentinels: Vec<String> = (0..3).map(|s| format!("{}:{}", hosts[s % 2].address, SENTINEL + s as u16)).collect();
    let set = |addr: &str, k: &str| assert_eq!(query_as::<String>(addr, Some(pw), &["SET", k, "v"]).unwrap(), "OK");
    let get = |addr: &str, k: &str| query_as::<Option<String>>(addr, Some(pw), &["GET", k]).ok().flatten();
    let kill = |h: &SshHost, kind: &str, i: u64| {
        h.run(&format!("kill -9 {}", pid_in_state(Path::new(dir), kind, i)), T).unwrap();
    };
    set(&redis[0], "before");

    // The master dies; the sentinels promote redis 1, which takes a write; redis 0 restarts as
    // its replica and gets both keys.
    kill(&hosts[0], "redis", 0);
    eventually("the sentinels to name redis 1", || {
        let named = master_addr_as(&sentinels[1], Some(sentinel_pw), "shopbench").ok();
        (named.as_deref() != Some(redis[1].as_str())).then(|| format!("{named:?}"))
    });
    set(&redis[1], "meanwhile");
    let (ok, out, err) = run("restart", &["--kind", "redis", "--index", "0"]);
    assert!(ok, "restart --kind redis --index 0:\n{out}\n{err}");
    let info = info_as(&redis[0], Some(pw), "replication").unwrap();
    assert_eq!(info.get("role").map(String::as_str), Some("slave"), "{info:?}");
    assert_eq!(info.get("master_port"), Some(&(REDIS + 1).to_string()), "{info:?}");
    eventually("redis 0 to hold both keys", || {
        let both = (get(&redis[0], "before"), get(&redis[0], "meanwhile"));
        (both != (Some("v".into()), Some("v".into()))).then(|| format!("{both:?}"))
    });

    // A running instance is refused; a killed sentinel comes back naming redis 1.
    let (ok, _, err) = run("restart", &["--kind", "redis", "--index", "1"]);
    assert!(!ok && err.contains("redis 1 is running"), "{err}");
    kill(&hosts[1], "sentinel", 1);
    let (ok, out, err) = run("restart", &["--kind", "sentinel", "--index", "1"]);
    assert!(ok, "restart --kind sentinel --index 1:\n{out}\n{err}");
    assert_eq!(master_addr_as(&sentinels[1], Some(sentinel_pw), "shopbench").unwrap(), redis[1]);
    let (ok, status, err) = run("status", &[]);
    assert!(ok, "status: {status}\n{err}");

    let (ok, out, err) = run("down", &[]);
    assert!(ok, "down failed:\n{out}\n{err}");
    emulated.down().expect("teardown");
    eprintln!("whole test in {:.1?}", t0.elapsed());
}
