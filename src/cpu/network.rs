//! The whole model on the CPU: stacked LSTM layers, the dense head, the
//! loss, and the backward pass through all of them.
//!
//! Shapes for a batch of `B` sequences of `T` timesteps (`C` channels,
//! `I0 = frame·C` inputs, `L` layers, `H` hidden):
//! - input `x[T, B, I0]`, targets and predictions `[T, B, C]`
//! - initial and final states `h, c[L, B, H]`
//! - everything between as described in `cpu::lstm` and `cpu::dense`.

use super::activation::{activate, activate_backward};
use super::dense::{dense_backward, dense_forward, head_activation, Head};
use super::lstm::{lstm_backward, lstm_forward, LstmCache, LstmGrads, LstmShape, Pass};
use super::scalar::CpuReal;
use crate::model::ModelConfig;
use crate::real::Real;
use rayon::prelude::*;

/// Activations kept from forward for backward, reused across steps so a
/// training step allocates nothing once warmed up.
#[derive(Clone, Debug, Default)]
pub struct Workspace<T> {
    t: usize,
    b: usize,
    /// What the next forward pass is for (set by the caller; training unless
    /// said), and what the last one was: backward needs a training pass.
    pub pass: Pass,
    pub lstm: Vec<LstmCache<T>>,
    /// The head's activations: `top` `[T·B, H]`, the last output the prediction.
    head: Head<T>,
    // Backward scratch.
    da: Vec<T>,
    dh: Vec<T>,
    dx: Vec<T>,
    dy: Vec<Vec<T>>,
}

impl<T: CpuReal> Workspace<T> {
    /// The predictions of the last forward pass, `[T, B, C]`.
    pub fn prediction(&self) -> &[T] {
        self.head.output()
    }

    /// The final states of the last forward pass, written as `[L, B, H]` each.
    pub fn final_state(&self, cfg: &ModelConfig, h: &mut [T], c: &mut [T]) {
        let bh = self.b * cfg.hidden;
        for (k, cache) in self.lstm.iter().enumerate() {
            let (hk, ck) = cache.final_state(&shape(cfg, k, self.t, self.b));
            h[k * bh..(k + 1) * bh].copy_from_slice(hk);
            c[k * bh..(k + 1) * bh].copy_from_slice(ck);
        }
    }
}

pub fn shape(cfg: &ModelConfig, layer: usize, t: usize, b: usize) -> LstmShape {
    LstmShape {
        t,
        b,
        i: cfg.layer_input(layer),
        h: cfg.hidden,
        cell: cfg.cell_activation,
        gate: cfg.gate_activation,
    }
}

/// Forward pass of the whole model; the predictions end up in `ws.prediction()`.
#[allow(clippy::too_many_arguments)]
pub fn forward<T: CpuReal>(
    cfg: &ModelConfig,
    params: &[T],
    t: usize,
    b: usize,
    x: &[T],
    h0: &[T],
    c0: &[T],
    ws: &mut Workspace<T>,
) {
    let layout = cfg.layout();
    let bh = b * cfg.hidden;
    ws.t = t;
    ws.b = b;
    ws.lstm.resize_with(cfg.layers, LstmCache::default);
    for k in 0..cfg.layers {
        let s = shape(cfg, k, t, b);
        let (below, rest) = ws.lstm.split_at_mut(k);
        let input = if k == 0 {
            x
        } else {
            below[k - 1].output(&shape(cfg, k - 1, t, b))
        };
        lstm_forward(
            &s,
            params,
            &layout.lstm[k],
            input,
            &h0[k * bh..(k + 1) * bh],
            &c0[k * bh..(k + 1) * bh],
            &mut rest[0],
            ws.pass,
        );
    }
    let slope = T::from_f64_lossy(cfg.leaky_slope);
    let top_shape = shape(cfg, cfg.layers - 1, t, b);
    let top = ws.lstm[cfg.layers - 1].output(&top_shape);
    let n_dense = layout.dense.len();
    ws.head
        .start(top, cfg.lstm_output_activation, slope, n_dense);

    let rows = t * b;
    for (j, off) in layout.dense.iter().enumerate() {
        let (input, y) = ws.head.layer(j);
        y.resize(rows * off.output, T::zero());
        dense_forward(rows, off, params, input, y);
        activate(head_activation(cfg, j, n_dense), slope, y);
    }
}

/// Backward pass of the whole model from `dpred = ∂L/∂prediction` (`[T, B, C]`).
/// Adds parameter gradients into `grads` and overwrites `dh0`, `dc0` (`[L, B, H]`).
#[allow(clippy::too_many_arguments)]
pub fn backward<T: CpuReal>(
    cfg: &ModelConfig,
    params: &[T],
    x: &[T],
    dpred: &[T],
    ws: &mut Workspace<T>,
    grads: &mut [T],
    dh0: &mut [T],
    dc0: &mut [T],
) {
    assert_eq!(ws.pass, Pass::Training, "backward after an inference pass");
    let layout = cfg.layout();
    let (t, b) = (ws.t, ws.b);
    let rows = t * b;
    let bh = b * cfg.hidden;
    let slope = T::from_f64_lossy(cfg.leaky_slope);
    let n_dense = layout.dense.len();

    // Head, last layer first. dy[j] = ∂L/∂(output of dense layer j before its activation).
    ws.dy.resize_with(n_dense, Vec::new);
    ws.dy[n_dense - 1].clear();
    ws.dy[n_dense - 1].extend_from_slice(dpred);
    for j in (0..n_dense).rev() {
        let off = &layout.dense[j];
        let act = head_activation(cfg, j, n_dense);
        let (lower, upper) = ws.dy.split_at_mut(j);
        let dy = &mut upper[0];
        activate_backward(act, slope, &ws.head.dense[j], dy);
        let input = if j == 0 {
            &ws.head.top
        } else {
            &ws.head.dense[j - 1]
        };
        let dx = if j == 0 {
            ws.dh.resize(rows * cfg.hidden, T::zero());
            &mut ws.dh
        } else {
            let d = &mut lower[j - 1];
            d.resize(rows * off.input, T::zero());
            d
        };
        dense_backward(rows, off, params, input, dy, grads, Some(dx));
    }
    activate_backward(cfg.lstm_output_activation, slope, &ws.head.top, &mut ws.dh);

    // LSTM layers, top first; each layer's input gradient is the next one's dh.
    for k in (0..cfg.layers).rev() {
        let s = shape(cfg, k, t, b);
        let input = if k == 0 {
            x
        } else {
            ws.lstm[k - 1].output(&shape(cfg, k - 1, t, b))
        };
        let dx = if k == 0 {
            None
        } else {
            ws.dx.resize(rows * s.i, T::zero());
            Some(ws.dx.as_mut_slice())
        };
        lstm_backward(
            &s,
            params,
            &layout.lstm[k],
            input,
            &ws.lstm[k],
            &ws.dh,
            &mut ws.da,
            LstmGrads {
                params: grads,
                x: dx,
                h0: &mut dh0[k * bh..(k + 1) * bh],
                c0: &mut dc0[k * bh..(k + 1) * bh],
            },
        );
        if k > 0 {
            std::mem::swap(&mut ws.dh, &mut ws.dx);
        }
    }
}

/// Which rows `r = t·B + b` of a `[T, B]` batch a loss counts: all but the
/// first `steps` timesteps of every lane that starts from a zero state (the
/// loss burn-in, see `dataset`): those timesteps are the lane's context.
#[derive(Clone, Copy, Debug)]
pub struct BurnIn<'a> {
    pub steps: usize,
    /// Per lane (B of them): the lane carries its state in, so nothing of it
    /// is burn-in.
    pub carry: &'a [bool],
}

impl BurnIn<'_> {
    /// Every row counts.
    pub const NONE: BurnIn<'static> = BurnIn {
        steps: 0,
        carry: &[],
    };

    pub fn counts(&self, row: usize) -> bool {
        if self.steps == 0 || self.carry.is_empty() {
            return true;
        }
        let b = self.carry.len();
        row / b >= self.steps || self.carry[row % b]
    }

    /// Rows counted out of `rows` (= T·B).
    pub fn counted(&self, rows: usize) -> usize {
        if self.steps == 0 || self.carry.is_empty() {
            return rows;
        }
        let b = self.carry.len();
        let t = rows / b;
        let fresh = self.carry.iter().filter(|&&c| !c).count();
        rows - fresh * self.steps.min(t)
    }

    /// The mean over the distributions this counts (`channels` a row) of a
    /// loss taken one distribution at a time, and its gradient into `grad`
    /// (resized to `inputs`, `width` values a distribution):
    /// `each(i, inputs_i, target_i, inv_n, grad_i)` returns distribution
    /// `i`'s loss and writes its gradient already divided by the number
    /// counted (`inv_n` is one over it); the others add nothing and get a
    /// zero gradient. The distributions run on rayon, at least `min_len` a
    /// task; `row_loss` (scratch) is summed in distribution order in f64,
    /// whatever the threads did, so the mean is reproducible.
    #[allow(clippy::too_many_arguments)]
    pub fn mean_loss<T: Real>(
        self,
        inputs: &[T],
        width: usize,
        targets: &[T],
        channels: usize,
        min_len: usize,
        grad: &mut Vec<T>,
        row_loss: &mut Vec<f64>,
        each: impl Fn(usize, &[T], T, f64, &mut [T]) -> f64 + Sync + Send,
    ) -> f64 {
        let n = targets.len();
        grad.resize(inputs.len(), T::zero());
        row_loss.resize(n, 0.0);
        let c = channels.max(1);
        let inv_n = 1.0 / (self.counted(n / c) * c).max(1) as f64;
        grad.par_chunks_mut(width)
            .zip(inputs.par_chunks(width))
            .zip(targets.par_iter().zip(row_loss.par_iter_mut()))
            .enumerate()
            .with_min_len(min_len)
            .for_each(|(i, ((d, z), (&y, loss)))| {
                *loss = if self.counts(i / c) {
                    each(i, z, y, inv_n, d)
                } else {
                    d.fill(T::zero());
                    0.0
                };
            });
        row_loss.iter().sum::<f64>() * inv_n
    }
}

/// Mean squared error over all elements, and its gradient `2(y - target)/n`.
/// The sum runs in element order (in f64 for f32 inputs) so it is reproducible.
pub fn mse_loss<T: Real>(pred: &[T], target: &[T], dpred: &mut Vec<T>) -> f64 {
    mse_loss_masked(pred, target, 1, BurnIn::NONE, dpred)
}

/// [`mse_loss`] over the elements of the rows `burn_in` counts (`channels`
/// elements a row): the others add nothing and get a zero gradient, and `n`
/// is the number counted.
pub fn mse_loss_masked<T: Real>(
    pred: &[T],
    target: &[T],
    channels: usize,
    burn_in: BurnIn<'_>,
    dpred: &mut Vec<T>,
) -> f64 {
    assert_eq!(pred.len(), target.len(), "mse_loss: shapes");
    let c = channels.max(1);
    let n = (burn_in.counted(pred.len() / c) * c).max(1);
    let scale = T::from_f64_lossy(2.0 / n as f64);
    dpred.clear();
    let mut sum = 0.0f64;
    for (i, (&p, &y)) in pred.iter().zip(target).enumerate() {
        if !burn_in.counts(i / c) {
            dpred.push(T::zero());
            continue;
        }
        let e = p - y;
        let e64 = e.to_f64().unwrap_or(f64::NAN);
        sum += e64 * e64;
        dpred.push(scale * e);
    }
    sum / n as f64
}
