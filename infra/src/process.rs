//! Starting, probing and stopping server processes by PID; ports; running tools with a timeout.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

/// The unprivileged account servers run as when we are root (PostgreSQL refuses to run as root).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunAs {
    pub user: String,
    pub uid: u32,
    pub gid: u32,
}

/// `Some(postgres)` when we are root, `None` (run as ourselves) otherwise.
pub fn service_user() -> Result<Option<RunAs>> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let passwd = std::fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
    for line in passwd.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() > 3 && f[0] == "postgres" {
            return Ok(Some(RunAs { user: "postgres".into(), uid: f[2].parse()?, gid: f[3].parse()? }));
        }
    }
    bail!("we are root and there is no user 'postgres' to run the servers as: run scripts/install")
}

/// Makes `path` (file or directory) owned by the service user.
pub fn give(path: &Path, run_as: Option<&RunAs>) -> Result<()> {
    if let Some(u) = run_as {
        std::os::unix::fs::chown(path, Some(u.uid), Some(u.gid))
            .with_context(|| format!("chown {} to {}", path.display(), u.user))?;
    }
    Ok(())
}

/// A command that runs as the service user, in its own process group (so that a terminal's ^C does
/// not reach it and its whole group can be signalled), output appended to `log`.
pub fn server_command(program: &Path, log: &Path, run_as: Option<&RunAs>) -> Result<Command> {
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening log {}", log.display()))?;
    give(log, run_as)?;
    let mut cmd = Command::new(program);
    cmd.stdin(Stdio::null()).stdout(out.try_clone()?).stderr(out).process_group(0);
    if let Some(u) = run_as {
        // std drops supplementary groups (setgroups(0)) when it changes the uid.
        cmd.uid(u.uid).gid(u.gid);
    }
    Ok(cmd)
}

pub fn spawn(mut cmd: Command, what: &str) -> Result<Child> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.spawn().with_context(|| format!("starting {what} ({program})"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcState {
    Running,
    /// Exited but not yet reaped by its parent (PID 1 here reaps slowly): it is dead.
    Zombie,
    Gone,
}

/// One process as `/proc/<pid>/stat` shows it (parsed by the procfs crate).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcInfo {
    pub pid: u32,
    pub ppid: u32,
    pub pgrp: u32,
    /// Exited but not reaped (Z), or dying (X).
    pub dead: bool,
    /// Kernel start time (clock ticks since boot): with the pid it identifies a process even
    /// after the pid is reused.
    pub start: u64,
    /// CPU ticks (USER_HZ) of the process and of its children already waited for
    /// (utime + stime + cutime + cstime): a short-lived child still counts for its parent.
    pub cpu_ticks: u64,
}

impl ProcInfo {
    fn from_stat(s: procfs::process::Stat) -> Option<ProcInfo> {
        Some(ProcInfo {
            pid: u32::try_from(s.pid).ok()?,
            ppid: u32::try_from(s.ppid).ok()?,
            pgrp: u32::try_from(s.pgrp).ok()?,
            dead: matches!(s.state, 'Z' | 'X'),
            start: s.starttime,
            cpu_ticks: s.utime + s.stime + s.cutime.max(0) as u64 + s.cstime.max(0) as u64,
        })
    }
}

/// `pid`'s entry, if it exists.
pub fn proc_info(pid: u32) -> Option<ProcInfo> {
    let p = procfs::process::Process::new(i32::try_from(pid).ok()?).ok()?;
    ProcInfo::from_stat(p.stat().ok()?)
}

/// Every process of the machine, zombies included.
pub fn all_processes() -> Vec<ProcInfo> {
    let Ok(all) = procfs::process::all_processes() else { return vec![] };
    all.flatten().filter_map(|p| ProcInfo::from_stat(p.stat().ok()?)).collect()
}

/// Busy and total CPU ticks of the whole machine since boot (/proc/stat).
pub fn machine_ticks() -> Option<(u64, u64)> {
    use procfs::CurrentSI;
    let t = procfs::KernelStats::current().ok()?.total;
    let idle = t.idle + t.iowait.unwrap_or(0);
    let total = t.user + t.nice + t.system + idle + t.irq.unwrap_or(0) + t.softirq.unwrap_or(0) + t.steal.unwrap_or(0);
    Some((total - idle, total))
}

/// Kernel start time of `pid` (see [`ProcInfo::start`]).
pub fn start_time(pid: u32) -> Option<u64> {
    proc_info(pid).map(|p| p.start)
}

pub fn proc_state(pid: u32, start: u64) -> ProcState {
    match proc_info(pid) {
        Some(p) if p.start != start => ProcState::Gone,
        Some(p) if p.dead => ProcState::Zombie,
        Some(_) => ProcState::Running,
        None => ProcState::Gone,
    }
}

pub fn alive(pid: u32, start: u64) -> bool {
    proc_state(pid, start) == ProcState::Running
}

/// Does any live process remain in process group `pgid`?
pub fn group_alive(pgid: u32) -> bool {
    all_processes().iter().any(|p| !p.dead && p.pgrp == pgid)
}

pub fn signal(pid: u32, sig: i32) -> Result<()> {
    // SAFETY: kill(2) with a positive pid and a valid signal number.
    if unsafe { libc::kill(pid as i32, sig) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ESRCH) {
            return Err(anyhow!(e).context(format!("signal {sig} to pid {pid}")));
        }
    }
    Ok(())
}

pub fn signal_group(pgid: u32, sig: i32) {
    // SAFETY: a negative pid addresses the process group; errors (group gone) are fine.
    unsafe { libc::kill(-(pgid as i32), sig) };
}

/// Every live process: (pid, parent pid, process group).
fn process_table() -> Vec<(u32, u32, u32)> {
    all_processes().into_iter().filter(|p| !p.dead).map(|p| (p.pid, p.ppid, p.pgrp)).collect()
}

/// The live descendants of `pid` (children, their children, ...), parents before children.
pub fn descendants(pid: u32) -> Vec<u32> {
    let table = process_table();
    let mut out = vec![];
    let mut frontier = vec![pid];
    while let Some(parent) = frontier.pop() {
        for &(child, ppid, _) in &table {
            if ppid == parent && !out.contains(&child) {
                out.push(child);
                frontier.push(child);
            }
        }
    }
    out
}

/// Signals `pid`, its process group and every descendant. A PostgreSQL postmaster's children each
/// run in their own session (setsid), so a signal to its group reaches the postmaster alone: a
/// SIGSTOP of the group left every backend answering. SIGSTOP goes to the parent first (it forks
/// no new child meanwhile), then to the tree, twice (a child forked in between is caught).
pub fn signal_tree(pid: u32, sig: i32) {
    signal_group(pid, sig);
    for _ in 0..2 {
        for child in descendants(pid) {
            let _ = signal(child, sig);
        }
    }
}

/// Processes left over from a process group whose leader `pgid` is gone: e.g. the children of a
/// pgpool whose main process was SIGKILLed alone, which keep serving its port. Empty while the
/// leader lives (its group is its own business then). A pid still used as a group id is never
/// handed to a new process, so the group identifies them.
pub fn orphans(pgid: u32, leader_start: u64) -> Vec<(u32, u64)> {
    if alive(pgid, leader_start) {
        return vec![];
    }
    process_table()
        .into_iter()
        .filter(|&(pid, _, group)| group == pgid && pid != pgid)
        .filter_map(|(pid, _, _)| Some((pid, start_time(pid)?)))
        .collect()
}

/// SIGKILLs each of `procs` by pid and waits until every one is dead (a zombie counts as dead:
/// PID 1 here reaps in ~2 s, and a zombie holds no port).
pub fn kill_all(procs: &[(u32, u64)], timeout: Duration) -> Result<()> {
    for &(pid, start) in procs {
        if alive(pid, start) {
            signal(pid, libc::SIGKILL)?;
        }
    }
    let deadline = Instant::now() + timeout;
    loop {
        let left: Vec<u32> = procs.iter().filter(|(pid, start)| alive(*pid, *start)).map(|(pid, _)| *pid).collect();
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("pids {left:?} survive SIGKILL after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stops the process `pid` (leader of its own group): `sig` to the leader, wait up to `grace`, then
/// SIGKILL to the whole group; finally SIGKILL to any group member left behind (e.g. children of a
/// pgpool whose parent was killed). `child` is our handle when we spawned it, so we reap it.
pub fn stop(pid: u32, start: u64, sig: i32, grace: Duration, mut child: Option<&mut Child>) -> Result<()> {
    let dead = |child: &mut Option<&mut Child>| {
        if let Some(c) = child.as_deref_mut() {
            if matches!(c.try_wait(), Ok(Some(_))) {
                return true;
            }
        }
        proc_state(pid, start) != ProcState::Running
    };
    if !dead(&mut child) {
        signal(pid, sig)?;
        let deadline = Instant::now() + grace;
        while !dead(&mut child) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if !dead(&mut child) {
            signal_group(pid, libc::SIGKILL);
            let deadline = Instant::now() + Duration::from_secs(5);
            while !dead(&mut child) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if !dead(&mut child) {
                bail!("pid {pid} survives SIGKILL");
            }
        }
    }
    if let Some(c) = child {
        let _ = c.wait();
    }
    if group_alive(pid) {
        signal_group(pid, libc::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(5);
        while group_alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(())
}

/// Fails with a message naming the port and, when it can be found, the process holding it.
pub fn ensure_port_free(host: &str, port: u16, what: &str) -> Result<()> {
    let addr = (host, port).to_socket_addrs().with_context(|| format!("resolving {host}"))?.next();
    let Some(addr) = addr else { bail!("{host} does not resolve") };
    if let Err(e) = TcpListener::bind(addr) {
        let holder = port_holder(port).map(|h| format!(", held by {h}")).unwrap_or_default();
        bail!("port {host}:{port} (for {what}) is already taken{holder}: {e}");
    }
    Ok(())
}

/// "pid N (comm)" of a process listening on TCP `port`, found through /proc.
pub fn port_holder(port: u16) -> Option<String> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else { continue };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local_port = f.get(1).and_then(|a| a.rsplit(':').next()).and_then(|p| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port) && f.get(3) == Some(&"0A") {
                inodes.push(format!("socket:[{}]", f.get(9)?));
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    for proc_entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = proc_entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { continue };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                if inodes.iter().any(|i| target.as_os_str() == i.as_str()) {
                    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                    return Some(format!("pid {pid} ({})", comm.trim()));
                }
            }
        }
    }
    Some("a process this user cannot see".into())
}

/// Runs a short-lived tool, killing it after `timeout`.
pub fn run_with_timeout(cmd: Command, timeout: Duration) -> Result<Output> {
    run_fed(cmd, None, timeout)
}

/// [`run_ok`] with `input` on the tool's stdin (what must not show on a command line, e.g. a
/// password in SQL).
pub fn run_ok_with_input(cmd: Command, input: Vec<u8>, timeout: Duration) -> Result<String> {
    run_ok_fed(cmd, Some(input), timeout)
}

fn run_fed(mut cmd: Command, input: Option<Vec<u8>>, timeout: Duration) -> Result<Output> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {program}"))?;
    let pid = child.id();
    if let (Some(bytes), Some(mut stdin)) = (input, child.stdin.take()) {
        // A thread of its own: a tool that does not read would otherwise block us before the timeout.
        std::thread::spawn(move || {
            let _ = stdin.write_all(&bytes);
        });
    }
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(out) => Ok(out?),
        Err(_) => {
            signal(pid, libc::SIGKILL)?;
            let _ = rx.recv_timeout(Duration::from_secs(5));
            bail!("{program} did not finish within {timeout:?}")
        }
    }
}

/// Like [`run_with_timeout`], failing with the tool's stderr when it exits non-zero.
pub fn run_ok(cmd: Command, timeout: Duration) -> Result<String> {
    run_ok_fed(cmd, None, timeout)
}

fn run_ok_fed(cmd: Command, input: Option<Vec<u8>>, timeout: Duration) -> Result<String> {
    let program = Path::new(cmd.get_program()).file_name().unwrap_or_default().to_string_lossy().into_owned();
    let out = run_fed(cmd, input, timeout)?;
    if !out.status.success() {
        bail!("{program} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Polls `probe` until it returns Ok(true) or `timeout` passes; `exited` tells whether the server
/// died meanwhile (then waiting longer is pointless). Errors carry the last probe error.
pub fn wait_until(
    what: &str,
    timeout: Duration,
    mut exited: impl FnMut() -> bool,
    mut probe: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("not ready");
    loop {
        match probe() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last = format!("{e:#}"),
        }
        if exited() {
            bail!("{what} exited while starting (last probe: {last})");
        }
        if Instant::now() >= deadline {
            bail!("{what} not ready after {timeout:?} (last probe: {last})");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The last `n` lines of a log file, indented, for error messages.
pub fn tail(path: &Path, n: usize) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(path) {
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let mut buf = Vec::new();
        use std::io::Seek;
        let _ = f.seek(std::io::SeekFrom::Start(len.saturating_sub(16 * 1024)));
        let _ = f.read_to_end(&mut buf);
        text = String::from_utf8_lossy(&buf).into_owned();
    }
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    let body: Vec<String> = lines[start..].iter().map(|l| format!("    | {l}")).collect();
    format!(
        "last lines of {}:\n{}",
        path.display(),
        if body.is_empty() { "    | (empty)".into() } else { body.join("\n") }
    )
}

/// A minimal HTTP/1.1 GET (no dependencies): returns the status code and body.
pub fn http_get(host: &str, port: u16, path: &str, timeout: Duration) -> Result<(u16, String)> {
    let addr = (host, port).to_socket_addrs()?.next().context("no address")?;
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n")?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    let resp = String::from_utf8_lossy(&resp);
    let code = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("not an HTTP response: {:?}", resp.chars().take(80).collect::<String>()))?;
    let body = resp.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((code, body))
}

pub fn tcp_accepts(host: &str, port: u16) -> bool {
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_millis(300)).is_ok())
}

/// State (as in /proc/net/tcp: 0x01 ESTABLISHED, 0x08 CLOSE_WAIT, ...) of the local TCP socket
/// from `local_port` to `remote_port`.
pub fn tcp_state(local_port: u16, remote_port: u16) -> Option<u8> {
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else { continue };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let port =
                |i: usize| f.get(i).and_then(|a| a.rsplit(':').next()).and_then(|p| u16::from_str_radix(p, 16).ok());
            if port(1) == Some(local_port) && port(2) == Some(remote_port) {
                return f.get(3).and_then(|s| u8::from_str_radix(s, 16).ok());
            }
        }
    }
    None
}

/// Live children of `parent`: (pid, start time, process title).
pub fn children(parent: u32) -> Vec<(u32, u64, String)> {
    all_processes()
        .into_iter()
        .filter(|p| !p.dead && p.ppid == parent)
        .filter_map(|p| {
            let title = std::fs::read(format!("/proc/{}/cmdline", p.pid)).ok()?;
            let title = String::from_utf8_lossy(&title).replace('\0', " ").trim().to_string();
            Some((p.pid, p.start, title))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_in_proc_with_its_parent_and_group() {
        let me = proc_info(std::process::id()).expect("our own entry");
        // SAFETY: getppid and getpgrp have no preconditions.
        let (ppid, pgrp) = unsafe { (libc::getppid() as u32, libc::getpgrp() as u32) };
        assert_eq!((me.ppid, me.pgrp, me.dead), (ppid, pgrp, false));
        assert_eq!(proc_state(me.pid, me.start), ProcState::Running);
        assert_eq!(proc_state(me.pid, me.start + 1), ProcState::Gone, "another start time is another process");
        assert!(all_processes().iter().any(|p| (p.pid, p.start) == (me.pid, me.start)));
        let (busy, total) = machine_ticks().expect("/proc/stat");
        assert!(busy > 0 && total > busy);
    }
}
