//! Progress lines while a matrix runs: which configuration, which phase and repeat, how much
//! of the load is done, and an estimate of the time left.

use crate::load::Tick;
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub fn fmt_secs(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

struct State {
    configs: usize,
    /// Planned seconds of load per configuration.
    load_per_config: f64,
    /// Measured time outside the load (start, seeding, stop) of finished configurations.
    overheads: Vec<f64>,
    current: usize,
    config_started: Instant,
    /// Seconds of planned load finished in the current configuration.
    load_done: f64,
}

/// Shared by the runner and the tickers of its load phases.
#[derive(Clone)]
pub struct Progress(Arc<Mutex<State>>);

/// Guess of the time outside the load per configuration before one has been measured.
const FIRST_OVERHEAD_GUESS: f64 = 40.0;

impl Progress {
    pub fn new(configs: usize, load_per_config: u64) -> Progress {
        Progress(Arc::new(Mutex::new(State {
            configs,
            load_per_config: load_per_config as f64,
            overheads: Vec::new(),
            current: 0,
            config_started: Instant::now(),
            load_done: 0.0,
        })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Seconds left, given `in_phase` seconds of the running load phase already done.
    fn left(s: &State, in_phase: f64) -> f64 {
        let overhead = if s.overheads.is_empty() {
            FIRST_OVERHEAD_GUESS
        } else {
            s.overheads.iter().sum::<f64>() / s.overheads.len() as f64
        };
        let done_load = s.load_done + in_phase;
        let spent_outside = (s.config_started.elapsed().as_secs_f64() - done_load).max(0.0);
        let current = (s.load_per_config - done_load).max(0.0) + (overhead - spent_outside).max(0.0);
        let later = s.configs.saturating_sub(s.current + 1) as f64 * (s.load_per_config + overhead);
        current + later
    }

    pub fn start_config(&self, index: usize, what: &str) {
        let mut s = self.lock();
        s.current = index;
        s.config_started = Instant::now();
        s.load_done = 0.0;
        let left = Self::left(&s, 0.0);
        eprintln!("bench: [config {}/{}] {what}: about {} left in all", index + 1, s.configs, fmt_secs(left));
    }

    pub fn end_config(&self) {
        let mut s = self.lock();
        let outside = (s.config_started.elapsed().as_secs_f64() - s.load_done).max(0.0);
        s.overheads.push(outside);
    }

    /// A step of the current configuration.
    pub fn step(&self, what: &str) {
        let s = self.lock();
        eprintln!("bench: [config {}/{}] {what}", s.current + 1, s.configs);
    }

    /// A load phase of `planned` seconds finished.
    pub fn load_finished(&self, planned: f64) {
        self.lock().load_done += planned;
    }

    /// A ticker for one load phase, printing every `every` seconds.
    pub fn ticker(&self, phase: String, every: u64) -> Tick {
        let p = self.clone();
        Arc::new(move |elapsed, total, (ok, failed)| {
            let whole = elapsed.floor() as u64;
            if whole == 0 || !whole.is_multiple_of(every) {
                return;
            }
            let s = p.lock();
            let left = Self::left(&s, elapsed.min(total));
            eprintln!(
                "bench: [config {}/{}] {phase}: {}/{} s, {ok} requests measured, {failed} failed; about {} left in all",
                s.current + 1,
                s.configs,
                whole.min(total.round() as u64),
                total.round(),
                fmt_secs(left)
            );
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(fmt_secs(0.4), "0s");
        assert_eq!(fmt_secs(59.0), "59s");
        assert_eq!(fmt_secs(65.0), "1m05s");
        assert_eq!(fmt_secs(7322.0), "2h02m");
    }

    #[test]
    fn time_left_counts_remaining_load_and_overheads() {
        let p = Progress::new(3, 100);
        {
            let s = p.lock();
            // All three configurations ahead: 3 x (100 + guess).
            let left = Progress::left(&s, 0.0);
            assert!((left - 3.0 * (100.0 + FIRST_OVERHEAD_GUESS)).abs() < 1.0, "{left}");
        }
        p.load_finished(60.0);
        let s = p.lock();
        let left = Progress::left(&s, 10.0);
        assert!((left - (30.0 + FIRST_OVERHEAD_GUESS + 2.0 * 140.0)).abs() < 1.0, "{left}");
    }
}
