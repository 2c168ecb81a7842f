//! A saturated machine does not make pgpool detach a healthy backend. Read load through one
//! pgpool and directly on both backends keeps every core busy for [`LOAD`]; pgpool's health check
//! opens a new session per attempt, and a new backend process then waits for a CPU before it can
//! answer the login (measured: ~2 ms of CPU, up to 2 s in the run queue). With the old settings
//! (a 1 s `health_check_timeout`, 2 retries at once) three such waits in a row detached backend 0,
//! then backend 1: "all backend nodes are down", the stage down for good. Asserted: neither backend
//! is ever reported down during or after the load, pgpool never started a degeneration, and a
//! writer's acknowledged writes are on both backends, which stay identical.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{assert_on_every_backend, topology, RunDir, Writer};
use infra::{psql, SHOP_DB};

const PG: [u16; 2] = [15480, 15481];
const PGPOOL: u16 = 19985;

const TOPOLOGY: &str = r#"
name = "itest-saturation"
[postgres]
count = 2
base_port = 15480
[pgpool]
count = 1
base_port = 19985
pcp_base_port = 19987
"#;

/// How long the load lasts (the old settings detached a backend within 3-20 s of such load).
const LOAD: Duration = Duration::from_secs(20);

/// CPU-bound processes per core beside the read load: a machine others use too.
const SPINNERS_PER_CORE: usize = 2;

/// Load processes, SIGKILLed and reaped when dropped (also on a panic).
struct Load(Vec<Child>);

impl Drop for Load {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn pgbench() -> PathBuf {
    let debian = Path::new("/usr/lib/postgresql/15/bin/pgbench");
    if debian.exists() {
        debian.to_path_buf()
    } else {
        "pgbench".into()
    }
}

/// A CPU-bound process in a session of its own, as another user's job on the machine is (the
/// scheduler shares the CPU between sessions first); it ends by itself once the test process is
/// gone, should the test be killed before it drops [`Load`].
fn spinner() -> Child {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &format!("while kill -0 {} 2>/dev/null; do :; done", std::process::id())]).stdin(Stdio::null());
    // SAFETY: setsid is async-signal-safe and touches no state of this process.
    unsafe { cmd.pre_exec(|| if libc::setsid() < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }) };
    cmd.spawn().expect("sh")
}

/// `pgbench` running `script` against `port` with `clients` sessions for [`LOAD`].
fn read_load(port: u16, clients: usize, script: &Path, log: &Path) -> Child {
    let out = std::fs::File::create(log).unwrap();
    let threads = clients.min(2);
    Command::new(pgbench())
        .args(["-n", "-M", "simple", "-h", "127.0.0.1", "-U", "postgres"])
        .args(["-p", &port.to_string(), "-c", &clients.to_string(), "-j", &threads.to_string()])
        .args(["-T", &LOAD.as_secs().to_string(), "-f"])
        .arg(script)
        .arg(SHOP_DB)
        .env("PGCONNECT_TIMEOUT", "10")
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .stdin(Stdio::null())
        .spawn()
        .expect("pgbench (package postgresql-15)")
}

#[test]
fn a_saturated_backend_stays_attached() {
    let dir = RunDir::new("infra-test-saturation");
    let running = topology(TOPOLOGY).up(dir.path()).expect("up");
    let run_dir = running.run_dir().to_path_buf();
    psql::query(
        "127.0.0.1",
        PGPOOL,
        SHOP_DB,
        "CREATE TABLE products (id int PRIMARY KEY, name text NOT NULL, price_cents int NOT NULL);
         INSERT INTO products SELECT g, 'product ' || g, g * 100 FROM generate_series(1, 500) g;
         CREATE TABLE items (id text PRIMARY KEY)",
    )
    .unwrap();
    let script = dir.path().join("read.sql");
    std::fs::write(&script, "\\set id random(1, 500)\nSELECT * FROM products WHERE id = :id;\n").unwrap();

    // Read clients through the pgpool (8 of its 12 children, the rest stay for the writer and
    // tools) and directly on each backend, all primary-key reads, and CPU-bound processes in
    // sessions of their own: every core stays busy, as on a machine an outside load saturates.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let started = Instant::now();
    let mut load = Load(vec![
        read_load(PGPOOL, 8, &script, &dir.path().join("pgbench-pgpool.log")),
        read_load(PG[0], 2 * cores, &script, &dir.path().join("pgbench-pg0.log")),
        read_load(PG[1], 2 * cores, &script, &dir.path().join("pgbench-pg1.log")),
    ]);
    load.0.extend((0..SPINNERS_PER_CORE * cores).map(|_| spinner()));
    let writer = Writer::start([PGPOOL, PGPOOL]);

    // Until the load ends: pgpool's view of both nodes (pcp, its own process), and how long a
    // new session on each backend takes to log in, as the health check's do (psql as the
    // superuser, the process start included).
    let mut polls = 0;
    let mut slowest_login = [Duration::ZERO; 2];
    while started.elapsed() < LOAD {
        for (node, port) in PG.iter().enumerate() {
            let t = Instant::now();
            if psql::admin_query_timeout("127.0.0.1", *port, "postgres", "SELECT 1", Duration::from_secs(30)).is_ok() {
                slowest_login[node] = slowest_login[node].max(t.elapsed());
            }
            let status = running.pgpool_node_status(0, node).unwrap();
            assert!(
                status == "up" || status == "waiting",
                "pgpool detached the healthy backend {node} {:.1?} into the load ({status})",
                started.elapsed()
            );
        }
        polls += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(load);
    std::thread::sleep(Duration::from_secs(2));
    let acked = writer.finish();
    for name in ["pgpool", "pg0", "pg1"] {
        let log = std::fs::read_to_string(dir.path().join(format!("pgbench-{name}.log"))).unwrap_or_default();
        let tps = log.lines().find(|l| l.starts_with("tps")).unwrap_or("(no summary)");
        eprintln!("pgbench {name}: {tps}");
    }
    eprintln!(
        "{polls} polls; slowest direct login under load: backend 0 {:.2?}, backend 1 {:.2?}; {} writes acknowledged",
        slowest_login[0],
        slowest_login[1],
        acked.len()
    );
    let log = std::fs::read_to_string(run_dir.join("pgpool0/pgpool.log")).unwrap();
    for line in log.lines().filter(|l| l.contains("health check") && !l.contains("stats_shared_memory")) {
        eprintln!("pgpool: {line}");
    }

    // pgpool's own account of its checks: retries, and the slowest check (ms) against the timeout.
    let stats = psql::query("127.0.0.1", PGPOOL, "postgres", "SHOW pool_health_check_stats").unwrap_or_default();
    eprintln!("SHOW pool_health_check_stats (node|host|port|status|role|changed|total|ok|failed|skipped|retries|avg retries|max retries|max ms|min ms|avg ms|...):\n{stats}");
    let nodes = infra::pool_nodes("127.0.0.1", PGPOOL).expect("SHOW pool_nodes after the load");
    for n in &nodes {
        assert_eq!(n.status, "up", "node {} after the load: {nodes:?}", n.node_id);
    }
    assert!(!log.contains("starting degeneration"), "pgpool detached a backend under load (see its log above)");
    assert!(!acked.is_empty(), "no write went through during the load");
    let report = running.check_consistency().unwrap();
    assert!(report.is_identical(), "{report}");
    assert_on_every_backend(&acked, PG);
    running.down().unwrap();
}
