//! The signals of the fault injection (SIGKILL, SIGSTOP, SIGCONT of an instance's whole process
//! tree) and what each did, as the instance's own machine saw it: on a topology with `[[hosts]]`
//! the host signals its process by PID and answers these facts (JSON) over SSH, since another
//! host's pids mean nothing on the control machine.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use crate::process;
use crate::state::Proc;
use crate::topology::Kind;

/// A signal sent to an instance's process tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Signal {
    Kill,
    Stop,
    Cont,
}

impl Signal {
    pub fn number(self) -> i32 {
        match self {
            Signal::Kill => libc::SIGKILL,
            Signal::Stop => libc::SIGSTOP,
            Signal::Cont => libc::SIGCONT,
        }
    }

    /// The fault injection's signals only (others have no use there, nor a host verb).
    pub fn from_number(sig: i32) -> Result<Signal> {
        Ok(match sig {
            libc::SIGKILL => Signal::Kill,
            libc::SIGSTOP => Signal::Stop,
            libc::SIGCONT => Signal::Cont,
            other => bail!("signal {other}: an instance is sent SIGKILL, SIGSTOP or SIGCONT only"),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Signal::Kill => "KILL",
            Signal::Stop => "STOP",
            Signal::Cont => "CONT",
        }
    }

    /// `KILL`, `STOP`, `CONT` (with or without `SIG`, any case).
    pub fn parse(s: &str) -> Result<Signal> {
        let up = s.to_ascii_uppercase();
        Ok(match up.strip_prefix("SIG").unwrap_or(&up) {
            "KILL" => Signal::Kill,
            "STOP" => Signal::Stop,
            "CONT" => Signal::Cont,
            _ => bail!("signal {s:?}: KILL, STOP or CONT"),
        })
    }
}

/// A process's run state, from its machine's `/proc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Running,
    /// Stopped by a signal (state T).
    Stopped,
    /// Exited (a zombie too), or its pid is another process's now.
    Gone,
}

/// One process of a signalled tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeProc {
    pub pid: u32,
    pub start_time: u64,
    pub state: RunState,
}

/// What a signal to an instance did: its process tree as it was when signalled (the main
/// process first), each process's state once the signal took effect (or 5 s passed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signalled {
    pub kind: Kind,
    pub index: usize,
    pub signal: Signal,
    pub tree: Vec<TreeProc>,
}

impl Signalled {
    /// The processes besides the main one.
    pub fn descendants(&self) -> usize {
        self.tree.len().saturating_sub(1)
    }

    /// Every process of the tree in the state the signal means (SIGKILL: gone; SIGSTOP:
    /// stopped; SIGCONT: running, or gone meanwhile).
    pub fn took_effect(&self) -> bool {
        self.tree.iter().all(|p| p.state == wanted(self.signal) || p.state == RunState::Gone)
            && (self.signal != Signal::Stop || self.tree.first().is_some_and(|p| p.state == RunState::Stopped))
    }

    /// The processes not (yet) in the state the signal means.
    pub fn not_in_effect(&self) -> Vec<TreeProc> {
        self.tree.iter().filter(|p| p.state != wanted(self.signal) && p.state != RunState::Gone).copied().collect()
    }
}

fn wanted(sig: Signal) -> RunState {
    match sig {
        Signal::Kill => RunState::Gone,
        Signal::Stop => RunState::Stopped,
        Signal::Cont => RunState::Running,
    }
}

/// `pid`'s state on this machine, if it is still the process started at `start`.
pub(crate) fn run_state(pid: u32, start: u64) -> RunState {
    let Ok(p) = procfs::process::Process::new(pid as i32) else { return RunState::Gone };
    match p.stat() {
        Ok(s) if s.starttime != start => RunState::Gone,
        Ok(s) if matches!(s.state, 'Z' | 'X' | 'x') => RunState::Gone,
        Ok(s) if matches!(s.state, 'T' | 't') => RunState::Stopped,
        Ok(_) => RunState::Running,
        Err(_) => RunState::Gone,
    }
}

/// Signals `p` (a process of this machine), its group and every descendant
/// (`process::signal_tree`), and answers what the tree it had became. A new child forked
/// between the listing and the signal is signalled too but not listed.
pub(crate) fn signal_local(p: &Proc, sig: Signal) -> Result<Signalled> {
    let pid = p.local_pid()?;
    let mut tree = vec![(pid, p.start_time)];
    tree.extend(process::descendants(pid).into_iter().filter_map(|c| Some((c, process::start_time(c)?))));
    process::signal_tree(pid, sig.number());
    // A signal takes effect when the process next runs: on a busy machine, not at once.
    let deadline = Instant::now() + Duration::from_secs(5);
    let state = |tree: &[(u32, u64)]| -> Vec<TreeProc> {
        tree.iter().map(|&(pid, start_time)| TreeProc { pid, start_time, state: run_state(pid, start_time) }).collect()
    };
    loop {
        let s = Signalled { kind: p.kind, index: p.index, signal: sig, tree: state(&tree) };
        if s.took_effect() || Instant::now() > deadline {
            return Ok(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_and_serialize_by_name() {
        for s in [Signal::Kill, Signal::Stop, Signal::Cont] {
            assert_eq!(Signal::parse(s.name()).unwrap(), s);
            assert_eq!(Signal::parse(&format!("sig{}", s.name().to_lowercase())).unwrap(), s);
            assert_eq!(Signal::from_number(s.number()).unwrap(), s);
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{}\"", s.name()));
        }
        assert!(Signal::parse("TERM").is_err());
        assert!(Signal::from_number(libc::SIGTERM).is_err());
    }

    /// sh -> sleep on this machine: SIGSTOP lists both stopped, SIGCONT both running, SIGKILL
    /// both gone; the JSON a host answers reads back the same.
    #[test]
    fn a_signalled_tree_reports_each_process_state() {
        use std::os::unix::process::CommandExt;
        // Its own process group, as every server is started (process::server_command).
        let mut sh = std::process::Command::new("sh");
        let mut child = sh.args(["-c", "sleep 30 & wait"]).process_group(0).spawn().unwrap();
        let pid = child.id();
        // Whatever fails below, the group goes (a stopped sleep would outlive the test).
        struct KillGroup(i32);
        impl Drop for KillGroup {
            fn drop(&mut self) {
                // SAFETY: kill(2) of the test's own process group.
                unsafe { libc::kill(-self.0, libc::SIGKILL) };
            }
        }
        let _group = KillGroup(pid as i32);
        let deadline = Instant::now() + Duration::from_secs(5);
        while process::descendants(pid).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let p = Proc {
            kind: Kind::Web,
            index: 0,
            pid,
            start_time: process::start_time(pid).unwrap(),
            host: "127.0.0.1".into(),
            port: 1,
            pcp_port: None,
            dir: "/tmp".into(),
            log: "/tmp/x.log".into(),
            machine: None,
        };
        let stopped = signal_local(&p, Signal::Stop).unwrap();
        assert_eq!(stopped.descendants(), 1, "{stopped:?}");
        assert!(stopped.tree.iter().all(|t| t.state == RunState::Stopped), "{stopped:?}");
        let json = serde_json::to_string(&stopped).unwrap();
        assert_eq!(serde_json::from_str::<Signalled>(&json).unwrap(), stopped);
        let resumed = signal_local(&p, Signal::Cont).unwrap();
        assert!(resumed.tree.iter().all(|t| t.state == RunState::Running), "{resumed:?}");
        let killed = signal_local(&p, Signal::Kill).unwrap();
        let _ = child.wait();
        let deadline = Instant::now() + Duration::from_secs(5);
        while run_state(killed.tree[1].pid, killed.tree[1].start_time) != RunState::Gone && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(killed.tree[0].state, RunState::Gone, "{killed:?}");
        assert_eq!(
            run_state(killed.tree[1].pid, killed.tree[1].start_time),
            RunState::Gone,
            "the sleep was killed too"
        );
    }
}
