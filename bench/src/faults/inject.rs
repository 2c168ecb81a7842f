//! Faults beyond a clean SIGKILL of a process group (issue 11): a whole process tree stopped
//! (SIGSTOP) and always continued, a backend's connection slots held by outside sessions, and
//! the processes working on one instance's directory (a rejoin's copy or its new backend).
//!
//! infra has no function for the PIDs of a process tree or for the processes using an instance's
//! directory yet; they are read from /proc here (Linux only), and belong in infra.

use anyhow::{Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

/// (ppid, start time) of `pid` from /proc/PID/stat, `None` when it is gone or a zombie.
fn stat(pid: u32) -> Option<(u32, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    if matches!(f.first(), Some(&"Z") | Some(&"X")) {
        return None;
    }
    Some((f.get(1)?.parse().ok()?, f.get(19)?.parse().ok()?))
}

fn all_pids() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return vec![] };
    entries.flatten().filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok())).collect()
}

/// `root` and all its descendants (walking parent links, since a postmaster's children have
/// their own process groups), parents before children, each with its start time.
pub fn tree(root: u32) -> Vec<(u32, u64)> {
    let mut children: BTreeMap<u32, Vec<(u32, u64)>> = BTreeMap::new();
    let mut root_start = None;
    for pid in all_pids() {
        let Some((ppid, start)) = stat(pid) else { continue };
        if pid == root {
            root_start = Some(start);
        }
        children.entry(ppid).or_default().push((pid, start));
    }
    let Some(start) = root_start else { return vec![] };
    let mut out = vec![(root, start)];
    let mut i = 0;
    while i < out.len() {
        if let Some(c) = children.get(&out[i].0) {
            out.extend(c.iter().copied());
        }
        i += 1;
    }
    out
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) with a positive pid; an error (the process is gone) is fine here.
    unsafe { libc::kill(pid as i32, sig) };
}

/// A process tree held with SIGSTOP; dropping it sends SIGCONT to every process it stopped
/// (still the same process: pid and start time), also on an error or a panic.
pub struct Stopped {
    pids: Vec<(u32, u64)>,
}

impl Stopped {
    /// Stops `root` and every descendant; new children forked meanwhile are caught by walking
    /// the tree again until it holds no running process.
    pub fn tree(root: u32) -> Stopped {
        let mut stopped = Stopped { pids: vec![] };
        let mut seen: BTreeSet<u32> = BTreeSet::new();
        for _ in 0..5 {
            let found: Vec<(u32, u64)> = tree(root).into_iter().filter(|(p, _)| !seen.contains(p)).collect();
            if found.is_empty() {
                break;
            }
            for (pid, start) in found {
                signal(pid, libc::SIGSTOP);
                seen.insert(pid);
                stopped.pids.push((pid, start));
            }
        }
        stopped
    }

    pub fn count(&self) -> usize {
        self.pids.len()
    }

    /// Continues every process (the same as dropping it).
    pub fn resume(self) {}
}

impl Drop for Stopped {
    /// Children before their parents (the reverse of the stop order): a parent continued first
    /// could see a still stopped child and act on it (a shell's `wait` returned and the shell
    /// exited in a CI run of the test below).
    fn drop(&mut self) {
        for (pid, start) in self.pids.iter().rev() {
            if stat(*pid).is_some_and(|(_, s)| s == *start) {
                signal(*pid, libc::SIGCONT);
            }
        }
    }
}

/// Processes (other than this one) whose command line names a path under `dir`: the copy of a
/// rejoin (`pg_basebackup -D DIR/data`) and the backend started on it (`postgres -D DIR/data`).
pub fn using_dir(dir: &Path) -> Vec<u32> {
    let dir = dir.to_string_lossy().into_owned();
    let me = std::process::id();
    all_pids()
        .into_iter()
        .filter(|&p| p != me)
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " ").contains(&dir))
                .unwrap_or(false)
        })
        .filter(|p| stat(*p).is_some())
        .collect()
}

/// Live processes of process group `pgid` (a killed pgpool's children keep its group).
pub fn group(pgid: u32) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|&p| {
            let Ok(s) = std::fs::read_to_string(format!("/proc/{p}/stat")) else { return false };
            let Some(rest) = s.rfind(')').map(|i| &s[i + 1..]) else { return false };
            let f: Vec<&str> = rest.split_whitespace().collect();
            f.first().is_some_and(|st| *st != "Z") && f.get(2).and_then(|g| g.parse().ok()) == Some(pgid)
        })
        .collect()
}

/// SIGKILL to `pids` and every descendant.
pub fn kill_trees(pids: &[u32]) -> usize {
    let mut n = 0;
    for &p in pids {
        for (pid, _) in tree(p) {
            signal(pid, libc::SIGKILL);
            n += 1;
        }
    }
    n
}

/// Outside sessions holding a backend's connection slots (as the superuser `postgres`, like a
/// person's psql sessions), until dropped.
pub struct Sessions {
    pub opened: usize,
    /// Why the next one was refused ("sorry, too many clients already").
    pub refused: Option<String>,
    held: Vec<(tokio_postgres::Client, tokio::task::JoinHandle<()>)>,
}

impl Sessions {
    /// Opens up to `max` sessions to `host:port`, stopping at the first refused.
    pub async fn open(host: &str, port: u16, max: usize) -> Result<Sessions> {
        let mut s = Sessions { opened: 0, refused: None, held: vec![] };
        let conf = format!("host={host} port={port} user=postgres dbname=postgres connect_timeout=3");
        for _ in 0..max {
            match tokio::time::timeout(Duration::from_secs(5), tokio_postgres::connect(&conf, tokio_postgres::NoTls))
                .await
            {
                Ok(Ok((client, conn))) => {
                    let task = tokio::spawn(async move {
                        let _ = conn.await;
                    });
                    s.held.push((client, task));
                    s.opened += 1;
                }
                Ok(Err(e)) => {
                    s.refused = Some(e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_string()));
                    break;
                }
                Err(_) => {
                    s.refused = Some("no connection within 5 s".into());
                    break;
                }
            }
        }
        anyhow::ensure!(s.opened > 0, "no session to {host}:{port}: {}", s.refused.clone().unwrap_or_default());
        Ok(s)
    }

    /// Closes every session.
    pub fn close(self) {}
}

impl Drop for Sessions {
    fn drop(&mut self) {
        for (_, task) in self.held.drain(..) {
            task.abort();
        }
    }
}

/// SIGKILL of one process only (not its group): pgpool's main process, leaving its children.
pub fn kill_one(pid: u32) -> Result<()> {
    signal(pid, libc::SIGKILL);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while stat(pid).is_some() {
        if std::time::Instant::now() > deadline {
            return Err(anyhow::anyhow!("pid {pid} still alive 5 s after SIGKILL")).context("kill_one");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopped_tree_is_continued_when_dropped() {
        // sh -> sleep: stop both, see them stopped (state T), drop, see them running again.
        let mut child = std::process::Command::new("sh").args(["-c", "sleep 30 & wait"]).spawn().unwrap();
        let root = child.id();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while tree(root).len() < 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let pids = tree(root);
        assert_eq!(pids.len(), 2, "sh and its sleep: {pids:?}");
        let state = |pid: u32| {
            let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            s[s.rfind(')').unwrap() + 2..].chars().next().unwrap()
        };
        let wait_state = |pid: u32, want: char| {
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while state(pid) != want && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            state(pid)
        };
        let guard = Stopped::tree(root);
        assert_eq!(guard.count(), 2);
        for (pid, _) in &pids {
            assert_eq!(wait_state(*pid, 'T'), 'T', "pid {pid} stopped");
        }
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _held = guard;
            panic!("a fault that fails while the tree is stopped");
        }));
        assert!(r.is_err());
        for (pid, _) in &pids {
            assert_eq!(wait_state(*pid, 'S'), 'S', "pid {pid} continued after the panic");
        }
        assert_eq!(kill_trees(&[root]), 2);
        let _ = child.wait();
    }
}
