//! A program: the fixed list of dispatches of one training step or one
//! inference pass for a (T, B) shape, with every dispatch's parameters
//! packed once into one uniform buffer. Per step the host only writes the
//! lanes and the step scalars, then records the list into one compute pass
//! and submits it once.
//!
//! The builder methods are the GPU twins of the CPU engine's ops, each
//! documented by its shader in `shaders/`.

use super::arena::{Arena, CarryLayout, NORM_GROUPS};
use super::context::Gpu;
use super::kernels::{Kernel, Pipelines, PARAMS_BYTES};
use crate::cpu::adam::{AdamConfig, StepConstants};
use crate::model::{Activation, CellActivation, GateActivation, ModelConfig, Output};

/// Offset meaning "no such tensor" (the shaders' `NONE`).
pub const NONE: u32 = u32::MAX;

/// Threads per workgroup of the one-dimensional kernels (`WG` in WGSL).
const WG: usize = 64;
/// Largest H of the sequence path's forward and backward kernels
/// (`SEQ_MAX_H` in shaders/lstm_forward.wgsl and lstm_backward.wgsl).
pub const SEQ_MAX_H_FORWARD: usize = 1024;
pub const SEQ_MAX_H_BACKWARD: usize = 512;

/// Outputs from which a matmul runs in 64×64 blocks: 64 such blocks, a
/// count that keeps the cores of a small GPU busy.
pub const LARGE_MATMUL_MIN_OUTPUT: usize = 64 * 64 * 64;

#[derive(Clone, Copy, Debug)]
pub struct Dispatch {
    pub kernel: Kernel,
    pub params: [u32; 16],
    pub groups: [u32; 3],
}

/// How the recurrence runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Path {
    /// Per timestep: a recurrent matmul dispatch and a gate-math dispatch.
    Step,
    /// One workgroup per lane walks all timesteps (small models).
    Sequence,
}

impl Path {
    pub fn fits(self, cfg: &ModelConfig) -> bool {
        match self {
            Path::Step => true,
            Path::Sequence => cfg.hidden <= SEQ_MAX_H_BACKWARD,
        }
    }
}

/// Which buffer a matmul operand is read from (bits of the `flags` field).
#[derive(Clone, Copy)]
pub enum Src {
    Params = 0,
    Acts = 1,
    Grads = 2,
}

/// One operand: buffer, element offset, leading dimension, transposed.
#[derive(Clone, Copy)]
pub struct Operand {
    pub src: Src,
    pub offset: usize,
    pub ld: usize,
    pub transposed: bool,
}

pub fn acts(offset: usize, ld: usize) -> Operand {
    Operand {
        src: Src::Acts,
        offset,
        ld,
        transposed: false,
    }
}

pub fn weights(offset: usize, ld: usize) -> Operand {
    Operand {
        src: Src::Params,
        offset,
        ld,
        transposed: false,
    }
}

impl Operand {
    pub fn t(self) -> Operand {
        Operand {
            transposed: true,
            ..self
        }
    }
}

/// The destination of a matmul.
#[derive(Clone, Copy)]
pub struct Dest {
    pub grads: bool,
    pub offset: usize,
    pub ld: usize,
    pub accumulate: bool,
}

fn u(x: usize) -> u32 {
    u32::try_from(x).expect("offsets are checked against the device limits")
}

fn f(x: f64) -> u32 {
    (x as f32).to_bits()
}

/// Workgroups for `threads` threads of a 1-D kernel with `wg` per group,
/// folded into a 2-D grid (a grid dimension holds at most 65,535).
fn grid(threads: usize, wg: usize) -> [u32; 3] {
    let groups = threads.div_ceil(wg).max(1);
    let x = groups.min(65_535);
    [u(x), u(groups.div_ceil(x)), 1]
}

fn params<const N: usize>(fields: [u32; N]) -> [u32; 16] {
    let mut p = [0u32; 16];
    p[..N].copy_from_slice(&fields);
    p
}

fn activation_kind(a: Activation) -> u32 {
    match a {
        Activation::Linear => 0,
        Activation::LeakyRelu => 1,
    }
}

fn lstm_kinds(cfg: &ModelConfig) -> u32 {
    let cell = u32::from(cfg.cell_activation == CellActivation::Linear);
    let gate = u32::from(cfg.gate_activation == GateActivation::HardSigmoid);
    cell | (gate << 1)
}

/// Which rows a loss counts (see `cpu::network::BurnIn`): all but the first
/// `burn_in` timesteps of the lanes whose carry flag in `lanes` is 0, for a
/// batch of `b` lanes and `channels` targets a row.
#[derive(Clone, Copy, Debug)]
pub struct LossMask {
    pub channels: usize,
    pub b: usize,
    pub burn_in: usize,
}

impl LossMask {
    /// Every row counts.
    pub fn none(channels: usize) -> LossMask {
        LossMask {
            channels,
            b: 1,
            burn_in: 0,
        }
    }
}

/// Where the Laplace loss's tensors are in `acts`.
#[derive(Clone, Copy, Debug)]
pub struct LaplaceAt {
    /// `[R, 2]`: location, raw log-scale.
    pub head: usize,
    pub targets: usize,
    pub dhead: usize,
    pub per_row: usize,
    /// Per-target bin widths `[R]`, or one width for all.
    pub delta_at: Option<usize>,
}

/// Offsets of the step scalars and rings in `stats` (see shaders/common.wgsl).
pub mod stats {
    /// Adam's per-step scalars (`cpu::adam::StepConstants`).
    pub const STEP_SIZE: usize = 0;
    pub const BIAS_CORRECTION2_SQRT: usize = 1;
    pub const DECAY: usize = 2;
    pub const SLOT: usize = 3;
    /// The loss ring (one slot per step between read-backs); the norm ring
    /// of the same length follows it.
    pub const LOSS: usize = 8;
    pub fn norm(ring: usize) -> usize {
        LOSS + ring
    }
    pub fn len(ring: usize) -> usize {
        LOSS + 2 * ring
    }
}

pub struct Program {
    pub dispatches: Vec<Dispatch>,
    /// Outputs from which matmuls use the 64×64 tiling (the tests set it to
    /// run every shape through each tiling).
    pub large_matmul_from: usize,
}

impl Default for Program {
    fn default() -> Self {
        Program {
            dispatches: Vec::new(),
            large_matmul_from: LARGE_MATMUL_MIN_OUTPUT,
        }
    }
}

impl Program {
    fn push(&mut self, kernel: Kernel, params: [u32; 16], groups: [u32; 3]) {
        self.dispatches.push(Dispatch {
            kernel,
            params,
            groups,
        });
    }

    /// `C = op(A)·op(B)` (+ C) (+ bias rows), C `[m×n]`.
    #[allow(clippy::too_many_arguments)]
    pub fn matmul(
        &mut self,
        m: usize,
        n: usize,
        k: usize,
        a: Operand,
        b: Operand,
        c: Dest,
        bias: [Option<usize>; 2],
    ) {
        if m == 0 || n == 0 {
            return;
        }
        let flags = u32::from(a.transposed)
            | (u32::from(b.transposed) << 1)
            | ((a.src as u32) << 2)
            | ((b.src as u32) << 4)
            | (u32::from(c.grads) << 6)
            | (u32::from(c.accumulate) << 7);
        let bias = bias.map(|o| o.map(u).unwrap_or(NONE));
        // 64×64 blocks where the output is large enough to fill the device
        // with them; 16×16 blocks for the small per-timestep products.
        let (kernel, block) = if m * n >= self.large_matmul_from {
            (Kernel::MatmulLarge, 64)
        } else {
            (Kernel::Matmul, 16)
        };
        self.push(
            kernel,
            params([
                u(m),
                u(n),
                u(k),
                flags,
                u(a.offset),
                u(a.ld),
                u(b.offset),
                u(b.ld),
                u(c.offset),
                u(c.ld),
                bias[0],
                bias[1],
                f(1.0),
            ]),
            [u(n.div_ceil(block)), u(m.div_ceil(block)), 1],
        );
    }

    /// Windows and targets of the batch; the target signal starts at element
    /// `targets_at` of the signal buffer (0: the signal is its own target).
    pub fn gather(&mut self, cfg: &ModelConfig, ar: &Arena, frames: usize, targets_at: usize) {
        self.push(
            Kernel::Gather,
            params([
                u(ar.t),
                u(ar.b),
                u(cfg.frame),
                u(cfg.channels),
                u(frames),
                u(ar.x),
                u(ar.target),
                u(targets_at),
                u(cfg.input_width()),
            ]),
            grid(ar.t * ar.b, WG),
        );
    }

    /// Initial state of every layer from the carried state (`load`) or the
    /// final state into it (`save`); `predict` picks the inference lanes'.
    pub fn state(
        &mut self,
        cfg: &ModelConfig,
        ar: &Arena,
        cl: &CarryLayout,
        predict: bool,
        save: bool,
    ) {
        let (ch, cc) = if predict {
            (cl.predict_h(), cl.predict_c())
        } else {
            (cl.train_h(), cl.train_c())
        };
        let kernel = if save {
            Kernel::StateSave
        } else {
            Kernel::StateLoad
        };
        self.push(
            kernel,
            params([
                u(cfg.layers),
                u(ar.b),
                u(cfg.hidden),
                u(ar.t),
                u(ch),
                u(cc),
                u(ar.layers[0].h),
                u(ar.layers[0].c),
                u(ar.layer_stride),
            ]),
            grid(cfg.layers * ar.b * cfg.hidden, WG),
        );
    }

    /// Forward of every LSTM layer, the output activation and the head.
    /// `fresh`: every lane starts from zero state, so the first recurrent
    /// product multiplies zeros and is skipped (the whole recurrence at T = 1).
    pub fn forward(&mut self, cfg: &ModelConfig, ar: &Arena, path: Path, fresh: bool) {
        let layout = cfg.layout();
        let (t, b, h) = (ar.t, ar.b, cfg.hidden);
        let (tb, h4, bh) = (t * b, 4 * h, b * h);
        let kinds = lstm_kinds(cfg);
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
            let lstm = |step: usize, steps: usize| {
                params([
                    u(step),
                    u(b),
                    u(h),
                    kinds,
                    u(re.gates),
                    u(re.c),
                    u(re.h),
                    NONE,
                    u(lo.w_hh),
                    u(steps),
                ])
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
                        self.push(Kernel::LstmForwardStep, lstm(step, t), grid(bh, WG));
                    }
                }
                Path::Sequence => {
                    self.push(Kernel::LstmForwardSequence, lstm(0, t), [u(b), 1, 1]);
                }
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

    fn activation(&mut self, cfg: &ModelConfig, act: Activation, n: usize, x: usize, y: usize) {
        if act == Activation::Linear && x == y {
            return;
        }
        self.push(
            Kernel::ActivationForward,
            params([
                u(n),
                activation_kind(act),
                u(x),
                u(y),
                NONE,
                f(cfg.leaky_slope),
            ]),
            grid(n, WG),
        );
    }

    fn activation_backward(
        &mut self,
        cfg: &ModelConfig,
        act: Activation,
        n: usize,
        y: usize,
        dy: usize,
    ) {
        if act == Activation::Linear {
            return;
        }
        self.push(
            Kernel::ActivationBackward,
            params([
                u(n),
                activation_kind(act),
                NONE,
                u(y),
                u(dy),
                f(cfg.leaky_slope),
            ]),
            grid(n, WG),
        );
    }

    /// Loss of the predictions into this step's slot of the loss ring, and
    /// its gradient into the last `dy`; the first `burn_in` timesteps of
    /// every lane that starts from zero state (carry flag 0 in `lanes`) are
    /// left out.
    pub fn loss(&mut self, cfg: &ModelConfig, ar: &Arena, burn_in: usize) {
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
            Output::Laplace { scale } => {
                let delta = crate::laplace::delta_for_scale(f64::from(scale));
                let at = LaplaceAt {
                    head: ar.prediction(),
                    targets: ar.target,
                    dhead: dy,
                    per_row: ar.point,
                    delta_at: None,
                };
                self.laplace_nll(rows, at, delta as f32, mask);
            }
            Output::Mse => self.mse_loss(rows, ar.prediction(), ar.target, dy, mask),
        }
    }

    /// Mean squared error of `n` predictions against `targets`: the mean
    /// into the loss ring, the gradient into `dpred`.
    pub fn mse_loss(
        &mut self,
        n: usize,
        pred: usize,
        targets: usize,
        dpred: usize,
        mask: LossMask,
    ) {
        self.push(
            Kernel::MseLoss,
            params([
                u(n),
                u(pred),
                u(targets),
                u(dpred),
                u(stats::LOSS),
                u(mask.b),
                u(mask.channels),
                u(mask.burn_in),
            ]),
            [1, 1, 1],
        );
    }

    /// Softmax cross-entropy of `rows` rows of 256 logits against the μ-law
    /// classes of `targets`: per-row losses into `per_row`, their mean into
    /// the loss ring, the gradient into `dlogits`.
    #[allow(clippy::too_many_arguments)]
    pub fn softmax_xent(
        &mut self,
        rows: usize,
        logits: usize,
        targets: usize,
        dlogits: usize,
        per_row: usize,
        scale: f32,
        mask: LossMask,
    ) {
        let p = params([
            u(rows),
            u(logits),
            u(targets),
            u(dlogits),
            u(per_row),
            u(stats::LOSS),
            scale.to_bits(),
            u(mask.channels),
            u(mask.b),
            u(mask.burn_in),
        ]);
        self.push(Kernel::SoftmaxXentRows, p, grid(rows, 1));
        self.push(Kernel::SoftmaxXentMean, p, [1, 1, 1]);
    }

    /// The discretized Laplace NLL of `rows` distributions (see
    /// shaders/laplace_nll.wgsl): per-distribution losses into `at.per_row`,
    /// their mean into the loss ring, the gradient into `at.dhead`. Every
    /// target's bin is `delta` wide, or `acts[at.delta_at + r]`.
    pub fn laplace_nll(&mut self, rows: usize, at: LaplaceAt, delta: f32, mask: LossMask) {
        let p = params([
            u(rows),
            u(at.head),
            u(at.targets),
            u(at.dhead),
            u(at.per_row),
            u(stats::LOSS),
            delta.to_bits(),
            at.delta_at.map(u).unwrap_or(NONE),
            u(mask.channels),
            u(mask.b),
            u(mask.burn_in),
        ]);
        self.push(Kernel::LaplaceNllRows, p, grid(rows, WG));
        self.push(Kernel::LaplaceNllMean, p, [1, 1, 1]);
    }

    /// A distribution head's point predictions (model units) into
    /// `ar.point`: a `mulaw` head's expected values, a `laplace` head's
    /// locations; nothing for `mse`, whose output is its prediction.
    pub fn expected(&mut self, cfg: &ModelConfig, ar: &Arena) {
        let rows = ar.t * ar.b * cfg.channels;
        match cfg.output {
            Output::Mulaw { scale } => self.expected_rows(rows, ar.prediction(), ar.point, scale),
            Output::Laplace { .. } => self.location_rows(rows, ar.prediction(), ar.point),
            Output::Mse => {}
        }
    }

    pub fn expected_rows(&mut self, rows: usize, logits: usize, out: usize, scale: f32) {
        self.push(
            Kernel::SoftmaxXentExpected,
            params([
                u(rows),
                u(logits),
                NONE,
                NONE,
                u(out),
                NONE,
                scale.to_bits(),
            ]),
            grid(rows, 1),
        );
    }

    /// The locations of `rows` Laplace distributions (`head[rows, 2]`) into `out`.
    pub fn location_rows(&mut self, rows: usize, head: usize, out: usize) {
        self.push(
            Kernel::LaplaceNllLocation,
            params([u(rows), u(head), NONE, NONE, u(out), NONE]),
            grid(rows, WG),
        );
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

        let kinds = lstm_kinds(cfg);
        let (mut dh_out, mut dx) = (ar.dh, ar.dx);
        for k in (0..cfg.layers).rev() {
            let (lo, re) = (&layout.lstm[k], &ar.layers[k]);
            // The sweep turns this layer's gates into da in place.
            let da = re.gates;
            let back = |step: usize, first_or_steps: usize| {
                params([
                    u(step),
                    u(b),
                    u(h),
                    kinds,
                    u(re.gates),
                    u(re.c),
                    u(dh_out),
                    u(ar.dh_rec),
                    u(ar.dc),
                    u(first_or_steps),
                    u(lo.w_hh),
                ])
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
                        self.push(
                            Kernel::LstmBackwardStep,
                            back(step, usize::from(first)),
                            grid(bh, WG),
                        );
                    }
                }
                Path::Sequence => {
                    self.push(Kernel::LstmBackwardSequence, back(0, t), [u(b), 1, 1]);
                }
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

    fn column_sum(&mut self, rows: usize, cols: usize, m: usize, out1: usize, out2: Option<usize>) {
        self.push(
            Kernel::ColumnSum,
            params([u(rows), u(cols), u(m), u(out1), out2.map(u).unwrap_or(NONE)]),
            grid(cols, WG),
        );
    }

    /// Gradient norm, clipping factor, and one Adam update of all `n` parameters.
    pub fn update(&mut self, adam: &AdamConfig, n: usize, ar: &Arena, ring: usize) {
        let norm = params([
            u(n),
            u(ar.partials),
            u(NORM_GROUPS),
            u(stats::norm(ring)),
            u(stats::LOSS),
            f(adam.clip),
        ]);
        self.push(Kernel::GradNormPartial, norm, [u(NORM_GROUPS), 1, 1]);
        self.push(Kernel::GradNormFinish, norm, [1, 1, 1]);
        // The per-step scalars come from `stats`; these do not depend on the step.
        let k = StepConstants::new(adam, 1);
        self.push(
            Kernel::Adam,
            params([
                u(n),
                k.one_minus_beta1.to_bits(),
                k.beta1_complement.to_bits(),
                k.beta2.to_bits(),
                k.one_minus_beta2.to_bits(),
                k.eps.to_bits(),
            ]),
            grid(n, WG),
        );
    }
}

/// A program with its parameters on the device, ready to submit.
pub struct Compiled {
    pub bind: wgpu::BindGroup,
    _uniforms: wgpu::Buffer,
    /// Kernel, offset of its parameters in the uniform buffer, workgroups.
    pub dispatches: Vec<(Kernel, u32, [u32; 3])>,
}

impl Compiled {
    /// Pack every dispatch's parameters at the device's uniform offset alignment.
    pub fn new(gpu: &Gpu, pipes: &Pipelines, program: &Program) -> Compiled {
        let align = gpu
            .limits
            .min_uniform_buffer_offset_alignment
            .max(PARAMS_BYTES as u32) as usize;
        let mut bytes = vec![0u8; program.dispatches.len().max(1) * align];
        let mut dispatches = Vec::with_capacity(program.dispatches.len());
        for (i, d) in program.dispatches.iter().enumerate() {
            bytes[i * align..i * align + PARAMS_BYTES as usize]
                .copy_from_slice(bytemuck::cast_slice(&d.params));
            dispatches.push((d.kernel, (i * align) as u32, d.groups));
        }
        let uniforms = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("dispatch parameters"),
            size: bytes.len() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        gpu.queue.write_buffer(&uniforms, 0, &bytes);
        let bind = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("dispatch parameters"),
            layout: &pipes.params_layout,
            entries: &[wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &uniforms,
                    offset: 0,
                    size: wgpu::BufferSize::new(PARAMS_BYTES),
                }),
            }],
        });
        Compiled {
            bind,
            _uniforms: uniforms,
            dispatches,
        }
    }

    /// Record every dispatch into one compute pass and submit it.
    pub fn submit(&self, gpu: &Gpu, pipes: &Pipelines, storage: &wgpu::BindGroup) {
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("step"),
                timestamp_writes: None,
            });
            pass.set_bind_group(0, storage, &[]);
            for &(kernel, offset, [x, y, z]) in &self.dispatches {
                pass.set_pipeline(pipes.get(kernel));
                pass.set_bind_group(1, &self.bind, &[offset]);
                pass.dispatch_workgroups(x, y, z);
            }
        }
        gpu.queue.submit([enc.finish()]);
    }
}
