//! `shopbench-bench compare` on small SYNTHETIC summaries (made-up numbers, written to temp dirs
//! for these tests only): which configurations meet, the table rows, the reading, the files.

use bench::report::compare::{self, StageResults};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// One operation of a synthetic configuration: mean and floor in ms, one value per repeat; its
/// median is the lowest repeat's mean (so that the two columns differ).
fn op(name: &str, means: &[f64], floors: &[f64]) -> Value {
    let spread = |v: &[f64]| {
        json!({"min": v.iter().copied().fold(f64::INFINITY, f64::min),
               "max": v.iter().copied().fold(f64::NEG_INFINITY, f64::max), "stddev": 0.0, "n": v.len()})
    };
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    json!({
        "op": name, "mean_ms": mean(means), "p50_ms": means.iter().copied().fold(f64::INFINITY, f64::min), "p95_ms": null, "p99_ms": null,
        "rps": 10.0, "requests": 100, "failures": 0,
        "mean_ms_spread": spread(means),
        "floor_mean_ms": if floors.is_empty() { Value::Null } else { json!(mean(floors)) },
        "floor_mean_ms_spread": if floors.is_empty() { Value::Null } else { spread(floors) },
    })
}

/// A configuration: counts [postgres, pgpool, web, nginx, redis, cassandra] and its operations.
fn config(counts: [usize; 6], ops: Vec<Value>) -> Value {
    let c = bench::matrix::Counts {
        postgres: counts[0],
        pgpool: counts[1],
        web: counts[2],
        nginx: counts[3],
        redis: counts[4],
        cassandra: counts[5],
    };
    let repeats = ops[0]["mean_ms_spread"]["n"].clone();
    let class = json!({"mean_ms": null, "mean_ms_spread": null, "rps": 0.0, "floor_mean_ms": null});
    let mut v = json!({
        "label": c.label(), "postgres": c.postgres, "pgpool": c.pgpool, "web": c.web, "nginx": c.nginx,
        "repeats": repeats, "operations": ops, "reads": class, "writes": class, "requests": 0, "failures": 0,
        "http_overhead_ms": null, "web_rss_peak_mib": [], "goose_requests": 0, "goose_failures": 0,
        "host_moves": 0, "cpu": null, "get_product_vs_pgbench": null, "errors": [],
    });
    if c.redis > 0 {
        v["redis"] = json!(c.redis);
    }
    if c.cassandra > 0 {
        v["cassandra"] = json!(c.cassandra);
    }
    v
}

fn summary(stage: &str, configs: Vec<Value>) -> Value {
    json!({
        "stage": stage, "generated_at": "2026-01-01T00:00:00Z", "command": "synthetic",
        "machine": {"cpu_model": "Test CPU", "cores": 2, "memory_gib": 24.0, "os": "Debian", "kernel": "6.1"},
        "raw_results": "none (synthetic test data)",
        "method": {"users": 16, "warmup_secs": 5, "secs": 20, "repeats": 2, "think_ms": [20, 80],
                   "shopper_weight": 15, "merchant_weight": 1, "products": 500, "categories": 10, "timing": "synthetic"},
        "configurations": configs,
        "get_product_vs_pgbench": {"target_ratio": 0.5, "concurrency": null, "min_ratio": null, "max_ratio": null,
                                   "per_configuration": []},
        "targets": [],
    })
}

const CART: &str = "GET /users/{user_id}/cart";
const ADD: &str = "POST /users/{user_id}/cart/items";
const PRODUCT: &str = "GET /products/{product_id}";

fn pg() -> Value {
    summary(
        "pg",
        vec![
            config([1, 1, 1, 1, 0, 0], vec![op(CART, &[3.0, 3.0], &[2.0]), op(PRODUCT, &[1.0, 1.0], &[0.5])]),
            config(
                [2, 2, 2, 2, 0, 0],
                vec![
                    op(CART, &[1.9, 2.1], &[1.0, 1.0]),
                    op(ADD, &[4.0, 4.0], &[3.0, 3.0]),
                    op(PRODUCT, &[0.8, 0.8], &[0.4, 0.4]),
                ],
            ),
            config([3, 1, 1, 1, 0, 0], vec![op(CART, &[5.0, 5.0], &[])]),
        ],
    )
}

fn redis() -> Value {
    summary(
        "redis",
        vec![
            config([1, 1, 1, 1, 2, 0], vec![op(CART, &[2.0, 2.0], &[1.0])]),
            config(
                [2, 2, 2, 2, 2, 0],
                vec![
                    op(CART, &[0.9, 1.1], &[0.5, 0.5]),
                    op(ADD, &[5.0, 5.0], &[2.1, 2.1]),
                    op(PRODUCT, &[0.8, 0.8], &[]),
                ],
            ),
            config([2, 2, 2, 2, 3, 0], vec![op(CART, &[0.8, 0.8], &[0.4, 0.4]), op(ADD, &[3.0, 3.0], &[1.5, 1.5])]),
        ],
    )
}

fn cassandra() -> Value {
    summary(
        "cassandra",
        vec![config(
            [2, 2, 2, 2, 3, 3],
            vec![op(CART, &[1.0, 1.0], &[0.5, 0.5]), op(PRODUCT, &[2.0, 2.0], &[1.6, 1.6])],
        )],
    )
}

/// Writes each synthetic summary into its own folder under a fresh temp dir.
fn folders(name: &str, summaries: &[Value]) -> (PathBuf, Vec<PathBuf>) {
    let root = std::env::temp_dir().join(format!("bench-compare-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let dirs = summaries
        .iter()
        .map(|s| {
            let dir = root.join(s["stage"].as_str().unwrap());
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("summary.json"), serde_json::to_string_pretty(s).unwrap()).unwrap();
            dir
        })
        .collect();
    (root, dirs)
}

fn load(dirs: &[PathBuf]) -> Vec<StageResults> {
    dirs.iter().map(|d| StageResults::load(d).unwrap()).collect()
}

#[test]
fn carts_meet_at_the_largest_shared_base_with_every_redis_count_on_it() {
    let (root, dirs) = folders("carts", &[pg(), redis()]);
    let comparisons = compare::build(&load(&dirs), None).unwrap();
    assert_eq!(comparisons.len(), 1, "no Cassandra stage, no catalogue comparison");
    let c = &comparisons[0];
    assert_eq!(c.id, "carts");
    assert_eq!(c.base, "pg2 pool2 web2 nginx2", "pg3 pool1... is larger but the redis stage lacks it");
    let sides: Vec<String> = c.sides.iter().map(|s| s.label()).collect();
    assert_eq!(
        sides,
        [
            "PostgreSQL: pg2 pool2 web2 nginx2",
            "Redis: pg2 pool2 web2 nginx2 redis2",
            "Redis: pg2 pool2 web2 nginx2 redis3"
        ]
    );
    let ops: Vec<&str> = c.rows.iter().map(|r| r.op.as_str()).collect();
    assert_eq!(ops, [CART, ADD], "cart operations that ran; GET product is not one");
    let table = compare::table(c);
    assert!(
        table.contains("| `GET /users/{user_id}/cart` | 2.00 | 1.90 | 1.00 | 1.00 | 0.90 | 0.50 | -50% (p50 -53%) | 0.80 | 0.80 | 0.40 | -60% (p50 -58%) |"),
        "{table}"
    );
    assert!(
        table
            .contains("| `POST /users/{user_id}/cart/items` | 4.00 | 4.00 | 3.00 | 5.00 | 5.00 | 2.10 | +25% (p50 +25%) | 3.00 | 3.00 | 1.50 | -25% (p50 -25%) |"),
        "{table}"
    );
    assert!(
        table.starts_with("| operation | PostgreSQL: pg2 pool2 web2 nginx2 mean ms | p50 ms | floor ms |"),
        "{table}"
    );
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn the_reading_weighs_by_the_baseline_mix_and_names_slower_operations() {
    let (root, dirs) = folders("reading", &[pg(), redis()]);
    let stages = load(&dirs);
    let lines = compare::reading(&compare::build(&stages, None).unwrap(), &stages);
    // Equal request counts: PostgreSQL (2.0 + 4.0) / 2 = 3.00 against Redis redis2 (1.0 + 5.0) / 2 = 3.00.
    let first = &lines[0];
    assert!(
        first.starts_with("Cart operations at pg2 pool2 web2 nginx2: PostgreSQL (pg2 pool2 web2 nginx2) 3.00 ms"),
        "{first}"
    );
    assert!(first.contains("3.00 ms per operation (+0%)"), "{first}");
    assert!(first.contains("at the storage floor 2.00 → 1.30 ms (-35%)"), "{first}");
    assert!(
        lines.iter().any(|l| l == "Largest change: `GET /users/{user_id}/cart` 2.00 → 1.00 ms (-50%)."),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(
            |l| l == "Slower with Redis (pg2 pool2 web2 nginx2 redis2): `POST /users/{user_id}/cart/items` (+25%)."
        ),
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l.starts_with("2 of 2 operations differ beyond the spread")), "{lines:?}");
    assert!(lines.last().unwrap().contains("same machine (2 cores"), "{lines:?}");
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn three_stages_give_both_charts_and_the_catalogue_compares_catalogue_operations_only() {
    let (root, dirs) = folders("three", &[pg(), redis(), cassandra()]);
    let out = root.join("compare");
    let comparisons = compare::write(&dirs, &out, None, "shopbench-bench compare (test)").unwrap();
    let ids: Vec<&str> = comparisons.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["carts", "catalogue"]);
    let cat = &comparisons[1];
    assert_eq!(cat.title, "Catalogue operations: PostgreSQL (stage pg) vs Cassandra (stage cassandra)");
    assert_eq!(cat.rows.iter().map(|r| r.op.as_str()).collect::<Vec<_>>(), [PRODUCT]);
    assert!(compare::table(cat)
        .contains("| `GET /products/{product_id}` | 0.80 | 0.80 | 0.40 | 2.00 | 2.00 | 1.60 | +150% (p50 +150%) |"));
    for f in ["README.md", "comparison.json", "carts.png", "carts.svg", "catalogue.png", "catalogue.svg"] {
        assert!(out.join(f).metadata().unwrap().len() > 100, "{f}");
    }
    let md = std::fs::read_to_string(out.join("README.md")).unwrap();
    assert!(md.contains("## Cart operations: PostgreSQL (stage pg) vs Redis (stage redis)"), "{md}");
    assert!(md.contains("![catalogue](catalogue.png)"));
    assert!(md.contains("## All operations, per stage"));
    // The largest configuration on the shared base, per stage.
    assert!(md.contains("| pg (pg2 pool2 web2 nginx2) | redis (pg2 pool2 web2 nginx2 redis3) | cassandra (pg2 pool2 web2 nginx2 redis3 cas3) |"), "{md}");
    assert!(md.contains("| `GET /products/{product_id}` | 0.80 (0.40) | – | 2.00 (1.60) |"), "{md}");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(out.join("comparison.json")).unwrap()).unwrap();
    assert_eq!(json["comparisons"][0]["rows"][0]["cells"][1]["mean_ms"], 1.0);
    let svg = std::fs::read_to_string(out.join("carts.svg")).unwrap();
    // Legend: the store and the counts beyond the base in the title.
    assert!(svg.contains("Redis redis3, storage floor") && svg.lines().any(|l| l.trim() == "PostgreSQL"), "{svg}");

    // Two stages later into the same folder: the catalogue chart of the earlier run goes.
    compare::write(&dirs[..2], &out, None, "again").unwrap();
    assert!(!out.join("catalogue.png").exists());
    let md = std::fs::read_to_string(out.join("README.md")).unwrap();
    assert!(md.contains("Not drawn: no Cassandra-stage results were given."), "{md}");
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn a_run_disturbed_by_other_work_is_named() {
    let mut busy = redis();
    // 0.2 cores measured in the topology and the client, 1.9 busy on the machine: 1.7 elsewhere.
    busy["configurations"][2]["cpu"] = json!({"cores": {"web": 0.1, "redis": 0.1}, "machine_busy": 1.9});
    let (root, dirs) = folders("busy", &[pg(), busy]);
    let stages = load(&dirs);
    let lines = compare::reading(&compare::build(&stages, None).unwrap(), &stages);
    let caution = lines.iter().find(|l| l.starts_with("Caution")).expect("a caution");
    assert!(caution.contains("stage redis pg2 pool2 web2 nginx2 redis3 1.70 cores"), "{caution}");
    assert!(!caution.contains("redis2"), "{caution}");
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn postgres_against_cassandra_alone_says_what_the_cart_side_mixes() {
    let (root, dirs) = folders("pg-cas", &[pg(), cassandra()]);
    let comparisons = compare::build(&load(&dirs), None).unwrap();
    assert_eq!(comparisons.len(), 2);
    assert!(comparisons[0].notes[0].contains("the Redis side is the Cassandra stage"), "{:?}", comparisons[0].notes);
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn bases_can_be_chosen_and_bad_input_is_refused() {
    let (root, dirs) = folders("base", &[pg(), redis()]);
    let stages = load(&dirs);
    let small = compare::build(&stages, Some("pg1 pool1 web1 nginx1")).unwrap();
    assert_eq!(small[0].sides.len(), 2);
    assert!(compare::table(&small[0])
        .contains("| `GET /users/{user_id}/cart` | 3.00 | 3.00 | 2.00 | 2.00 | 2.00 | 1.00 | -33% (p50 -33%) |"));
    let err = compare::build(&stages, Some("pg3 pool1 web1 nginx1")).unwrap_err().to_string();
    assert!(err.contains("share the bases [pg1 pool1 web1 nginx1, pg2 pool2 web2 nginx2]"), "{err}");

    let out = root.join("out");
    let one = compare::write(&dirs[..1], &out, None, "x").unwrap_err().to_string();
    assert!(one.contains("give two or three"), "{one}");
    let twice = compare::write(&[dirs[0].clone(), dirs[0].clone()], &out, None, "x").unwrap_err().to_string();
    assert!(twice.contains("stage pg is given twice"), "{twice}");
    let missing = compare::write(&[root.join("nowhere"), dirs[0].clone()], &out, None, "x").unwrap_err();
    assert!(format!("{missing:#}").contains("summary.json"), "{missing:#}");
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn the_committed_postgres_results_read_back() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/results/pg");
    let s = StageResults::load(&dir).unwrap();
    assert_eq!(s.summary.stage, bench::matrix::Stage::Pg);
    assert!(!s.summary.configurations.is_empty());
    assert!(s.summary.configurations.iter().all(|c| c.redis == 0 && c.cassandra == 0));
}
