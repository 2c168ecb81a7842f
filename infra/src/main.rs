//! `shopbench-infra`: start, inspect, check and stop a topology (see infra/README.md).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use infra::hosts::{CutPort, EmulatedHosts, InstanceCut, SshHost};
use infra::remote::{run_on_host, HostCommand, HostOptions, HostPaths};
use infra::{repo_root, Kind, Overrides, Running, Signal, Tier, Topology};

const USAGE: &str = "\
usage: shopbench-infra <command> [options]

commands:
  up        start the topology: PostgreSQL, pgpool-II, database shop, Redis, Sentinel, web,
            nginx, Prometheus
  down      stop everything of the run dir, in reverse order
  status    which processes are up; each pgpool's view of each backend; Redis roles
  check     compare every table on every backend (exit 0 only when identical)
  rejoin    --backend I: resync a failed backend from a live one and attach it on every pgpool
  restart   --kind K --index I: start a killed instance again (a backend: the rejoin)
  kill      --kind K --index I --signal KILL|STOP|CONT: signal an instance and all its
            descendants by PID (on [[hosts]]: on its host, over SSH); prints each process's state
  install   install the Debian packages (runs scripts/install)
  emulate   --count N --dir DIR --out FILE.json: N emulated hosts (network namespaces with sshd,
            root only; named host0..) left running, and the --topology placed on them with this
            machine among its clients, written to FILE.json (for scripts/test)
  emulate-down --dir DIR: end the emulated hosts made in DIR
  cut       --from K:I --to K:J [--port serve|storage]: a network partition (topology with
            [[hosts]]): K:I's host no longer reaches K:J's port (its serving port, or between two
            Cassandra nodes the storage port) (nftables on that host, over SSH; docs/multi-host.md)
  heal      [--from K:I --to K:J [--port P]]: lift that cut (without them: every cut on every host)
  host      prepare|up|stop|down|status|check|restart|kill|detach|standby|hold-writes|promote|attach|
            end-orphans|follow|start-node|forget-node-status: one host's part of a topology with [[hosts]], as the
            control machine runs it there over SSH (--host NAME --secrets FILE [--tier T]
            [--kind K --index P --signal S --backend I --source S --within-ms MS])
  cql       --node HOST:PORT --cql STATEMENT [--user NAME --password-file FILE]: one CQL statement on
            one Cassandra node (at QUORUM), its rows printed (the project's cqlsh-less probe)

options:
  --topology FILE     topology file (default infra/topologies/default.toml)
  --run-dir DIR       run dir (default run/<topology name> at the repository root)
  --postgres N --pgpool M --web K --nginx J --prometheus 0|1   override the file's counts (up)
  --redis N --sentinel S   Redis instances (1 master + N-1 replicas) and sentinels (up)
  --cassandra N       Cassandra nodes (1..3; the ring's jars are fetched with Maven once) (up)
  --only db           only the stores: PostgreSQL, pgpool-II, Redis, Sentinel (up)
  --web-binary PATH   the shopbench binary (up; default the file's [web] binary, taken from the
                      file's directory, else shopbench beside this program)
  --backend I         the backend to rejoin
  --kind K --index I  the instance to restart or kill (K: a kind of the topology, e.g. pgpool)
  --signal S          the signal of kill: KILL, STOP or CONT

A topology with [[hosts]] places its instances on those machines: `up`, `status`, `check`,
`rejoin`, `restart`, `kill` and `down` on the control machine drive each host over SSH
(infra/README.md, docs/multi-host.md).";

struct Args {
    command: String,
    topology: PathBuf,
    run_dir: Option<PathBuf>,
    overrides: Overrides,
    backend: Option<usize>,
    kind: Option<Kind>,
    index: Option<usize>,
    /// `kill` (and `host kill`): the signal.
    signal: Option<Signal>,
    /// `host` only: its verb, the host's name, its secrets file and the tier.
    host_verb: Option<String>,
    machine: Option<String>,
    secrets: Option<PathBuf>,
    tier: Option<Tier>,
    /// `host` rejoin steps: the backend copied from and how long a step may hold writes.
    source: Option<usize>,
    within_ms: Option<u64>,
    /// `cut` and `heal`: the instances.
    from: Option<(Kind, usize)>,
    to: Option<(Kind, usize)>,
    port: CutPort,
    /// `cql` only: the node, the statement, the login.
    node: Option<String>,
    cql: Option<String>,
    user: Option<String>,
    password_file: Option<PathBuf>,
    /// `emulate` only.
    count: Option<usize>,
    dir: Option<PathBuf>,
    out: Option<PathBuf>,
}

fn parse_args() -> Result<Args> {
    let mut it = std::env::args().skip(1);
    let command = it.next().context("no command")?;
    let mut args = Args {
        command,
        topology: repo_root().join("infra/topologies/default.toml"),
        run_dir: None,
        overrides: Overrides::default(),
        backend: None,
        kind: None,
        index: None,
        signal: None,
        host_verb: None,
        machine: None,
        secrets: None,
        tier: None,
        source: None,
        within_ms: None,
        from: None,
        to: None,
        port: CutPort::Serve,
        node: None,
        cql: None,
        user: None,
        password_file: None,
        count: None,
        dir: None,
        out: None,
    };
    if args.command == "host" {
        args.host_verb =
            Some(it.next().context("host needs a verb: prepare, up, stop, down, status, check, restart or kill")?);
    }
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        let count = |v: String| v.parse::<usize>().with_context(|| format!("{flag}: not a count: {v:?}"));
        match flag.as_str() {
            "--topology" => args.topology = value()?.into(),
            "--run-dir" => args.run_dir = Some(value()?.into()),
            "--postgres" => args.overrides.postgres = Some(count(value()?)?),
            "--pgpool" => args.overrides.pgpool = Some(count(value()?)?),
            "--redis" => args.overrides.redis = Some(count(value()?)?),
            "--sentinel" => args.overrides.sentinel = Some(count(value()?)?),
            "--cassandra" => args.overrides.cassandra = Some(count(value()?)?),
            "--web" => args.overrides.web = Some(count(value()?)?),
            "--nginx" => args.overrides.nginx = Some(count(value()?)?),
            "--prometheus" => args.overrides.prometheus = Some(count(value()?)?),
            // From the current directory, as any path on a command line.
            "--web-binary" => args.overrides.web_binary = Some(std::path::absolute(value()?)?),
            "--backend" => args.backend = Some(count(value()?)?),
            "--kind" => args.kind = Some(Kind::parse(&value()?)?),
            "--index" => args.index = Some(count(value()?)?),
            "--signal" => args.signal = Some(Signal::parse(&value()?)?),
            "--host" => args.machine = Some(value()?),
            "--secrets" => args.secrets = Some(value()?.into()),
            "--tier" => args.tier = Some(Tier::parse(&value()?)?),
            "--source" => args.source = Some(count(value()?)?),
            "--within-ms" => args.within_ms = Some(count(value()?)? as u64),
            "--count" => args.count = Some(count(value()?)?),
            "--from" => args.from = Some(instance(&value()?)?),
            "--to" => args.to = Some(instance(&value()?)?),
            "--port" => {
                args.port = match value()?.as_str() {
                    "serve" => CutPort::Serve,
                    "storage" => CutPort::Storage,
                    other => bail!("--port {other}: serve or storage"),
                }
            }
            "--dir" => args.dir = Some(value()?.into()),
            "--out" => args.out = Some(value()?.into()),
            "--node" => args.node = Some(value()?),
            "--cql" => args.cql = Some(value()?),
            "--user" => args.user = Some(value()?),
            "--password-file" => args.password_file = Some(value()?.into()),
            "--only" => match value()?.as_str() {
                "db" => args.overrides.only_db = true,
                other => bail!("--only {other}: only `--only db` exists"),
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown option {other}"),
        }
    }
    Ok(args)
}

fn run(args: Args) -> Result<bool> {
    if args.command == "install" {
        let status = std::process::Command::new(repo_root().join("scripts/install")).status()?;
        return Ok(status.success());
    }
    if args.command == "cql" {
        return cql(&args).map(|()| true);
    }
    if let Some(verb) = &args.host_verb {
        let options = HostOptions {
            tier: args.tier,
            kind: args.kind,
            index: args.index,
            backend: args.backend,
            source: args.source,
            within_ms: args.within_ms,
            signal: args.signal,
        };
        let command = HostCommand::parse(verb, options)?;
        let paths = HostPaths {
            topology: &args.topology,
            run_dir: args.run_dir.as_deref().context("host needs --run-dir")?,
            secrets: args.secrets.as_deref().context("host needs --secrets")?,
            machine: args.machine.as_deref().context("host needs --host NAME")?,
        };
        println!("{}", run_on_host(command, &paths)?);
        return Ok(true);
    }
    let topology = Topology::from_file(&args.topology)?.with_overrides(&args.overrides)?;
    match args.command.as_str() {
        "emulate" => return emulate(topology, &args).map(|()| true),
        "emulate-down" => return EmulatedHosts::destroy(args.dir.as_deref().context("--dir DIR")?).map(|()| true),
        _ => {}
    }
    if matches!(args.command.as_str(), "cut" | "heal") {
        return partition(&topology, &args).map(|()| true);
    }
    let run_dir = args.run_dir.clone().unwrap_or_else(|| repo_root().join("run").join(&topology.name));
    match args.command.as_str() {
        "up" => {
            let running = topology.up(&run_dir)?;
            print_endpoints(&running);
            running.leave_running();
            Ok(true)
        }
        "down" => {
            let t = std::time::Instant::now();
            Running::open(&run_dir)?.down()?;
            eprintln!("down: all stopped in {:.1?}", t.elapsed());
            Ok(true)
        }
        "status" => {
            let running = Running::open(&run_dir)?;
            let status = running.status();
            print!("{status}");
            Ok(status.processes.iter().all(|p| p.up))
        }
        "check" => {
            let report = Running::open(&run_dir)?.check_consistency()?;
            println!("{report}");
            Ok(report.is_identical())
        }
        "rejoin" => {
            let backend = args.backend.context("rejoin needs --backend I")?;
            let mut running = Running::open(&run_dir)?;
            let r = running.rejoin_backend(backend)?;
            println!(
                "rejoined postgres {} from postgres {} in {:.1?} (writes paused {:.1?})",
                r.backend, r.source, r.total, r.writes_paused
            );
            let report = running.check_consistency()?;
            println!("{report}");
            Ok(report.is_identical())
        }
        "restart" => {
            let kind = args.kind.context("restart needs --kind K")?;
            let index = args.index.context("restart needs --index I")?;
            let r = Running::open(&run_dir)?.restart(kind, index)?;
            println!("restarted {kind} {index} in {:.1?}", r.took);
            Ok(true)
        }
        "kill" => {
            let kind = args.kind.context("kill needs --kind K")?;
            let index = args.index.context("kill needs --index I")?;
            let sig = args.signal.context("kill needs --signal KILL|STOP|CONT")?;
            let done = Running::open(&run_dir)?.signal_instance(kind, index, sig)?;
            for p in &done.tree {
                println!("pid {} {:?}", p.pid, p.state);
            }
            println!("SIG{} {kind} {index} and its {} descendant(s)", sig.name(), done.descendants());
            Ok(done.took_effect())
        }
        other => bail!("unknown command {other}\n{USAGE}"),
    }
}

/// `K:I`, e.g. `pgpool:0`.
fn instance(v: &str) -> Result<(Kind, usize)> {
    let (kind, i) = v.split_once(':').with_context(|| format!("{v:?}: expected KIND:INDEX, e.g. pgpool:0"))?;
    Ok((Kind::parse(kind)?, i.parse().with_context(|| format!("{v:?}: not an index"))?))
}

/// `cut` and `heal`.
fn partition(t: &Topology, args: &Args) -> Result<()> {
    let cut = match (args.from, args.to) {
        (Some(from), Some(to)) => Some(InstanceCut { from, to, port: args.port }),
        (None, None) => None,
        _ => bail!("{} needs both --from K:I and --to K:J", args.command),
    };
    match (args.command.as_str(), cut) {
        ("cut", Some(c)) => c.apply(t),
        ("cut", None) => bail!("cut needs --from K:I --to K:J"),
        (_, Some(c)) => c.heal(t),
        (_, None) => t.used_machines().into_iter().try_for_each(SshHost::heal_all),
    }
}

/// `cql`: one statement on one node; the password is read from a file (never an argument, which
/// `ps` shows).
fn cql(args: &Args) -> Result<()> {
    let node = endpoints::HostPort::parse(args.node.as_deref().context("cql needs --node HOST:PORT")?)?;
    let statement = args.cql.as_deref().context("cql needs --cql STATEMENT")?;
    let login = match (&args.user, &args.password_file) {
        (Some(user), Some(file)) => {
            let password = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
            Some(infra::cql::Login::new(user.clone(), password.trim_end()))
        }
        (None, None) => None,
        _ => bail!("cql: --user and --password-file go together"),
    };
    let timeout = std::time::Duration::from_secs(20);
    for row in infra::cql::rows(&node.host, node.port, login.as_ref(), statement, timeout)? {
        println!("{row}");
    }
    Ok(())
}

/// Emulated hosts left running, and the topology placed on them.
fn emulate(template: Topology, args: &Args) -> Result<()> {
    let dir = args.dir.as_deref().context("emulate needs --dir DIR")?;
    let out = args.out.as_deref().context("emulate needs --out FILE.json")?;
    let hosts = EmulatedHosts::create(dir, args.count.context("emulate needs --count N")?)?;
    let machines: Vec<SshHost> =
        hosts.hosts().into_iter().map(|h| SshHost { dir: h.dir.join("shopbench"), ..h }).collect();
    let topology = template.with_hosts(machines, vec![hosts.control_address()])?;
    std::fs::write(out, serde_json::to_vec_pretty(&topology)?).with_context(|| format!("writing {}", out.display()))?;
    eprintln!(
        "emulate: {} hosts up; control machine {}; topology in {}",
        hosts.hosts().len(),
        hosts.control_address(),
        out.display()
    );
    hosts.keep();
    Ok(())
}

/// One "app env:" line: a store's part of what a web instance is given.
fn app_env(env: Vec<(String, String)>) -> String {
    env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
}

fn print_endpoints(r: &Running) {
    let t = r.topology();
    let app = r.settings_for_web(0);
    println!("run dir:   {}", r.run_dir().display());
    if t.count(Kind::Postgres) > 0 {
        println!("backends:  {}", r.backend_endpoints().join(" "));
    }
    if t.count(Kind::Pgpool) > 0 {
        println!("pgpools:   {}", r.pgpool_endpoints().join(" "));
        println!("app env:   {}", app_env(app.postgres.public_env()));
        if app.postgres.password.is_some() {
            let secrets = r.run_dir().join(infra::secrets::SECRETS_FILE);
            println!("password:  SHOPBENCH__POSTGRES__PASSWORD is the `client` of {} (0600)", secrets.display());
        }
    }
    if t.count(Kind::Redis) > 0 {
        println!("redis:     {} (master: the first)", r.redis_endpoints().join(" "));
    }
    if t.count(Kind::Sentinel) > 0 {
        println!("sentinels: {}", r.sentinel_endpoints().join(" "));
        if let Some(redis) = &app.redis {
            println!("app env:   {}", app_env(redis.public_env()));
            if redis.password.is_some() {
                let secrets = r.run_dir().join(infra::secrets::SECRETS_FILE);
                println!(
                    "passwords: SHOPBENCH__REDIS__PASSWORD is the `redis`, SHOPBENCH__REDIS__SENTINEL_PASSWORD \
                     the `sentinel` of {} (0600)",
                    secrets.display()
                );
            }
        }
    }
    if t.count(Kind::Cassandra) > 0 {
        println!("cassandra: {}", r.cassandra_nodes().join(" "));
        if let Some(cassandra) = &app.cassandra {
            println!("app env:   {}", app_env(cassandra.public_env()));
            if cassandra.password.is_some() {
                let secrets = r.run_dir().join(infra::secrets::SECRETS_FILE);
                println!(
                    "password:  SHOPBENCH__CASSANDRA__PASSWORD is the `cassandra` of {} (0600)",
                    secrets.display()
                );
            }
        }
    }
    if t.count(Kind::Web) > 0 {
        println!("web:       {}", r.web_urls().join(" "));
    }
    if t.count(Kind::Nginx) > 0 {
        println!("nginx:     {}", r.nginx_urls().join(" "));
    }
    if let Some(url) = r.prometheus_url() {
        println!("prometheus: {url}");
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("shopbench-infra: {e:#}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("shopbench-infra: {e:#}");
            ExitCode::FAILURE
        }
    }
}
