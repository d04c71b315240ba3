//! Element-wise activations and their derivatives.
//!
//! Every derivative is written in terms of the activation's *output*, the
//! value the forward pass already stores, so backward needs no extra buffer.

use super::scalar::CpuReal;
use crate::model::{Activation, CellActivation, GateActivation};

#[inline(always)]
pub fn gate<T: CpuReal>(kind: GateActivation, x: T) -> T {
    match kind {
        GateActivation::Sigmoid => T::one() / (T::one() + (-x).exp()),
        GateActivation::HardSigmoid => {
            // Keras 2.2: clip(0.2·x + 0.5, 0, 1).
            let y = T::from_f64_lossy(0.2) * x + T::from_f64_lossy(0.5);
            y.max(T::zero()).min(T::one())
        }
    }
}

/// d gate / dx at the point where the gate's output is `y`.
#[inline(always)]
pub fn gate_grad<T: CpuReal>(kind: GateActivation, y: T) -> T {
    match kind {
        GateActivation::Sigmoid => y * (T::one() - y),
        // Strictly inside (0, 1) the line has slope 0.2; on the clipped parts, 0.
        GateActivation::HardSigmoid => {
            if y > T::zero() && y < T::one() {
                T::from_f64_lossy(0.2)
            } else {
                T::zero()
            }
        }
    }
}

#[inline(always)]
pub fn cell<T: CpuReal>(kind: CellActivation, x: T) -> T {
    match kind {
        CellActivation::Tanh => x.tanh(),
        CellActivation::Linear => x,
    }
}

/// d cell / dx where the output is `y`.
#[inline(always)]
pub fn cell_grad<T: CpuReal>(kind: CellActivation, y: T) -> T {
    match kind {
        CellActivation::Tanh => T::one() - y * y,
        CellActivation::Linear => T::one(),
    }
}

/// [`gate`] over a slice. In `f32` the sigmoid runs on [`exp_f32`], which
/// the compiler vectorizes, instead of one libm call per value: the fused
/// gate math would otherwise spend more time in `expf` and `tanhf` than the
/// recurrent product takes.
#[inline(always)]
pub fn gate_slice<T: CpuReal>(kind: GateActivation, xs: &mut [T]) {
    if kind == GateActivation::Sigmoid {
        if let Some(v) = T::as_f32_mut(xs) {
            v.iter_mut().for_each(|x| *x = 1.0 / (1.0 + exp_f32(-*x)));
            return;
        }
    }
    xs.iter_mut().for_each(|x| *x = gate(kind, *x));
}

/// [`cell`] over a slice; `tanh(x) = 1 − 2 / (e^{2x} + 1)` in `f32`.
#[inline(always)]
pub fn cell_slice<T: CpuReal>(kind: CellActivation, xs: &mut [T]) {
    if kind == CellActivation::Tanh {
        if let Some(v) = T::as_f32_mut(xs) {
            v.iter_mut()
                .for_each(|x| *x = 1.0 - 2.0 / (exp_f32(2.0 * *x) + 1.0));
            return;
        }
    }
    xs.iter_mut().for_each(|x| *x = cell(kind, *x));
}

/// `e^x` within about 2 ulp, branch-free so that loops over it vectorize:
/// `e^x = 2^k · e^r` with `k = round(x / ln 2)` and `|r| ≤ ln 2 / 2`
/// (Cody & Waite's two-part `ln 2` keeps `r` exact), `e^r` by its Taylor
/// polynomial of degree 7 (remainder below 1e-8), `2^k` built in the exponent
/// bits. Inputs are clamped to where `2^k` is a normal number.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Adding and subtracting 1.5·2^23 rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * std::f32::consts::LOG2_E + ROUND;
    let k = shifted - ROUND;
    let r = (x - k * LN2_HI) - k * LN2_LO;
    let mut p = 1.0 / 5040.0;
    for c in [
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = p * r + c;
    }
    // `shifted` is 1.5·2^23 + k with an ulp of 1, so k is the difference of
    // the bit patterns: an integer read without a float-to-int conversion,
    // whose saturating semantics would keep the loop from vectorizing.
    let k_int = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    f32::from_bits(k_int.wrapping_add(127) << 23) * p
}

/// Apply `kind` in place.
///
/// Every value is multiplied by a selected factor (1 is exact) and stored:
/// written as `if x < 0 { x·slope } else { x }` the compiler made the
/// select a masked store, which AMD's cores run many times slower than a
/// plain one (on Zen 3 the seed step's leaky ReLUs took 8 % of its time).
#[inline]
pub fn activate<T: CpuReal>(kind: Activation, slope: T, xs: &mut [T]) {
    if kind == Activation::LeakyRelu {
        for x in xs {
            let factor = if *x < T::zero() { slope } else { T::one() };
            *x = *x * factor;
        }
    }
}

/// Multiply the gradient `dy` by the derivative of `kind`, given the outputs `y`.
/// (With a slope in [0, 1) the output is negative exactly where the input was.)
/// A factor and a plain store, as in [`activate`].
#[inline]
pub fn activate_backward<T: CpuReal>(kind: Activation, slope: T, y: &[T], dy: &mut [T]) {
    if kind == Activation::LeakyRelu {
        for (d, &v) in dy.iter_mut().zip(y) {
            let factor = if v <= T::zero() { slope } else { T::one() };
            *d = *d * factor;
        }
    }
}
