//! Open-loop pacing: every request of a run has a scheduled send time, so the offered rate does
//! not drop when answers get slow. Each of the `users` Goose users sends every `users / rate`
//! seconds, the users' schedules shifted evenly against each other; a user that is behind sends
//! at once, and its time is counted from the schedule, so a stall shows as long times (as wrk2
//! does), not as fewer requests.

use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
pub struct Pace {
    start: Instant,
    /// Between two sends of one user.
    interval: Duration,
    users: usize,
}

impl Pace {
    /// `rate` requests per second over all `users`, the first ones at `start`.
    pub fn new(start: Instant, rate: f64, users: usize) -> Pace {
        let users = users.max(1);
        let rate = rate.max(1e-3);
        Pace { start, interval: Duration::from_nanos((users as f64 * 1e9 / rate).round() as u64), users }
    }

    /// When `user`'s `n`th request (from 0) is due.
    pub fn scheduled(&self, user: usize, n: u64) -> Instant {
        // In whole nanoseconds: slot n + user/users of an interval, without float rounding.
        let users = self.users as u128;
        let slots = u128::from(n) * users + (user % self.users) as u128;
        let nanos = slots * self.interval.as_nanos() / users;
        self.start + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_users_together_send_at_the_rate_evenly_spread() {
        let t0 = Instant::now();
        let p = Pace::new(t0, 100.0, 4);
        // Each user every 40 ms, the 4 users 10 ms apart.
        assert_eq!(p.scheduled(0, 0), t0);
        assert_eq!(p.scheduled(1, 0) - t0, Duration::from_millis(10));
        assert_eq!(p.scheduled(3, 2) - t0, Duration::from_millis(110));
        let mut all: Vec<Duration> = (0..4).flat_map(|u| (0..25).map(move |n| p.scheduled(u, n) - t0)).collect();
        all.sort();
        assert_eq!(all.len(), 100);
        assert!(all.last().unwrap() < &Duration::from_secs(1), "100 sends in the first second");
        assert!(all.windows(2).all(|w| w[1] - w[0] == Duration::from_millis(10)), "evenly spread");
    }
}
