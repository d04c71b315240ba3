//! A dense (fully connected) layer applied to every row: `y = x·Wᵀ + b`.
//!
//! Layout: `x[rows, in]`, `W[out, in]` (PyTorch's `nn.Linear`), `b[out]`,
//! `y[rows, out]`. In the model, rows are all `T·B` timesteps of a batch.

use super::lstm::column_sums;
use super::matmul::{gemm, Op};
use super::scalar::CpuReal;
use crate::model::{Activation, DenseOffsets, ModelConfig};

/// The activation after dense layer `j` of a head of `n`: leaky ReLU
/// between layers, the model's output activation after the last.
pub fn head_activation(cfg: &ModelConfig, j: usize, n: usize) -> Activation {
    if j + 1 == n {
        cfg.output_activation
    } else {
        Activation::LeakyRelu
    }
}

/// Dense layer `j`'s input and output in the head's chain: layer 0 reads
/// `top`, every later one the output of the layer before it; `outs` holds
/// one output a layer. A plain function, not a loop taking a closure, so it
/// inlines into the instruction-set wrappers of `cpu::isa` with the rest of
/// each forward pass (general, step, window, free step).
#[inline(always)]
pub fn head_layer<'a, T>(
    top: &'a [T],
    outs: &'a mut [Vec<T>],
    j: usize,
) -> (&'a [T], &'a mut Vec<T>) {
    let (before, rest) = outs.split_at_mut(j);
    let input: &[T] = if j == 0 { top } else { &before[j - 1] };
    (input, &mut rest[0])
}

pub fn dense_forward<T: CpuReal>(
    rows: usize,
    off: &DenseOffsets,
    params: &[T],
    x: &[T],
    y: &mut [T],
) {
    let (ni, no) = (off.input, off.output);
    assert_eq!(x.len(), rows * ni, "dense_forward: x shape");
    assert_eq!(y.len(), rows * no, "dense_forward: y shape");
    let w = &params[off.weight..off.weight + no * ni];
    let b = &params[off.bias..off.bias + no];
    for row in y.chunks_exact_mut(no) {
        row.copy_from_slice(b);
    }
    gemm(
        Op::N,
        Op::T,
        rows,
        no,
        ni,
        T::one(),
        x,
        ni,
        w,
        ni,
        T::one(),
        y,
        no,
    );
}

/// Given `dy = ∂L/∂y`: adds `∂L/∂W = dyᵀ·x` and `∂L/∂b = Σ_rows dy` into
/// `grads` (flat, parameter layout) and, if asked, overwrites `dx = dy·W`.
pub fn dense_backward<T: CpuReal>(
    rows: usize,
    off: &DenseOffsets,
    params: &[T],
    x: &[T],
    dy: &[T],
    grads: &mut [T],
    dx: Option<&mut [T]>,
) {
    let (ni, no) = (off.input, off.output);
    assert_eq!(dy.len(), rows * no, "dense_backward: dy shape");
    let w = &params[off.weight..off.weight + no * ni];
    gemm(
        Op::T,
        Op::N,
        no,
        ni,
        rows,
        T::one(),
        dy,
        no,
        x,
        ni,
        T::one(),
        &mut grads[off.weight..off.weight + no * ni],
        ni,
    );
    let mut db = vec![T::zero(); no];
    column_sums(dy, no, &mut db);
    for (g, d) in grads[off.bias..off.bias + no].iter_mut().zip(db) {
        *g = *g + d;
    }
    if let Some(dx) = dx {
        gemm(
            Op::N,
            Op::N,
            rows,
            ni,
            no,
            T::one(),
            dy,
            no,
            w,
            ni,
            T::zero(),
            dx,
            ni,
        );
    }
}

/// The textbook twin of [`dense_forward`]: one dot product per output.
pub fn dense_forward_reference<T: CpuReal>(
    rows: usize,
    off: &DenseOffsets,
    params: &[T],
    x: &[T],
) -> Vec<T> {
    let (ni, no) = (off.input, off.output);
    let mut y = vec![T::zero(); rows * no];
    for r in 0..rows {
        for o in 0..no {
            let mut acc = params[off.bias + o];
            for i in 0..ni {
                acc = acc + params[off.weight + o * ni + i] * x[r * ni + i];
            }
            y[r * no + o] = acc;
        }
    }
    y
}
