//! What a server logged during a while, read the same way wherever it runs: a log on another host
//! of `[[hosts]]` is read over SSH (its path is that host's; the same path here, if any, is
//! another file), one on this machine from its file. The part written after a mark is copied into
//! a directory of this machine, and read from there.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::hosts::quoted;
use crate::running::Running;
use crate::state::Proc;
use crate::topology::Kind;

const SSH: Duration = Duration::from_secs(60);

/// A log of one instance and its length at the mark.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogMark {
    pub kind: Kind,
    pub index: usize,
    /// The host it is on (none: this machine).
    pub machine: Option<String>,
    /// On that host.
    pub path: PathBuf,
    pub len: u64,
}

impl LogMark {
    /// The name of its copy: "web0-web.log", "nginx0-error.log".
    pub fn copy_name(&self) -> String {
        let file = self.path.file_name().map_or("log".into(), |f| f.to_string_lossy().into_owned());
        format!("{}{}-{file}", self.kind, self.index)
    }
}

impl Running {
    /// The log of every instance of `kind`, marked at its length now: the log its process writes
    /// (`file` none), or `file` in its directory (nginx's "logs/error.log"). A log not written
    /// yet is marked at 0; an unreachable host's, too (what it wrote is asked again later).
    pub fn log_marks(&self, kind: Kind, file: Option<&str>) -> Vec<LogMark> {
        let procs: Vec<&Proc> = self.processes().iter().filter(|p| p.kind == kind).collect();
        procs
            .into_iter()
            .map(|p| {
                let path = file.map_or_else(|| p.log.clone(), |f| p.dir.join(f));
                let mut mark = LogMark { kind, index: p.index, machine: p.machine.clone(), path, len: 0 };
                mark.len = self.log_len(&mark).unwrap_or(0);
                mark
            })
            .collect()
    }

    /// Copies what each log got after its mark into `into` (made if missing), a file per log
    /// ([`LogMark::copy_name`]); returns the copies. A log that cannot be read is reported and
    /// left out.
    pub fn logs_since(&self, marks: &[LogMark], into: &Path) -> Vec<PathBuf> {
        let mut copies = vec![];
        for m in marks {
            let copy = into.join(m.copy_name());
            let done = std::fs::create_dir_all(into)
                .map_err(anyhow::Error::from)
                .and_then(|()| self.log_after(m))
                .and_then(|bytes| std::fs::write(&copy, bytes).map_err(anyhow::Error::from));
            match done {
                Ok(()) => copies.push(copy),
                Err(e) => eprintln!("the log of {} {} was not read: {e:#}", m.kind, m.index),
            }
        }
        copies
    }

    /// Where this machine has `p`'s log once the run is down: its own file, or for another host's
    /// process the copy `down` fetched (`remote/<host>/<kind><i>/`).
    pub fn log_here(&self, p: &Proc) -> PathBuf {
        match &p.machine {
            None => p.log.clone(),
            Some(host) => {
                let file = p.log.file_name().unwrap_or_default();
                fetched_dir(self.run_dir(), host, p).join(file)
            }
        }
    }

    fn log_len(&self, m: &LogMark) -> Result<u64> {
        match self.log_host(m)? {
            None => Ok(std::fs::metadata(&m.path).map(|md| md.len()).unwrap_or(0)),
            Some(h) => {
                let out = h.run(&format!("stat -c %s {} 2>/dev/null || echo 0", quoted(&m.path)), SSH)?;
                out.trim().parse().with_context(|| format!("the size of {}: {out:?}", m.path.display()))
            }
        }
    }

    fn log_after(&self, m: &LogMark) -> Result<Vec<u8>> {
        match self.log_host(m)? {
            None => {
                let mut bytes = Vec::new();
                if let Ok(mut f) = std::fs::File::open(&m.path) {
                    f.seek(SeekFrom::Start(m.len))?;
                    f.read_to_end(&mut bytes)?;
                }
                Ok(bytes)
            }
            // A log not there (never written) is empty, as here.
            Some(h) => {
                let script = format!("[ ! -e {p} ] || tail -c +{} {p}", m.len + 1, p = quoted(&m.path));
                Ok(h.run(&script, SSH)?.into_bytes())
            }
        }
    }

    fn log_host(&self, m: &LogMark) -> Result<Option<&crate::hosts::SshHost>> {
        match &m.machine {
            None => Ok(None),
            Some(name) => self.topology().machine_named(name).map(Some).with_context(|| format!("no host {name}")),
        }
    }
}

/// Where `down` fetches the logs of `p`, a process of `host`.
pub(crate) fn fetched_dir(run_dir: &Path, host: &str, p: &Proc) -> PathBuf {
    run_dir.join(crate::rundir::REMOTE_DIR).join(host).join(format!("{}{}", p.kind, p.index))
}

/// A path on a host, quoted for its shell (a host's dir has no quotes: topology validation).
#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Topology;
    use std::io::Write;

    fn running(dir: &Path, t: Topology, log: &Path, machine: Option<&str>) -> Running {
        let (host, port) = t.endpoint(Kind::Web, 0);
        let proc = Proc {
            kind: Kind::Web,
            index: 0,
            pid: 1,
            start_time: 0,
            host,
            port,
            pcp_port: None,
            dir: dir.to_path_buf(),
            log: log.to_path_buf(),
            machine: machine.map(str::to_string),
        };
        Running::recorded(dir, t, vec![proc], None)
    }

    /// A local log is read from its mark on; another host's is asked over SSH (here a host that
    /// refuses the connection), never read from the file at the same path on this machine.
    #[test]
    fn a_log_on_another_host_is_read_over_ssh_never_from_the_same_path_here() {
        let dir = std::env::temp_dir().join(format!("shopbench-logs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("web.log");
        std::fs::write(&log, "before\n").unwrap();
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let on = |h: &str| {
            format!(
                "[postgres]\ncount = 1\nbase_port = 5000\n{h}[pgpool]\ncount = 1\nbase_port = 5100\n{h}\
                 [web]\ncount = 1\nbase_port = 6000\n{h}"
            )
        };
        let local = Topology::parse(&format!("name = \"l\"\n{}", on(""))).unwrap();
        let remote = Topology::parse(&format!(
            "name = \"r\"\n{}[[hosts]]\nname = \"a\"\naddress = \"127.0.0.1\"\nport = {closed}\nkey = \"/nonexistent\"\n",
            on("hosts = [\"a\"]\n")
        ))
        .unwrap();
        let (here, there) = (running(&dir, local, &log, None), running(&dir, remote, &log, Some("a")));
        let (mark_here, mark_there) = (here.log_marks(Kind::Web, None), there.log_marks(Kind::Web, None));
        assert_eq!(mark_here[0].len, 7);
        assert_eq!((mark_there[0].len, mark_there[0].machine.as_deref()), (0, Some("a")));
        std::fs::OpenOptions::new().append(true).open(&log).unwrap().write_all(b"during\n").unwrap();
        let copies_here = here.logs_since(&mark_here, &dir.join("here"));
        let copies_there = there.logs_since(&mark_there, &dir.join("there"));
        let copied = copies_here.first().map(|c| std::fs::read_to_string(c).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(copied.as_deref(), Some("during\n"));
        assert!(copies_there.is_empty(), "another host's log was read here: {copies_there:?}");
        // After `down`, a host's log is the copy fetched into the run dir.
        let p = &there.processes()[0];
        assert_eq!(there.log_here(p), dir.join("remote/a/web0/web.log"));
        assert_eq!(here.log_here(&here.processes()[0]), log);
    }
}
