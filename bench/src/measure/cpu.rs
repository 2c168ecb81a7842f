//! Where the cores went during a measured window: CPU time of each component (a process and all
//! its descendants: PostgreSQL backends, pgpool children, nginx workers) from /proc, so a
//! report can say which process the machine's few cores served.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

/// Linux reports process times in USER_HZ ticks, 100 per second on every architecture Debian
/// ships (the kernel ABI fixes it, whatever CONFIG_HZ is).
pub(crate) const TICKS_PER_SEC: f64 = 100.0;

/// pid -> (ppid, CPU ticks of it and its reaped children), as infra reads /proc.
fn processes() -> HashMap<u32, (u32, u64)> {
    infra::all_processes().into_iter().map(|p| (p.pid, (p.ppid, p.cpu_ticks))).collect()
}

/// Ticks of each group: every process whose ancestry reaches one of the group's root pids.
pub fn group_ticks(procs: &HashMap<u32, (u32, u64)>, groups: &[(String, Vec<u32>)]) -> BTreeMap<String, u64> {
    let mut out: BTreeMap<String, u64> = groups.iter().map(|(g, _)| (g.clone(), 0)).collect();
    for (&pid, &(_, ticks)) in procs {
        let mut p = pid;
        // Bounded walk up the tree (cycles cannot happen in /proc, but a racing snapshot could).
        for _ in 0..64 {
            if let Some((g, _)) = groups.iter().find(|(_, roots)| roots.contains(&p)) {
                *out.get_mut(g).expect("group") += ticks;
                break;
            }
            match procs.get(&p) {
                Some(&(ppid, _)) if ppid > 1 && ppid != p => p = ppid,
                _ => break,
            }
        }
    }
    out
}

/// Ticks of each group now.
pub(crate) fn ticks_now(groups: &[(String, Vec<u32>)]) -> BTreeMap<String, u64> {
    group_ticks(&processes(), groups)
}

pub struct Snapshot {
    at: Instant,
    groups: BTreeMap<String, u64>,
    machine: Option<(u64, u64)>,
}

pub fn snapshot(groups: &[(String, Vec<u32>)]) -> Snapshot {
    Snapshot { at: Instant::now(), groups: ticks_now(groups), machine: infra::machine_ticks() }
}

/// Cores each component used on average between two snapshots, plus the machine's busy cores.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuUse {
    pub cores: BTreeMap<String, f64>,
    /// All processes of the machine together.
    pub machine_busy: Option<f64>,
}

pub fn between(a: &Snapshot, b: &Snapshot) -> CpuUse {
    let secs = (b.at - a.at).as_secs_f64().max(1e-3);
    let cores = b
        .groups
        .iter()
        .map(|(g, t)| (g.clone(), t.saturating_sub(*a.groups.get(g).unwrap_or(&0)) as f64 / TICKS_PER_SEC / secs))
        .collect();
    let machine_busy = match (a.machine, b.machine) {
        (Some((busy_a, total_a)), Some((busy_b, total_b))) if total_b > total_a => {
            let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
            Some((busy_b - busy_a) as f64 / (total_b - total_a) as f64 * cpus)
        }
        _ => None,
    };
    CpuUse { cores, machine_busy }
}

impl CpuUse {
    /// Cores used by processes outside the measured components (other work on the machine).
    pub fn others(&self) -> Option<f64> {
        Some((self.machine_busy? - self.cores.values().sum::<f64>()).max(0.0))
    }

    pub fn one_line(&self) -> String {
        let mut parts: Vec<String> = self.cores.iter().map(|(g, c)| format!("{g} {c:.2}")).collect();
        if let Some(o) = self.others() {
            parts.push(format!("other processes {o:.2}"));
        }
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn groups_take_their_descendants() {
        // 10: postmaster with backends 11, 12 (12 forked 13); 20: nginx master with worker 21.
        let procs: HashMap<u32, (u32, u64)> =
            [(10, (1, 5)), (11, (10, 7)), (12, (10, 1)), (13, (12, 2)), (20, (1, 1)), (21, (20, 9)), (30, (1, 100))]
                .into_iter()
                .collect();
        let groups =
            vec![("postgres".to_string(), vec![10]), ("nginx".to_string(), vec![20]), ("web".into(), vec![99])];
        let t = group_ticks(&procs, &groups);
        assert_eq!(t["postgres"], 15);
        assert_eq!(t["nginx"], 10);
        assert_eq!(t["web"], 0, "a group whose process is gone uses nothing");
    }

    #[test]
    fn this_process_uses_cpu_when_it_spins() {
        // Spins until /proc shows 0.3 s of this process's CPU time: on a busy machine the
        // wall time that takes is longer, so the cores are checked against the time measured.
        let groups = vec![("me".to_string(), vec![std::process::id()])];
        let a = snapshot(&groups);
        let t = Instant::now();
        let mut x = 0u64;
        while snapshot(&groups).groups["me"] < a.groups["me"] + 30 && t.elapsed() < Duration::from_secs(60) {
            for _ in 0..100_000 {
                x = x.wrapping_mul(31).wrapping_add(7);
            }
        }
        std::hint::black_box(x);
        let b = snapshot(&groups);
        let use_ = between(&a, &b);
        let cpu_secs = use_.cores["me"] * (b.at - a.at).as_secs_f64();
        assert!(cpu_secs >= 0.29, "{cpu_secs} s of CPU seen: {use_:?}");
        assert!(use_.machine_busy.unwrap() > 0.0);
        assert!(use_.one_line().starts_with("me "), "{}", use_.one_line());
    }
}
