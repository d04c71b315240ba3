//! The gate activations over whole slices, in straight-line arithmetic the
//! compiler vectorizes: libm's `expf` and `tanhf` are one call per value
//! and took a third of a free-running step.
//!
//! `exp` is Cephes' `expf` without its branches: `e^x = 2^k · e^r` with
//! `k = round(x / ln 2)`, `|r| ≤ ln 2 / 2`, and a degree-7 polynomial for
//! `e^r` (within about 2 ulp of the true value over the clamped range).
//! σ and tanh are built on it, to within a few 1e-7 absolute of libm's.

use crate::model::{CellActivation, GateActivation};

/// `e^x` for `x` clamped to `[-87.3, 88.3]` (beyond, σ and tanh are flat in f32).
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in a part exact in few bits and the rest (Cody and Waite).
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5·2^23 rounds to an integer and leaves it in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.3, 88.3);
    let t = x * LOG2E + ROUND;
    let k = t - ROUND;
    let r = x - k * LN2_HI - k * LN2_LO;
    let p = ((((1.987_569_2e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let e_r = p * r * r + r + 1.0;
    // 2^k from k's bits: k + 127 into the exponent field (k ∈ [-126, 128)).
    let k_int = t.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    e_r * f32::from_bits(((k_int + 127) as u32) << 23)
}

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

#[inline(always)]
fn tanh(x: f32) -> f32 {
    2.0 / (1.0 + exp(-2.0 * x)) - 1.0
}

/// `xs[i] = gate(xs[i])`, as `activation::gate`.
#[inline(always)]
pub fn gates(kind: GateActivation, xs: &mut [f32]) {
    match kind {
        GateActivation::Sigmoid => xs.iter_mut().for_each(|x| *x = sigmoid(*x)),
        GateActivation::HardSigmoid => xs
            .iter_mut()
            .for_each(|x| *x = (0.2 * *x + 0.5).clamp(0.0, 1.0)),
    }
}

/// `xs[i] = cell(xs[i])`, as `activation::cell`.
#[inline(always)]
pub fn cells(kind: CellActivation, xs: &mut [f32]) {
    if kind == CellActivation::Tanh {
        xs.iter_mut().for_each(|x| *x = tanh(*x));
    }
}
