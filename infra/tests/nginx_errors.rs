//! Every answer a client gets through nginx is the API's JSON error shape, also when nginx makes
//! the answer itself: a body over its limit (413), a `%00` in the path (400), TRACE (405), a hung
//! web instance (504) and no web instance at all (502). The app's own errors pass untouched.
//! One backend, one pgpool, one web instance (the real `shopbench` binary), one nginx, on ports
//! 18500-18599.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{any_alive, app_binary, topology, RunDir};
use infra::{Kind, Overrides};
use serde_json::Value;

const TOPOLOGY: &str = r#"
name = "itest-nginx-errors"
[postgres]
count = 1
base_port = 18500
[pgpool]
count = 1
base_port = 18510
pcp_base_port = 18515
[web]
count = 1
base_port = 18520
[nginx]
count = 1
base_port = 18530
"#;

#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
    /// The API's error shape: JSON content type, `code` and `message`, nothing else but `field`.
    #[track_caller]
    fn assert_api_error(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status, status, "{self:?}");
        assert!(self.header("content-type").is_some_and(|c| c.starts_with("application/json")), "{self:?}");
        let body = self.json();
        assert_eq!(body["code"], code, "{self:?}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{self:?}");
        let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
        assert!(keys.iter().all(|k| ["code", "message", "field"].contains(&k.as_str())), "{self:?}");
        body
    }
}

/// Sends `head` (the request line and headers, without the blank line) and then `body` bytes as
/// they are, and reads the whole answer (the request says `Connection: close`).
fn send(addr: &str, head: &str, body: &[u8]) -> Answer {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(format!("{head}\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
    // nginx may answer (413) before the body is sent; it reads and drops the rest (lingering
    // close), and a write it refused does not change what it answered.
    for chunk in body.chunks(64 * 1024) {
        if s.write_all(chunk).is_err() {
            break;
        }
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no full answer to {head:?}: {text:?}"));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Answer { status, head: head.to_string(), body: body.to_string() }
}

fn get(addr: &str, path: &str) -> Answer {
    send(addr, &format!("GET {path} HTTP/1.1"), b"")
}

#[test]
fn nginx_answers_its_own_errors_in_the_api_json_shape() {
    let dir = RunDir::new("infra-test-nginx-errors");
    let t =
        topology(TOPOLOGY).with_overrides(&Overrides { web_binary: Some(app_binary()), ..Default::default() }).unwrap();
    let mut running = t.up(dir.path()).expect("up");
    let nginx = running.nginx_urls()[0].trim_start_matches("http://").to_string();
    assert_eq!(get(&nginx, "/health/ready").status, 200);

    // A 10 MB body: nginx's limit (1 MB), before the app sees it.
    let big = vec![b'x'; 10 * 1024 * 1024];
    let head = format!("POST /users HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: {}", big.len());
    send(&nginx, &head, &big).assert_api_error(413, "payload_too_large");
    // A %00 in the path, and TRACE: refused by nginx itself.
    get(&nginx, "/products/%00").assert_api_error(400, "bad_request");
    get(&nginx, "/users/a%00b/orders").assert_api_error(400, "bad_request");
    send(&nginx, "TRACE / HTTP/1.1", b"").assert_api_error(405, "method_not_allowed");
    send(&nginx, "TRACE /products HTTP/1.1", b"").assert_api_error(405, "method_not_allowed");
    // A request line nginx cannot parse, and an over-long URI.
    send(&nginx, "NOT A REQUEST", b"").assert_api_error(400, "bad_request");
    get(&nginx, &format!("/products/{}", "a".repeat(10_000))).assert_api_error(414, "bad_request");
    // nginx's error locations are not reachable from outside.
    get(&nginx, "/_shopbench_error/502").assert_api_error(404, "not_found");

    // The app's own answers pass through unchanged: its field, its Allow, its HEAD.
    let r = get(&nginx, "/products/not-a-uuid");
    assert_eq!(r.assert_api_error(400, "bad_request")["field"], "product_id", "{r:?}");
    let r = get(&nginx, "/users");
    r.assert_api_error(401, "unauthenticated");
    assert_eq!(r.header("www-authenticate"), Some("Bearer"), "{r:?}");
    let r = send(&nginx, "PUT /users HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 2", b"{}");
    r.assert_api_error(405, "method_not_allowed");
    assert_eq!(r.header("allow"), Some("POST, GET, HEAD"), "{r:?}");
    let r = send(&nginx, "HEAD /products HTTP/1.1", b"");
    assert_eq!((r.status, r.body.as_str()), (200, ""), "{r:?}");
    assert!(r.header("content-type").is_some_and(|c| c.starts_with("application/json")), "{r:?}");

    // The only web instance hangs: nginx gives up after proxy_read_timeout (5 s) with a JSON 504.
    running.kill(Kind::Web, 0, infra::signal::SIGSTOP).unwrap();
    let r = get(&nginx, "/products");
    running.kill(Kind::Web, 0, infra::signal::SIGCONT).unwrap();
    r.assert_api_error(504, "unavailable");
    assert_eq!(r.header("retry-after"), Some("1"), "{r:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(&nginx, "/health/ready").status != 200 {
        assert!(Instant::now() < deadline, "the web instance does not answer again after SIGCONT");
        std::thread::sleep(Duration::from_millis(200));
    }

    // No web instance at all: a JSON 502, also for HEAD (no body) and for a POST.
    running.kill(Kind::Web, 0, infra::signal::SIGKILL).unwrap();
    for _ in 0..4 {
        let r = get(&nginx, "/products");
        r.assert_api_error(502, "unavailable");
        assert_eq!(r.header("retry-after"), Some("1"), "{r:?}");
    }
    let r = send(&nginx, "POST /users HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 2", b"{}");
    r.assert_api_error(502, "unavailable");
    let r = send(&nginx, "HEAD /products HTTP/1.1", b"");
    assert_eq!((r.status, r.body.as_str()), (502, ""), "{r:?}");

    let procs = running.processes().to_vec();
    running.down().unwrap();
    assert!(any_alive(&procs).is_empty(), "still alive after down: {:?}", any_alive(&procs));
}
