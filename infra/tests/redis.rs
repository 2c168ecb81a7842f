//! Redis with replicas and Sentinel on real servers (ports 15620-15699): replication, read-only
//! replicas, a promotion after the master is killed, restarts, and `down` leaving nothing.

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::{any_alive, topology, RunDir};
use infra::redis::{info, is_read_only, query};
use infra::{signal, Kind};

/// Polls `probe` every 100 ms until it returns Ok(true); panics after `timeout` with the last error.
fn wait_for(what: &str, timeout: Duration, mut probe: impl FnMut() -> anyhow::Result<bool>) -> Duration {
    let t0 = Instant::now();
    let mut last = String::from("not yet");
    while t0.elapsed() < timeout {
        match probe() {
            Ok(true) => return t0.elapsed(),
            Ok(false) => {}
            Err(e) => last = format!("{e:#}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what}: not after {timeout:?} (last: {last})");
}

fn get(addr: &str, key: &str) -> anyhow::Result<Option<String>> {
    query(addr, &["GET", key])
}

/// SET on `addr`: true when stored, false when refused as a write to a read-only replica.
fn set(addr: &str, key: &str, value: &str) -> bool {
    match query::<String>(addr, &["SET", key, value]) {
        Ok(reply) => reply == "OK" || panic!("SET on {addr} answered {reply:?}"),
        Err(e) if is_read_only(&e) => false,
        Err(e) => panic!("SET on {addr} did not reach the server: {e:#}"),
    }
}

/// Is `addr` a replica of `master` with its link up?
fn follows(addr: &str, master: &str) -> anyhow::Result<bool> {
    let i = info(addr, "replication")?;
    let field = |k: &str| i.get(k).cloned().unwrap_or_default();
    let at = format!("{}:{}", field("master_host"), field("master_port"));
    Ok(field("role") == "slave" && at == master && field("master_link_status") == "up")
}

#[test]
fn replicas_follow_the_master_and_sentinels_promote_one_when_it_dies() {
    let dir = RunDir::new("infra-test-redis");
    let t = topology(
        "name = \"itest-redis\"\n[redis]\ncount = 3\nbase_port = 15620\n[sentinel]\ncount = 3\nbase_port = 15630\n",
    );
    let started = Instant::now();
    let mut running = t.up(dir.path()).expect("up");
    eprintln!("up with 1 master, 2 replicas, 3 sentinels in {:.1?}", started.elapsed());
    let redis = running.redis_endpoints();
    assert_eq!(redis, ["127.0.0.1:15620", "127.0.0.1:15621", "127.0.0.1:15622"]);
    assert_eq!(running.sentinel_endpoints(), ["127.0.0.1:15630", "127.0.0.1:15631", "127.0.0.1:15632"]);
    assert_eq!(running.redis_master().unwrap(), redis[0], "every sentinel names instance 0");
    // up returned only when both replicas had their link up and every sentinel saw everyone.
    for replica in &redis[1..] {
        assert!(follows(replica, &redis[0]).unwrap(), "{replica} does not follow the master");
    }
    let status = running.status().to_string();
    assert!(status.contains("redis 0 127.0.0.1:15620: master with 2 connected replica(s)"), "{status}");
    assert!(status.contains("sentinel 2 127.0.0.1:15632: names 127.0.0.1:15620 the master"), "{status}");

    // A write on the master reaches both replicas (asynchronously), which refuse writes.
    assert!(set(&redis[0], "cart:1", "apples"));
    for replica in &redis[1..] {
        wait_for(&format!("cart:1 on {replica}"), Duration::from_secs(5), || {
            Ok(get(replica, "cart:1")?.as_deref() == Some("apples"))
        });
        assert!(!set(replica, "cart:2", "pears"), "replica {replica} accepted a write");
        assert_eq!(get(replica, "cart:2").unwrap(), None);
    }

    // SIGKILL the master: the sentinels agree that it is down and promote a replica.
    let killed_at = Instant::now();
    running.kill(Kind::Redis, 0, signal::SIGKILL).unwrap();
    let mut promoted = String::new();
    let took = wait_for("a promoted replica", Duration::from_secs(30), || {
        let m = running.redis_master()?;
        if m == redis[0] {
            return Ok(false);
        }
        promoted = m;
        Ok(info(&promoted, "replication")?["role"] == "master")
    });
    eprintln!(
        "promotion: {promoted} is the master {:.1?} after the SIGKILL (down-after-milliseconds {})",
        killed_at.elapsed(),
        running.topology().sentinel.down_after_ms
    );
    assert!(took < Duration::from_secs(30));
    let other = redis[1..].iter().find(|r| **r != promoted).unwrap().clone();
    let follow =
        wait_for("the other replica following the new master", Duration::from_secs(20), || follows(&other, &promoted));
    eprintln!("promotion: {other} follows {promoted} {:.1?} after the promotion", follow);
    assert_eq!(get(&promoted, "cart:1").unwrap().as_deref(), Some("apples"), "the promoted replica kept the data");
    assert!(set(&promoted, "cart:3", "plums"), "the new master takes writes");
    wait_for("cart:3 on the other replica", Duration::from_secs(5), || {
        Ok(get(&other, "cart:3")?.as_deref() == Some("plums"))
    });

    // The killed master comes back as a replica of the new one, with all the data.
    let t0 = Instant::now();
    running.restart(Kind::Redis, 0).expect("restart redis 0");
    eprintln!("restart: redis 0 replica of {promoted} and synced in {:.1?}", t0.elapsed());
    assert!(follows(&redis[0], &promoted).unwrap(), "restart returned before redis 0 followed {promoted}");
    assert_eq!(get(&redis[0], "cart:1").unwrap().as_deref(), Some("apples"));
    assert_eq!(get(&redis[0], "cart:3").unwrap().as_deref(), Some("plums"));
    assert!(!set(&redis[0], "cart:4", "figs"), "the restarted old master is a read-only replica");
    assert_eq!(running.redis_master().unwrap(), promoted, "the restart did not move the master");

    // A killed sentinel comes back from its rewritten config, naming the new master.
    running.kill(Kind::Sentinel, 1, signal::SIGKILL).unwrap();
    running.restart(Kind::Sentinel, 1).expect("restart sentinel 1");
    let name = running.redis_master_name().to_string();
    assert_eq!(infra::redis::master_addr("127.0.0.1:15631", &name).unwrap(), promoted);
    let err = running.restart(Kind::Sentinel, 1).unwrap_err().to_string();
    assert!(err.contains("kill or stop it"), "a running instance is not restarted: {err}");

    // A master restarted at once after its death waits for the sentinels' failover and comes
    // back as a replica: started first as an empty master, it would wipe the data.
    let index = running.redis_master_index().unwrap();
    running.kill(Kind::Redis, index, signal::SIGKILL).unwrap();
    let t0 = Instant::now();
    running.restart(Kind::Redis, index).expect("restart the killed master at once");
    let second = running.redis_master().unwrap();
    eprintln!("restart at once: {} back as a replica of {second} in {:.1?}", redis[index], t0.elapsed());
    assert_ne!(second, redis[index]);
    assert!(follows(&redis[index], &second).unwrap());
    for key in ["cart:1", "cart:3"] {
        assert!(get(&second, key).unwrap().is_some(), "{key} lost in the second failover");
        assert!(get(&redis[index], key).unwrap().is_some(), "{key} missing on the restarted instance");
    }

    // down stops every process of the run, by pid, and frees every port.
    let procs = running.processes().to_vec();
    assert_eq!(procs.len(), 6);
    running.down().expect("down");
    assert!(any_alive(&procs).is_empty(), "left running: {:?}", any_alive(&procs));
    for port in (15620..15623).chain(15630..15633) {
        TcpListener::bind(("127.0.0.1", port)).unwrap_or_else(|e| panic!("port {port} still taken: {e}"));
    }
}

#[test]
fn without_sentinels_a_restarted_replica_follows_instance_0() {
    let dir = RunDir::new("infra-test-redis-plain");
    let t = topology("name = \"itest-redis-plain\"\n[redis]\ncount = 2\nbase_port = 15640\n");
    let mut running = t.up(dir.path()).expect("up");
    let redis = running.redis_endpoints();
    assert_eq!(running.redis_master().unwrap(), redis[0]);
    assert!(set(&redis[0], "k", "v1"));
    wait_for("k on the replica", Duration::from_secs(5), || Ok(get(&redis[1], "k")?.as_deref() == Some("v1")));

    running.kill(Kind::Redis, 1, signal::SIGKILL).unwrap();
    // Written while the replica is down: it must come with the resync.
    assert!(set(&redis[0], "k", "v2"));
    running.restart(Kind::Redis, 1).expect("restart redis 1");
    assert!(follows(&redis[1], &redis[0]).unwrap());
    assert_eq!(get(&redis[1], "k").unwrap().as_deref(), Some("v2"));

    let procs = running.processes().to_vec();
    drop(running);
    assert!(any_alive(&procs).is_empty(), "Drop left {:?}", any_alive(&procs));
}
