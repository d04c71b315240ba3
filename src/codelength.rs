//! Bits per sample: what an ideal entropy coder would spend on a signal
//! given a predictor, the figure lossless codecs are compared by.
//!
//! Everything is costed on the 16-bit grid: a sample `x` (full scale 1) is
//! the integer [`to_16bit`]`(x) = round(32768·x)` (ties to even, clamped to
//! `[−32768, 32767]`), and a point prediction is rounded the same way.
//!
//! # A point predictor: adaptive Laplace law on the integer residual
//! The residual `e = s − ŝ` of integers is costed under a discrete Laplace
//! law whose scale follows the residual's recent level:
//! ```text
//! P(e) = F(e + ½) − F(e − ½),   F the Laplace CDF of location 0 and scale b
//! bits = −log2 P(e)
//!       = −log2(1 − exp(−1/(2b)))                                  (e = 0)
//!       = 1 + (|e| − ½)/(b·ln 2) − log2(1 − exp(−1/b))              (e ≠ 0)
//! b = max(m, 0.3),   m ← m + (|e| − m)/32  after each sample,   m = 16 at the start
//! ```
//! The scale is the running mean of `|e|` (the maximum-likelihood Laplace
//! scale of a stretch is its mean `|e|`), updated after the sample is
//! costed, so the cost is causal: what an adaptive arithmetic coder of the
//! residual approaches. The closed forms above avoid subtracting two
//! nearly equal CDF values, so an outlier costs what it should (no floor).
//! This is the estimator of the issue-10 prototype
//! (`../shared/tools/cascade_proto.py`), which floors P at 1e-12; the two
//! differ only on residuals beyond about 27 scales.
//!
//! # A distribution: the model's own probability
//! A μ-law head gives a probability `p_k` to each class `k` (`mulaw`). Class
//! `k` covers `n_k` integers of the 16-bit grid, and the head says nothing
//! about which of them, so each gets `p_k / n_k`: a sample `s` in class `k`
//! costs `−log2(p_k / n_k)` bits.

use crate::mulaw;

/// A full-scale-1 sample on the 16-bit integer grid.
pub fn to_16bit(x: f64) -> i32 {
    if x.is_nan() {
        return 0;
    }
    (x * 32768.0).round_ties_even().clamp(-32768.0, 32767.0) as i32
}

/// `−log2 P(e)` of an integer residual under the discrete Laplace law of scale `b > 0`.
pub fn laplace_bits(e: i64, b: f64) -> f64 {
    let ln2 = std::f64::consts::LN_2;
    if e == 0 {
        -(-(-0.5 / b).exp_m1()).log2()
    } else {
        1.0 + (e.unsigned_abs() as f64 - 0.5) / (b * ln2) - (-(-1.0 / b).exp_m1()).log2()
    }
}

/// The adaptive Laplace coder's state: one per channel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdaptiveLaplace {
    /// The running mean of |e|.
    pub mean_abs: f64,
}

/// The running mean |e| before the first sample.
pub const START_MEAN_ABS: f64 = 16.0;
/// The running mean's update rate.
pub const RATE: f64 = 1.0 / 32.0;
/// The smallest scale the law takes (a run of exact predictions must not make the next error cost infinitely much).
pub const MIN_SCALE: f64 = 0.3;

impl Default for AdaptiveLaplace {
    fn default() -> Self {
        AdaptiveLaplace {
            mean_abs: START_MEAN_ABS,
        }
    }
}

impl AdaptiveLaplace {
    /// The bits of residual `e`, then the scale's update.
    pub fn cost(&mut self, e: i64) -> f64 {
        let bits = laplace_bits(e, self.mean_abs.max(MIN_SCALE));
        self.mean_abs += RATE * (e.unsigned_abs() as f64 - self.mean_abs);
        bits
    }
}

/// Mean bits per sample of predictions `pred[n, C]` of `target[n, C]` (both
/// full scale 1, interleaved), each channel with its own adaptive Laplace coder.
pub fn residual_bits(target: &[f64], pred: &[f64], channels: usize) -> f64 {
    assert_eq!(target.len(), pred.len(), "residual_bits: shapes");
    let c = channels.max(1);
    if target.is_empty() {
        return 0.0;
    }
    let mut coders = vec![AdaptiveLaplace::default(); c];
    let mut total = 0.0;
    for (i, (&t, &p)) in target.iter().zip(pred).enumerate() {
        let e = to_16bit(t) as i64 - to_16bit(p) as i64;
        total += coders[i % c].cost(e);
    }
    total / target.len() as f64
}

/// How a μ-law head's classes cover the 16-bit grid: `−log2` of a sample
/// under a head's probabilities (see the module doc).
pub struct MulawGrid {
    /// `log2` of how many 16-bit integers each class covers (−∞ for none).
    log2_count: Vec<f64>,
    /// The multiplier from a full-scale-1 sample to the head's quantizer input.
    gain: f64,
}

impl MulawGrid {
    /// The grid for a head that quantizes `gain · x` (1 when the head's
    /// classes live in the same units as the samples).
    pub fn new(gain: f64) -> Self {
        let mut count = vec![0u32; mulaw::CLASSES];
        for s in -32768i32..=32767 {
            count[mulaw::encode(s as f64 / 32768.0 * gain)] += 1;
        }
        MulawGrid {
            log2_count: count.iter().map(|&n| (n as f64).log2()).collect(),
            gain,
        }
    }

    /// The class of the 16-bit sample nearest `x` (full scale 1).
    pub fn class(&self, x: f64) -> usize {
        mulaw::encode(to_16bit(x) as f64 / 32768.0 * self.gain)
    }

    /// Integers of the 16-bit grid class `k` covers.
    pub fn count(&self, k: usize) -> usize {
        self.log2_count[k].exp2().round() as usize
    }

    /// Bits of sample `x` (full scale 1) under the softmax of `logits` (256
    /// of one channel): `−log2 softmax(z)_k + log2 n_k`. Summed in f64.
    pub fn bits(&self, logits: &[f32], x: f64) -> f64 {
        debug_assert_eq!(logits.len(), mulaw::CLASSES);
        let k = self.class(x);
        let max = logits
            .iter()
            .fold(f64::NEG_INFINITY, |m, &z| m.max(z as f64));
        let sum: f64 = logits.iter().map(|&z| (z as f64 - max).exp()).sum();
        let ln_p = logits[k] as f64 - max - sum.ln();
        -ln_p / std::f64::consts::LN_2 + self.log2_count[k]
    }
}
