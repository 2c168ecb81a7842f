//! Cassandra 5.0 nodes: the jars from Maven Central (Debian has no Cassandra package), run on the
//! machine's Java 17, one JVM per node on its own loopback address (127.0.0.1, .2, .3: the same
//! CQL and storage ports on each, as the scylla driver expects one CQL port for the whole ring),
//! or one per host of `[[hosts]]` at its address (the jars shipped there: remote/ship.rs).
//!
//! A fast, small ring: every node is a seed, `num_tokens: 1` with evenly spaced tokens and no
//! bootstrap (a fresh ring has no data to stream), gossip not waited on; heap from the topology.
//! Readiness covers the whole ring: every node answers CQL, knows every other node, all agree on
//! the schema, and a CL=ALL read through each node succeeds (each sees every replica up).
//!
//! Off loopback the ring asks every client to log in (PasswordAuthenticator, CassandraAuthorizer):
//! the control machine replaces the public default superuser `cassandra`/`cassandra` with the
//! run's role `shopbench` ([`secure_ring`]).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::cql::{self, Consistency, Login};
use crate::paths::repo_root;
use crate::process;
use crate::rundir;
use crate::running::Running;
use crate::state::Proc;
use crate::topology::Kind;

/// The cassandra-all release fetched from Maven Central.
pub const VERSION: &str = "5.0.8";
/// Time for the whole ring to become ready (JVM start, gossip, schema) on a busy 2-core machine.
const RING_TIMEOUT: Duration = Duration::from_secs(300);
/// The keyspace of the CL=ALL readiness probe (replication factor = node count).
const PROBE_KEYSPACE: &str = "shopbench_ring";

/// Node i's token: the ring split evenly (Murmur3 tokens span -2^63 .. 2^63-1).
fn initial_token(i: usize, n: usize) -> i64 {
    let span: i128 = 1 << 64;
    (i64::MIN as i128 + span / n as i128 * i as i128) as i64
}

/// The directory of the fetched jars (git-ignored), one per version.
pub fn cache_dir() -> PathBuf {
    repo_root().join(".cache/cassandra").join(VERSION)
}

/// Where a host of `[[hosts]]` keeps the jars shipped to it, under its shopbench dir.
pub fn shipped_lib(host_dir: &Path) -> PathBuf {
    host_dir.join("cassandra").join(VERSION).join("lib")
}

/// The jars this run dir's nodes run from: on a host of `[[hosts]]` those shipped into its dir
/// (the parent of its run dir), else the cache, fetched with Maven the first time.
fn jars(r: &Running) -> Result<PathBuf> {
    if r.state.machine.is_none() {
        return ensure_jars();
    }
    let lib = shipped_lib(r.run_dir().parent().context("the run dir has no parent")?);
    jamm(&lib).with_context(|| format!("the Cassandra jars were not shipped into {}", lib.display()))?;
    Ok(lib)
}

/// The jars of cassandra-all and its runtime dependencies, fetched with Maven once; later calls
/// (and concurrent ones, which wait) reuse them.
pub fn ensure_jars() -> Result<PathBuf> {
    let dir = cache_dir();
    let lib = dir.join("lib");
    let done = dir.join("complete");
    if done.exists() {
        return Ok(lib);
    }
    let parent = dir.parent().context("cache dir has no parent")?;
    std::fs::create_dir_all(parent)?;
    let lock = parent.join(format!("{VERSION}.lock"));
    let deadline = Instant::now() + Duration::from_secs(20 * 60);
    while std::fs::create_dir(&lock).is_err() {
        if done.exists() {
            return Ok(lib);
        }
        if Instant::now() > deadline {
            bail!(
                "waited 20 min for another download of the Cassandra jars ({} exists; remove it if stale)",
                lock.display()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let result = download(&dir);
    let _ = std::fs::remove_dir(&lock);
    result.map(|()| lib)
}

fn download(dir: &Path) -> Result<()> {
    if dir.join("complete").exists() {
        return Ok(());
    }
    let mvn = which("mvn").context("mvn not found (Debian package maven): run scripts/install")?;
    let t0 = Instant::now();
    eprintln!(
        "cassandra: fetching org.apache.cassandra:cassandra-all:{VERSION} and its runtime dependencies with Maven \
         into {} (once; later runs reuse them)",
        dir.display()
    );
    let tmp = dir.parent().context("cache dir has no parent")?.join(format!("{VERSION}.tmp-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    std::fs::create_dir_all(&tmp)?;
    std::fs::write(tmp.join("pom.xml"), POM.replace("{version}", VERSION))?;
    let mut cmd = Command::new(mvn);
    cmd.current_dir(&tmp).args([
        "-B",
        "--no-transfer-progress",
        "-f",
        "pom.xml",
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        "-DoutputDirectory=lib",
    ]);
    let out = process::run_with_timeout(cmd, Duration::from_secs(20 * 60))?;
    if !out.status.success() {
        let log = String::from_utf8_lossy(&out.stdout);
        let tail: Vec<&str> = log.lines().rev().take(25).collect::<Vec<_>>().into_iter().rev().collect();
        bail!(
            "downloading cassandra-all {VERSION} with Maven failed ({}): is Maven Central reachable?\n    | {}",
            out.status,
            tail.join("\n    | ")
        );
    }
    let jars = std::fs::read_dir(tmp.join("lib"))?.count();
    if jars < 10 || jamm(&tmp.join("lib")).is_err() {
        bail!("Maven fetched only {jars} jars into {} (no jamm agent): not a usable Cassandra", tmp.display());
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::rename(&tmp, dir)?;
    std::fs::write(dir.join("complete"), format!("{jars} jars\n"))?;
    eprintln!("cassandra: {jars} jars fetched in {:.1?}", t0.elapsed());
    Ok(())
}

const POM: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by shopbench-infra to fetch Cassandra's jars (dependency:copy-dependencies). -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>shopbench</groupId>
  <artifactId>cassandra-jars</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.cassandra</groupId>
      <artifactId>cassandra-all</artifactId>
      <version>{version}</version>
    </dependency>
  </dependencies>
</project>
"#;

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

/// The jamm agent (Cassandra measures object sizes with it; the JVM must load it at start).
fn jamm(lib: &Path) -> Result<PathBuf> {
    std::fs::read_dir(lib)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("jamm-") && n.ends_with(".jar")))
        .with_context(|| format!("no jamm-*.jar in {}", lib.display()))
}

/// The Prometheus JMX exporter java agent run inside every node when the topology wants exporters.
pub const JMX_AGENT_VERSION: &str = "1.0.1";
/// Which MBeans the agent reads and how it names them (written into each node's conf dir).
const JMX_AGENT_CONFIG: &str = include_str!("../templates/cassandra-jmx-exporter.yaml");

/// The agent's jar this run dir's nodes load: on a host of `[[hosts]]` the one shipped into its
/// `bin/` (beside the run dir), else the cache's.
fn jmx_agent(r: &Running) -> Result<PathBuf> {
    if r.state.machine.is_none() {
        return ensure_jmx_agent();
    }
    let dir = r.run_dir().parent().context("the run dir has no parent")?;
    let jar = dir.join("bin").join(format!("jmx_prometheus_javaagent-{JMX_AGENT_VERSION}.jar"));
    match jar.is_file() {
        true => Ok(jar),
        false => bail!("the JMX exporter agent was not shipped into {}", jar.display()),
    }
}

/// The agent's jar, fetched from Maven Central with Maven into .cache/ once (like the Cassandra
/// jars); concurrent callers wait for one download.
pub fn ensure_jmx_agent() -> Result<PathBuf> {
    let dir = repo_root().join(".cache/jmx-exporter").join(JMX_AGENT_VERSION);
    let jar = dir.join(format!("jmx_prometheus_javaagent-{JMX_AGENT_VERSION}.jar"));
    if jar.is_file() {
        return Ok(jar);
    }
    let parent = dir.parent().context("cache dir has no parent")?;
    std::fs::create_dir_all(parent)?;
    let lock = parent.join(format!("{JMX_AGENT_VERSION}.lock"));
    let deadline = Instant::now() + Duration::from_secs(5 * 60);
    while std::fs::create_dir(&lock).is_err() {
        if jar.is_file() {
            return Ok(jar);
        }
        if Instant::now() > deadline {
            bail!("waited 5 min for another download of the JMX agent ({} exists; remove it if stale)", lock.display());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let result = download_jmx_agent(&dir, &jar);
    let _ = std::fs::remove_dir(&lock);
    result.map(|()| jar)
}

fn download_jmx_agent(dir: &Path, jar: &Path) -> Result<()> {
    if jar.is_file() {
        return Ok(());
    }
    let mvn = which("mvn").context("mvn not found (Debian package maven): run scripts/install")?;
    let tmp = dir.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let mut cmd = Command::new(mvn);
    cmd.current_dir(&tmp).args([
        "-B",
        "--no-transfer-progress",
        "dependency:copy",
        &format!("-Dartifact=io.prometheus.jmx:jmx_prometheus_javaagent:{JMX_AGENT_VERSION}"),
        "-DoutputDirectory=.",
    ]);
    let out = process::run_with_timeout(cmd, Duration::from_secs(5 * 60))?;
    let fetched = tmp.join(jar.file_name().context("jar has a name")?);
    if !out.status.success() || !fetched.is_file() {
        let log = String::from_utf8_lossy(&out.stdout);
        let tail: Vec<&str> = log.lines().rev().take(15).collect::<Vec<_>>().into_iter().rev().collect();
        bail!(
            "fetching jmx_prometheus_javaagent {JMX_AGENT_VERSION} with Maven failed:\n    | {}",
            tail.join("\n    | ")
        );
    }
    std::fs::create_dir_all(dir)?;
    std::fs::rename(&fetched, jar)?;
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}

/// The Java 17 `java`: `SHOPBENCH_JAVA17` if set, else Debian's or any JDK 17 under /usr/lib/jvm.
/// Cassandra 5.0 runs on Java 11 or 17 only; the default `java` may be newer.
pub fn java17() -> Result<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("SHOPBENCH_JAVA17") {
        candidates.push(p.into());
    }
    candidates.push("/usr/lib/jvm/java-17-openjdk-amd64/bin/java".into());
    if let Ok(entries) = std::fs::read_dir("/usr/lib/jvm") {
        let mut dirs: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.contains("17")))
            .collect();
        dirs.sort();
        candidates.extend(dirs.into_iter().map(|d| d.join("bin/java")));
    }
    for java in candidates {
        if !java.is_file() {
            continue;
        }
        let mut cmd = Command::new(&java);
        cmd.arg("-version");
        if let Ok(out) = process::run_with_timeout(cmd, Duration::from_secs(20)) {
            let text = String::from_utf8_lossy(&out.stderr);
            if text.contains("version \"17") {
                return Ok(java);
            }
        }
    }
    bail!(
        "no Java 17 found (Cassandra {VERSION} runs on Java 11 or 17; JDK 18 and later break it): install \
         openjdk-17-jre-headless (scripts/install) or set SHOPBENCH_JAVA17 to a Java 17 `java`"
    )
}

/// Node i's directory layout.
struct NodeDirs {
    root: PathBuf,
    conf: PathBuf,
}

fn node_dirs(r: &Running, i: usize) -> Result<NodeDirs> {
    let root = r.instance_dir(Kind::Cassandra, i);
    for sub in ["", "conf", "data", "commitlog", "saved_caches", "hints", "logs"] {
        rundir::instance_dir(&root.join(sub), None)?;
    }
    Ok(NodeDirs { conf: root.join("conf"), root })
}

fn write_config(r: &Running, i: usize, d: &NodeDirs) -> Result<()> {
    let t = r.topology();
    let c = &t.cassandra;
    let seeds: Vec<String> = (0..c.count).map(|n| format!("{}:{}", t.cassandra_host(n), c.storage_port)).collect();
    let root = d.root.display();
    // Off loopback every client logs in, and only what a role was granted is allowed.
    let auth = if r.secrets.is_some() {
        "authenticator: PasswordAuthenticator\nauthorizer: CassandraAuthorizer\n"
    } else {
        ""
    };
    let yaml = format!(
        "# Written by shopbench-infra for cassandra {i} of topology {name:?}.\n\
         cluster_name: 'shopbench {name}'\n\
         num_tokens: 1\n\
         initial_token: {token}\n\
         auto_bootstrap: false\n\
         partitioner: org.apache.cassandra.dht.Murmur3Partitioner\n\
         endpoint_snitch: SimpleSnitch\n\
         seed_provider:\n  - class_name: org.apache.cassandra.locator.SimpleSeedProvider\n    parameters:\n      - seeds: \"{seeds}\"\n\
         listen_address: {host}\n\
         rpc_address: {host}\n\
         storage_port: {storage}\n\
         native_transport_port: {native}\n\
         start_native_transport: true\n\
         data_file_directories:\n  - {root}/data\n\
         commitlog_directory: {root}/commitlog\n\
         saved_caches_directory: {root}/saved_caches\n\
         hints_directory: {root}/hints\n\
         commitlog_sync: periodic\n\
         commitlog_sync_period: 10000ms\n\
         hinted_handoff_enabled: true\n\
         max_hint_window: 3h\n\
         concurrent_compactors: 1\n\
         auto_snapshot: false\n\
         # Sized for a ring sharing a small machine (issue 15): few request workers, one flush\n\
         # writer, throttled compaction.\n\
         concurrent_reads: {workers}\n\
         concurrent_writes: {workers}\n\
         concurrent_counter_writes: {workers}\n\
         concurrent_materialized_view_writes: {workers}\n\
         memtable_flush_writers: 1\n\
         compaction_throughput: 16MiB/s\n\
         {auth}",
        name = t.name,
        token = initial_token(i, c.count),
        seeds = seeds.join(","),
        host = t.cassandra_host(i),
        storage = c.storage_port,
        native = c.native_port,
        workers = 4 * c.processors,
    );
    std::fs::write(d.conf.join("cassandra.yaml"), yaml)?;
    std::fs::write(d.conf.join("logback.xml"), LOGBACK)?;
    std::fs::write(d.conf.join("jmx-exporter.yaml"), JMX_AGENT_CONFIG)?;
    Ok(())
}

// Everything to stdout, which the launcher appends to the node's log file.
const LOGBACK: &str = r#"<configuration scan="false">
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%d{HH:mm:ss.SSS} %-5level [%thread] %logger{0}: %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="STDOUT"/></root>
</configuration>
"#;

/// The JVM flags Cassandra needs on Java 17 (its own jvm17-server.options and cassandra-env.sh,
/// reduced to what a node here needs).
fn jvm_args(r: &Running, i: usize, d: &NodeDirs, lib: &Path) -> Result<Vec<String>> {
    let c = &r.topology().cassandra;
    let mut a: Vec<String> = vec![
        format!("-Xms{}m", c.heap_mb),
        format!("-Xmx{}m", c.heap_mb),
        "-Xss256k".into(),
        "-XX:+UseG1GC".into(),
        "-XX:+ParallelRefProcEnabled".into(),
        "-XX:MaxGCPauseMillis=300".into(),
        "-XX:+PerfDisableSharedMem".into(),
        "-XX:+ExitOnOutOfMemoryError".into(),
        // The JVM's and Cassandra's own view of the processors (see CassandraSection::processors).
        format!("-XX:ActiveProcessorCount={}", c.processors),
        format!("-Dcassandra.available_processors={}", c.processors),
        format!("-XX:ParallelGCThreads={}", c.processors),
        "-XX:ConcGCThreads=1".into(),
        // C1 only: in runs of minutes the C2 compiler's work was most of the ring's CPU (the
        // cassandra stage's 2-of-everything config: 4.3 -> 1.9 ms of ring CPU per request);
        // C1 code is fast enough for a few hundred requests per second.
        "-XX:TieredStopAtLevel=1".into(),
        // Cassandra's approximate clock (request deadlines, timeouts) ticks every 2 ms by default:
        // 500 wakeups a second per node, its ScheduledFastTasks thread ~0.015 cores each, idle or
        // not. 10 ms (the same property's default in Cassandra 3.x) is precise enough for timeouts
        // of seconds.
        "-Dcassandra.approximate_time_precision_ms=10".into(),
        "-Djava.net.preferIPv4Stack=true".into(),
        "-Djdk.attach.allowAttachSelf=true".into(),
        "-Dio.netty.tryReflectionSetAccessible=true".into(),
    ];
    for m in [
        "java.base/jdk.internal.misc",
        "java.management.rmi/com.sun.jmx.remote.internal.rmi",
        "java.rmi/sun.rmi.registry",
        "java.rmi/sun.rmi.server",
        "java.sql/java.sql",
        "java.base/java.lang.ref",
        "jdk.unsupported/sun.misc",
    ] {
        a.push(format!("--add-exports={m}=ALL-UNNAMED"));
    }
    for m in [
        "java.base/java.lang.module",
        "java.base/jdk.internal.loader",
        "java.base/jdk.internal.ref",
        "java.base/jdk.internal.reflect",
        "java.base/jdk.internal.math",
        "java.base/jdk.internal.module",
        "java.base/jdk.internal.util.jar",
        "jdk.management/com.sun.management.internal",
        "java.base/sun.nio.ch",
        "java.base/java.io",
        "java.base/java.lang.reflect",
        "java.base/java.lang",
        "java.base/java.util",
    ] {
        a.push(format!("--add-opens={m}=ALL-UNNAMED"));
    }
    let root = d.root.display();
    if r.topology().exporters_on() {
        // Serves the node's metrics over HTTP on its own address (Prometheus' target).
        let (host, port, _) = r.topology().cassandra_metrics_addr(i);
        let config = d.conf.join("jmx-exporter.yaml");
        a.push(format!("-javaagent:{}={host}:{port}:{}", jmx_agent(r)?.display(), config.display()));
    }
    if r.secrets.is_some() {
        // The default superuser, which secure_ring replaces, made as soon as a node has joined.
        a.push("-Dcassandra.superuser_setup_delay_ms=0".into());
    }
    a.extend([
        format!("-javaagent:{}", jamm(lib)?.display()),
        format!("-Dcassandra.config=file://{}/cassandra.yaml", d.conf.display()),
        format!("-Dlogback.configurationFile={}/logback.xml", d.conf.display()),
        format!("-Dcassandra.logdir={root}/logs"),
        format!("-Dcassandra.storagedir={root}"),
        format!("-Dcassandra.jmx.local.port={}", c.jmx_port(i)),
        "-Dcassandra-foreground=yes".into(),
        // A fresh ring of seeds has nothing to wait for.
        "-Dcassandra.skip_wait_for_gossip_to_settle=0".into(),
        "-Dcassandra.ring_delay_ms=5000".into(),
        "-cp".into(),
        format!("{}:{}/*", d.conf.display(), lib.display()),
        "org.apache.cassandra.service.CassandraDaemon".into(),
    ]);
    Ok(a)
}

/// Starts the JVM of node i (not waiting for it).
fn spawn_node(r: &mut Running, i: usize, java: &Path, lib: &Path) -> Result<Proc> {
    let t = r.topology().clone();
    let c = &t.cassandra;
    let host = t.cassandra_host(i);
    process::ensure_port_free(&host, c.native_port, &format!("cassandra {i}"))?;
    for (h, p, what) in t.cassandra_other_ports(i) {
        process::ensure_port_free(&h, p, &what)?;
    }
    if t.exporters_on() {
        let (h, p, what) = t.cassandra_metrics_addr(i);
        process::ensure_port_free(&h, p, &what)?;
    }
    let d = node_dirs(r, i)?;
    write_config(r, i, &d)?;
    let log = d.root.join("cassandra.log");
    // The JVM runs as ourselves: it needs no privileges and reads the jars from the cache.
    let mut cmd = process::server_command(java, &log, None)?;
    cmd.args(jvm_args(r, i, &d, lib)?).current_dir(&d.root);
    let child = process::spawn(cmd, &format!("cassandra {i}"))?;
    let pid = child.id();
    let start_time = process::start_time(pid).unwrap_or(0);
    let proc = Proc {
        kind: Kind::Cassandra,
        index: i,
        pid,
        start_time,
        host,
        port: c.native_port,
        pcp_port: None,
        dir: d.root,
        log,
        machine: None,
    };
    r.record(proc.clone(), child)?;
    Ok(proc)
}

/// Starts every node at once and waits for the whole ring; prints how long it took.
pub(crate) fn start_all(r: &mut Running) -> Result<()> {
    let t0 = Instant::now();
    let lib = ensure_jars()?;
    let java = java17()?;
    let fetched = t0.elapsed();
    let n = r.topology().cassandra.count;
    let mut procs = Vec::new();
    for i in 0..n {
        procs.push(spawn_node(r, i, &java, &lib)?);
    }
    let t1 = Instant::now();
    wait_ring(&procs, None, RING_TIMEOUT)?;
    eprintln!(
        "up: cassandra ring of {n} node(s) ready in {:.1?} (JVMs started to ring ready; jars and java check {:.1?})",
        t1.elapsed(),
        fetched
    );
    Ok(())
}

/// The Cassandra tier of a host of `[[hosts]]`: starts its node(s) and waits until each listens
/// for CQL clients (a node of seeds starts alone). That they form one ring, and the login, the
/// control machine sees to once every host's node runs ([`secure_ring`]).
pub(crate) fn start_host_nodes(r: &mut Running) -> Result<()> {
    let lib = jars(r)?;
    let java = java17()?;
    let mut procs = Vec::new();
    for i in r.local(Kind::Cassandra) {
        procs.push(spawn_node(r, i, &java, &lib)?);
    }
    for p in &procs {
        process::wait_until(
            &format!("{} listening for CQL clients on {}", p.label(), p.addr()),
            HOST_START_TIMEOUT,
            || !p.alive(),
            || Ok(process::tcp_accepts(&p.host, p.port)),
        )
        .map_err(|e| e.context(process::tail(&p.log, 30)))?;
    }
    Ok(())
}

/// A node's start on a busy host, alone (the ring forms after): within the control machine's
/// wait for a tier.
const HOST_START_TIMEOUT: Duration = Duration::from_secs(240);

/// The role the app and infra log in as off loopback.
pub const ROLE: &str = "shopbench";
/// The superuser every fresh ring with PasswordAuthenticator has, with a public password.
const DEFAULT_LOGIN: (&str, &str) = ("cassandra", "cassandra");

/// On the control machine, once every host's node listens: waits until the ring is whole (logged
/// in as the default superuser), then makes it the run's: `system_auth` replicated to every node
/// (a login reads its role at LOCAL_QUORUM, the default superuser's at QUORUM, so logins
/// survive a node down), the role [`ROLE`] with the
/// run's password, the default superuser dropped (and refused on every node before this
/// returns); then the whole ring's readiness as on loopback, logged in as [`ROLE`].
pub(crate) fn secure_ring(r: &Running) -> Result<()> {
    let t0 = Instant::now();
    let login = r.cassandra_login().context("a ring off loopback has a password")?;
    let default = Login::new(DEFAULT_LOGIN.0, DEFAULT_LOGIN.1);
    let procs: Vec<Proc> = r.processes().iter().filter(|p| p.kind == Kind::Cassandra).cloned().collect();
    let deadline = Instant::now() + RING_TIMEOUT;
    let left = || deadline.saturating_duration_since(Instant::now());
    let n = procs.len();
    for p in &procs {
        process::wait_until(
            &format!("{} answering the default superuser on {}", p.label(), p.addr()),
            left(),
            || false,
            paced(Some(&default), || {
                cql::release_version(&p.host, p.port, Some(&default), PROBE_TIMEOUT).map(|_| true)
            }),
        )?;
    }
    let agreed = paced(Some(&default), || ring_agrees(&procs, Some(&default)));
    process::wait_until(&format!("cassandra ring of {n}"), left(), || false, agreed)?;
    let first = &procs[0];
    // Each step is idempotent and retried: right after the ALTER a QUORUM read of a role may
    // miss it on the new replicas until read repair (or the role's own write at QUORUM) puts it
    // there.
    let step = |what: &str, as_login: &Login, cql: &str| {
        let run = || cql::execute_secret(&first.host, first.port, as_login, cql, what, PROBE_TIMEOUT).map(|()| true);
        process::wait_until(what, left(), || false, paced(Some(as_login), run))
    };
    // The default superuser's row is on the one replica system_auth had, and its login reads it
    // at QUORUM: after the ALTER a coordinator that asks two other replicas finds no role and
    // refuses the login ("bad credentials") until something repairs the row; a QUORUM read that
    // agrees on nothing repairs nothing (CI saw 295 s of refusals). So the same session, logged in
    // before the ALTER, reads the row at ALL: the replicas disagree and the read repairs it onto
    // every one before it answers.
    let alter = format!(
        "ALTER KEYSPACE system_auth WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': {n}}}"
    );
    let repair = format!("SELECT role FROM system_auth.roles WHERE role = '{}'", DEFAULT_LOGIN.0);
    process::wait_until(
        "replicating system_auth to every node",
        left(),
        || false,
        paced(Some(&default), || {
            let statements = [(alter.as_str(), cql::Consistency::One), (repair.as_str(), cql::Consistency::All)];
            cql::execute_in_one_session(&first.host, first.port, Some(&default), &statements, PROBE_TIMEOUT)
                .map(|()| true)
        }),
    )?;
    step(
        &format!("creating role {ROLE}"),
        &default,
        &format!(
            "CREATE ROLE IF NOT EXISTS {ROLE} WITH PASSWORD = '{}' AND LOGIN = true AND SUPERUSER = true",
            login.password
        ),
    )?;
    step("dropping the default superuser", &login, &format!("DROP ROLE IF EXISTS {}", DEFAULT_LOGIN.0))?;
    // Nodes cache logins for a few seconds (credentials_validity): wait until none takes it.
    for p in &procs {
        process::wait_until(
            &format!("{} refusing the default superuser", p.label()),
            left(),
            || false,
            paced(Some(&default), || match cql::release_version(&p.host, p.port, Some(&default), PROBE_TIMEOUT) {
                Err(e) => Ok(cql::is_login_refused(&e)),
                Ok(_) => Ok(false),
            }),
        )?;
    }
    wait_ring(&procs, Some(&login), left())?;
    eprintln!("up: cassandra ring of {n} node(s) secured and ready from here in {:.1?}", t0.elapsed());
    Ok(())
}

/// On the control machine of `[[hosts]]`: for each node the peers it knows, or why it does not
/// answer (logged in: a host has no login of its own to ask with).
pub(crate) fn status_lines(r: &Running) -> Vec<String> {
    let login = r.cassandra_login();
    let t = r.topology();
    (0..t.count(Kind::Cassandra))
        .map(|i| {
            let (host, port) = t.endpoint(Kind::Cassandra, i);
            let view = match cql::peers(&host, port, login.as_ref(), PROBE_TIMEOUT) {
                Ok(peers) => {
                    let mut peers: Vec<String> = peers.iter().map(|(p, _)| p.to_string()).collect();
                    peers.sort();
                    format!("knows peers {}", peers.join(", "))
                }
                Err(e) => format!("does not answer CQL: {e:#}"),
            };
            format!("cassandra {i} {host}:{port}: {view}")
        })
        .collect()
}

/// Starts node `index` again after it was killed, with its data, config and ports, and waits
/// until it serves and the whole ring sees it up.
pub(crate) fn restart(r: &mut Running, index: usize) -> Result<()> {
    let p = start_node(r, index)?;
    wait_whole_ring(r, &p)
}

/// The first half of [`restart`]: node `index` started with its data, config and ports (on a
/// host of `[[hosts]]`, by its host: crate::remote).
pub(crate) fn start_node(r: &mut Running, index: usize) -> Result<Proc> {
    let lib = jars(r)?;
    let java = java17()?;
    spawn_node(r, index, &java, &lib)
}

/// The second half of [`restart`], where every node is known (loopback, or the control machine
/// of `[[hosts]]`, logged in): the ring whole again with `p` in it.
pub(crate) fn wait_whole_ring(r: &Running, p: &Proc) -> Result<()> {
    let procs: Vec<Proc> = r.processes().iter().filter(|q| q.kind == Kind::Cassandra).cloned().collect();
    // Another host's node is not watched from here: wait_ring asks it.
    let dead: Vec<String> = procs.iter().filter(|q| q.machine.is_none() && !q.alive()).map(|q| q.label()).collect();
    if !dead.is_empty() {
        bail!("restarted {} but {} not running: the ring cannot become whole", p.label(), dead.join(", "));
    }
    wait_ring(&procs, r.cassandra_login().as_ref(), RING_TIMEOUT)
}

/// How long one CQL probe of a node may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// `probe`, pausing a second after each failure when it logs in: every login costs the node a
/// bcrypt check (tens of ms of CPU), which at wait_until's 50 ms pace would slow the very ring
/// being waited for.
fn paced<'a>(login: Option<&Login>, mut probe: impl FnMut() -> Result<bool> + 'a) -> impl FnMut() -> Result<bool> + 'a {
    let pause = if login.is_some() { Duration::from_secs(1) } else { Duration::ZERO };
    move || {
        let answer = probe();
        if !matches!(answer, Ok(true)) {
            std::thread::sleep(pause);
        }
        answer
    }
}

/// Waits until every node answers CQL (logged in as `login`, when given), knows all the others,
/// agrees on the schema and serves a CL=ALL read; a node of this machine that dies meanwhile
/// fails it at once, with the tail of its log (another host's nodes are not watched from here).
fn wait_ring(procs: &[Proc], login: Option<&Login>, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let left = || deadline.saturating_duration_since(Instant::now());
    let n = procs.len();
    let dead = || procs.iter().find(|p| p.machine.is_none() && !p.alive());
    let with_log = |p: &Proc, e: anyhow::Error| e.context(process::tail(&p.log, 30));
    for p in procs {
        process::wait_until(
            &format!("{} on {}", p.label(), p.addr()),
            left(),
            || p.machine.is_none() && !p.alive(),
            paced(login, || cql::release_version(&p.host, p.port, login, PROBE_TIMEOUT).map(|_| true)),
        )
        .map_err(|e| with_log(p, e))?;
    }
    let peers_known = || ring_agrees(procs, login);
    let agreed = paced(login, peers_known);
    process::wait_until(&format!("cassandra ring of {n}"), left(), || dead().is_some(), agreed).map_err(
        |e| match dead() {
            Some(p) => with_log(p, e),
            None => e,
        },
    )?;
    // A keyspace replicated to every node, read at CL=ALL through each node: each coordinator
    // sees every replica up.
    let first = &procs[0];
    let ddl = [
        format!(
            "CREATE KEYSPACE IF NOT EXISTS {PROBE_KEYSPACE} WITH replication = \
             {{'class': 'SimpleStrategy', 'replication_factor': {n}}}"
        ),
        format!("CREATE TABLE IF NOT EXISTS {PROBE_KEYSPACE}.probe (k int PRIMARY KEY, v int)"),
    ];
    for stmt in &ddl {
        process::wait_until(
            "the ring's probe keyspace",
            left(),
            || first.machine.is_none() && !first.alive(),
            paced(login, || {
                cql::execute(&first.host, first.port, login, stmt, Consistency::One, PROBE_TIMEOUT).map(|_| true)
            }),
        )?;
    }
    process::wait_until(
        &format!("CL=ALL reads through all {n} nodes"),
        left(),
        || dead().is_some(),
        paced(login, || {
            peers_known()?;
            for p in procs {
                let read = format!("SELECT v FROM {PROBE_KEYSPACE}.probe WHERE k = 0");
                cql::execute(&p.host, p.port, login, &read, Consistency::All, PROBE_TIMEOUT)
                    .with_context(|| format!("CL=ALL through {}", p.label()))?;
            }
            Ok(true)
        }),
    )
    .map_err(|e| match dead() {
        Some(p) => with_log(p, e),
        None => e,
    })
}

/// Whether every node lists the others as peers and all report one schema version (an error
/// says which does not yet).
fn ring_agrees(procs: &[Proc], login: Option<&Login>) -> Result<bool> {
    let mut versions = Vec::new();
    for p in procs {
        let peers = cql::peers(&p.host, p.port, login, PROBE_TIMEOUT)?;
        let known: Vec<String> = peers.iter().map(|(peer, _)| peer.to_string()).collect();
        let missing: Vec<&Proc> = procs.iter().filter(|q| q.index != p.index && !known.contains(&q.host)).collect();
        if !missing.is_empty() {
            bail!(
                "{} does not know {} yet",
                p.label(),
                missing.iter().map(|q| q.label()).collect::<Vec<_>>().join(", ")
            );
        }
        versions.extend(peers.iter().map(|(_, version)| *version));
        versions.push(cql::schema_version(&p.host, p.port, login, PROBE_TIMEOUT)?);
    }
    versions.sort();
    versions.dedup();
    if versions.len() != 1 {
        bail!("schema versions differ across the ring");
    }
    Ok(true)
}

impl Running {
    /// `host:port` of every Cassandra node (what the app's SHOPBENCH__CASSANDRA__NODES lists).
    pub fn cassandra_nodes(&self) -> Vec<String> {
        let t = self.topology();
        (0..t.count(Kind::Cassandra)).map(|i| t.addr(Kind::Cassandra, i)).collect()
    }

    /// The login of the ring's role [`ROLE`] (none on loopback, where the ring asks none).
    pub fn cassandra_login(&self) -> Option<Login> {
        self.secrets.as_ref().map(|s| Login::new(ROLE, s.cassandra.expose()))
    }

    /// The replication factor the app's keyspace gets on this ring (3, or fewer nodes).
    pub fn cassandra_replication_factor(&self) -> u32 {
        self.topology().cassandra.replication_factor()
    }

    /// Starts Cassandra node `index` again after a kill (same data, config and ports) and waits
    /// until the whole ring serves; returns how long that took.
    pub fn restart_cassandra(&mut self, index: usize) -> Result<Duration> {
        let t0 = Instant::now();
        // Another host's node (whose pid is not this machine's, so never "alive" here) is
        // restarted there or not at all: never spawned on the control machine.
        if self.is_control() {
            self.restart(Kind::Cassandra, index)?;
            return Ok(t0.elapsed());
        }
        let p = self.proc(Kind::Cassandra, index)?.clone();
        if p.alive() {
            bail!("{} (pid {}) is running: kill or stop it before restarting it", p.label(), p.pid);
        }
        restart(self, index)?;
        Ok(t0.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::topology::Topology;

    /// A node on another host is never started on the control machine: its restart is asked of
    /// its host (here one whose SSH port refuses).
    #[test]
    fn a_node_on_another_host_is_not_restarted_on_the_control_machine() {
        let dir = std::env::temp_dir().join(format!("shopbench-cassandra-control-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let t = Topology::parse(
            "name = \"c\"\n[cassandra]\ncount = 1\nhosts = [\"a\"]\n\
             [[hosts]]\nname = \"a\"\naddress = \"127.0.0.1\"\nport = 1\nkey = \"/nonexistent\"\n",
        )
        .unwrap();
        let (host, port) = t.endpoint(Kind::Cassandra, 0);
        let node = Proc {
            kind: Kind::Cassandra,
            index: 0,
            pid: std::process::id(),
            start_time: 0,
            host,
            port,
            pcp_port: None,
            dir: dir.join("cassandra0"),
            log: dir.join("cassandra0/logs/system.log"),
            machine: Some("a".into()),
        };
        let mut r = Running::recorded(&dir, t, vec![node], None);
        let err = r.restart_cassandra(0).unwrap_err();
        let spawned = dir.join("cassandra0").exists();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(format!("{err:#}").contains("host a StartNode(0)"), "{err:#}");
        assert!(!spawned, "a node was prepared on the control machine");
    }

    #[test]
    fn tokens_split_the_ring_evenly() {
        assert_eq!(initial_token(0, 1), i64::MIN);
        assert_eq!(initial_token(0, 3), i64::MIN);
        assert_eq!(initial_token(1, 3), -3074457345618258603);
        assert_eq!(initial_token(2, 3), 3074457345618258602);
        assert_eq!(initial_token(1, 2), 0);
    }

    #[test]
    fn java_17_is_found_or_named_in_the_error() {
        match java17() {
            Ok(java) => assert!(java.is_file()),
            Err(e) => assert!(e.to_string().contains("openjdk-17-jre-headless"), "{e}"),
        }
    }
}
