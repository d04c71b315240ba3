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
//! `B×H · H×4H` and one fused pass of gate math remain; after the backward
//! sweep the weight gradients are each one product over all timesteps.
//!
//! `lstm_forward_reference` is the same layer written as the equations read,
//! one unit at a time, for the tests to hold the fast path against.

use super::activation::{cell, cell_grad, gate, gate_grad};
use super::matmul::{gemm, Op};
use crate::model::{CellActivation, GateActivation, LstmOffsets};
use crate::real::Real;
use rayon::prelude::*;

/// Sizes and activations of one layer run.
#[derive(Clone, Copy, Debug)]
pub struct LstmShape {
    /// Timesteps.
    pub t: usize,
    /// Sequences in the batch.
    pub b: usize,
    /// Inputs per timestep.
    pub i: usize,
    /// Hidden units.
    pub h: usize,
    pub cell: CellActivation,
    pub gate: GateActivation,
}

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
}

impl<T: Real> LstmCache<T> {
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

/// Below this many gate values per task a fused element-wise pass is not
/// worth splitting across threads.
const PARALLEL_MIN_ELEMS: usize = 1 << 14;

/// Batch rows per parallel task of the fused gate passes.
fn rows_per_task(h: usize) -> usize {
    PARALLEL_MIN_ELEMS.div_ceil(4 * h).max(1)
}

/// Forward pass of one layer. `x` is `[T, B, I]`, `h0`/`c0` are `[B, H]`.
pub fn lstm_forward<T: Real>(
    s: &LstmShape,
    params: &[T],
    off: &LstmOffsets,
    x: &[T],
    h0: &[T],
    c0: &[T],
    cache: &mut LstmCache<T>,
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

    // Input projection for every timestep at once: a = x·W_ihᵀ + b_ih + b_hh.
    let a = &mut cache.gates;
    for row in a.chunks_exact_mut(h4) {
        for ((r, &bi), &bh) in row.iter_mut().zip(b_ih).zip(b_hh) {
            *r = bi + bh;
        }
    }
    gemm(
        Op::N,
        Op::T,
        tb,
        h4,
        s.i,
        T::one(),
        x,
        s.i,
        w_ih,
        s.i,
        T::one(),
        a,
        h4,
    );

    cache.h[..bh].copy_from_slice(h0);
    cache.c[..bh].copy_from_slice(c0);
    // From a zero state the first recurrent product multiplies zeros: skip it
    // (this is the whole recurrence at seq-len 1).
    let h0_is_zero = h0.iter().all(|v| *v == T::zero());
    for t in 0..s.t {
        let (h_past, h_future) = cache.h.split_at_mut((t + 1) * bh);
        let h_prev = &h_past[t * bh..];
        let h_next = &mut h_future[..bh];
        let (c_past, c_future) = cache.c.split_at_mut((t + 1) * bh);
        let c_prev = &c_past[t * bh..];
        let c_next = &mut c_future[..bh];
        let a_t = &mut cache.gates[t * s.b * h4..(t + 1) * s.b * h4];
        if !(t == 0 && h0_is_zero) {
            gemm(
                Op::N,
                Op::T,
                s.b,
                h4,
                h,
                T::one(),
                h_prev,
                h,
                w_hh,
                h,
                T::one(),
                a_t,
                h4,
            );
        }
        let act_c = &mut cache.act_c[t * bh..(t + 1) * bh];
        a_t.par_chunks_mut(h4)
            .zip(c_prev.par_chunks(h))
            .zip(c_next.par_chunks_mut(h))
            .zip(h_next.par_chunks_mut(h).zip(act_c.par_chunks_mut(h)))
            .with_min_len(rows_per_task(h))
            .for_each(|(((a_row, c_prev), c_next), (h_next, act_c))| {
                lstm_cell_forward(s, a_row, c_prev, c_next, h_next, act_c)
            });
    }
}

/// The fused gate math of one sequence at one timestep: turns the row of
/// pre-activations `a` (4H) into activated gates in place, and writes
/// `c_t`, `act(c_t)` and `h_t`.
#[inline]
fn lstm_cell_forward<T: Real>(
    s: &LstmShape,
    a: &mut [T],
    c_prev: &[T],
    c_next: &mut [T],
    h_next: &mut [T],
    act_c: &mut [T],
) {
    let h = s.h;
    let (ai, rest) = a.split_at_mut(h);
    let (af, rest) = rest.split_at_mut(h);
    let (ag, ao) = rest.split_at_mut(h);
    for j in 0..h {
        let i = gate(s.gate, ai[j]);
        let f = gate(s.gate, af[j]);
        let g = cell(s.cell, ag[j]);
        let o = gate(s.gate, ao[j]);
        let c = f * c_prev[j] + i * g;
        let ac = cell(s.cell, c);
        ai[j] = i;
        af[j] = f;
        ag[j] = g;
        ao[j] = o;
        c_next[j] = c;
        act_c[j] = ac;
        h_next[j] = o * ac;
    }
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
pub fn lstm_backward<T: Real>(
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

    // dh_rec = ∂L/∂h_t through the recurrence (from a_{t+1}); dc carries ∂L/∂c_t.
    let mut dh_rec = vec![T::zero(); bh];
    let mut dc = vec![T::zero(); bh];
    for t in (0..s.t).rev() {
        if t + 1 < s.t {
            let da_next = &da[(t + 1) * s.b * h4..(t + 2) * s.b * h4];
            gemm(
                Op::N,
                Op::N,
                s.b,
                h,
                h4,
                T::one(),
                da_next,
                h4,
                w_hh,
                h,
                T::zero(),
                &mut dh_rec,
                h,
            );
        }
        let gates = &cache.gates[t * s.b * h4..(t + 1) * s.b * h4];
        let act_c = &cache.act_c[t * bh..(t + 1) * bh];
        let c_prev = &cache.c[t * bh..(t + 1) * bh];
        let dh_t = &dh_out[t * bh..(t + 1) * bh];
        let da_t = &mut da[t * s.b * h4..(t + 1) * s.b * h4];
        da_t.par_chunks_mut(h4)
            .zip(dc.par_chunks_mut(h))
            .zip(gates.par_chunks(h4).zip(act_c.par_chunks(h)))
            .zip(
                c_prev
                    .par_chunks(h)
                    .zip(dh_t.par_chunks(h).zip(dh_rec.par_chunks(h))),
            )
            .with_min_len(rows_per_task(h))
            .for_each(|(((da, dc), (g, ac)), (cp, (dho, dhr)))| {
                lstm_cell_backward(s, g, ac, cp, dho, dhr, dc, da)
            });
    }
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
    column_sums(da, h4, &mut db);
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

/// The fused backward gate math of one sequence at one timestep.
/// In: activated gates `g` (4H), `act(c_t)`, `c_{t-1}`, `dh = dh_out + dh_rec`,
/// and `dc` = ∂L/∂c_t from the future. Out: `da` (4H) and `dc` ← ∂L/∂c_{t-1}.
#[allow(clippy::too_many_arguments)]
#[inline]
fn lstm_cell_backward<T: Real>(
    s: &LstmShape,
    gates: &[T],
    act_c: &[T],
    c_prev: &[T],
    dh_out: &[T],
    dh_rec: &[T],
    dc: &mut [T],
    da: &mut [T],
) {
    let h = s.h;
    for j in 0..h {
        let (i, f, g, o) = (gates[j], gates[h + j], gates[2 * h + j], gates[3 * h + j]);
        let dh = dh_out[j] + dh_rec[j];
        let ac = act_c[j];
        let dcj = dc[j] + dh * o * cell_grad(s.cell, ac);
        da[j] = dcj * g * gate_grad(s.gate, i);
        da[h + j] = dcj * c_prev[j] * gate_grad(s.gate, f);
        da[2 * h + j] = dcj * i * cell_grad(s.cell, g);
        da[3 * h + j] = dh * ac * gate_grad(s.gate, o);
        dc[j] = dcj * f;
    }
}

/// `out[c] = Σ_r m[r, c]` for a row-major `m` with `cols` columns, summed in
/// row order (a fixed order keeps results bit-reproducible).
pub fn column_sums<T: Real>(m: &[T], cols: usize, out: &mut [T]) {
    const BLOCK: usize = 64;
    out.par_chunks_mut(BLOCK).enumerate().for_each(|(blk, o)| {
        o.iter_mut().for_each(|v| *v = T::zero());
        let (c0, c1) = (blk * BLOCK, blk * BLOCK + o.len());
        for row in m.chunks_exact(cols) {
            for (v, &x) in o.iter_mut().zip(&row[c0..c1]) {
                *v = *v + x;
            }
        }
    });
}

/// The layer written as its equations read: one timestep, one sequence, one
/// unit at a time, dot products in index order. Returns `(h[T+1,B,H], c[T+1,B,H])`.
pub fn lstm_forward_reference<T: Real>(
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
