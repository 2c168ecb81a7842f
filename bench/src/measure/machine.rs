//! What the numbers were measured on, and how much memory the web instances took.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub cpu_model: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub os: String,
    pub kernel: String,
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The value after `key:` on the first line that starts with it (`/proc/cpuinfo` style).
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_once(':')).map(|(_, v)| v.trim())
}

/// `VmRSS` of a `/proc/<pid>/status` text, in KiB.
pub fn vm_rss_kib(status: &str) -> Option<u64> {
    field(status, "VmRSS:")?.split_whitespace().next()?.parse().ok()
}

impl Machine {
    pub fn describe() -> Machine {
        let cpuinfo = read("/proc/cpuinfo");
        let mem_kib: f64 = field(&read("/proc/meminfo"), "MemTotal:")
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        let os = read("/etc/os-release")
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_else(|| "unknown".into());
        Machine {
            cpu_model: field(&cpuinfo, "model name").unwrap_or("unknown").to_string(),
            cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            memory_gib: (mem_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            os,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
        }
    }

    pub fn one_line(&self) -> String {
        format!(
            "{} cores ({}), {:.1} GiB memory, {} (kernel {})",
            self.cores, self.cpu_model, self.memory_gib, self.os, self.kernel
        )
    }
}

/// Samples the resident memory of some processes until stopped; keeps each one's peak.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    peaks: Arc<Mutex<Vec<(u32, u64)>>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    pub fn start(pids: Vec<u32>, every: Duration) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peaks = Arc::new(Mutex::new(pids.iter().map(|&p| (p, 0)).collect::<Vec<_>>()));
        let (s, p) = (stop.clone(), peaks.clone());
        let handle = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                for (pid, peak) in p.lock().unwrap_or_else(|e| e.into_inner()).iter_mut() {
                    if let Some(kib) = vm_rss_kib(&read(&format!("/proc/{pid}/status"))) {
                        *peak = (*peak).max(kib);
                    }
                }
                std::thread::sleep(every);
            }
        });
        RssSampler { stop, peaks, handle: Some(handle) }
    }

    /// Each pid with its highest VmRSS seen, in KiB (0 if it could never be read).
    pub fn finish(mut self) -> Vec<(u32, u64)> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        self.peaks.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_rss() {
        let status = "Name:\tshopbench\nVmPeak:\t  900 kB\nVmRSS:\t   23456 kB\nThreads:\t3\n";
        assert_eq!(vm_rss_kib(status), Some(23456));
        assert_eq!(vm_rss_kib("Name: x\n"), None);
    }

    #[test]
    fn samples_this_process() {
        let s = RssSampler::start(vec![std::process::id()], Duration::from_millis(10));
        std::thread::sleep(Duration::from_millis(50));
        let peaks = s.finish();
        assert_eq!(peaks.len(), 1);
        assert!(peaks[0].1 > 1000, "a running test binary has more than 1 MiB resident: {peaks:?}");
    }

    #[test]
    fn describes_this_machine() {
        let m = Machine::describe();
        assert!(m.cores >= 1 && m.memory_gib > 0.0, "{m:?}");
        assert!(m.one_line().contains("cores"));
    }
}
