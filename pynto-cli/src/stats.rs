//! Latency summaries for `ping` and `bench`: min, median, mean, p99 and max in microseconds.

use std::time::Duration;

/// A summary of round-trip times.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// How many samples.
    pub count: usize,
    /// Fastest, in microseconds.
    pub min: f64,
    /// Median (the mean of the two middle samples for an even count).
    pub median: f64,
    /// Arithmetic mean.
    pub mean: f64,
    /// 99th percentile, nearest rank.
    pub p99: f64,
    /// Slowest.
    pub max: f64,
}

/// Summarize `samples`; `None` when there are none.
pub fn summarize(samples: &[Duration]) -> Option<Summary> {
    if samples.is_empty() {
        return None;
    }
    let mut us: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e6).collect();
    us.sort_by(f64::total_cmp);
    let n = us.len();
    let median = if n % 2 == 1 {
        us[n / 2]
    } else {
        (us[n / 2 - 1] + us[n / 2]) / 2.0
    };
    let rank = ((0.99 * n as f64).ceil() as usize).clamp(1, n);
    Some(Summary {
        count: n,
        min: us[0],
        median,
        mean: us.iter().sum::<f64>() / n as f64,
        p99: us[rank - 1],
        max: us[n - 1],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarizes() {
        let samples: Vec<Duration> = (1..=100).rev().map(Duration::from_micros).collect();
        let s = summarize(&samples).unwrap();
        assert_eq!((s.count, s.min, s.max, s.p99), (100, 1.0, 100.0, 99.0));
        assert!((s.median - 50.5).abs() < 1e-9);
        assert!((s.mean - 50.5).abs() < 1e-9);
        let s = summarize(&[Duration::from_micros(7)]).unwrap();
        assert_eq!((s.min, s.median, s.p99, s.max), (7.0, 7.0, 7.0, 7.0));
        assert!(summarize(&[]).is_none());
    }
}
