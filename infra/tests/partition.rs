//! A network partition between one pgpool-II and one backend (issue 13, item 4), on 3 emulated
//! hosts: partdb1 runs backend 0 and pgpool 0, partdb2 backend 1 and pgpool 1, partweb a web
//! instance (using both pgpools) and nginx. pgpool 0 is cut off from backend 1 (nftables on
//! partdb1, over SSH) for a while under writes through each pgpool directly and through the app,
//! then the cut is healed and every backend read directly.
//!
//! Twice: with `[pgpool] failover = "alone"` (each pgpool detaches what it cannot reach, as on
//! one machine), pgpool 0 detaches backend 1 and acknowledges writes that backend 1 never gets,
//! while pgpool 1 still writes to both: the backends diverge (measured and asserted, so the
//! hazard stays known). With the default for two pgpools on machines (`never`), no pgpool
//! detaches anything: pgpool 0's writes fail during the cut, pgpool 1's succeed, the app moves
//! to pgpool 1, and after the heal every acknowledged write is on both backends exactly once and
//! the backends are identical. Needs root (emulated hosts); ports 26000-26699.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{app_binary, infra, RunDir};
use infra::hosts::{EmulatedHosts, InstanceCut, SshHost};
use infra::{Kind, Topology};

const NAMES: [&str; 3] = ["partdb1", "partdb2", "partweb"];
const PG: u16 = 26432;
const PGPOOL: u16 = 26500;
const NGINX: u16 = 26000;
/// How long the cut lasts: past pgpool's connect timeout (2 s: a session's connect fails and
/// detaches) and 3 health check attempts bounded by it (~7 s).
const CUT: Duration = Duration::from_secs(12);

fn topology(hosts: &[SshHost], control: &str, failover: Option<&str>) -> String {
    let failover = failover.map(|f| format!("failover = \"{f}\"\n")).unwrap_or_default();
    let mut toml = format!(
        "name = \"part\"\nclients = [\"{control}\"]\n\
         [postgres]\ncount = 2\nbase_port = {PG}\nhosts = [\"partdb1\", \"partdb2\"]\n\
         [postgres.settings]\nfsync = \"off\"\n\
         [pgpool]\ncount = 2\nbase_port = {PGPOOL}\npcp_base_port = 26600\nhosts = [\"partdb1\", \"partdb2\"]\n{failover}\
         [web]\ncount = 1\nbase_port = 26080\nhosts = [\"partweb\"]\nbinary = \"{}\"\n\
         [nginx]\ncount = 1\nbase_port = {NGINX}\nhosts = [\"partweb\"]\n",
        app_binary().display()
    );
    toml.push_str(&common::hosts_toml(&NAMES, hosts));
    toml
}

/// psql from the control machine (in the topology's `clients`), bounded: a statement over the cut
/// neither fails nor answers. Err: its words.
fn psql(host: &str, port: u16, user: &str, password: &str, sql: &str, limit: u64) -> Result<String, String> {
    let out = Command::new("timeout")
        .args([&limit.to_string(), "psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", host, "-p", &port.to_string()])
        .args(["-U", user, "-d", "shop", "-c", sql])
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "5")
        .output()
        .unwrap();
    match out.status.success() {
        true => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        false => Err(format!("exit {:?}: {}", out.status.code(), String::from_utf8_lossy(&out.stderr).trim())),
    }
}

/// One acknowledged or failed write, with when it ended.
#[derive(Clone)]
struct Outcome {
    at: Instant,
    id: Option<String>,
}

/// A thread writing in a loop until stopped; `write(n)` answers the acknowledged id or none.
struct Loop {
    stop: Arc<AtomicBool>,
    done: Arc<Mutex<Vec<Outcome>>>,
    thread: JoinHandle<()>,
}

impl Loop {
    fn start(write: impl Fn(u32) -> Option<String> + Send + 'static) -> Loop {
        let stop = Arc::new(AtomicBool::new(false));
        let done: Arc<Mutex<Vec<Outcome>>> = Default::default();
        let (s, d) = (stop.clone(), done.clone());
        let thread = std::thread::spawn(move || {
            let mut n = 0;
            while !s.load(Ordering::Relaxed) {
                let id = write(n);
                if id.is_none() {
                    std::thread::sleep(Duration::from_millis(100));
                }
                d.lock().unwrap().push(Outcome { at: Instant::now(), id });
                n += 1;
            }
        });
        Loop { stop, done, thread }
    }

    fn acked(&self) -> usize {
        self.done.lock().unwrap().iter().filter(|o| o.id.is_some()).count()
    }

    fn finish(self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap();
        Arc::try_unwrap(self.done).ok().unwrap().into_inner().unwrap()
    }
}

/// (acknowledged, failed) among `done` that ended between `from` and `to`.
fn counts(done: &[Outcome], from: Instant, to: Instant) -> (usize, usize) {
    let within: Vec<&Outcome> = done.iter().filter(|o| o.at >= from && o.at < to).collect();
    let acked = within.iter().filter(|o| o.id.is_some()).count();
    (acked, within.len() - acked)
}

/// POST a product through nginx; its id when the app answered 201.
fn post_product(host: &str, admin_token: &str, n: u32, tag: &str) -> Option<String> {
    use std::io::{Read, Write};
    let addr = format!("{host}:{NGINX}").parse().unwrap();
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    let body = format!(r#"{{"name":"{tag}-{n}","description":"partition","category":"tools","price_cents":100}}"#);
    write!(
        s,
        "POST /products HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {admin_token}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    if resp.split_whitespace().nth(1) != Some("201") {
        return None;
    }
    let json = resp.split_once("\r\n\r\n")?.1;
    Some(serde_json::from_str::<serde_json::Value>(json).ok()?["id"].as_str()?.to_string())
}

/// What one run of the cut showed.
struct Seen {
    /// Per pgpool: (acknowledged, failed) writes during the cut.
    during: [(usize, usize); 2],
    /// Per pgpool: acknowledged writes after the heal.
    after: [usize; 2],
    /// App: (acknowledged, failed) product writes during the cut; acknowledged after.
    app_during: (usize, usize),
    app_after: usize,
    /// Acknowledged writes (direct and app) missing on backend 0, on backend 1.
    missing: [Vec<String>; 2],
    /// Each pgpool's `SHOW pool_nodes` statuses after the heal.
    views: [String; 2],
    /// `shopbench-infra check` said identical.
    identical: bool,
}

/// Brings the topology up on `hosts`, writes, cuts pgpool 0 off from backend 1, heals, checks,
/// brings it down.
fn run_cut(run: &RunDir, hosts: &EmulatedHosts, failover: Option<&str>) -> Seen {
    let tag = failover.unwrap_or("default");
    let all = hosts.hosts();
    let file = run.path().join(format!("part-{tag}.toml"));
    std::fs::write(&file, topology(&all, &hosts.control_address().to_string(), failover)).unwrap();
    let run_dir = run.path().join(format!("run-{tag}"));
    let (topo, dir) = (file.to_str().unwrap(), run_dir.to_str().unwrap());
    let t = Instant::now();
    let (ok, out, err) = infra(&["up", "--topology", topo, "--run-dir", dir]);
    assert!(ok, "up ({tag}) failed:\n{out}\n{err}");
    eprintln!("[{tag}] up in {:.1?}", t.elapsed());
    let secrets: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("secrets.json")).unwrap()).unwrap();
    let client = secrets["client"].as_str().unwrap().to_string();
    let admin = secrets["admin"].as_str().unwrap().to_string();
    let admin_token = secrets["web_admin"].as_str().expect("the run's admin token").to_string();
    let addr = |i: usize| all[i].address.to_string();
    psql(&addr(0), PGPOOL, "postgres", &client, "CREATE TABLE items (id text PRIMARY KEY)", 30).unwrap();

    let writers: Vec<Loop> = (0..2)
        .map(|p| {
            let (host, client) = (addr(p), client.clone());
            Loop::start(move |n| {
                let id = format!("p{p}-{n}");
                let sql = format!("INSERT INTO items VALUES ('{id}')");
                psql(&host, PGPOOL + p as u16, "postgres", &client, &sql, 6).ok().map(|_| id)
            })
        })
        .collect();
    let web = addr(2);
    let app = Loop::start(move |n| post_product(&web, &admin_token, n, "part"));
    let warm = Instant::now();
    while writers.iter().chain([&app]).any(|w| w.acked() < 3) {
        assert!(warm.elapsed() < Duration::from_secs(60), "[{tag}] no writes before the cut");
        std::thread::sleep(Duration::from_millis(100));
    }

    let topology = Topology::from_file(&file).unwrap();
    let cut = InstanceCut { from: (Kind::Pgpool, 0), to: (Kind::Postgres, 1), port: Default::default() };
    let cut_at = Instant::now();
    cut.apply(&topology).expect("cut");
    cut.apply(&topology).expect("a cut applied again changes nothing");
    let rules = all[0].cut_rules().unwrap();
    assert_eq!(rules.matches(" drop").count(), 2, "one rule each way:\n{rules}");
    // Only pgpool 0 -> backend 1 is cut: the rest between the hosts and from here flows.
    assert!(psql(&addr(1), PGPOOL + 1, "postgres", &client, "SELECT 1", 10).is_ok(), "[{tag}] pgpool 1 during the cut");
    std::thread::sleep(CUT);
    let healed_at = Instant::now();
    cut.heal(&topology).expect("heal");
    cut.heal(&topology).expect("healing twice");
    all[0].heal_all().expect("heal_all");
    assert!(!all[0].cut_rules().unwrap().contains("drop"), "rules left after the heal");
    std::thread::sleep(Duration::from_secs(8));
    let end = Instant::now();
    let done: Vec<Vec<Outcome>> = writers.into_iter().map(Loop::finish).collect();
    let app_done = app.finish();

    let during = [counts(&done[0], cut_at, healed_at), counts(&done[1], cut_at, healed_at)];
    let after = [counts(&done[0], healed_at, end).0, counts(&done[1], healed_at, end).0];
    let (app_during, app_after) = (counts(&app_done, cut_at, healed_at), counts(&app_done, healed_at, end).0);
    let ids = |d: &[Outcome]| d.iter().filter_map(|o| o.id.clone()).collect::<Vec<_>>();
    let mut missing = [vec![], vec![]];
    for (b, m) in missing.iter_mut().enumerate() {
        let items = psql(&addr(b), PG + b as u16, "shopbench_admin", &admin, "SELECT id FROM items", 30).unwrap();
        let products = psql(&addr(b), PG + b as u16, "shopbench_admin", &admin, "SELECT id FROM products", 30).unwrap();
        let have: std::collections::HashSet<&str> = items.lines().chain(products.lines()).collect();
        let acked = done.iter().flat_map(|d| ids(d)).chain(ids(&app_done));
        m.extend(acked.filter(|id| !have.contains(id.as_str())));
    }
    let views = [0, 1].map(|p| {
        psql(&addr(p), PGPOOL + p as u16, "postgres", &client, "SHOW pool_nodes", 30)
            .map(|rows| {
                rows.lines().map(|l| l.split('|').take(5).collect::<Vec<_>>().join("|")).collect::<Vec<_>>().join("; ")
            })
            .unwrap_or_else(|e| e)
    });
    let (_, report, _) = infra(&["check", "--topology", topo, "--run-dir", dir]);
    let identical = report.starts_with("identical: 2 backends");
    eprintln!(
        "[{tag}] during the cut ({CUT:?}): pgpool 0 acked {} failed {}; pgpool 1 acked {} failed {}; app acked {} failed {}\n\
         [{tag}] after the heal: pgpool 0 acked {}, pgpool 1 acked {}, app acked {}\n\
         [{tag}] acknowledged but missing: backend 0 {} {:?}, backend 1 {} {:?}\n\
         [{tag}] pgpool 0 sees {}\n[{tag}] pgpool 1 sees {}\n[{tag}] check: {}",
        during[0].0, during[0].1, during[1].0, during[1].1, app_during.0, app_during.1,
        after[0], after[1], app_after,
        missing[0].len(), missing[0].iter().take(3).collect::<Vec<_>>(),
        missing[1].len(), missing[1].iter().take(3).collect::<Vec<_>>(),
        views[0], views[1], report.lines().take(3).collect::<Vec<_>>().join(" / "),
    );
    let (ok, out, err) = infra(&["down", "--topology", topo, "--run-dir", dir]);
    assert!(ok, "down ({tag}): {out}\n{err}");
    Seen { during, after, app_during, app_after, missing, views, identical }
}

#[test]
fn a_pgpool_cut_off_from_one_backend_must_not_fail_over_alone() {
    let t0 = Instant::now();
    let run = RunDir::new("partition");
    let hosts = EmulatedHosts::create(&run.path().join("hosts"), 3).expect("3 emulated hosts");

    // Each pgpool failing over by itself: pgpool 0 detaches backend 1 and writes on without it.
    let alone = run_cut(&run, &hosts, Some("alone"));
    assert!(alone.views[0].contains("down") && !alone.views[1].contains("down"), "{:?}", alone.views);
    assert!(alone.during[0].0 > 0, "pgpool 0 acknowledged writes with backend 1 detached");
    assert!(!alone.missing[1].is_empty(), "backend 1 lacks pgpool 0's acknowledged writes");
    assert!(!alone.identical, "the backends diverged");

    // The default for two pgpools on machines: nobody detaches anything alone.
    let never = run_cut(&run, &hosts, None);
    assert!(!never.views.iter().any(|v| v.contains("down")), "a pgpool detached a backend: {:?}", never.views);
    assert!(never.during[1].0 > 0, "pgpool 1 kept writing to both backends during the cut");
    assert!(never.after[0] > 0 && never.after[1] > 0, "both pgpools write again after the heal");
    assert!(never.app_during.0 > 0 && never.app_after > 0, "the app wrote during and after the cut");
    assert_eq!(never.missing, [Vec::<String>::new(), vec![]], "acknowledged writes missing on a backend");
    assert!(never.identical, "the backends differ after the heal");

    let names: Vec<String> = (0..3).map(|i| hosts.netns(i).to_string()).collect();
    hosts.down().expect("teardown");
    let left =
        String::from_utf8_lossy(&Command::new("ip").args(["netns", "list"]).output().unwrap().stdout).into_owned();
    assert!(names.iter().all(|n| !left.contains(n.as_str())), "namespaces (and their rules) left: {left}");
    eprintln!("whole test in {:.1?}", t0.elapsed());
}
