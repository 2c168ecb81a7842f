//! The Redis stage on 3 emulated hosts, brought up and down from the control machine over SSH
//! (issue 13 items 1 and 6): rhr1 runs the Redis master and a sentinel, rhr2 a replica and a
//! sentinel, rhweb PostgreSQL, pgpool, the web instance, nginx and the third sentinel. A cart
//! added through nginx is in Redis (the master and its replica); Redis and Sentinel refuse a 4th
//! host and the control machine without the run's passwords (and with the wrong one); no
//! password is printed, recorded in state.json or written into a fetched log. Needs root
//! (emulated hosts) and a stage-redis build of the app: `SHOPBENCH_REDIS_WEB_BINARY`, else
//! target/debug/shopbench (`cargo build -p app --features stage-redis`; another build is refused
//! by the app, and `up` fails saying so). Ports 27000-27999.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{app_binary, get, infra, post_json, RunDir};
use infra::hosts::{EmulatedHosts, SshHost};
use infra::redis::{query, query_as};

const T: Duration = Duration::from_secs(30);
const NAMES: [&str; 3] = ["rhr1", "rhr2", "rhweb"];
const NGINX: u16 = 27000;

fn topology(hosts: &[SshHost], web: &Path) -> String {
    let mut toml = format!(
        "name = \"rh-redis\"\n\
         [postgres]\ncount = 1\nbase_port = 27432\nhosts = [\"rhweb\"]\n\
         [pgpool]\ncount = 1\nbase_port = 27500\npcp_base_port = 27600\nhosts = [\"rhweb\"]\n\
         [redis]\ncount = 2\nbase_port = 27379\nhosts = [\"rhr1\", \"rhr2\"]\n\
         [sentinel]\ncount = 3\nbase_port = 27390\nhosts = [\"rhr1\", \"rhr2\", \"rhweb\"]\n\
         [web]\ncount = 1\nbase_port = 27080\nhosts = [\"rhweb\"]\nbinary = \"{}\"\n\
         [nginx]\ncount = 1\nbase_port = {NGINX}\nhosts = [\"rhweb\"]\n",
        web.display()
    );
    toml.push_str(&common::hosts_toml(&NAMES, hosts));
    toml
}

fn web_binary() -> PathBuf {
    std::env::var_os("SHOPBENCH_REDIS_WEB_BINARY").map(PathBuf::from).unwrap_or_else(app_binary)
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// A user, a product and a cart of 2 of it, through nginx; the cart read back. Returns the
/// user's id (the cart's key in Redis) and the product's.
fn cart_through_nginx(nginx: &str, admin_token: &str) -> (String, String) {
    let (code, body) = post_json(nginx, NGINX, "/users", r#"{"email":"rh@example.com","name":"R H"}"#, None);
    assert_eq!(code, 201, "{body}");
    let signed_up = json(&body);
    let (user, token) = (signed_up["user"]["id"].as_str().unwrap(), signed_up["token"].as_str().unwrap());
    let product = r#"{"name":"Rope","description":"Ten metres","category":"tools","price_cents":900}"#;
    let (code, body) = post_json(nginx, NGINX, "/products", product, Some(admin_token));
    assert_eq!(code, 201, "{body}");
    let product = json(&body)["id"].as_str().unwrap().to_string();
    let item = format!(r#"{{"product_id":"{product}","quantity":2}}"#);
    let (code, body) = post_json(nginx, NGINX, &format!("/users/{user}/cart/items"), &item, Some(token));
    assert_eq!(code, 200, "cart add: {body}");
    let (code, body) = get(nginx, NGINX, &format!("/users/{user}/cart"), Some(token));
    assert_eq!(code, 200, "cart read: {body}");
    let items = json(&body)["items"].clone();
    assert_eq!(items, serde_json::json!([{"product_id": product, "quantity": 2}]), "{body}");
    (user.to_string(), product)
}

/// `redis-cli` on `from` (over SSH) against `addr` without a password: its output.
fn redis_cli_on(from: &SshHost, addr: &str, args: &str) -> String {
    let (host, port) = addr.split_once(':').unwrap();
    let line = format!("timeout 10 redis-cli -h {host} -p {port} {args} 2>&1 || true");
    from.run(&line, T).unwrap_or_else(|e| format!("{e:#}"))
}

fn refused(answer: &str) -> bool {
    answer.contains("NOAUTH") || answer.contains("Authentication required") || answer.contains("Connection refused")
}

#[test]
fn the_redis_stage_on_three_hosts_serves_carts_and_lets_nobody_in_without_the_passwords() {
    let t0 = Instant::now();
    let run = RunDir::new("rh-redis-hosts");
    let emulated = EmulatedHosts::create(&run.path().join("hosts"), 4).expect("4 emulated hosts");
    let all = emulated.hosts();
    let (rhweb, outsider) = (&all[2], &all[3]);
    eprintln!("4 emulated hosts in {:.1?}", t0.elapsed());
    let file = run.path().join("rh-redis.toml");
    std::fs::write(&file, topology(&all[..3], &web_binary())).unwrap();
    let run_dir = run.path().join("run");
    let (topo, dir) = (file.to_str().unwrap(), run_dir.to_str().unwrap());

    let t = Instant::now();
    let (ok, out, err) = infra(&["up", "--topology", topo, "--run-dir", dir]);
    let up_took = t.elapsed();
    assert!(ok, "up failed:\n{out}\n{err}");
    eprintln!("up over SSH in {up_took:.1?}:\n{err}");
    let secrets = json(&std::fs::read_to_string(run_dir.join("secrets.json")).unwrap());
    let (redis_pw, sentinel_pw) = (secrets["redis"].as_str().unwrap(), secrets["sentinel"].as_str().unwrap());
    let admin_token = secrets["web_admin"].as_str().expect("the run's admin token");
    let state_json = std::fs::read_to_string(run_dir.join("state.json")).unwrap();
    for (what, text) in [("up's stdout", &out), ("up's stderr", &err), ("state.json", &state_json)] {
        assert!(!text.contains(redis_pw) && !text.contains(sentinel_pw), "a password in {what}");
        assert!(!text.contains(admin_token), "the admin token in {what}");
    }
    let state = json(&state_json);
    let addr_of = |kind: &str, i: u64| -> String {
        let p = state["processes"].as_array().unwrap().iter().find(|p| p["kind"] == kind && p["index"] == i);
        let p = p.unwrap_or_else(|| panic!("no {kind} {i} in state.json"));
        format!("{}:{}", p["host"].as_str().unwrap(), p["port"])
    };
    let (master, replica) = (addr_of("redis", 0), addr_of("redis", 1));
    let sentinels: Vec<String> = (0..3).map(|i| addr_of("sentinel", i)).collect();
    assert_eq!(master, format!("{}:27379", all[0].address));
    assert_eq!(sentinels[2], format!("{}:27392", rhweb.address));

    let (ok, status, err) = infra(&["status", "--topology", topo, "--run-dir", dir]);
    assert!(ok, "status: {status}\n{err}");
    for label in ["redis 0", "redis 1", "sentinel 0", "sentinel 1", "sentinel 2", "web 0", "nginx 0"] {
        assert!(status.lines().any(|l| l.starts_with(label) && l.trim_end().ends_with("up")), "{label}: {status}");
    }
    assert!(status.contains(&format!("redis 0 {master}: master with 1 connected replica(s)")), "{status}");
    assert!(status.contains(&format!("names {master} the master")), "{status}");

    // A cart through nginx lives in Redis: on the master, and (asynchronously) on its replica.
    let (user, product) = cart_through_nginx(&rhweb.address.to_string(), admin_token);
    // The item's field is "quantity:change id".
    let holds = |addr: &str| -> bool {
        let field: Option<String> = query_as(addr, Some(redis_pw), &["HGET", &user, &product]).unwrap();
        field.is_some_and(|f| f.starts_with("2:"))
    };
    assert!(holds(&master), "the cart is not on the master");
    let deadline = Instant::now() + T;
    while !holds(&replica) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(holds(&replica), "the cart did not reach the replica");

    // Without the password, from a host outside the topology and from the control machine:
    // refused. A wrong password, and one server's password on the other kind: refused too.
    let read_cart = format!("HGETALL {user}");
    let servers = [(&master, read_cart.as_str()), (&replica, read_cart.as_str())].into_iter();
    for (addr, read) in servers.chain(sentinels.iter().map(|s| (s, "SENTINEL get-master-addr-by-name shopbench"))) {
        let answer = redis_cli_on(outsider, addr, "PING");
        assert!(refused(&answer), "{addr} from a 4th host without a password: {answer:?}");
        let answer = redis_cli_on(outsider, addr, read);
        assert!(refused(&answer), "{addr}, {read} from a 4th host: {answer:?}");
        let e = format!("{:#}", query::<String>(addr, &["PING"]).expect_err("no password"));
        assert!(refused(&e), "{addr} from the control machine without a password: {e}");
        let wrong = format!("{:#}", query_as::<String>(addr, Some("not-the-password"), &["PING"]).unwrap_err());
        // The redis crate reports the server's WRONGPASS as "Password authentication failed".
        assert!(wrong.contains("WRONGPASS") || wrong.contains("Password authentication failed"), "{addr}: {wrong}");
    }
    assert!(query_as::<String>(&sentinels[0], Some(redis_pw), &["PING"]).is_err(), "redis's password on a sentinel");
    assert!(query_as::<String>(&master, Some(sentinel_pw), &["PING"]).is_err(), "the sentinel's on redis");
    assert_eq!(query_as::<String>(&sentinels[1], Some(sentinel_pw), &["PING"]).unwrap(), "PONG");

    // The rendered configs hold the passwords: readable by their owner alone, never fetched.
    for (h, path) in [(&all[0], "redis0/redis.conf"), (&all[0], "redis0"), (&all[1], "sentinel1")] {
        let path = h.dir.join("shopbench/run").join(path);
        let mode = h.run(&format!("stat -c %a '{}'", path.display()), T).unwrap();
        assert!(["600", "700"].contains(&mode.trim()), "{} is {mode}", path.display());
    }

    let pids: Vec<u32> =
        state["processes"].as_array().unwrap().iter().map(|p| p["pid"].as_u64().unwrap() as u32).collect();
    assert_eq!(pids.len(), 9, "postgres, pgpool, 2 redis, 3 sentinels, web, nginx");
    let t = Instant::now();
    let (ok, out, err) = infra(&["down", "--topology", topo, "--run-dir", dir]);
    let down_took = t.elapsed();
    assert!(ok, "down failed:\n{out}\n{err}");
    eprintln!("down over SSH in {down_took:.1?}:\n{err}");
    for pid in &pids {
        assert!(!infra::all_processes().iter().any(|p| p.pid == *pid && !p.dead), "pid {pid} survived down");
    }
    let remote = run_dir.join("remote");
    for log in ["rhr1/redis0/redis.log", "rhr2/redis1/redis.log", "rhr1/sentinel0/sentinel.log", "rhweb/web0/web.log"] {
        let text = std::fs::read_to_string(remote.join(log)).unwrap_or_else(|e| panic!("{log} not fetched: {e}"));
        assert!(!text.contains(redis_pw) && !text.contains(sentinel_pw), "a password in {log}");
    }
    let sentinel_log = std::fs::read_to_string(remote.join("rhr2/sentinel1/sentinel.log")).unwrap();
    assert!(sentinel_log.contains("+sentinel "), "sentinel 1 never met another sentinel:\n{sentinel_log}");

    emulated.down().expect("teardown");
    eprintln!("whole test in {:.1?} (up {up_took:.1?}, down {down_took:.1?})", t0.elapsed());
}
