//! The matrix files of the three stages: they parse, each configuration becomes the topology
//! its counts say (with the stores its stage uses and no others), and the runner refuses what it
//! cannot run before starting anything.

use bench::matrix::runner::{check_binaries, store_settings, topology_for};
use bench::matrix::{MatrixFile, BUILT_STAGE};
use infra::Kind;
use settings::{HttpSettings, PostgresSettings, RedisSettings, WebSettings};
use std::path::{Path, PathBuf};

fn matrix(name: &str) -> (PathBuf, MatrixFile) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("matrix").join(name);
    let m = MatrixFile::load(&path).unwrap();
    (path, m)
}

#[test]
fn every_configuration_of_every_stage_becomes_its_topology() {
    for (file, stage) in
        [("quick.toml", "pg"), ("pg.toml", "pg"), ("redis.toml", "redis"), ("cassandra.toml", "cassandra")]
    {
        let (_, m) = matrix(file);
        assert_eq!(m.stage.name(), stage);
        for c in &m.configs {
            let t = topology_for(&m, *c).unwrap_or_else(|e| panic!("{file} {}: {e:#}", c.label()));
            let got = [Kind::Postgres, Kind::Pgpool, Kind::Web, Kind::Nginx, Kind::Redis, Kind::Cassandra]
                .map(|k| t.count(k));
            assert_eq!(got, [c.postgres, c.pgpool, c.web, c.nginx, c.redis, c.cassandra], "{file} {}", c.label());
            assert_eq!(t.count(Kind::Sentinel), if c.redis > 0 { 3 } else { 0 }, "{file}: Sentinels come with Redis");
            // Observed ([run] observe by default): Prometheus and an exporter per server.
            assert_eq!(t.count(Kind::Prometheus), 1, "{file}");
            assert_eq!(t.count(Kind::NginxExporter), c.nginx, "{file}");
            assert_eq!(t.web.binary_or_default(), infra::beside_program(&format!("shopbench-{stage}")), "{file}");
            t.check_local().unwrap();
        }
    }
}

#[test]
fn the_store_counts_vary_and_ports_stay_in_the_bench_range() {
    let (_, redis) = matrix("redis.toml");
    let replicas: std::collections::BTreeSet<usize> = redis.configs.iter().map(|c| c.redis).collect();
    assert_eq!(replicas.into_iter().collect::<Vec<_>>(), [2, 3], "1 master + 1 or 2 replicas");
    let (_, cas) = matrix("cassandra.toml");
    let nodes: std::collections::BTreeSet<usize> = cas.configs.iter().map(|c| c.cassandra).collect();
    assert_eq!(nodes.into_iter().collect::<Vec<_>>(), [1, 3]);
    let widest = redis.configs.iter().max_by_key(|c| c.redis).unwrap();
    let t = topology_for(&redis, *widest).unwrap();
    for kind in [Kind::Redis, Kind::Sentinel, Kind::Postgres, Kind::Pgpool] {
        for i in 0..t.count(kind) {
            let (_, port) = t.endpoint(kind, i);
            assert!((19800..=19999).contains(&port), "{kind} {i} on {port}");
        }
    }
    assert_eq!(t.endpoint(Kind::Redis, 0).1, 19900);
    assert_eq!(t.endpoint(Kind::Sentinel, 0).1, 19950);
    // Each file's closed-loop runs fit its time budget (12-15 minutes with start-up and the
    // floor); the capacity steps come on top, at most 14 steps of 15 s per configuration.
    for m in [&redis, &cas] {
        let capacity = m.capacity.planned_secs();
        let load_secs = (m.planned_secs_per_config() - capacity) * m.configs.len() as u64;
        assert!((300..=720).contains(&load_secs), "{}: {load_secs} s of load", m.stage);
        assert!(m.capacity.enabled && capacity <= 14 * 15, "{}: {capacity} s of capacity steps", m.stage);
    }
}

#[test]
fn a_web_binary_named_in_the_file_is_kept() {
    let (_, mut m) = matrix("redis.toml");
    let web = m.topology.get_mut("web").and_then(|w| w.as_table_mut()).unwrap();
    web.insert("binary".into(), toml::Value::String("/opt/shopbench-test".into()));
    let t = topology_for(&m, m.configs[0]).unwrap();
    assert_eq!(t.web.binary_or_default(), PathBuf::from("/opt/shopbench-test"));
}

/// A relative web binary in a matrix file is taken from the file's directory: a
/// file (and the binary beside it) in another checkout runs that checkout's binary, not the one
/// of the repository this bench was compiled in, wherever it is run from.
#[test]
fn relative_paths_in_a_matrix_file_are_taken_from_its_directory() {
    let dir = std::env::temp_dir().join(format!("shopbench-anchor-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    let (_, quick) = matrix("quick.toml");
    let binary = dir.join("bin").join(format!("shopbench-{}", quick.stage));
    std::fs::write(&binary, "").unwrap();
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("matrix/quick.toml")).unwrap();
    let text =
        text.replace("[topology.web]\n", &format!("[topology.web]\nbinary = \"bin/shopbench-{}\"\n", quick.stage));
    assert!(text.contains("floor = true"));
    let text = text.replace("floor = true", "floor = false"); // whatever stage this bench was built for
    let file = dir.join("m.toml");
    std::fs::write(&file, text).unwrap();
    let m = MatrixFile::load(&file).unwrap();
    let t = topology_for(&m, m.configs[0]).unwrap();
    assert_eq!(t.web.binary_or_default(), binary);
    // The runner's own check finds it there, not under the compiled-in repository root.
    let found = check_binaries(&m, &file);
    std::fs::remove_dir_all(&dir).unwrap();
    found.unwrap();
}

#[test]
fn a_missing_binary_or_a_floor_of_another_build_is_refused_before_anything_starts() {
    let (path, mut m) = matrix("redis.toml");
    let web = m.topology.get_mut("web").and_then(|w| w.as_table_mut()).unwrap();
    web.insert("binary".into(), toml::Value::String("/nonexistent/shopbench-redis".into()));
    let err = check_binaries(&m, &path).unwrap_err().to_string();
    assert!(err.contains("/nonexistent/shopbench-redis of stage redis is missing"), "{err}");
    assert!(err.contains("cargo build --release -p app --features stage-redis"), "{err}");

    // A binary that exists: only the floor's build is left to check.
    let web = m.topology.get_mut("web").and_then(|w| w.as_table_mut()).unwrap();
    web.insert("binary".into(), toml::Value::String(std::env::current_exe().unwrap().display().to_string()));
    let verdict = check_binaries(&m, &path);
    if BUILT_STAGE == bench::matrix::Stage::Redis {
        verdict.unwrap();
    } else {
        let err = verdict.unwrap_err().to_string();
        assert!(err.contains(&format!("built for stage {BUILT_STAGE}")), "{err}");
        assert!(err.contains("cargo build --release -p bench --features stage-redis"), "{err}");
    }
    m.run.floor = false;
    check_binaries(&m, &path).unwrap();
}

#[test]
fn the_floor_takes_the_web_tiers_store_settings_with_pools_for_the_whole_tier() {
    // What infra recorded for web 0 of a two-instance tier.
    let web0 = WebSettings {
        http: HttpSettings { host: "127.0.0.1".into(), port: 18200 },
        admin_token: "t".into(),
        postgres: PostgresSettings {
            endpoints: vec!["127.0.0.1:19820".into(), "127.0.0.1:19821".into()],
            pool_size: 4,
            password: None,
        },
        redis: Some(RedisSettings::new(vec!["127.0.0.1:19950".into(), "127.0.0.1:19951".into()], "shopbench")),
        cassandra: None,
    };
    let env = store_settings(&web0, 2);
    let pairs: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    assert_eq!(
        pairs,
        [
            "SHOPBENCH__POSTGRES__ENDPOINTS=127.0.0.1:19820,127.0.0.1:19821",
            "SHOPBENCH__POSTGRES__POOL_SIZE=8",
            "SHOPBENCH__REDIS__MASTER_NAME=shopbench",
            "SHOPBENCH__REDIS__SENTINELS=127.0.0.1:19950,127.0.0.1:19951",
        ]
    );
    // The app reads them as the same stores.
    let s = app::Settings::from_sources(None, Some(env)).unwrap();
    let pg = s.postgres.unwrap();
    assert_eq!((pg.endpoints, pg.pool_size), (web0.postgres.endpoints, 8));
    assert!(s.redis.is_some());
}
