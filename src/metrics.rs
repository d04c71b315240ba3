//! How good a one-step prediction is.
//!
//! Prediction gain, in dB: `10·log10(variance of the target signal / MSE)`,
//! the figure speech and audio coding use for predictors (e.g. Makhoul,
//! "Linear prediction: a tutorial review", Proc. IEEE 63(4), 1975). It is
//! reported next to the same figure for the "next sample = current sample"
//! baseline, which any model of music must beat to have learned anything.

use std::ops::Range;

#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Score {
    /// Mean squared error in sample units (full scale = 1).
    pub mse: f64,
    pub gain_db: f64,
    pub baseline_mse: f64,
    pub baseline_gain_db: f64,
    /// Samples scored (frames × channels).
    pub samples: usize,
}

/// Running sums from which a [`Score`] is computed; sums of several
/// stretches merge into one population (not a mean of their dB figures).
#[derive(Clone, Copy, Debug, Default)]
pub struct ScoreSums {
    se: f64,
    se_baseline: f64,
    sum: f64,
    sum2: f64,
    n: usize,
}

impl ScoreSums {
    /// Add predictions `pred[n, C]` (normalized units) of the targets of
    /// `positions` in `signal[N, C]`.
    pub fn add(&mut self, pred: &[f32], signal: &[f32], channels: usize, positions: Range<usize>) {
        let c = channels;
        for (i, p) in positions.enumerate() {
            for ch in 0..c {
                let target = signal[(p + 1) * c + ch] as f64;
                let current = signal[p * c + ch] as f64;
                let e = pred[i * c + ch] as f64 - target;
                self.se += e * e;
                self.se_baseline += (current - target) * (current - target);
                self.sum += target;
                self.sum2 += target * target;
                self.n += 1;
            }
        }
    }

    pub fn merge(&mut self, o: &ScoreSums) {
        self.se += o.se;
        self.se_baseline += o.se_baseline;
        self.sum += o.sum;
        self.sum2 += o.sum2;
        self.n += o.n;
    }

    /// The score, with MSEs brought back to sample units by `scale`.
    pub fn score(&self, scale: f32) -> Score {
        let nf = self.n.max(1) as f64;
        let var = (self.sum2 / nf - (self.sum / nf).powi(2)).max(0.0);
        let s2 = (scale as f64) * (scale as f64);
        let gain = |se: f64| 10.0 * (var / (se / nf)).log10();
        Score {
            mse: self.se / nf * s2,
            gain_db: gain(self.se),
            baseline_mse: self.se_baseline / nf * s2,
            baseline_gain_db: gain(self.se_baseline),
            samples: self.n,
        }
    }
}

/// Score predictions `pred[n, C]` (normalized units) of the targets of
/// `positions` in `signal[N, C]` (normalized by `scale`).
pub fn score(
    pred: &[f32],
    signal: &[f32],
    channels: usize,
    positions: Range<usize>,
    scale: f32,
) -> Score {
    let mut sums = ScoreSums::default();
    sums.add(pred, signal, channels, positions);
    sums.score(scale)
}
