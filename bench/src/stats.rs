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

/// How many times [`ratio_interval`] resamples: enough that the interval's ends move by
/// well under a percent between seeds.
const RESAMPLES: usize = 2000;

/// The 90 % interval of the ratio `median(ours) / median(baseline)`, by the bootstrap:
/// each sample set is drawn again, with replacement and at its own size, [`RESAMPLES`]
/// times; the interval runs from the 5th to the 95th percentile of those ratios. A ratio
/// whose interval holds its target's limit is not decided by this run: the machine's noise
/// alone could put it on either side. The draws come from a fixed seed, so the same
/// samples always give the same interval. `None` when either set is empty.
pub(crate) fn ratio_interval(ours: &Samples, baseline: &Samples) -> Option<(f64, f64)> {
    if ours.0.is_empty() || baseline.0.is_empty() {
        return None;
    }
    let mut random = SplitMix64(0x5eed_0fb0_0757_4200);
    let mut scratch = Vec::new();
    let mut ratios: Vec<f64> = (0..RESAMPLES)
        .map(|_| {
            let ours = random.median_of_resample(&ours.0, &mut scratch);
            let baseline = random.median_of_resample(&baseline.0, &mut scratch);
            ours / baseline
        })
        .collect();
    ratios.sort_unstable_by(f64::total_cmp);
    let at = |fraction: f64| ratios[((RESAMPLES - 1) as f64 * fraction).round() as usize];
    Some((at(0.05), at(0.95)))
}

/// Sebastiano Vigna's SplitMix64: a small generator, plenty for drawing sample indices.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// The median (nearest rank, as [`Samples::median`]) of `samples.len()` draws from
    /// `samples`, with replacement.
    fn median_of_resample(&mut self, samples: &[u64], scratch: &mut Vec<u64>) -> f64 {
        let len = samples.len() as u64;
        scratch.clear();
        scratch.extend((0..len).map(|_| samples[(self.next() % len) as usize]));
        let rank = ((scratch.len() - 1) as f64 * 0.5).round() as usize;
        *scratch.select_nth_unstable(rank).1 as f64
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_that_do_not_vary_give_a_ratio_without_spread() {
        let ours = Samples(vec![300; 7]);
        let baseline = Samples(vec![600; 5]);
        assert_eq!(ratio_interval(&ours, &baseline), Some((0.5, 0.5)));
    }

    #[test]
    fn the_interval_holds_the_ratio_of_the_medians_and_no_more_than_the_samples_allow() {
        let ours = Samples((100..=120).collect());
        let baseline = Samples((200..=240).collect());
        let (low, high) = ratio_interval(&ours, &baseline).expect("two sets");
        let ratio = ours.median() / baseline.median();
        assert!(low < ratio && ratio < high, "{low} < {ratio} < {high}");
        // No draw can go beyond the extremes of the two sets.
        assert!(
            low >= 100.0 / 240.0 && high <= 120.0 / 200.0,
            "{low}–{high}"
        );
        // Overlapping sets of 21 and 41 samples leave a few percent either side.
        assert!(high - low < 0.1, "{low}–{high}");
    }

    #[test]
    fn the_same_samples_always_give_the_same_interval() {
        let ours = Samples(vec![5, 9, 7, 6, 8]);
        let baseline = Samples(vec![10, 11, 12, 13, 9]);
        assert_eq!(
            ratio_interval(&ours, &baseline),
            ratio_interval(&ours, &baseline)
        );
    }

    #[test]
    fn an_empty_set_gives_no_interval() {
        assert_eq!(
            ratio_interval(&Samples(vec![1]), &Samples(Vec::new())),
            None
        );
        assert_eq!(
            ratio_interval(&Samples(Vec::new()), &Samples(vec![1])),
            None
        );
    }
}
