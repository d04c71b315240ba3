//! A dense (fully connected) layer applied to every row: `y = x·Wᵀ + b`.
//!
//! Layout: `x[rows, in]`, `W[out, in]` (PyTorch's `nn.Linear`), `b[out]`,
//! `y[rows, out]`. In the model, rows are all `T·B` timesteps of a batch.

use super::activation::activate;
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

/// The dense head's activations from a forward pass: `top`, the top LSTM
/// layer's output after the LSTM output activation, and `dense`, every
/// dense layer's output after its activation, the last the model's output.
/// The general forward, the step and the free step run their heads
/// through [`start`](Self::start) and [`layer`](Self::layer), each with its
/// own product. The window step (`cpu::window_step`) keeps its own fields
/// and loop: its head runs inside its instruction-set wrapper, and moved
/// into this struct the wrapper's register allocation changed.
#[derive(Clone, Debug, Default)]
pub struct Head<T> {
    pub top: Vec<T>,
    pub dense: Vec<Vec<T>>,
}

impl<T: CpuReal> Head<T> {
    /// A pass through `layers` dense layers from the top LSTM layer's
    /// output `h`, activated here by `act` (with `slope` if leaky).
    #[inline(always)]
    pub fn start(&mut self, h: &[T], act: Activation, slope: T, layers: usize) {
        self.top.clear();
        self.top.extend_from_slice(h);
        activate(act, slope, &mut self.top);
        self.dense.resize_with(layers, Vec::new);
    }

    /// Dense layer `j`'s input and output: layer 0 reads `top`, every
    /// later one the output of the layer before it.
    #[inline(always)]
    pub fn layer(&mut self, j: usize) -> (&[T], &mut Vec<T>) {
        let (before, rest) = self.dense.split_at_mut(j);
        let input: &[T] = if j == 0 { &self.top } else { &before[j - 1] };
        (input, &mut rest[0])
    }

    /// The last layer's output (empty before the first pass).
    pub fn output(&self) -> &[T] {
        self.dense.last().map_or(&[], Vec::as_slice)
    }
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
