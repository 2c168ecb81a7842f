//! Cores per component over time: the CPU ticks of each group ([`super::cpu::group_ticks`], a
//! process with all its descendants, read from /proc by infra) sampled about once a second on a
//! thread of its own, turned into one series per group. The exporters' `process_cpu_seconds_total`
//! would give only the exporters' own CPU; this is the tiers' (PostgreSQL with its backends,
//! pgpool with its children, ...), the same reading as the windows' averages.

use super::cpu::{ticks_now, TICKS_PER_SEC};
use crate::observe::series::Series;
use crate::observe::{unix_now, Window};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// (unix time, ticks per group).
type Sample = (f64, BTreeMap<String, u64>);

pub struct CpuSampler {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

fn take(groups: &[(String, Vec<u32>)]) -> Sample {
    (unix_now(), ticks_now(groups))
}

impl CpuSampler {
    /// Samples `groups` every `every` until [`CpuSampler::finish`].
    pub fn start(groups: Vec<(String, Vec<u32>)>, every: Duration) -> CpuSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (s, out) = (stop.clone(), samples.clone());
        let handle = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let sample = take(&groups);
                out.lock().unwrap_or_else(|e| e.into_inner()).push(sample);
                std::thread::sleep(every);
            }
            let last = take(&groups);
            out.lock().unwrap_or_else(|e| e.into_inner()).push(last);
        });
        CpuSampler { stop, samples, handle: Some(handle) }
    }

    /// Stops sampling; cores per group between consecutive samples inside `w`.
    pub fn finish(mut self, w: Window) -> Vec<Series> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        let samples = std::mem::take(&mut *self.samples.lock().unwrap_or_else(|e| e.into_inner()));
        cores(&samples, w)
    }
}

/// Cores of each group between consecutive samples, at the later sample's time, for the
/// intervals that end inside `w`.
fn cores(samples: &[Sample], w: Window) -> Vec<Series> {
    let names: Vec<&String> = samples.first().map(|s| s.1.keys().collect()).unwrap_or_default();
    names
        .into_iter()
        .map(|g| {
            let points = samples
                .windows(2)
                .filter(|p| p[1].0 > w.start && p[1].0 <= w.end + 0.5 && p[1].0 > p[0].0)
                .map(|p| {
                    let ticks = p[1].1.get(g).unwrap_or(&0).saturating_sub(*p[0].1.get(g).unwrap_or(&0));
                    (p[1].0, ticks as f64 / TICKS_PER_SEC / (p[1].0 - p[0].0))
                })
                .collect();
            Series::from_points(g.clone(), points, w.start, 1.0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_become_cores_inside_the_window() {
        let s = |t: f64, a: u64, b: u64| (t, BTreeMap::from([("a".to_string(), a), ("b".to_string(), b)]));
        let samples = vec![s(99.0, 0, 0), s(100.0, 50, 0), s(101.0, 150, 10), s(102.0, 170, 10), s(104.0, 200, 10)];
        let got = cores(&samples, Window { start: 100.0, end: 102.0 });
        assert_eq!(got[0].name, "a");
        assert_eq!(got[0].points, vec![(1.0, 1.0), (2.0, 0.2)]);
        assert_eq!(got[1].points, vec![(1.0, 0.1), (2.0, 0.0)]);
    }

    #[test]
    fn a_spinning_thread_shows_in_its_group() {
        let sampler = CpuSampler::start(vec![("me".into(), vec![std::process::id()])], Duration::from_millis(200));
        let start = unix_now();
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed() < Duration::from_millis(1500) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let series = sampler.finish(Window { start, end: unix_now() });
        let me = &series[0];
        assert!(me.points.len() >= 3, "{me:?}");
        // One thread spins: on a busy machine it gets less than a core, never nothing.
        assert!(me.max().unwrap() > 0.2, "{me:?}");
    }
}
