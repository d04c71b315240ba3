//! The training step of windows without memory: every sequence is one
//! timestep long and starts from a zero state, as in the seed preset (the
//! notebook's `LSTM(100)` on windows of 3 samples) and any `--seq-len 1`
//! run without carried state.
//!
//! With `h_0 = c_0 = 0` and one timestep, the LSTM's equations (`cpu::lstm`)
//! lose their recurrence: the recurrent product multiplies zeros, the forget
//! gate multiplies a zero cell, so
//! ```text
//! a = W_ih·x + b_ih + b_hh        (rows of i, g, o only)
//! c = i ⊙ g        h = o ⊙ act(c)
//! ```
//! and backward
//! ```text
//! dc = dh ⊙ o ⊙ act'(c)      da_i = dc ⊙ g ⊙ σ'(i)      da_g = dc ⊙ i ⊙ act'(g)
//! da_o = dh ⊙ act(c) ⊙ σ'(o)  da_f = 0      ∂L/∂W_hh = 0
//! ```
//! The whole step is then a chain of small dense products. They run in
//! the lanes-last layout of `cpu::lanes` (`[features, BP]`, a lane per batch
//! row), which needs no packing and no thread-pool round trip: at batch 100
//! the whole forward and backward pass is a few million multiply-adds, less
//! than the fixed costs of the general path's products.
//!
//! The general path (`cpu::network`) computes the same values; they meet in
//! `tests/window_step.rs`. This step writes every gradient except those of
//! `W_hh`, which the caller keeps at zero.
//!
//! Buffers, all lanes-last with `BP = padded_for(isa, B)` lanes: the input `x[I_0]`;
//! per layer the gates `[4H]` (`i`, `f` unused, `g`, `o`, activated), `c`,
//! `act(c)` and `h` `[H]`; the top layer's output after its activation
//! `[H]`; every dense layer's output after its activation. Lanes past `B`
//! hold what the network makes of a zero input in forward and zeros in
//! backward (the loss gradient is zero there), so they add nothing to a
//! gradient.

use super::activation::{
    activate, activate_backward, cell_grad, cell_slice, gate_grad, gate_slice,
};
use super::isa::{dispatch, isa, Isa, Kernel};
use super::lanes::LANES;
use super::lanes::{dot_lanes, from_lanes, mul_lanes, padded_for, sum_lanes, to_lanes, Strided};
use super::step_threads::StepThreads;
use crate::model::{Activation, LstmOffsets, ModelConfig, ParamLayout};
use std::sync::{Mutex, PoisonError};

/// Whether a training step of `seq_len` over lanes that carry (`carry`)
/// is one this step computes.
pub fn applies(seq_len: usize, carry: &[bool]) -> bool {
    seq_len == 1 && carry.iter().all(|&c| !c)
}

pub struct WindowStep {
    /// What the element-wise work and the products are compiled for.
    isa: Isa,
    b: usize,
    bp: usize,
    x: Vec<f32>,
    layers: Vec<Layer>,
    top: Vec<f32>,
    dense: Vec<Vec<f32>>,
    pred: Vec<f32>,
    // Backward scratch.
    dy: Vec<f32>,
    dx: Vec<f32>,
    da: Vec<f32>,
}

#[derive(Default)]
struct Layer {
    gates: Vec<f32>,
    c: Vec<f32>,
    act_c: Vec<f32>,
    h: Vec<f32>,
}

fn fill_len(v: &mut Vec<f32>, len: usize) {
    v.resize(len, 0.0);
}

impl Default for WindowStep {
    fn default() -> Self {
        WindowStep::on(isa())
    }
}

impl WindowStep {
    /// A step compiled for `isa` (the default: the best this CPU runs).
    ///
    /// # Panics
    /// If the CPU does not run `isa`.
    pub fn on(isa: Isa) -> Self {
        assert!(
            isa.supported(),
            "window step: {isa:?} is not supported here"
        );
        WindowStep {
            isa,
            b: 0,
            bp: 0,
            x: Vec::new(),
            layers: Vec::new(),
            top: Vec::new(),
            dense: Vec::new(),
            pred: Vec::new(),
            dy: Vec::new(),
            dx: Vec::new(),
            da: Vec::new(),
        }
    }

    /// The forward pass of `B = x.len() / I_0` windows `x[B, I_0]`; returns
    /// the predictions `[B, outputs]`.
    pub fn forward(
        &mut self,
        cfg: &ModelConfig,
        layout: &ParamLayout,
        params: &[f32],
        x: &[f32],
    ) -> &[f32] {
        // SAFETY: safe code inside; `dispatch` checks the instruction set.
        unsafe {
            dispatch(
                self.isa,
                Forward {
                    step: self,
                    cfg,
                    layout,
                    params,
                    x,
                },
            )
        }
        &self.pred
    }

    /// The backward pass from `dpred = ∂L/∂prediction` (`[B, outputs]`) of
    /// the last [`forward`](Self::forward): overwrites every gradient in
    /// `grads` except `W_hh`'s.
    pub fn backward(
        &mut self,
        cfg: &ModelConfig,
        layout: &ParamLayout,
        params: &[f32],
        dpred: &[f32],
        grads: &mut [f32],
    ) {
        // Without it the first read of the forward's state would be an
        // index out of bounds deep in the head, which says nothing.
        assert!(
            self.b > 0 && dpred.len() == self.b * cfg.outputs(),
            "WindowStep::backward: dpred holds {} values, the last forward's batch {} × {} outputs",
            dpred.len(),
            self.b,
            cfg.outputs()
        );
        // SAFETY: as in `forward`.
        unsafe {
            dispatch(
                self.isa,
                Backward {
                    step: self,
                    cfg,
                    layout,
                    params,
                    dpred,
                    grads,
                },
            )
        }
    }

    // The element-wise work (gates, activations, layout changes) is a good
    // part of this step; compiled for the instruction set at hand (see
    // `cpu::isa`) it runs on whole vector registers.
    #[inline(always)]
    fn forward_impl(&mut self, cfg: &ModelConfig, layout: &ParamLayout, params: &[f32], x: &[f32]) {
        let i0 = cfg.input_size();
        let b = x.len() / i0;
        let bp = padded_for(self.isa, b);
        (self.b, self.bp) = (b, bp);
        fill_len(&mut self.x, i0 * bp);
        to_lanes(x, b, i0, bp, &mut self.x);

        self.layers.resize_with(cfg.layers, Layer::default);
        for (k, off) in layout.lstm.iter().enumerate() {
            let (below, rest) = self.layers.split_at_mut(k);
            let input = if k == 0 { &self.x } else { &below[k - 1].h };
            rest[0].forward(self.isa, cfg, off, params, input, bp);
        }

        let slope = cfg.leaky_slope as f32;
        let top = &self.layers[cfg.layers - 1].h;
        self.top.clear();
        self.top.extend_from_slice(top);
        activate(cfg.lstm_output_activation, slope, &mut self.top);

        let n_dense = layout.dense.len();
        self.dense.resize_with(n_dense, Vec::new);
        for (j, off) in layout.dense.iter().enumerate() {
            let (before, rest) = self.dense.split_at_mut(j);
            let input = if j == 0 { &self.top } else { &before[j - 1] };
            let y = &mut rest[0];
            fill_len(y, off.output * bp);
            let bias = &params[off.bias..off.bias + off.output];
            for (row, &bv) in y.chunks_exact_mut(bp).zip(bias) {
                row.fill(bv);
            }
            let w = &params[off.weight..off.weight + off.output * off.input];
            mul_lanes(
                self.isa,
                Strided::rows(w, off.input),
                0..off.output,
                off.input,
                input,
                bp,
                y,
                true,
            );
            activate(head_activation(cfg, j, n_dense), slope, y);
        }

        let outputs = cfg.outputs();
        fill_len(&mut self.pred, b * outputs);
        from_lanes(&self.dense[n_dense - 1], b, outputs, bp, &mut self.pred);
    }

    #[inline(always)]
    fn backward_impl(
        &mut self,
        cfg: &ModelConfig,
        layout: &ParamLayout,
        params: &[f32],
        dpred: &[f32],
        grads: &mut [f32],
    ) {
        let (b, bp) = (self.b, self.bp);
        let slope = cfg.leaky_slope as f32;
        let n_dense = layout.dense.len();
        fill_len(&mut self.dy, cfg.outputs() * bp);
        to_lanes(dpred, b, cfg.outputs(), bp, &mut self.dy);
        for j in (0..n_dense).rev() {
            let off = &layout.dense[j];
            let (ni, no) = (off.input, off.output);
            activate_backward(
                head_activation(cfg, j, n_dense),
                slope,
                &self.dense[j],
                &mut self.dy,
            );
            let input = if j == 0 {
                &self.top
            } else {
                &self.dense[j - 1]
            };
            dot_lanes(
                self.isa,
                &self.dy,
                0..no,
                input,
                ni,
                bp,
                &mut grads[off.weight..],
                ni,
                false,
            );
            sum_lanes(&self.dy, 0..no, bp, &mut grads[off.bias..off.bias + no]);
            let w = &params[off.weight..off.weight + no * ni];
            fill_len(&mut self.dx, ni * bp);
            mul_lanes(
                self.isa,
                Strided::transposed(w, ni),
                0..ni,
                no,
                &self.dy,
                bp,
                &mut self.dx,
                false,
            );
            std::mem::swap(&mut self.dy, &mut self.dx);
        }
        // self.dy is now ∂L/∂(top layer's output after its activation).
        activate_backward(cfg.lstm_output_activation, slope, &self.top, &mut self.dy);

        for k in (0..cfg.layers).rev() {
            let input = if k == 0 {
                &self.x
            } else {
                &self.layers[k - 1].h
            };
            let dx = (k > 0).then_some(&mut self.dx);
            self.layers[k].backward(
                self.isa,
                cfg,
                &layout.lstm[k],
                params,
                input,
                bp,
                &self.dy,
                &mut self.da,
                grads,
                dx,
            );
            if k > 0 {
                std::mem::swap(&mut self.dy, &mut self.dx);
            }
        }
    }

    /// Windows of the last forward pass.
    pub fn batch(&self) -> usize {
        self.b
    }

    /// Hold no batch: [`batch`](Self::batch) is 0, the final state empty.
    fn forget(&mut self) {
        (self.b, self.bp) = (0, 0);
    }

    /// The predictions of the last forward pass, `[B, outputs]`.
    pub fn prediction(&self) -> &[f32] {
        &self.pred
    }

    /// The state after the last forward pass, `[L, B, H]` each.
    pub fn final_state(&self, cfg: &ModelConfig, h: &mut [f32], c: &mut [f32]) {
        self.final_state_rows(cfg, self.b, 0, h, c);
    }

    /// The state after the last forward pass as rows `row0..row0+B` of
    /// `[L, total, H]` buffers.
    fn final_state_rows(
        &self,
        cfg: &ModelConfig,
        total: usize,
        row0: usize,
        h: &mut [f32],
        c: &mut [f32],
    ) {
        let hn = cfg.hidden;
        for (k, layer) in self.layers.iter().enumerate() {
            let r = (k * total + row0) * hn..(k * total + row0 + self.b) * hn;
            from_lanes(&layer.h, self.b, hn, self.bp, &mut h[r.clone()]);
            from_lanes(&layer.c, self.b, hn, self.bp, &mut c[r]);
        }
    }
}

/// The activation after dense layer `j` of `n`.
fn head_activation(cfg: &ModelConfig, j: usize, n: usize) -> Activation {
    if j + 1 == n {
        cfg.output_activation
    } else {
        Activation::LeakyRelu
    }
}

impl Layer {
    #[inline(always)]
    fn forward(
        &mut self,
        isa: Isa,
        cfg: &ModelConfig,
        off: &LstmOffsets,
        params: &[f32],
        x: &[f32],
        bp: usize,
    ) {
        let (hn, ni) = (cfg.hidden, off.input);
        let n = hn * bp;
        fill_len(&mut self.gates, 4 * n);
        for v in [&mut self.c, &mut self.act_c, &mut self.h] {
            fill_len(v, n);
        }
        let (b_ih, b_hh) = (&params[off.b_ih..], &params[off.b_hh..]);
        for r in (0..hn).chain(2 * hn..4 * hn) {
            self.gates[r * bp..(r + 1) * bp].fill(b_ih[r] + b_hh[r]);
        }
        let w = Strided::rows(&params[off.w_ih..off.w_ih + 4 * hn * ni], ni);
        mul_lanes(isa, w, 0..hn, ni, x, bp, &mut self.gates, true);
        mul_lanes(isa, w, 2 * hn..4 * hn, ni, x, bp, &mut self.gates, true);

        let (gi, rest) = self.gates.split_at_mut(n);
        let (gg, go) = rest[n..].split_at_mut(n);
        gate_slice(cfg.gate_activation, gi);
        cell_slice(cfg.cell_activation, gg);
        gate_slice(cfg.gate_activation, go);
        for ((c, &i), &g) in self.c.iter_mut().zip(&*gi).zip(&*gg) {
            *c = i * g;
        }
        self.act_c.copy_from_slice(&self.c);
        cell_slice(cfg.cell_activation, &mut self.act_c);
        for ((h, &o), &ac) in self.h.iter_mut().zip(&*go).zip(&self.act_c) {
            *h = o * ac;
        }
    }

    /// Gradients of this layer's `W_ih` and biases from `dh = ∂L/∂h`
    /// (`[H, BP]`); `∂L/∂x` into `dx` (`[I, BP]`) when asked.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn backward(
        &self,
        isa: Isa,
        cfg: &ModelConfig,
        off: &LstmOffsets,
        params: &[f32],
        x: &[f32],
        bp: usize,
        dh: &[f32],
        da: &mut Vec<f32>,
        grads: &mut [f32],
        dx: Option<&mut Vec<f32>>,
    ) {
        let (hn, ni) = (cfg.hidden, off.input);
        let n = hn * bp;
        let (cell, gate) = (cfg.cell_activation, cfg.gate_activation);
        fill_len(da, 4 * n);
        let (gi, gg, go) = (
            &self.gates[..n],
            &self.gates[2 * n..3 * n],
            &self.gates[3 * n..],
        );
        let (da_i, rest) = da.split_at_mut(n);
        let (da_g, da_o) = rest[n..].split_at_mut(n);
        // One loop per pair of activations, so that each compiles to
        // straight vector code without a branch on the kind per element.
        macro_rules! gate_grads {
            ($cell:expr, $gate:expr) => {
                for (((((da_i, da_g), da_o), &dh), (&i, &g)), (&o, &ac)) in da_i
                    .iter_mut()
                    .zip(da_g.iter_mut())
                    .zip(da_o.iter_mut())
                    .zip(dh)
                    .zip(gi.iter().zip(gg))
                    .zip(go.iter().zip(&self.act_c))
                {
                    let dc = dh * o * cell_grad($cell, ac);
                    *da_i = dc * g * gate_grad($gate, i);
                    *da_g = dc * i * cell_grad($cell, g);
                    *da_o = dh * ac * gate_grad($gate, o);
                }
            };
        }
        use crate::model::{CellActivation as C, GateActivation as G};
        match (cell, gate) {
            (C::Tanh, G::Sigmoid) => gate_grads!(C::Tanh, G::Sigmoid),
            (C::Tanh, G::HardSigmoid) => gate_grads!(C::Tanh, G::HardSigmoid),
            (C::Linear, G::Sigmoid) => gate_grads!(C::Linear, G::Sigmoid),
            (C::Linear, G::HardSigmoid) => gate_grads!(C::Linear, G::HardSigmoid),
        }

        let dw = &mut grads[off.w_ih..off.w_ih + 4 * hn * ni];
        dot_lanes(isa, da, 0..hn, x, ni, bp, dw, ni, false);
        dw[hn * ni..2 * hn * ni].fill(0.0);
        dot_lanes(isa, da, 2 * hn..4 * hn, x, ni, bp, dw, ni, false);
        let db = &mut grads[off.b_ih..off.b_ih + 4 * hn];
        sum_lanes(da, 0..hn, bp, db);
        db[hn..2 * hn].fill(0.0);
        sum_lanes(da, 2 * hn..4 * hn, bp, db);
        // Both biases enter the gates as one sum: the same gradient.
        grads.copy_within(off.b_ih..off.b_ih + 4 * hn, off.b_hh);

        if let Some(dx) = dx {
            fill_len(dx, ni * bp);
            let w = &params[off.w_ih..off.w_ih + 4 * hn * ni];
            mul_lanes(
                isa,
                Strided::transposed(w, ni),
                0..ni,
                hn,
                &da[..n],
                bp,
                dx,
                false,
            );
            let w_go = &w[2 * hn * ni..];
            mul_lanes(
                isa,
                Strided::transposed(w_go, ni),
                0..ni,
                2 * hn,
                &da[2 * n..],
                bp,
                dx,
                true,
            );
        }
    }
}

/// [`WindowStep::forward`]'s body as a [`Kernel`].
struct Forward<'a> {
    step: &'a mut WindowStep,
    cfg: &'a ModelConfig,
    layout: &'a ParamLayout,
    params: &'a [f32],
    x: &'a [f32],
}

impl Kernel for Forward<'_> {
    type Output = ();

    #[inline(always)]
    unsafe fn run(self, _: Isa) {
        self.step
            .forward_impl(self.cfg, self.layout, self.params, self.x)
    }
}

/// [`WindowStep::backward`]'s body as a [`Kernel`].
struct Backward<'a> {
    step: &'a mut WindowStep,
    cfg: &'a ModelConfig,
    layout: &'a ParamLayout,
    params: &'a [f32],
    dpred: &'a [f32],
    grads: &'a mut [f32],
}

impl Kernel for Backward<'_> {
    type Output = ();

    #[inline(always)]
    unsafe fn run(self, _: Isa) {
        self.step
            .backward_impl(self.cfg, self.layout, self.params, self.dpred, self.grads)
    }
}

/// The window step on both cores: the batch cut into two fixed parts, each
/// run by its own [`WindowStep`] on its own thread, the weight gradients
/// added at the end. The products of one part are too small to share out
/// (a few microseconds each), so the batch is split instead: one round
/// trip between the threads for the forward pass and one for the
/// backward, instead of one per product.
///
/// The cut depends on the batch only, never on the number of threads (with
/// one thread the caller runs both parts), so the results are the same bits
/// on any machine with the same instruction set.
pub struct TwoPartStep {
    parts: [Mutex<WindowStep>; 2],
    /// The second part's gradients (the first writes the caller's).
    grads: Mutex<Vec<f32>>,
    team: StepThreads,
    /// Rows of the first part.
    split: usize,
    pred: Vec<f32>,
}

impl TwoPartStep {
    /// A team of `threads` (1 or 2).
    pub fn new(threads: usize) -> Self {
        TwoPartStep {
            parts: Default::default(),
            grads: Mutex::default(),
            team: StepThreads::new(threads.clamp(1, 2)),
            split: 0,
            pred: Vec::new(),
        }
    }

    /// Where a batch of `b` is cut: at a whole number of vectors near the
    /// middle, or not at all below two vectors' worth per part.
    pub fn split(b: usize) -> usize {
        let half = (b / 2) / LANES * LANES;
        if half >= 2 * LANES {
            half
        } else {
            b
        }
    }

    /// `job(0)` and `job(1)` on the step's threads (one after the other
    /// when it has one): for work between steps too small for the pool,
    /// such as the optimizer's.
    pub fn run_halves(&self, job: &(dyn Fn(usize) + Sync)) {
        run_parts(&self.team, job)
    }

    /// As [`WindowStep::forward`].
    pub fn forward(
        &mut self,
        cfg: &ModelConfig,
        layout: &ParamLayout,
        params: &[f32],
        x: &[f32],
    ) -> &[f32] {
        let i0 = cfg.input_size();
        let b = x.len() / i0;
        self.split = Self::split(b);
        let cut = self.split * i0;
        let parts = &self.parts;
        run_parts(&self.team, &|part| {
            let x = if part == 0 { &x[..cut] } else { &x[cut..] };
            let mut step = lock(&parts[part]);
            if x.is_empty() {
                // A batch too small to cut: this part holds nothing.
                step.forget();
            } else {
                step.forward(cfg, layout, params, x);
            }
        });
        self.pred.clear();
        for part in &mut self.parts {
            let part = part.get_mut().unwrap_or_else(PoisonError::into_inner);
            if part.batch() > 0 {
                self.pred.extend_from_slice(part.prediction());
            }
        }
        &self.pred
    }

    /// As [`WindowStep::backward`]; `written` are the ranges of `grads` the
    /// step writes (every tensor but the `W_hh`), where the parts' sums go.
    pub fn backward(
        &mut self,
        cfg: &ModelConfig,
        layout: &ParamLayout,
        params: &[f32],
        dpred: &[f32],
        grads: &mut [f32],
        written: &[std::ops::Range<usize>],
    ) {
        let cut = self.split * cfg.outputs();
        let two = cut < dpred.len();
        let first = Mutex::new(grads);
        let (parts, second) = (&self.parts, &self.grads);
        run_parts(&self.team, &|part| {
            if part == 0 {
                let mut g = lock(&first);
                lock(&parts[0]).backward(cfg, layout, params, &dpred[..cut], &mut g);
            } else if two {
                let mut g = lock(second);
                g.resize(layout.total, 0.0);
                lock(&parts[1]).backward(cfg, layout, params, &dpred[cut..], &mut g);
            }
        });
        let grads = first.into_inner().unwrap_or_else(PoisonError::into_inner);
        if two {
            let second = self.grads.get_mut().unwrap_or_else(PoisonError::into_inner);
            for r in written {
                for (g, &s) in grads[r.clone()].iter_mut().zip(&second[r.clone()]) {
                    *g += s;
                }
            }
        }
    }

    /// Windows of the last forward pass.
    pub fn batch(&self) -> usize {
        self.parts.iter().map(|p| lock(p).batch()).sum()
    }

    /// The predictions of the last forward pass, `[B, outputs]`.
    pub fn prediction(&self) -> &[f32] {
        &self.pred
    }

    /// As [`WindowStep::final_state`].
    pub fn final_state(&self, cfg: &ModelConfig, h: &mut [f32], c: &mut [f32]) {
        let total = self.batch();
        let mut row0 = 0;
        for part in &self.parts {
            let part = lock(part);
            part.final_state_rows(cfg, total, row0, h, c);
            row0 += part.batch();
        }
    }
}

/// `job(0)` and `job(1)`, on the team's two threads or one after the other.
fn run_parts(team: &StepThreads, job: &(dyn Fn(usize) + Sync)) {
    if team.parts() == 2 {
        team.run(job);
    } else {
        job(0);
        job(1);
    }
}

/// A part's lock: held by one thread at a time by construction, and a
/// panic in a part is raised again by the team, so poisoning says nothing.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
