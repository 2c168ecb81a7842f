//! The results: docs/results/faults.json (one row per fault; a run replaces the rows of its own
//! stage and keeps the others) and docs/results/faults.md, drawn from all rows.

use super::analysis::{self, ErrorReason};
use crate::matrix::Stage;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::Path;

/// What the race workload (bench/src/race) saw during one fault.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RaceRow {
    pub users: usize,
    pub rounds: usize,
    /// Rounds per kind: add vs checkout, set vs checkout, replay vs add, checkout vs checkout.
    pub by_kind: [usize; 4],
    pub requests: usize,
    /// Requests without a definite answer (no answer, a 5xx).
    pub failed: usize,
    #[serde(default)]
    pub failure_reasons: Vec<(String, usize)>,
    pub orders: usize,
    /// (user, product) histories checked.
    pub histories: usize,
    pub lost_cart_changes: usize,
    pub doubled_order_lines: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultRow {
    /// What was done, e.g. "SIGKILL pgpool 0, restart".
    pub fault: String,
    /// The fault's kind (rows written before kinds existed are kills).
    #[serde(default)]
    pub kind: super::FaultKind,
    /// Seconds from the first to the last client-visible error (shopaholic load and race
    /// workload), 0 when none; `None` in rows measured before it was (shown as not measured).
    #[serde(default)]
    pub error_window_s: Option<f64>,
    /// Order lines of the race workload ordered twice (bench/src/race/check.rs).
    #[serde(default)]
    pub doubled_order_lines: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub race: Option<RaceRow>,
    /// What the fault did beyond its name (a first rejoin that failed, sessions refused).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
    pub stage: Stage,
    /// Run on emulated hosts (`[hosts]`, partitions) rather than loopback: such rows are a set
    /// of their own beside the stage's loopback rows (a run replaces only its own set).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub on_hosts: bool,
    /// The instance, as the faults file names it ("pgpool 0", "redis master").
    pub target: String,
    /// The instance it meant at the kill, and its address.
    pub instance: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
    /// Requests that failed from the kill to the end of the load (the restart included).
    pub client_errors: u64,
    /// Of those, after the restart began.
    pub errors_after_restart: u64,
    /// Failed requests in the steady load before the kill (should be 0).
    pub errors_before_fault: u64,
    pub error_reasons: Vec<ErrorReason>,
    /// From the kill until the affected operations succeeded again (bench/src/faults/analysis.rs);
    /// `None`: they had not before the restart began.
    pub recovery_s: Option<f64>,
    /// How long the restart took (a backend: the whole rejoin); `None` if it failed.
    pub restart_s: Option<f64>,
    /// From the start of the restart until the affected operations succeeded again.
    pub restart_recovery_s: Option<f64>,
    /// A backend's rejoin holds writes (table locks) this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writes_paused_s: Option<f64>,
    /// The longest time without a successful write, from the kill to the restart / after it.
    pub longest_write_pause_s: [f64; 2],
    pub longest_read_pause_s: [f64; 2],
    /// The slowest request from the kill on, seconds.
    pub slowest_request_s: f64,
    /// Its operation: a store that stalls (a Redis failover) shows here even when the other
    /// operations of its class went on (recovery is per class).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub slowest_op: String,
    pub requests_ok: u64,
    pub requests_failed: u64,
    pub acked_orders: usize,
    pub lost_orders: usize,
    pub duplicated_orders: usize,
    /// Where the cart check read (None: not checked in this stage's build).
    pub cart_store: Option<String>,
    pub carts_checked: usize,
    /// Known carts that differ from their last acknowledged state at the end, plus the race
    /// workload's lost changes.
    pub lost_cart_changes: usize,
    /// Answers that contradicted an earlier acknowledged cart change during the load.
    pub cart_contradictions: usize,
    /// Cart states explained only by a change the client had seen fail (no answer or a 5xx),
    /// applied after all: not a loss, but a failure that was not one.
    #[serde(default)]
    pub late_applied_changes: u64,
    /// Products created or repriced with an acknowledgement during the load, read back through
    /// nginx afterwards; `None` in rows made before the catalogue was checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub products_checked: Option<usize>,
    /// Of those, products absent or at a price no acknowledged write may have left last.
    #[serde(default)]
    pub lost_product_writes: usize,
    /// Prices only a reprice the client saw fail (no answer, a 5xx) explains: applied after all.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub late_product_writes: usize,
    /// What the nginx instances logged during the fault's load, counted: the proxies' side of
    /// their 5xx answers ("no live upstreams while connecting to upstream").
    #[serde(default)]
    pub nginx_errors: Vec<(String, u64)>,
    /// The web instances' "store unavailable" warnings during the fault's load (their 503s), by cause.
    #[serde(default)]
    pub web_errors: Vec<(String, u64)>,
    pub backends_identical: bool,
    /// The consistency check's words.
    pub consistency: String,
    /// What was done to make the backends identical again, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repaired: Option<String>,
    /// Details of anything wrong: lost or duplicated orders, carts, a failed restart.
    pub problems: Vec<String>,
    pub finished_at: String,
    #[serde(default)]
    pub git_commit: Option<String>,
    /// How the stage's run was made: command, machine, topology, schedule (the same on every
    /// row of a run; faults.md shows it once per stage).
    #[serde(default)]
    pub setup: String,
    /// The fault's picture over time and its series, from faults.json's folder without the
    /// extension ("faults/pg-01": .png, .svg, .json); `None` when the run was not observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl FaultRow {
    /// The stage, and where: "pg", or "pg on hosts".
    pub fn set(&self) -> String {
        if self.on_hosts {
            format!("{} on hosts", self.stage)
        } else {
            self.stage.to_string()
        }
    }

    /// Every data check passed and the instance came back.
    pub fn data_ok(&self) -> bool {
        self.lost_orders == 0
            && self.duplicated_orders == 0
            && self.lost_cart_changes == 0
            && self.lost_product_writes == 0
            && self.doubled_order_lines == 0
            && self.cart_contradictions == 0
            && self.backends_identical
            && self.restart_s.is_some()
    }
}

/// The rows in `path`, none if it does not exist.
pub fn load(path: &Path) -> Result<Vec<FaultRow>> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(vec![]),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// `old` with the rows of `stage` (on loopback, or `on_hosts`) replaced by `new` (in place of the
/// first old one, or at the end), the other rows kept as they were.
pub fn merge(old: Vec<FaultRow>, stage: Stage, on_hosts: bool, new: Vec<FaultRow>) -> Vec<FaultRow> {
    let mine = |r: &FaultRow| r.stage == stage && r.on_hosts == on_hosts;
    let at = old.iter().position(mine);
    let mut rows: Vec<FaultRow> = old.into_iter().filter(|r| !mine(r)).collect();
    let at = at.unwrap_or(rows.len()).min(rows.len());
    rows.splice(at..at, new);
    rows
}

/// Writes faults.json (merged), faults.md (from every row) and its page faults.html into `out`.
pub fn write(out: &Path, stage: Stage, on_hosts: bool, new: Vec<FaultRow>) -> Result<Vec<FaultRow>> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let json = out.join("faults.json");
    let rows = merge(load(&json)?, stage, on_hosts, new);
    std::fs::write(&json, serde_json::to_string_pretty(&rows)? + "\n")
        .with_context(|| format!("writing {}", json.display()))?;
    std::fs::write(out.join("faults.md"), markdown(&rows)).context("writing faults.md")?;
    crate::page::write_beside(&out.join("faults.md"))?;
    Ok(rows)
}

/// Rewrites faults.md and faults.html in `out` from its faults.json (after a change of the table's form).
pub fn redraw(out: &Path) -> Result<usize> {
    let rows = load(&out.join("faults.json"))?;
    super::pictures::redraw(out, &rows)?;
    std::fs::write(out.join("faults.md"), markdown(&rows)).context("writing faults.md")?;
    crate::page::write_beside(&out.join("faults.md"))?;
    Ok(rows.len())
}

fn secs(v: Option<f64>) -> String {
    match v {
        Some(s) if s < 0.01 => "0 s".into(),
        Some(s) => format!("{s:.2} s"),
        None => "not within the phase".into(),
    }
}

/// The reasons a client-visible error happens, for the faults and errors understood so far.
pub fn explain(fault: super::FaultKind, target: &str, op: &str, reason: &str) -> Option<&'static str> {
    let kind = target.split_whitespace().next().unwrap_or("");
    let method = op.split_whitespace().next().unwrap_or("");
    if fault == super::FaultKind::Hang {
        if let Some(why) = explain_hang(kind, method, reason) {
            return Some(why);
        }
    }
    if fault == super::FaultKind::Cut {
        // Nothing was killed: the kill's reasons do not apply.
        return explain_cut(kind, method, reason)
            .or_else(|| (reason == "503 unavailable").then_some(STORE_RETRIES_RAN_OUT));
    }
    let why = match kind {
        "web" | "nginx" => explain_front(kind, method, reason),
        "postgres" | "redis" | "cassandra" => explain_store(kind, reason),
        _ => None,
    };
    why.or_else(|| (reason == "503 unavailable").then_some(STORE_RETRIES_RAN_OUT))
}

/// A 503 that no reason of its own explains.
const STORE_RETRIES_RAN_OUT: &str = "the service's store retries (2 s window, docs/replication.md) ran out: the \
    operation was not applied or its outcome is unknown, and the client is told to retry.";

/// Reasons particular to a killed web instance or nginx.
fn explain_front(kind: &str, method: &str, reason: &str) -> Option<&'static str> {
    match kind {
        "web" if reason.starts_with("502") && (method == "POST" || method == "PATCH") => Some(
            "the request was in flight on the killed web instance; nginx resends only requests it may repeat \
             (GET, PUT, DELETE, and checkout with its Idempotency-Key), because a POST or PATCH that reached an \
             instance may have been applied. The client must decide: retry or read back.",
        ),
        "nginx" if reason.starts_with("connect") || reason.starts_with("request") || reason.starts_with("body") => {
            Some(
                "the client's connection to the killed nginx failed (refused, or reset mid-request); the load client \
                 moves to the other nginx with its next request, as a client with two addresses would.",
            )
        }
        _ => None,
    }
}

/// Reasons particular to a killed store instance (a backend rejoined, a Redis failover, a
/// Cassandra node).
fn explain_store(kind: &str, reason: &str) -> Option<&'static str> {
    match kind {
        "postgres" if reason.starts_with("502") => Some(
            "nginx answered at once that it had no web instance left (\"no live upstreams\" in its log): each of its \
             5 s read timeouts on writes the rejoin held counts as a failed attempt, three within 5 s mark an \
             instance unavailable for 5 s (max_fails=3 fail_timeout=5s, infra/src/web.rs), and the writes on both \
             instances waited, so both were marked. Reads, which the rejoin does not hold, failed too. Not \
             applied: nginx did not pass these requests on.",
        ),
        "postgres" if reason.starts_with("504") => Some(
            "the rejoin held writes (table locks on the live backend while it was copied) for longer than nginx's \
             proxy_read_timeout (5 s): nginx gave up on the request while it waited. It was not acknowledged; it \
             may still have been applied once the locks went (a checkout is then found by its key on the retry).",
        ),
        "postgres" if reason == "503 unavailable" => Some(
            "the service's store calls failed for longer than its retries last: while the rejoin held writes (an \
             attempt is abandoned after 5 s, the pooled connections all busy with waiting writes), or when it \
             attached the node and both pgpools closed every session at once (failback), and no new connection came \
             within the pool's 1 s wait (see what the web instances logged). Not acknowledged; the client is told to \
             retry.",
        ),
        "postgres" if reason.starts_with("timeout") => Some(
            "the load client's own timeout ([run] request_timeout_secs, 10 s): the request waited for writes the \
             rejoin held longer than that. Its outcome is unknown to the client.",
        ),
        "redis" if reason.starts_with("504") => Some(
            "the cart change waited for Sentinel's failover (the master's death is noticed after \
             down-after-milliseconds, 3000 ms, then a replica is promoted and the other re-attached: ~4.5 s) longer \
             than nginx's proxy_read_timeout (5 s), and nginx does not resend a POST (an add) that reached an \
             instance. The adapter went on with the same change id (up to failover_wait_ms, 20 s), so the change may \
             have been applied once after the client saw it fail (\"failed changes applied later\"), never twice.",
        ),
        "redis" if reason.starts_with("502") => Some(
            "nginx had no web instance left to pass the request to (\"no live upstreams\" in its log): the 5 s read \
             timeouts on cart changes that waited for the failover count as failed attempts, and three within 5 s \
             mark an instance unavailable for 5 s (max_fails=3 fail_timeout=5s). Not passed on, so not applied.",
        ),
        "redis" if reason == "503 unavailable" => Some(
            "the Redis adapter gave up on the operation: no master answered within failover_wait_ms (20 s), or a \
             change could not get the replica acknowledgement it needs (min_replica_acks) in that window. Not \
             acknowledged; its outcome is unknown and the client is told to retry.",
        ),
        "redis" if reason.starts_with("timeout") => Some(
            "the load client's own timeout (10 s): the request waited for the failover, and for nginx's resend of \
             a timed-out PUT or DELETE to the other instance, longer than that. Its outcome is unknown to the \
             client; a change is applied at most once (its change id).",
        ),
        "cassandra" if reason == "503 unavailable" => Some(
            "a catalogue call failed on the Cassandra adapter's attempts (up to 3, 100 and 200 ms apart, each \
             bounded by the driver's request timeout: 1.5 s since 9616189, 5 s before) until the service's 4 s \
             request budget ran out (see what the web instances logged). Not acknowledged; a merchant's write may \
             still have been applied (its conditional write makes the repeat a no-op).",
        ),
        "cassandra" if reason.starts_with("504") || reason.starts_with("timeout") => Some(
            "a catalogue call in flight at the kill waited out the driver's 5 s request timeout (the killed node's \
             fault run logged it for whole-catalogue listings, range reads), as long as nginx's proxy_read_timeout: \
             nginx resends a GET to the other web instance, but not a POST or PATCH, and gives up when the resent \
             request waits as well. Not acknowledged.",
        ),
        _ => None,
    }
}

/// Reasons particular to a network partition (a cut between two instances on different hosts).
fn explain_cut(kind: &str, _method: &str, reason: &str) -> Option<&'static str> {
    match kind {
        "pgpool" if reason == "503 unavailable" => Some(
            "a write on pgpool 0 hung (pgpool sends it to every backend, and backend 1's answer never came over the \
             cut); the app gave up the attempt (2-3 s: \"no answer within\" in the web log) and retried on pgpool \
             1, where it waited for the same user's rows: the transaction the cut froze still held their locks on \
             backend 0 (pgpool 0's session waits for backend 1 until the heal), so the 4 s request budget ran out. \
             Not acknowledged and not applied (the frozen transaction never commits: it is rolled back when pgpool 0 \
             finds its client gone after the heal); a checkout retried with its key after the heal places the order \
             once.",
        ),
        "web" if reason == "503 unavailable" => Some(
            "a request of a user whose transaction was in flight on web 0's session with pgpool 0 when the cut came: \
             that session froze mid-transaction, and pgpool 0 and the backends keep it (and its row locks) open until \
             the heal lets pgpool 0 see its client gone; web 0 moved to pgpool 1 (\"taken out of rotation\" in its \
             log) but the user's next writes there waited for those locks until the 4 s request budget ran out. Not \
             acknowledged and not applied; other users' requests were not affected.",
        ),
        _ => None,
    }
}

/// Reasons particular to a stopped (SIGSTOP) instance: it holds requests without refusing them.
fn explain_hang(kind: &str, method: &str, reason: &str) -> Option<&'static str> {
    match kind {
        "web" if reason.starts_with("504") => Some(
            "the request waited in the stopped web instance until nginx's proxy_read_timeout (5 s) ran out; nginx \
             does not resend a POST or PATCH that reached an instance. Not applied: when the instance resumed it \
             refused every write nginx had sent longer ago than the 4 s request budget (X-Request-Start, \
             docs/failure-semantics.md).",
        ),
        "web" if reason == "503 unavailable" && method != "GET" => Some(
            "nginx resent the write (a PUT, DELETE or keyed checkout, which it may repeat) to the other web instance \
             after its 5 s read timeout on the stopped one; that instance refused it, since nginx had first sent it \
             longer ago than the 4 s request budget (X-Request-Start), and the stopped instance refuses its copy too \
             when it resumes. Not applied; the client is told to retry.",
        ),
        "cassandra" if reason == "503 unavailable" => Some(
            "a catalogue call sent to the stopped node as coordinator before the driver noticed it (keepalive \
             unanswered for 2 s, sent every 1.5 s) outlasted the adapter's attempts (1.5 s request timeout each \
             since 9616189, 5 s before) or the service's 4 s request budget. Not acknowledged.",
        ),
        _ => None,
    }
}

/// How every stage's rows are made (faults.md says it once, above each stage's own setup).
pub const METHOD: &str = "Per fault, a fresh run of the shopaholic load (the matrix's plans) through both nginx: \
    warm-up, steady load, SIGKILL of the instance's process group, load on the survivors, restart \
    (`infra::Running::restart`: a PostgreSQL backend is resynced by the rejoin, which holds writes meanwhile; a \
    Redis instance comes back as a replica of the master the sentinels name, after their failover if it was the \
    master; a Cassandra node restarts with its data and is back when the whole ring sees it up), then more load. A \
    failed checkout is sent again with the same Idempotency-Key. **Errors seen**: requests that failed from the \
    kill to the end of the load, with their reasons, of all the requests of the fault's load. **Recovery**: from \
    the kill (and from the start of the restart) until the affected class of operations (reads, writes) succeeded \
    again: a class is affected when a request failed or its successes paused for more than max(1 s, three times \
    its longest pause before the kill); 0 s means neither happened. **Data check**, after the load: every \
    acknowledged order (201 or 200 replay) looked up on every backend directly (lost: missing or under another \
    key; duplicated: a key with two orders); every cart whose last acknowledged state the client knows, read from \
    the cart store (PostgreSQL backend 0 directly, or the Redis master and fresh replicas through the sentinels: \
    lost), and answers that contradicted an earlier acknowledged cart change (contradicted); every product \
    created or repriced with an acknowledgement during the load, read back through nginx (lost: absent, or at a \
    price no acknowledged write may have left last; rows since the check existed); the consistency check \
    of the backends (a difference is repaired by a rejoin before the next fault). **Faults beyond a kill** (issue \
    11): a hang (SIGSTOP of the process and every descendant, then SIGCONT; a backend a pgpool detached meanwhile \
    is rejoined), an exhaustion (outside sessions as user postgres fill a backend's slots, then close), a backend \
    killed again while its rejoin runs (then rejoined again), pgpool's main process killed alone, both pgpools \
    killed at once. **Race workload**: beside the load, users that each fire two requests at once per round (add \
    vs checkout, set vs checkout, a checkout replay vs add, two checkouts with other keys), retry a failed \
    checkout with its key, read the cart back after a failed change and send requests round-robin to both nginx \
    without moving off a dead one; their histories are checked against a model in which every request takes effect \
    once while it runs (bench/src/race/check.rs): lost (an acknowledged change in neither the cart nor an order) \
    and doubled (a line ordered twice) count (user, product) histories. **Window**: seconds from the first to the \
    last client-visible error of either client (0 when none).";

/// How the rows "on hosts" differ (faults.md says it when there are such rows).
pub const HOSTS_METHOD: &str = "**On hosts** (issue 13): the topology runs on emulated hosts (network \
    namespaces with their own sshd on a private bridge, driven over SSH as real machines would be; the load and \
    the checks run from this machine, the backends read directly with the run's passwords), and the fault is a \
    network partition: nftables rules on the hosts drop (not reject) every packet between one instance and \
    another's port, both ways, for the fault's length, then the rules are removed (the heal: \"restart\" in the \
    recovery column). Recovery from the cut is how long the affected operations took to succeed again while it \
    held (the app moving off what it could not reach); from the heal, once it was gone. The same data checks \
    after the load; a difference of the backends is repaired before the next fault by the rejoin, over SSH.";

/// faults.md: the table, then the reasons for every client-visible error.
pub fn markdown(rows: &[FaultRow]) -> String {
    let mut md = String::new();
    md.push_str("# Faults under load\n\n");
    md.push_str(
        "Generated by `shopbench-bench faults` (`scripts/faults`): do not edit; the rows are also in \
         [faults.json](faults.json). Each stage's run replaces its own rows.\n\n",
    );
    md.push_str(METHOD);
    md.push_str("\n\n");
    if rows.iter().any(|r| r.on_hosts) {
        md.push_str(HOSTS_METHOD);
        md.push_str("\n\n");
    }
    let mut stages: Vec<(String, &str)> = rows.iter().map(|r| (r.set(), r.setup.as_str())).collect();
    stages.dedup_by(|a, b| a.0 == b.0);
    for (stage, setup) in stages {
        let setup = if setup.is_empty() { "(setup not recorded)" } else { setup };
        let _ = writeln!(md, "- Stage `{stage}` {setup}");
    }
    md.push_str("\n| stage | fault | errors seen | recovery | data check |\n|---|---|---|---|---|\n");
    for r in rows {
        let (fault, errors, recovery, data) = (fault_cell(r), errors_cell(r), recovery_cell(r), data_cell(r));
        let _ = writeln!(md, "| {} | {fault} | {errors} | {recovery} | {data} |", r.set());
    }
    super::pictures::section(&mut md, rows);
    reasons_section(&mut md, rows);
    done_and_problems_sections(&mut md, rows);
    runs_section(&mut md, rows);
    md
}

/// The fault, its instance and the file's note.
fn fault_cell(r: &FaultRow) -> String {
    let mut fault = format!("{} ({})", r.fault, r.instance);
    if !r.note.is_empty() {
        fault.push_str(&format!(": {}", r.note));
    }
    fault
}

/// The client-visible errors, the three commonest reasons first, and their window.
fn errors_cell(r: &FaultRow) -> String {
    let errors = if r.client_errors == 0 {
        "0".to_string()
    } else {
        let groups = by_reason(&r.error_reasons);
        let top: Vec<String> = groups.iter().take(3).map(|g| format!("{} x {}", g.count, g.reason)).collect();
        let more = if groups.len() > 3 { ", ..." } else { "" };
        format!("{} ({}{more})", r.client_errors, top.join(", "))
    };
    let errors = format!("{errors} of {} requests", r.requests_ok + r.requests_failed);
    let errors = match &r.race {
        Some(race) if race.failed > 0 => format!("{errors}; race {}", race.failed),
        _ => errors,
    };
    let errors = match r.error_window_s {
        Some(w) => format!("{errors}; window {}", secs(Some(w))),
        None => errors,
    };
    errors
}

/// How long until the clients succeeded again, after the kill and after the restart.
fn recovery_cell(r: &FaultRow) -> String {
    let cut = r.kind == super::FaultKind::Cut;
    let (fault, back) = if cut { ("cut", "heal") } else { ("kill", "restart") };
    let mut recovery = format!("{fault}: {}", secs(r.recovery_s));
    match r.restart_s {
        Some(took) => {
            recovery.push_str(&format!("; {back} took {took:.1} s"));
            if let Some(p) = r.writes_paused_s {
                recovery.push_str(&format!(" (writes held {p:.1} s)"));
            }
            recovery.push_str(&format!(", then {}", secs(r.restart_recovery_s)));
        }
        None => recovery.push_str(&format!("; {back} FAILED")),
    }
    if r.slowest_request_s >= analysis::PAUSE {
        let op = if r.slowest_op.is_empty() { String::new() } else { format!(", `{}`", r.slowest_op) };
        recovery.push_str(&format!("; slowest request {:.1} s{op}", r.slowest_request_s));
    }
    recovery
}

/// The data checks: orders, carts, the race, the backends.
fn data_cell(r: &FaultRow) -> String {
    let carts = match &r.cart_store {
        Some(_) => {
            let late = if r.late_applied_changes > 0 {
                format!(" ({} failed changes applied later)", r.late_applied_changes)
            } else {
                String::new()
            };
            format!(
                "{} carts: {} lost, {} contradicted{late}",
                r.carts_checked, r.lost_cart_changes, r.cart_contradictions
            )
        }
        None => "carts not checked".into(),
    };
    let products = match r.products_checked {
        Some(n) => {
            let late = match r.late_product_writes {
                0 => String::new(),
                l => format!(" ({l} failed reprices applied later)"),
            };
            format!("; {n} products written: {} lost{late}", r.lost_product_writes)
        }
        None => String::new(),
    };
    let backends = if r.backends_identical { "backends identical".to_string() } else { "backends DIFFERENT".into() };
    let repaired = r.repaired.as_ref().map(|x| format!(" ({x})")).unwrap_or_default();
    let race = match &r.race {
        Some(x) => {
            format!("; race: {} rounds, {} lost, {} doubled", x.rounds, x.lost_cart_changes, x.doubled_order_lines)
        }
        None => String::new(),
    };
    format!(
        "{} acked orders: {} lost, {} duplicated; {carts}{products}{race}; {backends}{repaired}",
        r.acked_orders, r.lost_orders, r.duplicated_orders
    )
}

/// The reasons for every client-visible error, explained, with what the servers logged.
fn reasons_section(md: &mut String, rows: &[FaultRow]) {
    md.push_str("\n## Reasons for the client-visible errors\n\n");
    let with_errors: Vec<&FaultRow> =
        rows.iter().filter(|r| !r.error_reasons.is_empty() || r.race.as_ref().is_some_and(|x| x.failed > 0)).collect();
    if with_errors.is_empty() {
        md.push_str("No client saw an error.\n");
    }
    for r in with_errors {
        let _ = writeln!(md, "**{}: {} ({})**\n", r.set(), r.fault, r.instance);
        for g in by_reason(&r.error_reasons) {
            let why = explain(r.kind, &r.target, &g.ops[0].0, &g.reason)
                .unwrap_or("not explained yet: see the servers' logs of the run.");
            let ops: Vec<String> = g.ops.iter().map(|(op, n)| format!("`{op}` {n}")).collect();
            let phases = g.phases.iter().map(|p| phase_words(p, r.kind)).collect::<Vec<_>>().join(" and ");
            let _ = writeln!(md, "- **{} x {}**, {phases} ({}): {why}", g.count, g.reason, ops.join(", "));
        }
        if !r.nginx_errors.is_empty() {
            let logged: Vec<String> = r.nginx_errors.iter().take(4).map(|(m, n)| format!("{n} x \"{m}\"")).collect();
            let _ = writeln!(md, "- nginx logged meanwhile: {}", logged.join("; "));
        }
        if !r.web_errors.is_empty() {
            let logged: Vec<String> = r.web_errors.iter().take(4).map(|(m, n)| format!("{n} x \"{m}\"")).collect();
            let _ = writeln!(md, "- the web instances logged \"store unavailable\": {}", logged.join("; "));
        }
        if let Some(race) = r.race.as_ref().filter(|x| x.failed > 0) {
            let why: Vec<String> = race.failure_reasons.iter().take(4).map(|(m, n)| format!("{n} x {m}")).collect();
            let _ = writeln!(md, "- the race workload's failed requests: {}", why.join("; "));
        }
        md.push('\n');
    }
}

/// What the faults did beyond their names, and the problems the checks found.
fn done_and_problems_sections(md: &mut String, rows: &[FaultRow]) {
    let detailed: Vec<&FaultRow> = rows.iter().filter(|r| !r.details.is_empty()).collect();
    if !detailed.is_empty() {
        md.push_str("## What the faults did\n\n");
        for r in detailed {
            let _ = writeln!(md, "**{}: {} ({})**\n", r.set(), r.fault, r.instance);
            for d in &r.details {
                let _ = writeln!(md, "- {d}");
            }
            md.push('\n');
        }
    }
    let problems: Vec<&FaultRow> = rows.iter().filter(|r| !r.problems.is_empty()).collect();
    if !problems.is_empty() {
        md.push_str("## Problems found by the checks\n\n");
        for r in problems {
            let _ = writeln!(md, "**{}: {} ({})**\n", r.set(), r.fault, r.instance);
            for p in r.problems.iter().take(10) {
                let _ = writeln!(md, "- {p}");
            }
            if r.problems.len() > 10 {
                let _ = writeln!(md, "- ... {} more in faults.json", r.problems.len() - 10);
            }
            md.push('\n');
        }
    }
}

/// When and from which commit each stage's rows were made.
fn runs_section(md: &mut String, rows: &[FaultRow]) {
    let mut runs: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| (r.set(), r.finished_at.clone(), r.git_commit.clone().unwrap_or_else(|| "?".into())))
        .collect();
    runs.dedup_by(|a, b| a.0 == b.0);
    md.push_str("## Runs\n\n");
    for (stage, at, commit) in runs {
        let _ = writeln!(md, "- {stage}: finished {at}, commit {commit}");
    }
}

/// Failures of one reason, over the operations and phases they happened in.
struct ReasonGroup {
    reason: String,
    count: u64,
    /// (operation, count), most frequent first.
    ops: Vec<(String, u64)>,
    phases: Vec<String>,
}

fn by_reason(reasons: &[ErrorReason]) -> Vec<ReasonGroup> {
    let mut groups: Vec<ReasonGroup> = Vec::new();
    for e in reasons {
        let at = match groups.iter().position(|g| g.reason == e.reason) {
            Some(at) => at,
            None => {
                groups.push(ReasonGroup { reason: e.reason.clone(), count: 0, ops: vec![], phases: vec![] });
                groups.len() - 1
            }
        };
        let g = &mut groups[at];
        g.count += e.count;
        match g.ops.iter_mut().find(|(op, _)| *op == e.op) {
            Some((_, n)) => *n += e.count,
            None => g.ops.push((e.op.clone(), e.count)),
        }
        if !g.phases.contains(&e.phase) {
            g.phases.push(e.phase.clone());
        }
    }
    for g in &mut groups {
        g.ops.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.count));
    groups
}

fn phase_words(phase: &str, kind: super::FaultKind) -> &'static str {
    match (phase, kind == super::FaultKind::Cut) {
        ("kill", false) => "after the kill",
        ("kill", true) => "during the cut",
        ("restart", false) => "during or after the restart",
        ("restart", true) => "after the heal",
        _ => "before the fault",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(stage: Stage, fault: &str) -> FaultRow {
        FaultRow {
            fault: format!("SIGKILL {fault}, restart"),
            kind: crate::faults::FaultKind::Kill,
            error_window_s: Some(0.0),
            doubled_order_lines: 0,
            race: None,
            details: vec![],
            stage,
            on_hosts: false,
            target: fault.into(),
            instance: format!("{fault} (127.0.0.1:17200)"),
            note: String::new(),
            client_errors: 0,
            errors_after_restart: 0,
            errors_before_fault: 0,
            error_reasons: vec![],
            recovery_s: Some(0.0),
            restart_s: Some(1.0),
            restart_recovery_s: Some(0.0),
            writes_paused_s: None,
            longest_write_pause_s: [0.05, 0.05],
            longest_read_pause_s: [0.05, 0.05],
            slowest_request_s: 0.1,
            slowest_op: String::new(),
            requests_ok: 100,
            requests_failed: 0,
            acked_orders: 5,
            lost_orders: 0,
            duplicated_orders: 0,
            cart_store: Some("postgres 0".into()),
            carts_checked: 4,
            lost_cart_changes: 0,
            cart_contradictions: 0,
            late_applied_changes: 0,
            products_checked: None,
            lost_product_writes: 0,
            late_product_writes: 0,
            nginx_errors: vec![],
            web_errors: vec![],
            backends_identical: true,
            consistency: "identical".into(),
            repaired: None,
            problems: vec![],
            finished_at: "2026-11-26T09:00:00Z".into(),
            git_commit: Some("abc".into()),
            setup: format!("ran as `faults --file {stage}.toml`."),
            timeline: None,
        }
    }

    #[test]
    fn a_run_replaces_only_its_own_stage() {
        let old = vec![row(Stage::Pg, "pgpool 0"), row(Stage::Pg, "web 0"), row(Stage::Redis, "redis master")];
        let merged = merge(old.clone(), Stage::Pg, false, vec![row(Stage::Pg, "nginx 0")]);
        let names: Vec<(&str, &str)> = merged.iter().map(|r| (r.stage.name(), r.target.as_str())).collect();
        assert_eq!(names, [("pg", "nginx 0"), ("redis", "redis master")]);
        let merged = merge(old, Stage::Cassandra, false, vec![row(Stage::Cassandra, "cassandra 1")]);
        assert_eq!(merged.len(), 4);
        assert_eq!(merged[3].stage, Stage::Cassandra);
    }

    /// A run on hosts replaces its own rows only, and the loopback rows of its stage stay.
    #[test]
    fn rows_on_hosts_are_a_set_of_their_own() {
        let hosts = |target: &str| FaultRow { on_hosts: true, ..row(Stage::Pg, target) };
        let old = vec![row(Stage::Pg, "pgpool 0"), hosts("web 0"), row(Stage::Redis, "redis master")];
        let merged = merge(old.clone(), Stage::Pg, true, vec![hosts("pgpool 1")]);
        let names: Vec<(String, &str)> = merged.iter().map(|r| (r.set(), r.target.as_str())).collect();
        let want = [("pg", "pgpool 0"), ("pg on hosts", "pgpool 1"), ("redis", "redis master")];
        assert_eq!(names, want.map(|(s, t)| (s.to_string(), t)));
        let merged = merge(old, Stage::Pg, false, vec![row(Stage::Pg, "nginx 0")]);
        assert_eq!(merged.iter().filter(|r| r.on_hosts).count(), 1, "the loopback run keeps the hosts rows");
        let md = markdown(&merged);
        assert!(md.contains("| pg on hosts | SIGKILL web 0, restart") && md.contains("**On hosts**"), "{md}");
        // A loopback row is written as before (no `on_hosts` key): the committed rows stay as they are.
        assert!(!serde_json::to_string(&row(Stage::Pg, "web 0")).unwrap().contains("on_hosts"));
        assert!(!markdown(&[row(Stage::Pg, "web 0")]).contains("On hosts"));
    }

    #[test]
    fn the_table_shows_errors_with_their_reasons_and_the_checks() {
        let mut web = row(Stage::Pg, "web 0");
        web.client_errors = 3;
        web.error_reasons = vec![ErrorReason {
            phase: "kill".into(),
            op: "POST /users/{user_id}/cart/items".into(),
            reason: "502 Bad Gateway".into(),
            count: 3,
        }];
        web.error_window_s = Some(1.234);
        let mut pg = row(Stage::Pg, "postgres 1");
        pg.race = Some(RaceRow {
            users: 2,
            rounds: 40,
            failed: 2,
            failure_reasons: vec![("503 unavailable".into(), 2)],
            lost_cart_changes: 1,
            ..RaceRow::default()
        });
        pg.details = vec!["the first rejoin failed".into()];
        pg.writes_paused_s = Some(3.4);
        pg.slowest_request_s = 4.56;
        pg.slowest_op = "POST /users/{user_id}/cart/items".into();
        pg.lost_orders = 1;
        pg.problems = vec!["order x is not on postgres 1".into()];
        let md = markdown(&[web.clone(), pg]);
        assert!(
            md.contains(
                "| pg | SIGKILL web 0, restart (web 0 (127.0.0.1:17200)) | 3 (3 x 502 Bad Gateway) of 100 requests; window \
                 1.23 s |"
            ),
            "{md}"
        );
        assert!(md.contains("writes held 3.4 s"), "{md}");
        assert!(md.contains("; slowest request 4.6 s, `POST /users/{user_id}/cart/items` |"), "{md}");
        assert!(!md.contains("slowest request 0.1"), "{md}");
        assert!(md.contains("- Stage `pg` ran as `faults --file pg.toml`."), "{md}");
        assert!(md.contains("5 acked orders: 1 lost, 0 duplicated"), "{md}");
        assert!(md.contains("nginx resends only requests it may repeat"), "{md}");
        assert!(md.contains("order x is not on postgres 1"), "{md}");
        assert!(md.contains("| 0 of 100 requests; race 2; window 0 s |"), "{md}");
        assert!(md.contains("; race: 40 rounds, 1 lost, 0 doubled;"), "{md}");
        assert!(md.contains("- the race workload's failed requests: 2 x 503 unavailable"), "{md}");
        assert!(md.contains("## What the faults did") && md.contains("- the first rejoin failed"), "{md}");
        assert!(web.data_ok());
        assert!(!md.contains("products written"), "rows from before the catalogue check say nothing of it");
        web.products_checked = Some(12);
        web.lost_product_writes = 1;
        web.late_product_writes = 2;
        let md = markdown(&[web.clone()]);
        assert!(md.contains("; 12 products written: 1 lost (2 failed reprices applied later); "), "{md}");
        assert!(!web.data_ok(), "a lost product write fails the row");
    }

    #[test]
    fn rows_written_before_the_race_and_the_new_kinds_still_load() {
        // A row as faults.json held them before issue 11: no kind, window, race or doubled lines.
        let mut old = serde_json::to_value(row(Stage::Pg, "web 0")).unwrap();
        let obj = old.as_object_mut().unwrap();
        for k in ["kind", "error_window_s", "doubled_order_lines", "race", "details"] {
            obj.remove(k);
        }
        let back: FaultRow = serde_json::from_value(old).unwrap();
        assert_eq!(back, FaultRow { error_window_s: None, ..row(Stage::Pg, "web 0") });
        assert!(
            markdown(std::slice::from_ref(&back)).contains("| 0 of 100 requests | kill:"),
            "no window shown when not measured"
        );
        assert_eq!(back.kind, crate::faults::FaultKind::Kill);
        // The committed results load too.
        let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/results/faults.json");
        assert!(!load(&committed).unwrap().is_empty());
    }

    #[test]
    fn a_hung_instance_s_errors_are_explained_by_what_a_stopped_process_does() {
        use crate::faults::FaultKind::{Hang, Kill};
        let hang_504 = explain(Hang, "web 0", "POST /users/{user_id}/cart/items", "504 unavailable").unwrap();
        assert!(hang_504.contains("X-Request-Start"), "{hang_504}");
        let resent = explain(Hang, "web 0", "PUT /users/{user_id}/cart/items/{product_id}", "503 unavailable").unwrap();
        assert!(resent.contains("resent the write"), "{resent}");
        // A GET's 503 is the stores' (the resent read runs), as for a kill.
        assert_eq!(
            explain(Hang, "web 0", "GET /products", "503 unavailable"),
            explain(Kill, "web 0", "GET /products", "503 unavailable")
        );
        assert!(explain(Hang, "cassandra 1", "GET /products", "503 unavailable").unwrap().contains("keepalive"));
        // A killed web instance's 504 is not the hang's story.
        assert_eq!(explain(Kill, "web 0", "POST /users", "504 unavailable"), None);
    }
}
