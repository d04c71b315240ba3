//! The `logistic` output head's law: a logistic distribution per channel
//! over the next sample, discretized to the 16-bit integer grid (the law of
//! PixelCNN++'s output, T. Salimans et al., "PixelCNN++", ICLR 2017, there as
//! a mixture over 8-bit pixels; here one component over 16-bit samples).
//!
//! Why a second law beside [`crate::laplace`]: the cascade's residual in
//! local gain units has lighter tails than a Laplace law and a rounder peak.
//! Costed on the last tenth of each shared clip's training part (a law
//! whose scale follows several running means of |e|, fitted on the part
//! before it), a logistic shape took 0.05 bit per sample less than a
//! Laplace shape on all three clips, and a fitted two-component mixture
//! only 0.006–0.011 less again.
//!
//! # The head
//! The layout of the Laplace head: per channel two outputs, channel-major,
//! the location `μ` at `2·ch` and the raw log-scale `s` at `2·ch + 1`,
//! clamped to `[LOG_SCALE_MIN, LOG_SCALE_MAX]` (gradient zero outside);
//! the scale is `b = eˢ`, the CDF `F(y) = σ((y − μ)/b)`.
//!
//! # The loss
//! A target `x` stands for its bin `[x − δ/2, x + δ/2]` (see `laplace`).
//! With `u = (x + δ/2 − μ)/b`, `l = (x − δ/2 − μ)/b` and `d = δ/b = u − l`:
//! ```text
//! P = σ(u) − σ(l) = eˡ·(eᵈ − 1) / ((1 + eᵘ)(1 + eˡ))
//! −ln P = softplus(u) + softplus(−l) − d − ln(−expm1(−d))
//! ```
//! (`softplus(−l) = softplus(l) − l`). Each term is computed without
//! cancellation: the two softplus terms are non-negative, and `d +
//! ln(1 − e^{−d})` is `ln d` for a narrow bin and `d` for a wide one. In the
//! far tail above μ the loss grows like `u`, below like `−l`: linearly, as
//! for a Laplace law. With `σ` the logistic function and `∂/∂s = b·∂/∂b`:
//! ```text
//! ∂/∂μ = (σ(−l) − σ(u)) / b
//! ∂/∂s = −u·σ(u) + l·σ(−l) + d + d/expm1(d)
//! ```
//! The mean and the median of the law are both `μ`, the point prediction.
//!
//! This module is neither CPU nor GPU: the CPU loss (`cpu::law_nll`),
//! `generate` and `eval` use it; its WGSL twin is in shaders/law_nll.wgsl.

use crate::laplace::{BinEdges, LOG_SCALE_MAX, LOG_SCALE_MIN};
use crate::rng::SplitMix64;

/// `ln(1 + eᶻ)` without overflow for large `z` or loss for very negative `z`.
fn softplus(z: f64) -> f64 {
    z.max(0.0) + (-z.abs()).exp().ln_1p()
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// `−ln P` of the bin `[x − δ/2, x + δ/2]` under Logistic(μ, e^s) with `s`
/// the head's raw log-scale (clamped here), and its derivatives `(∂/∂μ,
/// ∂/∂s_raw)` (see the module doc; zero in `s_raw` outside the clamp).
pub fn bin_nll(mu: f64, s_raw: f64, x: f64, delta: f64) -> (f64, f64, f64) {
    let BinEdges {
        inv_b,
        d,
        u,
        l,
        inside,
    } = BinEdges::new(mu, s_raw, x, delta);
    let nll = softplus(u) + softplus(-l) - d - (-(-d).exp_m1()).ln();
    let (su, snl) = (sigmoid(u), sigmoid(-l));
    let dmu = (snl - su) * inv_b;
    let ds = -u * su + l * snl + d + d / d.exp_m1();
    (nll, dmu, if inside { ds } else { 0.0 })
}

/// Draw from Logistic(μ, T·e^s) by inverting its CDF, `μ + b·ln(v/(1 − v))`;
/// `temperature = 0` is the location. One uniform per draw from `rng`.
pub fn sample(mu: f64, s_raw: f64, temperature: f64, rng: &mut SplitMix64) -> f64 {
    if temperature <= 0.0 {
        return mu;
    }
    let b = temperature * s_raw.clamp(LOG_SCALE_MIN, LOG_SCALE_MAX).exp();
    // v ∈ [0, 1): v = 0 would be the endless lower tail, cut at the
    // smallest positive double like the Laplace law's.
    let v = rng.next_f64().max(f64::MIN_POSITIVE);
    mu + b * (v / (1.0 - v)).ln()
}
