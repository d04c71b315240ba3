//! The `laplace` output head's law: a Laplace distribution per channel over
//! the next sample, discretized to the 16-bit integer grid.
//!
//! Why Laplace (and not the logistic of PixelCNN++, Salimans et al., ICLR
//! 2017): the prediction residual of speech and music is close to Laplacian
//! (the premise of the adaptive Rice/Golomb coders of lossless audio codecs,
//! and of the ideal adaptive Laplace coder `eval` costs every classic
//! predictor with), so the model's own bits per sample stand beside theirs
//! under the same law; and its CDF is two exponentials, so the probability
//! of a bin has a closed form in log space with no log-sigmoid anywhere, on
//! the CPU and in WGSL alike.
//!
//! # The head
//! Per channel two outputs, channel-major: output `2·ch` is the location
//! `μ`, output `2·ch + 1` the log-scale `s` (both in the model's output
//! units), `b = exp(s)`. The log-scale is clamped to `[LOG_SCALE_MIN,
//! LOG_SCALE_MAX]` (gradient zero outside): `exp` then neither underflows
//! to a zero scale nor overflows, and the range is far wider than training
//! goes (see the constants).
//!
//! # The loss
//! A target `x` stands for its bin `[x − δ/2, x + δ/2]` on the integer grid
//! of 16-bit samples, `δ` one 16-bit step in the model's units (`2⁻¹⁵ /
//! scale` for a global `scale`; the loss takes it per target as well, for
//! models whose units change with every sample). The distribution is over
//! all integers, not only the 65,536 that 16 bits can hold: the mass past
//! full scale is simply not any sample's, which wastes nothing measurable
//! and keeps the loss independent of where full scale lies in the model's
//! units. The negative log-likelihood of a bin, with `u = (x + δ/2 − μ)/b`,
//! `l = (x − δ/2 − μ)/b` and `d = δ/b = u − l`:
//! ```text
//! bin above μ (l ≥ 0):  P = ½·e^{−l}·(1 − e^{−d})     −ln P = ln 2 + l − ln(−expm1(−d))
//! bin below μ (u ≤ 0):  P = ½·e^{u}·(1 − e^{−d})      −ln P = ln 2 − u − ln(−expm1(−d))
//! bin holds μ:          P = ½·(−expm1(−u) − expm1(l))  −ln P = ln 2 − ln(−expm1(−u) − expm1(l))
//! ```
//! Every form is a sum of non-negative terms or a logarithm taken of one, so
//! nothing cancels, whether the bin is far narrower than the scale (d → 0)
//! or far wider (d → ∞), and the far tails cost their exact linear `|x−μ|/b`.
//! The gradients, by `∂/∂s = b·∂/∂b`, with `a = −expm1(−u)`, `c = −expm1(l)`:
//! ```text
//! above:  ∂/∂μ = −1/b    ∂/∂s = −l + d/expm1(d)
//! below:  ∂/∂μ = +1/b    ∂/∂s =  u + d/expm1(d)
//! holds:  ∂/∂μ = (c − a)/(b·(a + c))    ∂/∂s = (u·(1 − a) − l·(1 − c))/(a + c)
//! ```
//! (The three agree where they meet: P is continuously differentiable in μ.)
//!
//! This module is neither CPU nor GPU: the CPU loss (`cpu::law_nll`),
//! `generate` and `eval` use it through `crate::law`; its WGSL twin is in
//! shaders/law_nll.wgsl.

use crate::rng::SplitMix64;
use std::f64::consts::LN_2;

/// Smallest log-scale: b ≈ 1.1e-7 model units. One 16-bit step is
/// `2⁻¹⁵/scale` ≥ 3e-5 model units for any scale up to full scale, and a
/// scale far below the step gains nothing (the bin that holds μ already has
/// P ≈ 1), so training never wants to go this low.
pub const LOG_SCALE_MIN: f64 = -16.0;
/// Largest log-scale: b ≈ 3000 model units, a thousand times any signal
/// normalized to unit RMS.
pub const LOG_SCALE_MAX: f64 = 8.0;

/// One 16-bit step in audio units (full scale ±1).
pub const STEP_16: f64 = 1.0 / 32768.0;

/// The 16-bit step in the units of a model whose output times `scale` is
/// audio: the `δ` of every target of a globally normalized model.
pub fn delta_for_scale(scale: f64) -> f64 {
    STEP_16 / scale
}

/// `eˣ − 1` accurately near 0 (the standard library's; spelled out in the
/// shader, which has none).
fn expm1(x: f64) -> f64 {
    x.exp_m1()
}

/// A bin in the units of a location–scale law's scale: both laws' losses
/// start from it.
pub(crate) struct BinEdges {
    /// `1/b` of the clamped log-scale.
    pub inv_b: f64,
    /// `δ/b`, and the bin's upper and lower edges `(x ± δ/2 − μ)/b`.
    pub d: f64,
    pub u: f64,
    pub l: f64,
    /// The raw log-scale lies inside the clamp (else its gradient is zero).
    pub inside: bool,
}

impl BinEdges {
    pub fn new(mu: f64, s_raw: f64, x: f64, delta: f64) -> Self {
        let s = s_raw.clamp(LOG_SCALE_MIN, LOG_SCALE_MAX);
        let inv_b = (-s).exp();
        // x − μ first, as the shader must (exact in f32 when they are close,
        // where a narrow bin would lose its width in x ± δ/2).
        let e = x - mu;
        BinEdges {
            inv_b,
            d: delta * inv_b,
            u: (e + 0.5 * delta) * inv_b,
            l: (e - 0.5 * delta) * inv_b,
            inside: (LOG_SCALE_MIN..=LOG_SCALE_MAX).contains(&s_raw),
        }
    }
}

/// `−ln P` of the bin `[x − δ/2, x + δ/2]` under Laplace(μ, e^s) with `s`
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
    let (nll, dmu, ds) = if l >= 0.0 {
        (LN_2 + l - (-expm1(-d)).ln(), -inv_b, -l + d / expm1(d))
    } else if u <= 0.0 {
        (LN_2 - u - (-expm1(-d)).ln(), inv_b, u + d / expm1(d))
    } else {
        let a = -expm1(-u);
        let c = -expm1(l);
        let q = a + c;
        (
            LN_2 - q.ln(),
            (c - a) * inv_b / q,
            (u * (1.0 - a) - l * (1.0 - c)) / q,
        )
    };
    (nll, dmu, if inside { ds } else { 0.0 })
}

/// Draw from Laplace(μ, T·e^s) by inverting its CDF; `temperature = 0` is
/// the location. One uniform per draw from `rng`, so a seed replays exactly.
pub fn sample(mu: f64, s_raw: f64, temperature: f64, rng: &mut SplitMix64) -> f64 {
    if temperature <= 0.0 {
        return mu;
    }
    let v = rng.next_f64();
    let b = temperature * s_raw.clamp(LOG_SCALE_MIN, LOG_SCALE_MAX).exp();
    // v ∈ [0, 1): w = v − ½ ∈ [−½, ½); 1 − 2|w| ∈ (0, 1] except at v = 0,
    // whose endless tail is cut at the smallest positive double.
    let w = v - 0.5;
    let tail = (1.0 - 2.0 * w.abs()).max(f64::MIN_POSITIVE);
    mu - b * w.signum() * tail.ln()
}
