//! What can be checked without servers: the command line, medians and ratios, the pgbench
//! script, the markdown drawn from a fixed run.

use super::args::{Build, WritesArgs};
use super::results::*;
use super::{markdown, pgbench};
use crate::measure::machine::Machine;
use clap::Parser;
use std::collections::BTreeMap;
use std::time::SystemTime;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: WritesArgs,
}

fn parse(line: &[&str]) -> Result<WritesArgs, clap::Error> {
    Cli::try_parse_from(std::iter::once("writes").chain(line.iter().copied())).map(|c| c.args)
}

#[test]
fn arguments() {
    let a = parse(&["--build", "old=/tmp/old/shopbench", "--build", "new=target/release/shopbench"]).unwrap();
    assert_eq!(a.builds[0], Build { name: "old".into(), binary: "/tmp/old/shopbench".into() });
    assert_eq!(a.builds[1].name, "new");
    assert_eq!((a.concurrency, a.warmup_secs, a.secs, a.repeats, a.products), (8, 3, 10, 3, 50));
    a.check().unwrap();
    let a = parse(&[
        "--build",
        "a=x",
        "--build",
        "b=y",
        "--concurrency",
        "4",
        "--secs",
        "1",
        "--repeats",
        "1",
        "--warmup-secs",
        "0",
        "--json",
        "/tmp/w.json",
    ])
    .unwrap();
    assert_eq!((a.concurrency, a.secs, a.repeats, a.warmup_secs), (4, 1, 1, 0));
    assert_eq!(a.json, std::path::PathBuf::from("/tmp/w.json"));

    assert!(parse(&["--build", "noequals"]).is_err());
    assert!(parse(&["--build", "=path"]).is_err());
    assert!(parse(&["--build", "a b=path"]).is_err());
    let one = parse(&["--build", "a=x"]).unwrap();
    assert!(one.check().unwrap_err().to_string().contains("at least twice"));
    let twice = parse(&["--build", "a=x", "--build", "a=y"]).unwrap();
    assert!(twice.check().unwrap_err().to_string().contains("given twice"));
    let reserved = parse(&["--build", "a=x", "--build", "pgbench=y"]).unwrap();
    assert!(reserved.check().is_err());
    let many = parse(&["--build", "a=x", "--build", "b=y", "--products", "101"]).unwrap();
    assert!(many.check().unwrap_err().to_string().contains("at most 100"));
    let missing = parse(&["--build", "a=/no/such/binary", "--build", "b=y"]).unwrap();
    assert!(missing.resolved_builds().unwrap_err().to_string().contains("no such binary"));
}

#[test]
fn medians_and_ratios() {
    assert_eq!(median([3.0, 1.0, 2.0]), Some(2.0));
    assert_eq!(median([4.0, 1.0, 2.0, 3.0]), Some(2.5));
    assert_eq!(median([f64::NAN, 5.0]), Some(5.0));
    assert_eq!(median(Vec::<f64>::new()), None);
    let run = fixed_run();
    let m = &run.medians;
    assert_eq!(m.iter().map(|m| m.side.as_str()).collect::<Vec<_>>(), ["old", "new", "pgbench"]);
    assert_eq!(m[0].adds_per_sec, 900.0);
    assert_eq!(m[1].adds_per_sec, 1800.0);
    assert_eq!(m[1].failures, 3, "failures are summed");
    assert!((m[0].per_add.db_ms - 1.2).abs() < 1e-9, "{:?}", m[0].per_add);
    assert_eq!(m[2].per_add.web_ms, None);
    let r = &run.ratios;
    assert_eq!(r[0].what, "new / old adds/s");
    assert!((r[0].value - 2.0).abs() < 1e-9);
    assert_eq!(r[1].what, "old DB CPU per add vs pgbench");
    assert!((r[1].value - 1.5).abs() < 1e-9, "{r:?}");
    assert!((r[2].value - 0.75).abs() < 1e-9, "{r:?}");
}

#[test]
fn per_add_cpu() {
    let cpu = TurnCpu { postgres_s: 6.0, pgpool_s: 2.0, web_s: Some(3.0), ..TurnCpu::default() };
    let p = PerAdd::of(&cpu, 4000);
    assert_eq!((p.db_ms, p.postgres_ms, p.pgpool_ms, p.web_ms), (2.0, 1.5, 0.5, Some(0.75)));
    assert!(PerAdd::of(&cpu, 0).db_ms.is_nan());
}

#[test]
fn markdown_has_the_numbers() {
    let md = markdown::render(&fixed_run());
    for needle in [
        "| old | 900 | 1.200 | 0.800 | 0.400 | 0.300 | 0 | 1.90 |",
        "| new | 1800 | 0.600 |",
        "| pgbench | 1500 | 0.800 |",
        "**new / old adds/s: 2.00x**",
        "**old DB CPU per add vs pgbench: 1.50x**",
        "**new DB CPU per add vs pgbench: 0.75x**",
        "new #2: 3 x status 503 unavailable",
        "old: identical: 2 backends",
        "`shopbench-bench writes --build old=a --build new=b`",
        "in two `\\startpipeline` round trips",
    ] {
        assert!(md.contains(needle), "{needle:?} missing in:\n{md}");
    }
    // Every turn has a row.
    assert_eq!(md.lines().filter(|l| l.starts_with("| 1 |") || l.starts_with("| 2 |")).count(), 6);
    let json = serde_json::to_string(&fixed_run()).unwrap();
    assert_eq!(serde_json::from_str::<WritesRun>(&json).unwrap(), fixed_run());
}

#[test]
fn pgbench_script_runs_the_adapters_statements() {
    let s = pgbench::script(3, true);
    assert_eq!(s.matches("\\startpipeline").count(), 2);
    assert_eq!(s.matches("\\endpipeline").count(), 2);
    assert!(s.contains("SELECT 1 FROM users WHERE id = :uid FOR NO KEY UPDATE;\n"), "{s}");
    assert!(s.contains("SELECT product_id, quantity FROM cart_items WHERE user_id = :uid ORDER BY product_id;\n"));
    assert!(
        s.contains("VALUES (:uid, :p2, 1, (:addp || lpad(to_hex(:seq::bigint), 12, '0'))::uuid) ON CONFLICT"),
        "{s}"
    );
    assert!(s.contains("add_id < :bound) INSERT INTO cart_adds"), "{s}");
    assert!(!s.contains('$'), "every parameter bound: {s}");
    assert_eq!(s.matches("INSERT INTO cart_items").count(), 3);
    assert!(s.contains("\\if :k = 0\n") && s.contains("\\elif :k = 1\n") && s.contains("\\else\n"));
    // The lookup finds the user the bench signed up for the client.
    assert!(s.contains("'writes-pgbench-r' || :rep || '-c' || :client_id || '@example.com'"));
    assert_eq!(pgbench::email(2, 5), "writes-pgbench-r2-c5@example.com");
    let plain = pgbench::script(1, false);
    assert!(!plain.contains("pipeline") && !plain.contains("\\if :k"), "{plain}");
}

#[test]
fn add_ids_are_uuid_v7_above_the_bound() {
    let now = SystemTime::now();
    let id = format!("{}{:012x}", pgbench::add_id_prefix(now, 0xabc), 77);
    let u = uuid::Uuid::parse_str(&id).unwrap();
    assert_eq!(u.get_version_num(), 7);
    let bound = uuid::Uuid::parse_str(&pgbench::expiry_bound(now)).unwrap();
    assert!(u > bound);
    let (secs, _) = bound.get_timestamp().unwrap().to_unix();
    let age = now.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() - secs;
    assert!((899..=900).contains(&age), "{age}");
    assert!(uuid::Uuid::now_v7() > bound);
}

#[test]
fn reads_pgbench_output() {
    let out = "transaction type: s.sql\nnumber of transactions actually processed: 625\n\
               number of failed transactions: 2 (0.320%)\nlatency average = 19.465 ms\n\
               tps = 205.499833 (without initial connection time)\n";
    assert_eq!(pgbench::parse(out), Some(pgbench::PgbenchOut { processed: 625, failed: 2, tps: 205.499833 }));
    assert_eq!(pgbench::parse("nothing"), None);
}

#[test]
fn topology_of_a_side() {
    let t = super::topo::topology("old", 16400, std::path::Path::new("/tmp/x/shopbench")).unwrap();
    use infra::Kind;
    assert_eq!([Kind::Postgres, Kind::Pgpool, Kind::Web, Kind::Nginx].map(|k| t.count(k)), [2, 1, 1, 0]);
    assert_eq!(t.endpoint(Kind::Postgres, 1).1, 16401);
    assert_eq!(t.endpoint(Kind::Pgpool, 0).1, 16405);
    assert_eq!(t.pgpool.pcp_port(0), 16406);
    assert_eq!(t.endpoint(Kind::Web, 0).1, 16410);
    assert_eq!(t.name, "writes-old");
    assert!(t.prometheus.is_none());
}

fn turn(rep: usize, side: &str, rate: f64, db: (f64, f64), web: Option<f64>, failures: u64) -> Turn {
    let adds = (rate * 10.0) as u64;
    let cpu = TurnCpu {
        postgres_s: db.0 * adds as f64 / 1000.0,
        pgpool_s: db.1 * adds as f64 / 1000.0,
        web_s: web.map(|w| w * adds as f64 / 1000.0),
        client_s: 1.0,
        machine_busy_cores: Some(1.9),
        other_cores: Some(0.3),
    };
    let mut reasons = BTreeMap::new();
    if failures > 0 {
        reasons.insert("status 503 unavailable".to_string(), failures);
    }
    Turn {
        repeat: rep,
        side: side.into(),
        window_secs: 10.0,
        adds,
        failures,
        failure_reasons: reasons,
        adds_per_sec: rate,
        per_add: PerAdd::of(&cpu, adds),
        cpu,
    }
}

fn fixed_run() -> WritesRun {
    let side = |name: &str, kind: SideKind| Side { name: name.into(), kind, run_dir: format!("run/writes/x/{name}") };
    let sides = vec![
        side("old", SideKind::Web { binary: "/tmp/old/shopbench".into() }),
        side("new", SideKind::Web { binary: "target/release/shopbench".into() }),
        side("pgbench", SideKind::Pgbench { script: "run/writes/x/pgbench.sql".into(), pipelined: true }),
    ];
    let turns = vec![
        turn(0, "old", 800.0, (0.9, 0.5), Some(0.4), 0),
        turn(0, "new", 1700.0, (0.5, 0.2), Some(0.2), 0),
        turn(0, "pgbench", 1400.0, (0.6, 0.2), None, 0),
        turn(1, "old", 900.0, (0.8, 0.4), Some(0.3), 0),
        turn(1, "new", 1800.0, (0.4, 0.2), Some(0.2), 3),
        turn(1, "pgbench", 1500.0, (0.6, 0.2), None, 0),
        turn(2, "old", 1000.0, (0.7, 0.3), Some(0.2), 0),
        turn(2, "new", 1900.0, (0.3, 0.2), Some(0.1), 0),
        turn(2, "pgbench", 1600.0, (0.6, 0.2), None, 0),
    ];
    let medians = medians(&sides, &turns);
    let ratios = ratios(&medians, "pgbench");
    WritesRun {
        command: "shopbench-bench writes --build old=a --build new=b".into(),
        started: "2026-12-06 10:00".into(),
        machine: Machine {
            cpu_model: "test cpu".into(),
            cores: 2,
            memory_gib: 4.0,
            os: "Debian GNU/Linux 12".into(),
            kernel: "6.1".into(),
        },
        settings: Settings { concurrency: 8, warmup_secs: 3, secs: 10, repeats: 3, products: 50, seed: 1 },
        sides,
        turns,
        medians,
        ratios,
        consistency: vec![Consistency {
            side: "old".into(),
            identical: true,
            summary: "identical: 2 backends, 8 tables, 100 rows in all".into(),
        }],
        notes: vec![],
    }
}
