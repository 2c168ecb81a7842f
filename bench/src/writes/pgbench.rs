//! The minimal client: pgbench doing a cart add through the same kind of pgpool-II, with the
//! adapter's own statements (`adapter_postgres::cart_add_statements`) in its two round trips
//! (`\startpipeline` BEGIN, lock, read `\endpipeline`; `\startpipeline` upsert, record, COMMIT
//! `\endpipeline`), `-M prepared` as tokio-postgres prepares them.
//!
//! What pgbench cannot do like the adapter (it has no uuid values of its own):
//! * Each client looks its user (signed up through the API for it) and the products up once, at
//!   its first transaction (`\gset`), and keeps them in variables; a product is then drawn per add
//!   and its upsert chosen by `\if` (one prepared statement per product, same text).
//! * The add's id (the line's stamp and the `cart_adds` row) is built in SQL from a per-run prefix
//!   and a per-client counter, `(:addp || lpad(to_hex(:seq::bigint), 12, '0'))::uuid` (immutable
//!   functions, the same on every backend); the adapter binds a UUID v7 made in Rust.
//! * The quantity written is 1 (the adapter writes the line's new total read under the lock):
//!   the same rows and row counts, a different value.

use adapter_postgres::cart_add_statements::{ADD_RECORD, GET, LOCK_USER, UPSERT_ADD};
use anyhow::{bail, Context, Result};
use endpoints::HostPort;
use std::path::Path;
use std::time::{Duration, SystemTime};
use tokio::process::Command;

/// The email of the user pgbench's client `client` acts as in repeat `rep` (signed up through the
/// API; the script builds the same text from `:rep` and `:client_id`).
pub fn email(rep: usize, client: usize) -> String {
    format!("{EMAIL_PREFIX}{rep}-c{client}{EMAIL_SUFFIX}")
}
const EMAIL_PREFIX: &str = "writes-pgbench-r";
const EMAIL_SUFFIX: &str = "@example.com";

/// `$n` of a statement replaced by pgbench's expressions, highest first ($1 is no prefix of them).
fn bind(sql: &str, params: &[&str]) -> String {
    let mut out = sql.to_string();
    for (i, p) in params.iter().enumerate().rev() {
        out = out.replace(&format!("${}", i + 1), p);
    }
    assert!(!out.contains('$'), "a parameter of {sql:?} is left unbound");
    out
}

/// The pgbench script of one add, `products` products, pipelined or as plain statements.
pub fn script(products: usize, pipelined: bool) -> String {
    let add_id = "(:addp || lpad(to_hex(:seq::bigint), 12, '0'))::uuid";
    let vars: Vec<String> = (0..products).map(|i| format!("p[{}] AS p{i}", i + 1)).collect();
    let mut s = String::new();
    s.push_str("-- shopbench-bench writes: a cart add as adapters/postgres/src/carts.rs sends it.\n");
    s.push_str("\\if :have = 0\n");
    s.push_str(&format!(
        "SELECT u.id AS uid, {} FROM users u, (SELECT array_agg(id ORDER BY id) AS p FROM products) s \
         WHERE u.email = '{EMAIL_PREFIX}' || :rep || '-c' || :client_id || '{EMAIL_SUFFIX}' \\gset\n",
        vars.join(", ")
    ));
    s.push_str("\\set have 1\n\\endif\n");
    s.push_str(&format!("\\set k random(0, {})\n", products - 1));
    s.push_str("\\set seq :seq + 1\n");
    let (open, close) = if pipelined { ("\\startpipeline\n", "\\endpipeline\n") } else { ("", "") };
    s.push_str(open);
    s.push_str("BEGIN;\n");
    s.push_str(&format!("{};\n", bind(LOCK_USER, &[":uid"])));
    s.push_str(&format!("{};\n", bind(GET, &[":uid"])));
    s.push_str(close);
    s.push_str(open);
    for i in 0..products {
        let cond = match i {
            0 => format!("\\if :k = {i}\n"),
            _ if i == products - 1 => "\\else\n".to_string(),
            _ => format!("\\elif :k = {i}\n"),
        };
        if products > 1 {
            s.push_str(&cond);
        }
        s.push_str(&format!("{};\n", bind(UPSERT_ADD, &[":uid", &format!(":p{i}"), "1", add_id])));
    }
    if products > 1 {
        s.push_str("\\endif\n");
    }
    s.push_str(&format!("{};\n", bind(ADD_RECORD, &[":uid", add_id, ":bound"])));
    s.push_str("COMMIT;\n");
    s.push_str(close);
    s
}

/// The prefix of this run's add ids: a UUID v7's time (now, so above every expiry bound) and
/// a random 12 bits, so that two runs of one user never make the same id.
pub fn add_id_prefix(now: SystemTime, salt: u16) -> String {
    let ms = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    format!("{:08x}-{:04x}-7{:03x}-8000-", (ms >> 16) & 0xffff_ffff, ms & 0xffff, salt & 0xfff)
}

/// The adapter's expiry bound for `now` (the smallest UUID v7 of 15 minutes ago).
pub fn expiry_bound(now: SystemTime) -> String {
    let then = now.checked_sub(Duration::from_secs(15 * 60)).unwrap_or(SystemTime::UNIX_EPOCH);
    add_id_prefix(then, 0) + "000000000000"
}

/// What pgbench printed.
#[derive(Clone, Debug, PartialEq)]
pub struct PgbenchOut {
    pub processed: u64,
    pub failed: u64,
    pub tps: f64,
}

pub fn parse(output: &str) -> Option<PgbenchOut> {
    let after = |key: &str| {
        output
            .lines()
            .find_map(|l| l.trim().strip_prefix(key).map(|v| v.split_whitespace().next().unwrap_or("").to_string()))
    };
    Some(PgbenchOut {
        processed: after("number of transactions actually processed: ")?.parse().ok()?,
        failed: after("number of failed transactions: ").and_then(|v| v.parse().ok()).unwrap_or(0),
        tps: after("tps = ")?.parse().ok()?,
    })
}

/// One pgbench run of `secs` with `clients` clients as repeat `rep`'s users; the command line
/// and what it printed.
pub async fn run(
    endpoint: &str,
    script_path: &Path,
    clients: usize,
    secs: u64,
    rep: usize,
    salt: u16,
) -> Result<(PgbenchOut, String)> {
    let HostPort { host, port } = HostPort::parse(endpoint).map_err(|e| anyhow::anyhow!("endpoint {e}"))?;
    let now = SystemTime::now();
    let args: Vec<String> = vec![
        "-h".into(),
        host,
        "-p".into(),
        port.to_string(),
        "-U".into(),
        "postgres".into(),
        "-n".into(),
        "-M".into(),
        "prepared".into(),
        "-c".into(),
        clients.to_string(),
        "-j".into(),
        clients.min(2).to_string(),
        "-T".into(),
        secs.to_string(),
        "-f".into(),
        script_path.display().to_string(),
        "-D".into(),
        "have=0".into(),
        "-D".into(),
        format!("rep={rep}"),
        "-D".into(),
        "seq=0".into(),
        "-D".into(),
        format!("addp={}", add_id_prefix(now, salt)),
        "-D".into(),
        format!("bound={}", expiry_bound(now)),
        infra::SHOP_DB.into(),
    ];
    let what = format!("pgbench {}", args.join(" "));
    let child = Command::new("pgbench").args(&args).env("PGCONNECT_TIMEOUT", "10").kill_on_drop(true).output();
    let out = tokio::time::timeout(Duration::from_secs(secs + 60), child)
        .await
        .with_context(|| format!("{what}: no answer"))?
        .with_context(|| format!("starting {what}"))?;
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("{what} failed ({}): {}", out.status, text.trim());
    }
    let parsed = parse(&text).with_context(|| format!("{what}: no counts in its output:\n{text}"))?;
    Ok((parsed, what))
}
