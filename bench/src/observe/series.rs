//! A named time series as the raw results keep it: (seconds from the window's start, value)
//! points, rounded so the JSON stays small and diffable; a gap (nothing scraped, a 0/0 mean) is
//! a missing point, never a made-up value.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub name: String,
    /// (seconds from the window's start, value), in time order.
    pub points: Vec<(f64, f64)>,
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

impl Series {
    /// The finite points of `points` (unix time, value), times made relative to `start` and
    /// values scaled.
    pub fn from_points(name: String, points: Vec<(f64, f64)>, start: f64, scale: f64) -> Series {
        let points = points
            .into_iter()
            .filter(|(_, v)| v.is_finite())
            .map(|(t, v)| (round(t - start, 3), round(v * scale, 4)))
            .collect();
        Series { name, points }
    }

    /// Adds `other`'s values at the times both have; keeps the times only one has.
    pub fn add(&mut self, other: &Series) {
        for &(t, v) in &other.points {
            match self.points.iter_mut().find(|(u, _)| (*u - t).abs() < 1e-6) {
                Some((_, w)) => *w = round(*w + v, 4),
                None => self.points.push((t, v)),
            }
        }
        self.points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }

    pub fn max(&self) -> Option<f64> {
        self.points.iter().map(|p| p.1).reduce(f64::max)
    }

    pub fn mean(&self) -> Option<f64> {
        (!self.points.is_empty()).then(|| self.points.iter().map(|p| p.1).sum::<f64>() / self.points.len() as f64)
    }
}

/// Events counted per whole second from `start` to `end` (seconds on one clock): a series per
/// class, with a point (0 included) for every second, at the second's end.
pub fn per_second<'a>(events: impl Iterator<Item = (f64, &'a str)>, classes: &[&str], end: f64) -> Vec<Series> {
    let seconds = end.max(0.0).ceil() as usize;
    let mut counts = vec![vec![0u64; seconds]; classes.len()];
    for (t, class) in events {
        let (Some(c), true) = (classes.iter().position(|k| *k == class), t >= 0.0) else { continue };
        if let Some(n) = counts[c].get_mut(t as usize) {
            *n += 1;
        }
    }
    classes
        .iter()
        .zip(counts)
        .map(|(name, n)| Series {
            name: name.to_string(),
            points: n.into_iter().enumerate().map(|(i, k)| ((i + 1) as f64, k as f64)).collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_stay_gaps_and_names_sum() {
        let mut a =
            Series::from_points("x".into(), vec![(100.0, 1.0), (101.0, f64::NAN), (102.0, 0.00123)], 100.0, 1000.0);
        assert_eq!(a.points, vec![(0.0, 1000.0), (2.0, 1.23)]);
        a.add(&Series { name: "x".into(), points: vec![(1.0, 5.0), (2.0, 1.0)] });
        assert_eq!(a.points, vec![(0.0, 1000.0), (1.0, 5.0), (2.0, 2.23)]);
        assert_eq!((a.max(), a.mean()), (Some(1000.0), Some(1007.23 / 3.0)));
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, r#"{"name":"x","points":[[0.0,1000.0],[1.0,5.0],[2.0,2.23]]}"#);
    }

    #[test]
    fn events_are_counted_per_second_with_zeros() {
        let events = [(0.2, "ok"), (0.9, "ok"), (1.5, "5xx"), (2.1, "ok"), (7.0, "ok"), (-1.0, "ok"), (0.5, "other")];
        let s = per_second(events.into_iter(), &["ok", "5xx"], 2.5);
        assert_eq!(s[0].points, vec![(1.0, 2.0), (2.0, 0.0), (3.0, 1.0)]);
        assert_eq!(s[1].points, vec![(1.0, 0.0), (2.0, 1.0), (3.0, 0.0)]);
    }
}
