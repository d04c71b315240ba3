//! The fast twin of `cpu::step::step_forward` in f32: one free-running
//! timestep of the whole model, arranged for a matrix-vector product that
//! has to finish in about ten microseconds.
//!
//! What it changes, and why:
//! - The LSTM weights are repacked once (`PackedLayer`): the four gate rows
//!   of each unit side by side, each row `[W_ih row | W_hh row]`, the two
//!   biases summed. A thread that owns a range of units then owns one
//!   contiguous block of weights, stored in the order the product reads it
//!   (`gemv_blocked`), multiplies it by the concatenated `[x | h_prev]` of
//!   every lane in one call, and finishes those units' gate math while the
//!   pre-activations are still in L1.
//! - The units are split into fixed contiguous parts run by a
//!   [`StepThreads`] team (the caller and one worker per further part):
//!   for a hidden-256 layer each core streams 544 KiB of weights, which
//!   stay in its own L2 from one step to the next where L2 holds them.
//! - Every weight vector the product loads, and each lane of `[x | h_prev]`,
//!   starts on a cache line or half of one (`cpu::aligned`): with rows of
//!   `I + H` values back to back, every other vector load straddled two
//!   lines, about a fifth of the product's time at `H = 256`.
//! - Every buffer is kept between steps: nothing is allocated once the
//!   first step of a lane count has run.
//!
//! Determinism: every output is computed by the same instructions whatever
//! the part it falls in and the number of lanes beside it (see `gemv`), so
//! the results are bit-identical for any number of threads.

use super::activation::activate;
use super::activation::{cell_slice, gate_slice};
use super::aligned::{aligned_len, AlignedVec};
use super::dense::{head_activation, Head};
use super::gemv::{gemv_on, GemvShape};
use super::gemv_blocked::{gemv_blocked, BlockedRows};
use super::isa::{dispatch, isa, Isa, Kernel};
use super::send_ptr::SendPtr;
use super::step_threads::StepThreads;
use crate::model::ModelConfig;
use std::ops::Range;
use std::sync::Mutex;

/// Below this many multiply-adds per part and lane, a part is not worth the
/// cross-core handoff it costs (about a microsecond) at every step.
const MIN_MACS_PER_PART: usize = 1 << 15;

/// One LSTM layer's weights, part by part: part `p` (units `u0..u1`) holds
/// rows of `cols = I + H` values, gate by gate (i, f, g, o), unit by unit
/// within a gate, stored for one sequential stream (`gemv_blocked`); its
/// biases are `bias[4·u0..4·u1]` in the same order. So a part's
/// pre-activations come out as four contiguous blocks, one per activation.
/// `ld` is the lanes' stride in `[x | h_prev]`: `cols` rounded up to whole
/// cache lines.
struct PackedLayer {
    cols: usize,
    ld: usize,
    parts: Vec<BlockedRows>,
    bias: Vec<f32>,
}

struct Dense {
    input: usize,
    output: usize,
    w: Vec<f32>,
    bias: Vec<f32>,
}

/// What one thread computes of an LSTM layer: units `units`, for every lane.
/// Its new `h` and `c` go straight into the caller's state, where the same
/// thread reads its `c` back at the next step: only `h` crosses cores.
struct Part {
    units: Range<usize>,
    /// Pre-activations `[4, units, B]`, then the activated gates.
    pre: Vec<f32>,
}

pub struct FastStep {
    /// What the products and the gate math are compiled for.
    isa: Isa,
    cfg: ModelConfig,
    layers: Vec<PackedLayer>,
    dense: Vec<Dense>,
    team: StepThreads,
    /// Part `p` is only ever locked by the thread running part `p`, or by
    /// the caller between rounds: the locks are never contended.
    parts: Vec<Mutex<Part>>,
    /// The current layer's `[x | h_prev]` per lane, lanes `ld` apart.
    z: AlignedVec<f32>,
    /// Output of a dense layer as `gemv` writes it, `[out, B]`.
    tmp: Vec<f32>,
    /// The head's activations: `top` `[B, H]`, every dense layer's `[B, out]`.
    head: Head<f32>,
}

impl FastStep {
    /// Pack `params` (the flat layout of `model`) for stepping on up to
    /// `threads` threads (fewer when the layers are too small to split).
    pub fn new(cfg: &ModelConfig, params: &[f32], threads: usize) -> Self {
        Self::on(isa(), cfg, params, threads)
    }

    /// As [`new`](Self::new), compiled for `isa` (the tests run every variant).
    ///
    /// # Panics
    /// If the CPU does not run `isa`.
    pub fn on(isa: Isa, cfg: &ModelConfig, params: &[f32], threads: usize) -> Self {
        assert!(isa.supported(), "FastStep: {isa:?} is not supported here");
        let layout = cfg.layout();
        assert_eq!(params.len(), layout.total, "FastStep: parameter count");
        let nh = cfg.hidden;
        let widest = layout
            .lstm
            .iter()
            .map(|off| 4 * nh * (off.input + nh))
            .max();
        let n_parts = threads
            .min(widest.unwrap_or(0) / MIN_MACS_PER_PART)
            .clamp(1, nh.max(1));
        let units = |p: usize| p * nh / n_parts..(p + 1) * nh / n_parts;
        let layers: Vec<PackedLayer> = layout
            .lstm
            .iter()
            .map(|off| {
                let (ni, cols) = (off.input, off.input + nh);
                let mut bias = Vec::with_capacity(4 * nh);
                let parts = (0..n_parts)
                    .map(|p| {
                        // The part's rows `[W_ih row | W_hh row]`, back to back.
                        let mut rows = Vec::with_capacity(4 * units(p).len() * cols);
                        for g in 0..4 {
                            for j in units(p) {
                                let r = g * nh + j;
                                rows.extend_from_slice(
                                    &params[off.w_ih + r * ni..off.w_ih + (r + 1) * ni],
                                );
                                rows.extend_from_slice(
                                    &params[off.w_hh + r * nh..off.w_hh + (r + 1) * nh],
                                );
                                bias.push(params[off.b_ih + r] + params[off.b_hh + r]);
                            }
                        }
                        BlockedRows::pack(isa, 4 * units(p).len(), cols, &rows, cols)
                    })
                    .collect();
                PackedLayer {
                    cols,
                    ld: aligned_len(cols),
                    parts,
                    bias,
                }
            })
            .collect();
        let dense = layout
            .dense
            .iter()
            .map(|d| Dense {
                input: d.input,
                output: d.output,
                w: params[d.weight..d.weight + d.output * d.input].to_vec(),
                bias: params[d.bias..d.bias + d.output].to_vec(),
            })
            .collect();
        let parts = (0..n_parts)
            .map(|p| {
                Mutex::new(Part {
                    units: units(p),
                    pre: Vec::new(),
                })
            })
            .collect();
        FastStep {
            isa,
            cfg: cfg.clone(),
            layers,
            dense,
            team: StepThreads::new(n_parts),
            parts,
            z: AlignedVec::default(),
            tmp: Vec::new(),
            head: Head::default(),
        }
    }

    /// Threads a step runs on.
    pub fn threads(&self) -> usize {
        self.team.parts()
    }

    /// One timestep of `b` lanes: input `x[B, frame·C]`, state `h, c[L, B, H]`
    /// (overwritten by the new state). Returns the output `[B, outputs]`.
    pub fn step(&mut self, b: usize, x: &[f32], h: &mut [f32], c: &mut [f32]) -> &[f32] {
        let cfg = &self.cfg;
        let (nh, bh) = (cfg.hidden, b * cfg.hidden);
        assert_eq!(x.len(), b * cfg.input_size(), "FastStep: x shape");
        assert_eq!(h.len(), cfg.layers * bh, "FastStep: h shape");
        assert_eq!(c.len(), cfg.layers * bh, "FastStep: c shape");
        for (k, layer) in self.layers.iter().enumerate() {
            let (below, rest) = h.split_at_mut(k * bh);
            let h_k = &mut rest[..bh];
            let (input, ni) = if k == 0 {
                (x, cfg.input_size())
            } else {
                (&below[(k - 1) * bh..], nh)
            };
            self.z.resize(b * layer.ld);
            for lane in 0..b {
                let z = &mut self.z[lane * layer.ld..lane * layer.ld + layer.cols];
                z[..ni].copy_from_slice(&input[lane * ni..(lane + 1) * ni]);
                z[ni..].copy_from_slice(&h_k[lane * nh..(lane + 1) * nh]);
            }
            let c_k = &mut c[k * bh..(k + 1) * bh];
            let state = State {
                h: SendPtr(h_k.as_mut_ptr()),
                c: SendPtr(c_k.as_mut_ptr()),
                hidden: nh,
                len: bh,
            };
            let (isa, z, parts) = (self.isa, &self.z[..], &self.parts);
            self.team.run(&|p| {
                let mut part = parts[p].lock().expect("free-step part");
                // SAFETY: `h_k` and `c_k` are `[B, H]` and outlive the round;
                // part `p` alone touches its units' columns of them during
                // it (the parts' units are disjoint), and `z` holds the copy
                // of `h_k` the products read.
                unsafe { lstm_part(isa, cfg, layer, p, b, z, state, &mut part) };
            });
        }

        let slope = cfg.leaky_slope as f32;
        let top = &h[(cfg.layers - 1) * bh..];
        let n_dense = self.dense.len();
        self.head
            .start(top, cfg.lstm_output_activation, slope, n_dense);
        for (j, d) in self.dense.iter().enumerate() {
            let (input, y) = self.head.layer(j);
            self.tmp.resize(d.output * b, 0.0);
            let shape = GemvShape::packed(d.output, d.input, b);
            gemv_on(self.isa, shape, &d.w, input, &mut self.tmp);
            y.resize(b * d.output, 0.0);
            for lane in 0..b {
                for o in 0..d.output {
                    y[lane * d.output + o] = self.tmp[o * b + lane] + d.bias[o];
                }
            }
            activate(head_activation(cfg, j, n_dense), slope, y);
        }
        self.head.output()
    }
}

/// A layer's state `h, c[B, H]` as the parts write it, each its own units.
#[derive(Clone, Copy)]
struct State {
    h: SendPtr<f32>,
    c: SendPtr<f32>,
    hidden: usize,
    /// `B·H`, the length of each.
    len: usize,
}

impl State {
    /// Lane `lane`'s values of `units` in `h` and in `c`.
    ///
    /// # Safety
    /// No one else touches these values meanwhile (the range is checked).
    #[allow(clippy::mut_from_ref)]
    unsafe fn lane(&self, lane: usize, units: &Range<usize>) -> (&mut [f32], &mut [f32]) {
        let at = lane * self.hidden + units.start;
        assert!(
            units.end <= self.hidden && at + units.len() <= self.len,
            "free step: state out of range"
        );
        (
            std::slice::from_raw_parts_mut(self.h.get().add(at), units.len()),
            std::slice::from_raw_parts_mut(self.c.get().add(at), units.len()),
        )
    }
}

/// One part's share of an LSTM layer: the product for its units, then
/// their gate math (the equations of `cpu::lstm`), `c` updated in place.
///
/// # Safety
/// As [`State::lane`] for every lane of `b` and `part.units`.
#[allow(clippy::too_many_arguments)]
unsafe fn lstm_part(
    isa: Isa,
    cfg: &ModelConfig,
    layer: &PackedLayer,
    p: usize,
    b: usize,
    z: &[f32],
    state: State,
    part: &mut Part,
) {
    let n = part.units.len();
    part.pre.resize(4 * n * b, 0.0);
    gemv_blocked(&layer.parts[p], z, layer.ld, b, &mut part.pre);
    let bias = &layer.bias[4 * part.units.start..4 * part.units.end];
    // SAFETY: `dispatch` checks the instruction set; the state as the
    // caller guarantees.
    dispatch(
        isa,
        GateMath {
            cfg,
            b,
            state,
            bias,
            part,
        },
    )
}

/// [`gate_math`] on the widest vectors at hand. The arithmetic is the same
/// on every instruction set (no contraction into FMAs), so are the bits.
struct GateMath<'a> {
    cfg: &'a ModelConfig,
    b: usize,
    state: State,
    bias: &'a [f32],
    part: &'a mut Part,
}

impl Kernel for GateMath<'_> {
    type Output = ();

    #[inline(always)]
    unsafe fn run(self, _: Isa) {
        gate_math(self.cfg, self.b, self.state, self.bias, self.part)
    }
}

/// `part.pre` (without bias) and the previous cell state to the part's new
/// `h` and `c`, in `state`.
///
/// # Safety
/// As [`lstm_part`].
#[inline(always)]
unsafe fn gate_math(cfg: &ModelConfig, b: usize, state: State, bias: &[f32], part: &mut Part) {
    let n = part.units.len();
    // One lane (a single take) runs the element-wise loops below as plain
    // runs, the same sums: with rows and strides of a run-time `b`, every
    // value was added and multiplied alone, half of this function's time.
    let one = b == 1;
    if one {
        for (v, &bi) in part.pre.iter_mut().zip(bias) {
            *v += bi;
        }
    } else {
        for (row, &bi) in part.pre.chunks_exact_mut(b).zip(bias) {
            row.iter_mut().for_each(|v| *v += bi);
        }
    }
    let (i, rest) = part.pre.split_at_mut(n * b);
    let (f, rest) = rest.split_at_mut(n * b);
    let (g, o) = rest.split_at_mut(n * b);
    gate_slice(cfg.gate_activation, i);
    gate_slice(cfg.gate_activation, f);
    cell_slice(cfg.cell_activation, g);
    gate_slice(cfg.gate_activation, o);
    for lane in 0..b {
        let (h, c) = state.lane(lane, &part.units);
        if one {
            for (((c, &f), &i), &g) in c.iter_mut().zip(&*f).zip(&*i).zip(&*g) {
                *c = f * *c + i * g;
            }
        } else {
            for (j, c) in c.iter_mut().enumerate() {
                let e = j * b + lane;
                *c = f[e] * *c + i[e] * g[e];
            }
        }
        h.copy_from_slice(c);
        cell_slice(cfg.cell_activation, h);
        if one {
            for (h, &o) in h.iter_mut().zip(&*o) {
                *h *= o;
            }
        } else {
            for (j, h) in h.iter_mut().enumerate() {
                *h *= o[j * b + lane];
            }
        }
    }
}
