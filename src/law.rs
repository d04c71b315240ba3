//! The laws of the location–scale heads (`laplace`, `logistic`): one seam
//! for what differs between them (the bin's probability and a draw), so the
//! losses, the bits `eval` counts and `generate`'s sampling are written once.
//!
//! Both heads share a layout (per channel a location and a raw log-scale,
//! channel-major), the log-scale clamp and the bin widths; see
//! [`crate::laplace`] for those, and each law's module for its derivation.

use crate::rng::SplitMix64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Law {
    Laplace,
    Logistic,
}

impl Law {
    pub const ALL: [Law; 2] = [Law::Laplace, Law::Logistic];

    /// `−ln P` of the bin `[x − δ/2, x + δ/2]` and its derivatives `(∂/∂μ, ∂/∂s_raw)`.
    pub fn bin_nll(self, mu: f64, s_raw: f64, x: f64, delta: f64) -> (f64, f64, f64) {
        match self {
            Law::Laplace => crate::laplace::bin_nll(mu, s_raw, x, delta),
            Law::Logistic => crate::logistic::bin_nll(mu, s_raw, x, delta),
        }
    }

    /// `−log₂ P` of the bin of `x`: its ideal code length in bits.
    pub fn bin_bits(self, mu: f64, s_raw: f64, x: f64, delta: f64) -> f64 {
        self.bin_nll(mu, s_raw, x, delta).0 / std::f64::consts::LN_2
    }

    /// One draw at `temperature` (0: the location), one uniform from `rng`.
    pub fn sample(self, mu: f64, s_raw: f64, temperature: f64, rng: &mut SplitMix64) -> f64 {
        match self {
            Law::Laplace => crate::laplace::sample(mu, s_raw, temperature, rng),
            Law::Logistic => crate::logistic::sample(mu, s_raw, temperature, rng),
        }
    }

    /// The shader's code for the law (`law_nll.wgsl`'s `LAW_*`).
    pub fn code(self) -> u32 {
        match self {
            Law::Laplace => 0,
            Law::Logistic => 1,
        }
    }
}

/// Bits per sample of `targets` (`[N, C]`, the head's output units) under
/// the head's distributions `head` (`[N, 2C]`), every bin `delta` wide: the
/// mean of [`Law::bin_bits`] over all samples, in f64, in order. The model's
/// own ideal code length, to stand beside a codec's.
pub fn bits_per_sample(law: Law, head: &[f32], targets: &[f32], delta: f64) -> f64 {
    mean_bits(law, head, targets, std::iter::repeat(delta))
}

/// [`bits_per_sample`] with a bin width per target, `deltas` `[N, C]` like
/// `targets` (a model whose units follow a local gain).
pub fn bits_per_sample_per_target(law: Law, head: &[f32], targets: &[f32], deltas: &[f32]) -> f64 {
    assert_eq!(
        deltas.len(),
        targets.len(),
        "bits_per_sample: one δ per target"
    );
    mean_bits(law, head, targets, deltas.iter().map(|&d| f64::from(d)))
}

/// The mean of [`Law::bin_bits`] over `targets`, target `k`'s bin `deltas[k]` wide.
fn mean_bits(law: Law, head: &[f32], targets: &[f32], deltas: impl Iterator<Item = f64>) -> f64 {
    assert_eq!(head.len(), 2 * targets.len(), "bits_per_sample: shapes");
    let total: f64 = head
        .chunks_exact(2)
        .zip(targets.iter().zip(deltas))
        .map(|(h, (&x, d))| law.bin_bits(f64::from(h[0]), f64::from(h[1]), f64::from(x), d))
        .sum();
    total / targets.len().max(1) as f64
}
