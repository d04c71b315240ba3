//! One LSTM layer over a batch of sequences: forward and backward (BPTT).
//!
//! # Equations (PyTorch's `nn.LSTM`, gate order i, f, g, o)
//! ```text
//! a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh          (4H pre-activations)
//! i = σ(a_i)  f = σ(a_f)  g = act(a_g)  o = σ(a_o)
//! c_t = f ⊙ c_{t-1} + i ⊙ g
//! h_t = o ⊙ act(c_t)
//! ```
//! with σ the gate activation and `act` the cell activation.
//!
//! # Layout
//! Time-major, batch inside, features fastest (cuDNN's layout):
//! `x[T, B, I]`, `a[T, B, 4H]` (the four gate blocks side by side in each
//! row), `h[T+1, B, H]` and `c[T+1, B, H]` where row block 0 holds the initial
//! state, so `h[1..=T]` is the layer's output and `h[0..T]` is exactly the
//! `h_{t-1}` matrix the recurrent weight gradient needs.
//!
//! # How the work is arranged
//! As cuDNN does it: the input projection of all `T·B` rows is one large
//! product before the time loop; inside the loop only the recurrent product
//! `B×H · H×4H` and the gate math remain, fused per block of hidden units on
//! recurrent weights packed once per pass (`cpu::recurrence`); after the
//! backward sweep the weight gradients are each one product over all timesteps.
//! An input of at most `FOLD_MAX_INPUTS` values per row is the exception: as
//! a product it would be all memory traffic, so the time loop applies it and
//! its weight gradient is summed in the bias gradient's pass.
//!
//! `lstm_forward_reference` is the same layer written as the equations read,
//! one unit at a time, for the tests to hold the fast path against.

use super::activation::{cell, gate};
use super::aligned::AlignedVec;
pub use super::lstm_shape::LstmShape;
use super::matmul::{gemm, gemm_bias, Op};
use super::recurrence::{self, BackwardBuffers, FoldedInput, ForwardBuffers};
use super::scalar::CpuReal;
use crate::model::LstmOffsets;
use rayon::prelude::*;

/// Layers with at most this many inputs per timestep take them in the time
/// loop's gate math (see `recurrence::FoldedInput`) and their input weight
/// gradient in the pass that sums the bias gradient (see
/// [`bias_and_input_grads`]): as products these would be almost all packing
/// and memory traffic.
pub const FOLD_MAX_INPUTS: usize = 4;

/// What the forward pass keeps for the backward pass.
#[derive(Clone, Debug, Default)]
pub struct LstmCache<T> {
    /// Activated gates `[T, B, 4H]`: i, f, g, o blocks of H per row.
    pub gates: Vec<T>,
    /// Cell states `[T+1, B, H]`, block 0 = initial state.
    pub c: Vec<T>,
    /// `act(c_t)` for t = 1..=T, `[T, B, H]`.
    pub act_c: Vec<T>,
    /// Hidden states `[T+1, B, H]`, block 0 = initial state.
    pub h: Vec<T>,
    /// `W_hh` packed for the recurrent products, and `h` packed as their
    /// A operand (see `cpu::recurrence`): scratch kept between passes.
    w_packed: AlignedVec<T>,
    h_packed: Vec<T>,
}

impl<T: CpuReal> LstmCache<T> {
    fn resize(&mut self, s: &LstmShape) {
        let (tb, bh) = (s.t * s.b, s.b * s.h);
        self.gates.resize(tb * 4 * s.h, T::zero());
        self.c.resize((s.t + 1) * bh, T::zero());
        self.act_c.resize(tb * s.h, T::zero());
        self.h.resize((s.t + 1) * bh, T::zero());
    }

    /// The layer's output `h_1..h_T`, `[T, B, H]`.
    pub fn output(&self, s: &LstmShape) -> &[T] {
        &self.h[s.b * s.h..(s.t + 1) * s.b * s.h]
    }

    /// Final states `(h_T, c_T)`, each `[B, H]`.
    pub fn final_state(&self, s: &LstmShape) -> (&[T], &[T]) {
        let at = s.t * s.b * s.h;
        let end = at + s.b * s.h;
        (&self.h[at..end], &self.c[at..end])
    }
}

/// What a forward pass is for: training keeps the activated gates and
/// `act(c_t)` for the backward pass; inference needs only `h` and `c`, and
/// leaves the rest unwritten (at hidden 512 and batch 64 the gates alone
/// are 1 MB a timestep of stores that nothing would read).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pass {
    #[default]
    Training,
    Inference,
}

/// Forward pass of one layer. `x` is `[T, B, I]`, `h0`/`c0` are `[B, H]`.
/// After [`Pass::Inference`], `cache.gates` and `cache.act_c` hold nothing
/// of this pass.
#[allow(clippy::too_many_arguments)]
pub fn lstm_forward<T: CpuReal>(
    s: &LstmShape,
    params: &[T],
    off: &LstmOffsets,
    x: &[T],
    h0: &[T],
    c0: &[T],
    cache: &mut LstmCache<T>,
    pass: Pass,
) {
    let (h, h4, bh) = (s.h, 4 * s.h, s.b * s.h);
    let tb = s.t * s.b;
    assert_eq!(x.len(), tb * s.i, "lstm_forward: x shape");
    assert_eq!(h0.len(), bh, "lstm_forward: h0 shape");
    assert_eq!(c0.len(), bh, "lstm_forward: c0 shape");
    cache.resize(s);
    let w_ih = &params[off.w_ih..off.w_ih + h4 * s.i];
    let w_hh = &params[off.w_hh..off.w_hh + h4 * h];
    let b_ih = &params[off.b_ih..off.b_ih + h4];
    let b_hh = &params[off.b_hh..off.b_hh + h4];

    let fold = s.i <= FOLD_MAX_INPUTS;
    let (mut w_in, mut bias) = (Vec::new(), Vec::new());
    if fold {
        (w_in, bias) = recurrence::fold_input_weights(w_ih, b_ih, b_hh, h, s.i);
    } else {
        // Input projection for every timestep at once: a = x·W_ihᵀ + b_ih + b_hh.
        let bias: Vec<T> = b_ih.iter().zip(b_hh).map(|(&bi, &bh)| bi + bh).collect();
        gemm_bias(
            Op::N,
            Op::T,
            tb,
            h4,
            s.i,
            x,
            s.i,
            w_ih,
            s.i,
            &bias,
            &mut cache.gates,
            h4,
        );
    }

    cache.h[..bh].copy_from_slice(h0);
    cache.c[..bh].copy_from_slice(c0);
    // From a zero state the first recurrent product multiplies zeros: skip it
    // (this is the whole recurrence at seq-len 1).
    let h0_is_zero = h0.iter().all(|v| *v == T::zero());
    if !(s.t == 1 && h0_is_zero) {
        recurrence::pack_forward_weights(w_hh, h, &mut cache.w_packed);
    }
    let len = recurrence::packed_rows_len(s.b, h);
    cache.h_packed.resize(2 * len, T::zero());
    let (hp0, hp1) = cache.h_packed.split_at_mut(len);
    recurrence::pack_rows(h0, s.b, h, hp0);
    recurrence::forward(
        s,
        &cache.w_packed,
        h0_is_zero,
        ForwardBuffers {
            gates: &mut cache.gates,
            input: fold.then_some(FoldedInput {
                x,
                w: &w_in,
                bias: &bias,
            }),
            c: &mut cache.c,
            h: &mut cache.h,
            act_c: &mut cache.act_c,
            h_packed: [hp0, hp1],
            keep: pass == Pass::Training,
        },
    );
}

/// Gradients of one layer.
pub struct LstmGrads<'a, T> {
    /// The flat gradient buffer (same layout as the parameters); this layer's
    /// weight and bias gradients are *added* at `off`.
    pub params: &'a mut [T],
    /// Gradient w.r.t. the input `x`, `[T, B, I]`, overwritten (None: not needed).
    pub x: Option<&'a mut [T]>,
    /// Gradients w.r.t. `h0` and `c0`, `[B, H]`, overwritten.
    pub h0: &'a mut [T],
    pub c0: &'a mut [T],
}

/// Backward pass (BPTT over the whole sequence) of one layer, given the
/// forward's cache and `dh_out = ∂L/∂h_t` for t = 1..=T (`[T, B, H]`).
/// `da` is scratch, resized to `[T, B, 4H]`, and on return holds `∂L/∂a_t`.
#[allow(clippy::too_many_arguments)]
pub fn lstm_backward<T: CpuReal>(
    s: &LstmShape,
    params: &[T],
    off: &LstmOffsets,
    x: &[T],
    cache: &LstmCache<T>,
    dh_out: &[T],
    da: &mut Vec<T>,
    grads: LstmGrads<'_, T>,
) {
    let (h, h4, bh) = (s.h, 4 * s.h, s.b * s.h);
    let tb = s.t * s.b;
    assert_eq!(dh_out.len(), tb * h, "lstm_backward: dh shape");
    let w_ih = &params[off.w_ih..off.w_ih + h4 * s.i];
    let w_hh = &params[off.w_hh..off.w_hh + h4 * h];
    da.resize(tb * h4, T::zero());

    let mut w_packed = AlignedVec::default();
    if s.t > 1 {
        recurrence::pack_backward_weights(w_hh, h, &mut w_packed);
    }
    let len = recurrence::packed_rows_len(s.b, h4);
    let mut da_packed = vec![T::zero(); 2 * len];
    let (dp0, dp1) = da_packed.split_at_mut(len);
    let mut dc = vec![T::zero(); bh];
    recurrence::backward(
        s,
        &w_packed,
        BackwardBuffers {
            gates: &cache.gates,
            act_c: &cache.act_c,
            c: &cache.c,
            dh_out,
            da,
            dc: &mut dc,
            da_packed: [dp0, dp1],
        },
    );
    // Gradients w.r.t. the initial state: through W_hh from a_0, and dc after step 0.
    gemm(
        Op::N,
        Op::N,
        s.b,
        h,
        h4,
        T::one(),
        &da[..s.b * h4],
        h4,
        w_hh,
        h,
        T::zero(),
        grads.h0,
        h,
    );
    grads.c0.copy_from_slice(&dc);

    // Weight gradients as one product each over all T·B rows.
    let g = grads.params;
    let h_prev = &cache.h[..tb * h];
    let fold = s.i <= FOLD_MAX_INPUTS;
    if !fold {
        gemm(
            Op::T,
            Op::N,
            h4,
            s.i,
            tb,
            T::one(),
            da,
            h4,
            x,
            s.i,
            T::one(),
            &mut g[off.w_ih..off.w_ih + h4 * s.i],
            s.i,
        );
    }
    gemm(
        Op::T,
        Op::N,
        h4,
        h,
        tb,
        T::one(),
        da,
        h4,
        h_prev,
        h,
        T::one(),
        &mut g[off.w_hh..off.w_hh + h4 * h],
        h,
    );
    let mut db = vec![T::zero(); h4];
    if fold {
        let mut dw = vec![T::zero(); s.i * h4];
        bias_and_input_grads(da, h4, x, s.i, &mut db, &mut dw);
        for (k, d) in dw.iter().enumerate() {
            let at = off.w_ih + (k % h4) * s.i + k / h4;
            g[at] = g[at] + *d;
        }
    } else {
        column_sums(da, h4, &mut db);
    }
    for (k, d) in db.iter().enumerate() {
        g[off.b_ih + k] = g[off.b_ih + k] + *d;
        g[off.b_hh + k] = g[off.b_hh + k] + *d;
    }
    if let Some(dx) = grads.x {
        gemm(
            Op::N,
            Op::N,
            tb,
            s.i,
            h4,
            T::one(),
            da,
            h4,
            w_ih,
            s.i,
            T::zero(),
            dx,
            s.i,
        );
    }
}

/// Columns per task of [`column_sums`] and [`bias_and_input_grads`]. A task
/// walks every row of its columns, so each row gives it one run of `BLOCK`
/// contiguous values: 2 KB runs stream from memory at full speed, where
/// runs of 64 values 8 KB apart (the `wide` workload's `∂L/∂a`, 67 MB a
/// step) did not, and ran at a tenth of it. A task's sums, `(1 + i)·BLOCK`
/// values, stay in L1 for the narrow inputs these are used with.
const BLOCK: usize = 512;

/// `out[c] = Σ_r m[r, c]` for a row-major `m` with `cols` columns, summed in
/// row order (a fixed order keeps results bit-reproducible).
pub fn column_sums<T: CpuReal>(m: &[T], cols: usize, out: &mut [T]) {
    // A small matrix (the seed model's every step) is not worth a fork-join.
    const PARALLEL_MIN: usize = 1 << 16;
    let block = |(blk, o): (usize, &mut [T])| {
        o.iter_mut().for_each(|v| *v = T::zero());
        let (c0, c1) = (blk * BLOCK, blk * BLOCK + o.len());
        for row in m.chunks_exact(cols) {
            for (v, &x) in o.iter_mut().zip(&row[c0..c1]) {
                *v = *v + x;
            }
        }
    };
    if m.len() < PARALLEL_MIN {
        out.chunks_mut(BLOCK).enumerate().for_each(block);
    } else {
        out.par_chunks_mut(BLOCK).enumerate().for_each(block);
    }
}

/// [`column_sums`] of `da` (`[rows, cols]`) into `db`, and in the same pass
/// over it `dw[k, c] = Σ_r x[r, k]·da[r, c]` for a narrow input `x`
/// (`[rows, i]`; `dw` is `[i, cols]`, `W_ih`'s gradient transposed), summed
/// in row order.
pub fn bias_and_input_grads<T: CpuReal>(
    da: &[T],
    cols: usize,
    x: &[T],
    i: usize,
    db: &mut [T],
    dw: &mut [T],
) {
    const PARALLEL_MIN: usize = 1 << 16;
    // One block of columns: its bias sums, then the i rows of dw over it.
    let block = |blk: usize| -> Vec<T> {
        let (c0, c1) = (blk * BLOCK, (blk * BLOCK + BLOCK).min(cols));
        let len = c1 - c0;
        let mut sums = vec![T::zero(); (1 + i) * len];
        let (db, dw) = sums.split_at_mut(len);
        for (row, xr) in da.chunks_exact(cols).zip(x.chunks_exact(i)) {
            let row = &row[c0..c1];
            for (s, &d) in db.iter_mut().zip(row) {
                *s = *s + d;
            }
            for (dwk, &xk) in dw.chunks_exact_mut(len).zip(xr) {
                for (s, &d) in dwk.iter_mut().zip(row) {
                    *s = *s + xk * d;
                }
            }
        }
        sums
    };
    let blocks = cols.div_ceil(BLOCK);
    let sums: Vec<Vec<T>> = if da.len() < PARALLEL_MIN {
        (0..blocks).map(block).collect()
    } else {
        (0..blocks).into_par_iter().map(block).collect()
    };
    for (blk, sums) in sums.iter().enumerate() {
        let c0 = blk * BLOCK;
        let len = sums.len() / (1 + i);
        for (k, part) in sums.chunks_exact(len).enumerate() {
            let out = if k == 0 {
                &mut db[c0..c0 + len]
            } else {
                &mut dw[(k - 1) * cols + c0..][..len]
            };
            out.copy_from_slice(part);
        }
    }
}

/// The layer written as its equations read: one timestep, one sequence, one
/// unit at a time, dot products in index order. Returns `(h[T+1,B,H], c[T+1,B,H])`.
pub fn lstm_forward_reference<T: CpuReal>(
    s: &LstmShape,
    params: &[T],
    off: &LstmOffsets,
    x: &[T],
    h0: &[T],
    c0: &[T],
) -> (Vec<T>, Vec<T>) {
    let (nh, ni, bh) = (s.h, s.i, s.b * s.h);
    let w_ih = |r: usize, c: usize| params[off.w_ih + r * ni + c];
    let w_hh = |r: usize, c: usize| params[off.w_hh + r * nh + c];
    let bias = |r: usize| params[off.b_ih + r] + params[off.b_hh + r];
    let mut hs = h0.to_vec();
    let mut cs = c0.to_vec();
    for t in 0..s.t {
        let mut h_new = vec![T::zero(); bh];
        let mut c_new = vec![T::zero(); bh];
        for b in 0..s.b {
            let x_t = &x[(t * s.b + b) * ni..(t * s.b + b + 1) * ni];
            let h_prev = &hs[t * bh + b * nh..t * bh + (b + 1) * nh];
            let pre = |gate_idx: usize, j: usize| {
                let r = gate_idx * nh + j;
                let mut acc = bias(r);
                for (c, &xv) in x_t.iter().enumerate() {
                    acc = acc + w_ih(r, c) * xv;
                }
                for (c, &hv) in h_prev.iter().enumerate() {
                    acc = acc + w_hh(r, c) * hv;
                }
                acc
            };
            for j in 0..nh {
                let i = gate(s.gate, pre(0, j));
                let f = gate(s.gate, pre(1, j));
                let g = cell(s.cell, pre(2, j));
                let o = gate(s.gate, pre(3, j));
                let c = f * cs[t * bh + b * nh + j] + i * g;
                c_new[b * nh + j] = c;
                h_new[b * nh + j] = o * cell(s.cell, c);
            }
        }
        hs.extend_from_slice(&h_new);
        cs.extend_from_slice(&c_new);
    }
    (hs, cs)
}
