//! The network's passes as dispatch lists: forward through every LSTM layer
//! and the dense head, the loss, backward, and the optimizer step, composed
//! from the ops of `src/gpu/ops/` (the GPU twin of `cpu::network`).

use super::arena::Arena;
use super::ops::law_nll::LawAt;
use super::ops::lstm_backward;
use super::ops::lstm_forward::{self, kinds};
use super::ops::matmul::{acts, weights, Dest};
use super::program::{u, LossMask, Path, Program};
use crate::model::{Activation, ModelConfig, Output};
use crate::optim::AdamConfig;

impl Program {
    /// Forward of every LSTM layer, the output activation and the head.
    /// `fresh`: every lane starts from zero state, so the first recurrent
    /// product multiplies zeros and is skipped (the whole recurrence at T = 1).
    pub fn forward(&mut self, cfg: &ModelConfig, ar: &Arena, path: Path, fresh: bool) {
        let layout = cfg.layout();
        let (t, b, h) = (ar.t, ar.b, cfg.hidden);
        let (tb, h4, bh) = (t * b, 4 * h, b * h);
        for (k, (lo, re)) in layout.lstm.iter().zip(&ar.layers).enumerate() {
            let (input, ni) = if k == 0 {
                (ar.x, cfg.input_size())
            } else {
                (ar.layers[k - 1].h + bh, h)
            };
            // Input projection of every timestep at once, both biases folded in.
            self.matmul(
                tb,
                h4,
                ni,
                acts(input, ni),
                weights(lo.w_ih, ni).t(),
                Dest {
                    grads: false,
                    offset: re.gates,
                    ld: h4,
                    accumulate: false,
                },
                [Some(lo.b_ih), Some(lo.b_hh)],
            );
            let lstm = |step: usize| lstm_forward::Params {
                t: u(step),
                b: u(b),
                h: u(h),
                kinds: kinds(cfg.cell_activation, cfg.gate_activation),
                a: u(re.gates),
                c: u(re.c),
                hs: u(re.h),
                w_hh: u(lo.w_hh),
                steps: u(t),
            };
            match path {
                Path::Step => {
                    for step in 0..t {
                        if !(step == 0 && fresh) {
                            self.matmul(
                                b,
                                h4,
                                h,
                                acts(re.h + step * bh, h),
                                weights(lo.w_hh, h).t(),
                                Dest {
                                    grads: false,
                                    offset: re.gates + step * b * h4,
                                    ld: h4,
                                    accumulate: true,
                                },
                                [None, None],
                            );
                        }
                        self.lstm_forward_step(lstm(step));
                    }
                }
                Path::Sequence => self.lstm_forward_sequence(lstm(0)),
            }
        }
        let h_top = ar.layers[cfg.layers - 1].h + bh;
        self.activation(cfg, cfg.lstm_output_activation, tb * h, h_top, ar.top);
        let mut input = ar.top;
        let n_dense = layout.dense.len();
        for (j, d) in layout.dense.iter().enumerate() {
            self.matmul(
                tb,
                d.output,
                d.input,
                acts(input, d.input),
                weights(d.weight, d.input).t(),
                Dest {
                    grads: false,
                    offset: ar.dense[j],
                    ld: d.output,
                    accumulate: false,
                },
                [Some(d.bias), None],
            );
            let act = if j + 1 == n_dense {
                cfg.output_activation
            } else {
                Activation::LeakyRelu
            };
            self.activation(cfg, act, tb * d.output, ar.dense[j], ar.dense[j]);
            input = ar.dense[j];
        }
    }

    /// Loss of the predictions into this step's slot of the loss ring, and
    /// its gradient into the last `dy`; the first `burn_in` timesteps of
    /// every lane that starts from zero state (carry flag 0 in `lanes`) are
    /// left out.
    /// A `laplace` head reads its bin widths from `ar.delta` when
    /// `per_target_delta`.
    pub fn loss(&mut self, cfg: &ModelConfig, ar: &Arena, burn_in: usize, per_target_delta: bool) {
        let rows = ar.t * ar.b * cfg.channels;
        let dy = *ar.dy.last().expect("head output");
        let mask = LossMask {
            channels: cfg.channels,
            b: ar.b,
            burn_in,
        };
        match cfg.output {
            Output::Mulaw { scale } => {
                self.softmax_xent(rows, ar.prediction(), ar.target, dy, ar.point, scale, mask);
            }
            Output::Laplace { scale } | Output::Logistic { scale } => {
                let law = cfg.output.law().expect("a location–scale head").0;
                let delta = crate::laplace::delta_for_scale(f64::from(scale));
                let at = LawAt {
                    head: ar.prediction(),
                    targets: ar.target,
                    dhead: dy,
                    per_row: ar.point,
                    delta_at: ar.delta.filter(|_| per_target_delta),
                };
                self.law_nll(law, rows, at, delta as f32, mask);
            }
            Output::Mse => self.mse_loss(rows, ar.prediction(), ar.target, dy, mask),
        }
    }

    /// A distribution head's point predictions (model units) into
    /// `ar.point`: a `mulaw` head's expected values, a `laplace` head's
    /// locations; nothing for `mse`, whose output is its prediction.
    pub fn expected(&mut self, cfg: &ModelConfig, ar: &Arena) {
        let rows = ar.t * ar.b * cfg.channels;
        match cfg.output {
            Output::Mulaw { scale } => self.expected_rows(rows, ar.prediction(), ar.point, scale),
            Output::Laplace { .. } | Output::Logistic { .. } => {
                self.location_rows(rows, ar.prediction(), ar.point)
            }
            Output::Mse => {}
        }
    }

    /// Backward through the head and every LSTM layer; gradients are added
    /// into `grads` (Adam leaves them zeroed).
    pub fn backward(&mut self, cfg: &ModelConfig, ar: &Arena, path: Path) {
        let layout = cfg.layout();
        let (t, b, h) = (ar.t, ar.b, cfg.hidden);
        let (tb, h4, bh) = (t * b, 4 * h, b * h);
        let n_dense = layout.dense.len();
        for j in (0..n_dense).rev() {
            let d = &layout.dense[j];
            let act = if j + 1 == n_dense {
                cfg.output_activation
            } else {
                Activation::LeakyRelu
            };
            self.activation_backward(cfg, act, tb * d.output, ar.dense[j], ar.dy[j]);
            let input = if j == 0 { ar.top } else { ar.dense[j - 1] };
            // ∂L/∂W += dyᵀ·x, ∂L/∂b += Σ_rows dy.
            self.matmul(
                d.output,
                d.input,
                tb,
                acts(ar.dy[j], d.output).t(),
                acts(input, d.input),
                Dest {
                    grads: true,
                    offset: d.weight,
                    ld: d.input,
                    accumulate: true,
                },
                [None, None],
            );
            self.column_sum(tb, d.output, ar.dy[j], d.bias, None);
            // ∂L/∂x = dy·W.
            let dx = if j == 0 { ar.dh } else { ar.dy[j - 1] };
            self.matmul(
                tb,
                d.input,
                d.output,
                acts(ar.dy[j], d.output),
                weights(d.weight, d.input),
                Dest {
                    grads: false,
                    offset: dx,
                    ld: d.input,
                    accumulate: false,
                },
                [None, None],
            );
        }
        self.activation_backward(cfg, cfg.lstm_output_activation, tb * h, ar.top, ar.dh);

        let (mut dh_out, mut dx) = (ar.dh, ar.dx);
        for k in (0..cfg.layers).rev() {
            let (lo, re) = (&layout.lstm[k], &ar.layers[k]);
            // The sweep turns this layer's gates into da in place.
            let da = re.gates;
            let back = |step: usize, first_or_steps: usize| lstm_backward::Params {
                t: u(step),
                b: u(b),
                h: u(h),
                kinds: kinds(cfg.cell_activation, cfg.gate_activation),
                a: u(re.gates),
                c: u(re.c),
                dh_out: u(dh_out),
                dh_rec: u(ar.dh_rec),
                dc: u(ar.dc),
                first_or_steps: u(first_or_steps),
                w_hh: u(lo.w_hh),
            };
            match path {
                Path::Step => {
                    for step in (0..t).rev() {
                        let first = step + 1 == t;
                        if !first {
                            // ∂L/∂h_t through the recurrence: da_{t+1}·W_hh.
                            self.matmul(
                                b,
                                h,
                                h4,
                                acts(da + (step + 1) * b * h4, h4),
                                weights(lo.w_hh, h),
                                Dest {
                                    grads: false,
                                    offset: ar.dh_rec,
                                    ld: h,
                                    accumulate: false,
                                },
                                [None, None],
                            );
                        }
                        self.lstm_backward_step(back(step, usize::from(first)));
                    }
                }
                Path::Sequence => self.lstm_backward_sequence(back(0, t)),
            }
            let (input, ni) = if k == 0 {
                (ar.x, cfg.input_size())
            } else {
                (ar.layers[k - 1].h + bh, h)
            };
            // Weight gradients as one product each over all T·B rows.
            let grad = |offset: usize, ld: usize| Dest {
                grads: true,
                offset,
                ld,
                accumulate: true,
            };
            self.matmul(
                h4,
                ni,
                tb,
                acts(da, h4).t(),
                acts(input, ni),
                grad(lo.w_ih, ni),
                [None, None],
            );
            self.matmul(
                h4,
                h,
                tb,
                acts(da, h4).t(),
                acts(re.h, h),
                grad(lo.w_hh, h),
                [None, None],
            );
            self.column_sum(tb, h4, da, lo.b_ih, Some(lo.b_hh));
            if k > 0 {
                self.matmul(
                    tb,
                    ni,
                    h4,
                    acts(da, h4),
                    weights(lo.w_ih, ni),
                    Dest {
                        grads: false,
                        offset: dx,
                        ld: ni,
                        accumulate: false,
                    },
                    [None, None],
                );
                std::mem::swap(&mut dh_out, &mut dx);
            }
        }
    }

    /// Gradient norm, clipping factor, and one Adam update of all `n` parameters.
    pub fn update(&mut self, adam: &AdamConfig, n: usize, ar: &Arena, ring: usize) {
        self.grad_norm(n, ar.partials, ring, adam.clip);
        self.adam(adam, n);
    }
}
