//! Element-wise activations and their derivatives.
//!
//! Every derivative is written in terms of the activation's *output*, the
//! value the forward pass already stores, so backward needs no extra buffer.

use crate::model::{Activation, CellActivation, GateActivation};
use crate::real::Real;

#[inline]
pub fn gate<T: Real>(kind: GateActivation, x: T) -> T {
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
#[inline]
pub fn gate_grad<T: Real>(kind: GateActivation, y: T) -> T {
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

#[inline]
pub fn cell<T: Real>(kind: CellActivation, x: T) -> T {
    match kind {
        CellActivation::Tanh => x.tanh(),
        CellActivation::Linear => x,
    }
}

/// d cell / dx where the output is `y`.
#[inline]
pub fn cell_grad<T: Real>(kind: CellActivation, y: T) -> T {
    match kind {
        CellActivation::Tanh => T::one() - y * y,
        CellActivation::Linear => T::one(),
    }
}

/// Apply `kind` in place.
pub fn activate<T: Real>(kind: Activation, slope: T, xs: &mut [T]) {
    if kind == Activation::LeakyRelu {
        for x in xs {
            if *x < T::zero() {
                *x = *x * slope;
            }
        }
    }
}

/// Multiply the gradient `dy` by the derivative of `kind`, given the outputs `y`.
/// (With a slope in [0, 1) the output is negative exactly where the input was.)
pub fn activate_backward<T: Real>(kind: Activation, slope: T, y: &[T], dy: &mut [T]) {
    if kind == Activation::LeakyRelu {
        for (d, &v) in dy.iter_mut().zip(y) {
            if v <= T::zero() {
                *d = *d * slope;
            }
        }
    }
}
