//! 2 PostgreSQL backends under 2 pgpool-II instances in native replication: writes through pgpool
//! reach both, the consistency check sees a direct write to one backend, a killed pgpool shows in
//! the status, and a stopped backend rejoins under a running writer without losing a write.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{any_alive, topology, RunDir};
use infra::{psql, Difference, Kind, SHOP_DB};

const TOPOLOGY: &str = r#"
name = "itest-repl"
[postgres]
count = 2
base_port = 15410
[pgpool]
count = 2
base_port = 19910
pcp_base_port = 19960
"#;

#[test]
fn replication_check_faults_and_rejoin() {
    let dir = RunDir::new("infra-test-repl");
    let mut running = topology(TOPOLOGY).up(dir.path()).expect("up");
    let pools = running.endpoints(Kind::Pgpool);
    let backends = running.endpoints(Kind::Postgres);
    let via = |i: usize, sql: &str| psql::query(&pools[i].host, pools[i].port, SHOP_DB, sql);
    let direct = |i: usize, sql: &str| psql::query(&backends[i].host, backends[i].port, SHOP_DB, sql);

    // Writes through either pgpool land on both backends.
    via(0, "CREATE TABLE items (id uuid PRIMARY KEY, name text NOT NULL, qty int NOT NULL)").unwrap();
    for i in 0..10 {
        let sql = format!("INSERT INTO items VALUES ('00000000-0000-0000-0000-{i:012}', 'item {i}', {i})");
        via(i % 2, &sql).unwrap();
    }
    for b in 0..2 {
        assert_eq!(direct(b, "SELECT count(*) FROM items").unwrap().trim(), "10", "backend {b}");
    }
    let report = running.check_consistency().unwrap();
    assert!(report.is_identical(), "{report}");
    assert!(report.tables.iter().any(|t| t.database == SHOP_DB && t.table == "items" && t.rows == 10));

    // A row written to backend 1 alone is named as a row-count difference ...
    direct(1, "INSERT INTO items VALUES ('00000000-0000-0000-0000-00000000ffff', 'stray', 1)").unwrap();
    let report = running.check_consistency().unwrap();
    match &report.difference {
        Some(Difference::RowCount { backend: 1, database, table, reference_rows: 10, rows: 11 }) => {
            assert_eq!((database.as_str(), table.as_str()), (SHOP_DB, "items"))
        }
        other => panic!("expected a row-count difference on backend 1, got {other:?}"),
    }
    assert!(report.to_string().contains("shop.items"), "{report}");
    // ... a changed value as a checksum difference with equal counts.
    direct(1, "DELETE FROM items WHERE name = 'stray'; UPDATE items SET qty = 99 WHERE name = 'item 3'").unwrap();
    let report = running.check_consistency().unwrap();
    assert!(
        matches!(&report.difference, Some(Difference::Checksum { backend: 1, table, rows: 10, .. }) if table == "items"),
        "{report}"
    );
    direct(1, "UPDATE items SET qty = 3 WHERE name = 'item 3'").unwrap();
    assert!(running.check_consistency().unwrap().is_identical());

    // Backend 0 fails while a client keeps writing (retrying, as the app does); it is then
    // rejoined. Every acknowledged write must be on both backends afterwards.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, pools) = (stop.clone(), pools.clone());
        std::thread::spawn(move || {
            let (mut acked, mut failed) = (Vec::new(), 0u32);
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let id = format!("10000000-0000-0000-0000-{n:012}");
                let pool = &pools[n as usize % 2];
                let sql = format!("INSERT INTO items VALUES ('{id}', 'w{n}', 1)");
                match psql::query(&pool.host, pool.port, SHOP_DB, &sql) {
                    Ok(_) => acked.push(id),
                    Err(_) => failed += 1,
                }
                n += 1;
            }
            (acked, failed)
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    running.stop_backend(0).unwrap();
    assert!(running.check_consistency().unwrap().difference.is_some_and(|d| d.backend() == 0));
    std::thread::sleep(Duration::from_millis(1500));
    let rejoin = running.rejoin_backend(0).expect("rejoin");
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let (acked, failed) = writer.join().unwrap();
    eprintln!("writer: {} acknowledged, {failed} failed; rejoin {rejoin:?}", acked.len());
    assert!(acked.len() > 20, "the writer made too little progress: {}", acked.len());
    let report = running.check_consistency().unwrap();
    assert!(report.is_identical(), "{report}");
    for b in 0..2 {
        let ids = direct(b, "SELECT id FROM items WHERE name LIKE 'w%'").unwrap();
        let missing: Vec<&String> = acked.iter().filter(|id| !ids.contains(id.as_str())).collect();
        assert!(missing.is_empty(), "backend {b} lacks acknowledged writes {missing:?}");
    }
    let status = running.status();
    for (i, view) in &status.pgpools {
        let nodes = view.as_ref().unwrap();
        assert!(nodes.iter().all(|n| n.status == "up"), "pgpool {i}: {nodes:?}");
    }

    // A killed pgpool shows as down, and as not answering; the other one still serves.
    running.kill(Kind::Pgpool, 1, infra::signal::SIGKILL).unwrap();
    let status = running.status();
    assert!(!status.is_up(Kind::Pgpool, 1), "{status}");
    assert!(status.is_up(Kind::Pgpool, 0), "{status}");
    assert!(status.pgpools[1].1.is_err(), "{status}");
    assert!(status.to_string().contains("pgpool 1 does not answer"), "{status}");
    assert_eq!(via(0, "SELECT count(*) FROM items WHERE name = 'item 1'").unwrap().trim(), "1");

    let procs = running.processes().to_vec();
    running.down().unwrap();
    assert!(any_alive(&procs).is_empty(), "still alive after down: {:?}", any_alive(&procs));
}
