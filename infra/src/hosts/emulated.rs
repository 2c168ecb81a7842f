//! Emulated machines for tests and CI: each host is a network namespace with one veth on a
//! private bridge, its own address in a /24 nobody here uses, its own sshd (keys made per run)
//! and its own directory. The control machine is the bridge's address. No NAT, no route out of
//! the subnet: a host reaches the others and the control machine, nothing else.

use std::fs::{self, File, OpenOptions};
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::{free_subnet, SshHost};
use crate::process;

const TOOL_TIMEOUT: Duration = Duration::from_secs(20);

/// What was made, saved as `<dir>/hosts.json` before anything is made, so that a run killed
/// before its teardown is cleaned up by the next `create` in the same directory.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Made {
    bridge: String,
    subnet: Option<Ipv4Net>,
    hosts: Vec<Host>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Host {
    netns: String,
    veth: String,
    ssh: SshHost,
    /// sshd's pid and kernel start time.
    sshd: Option<(u32, u64)>,
}

/// Hosts made on this machine; torn down by [`EmulatedHosts::down`] or when dropped.
pub struct EmulatedHosts {
    dir: PathBuf,
    made: Made,
}

impl EmulatedHosts {
    /// Makes `count` hosts named `host0..` under `dir` (created; a previous run's leftovers
    /// recorded there are removed first). Needs root (CAP_NET_ADMIN) and openssh-server.
    pub fn create(dir: &Path, count: usize) -> Result<Self> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            bail!("emulated hosts need root (network namespaces, a bridge, sshd)");
        }
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let dir = dir.canonicalize()?;
        clean(&dir)?;
        // Two runs at once must not pick the same subnet: the choice and the bridge's address
        // are made under one machine-wide lock.
        let _lock = lock("/run/shopbench-hosts.lock")?;
        let subnet = free_subnet()?;
        // Interface names are at most 15 bytes: a short tag of this process and of the call keeps
        // runs apart, also two sets of hosts in one process (tests run in parallel).
        static MADE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let call = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 36;
        let tag = format!("sb{:x}-{}", std::process::id() & 0xfffff, char::from_digit(call as u32, 36).expect("< 36"));
        let mut hosts =
            Self { dir: dir.clone(), made: Made { bridge: format!("{tag}br"), subnet: None, hosts: vec![] } };
        hosts.save()?;
        hosts.make_bridge(subnet)?;
        let key = client_key(&dir)?;
        let mut known = String::new();
        for i in 0..count {
            let address = host_address(subnet, i)?;
            let host_dir = dir.join(format!("host{i}"));
            fs::create_dir_all(&host_dir)?;
            let ssh = SshHost {
                name: format!("host{i}"),
                address: IpAddr::V4(address),
                user: "root".into(),
                port: 22,
                key: key.clone(),
                known_hosts: Some(dir.join("known_hosts")),
                dir: host_dir,
            };
            let host = Host { netns: format!("{tag}h{i}"), veth: format!("{tag}v{i}"), ssh, sshd: None };
            hosts.made.hosts.push(host);
            hosts.save()?;
            hosts.make_host(i)?;
            known.push_str(&format!("{address} {}", fs::read_to_string(hosts.host_key(i).with_extension("pub"))?));
            fs::write(dir.join("known_hosts"), &known)?;
        }
        for i in 0..count {
            hosts.start_sshd(i)?;
        }
        Ok(hosts)
    }

    /// How to reach each host.
    pub fn hosts(&self) -> Vec<SshHost> {
        self.made.hosts.iter().map(|h| h.ssh.clone()).collect()
    }

    /// The control machine's address on the hosts' network.
    pub fn control_address(&self) -> IpAddr {
        IpAddr::V4(self.made.subnet.expect("made").hosts().next().expect("a /24 has hosts"))
    }

    /// The network namespace of host `i`, for network faults (nftables inside it).
    pub fn netns(&self, i: usize) -> &str {
        &self.made.hosts[i].netns
    }

    /// Stops every process in the hosts (sshd and whatever was started through it) and removes
    /// the namespaces and the bridge.
    pub fn down(mut self) -> Result<()> {
        let made = std::mem::take(&mut self.made);
        teardown(&self.dir, made)
    }

    /// Leaves the hosts running past this value (a script's hosts, ended later by
    /// [`EmulatedHosts::destroy`] on the same dir).
    pub fn keep(mut self) {
        self.made = Made::default();
    }

    /// Ends the hosts recorded in `dir` (`hosts.json`) by an earlier [`EmulatedHosts::create`].
    pub fn destroy(dir: &Path) -> Result<()> {
        match dir.canonicalize() {
            Ok(dir) => clean(&dir),
            Err(_) => Ok(()),
        }
    }

    fn save(&self) -> Result<()> {
        let path = self.dir.join("hosts.json");
        fs::write(&path, serde_json::to_vec_pretty(&self.made)?).with_context(|| format!("writing {}", path.display()))
    }

    fn make_bridge(&mut self, subnet: Ipv4Net) -> Result<()> {
        let bridge = self.made.bridge.clone();
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        self.made.subnet = Some(subnet);
        self.save()?;
        let control = format!("{}/24", self.control_address());
        ip(&["addr", "add", &control, "dev", &bridge])?;
        ip(&["link", "set", &bridge, "up"])
    }

    fn make_host(&self, i: usize) -> Result<()> {
        let h = &self.made.hosts[i];
        let (ns, veth) = (h.netns.as_str(), h.veth.as_str());
        ip(&["netns", "add", ns])?;
        ip(&["link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns])?;
        ip(&["link", "set", veth, "master", &self.made.bridge, "up"])?;
        let address = format!("{}/24", h.ssh.address);
        ip(&["-n", ns, "addr", "add", &address, "dev", "eth0"])?;
        ip(&["-n", ns, "link", "set", "eth0", "up"])?;
        ip(&["-n", ns, "link", "set", "lo", "up"])?;
        let key = self.host_key(i);
        // A previous run's key would make ssh-keygen ask whether to overwrite it (and fail).
        let _ = fs::remove_file(&key);
        let _ = fs::remove_file(key.with_extension("pub"));
        let mut cmd = Command::new("ssh-keygen");
        cmd.args(["-q", "-t", "ed25519", "-N", "", "-C", &h.ssh.name, "-f"]).arg(&key);
        process::run_ok(cmd, TOOL_TIMEOUT)?;
        let config = format!(
            "# sshd of emulated host {name} (made by shopbench infra; removed with the host)\n\
             ListenAddress {addr}:22\nHostKey {key}\nPidFile none\nAuthorizedKeysFile {auth}\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
             UsePAM no\nStrictModes no\nPrintMotd no\nSubsystem sftp internal-sftp\n",
            name = h.ssh.name,
            addr = h.ssh.address,
            key = key.display(),
            auth = self.dir.join("authorized_keys").display(),
        );
        fs::write(h.ssh.dir.join("sshd_config"), config)?;
        Ok(())
    }

    fn start_sshd(&mut self, i: usize) -> Result<()> {
        // sshd's privilege separation needs this directory (made by the package's service, which
        // nothing starts here).
        fs::create_dir_all("/run/sshd")?;
        let h = &self.made.hosts[i];
        let log = h.ssh.dir.join("sshd.log");
        let mut cmd = process::server_command(Path::new("ip"), &log, None)?;
        // `ip netns exec` execs sshd in place: the pid we get is sshd's; -D keeps it ours, -e logs
        // to stderr (the log file).
        cmd.args(["netns", "exec", &h.netns, "/usr/sbin/sshd", "-D", "-e", "-f"]).arg(h.ssh.dir.join("sshd_config"));
        let mut child = process::spawn(cmd, &format!("sshd of {}", h.ssh.name))?;
        let pid = child.id();
        let start = process::start_time(pid).unwrap_or(0);
        self.made.hosts[i].sshd = Some((pid, start));
        self.save()?;
        let ssh = self.made.hosts[i].ssh.clone();
        process::wait_until(
            &format!("sshd of {}", ssh.name),
            Duration::from_secs(15),
            || matches!(child.try_wait(), Ok(Some(_))),
            || Ok(ssh.run("true", Duration::from_secs(5)).is_ok()),
        )
        .with_context(|| process::tail(&log, 10))
    }

    fn host_key(&self, i: usize) -> PathBuf {
        self.made.hosts[i].ssh.dir.join("ssh_host_ed25519_key")
    }
}

impl Drop for EmulatedHosts {
    fn drop(&mut self) {
        let made = std::mem::take(&mut self.made);
        if !made.bridge.is_empty() {
            if let Err(e) = teardown(&self.dir, made) {
                eprintln!("emulated hosts: teardown: {e:#}");
            }
        }
    }
}

/// Removes what a previous run recorded in `dir` and did not tear down.
fn clean(dir: &Path) -> Result<()> {
    let path = dir.join("hosts.json");
    let Ok(bytes) = fs::read(&path) else { return Ok(()) };
    let made: Made = serde_json::from_slice(&bytes).with_context(|| format!("reading {}", path.display()))?;
    teardown(dir, made)
}

fn teardown(dir: &Path, made: Made) -> Result<()> {
    let mut errors = vec![];
    for h in &made.hosts {
        if let Some((pid, start)) = h.sshd {
            if let Err(e) = process::stop(pid, start, libc::SIGTERM, Duration::from_secs(5), None) {
                errors.push(format!("{}: {e:#}", h.ssh.name));
            }
        }
        // Whatever was started through sshd lives in the namespace: a namespace outlives its
        // name while a process holds it, so every process in it is ended before the name goes.
        if let Ok(pids) = super::ip(&["netns", "pids", &h.netns]) {
            for pid in pids.split_whitespace().filter_map(|p| p.parse::<u32>().ok()) {
                let _ = process::signal(pid, libc::SIGKILL);
            }
        }
        let _ = ip(&["netns", "del", &h.netns]);
        let _ = ip(&["link", "del", &h.veth]);
    }
    let _ = ip(&["link", "del", &made.bridge]);
    if super::ip(&["link", "show", &made.bridge]).is_ok() {
        errors.push(format!("bridge {} is still there", made.bridge));
    }
    for h in &made.hosts {
        if super::ip(&["netns", "pids", &h.netns]).is_ok() {
            errors.push(format!("namespace {} is still there", h.netns));
        }
    }
    if !errors.is_empty() {
        bail!("tearing down the emulated hosts of {}: {}", dir.display(), errors.join("; "));
    }
    fs::remove_file(dir.join("hosts.json")).or_else(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Ok(())
        } else {
            Err(e)
        }
    })?;
    Ok(())
}

/// Host `i`'s address: .1 is the control machine, hosts from .2.
fn host_address(subnet: Ipv4Net, i: usize) -> Result<Ipv4Addr> {
    match subnet.hosts().nth(i + 1) {
        Some(a) if subnet.contains(&a) && a != subnet.broadcast() => Ok(a),
        _ => bail!("{subnet} has no address for host {i}"),
    }
}

/// The run's client key pair (`id_ed25519`), authorized on every host.
fn client_key(dir: &Path) -> Result<PathBuf> {
    let key = dir.join("id_ed25519");
    let _ = fs::remove_file(&key);
    let _ = fs::remove_file(key.with_extension("pub"));
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-q", "-t", "ed25519", "-N", "", "-C", "shopbench-control", "-f"]).arg(&key);
    process::run_ok(cmd, TOOL_TIMEOUT)?;
    let auth = dir.join("authorized_keys");
    fs::copy(key.with_extension("pub"), &auth)?;
    fs::set_permissions(&auth, fs::Permissions::from_mode(0o600))?;
    Ok(key)
}

fn ip(args: &[&str]) -> Result<()> {
    super::ip(args).map(drop)
}

/// An exclusive advisory lock held until the file is dropped.
fn lock(path: &str) -> Result<File> {
    let file = OpenOptions::new().create(true).truncate(false).write(true).open(path)?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        bail!("locking {path}: {}", std::io::Error::last_os_error());
    }
    Ok(file)
}
