//! One readable reference per op, in f64, written as the equations read:
//! plain loops, one output at a time, sums in index order. Each fast CPU
//! twin and each shader is held to the reference of the same name (the
//! table in `src/cpu/README.md`); none of this runs in training.
//!
//! Layouts are those of the fast twins: row-major, PyTorch's `[out, in]`
//! weights, the LSTM's gates in the order i, f, g, o (blocks of `H` rows),
//! sequences `[T, B, ·]` (timestep-major).

// The loops index as the equations do, which is the point of a reference.
#![allow(clippy::needless_range_loop)]

use super::activation::{cell, cell_grad, gate, gate_grad};
use super::lstm_shape::LstmShape;

/// One LSTM layer's weights: `w_ih[4H, I]`, `w_hh[4H, H]`, `b_ih[4H]`, `b_hh[4H]`.
#[derive(Clone, Copy, Debug)]
pub struct LstmWeights<'a> {
    pub w_ih: &'a [f64],
    pub w_hh: &'a [f64],
    pub b_ih: &'a [f64],
    pub b_hh: &'a [f64],
}

/// What [`lstm_forward`] computes and [`lstm_backward`] reads.
#[derive(Clone, Debug)]
pub struct LstmTrace {
    /// Activated gates `[T, B, 4H]`: i, f, g, o blocks of `H`.
    pub gates: Vec<f64>,
    /// Cell states `[T+1, B, H]`, block 0 the initial state.
    pub c: Vec<f64>,
    /// Hidden states `[T+1, B, H]`, block 0 the initial state.
    pub h: Vec<f64>,
}

/// ```text
/// a_t = W_ih·x_t + b_ih + W_hh·h_{t-1} + b_hh          (4H rows)
/// i, f, o = σ(a_i), σ(a_f), σ(a_o);  g = act(a_g)
/// c_t = f·c_{t-1} + i·g;  h_t = o·act(c_t)
/// ```
/// `x[T, B, I]`, `h0` and `c0` `[B, H]`.
pub fn lstm_forward(
    s: &LstmShape,
    w: LstmWeights<'_>,
    x: &[f64],
    h0: &[f64],
    c0: &[f64],
) -> LstmTrace {
    let (nh, ni, bh) = (s.h, s.i, s.b * s.h);
    let mut tr = LstmTrace {
        gates: vec![0.0; s.t * s.b * 4 * nh],
        c: [c0, &vec![0.0; s.t * bh]].concat(),
        h: [h0, &vec![0.0; s.t * bh]].concat(),
    };
    for t in 0..s.t {
        for b in 0..s.b {
            let row = t * s.b + b;
            for j in 0..nh {
                let pre = |k: usize| {
                    let r = k * nh + j;
                    let mut a = w.b_ih[r] + w.b_hh[r];
                    for p in 0..ni {
                        a += w.w_ih[r * ni + p] * x[row * ni + p];
                    }
                    for p in 0..nh {
                        a += w.w_hh[r * nh + p] * tr.h[t * bh + b * nh + p];
                    }
                    a
                };
                let (i, f) = (gate(s.gate, pre(0)), gate(s.gate, pre(1)));
                let (g, o) = (cell(s.cell, pre(2)), gate(s.gate, pre(3)));
                let c = f * tr.c[t * bh + b * nh + j] + i * g;
                tr.c[(t + 1) * bh + b * nh + j] = c;
                tr.h[(t + 1) * bh + b * nh + j] = o * cell(s.cell, c);
                for (k, v) in [i, f, g, o].into_iter().enumerate() {
                    tr.gates[row * 4 * nh + k * nh + j] = v;
                }
            }
        }
    }
    tr
}

/// Gradients of one LSTM layer, each shaped as what it is the gradient of.
#[derive(Clone, Debug)]
pub struct LstmGradients {
    pub w_ih: Vec<f64>,
    pub w_hh: Vec<f64>,
    pub b_ih: Vec<f64>,
    pub b_hh: Vec<f64>,
    pub x: Vec<f64>,
    pub h0: Vec<f64>,
    pub c0: Vec<f64>,
    /// ∂L/∂(gate pre-activations) `[T, B, 4H]`, what the backward gate math
    /// (shader `lstm_backward`) leaves in place of the gates.
    pub da: Vec<f64>,
}

/// Backpropagation through time, from `dh_out = ∂L/∂h_t` for t = 1..=T
/// (`[T, B, H]`), one timestep back at a time:
/// ```text
/// dh  = dh_out_t + (W_hhᵀ·da_{t+1})          dc = dc_{t+1}·f_{t+1} + dh·o·act'(c_t)
/// da_i = dc·g·σ'   da_f = dc·c_{t-1}·σ'   da_g = dc·i·act'   da_o = dh·act(c_t)·σ'
/// dW_ih += da·x_tᵀ   dW_hh += da·h_{t-1}ᵀ   db += da   dx_t = W_ihᵀ·da
/// ```
/// (derivatives written in terms of the activations' outputs, as `cpu::activation` does).
pub fn lstm_backward(
    s: &LstmShape,
    w: LstmWeights<'_>,
    x: &[f64],
    tr: &LstmTrace,
    dh_out: &[f64],
) -> LstmGradients {
    let (nh, ni, bh, h4) = (s.h, s.i, s.b * s.h, 4 * s.h);
    let mut g = LstmGradients {
        w_ih: vec![0.0; h4 * ni],
        w_hh: vec![0.0; h4 * nh],
        b_ih: vec![0.0; h4],
        b_hh: vec![0.0; h4],
        x: vec![0.0; s.t * s.b * ni],
        h0: vec![0.0; bh],
        c0: vec![0.0; bh],
        da: vec![0.0; s.t * s.b * h4],
    };
    // ∂L/∂h_t and ∂L/∂c_t arriving from step t+1.
    let (mut dh_next, mut dc_next) = (vec![0.0; bh], vec![0.0; bh]);
    for t in (0..s.t).rev() {
        let (mut dh_prev, mut dc_prev) = (vec![0.0; bh], vec![0.0; bh]);
        for b in 0..s.b {
            let row = t * s.b + b;
            let mut da = vec![0.0; h4];
            for j in 0..nh {
                let at = |k: usize| tr.gates[row * h4 + k * nh + j];
                let (i, f, gg, o) = (at(0), at(1), at(2), at(3));
                let c_prev = tr.c[t * bh + b * nh + j];
                let act_c = cell(s.cell, tr.c[(t + 1) * bh + b * nh + j]);
                let dh = dh_out[row * nh + j] + dh_next[b * nh + j];
                let dc = dc_next[b * nh + j] + dh * o * cell_grad(s.cell, act_c);
                da[j] = dc * gg * gate_grad(s.gate, i);
                da[nh + j] = dc * c_prev * gate_grad(s.gate, f);
                da[2 * nh + j] = dc * i * cell_grad(s.cell, gg);
                da[3 * nh + j] = dh * act_c * gate_grad(s.gate, o);
                dc_prev[b * nh + j] = dc * f;
            }
            g.da[row * h4..(row + 1) * h4].copy_from_slice(&da);
            for r in 0..h4 {
                g.b_ih[r] += da[r];
                g.b_hh[r] += da[r];
                for p in 0..ni {
                    g.w_ih[r * ni + p] += da[r] * x[row * ni + p];
                    g.x[row * ni + p] += w.w_ih[r * ni + p] * da[r];
                }
                for p in 0..nh {
                    g.w_hh[r * nh + p] += da[r] * tr.h[t * bh + b * nh + p];
                    dh_prev[b * nh + p] += w.w_hh[r * nh + p] * da[r];
                }
            }
        }
        dh_next = dh_prev;
        dc_next = dc_prev;
    }
    g.h0 = dh_next;
    g.c0 = dc_next;
    g
}

/// `y[r, o] = b[o] + Σ_i w[o, i]·x[r, i]`, for `x[rows, I]`, `w[O, I]`.
pub fn dense_forward(rows: usize, w: &[f64], b: &[f64], x: &[f64]) -> Vec<f64> {
    let (no, ni) = (b.len(), w.len() / b.len().max(1));
    let mut y = vec![0.0; rows * no];
    for r in 0..rows {
        for o in 0..no {
            let mut a = b[o];
            for i in 0..ni {
                a += w[o * ni + i] * x[r * ni + i];
            }
            y[r * no + o] = a;
        }
    }
    y
}

/// From `dy[rows, O]`: `(dW = dyᵀ·x, db = Σ_rows dy, dx = dy·W)`.
pub fn dense_backward(
    rows: usize,
    w: &[f64],
    x: &[f64],
    dy: &[f64],
    outputs: usize,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let ni = w.len() / outputs.max(1);
    let (mut dw, mut db, mut dx) = (vec![0.0; w.len()], vec![0.0; outputs], vec![0.0; rows * ni]);
    for r in 0..rows {
        for o in 0..outputs {
            let d = dy[r * outputs + o];
            db[o] += d;
            for i in 0..ni {
                dw[o * ni + i] += d * x[r * ni + i];
                dx[r * ni + i] += d * w[o * ni + i];
            }
        }
    }
    (dw, db, dx)
}

/// `(Σ (p - y)² / n, ∂/∂p = 2(p - y)/n)` over all `n` elements (shader `mse_loss`).
pub fn mse_loss(pred: &[f64], target: &[f64]) -> (f64, Vec<f64>) {
    let n = pred.len().max(1) as f64;
    let loss = pred
        .iter()
        .zip(target)
        .map(|(p, y)| (p - y) * (p - y))
        .sum::<f64>()
        / n;
    let grad = pred
        .iter()
        .zip(target)
        .map(|(p, y)| 2.0 * (p - y) / n)
        .collect();
    (loss, grad)
}

/// `out[c] = Σ_r m[r, c]` (shader `column_sum`): a bias gradient.
pub fn column_sum(m: &[f64], cols: usize) -> Vec<f64> {
    let mut out = vec![0.0; cols];
    for row in m.chunks_exact(cols) {
        for (o, v) in out.iter_mut().zip(row) {
            *o += v;
        }
    }
    out
}

/// `√(Σ g²)` over every gradient (shader `grad_norm`), what clipping scales by.
pub fn grad_norm(grads: &[f64]) -> f64 {
    grads.iter().map(|g| g * g).sum::<f64>().sqrt()
}

/// The windows and targets of `t` timesteps of every lane (shader `gather`):
/// lane `l` at step `s` sits at position `p = min(start_l + s, N - 2)` of a
/// `[N, W]` input signal (`W = width` values a frame: the channels' samples,
/// or a hybrid model's features); its input is frames `p+1-frame ..= p`, its
/// target the frame `p + 1` of the `[N, C]` targets. Returns
/// `(x[T, B, frame·W], target[T, B, C])`.
pub fn gather(
    signal: &[f64],
    targets: &[f64],
    channels: usize,
    width: usize,
    frame: usize,
    starts: &[usize],
    t: usize,
) -> (Vec<f64>, Vec<f64>) {
    let last = (signal.len() / width).saturating_sub(2);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for step in 0..t {
        for &s in starts {
            let p = (s + step).min(last);
            for q in p + 1 - frame..=p {
                x.extend_from_slice(&signal[q * width..(q + 1) * width]);
            }
            y.extend_from_slice(&targets[(p + 1) * channels..(p + 2) * channels]);
        }
    }
    (x, y)
}

/// Adam's hyper-parameters, as PyTorch's `torch.optim.AdamW` names them.
#[derive(Clone, Copy, Debug)]
pub struct AdamHyper {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

/// One step (number `t`, from 1) of Adam with decoupled weight decay, the
/// update PyTorch's `AdamW` documents (shader `adam`):
/// ```text
/// p ← p − lr·λ·p
/// m ← β₁·m + (1 − β₁)·g          v ← β₂·v + (1 − β₂)·g²
/// p ← p − lr · (m / (1 − β₁ᵗ)) / (√(v / (1 − β₂ᵗ)) + ε)
/// ```
pub fn adam(h: &AdamHyper, t: u64, p: &mut [f64], g: &[f64], m: &mut [f64], v: &mut [f64]) {
    let (bc1, bc2) = (1.0 - h.beta1.powf(t as f64), 1.0 - h.beta2.powf(t as f64));
    for k in 0..p.len() {
        p[k] -= h.lr * h.weight_decay * p[k];
        m[k] = h.beta1 * m[k] + (1.0 - h.beta1) * g[k];
        v[k] = h.beta2 * v[k] + (1.0 - h.beta2) * g[k] * g[k];
        p[k] -= h.lr * (m[k] / bc1) / ((v[k] / bc2).sqrt() + h.eps);
    }
}
