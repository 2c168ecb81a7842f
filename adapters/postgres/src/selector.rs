//! Which endpoint an attempt goes to: round-robin over the healthy ones, never the same one twice
//! in one operation while an untried one is left. Pure state (atomics), no I/O, so it is unit-tested.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

pub(crate) struct Selector {
    healthy: Vec<AtomicBool>,
    cursor: AtomicUsize,
}

/// The endpoints one operation has tried so far (bit i = endpoint i).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tried(u128);

impl Tried {
    pub(crate) fn add(&mut self, i: usize) {
        self.0 |= 1 << (i % 128);
    }
    pub(crate) fn has(&self, i: usize) -> bool {
        self.0 & (1 << (i % 128)) != 0
    }
}

impl Selector {
    pub(crate) fn new(n: usize) -> Self {
        assert!(n > 0, "at least one endpoint");
        Self { healthy: (0..n).map(|_| AtomicBool::new(true)).collect(), cursor: AtomicUsize::new(0) }
    }

    pub(crate) fn len(&self) -> usize {
        self.healthy.len()
    }

    pub(crate) fn is_healthy(&self, i: usize) -> bool {
        self.healthy[i].load(Ordering::Relaxed)
    }

    /// Takes the endpoint out of rotation; true if it was in (so the caller counts one failover).
    pub(crate) fn mark_down(&self, i: usize) -> bool {
        self.healthy[i].swap(false, Ordering::Relaxed)
    }

    /// Puts the endpoint back; true if it was out.
    pub(crate) fn mark_up(&self, i: usize) -> bool {
        !self.healthy[i].swap(true, Ordering::Relaxed)
    }

    /// The endpoint for the next attempt. Preference: healthy and untried, then untried (an
    /// endpoint marked down may be back before the probe noticed), then healthy, then any.
    /// A shared turn counter picks within the tier, so load spreads evenly over its endpoints.
    pub(crate) fn pick(&self, tried: Tried) -> usize {
        let n = self.len();
        let turn = self.cursor.fetch_add(1, Ordering::Relaxed);
        let tier = |keep: &dyn Fn(usize) -> bool| -> Option<usize> {
            let candidates: Vec<usize> = (0..n).filter(|&i| keep(i)).collect();
            (!candidates.is_empty()).then(|| candidates[turn % candidates.len()])
        };
        tier(&|i| self.is_healthy(i) && !tried.has(i))
            .or_else(|| tier(&|i| !tried.has(i)))
            .or_else(|| tier(&|i| self.is_healthy(i)))
            .unwrap_or(turn % n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picks(s: &Selector, k: usize) -> Vec<usize> {
        (0..k).map(|_| s.pick(Tried::default())).collect()
    }

    #[test]
    fn healthy_endpoints_take_turns() {
        let s = Selector::new(3);
        assert_eq!(picks(&s, 6), vec![0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn a_down_endpoint_is_skipped_until_it_is_up_again() {
        let s = Selector::new(3);
        assert!(s.mark_down(1));
        assert!(!s.mark_down(1), "already down: no second failover");
        assert_eq!(picks(&s, 6), vec![0, 2, 0, 2, 0, 2]);
        assert!(s.mark_up(1));
        assert!(!s.mark_up(1));
        let p = picks(&s, 3);
        assert!(p.contains(&1) && p.contains(&0) && p.contains(&2), "{p:?}");
    }

    #[test]
    fn a_retry_goes_to_an_untried_endpoint_first() {
        let s = Selector::new(3);
        let mut tried = Tried::default();
        let first = s.pick(tried);
        tried.add(first);
        s.mark_down(first);
        let second = s.pick(tried);
        assert_ne!(second, first);
        tried.add(second);
        s.mark_down(second);
        let third = s.pick(tried);
        assert!(third != first && third != second);
        tried.add(third);
        // All tried: prefer whatever is still healthy.
        assert_eq!(s.pick(tried), third);
    }

    #[test]
    fn when_every_endpoint_is_down_they_are_still_tried() {
        let s = Selector::new(2);
        s.mark_down(0);
        s.mark_down(1);
        let mut tried = Tried::default();
        let a = s.pick(tried);
        tried.add(a);
        let b = s.pick(tried);
        assert_ne!(a, b, "an untried endpoint, even if marked down, before repeating one");
        tried.add(b);
        assert!(s.pick(tried) < 2);
    }
}
