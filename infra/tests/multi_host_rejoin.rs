//! The PostgreSQL tier on 2 emulated hosts (rj1: backend 0 and pgpool 0, rj2: backend 1 and
//! pgpool 1), each killed instance brought back from the control machine over SSH (issue 13):
//! `rejoin --backend 1` after backend 1 was killed, `restart --kind postgres` of backend 0 (the
//! main node), `restart --kind pgpool` of a killed pgpool whose saved node status has a backend
//! down. Each rejoined backend has the rows written through either pgpool while it was down, and
//! both pgpools write to it again afterwards. The pgpools fail over alone (each
//! detaches a dead backend and writes on), so that rows are written while a backend is down; with
//! the hosts' default (`never`) the rejoin's own detach lets writes resume. Needs root (emulated
//! hosts); ports 24700-24799.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{infra, psql_on, RunDir};
use infra::hosts::{EmulatedHosts, SshHost};

const T: Duration = Duration::from_secs(30);
const NAMES: [&str; 2] = ["rj1", "rj2"];
const PG: u16 = 24732;
const PGPOOL: u16 = 24750;

fn topology(hosts: &[SshHost]) -> String {
    let mut toml = format!(
        "name = \"rejoin\"\n\
         [postgres]\ncount = 2\nbase_port = {PG}\nhosts = [\"rj1\", \"rj2\"]\n\
         [postgres.settings]\nfsync = \"off\"\n\
         [pgpool]\ncount = 2\nbase_port = {PGPOOL}\npcp_base_port = 24760\nhosts = [\"rj1\", \"rj2\"]\n\
         failover = \"alone\"\n"
    );
    toml.push_str(&common::hosts_toml(&NAMES, hosts));
    toml
}

/// The run on the emulated hosts, driven with `shopbench-infra` as a user would.
struct Run<'a> {
    hosts: &'a [SshHost],
    topo: String,
    dir: String,
    client: String,
    admin: String,
}

impl Run<'_> {
    fn infra(&self, command: &str, more: &[&str]) -> (bool, String, String) {
        let mut args = vec![command, "--topology", &self.topo, "--run-dir", &self.dir];
        args.extend(more);
        infra(&args)
    }

    /// `kill -9` of `kind index`'s main process on its host `h`.
    fn kill(&self, kind: &str, index: u64, h: usize) {
        let pid = common::pid_in_state(Path::new(&self.dir), kind, index);
        self.hosts[h].run(&format!("kill -9 {pid}"), T).unwrap();
    }

    /// Row `n` inserted through pgpool `p`, from its host, retried until acknowledged (the
    /// first writes after a backend died fail until the pgpools detach it).
    fn write(&self, p: usize, n: u32) {
        let (h, t0) = (&self.hosts[p], Instant::now());
        let sql = format!("INSERT INTO probe VALUES ({n}) ON CONFLICT DO NOTHING");
        loop {
            match psql_on(h, &h.address.to_string(), PGPOOL + p as u16, "postgres", &self.client, &sql) {
                Ok(_) => return,
                Err(e) if t0.elapsed() > Duration::from_secs(60) => panic!("row {n} through pgpool {p}: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(500)),
            }
        }
    }

    /// Rows `range`, each through the pgpools in turn.
    fn write_all(&self, range: std::ops::RangeInclusive<u32>) {
        for n in range {
            self.write(n as usize % self.hosts.len(), n);
        }
    }

    /// The rows of backend `k`, read on it directly (from its own host).
    fn rows(&self, k: usize) -> Vec<u32> {
        let h = &self.hosts[k];
        let out = psql_on(
            h,
            &h.address.to_string(),
            PG + k as u16,
            "shopbench_admin",
            &self.admin,
            "SELECT n FROM probe ORDER BY n",
        )
        .unwrap_or_else(|e| panic!("backend {k}: {e}"));
        out.lines().map(|l| l.trim().parse().unwrap()).collect()
    }

    fn assert_rows(&self, upto: u32) {
        for k in 0..2 {
            assert_eq!(self.rows(k), (1..=upto).collect::<Vec<_>>(), "backend {k}");
        }
    }
}

#[test]
fn killed_backends_on_hosts_rejoin_with_the_rows_written_meanwhile() {
    let t0 = Instant::now();
    let tmp = RunDir::new("multi-host-rejoin");
    let emulated = EmulatedHosts::create(&tmp.path().join("hosts"), 2).expect("2 emulated hosts");
    let hosts = emulated.hosts();
    let file = tmp.path().join("rejoin.toml");
    std::fs::write(&file, topology(&hosts)).unwrap();
    let run_dir = tmp.path().join("run");
    let mut run = Run {
        hosts: &hosts,
        topo: file.to_str().unwrap().into(),
        dir: run_dir.to_str().unwrap().into(),
        client: String::new(),
        admin: String::new(),
    };
    let (ok, out, err) = run.infra("up", &[]);
    assert!(ok, "up failed:\n{out}\n{err}");
    let secrets: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("secrets.json")).unwrap()).unwrap();
    run.client = secrets["client"].as_str().unwrap().into();
    run.admin = secrets["admin"].as_str().unwrap().into();
    eprintln!("up in {:.1?}", t0.elapsed());

    let (h0, a0) = (&hosts[0], hosts[0].address.to_string());
    psql_on(h0, &a0, PGPOOL, "postgres", &run.client, "CREATE TABLE probe (n int PRIMARY KEY)").unwrap();
    run.write_all(1..=3);
    run.assert_rows(3);

    // Backend 1 dies; rows go on through both pgpools; the rejoin brings them to it.
    run.kill("postgres", 1, 1);
    run.write_all(4..=10);
    assert_eq!(run.rows(0), (1..=10).collect::<Vec<_>>());
    let t = Instant::now();
    let (ok, out, err) = run.infra("rejoin", &["--backend", "1"]);
    assert!(ok && out.contains("identical: 2 backends"), "rejoin --backend 1:\n{out}\n{err}");
    eprintln!("rejoin of backend 1 over SSH in {:.1?}:\n{out}{err}", t.elapsed());
    run.assert_rows(10);
    // Both pgpools have it attached again: what each writes reaches it.
    run.write_all(11..=12);
    run.assert_rows(12);

    // Backend 0, the main node, dies; its restart is its rejoin (from backend 1).
    run.kill("postgres", 0, 0);
    run.write_all(13..=16);
    let t = Instant::now();
    let (ok, out, err) = run.infra("restart", &["--kind", "postgres", "--index", "0"]);
    assert!(ok, "restart --kind postgres --index 0:\n{out}\n{err}");
    eprintln!("restart of backend 0 over SSH in {:.1?}:\n{out}{err}", t.elapsed());
    assert!(err.contains("writes resumed"), "{err}");
    run.assert_rows(16);
    run.write_all(17..=18);
    run.assert_rows(18);

    // Backend 1 dies and both pgpools detach it (pgpool 1 saves that in its node status); then
    // pgpool 1 is killed. Its restart rejoins backend 1 first (pgpool 0 has it detached), drops
    // pgpool 1's outdated node status (else it would start with node 1 detached and never see
    // it up), and both pgpools write to both backends again.
    run.kill("postgres", 1, 1);
    run.write_all(19..=22);
    let (_, status, _) = run.infra("status", &[]);
    assert!(status.contains("pgpool 1 sees: node 0") && status.contains(":24733 down"), "{status}");
    let (ok, out, err) = run.infra("restart", &["--kind", "pgpool", "--index", "1"]);
    assert!(!ok && err.contains("pgpool 1 is running"), "restart of a running pgpool:\n{out}\n{err}");
    run.kill("pgpool", 1, 1);
    run.write(0, 23);
    let t = Instant::now();
    let (ok, out, err) = run.infra("restart", &["--kind", "pgpool", "--index", "1"]);
    assert!(ok, "restart --kind pgpool --index 1:\n{out}\n{err}");
    eprintln!("restart of pgpool 1 over SSH in {:.1?}:\n{out}{err}", t.elapsed());
    assert!(err.contains("backend 1 detached: rejoining it first"), "{err}");
    run.assert_rows(23);
    run.write_all(24..=25);
    run.assert_rows(25);
    let (ok, report, err) = run.infra("check", &[]);
    assert!(ok && report.starts_with("identical: 2 backends"), "check: {report}\n{err}");
    let (ok, status, err) = run.infra("status", &[]);
    assert!(ok && !status.contains("down"), "status: {status}\n{err}");

    let (ok, out, err) = run.infra("down", &[]);
    assert!(ok, "down failed:\n{out}\n{err}");
    emulated.down().expect("teardown");
    eprintln!("whole test in {:.1?}", t0.elapsed());
}
