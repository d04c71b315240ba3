//! One timestep of the whole model, for free running: every output is fed
//! back as the next input, so the timesteps cannot be batched into one
//! large product as `network::forward` does, and a step must be cheap.
//!
//! Shapes for `B` lanes (`I0 = frame·C`, `L` layers, `H` hidden):
//! input `x[B, I0]`, state `h, c[L, B, H]` (updated in place), output
//! `[B, outputs]`. The equations are `cpu::lstm`'s; the reference is
//! `network::forward` with `T = 1`, which the tests hold this against.
//!
//! This is the readable reference, generic so the tests can run it in f64:
//! each gate row of the weights is read straight from the flat parameters
//! and dotted with every lane's input, one row after another. The engine
//! steps with its fast f32 twin, `cpu::fast_step`, which tests/free_step.rs
//! holds against this one.

use super::activation::{activate, cell, gate};
use super::dense::{head_activation, Head};
use super::scalar::CpuReal;
use crate::model::{ModelConfig, ParamLayout};

/// Scratch of one step, kept between steps.
#[derive(Clone, Debug, Default)]
pub struct StepScratch<T> {
    /// Pre-activations of one layer, transposed: `[4H, B]`, so a thread owns
    /// whole gate rows.
    pre: Vec<T>,
    /// The head's activations: `top` `[B, H]`, layer `j`'s `[B, out_j]`.
    head: Head<T>,
}

impl<T: CpuReal> StepScratch<T> {
    /// The output of the last step, `[B, outputs]`.
    pub fn output(&self) -> &[T] {
        self.head.output()
    }
}

/// `Σ a_i b_i`, in order.
fn dot<T: CpuReal>(a: &[T], b: &[T]) -> T {
    a.iter().zip(b).fold(T::zero(), |s, (&x, &y)| s + x * y)
}

/// `out[r, lane] = bias(r) + W_a[r]·a[lane] + W_b[r]·b[lane]` for every row
/// `r` of `W_a [rows, na]` (and `W_b [rows, nb]` when given), `out` `[rows, B]`.
#[allow(clippy::too_many_arguments)]
fn rows_times_lanes<T: CpuReal>(
    out: &mut [T],
    lanes: usize,
    w_a: &[T],
    a: &[T],
    w_b: Option<(&[T], &[T])>,
    bias: &[T],
    bias2: Option<&[T]>,
) {
    let na = a.len() / lanes;
    let nb = w_b.map_or(0, |(_, b)| b.len() / lanes);
    for (r, o) in out.chunks_exact_mut(lanes).enumerate() {
        let bias = bias[r] + bias2.map_or(T::zero(), |b2| b2[r]);
        let wa = &w_a[r * na..(r + 1) * na];
        for (lane, v) in o.iter_mut().enumerate() {
            let mut s = bias + dot(wa, &a[lane * na..(lane + 1) * na]);
            if let Some((w_b, b)) = w_b {
                s = s + dot(&w_b[r * nb..(r + 1) * nb], &b[lane * nb..(lane + 1) * nb]);
            }
            *v = s;
        }
    }
}

/// One timestep of `b` lanes from state `h, c` (`[L, B, H]`, overwritten by
/// the new state); the output ends up in `s.output()`.
#[allow(clippy::too_many_arguments)]
pub fn step_forward<T: CpuReal>(
    cfg: &ModelConfig,
    layout: &ParamLayout,
    params: &[T],
    b: usize,
    x: &[T],
    h: &mut [T],
    c: &mut [T],
    s: &mut StepScratch<T>,
) {
    let (nh, h4, bh) = (cfg.hidden, 4 * cfg.hidden, b * cfg.hidden);
    assert_eq!(x.len(), b * cfg.input_size(), "step_forward: x shape");
    assert_eq!(h.len(), cfg.layers * bh, "step_forward: h shape");
    assert_eq!(c.len(), cfg.layers * bh, "step_forward: c shape");
    s.pre.resize(h4 * b, T::zero());
    for (k, off) in layout.lstm.iter().enumerate() {
        let (below, rest) = h.split_at_mut(k * bh);
        let h_k = &mut rest[..bh];
        let input = if k == 0 { x } else { &below[(k - 1) * bh..] };
        let ni = off.input;
        rows_times_lanes(
            &mut s.pre,
            b,
            &params[off.w_ih..off.w_ih + h4 * ni],
            input,
            Some((&params[off.w_hh..off.w_hh + h4 * nh], &*h_k)),
            &params[off.b_ih..off.b_ih + h4],
            Some(&params[off.b_hh..off.b_hh + h4]),
        );
        // The gate math of `cpu::lstm`, reading the transposed pre-activations.
        let c_k = &mut c[k * bh..(k + 1) * bh];
        let pre =
            |gate_block: usize, j: usize, lane: usize| s.pre[(gate_block * nh + j) * b + lane];
        for lane in 0..b {
            for j in 0..nh {
                let i = gate(cfg.gate_activation, pre(0, j, lane));
                let f = gate(cfg.gate_activation, pre(1, j, lane));
                let g = cell(cfg.cell_activation, pre(2, j, lane));
                let o = gate(cfg.gate_activation, pre(3, j, lane));
                let e = lane * nh + j;
                let cv = f * c_k[e] + i * g;
                c_k[e] = cv;
                h_k[e] = o * cell(cfg.cell_activation, cv);
            }
        }
    }
    let slope = T::from_f64_lossy(cfg.leaky_slope);
    let n_dense = layout.dense.len();
    let top = &h[(cfg.layers - 1) * bh..];
    s.head
        .start(top, cfg.lstm_output_activation, slope, n_dense);
    for (j, d) in layout.dense.iter().enumerate() {
        let (input, y) = s.head.layer(j);
        // Rows of this layer's weights times lanes, written `[out, B]` into
        // the pre-activation scratch, then turned to `[B, out]`.
        if s.pre.len() < d.output * b {
            s.pre.resize(d.output * b, T::zero());
        }
        let tmp = &mut s.pre[..d.output * b];
        rows_times_lanes(
            tmp,
            b,
            &params[d.weight..d.weight + d.output * d.input],
            input,
            None,
            &params[d.bias..d.bias + d.output],
            None,
        );
        y.resize(b * d.output, T::zero());
        for lane in 0..b {
            for o in 0..d.output {
                y[lane * d.output + o] = tmp[o * b + lane];
            }
        }
        activate(head_activation(cfg, j, n_dense), slope, y);
    }
}
