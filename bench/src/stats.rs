//! Samples, their order statistics, and the `key=value` lines workers report them in.

use std::time::{Duration, Instant};

/// Durations of single operations, in nanoseconds.
#[derive(Default, Clone)]
pub(crate) struct Samples(pub(crate) Vec<u64>);

impl Samples {
    /// Runs `op` once and records how long it took.
    pub(crate) fn time(&mut self, op: impl FnOnce()) {
        let start = Instant::now();
        op();
        self.0.push(duration_ns(start.elapsed()));
    }

    pub(crate) fn extend(&mut self, other: &Samples) {
        self.0.extend_from_slice(&other.0);
    }

    /// The value below which `fraction` of the samples lie (nearest rank).
    pub(crate) fn quantile(&self, fraction: f64) -> f64 {
        let mut sorted = self.0.clone();
        sorted.sort_unstable();
        if sorted.is_empty() {
            return f64::NAN;
        }
        let rank = ((sorted.len() - 1) as f64 * fraction).round() as usize;
        sorted[rank] as f64
    }

    pub(crate) fn median(&self) -> f64 {
        self.quantile(0.5)
    }

    pub(crate) fn min(&self) -> f64 {
        self.quantile(0.0)
    }

    /// `n=… samples=a,b,c` for a worker's report line.
    pub(crate) fn encode(&self) -> String {
        let list: Vec<String> = self.0.iter().map(u64::to_string).collect();
        format!("n={} samples={}", self.0.len(), list.join(","))
    }

    pub(crate) fn decode(list: &str) -> Samples {
        Samples(list.split(',').filter_map(|n| n.parse().ok()).collect())
    }
}

pub(crate) fn duration_ns(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// The value of `key` in a line of `key=value` fields.
pub(crate) fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
}
