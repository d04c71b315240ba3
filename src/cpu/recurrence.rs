//! The LSTM's time loops: what remains sequential once the input projection
//! and the weight gradients are single large products (see `cpu::lstm`).
//!
//! Each timestep is one recurrent product `[B, H]·[H, 4H]` (backward
//! `[B, 4H]·[4H, H]`) and the gate math on its result. Three things make
//! this fast:
//! - `W_hh` is packed into tile panels once per pass, not once per timestep:
//!   1 MB at hidden 256, so half of it stays in each core's L2 when the two
//!   cores work on fixed halves of the units.
//! - The panels are cut by hidden units, with a unit's four gates side by side
//!   in one panel, so the task that computes a unit's pre-activations applies
//!   its gate math at once, from the tile still in L1: one round of a
//!   spinning thread team per timestep (`PanelRunner`), no pass over the
//!   gates in between.
//! - The task also writes its outputs (`h_t` forward, `∂L/∂a_t` backward) in
//!   packed form, ready to be the next timestep's A operand.
//! - The task's code is compiled for AVX-512 and AVX2 as well as the
//!   baseline, and picked at run time like the tile: the gate math is most of
//!   the loop's work outside the tile.
//! - A layer whose input is a few values per row (the first layer's one
//!   sample) takes it here, in the gate math (`FoldedInput`), instead of
//!   through a `[T, B, 4H]` input projection written and read back.
//!
//! Every value is computed by the same operations whichever task computes it,
//! so results do not depend on the number of threads.

use super::activation::{cell_grad, cell_slice, gate_grad, gate_slice};
use super::aligned::AlignedVec;
use super::isa::{dispatch, isa, Isa, Kernel};
use super::lstm_shape::LstmShape;
use super::scalar::CpuReal;
use super::send_ptr::SendPtr;
use super::step_threads::StepThreads;
use super::tile::{Start, MR, NR};
use super::tile_group::{tiles_over, GROUP};
use rayon::prelude::*;

/// Units per forward panel: their four gates fill the `NR` columns.
const UNITS_FWD: usize = NR / 4;
/// Below this many multiply-adds a timestep runs on the calling thread.
const PARALLEL_MIN_MACS: usize = 1 << 17;
/// Runs a timestep's panels. A time loop is hundreds of rounds of tens of
/// microseconds each, so the rounds go to a fixed spinning team
/// (`cpu::step_threads`) rather than rayon, whose idle workers go back to
/// the kernel between rounds; and every part takes the same contiguous
/// range of panels at every timestep, so each core keeps its share of the
/// packed `W_hh` in its own cache. A product too small to share, or a
/// timestep without one (from a zero state: only gate math), runs on the
/// calling thread.
struct PanelRunner {
    team: Option<StepThreads>,
    panels: usize,
}

impl PanelRunner {
    fn new(panels: usize, macs_per_panel: usize) -> Self {
        let parts = if panels * macs_per_panel < PARALLEL_MIN_MACS {
            1
        } else {
            rayon::current_num_threads().min(panels)
        };
        PanelRunner {
            team: (parts > 1).then(|| StepThreads::new(parts)),
            panels,
        }
    }

    fn run(&self, recur: bool, f: impl Fn(usize) + Sync) {
        match &self.team {
            Some(team) if recur => {
                let parts = team.parts();
                team.run(&|part| {
                    (part * self.panels / parts..(part + 1) * self.panels / parts).for_each(&f)
                })
            }
            _ => (0..self.panels).for_each(f),
        }
    }
}

/// `W_hhᵀ` (`[H, 4H]` as B of the forward product) in panels of
/// `UNITS_FWD` units × 4 gates: column `l` of panel `q` is gate `l / UNITS_FWD`
/// of unit `q·UNITS_FWD + l % UNITS_FWD` (zero past the last unit).
pub fn pack_forward_weights<T: CpuReal>(w_hh: &[T], h: usize, out: &mut AlignedVec<T>) {
    let panels = h.div_ceil(UNITS_FWD);
    out.resize(panels * h * NR);
    out.par_chunks_mut(h * NR)
        .enumerate()
        .for_each(|(q, panel)| {
            for (p, row) in panel.chunks_exact_mut(NR).enumerate() {
                for (l, v) in row.iter_mut().enumerate() {
                    let (g, j) = (l / UNITS_FWD, q * UNITS_FWD + l % UNITS_FWD);
                    *v = if j < h {
                        w_hh[(g * h + j) * h + p]
                    } else {
                        T::zero()
                    };
                }
            }
        });
}

/// `W_hh` (`[4H, H]` as B of the backward product) in panels of `NR` units.
pub fn pack_backward_weights<T: CpuReal>(w_hh: &[T], h: usize, out: &mut AlignedVec<T>) {
    let panels = h.div_ceil(NR);
    out.resize(panels * 4 * h * NR);
    out.par_chunks_mut(4 * h * NR)
        .enumerate()
        .for_each(|(q, panel)| {
            for (p, row) in panel.chunks_exact_mut(NR).enumerate() {
                for (l, v) in row.iter_mut().enumerate() {
                    let j = q * NR + l;
                    *v = if j < h { w_hh[p * h + j] } else { T::zero() };
                }
            }
        });
}

/// A `[B, cols]` matrix as `⌈B/MR⌉` A panels (`x[r][col]` at `[rb][col][r]`).
pub fn pack_rows<T: CpuReal>(x: &[T], b: usize, cols: usize, out: &mut [T]) {
    for rb in 0..b.div_ceil(MR) {
        for col in 0..cols {
            for r in 0..MR {
                let row = rb * MR + r;
                out[(rb * cols + col) * MR + r] = if row < b {
                    x[row * cols + col]
                } else {
                    T::zero()
                };
            }
        }
    }
}

/// Length of the packed form of a `[B, cols]` matrix.
pub fn packed_rows_len(b: usize, cols: usize) -> usize {
    b.div_ceil(MR) * MR * cols
}

/// Forward buffers of one layer, `[T, B, ·]` as in `LstmCache`.
pub struct ForwardBuffers<'a, T> {
    /// In: `x·W_ihᵀ + b` per timestep, unless `input` is given; out: the
    /// activated gates.
    pub gates: &'a mut [T],
    /// A narrow input applied here rather than by a product beforehand.
    pub input: Option<FoldedInput<'a, T>>,
    /// `[T+1, B, H]`, block 0 the initial state, filled by the loop.
    pub c: &'a mut [T],
    pub h: &'a mut [T],
    pub act_c: &'a mut [T],
    /// Packed `h_{t-1}` and `h_t`, `packed_rows_len(B, H)` each; the first holds `h_0`.
    pub h_packed: [&'a mut [T]; 2],
    /// Whether the activated gates and `act_c` are stored (for backward).
    pub keep: bool,
}

/// A layer input of a few values per row (`I ≤ FOLD_MAX_INPUTS`, as the
/// first layer's one sample), applied in the gate math: its input
/// projection would be a product of rank `I` whose `[T, B, 4H]` result is
/// all memory traffic, written once and read back.
pub struct FoldedInput<'a, T> {
    /// `[T, B, I]`.
    pub x: &'a [T],
    /// `W_ihᵀ` and `b_ih + b_hh` in the forward panels' column order (see
    /// [`fold_input_weights`]), so that a panel's are one contiguous run.
    pub w: &'a [T],
    pub bias: &'a [T],
}

/// `W_ih` (`[4H, I]`) and the two biases (`[4H]`) for [`FoldedInput`]: `w` is
/// `I` rows of `⌈H/UNITS_FWD⌉·NR` values and `bias` one row, column `l` of
/// panel `q` being gate `l / UNITS_FWD` of unit `q·UNITS_FWD + l % UNITS_FWD`
/// as in [`pack_forward_weights`] (zero past the last unit).
pub fn fold_input_weights<T: CpuReal>(
    w_ih: &[T],
    b_ih: &[T],
    b_hh: &[T],
    h: usize,
    i: usize,
) -> (Vec<T>, Vec<T>) {
    let cols = h.div_ceil(UNITS_FWD) * NR;
    let unit_row = |col: usize| {
        let (q, l) = (col / NR, col % NR);
        let (g, j) = (l / UNITS_FWD, q * UNITS_FWD + l % UNITS_FWD);
        (j < h).then_some(g * h + j)
    };
    let w = (0..i * cols)
        .map(|k| unit_row(k % cols).map_or(T::zero(), |row| w_ih[row * i + k / cols]))
        .collect();
    let bias = (0..cols)
        .map(|col| unit_row(col).map_or(T::zero(), |row| b_ih[row] + b_hh[row]))
        .collect();
    (w, bias)
}

/// The forward time loop. `w` is [`pack_forward_weights`]; `skip_first`:
/// `h_0` is zero, so the first recurrent product is skipped.
pub fn forward<T: CpuReal>(s: &LstmShape, w: &[T], skip_first: bool, buf: ForwardBuffers<'_, T>) {
    let row_panels = s.b.div_ceil(MR);
    let panels = s.h.div_ceil(UNITS_FWD);
    let isa = isa();
    let [mut hp_prev, mut hp_next] = buf.h_packed;
    let any_recur = s.t > 1 || !skip_first;
    let runner = PanelRunner::new(panels, usize::from(any_recur) * row_panels * MR * s.h * NR);
    for t in 0..s.t {
        let step = ForwardStep {
            s,
            w,
            t,
            recur: !(t == 0 && skip_first),
            hp_in: hp_prev,
            hp_out: SendPtr(hp_next.as_mut_ptr()),
            gates: SendPtr(buf.gates.as_mut_ptr()),
            input: buf.input.as_ref(),
            c: SendPtr(buf.c.as_mut_ptr()),
            h: SendPtr(buf.h.as_mut_ptr()),
            act_c: SendPtr(buf.act_c.as_mut_ptr()),
            keep: buf.keep,
        };
        // SAFETY: panels are disjoint sets of units (see `ForwardStep::panel`).
        runner.run(step.recur, |q| unsafe { step.run(isa, q) });
        std::mem::swap(&mut hp_prev, &mut hp_next);
    }
}

/// One timestep of the forward loop, shared by the tasks that run its panels.
struct ForwardStep<'a, T> {
    s: &'a LstmShape,
    w: &'a [T],
    t: usize,
    /// Whether there is a recurrent product (not from a zero `h_0`).
    recur: bool,
    hp_in: &'a [T],
    hp_out: SendPtr<T>,
    gates: SendPtr<T>,
    input: Option<&'a FoldedInput<'a, T>>,
    c: SendPtr<T>,
    h: SendPtr<T>,
    act_c: SendPtr<T>,
    keep: bool,
}

impl<T: CpuReal> ForwardStep<'_, T> {
    /// [`Self::panel`] compiled for the widest vectors at hand: the gate
    /// math is most of the loop's work outside the tile, and the crate's
    /// baseline target has only 4-wide SSE2. Rust never fuses a multiply
    /// and an add on its own, so every variant computes the same bits.
    ///
    /// # Safety
    /// As [`Self::panel`].
    unsafe fn run(&self, isa: Isa, q: usize) {
        dispatch(isa, Panel(self, q))
    }

    /// Panel `q`'s units for every row: recurrent product, gate math, state.
    ///
    /// # Safety
    /// The buffers must have the shapes of [`ForwardBuffers`] and no other
    /// task may touch units `q·UNITS_FWD..(q+1)·UNITS_FWD` of this timestep.
    #[inline(always)]
    unsafe fn panel(&self, q: usize) {
        let (s, t) = (self.s, self.t);
        let h = s.h;
        let (j0, units) = (q * UNITS_FWD, UNITS_FWD.min(h - q * UNITS_FWD));
        if self.input.is_none() && t + 1 < s.t {
            // The next timestep's input projection of this panel: four runs
            // of a few values per row, a row of 4H apart, written by a
            // product over all timesteps long ago: too scattered for the
            // hardware to fetch ahead, so the gate math waited on them (the
            // costliest instruction of its profile at seq-infer). Ask for
            // them while this step's products run (a hint only; it changes
            // no value).
            let len = units * std::mem::size_of::<T>();
            for b in 0..s.b {
                let row4 = ((t + 1) * s.b + b) * 4 * h + j0;
                for k in 0..4 {
                    prefetch_raw(self.gates.get().add(row4 + k * h), len);
                }
            }
        }
        let mut tiles = [[T::zero(); MR * NR]; GROUP];
        let row_blocks = s.b.div_ceil(MR);
        for g0 in (0..row_blocks).step_by(GROUP) {
            let group = &mut tiles[..GROUP.min(row_blocks - g0)];
            if self.recur {
                // Panel rb of hp_in holds h·MR values, panel q of w h·NR.
                tiles_over(
                    h,
                    self.hp_in[g0 * h * MR..].as_ptr(),
                    h * MR,
                    self.w[q * h * NR..].as_ptr(),
                    group,
                    Start::Zero,
                );
            }
            for (i, tile) in group.iter().enumerate() {
                let rb = g0 + i;
                let rows = MR.min(s.b - rb * MR);
                // Rows two at a time, the last alone when their number is odd.
                // A full panel's loops have a constant length and compile
                // to straight vector code; only the last panel may be short.
                for r in (0..rows).step_by(2) {
                    match (units == UNITS_FWD, r + 1 < rows) {
                        (true, true) => self.rows::<true, 2>(tile, rb, r, j0, units),
                        (true, false) => self.rows::<true, 1>(tile, rb, r, j0, units),
                        (false, true) => self.rows::<false, 2>(tile, rb, r, j0, units),
                        (false, false) => self.rows::<false, 1>(tile, rb, r, j0, units),
                    }
                }
            }
        }
    }

    /// Units `j0..j0+units` of the `R` (1 or 2) batch rows from `rb·MR + r0`,
    /// given their tile (`tile[r·NR + g·UNITS_FWD + u]`). `FULL`: `units ==
    /// UNITS_FWD`, as a constant (a run-time test alone is undone by the
    /// optimizer, which sees two identical calls).
    ///
    /// The rows' pre-activations sit gate by gate, the rows of a gate side
    /// by side (gate `g` of row `k` at `v[(g·R + k)·UNITS_FWD..]`), so each
    /// activation runs over `R·UNITS_FWD` values at once: two rows' chains
    /// of exponentials and divisions interleave, and fill a 16-lane vector.
    /// Every value is computed by the same operations as with one row.
    ///
    /// # Safety
    /// As [`Self::panel`]; rows `r0..r0+R` are inside the batch.
    #[inline(always)]
    unsafe fn rows<const FULL: bool, const R: usize>(
        &self,
        tile: &[T; MR * NR],
        rb: usize,
        r0: usize,
        j0: usize,
        units: usize,
    ) {
        const U: usize = UNITS_FWD;
        let units = if FULL { U } else { units };
        let (s, t) = (self.s, self.t);
        let (h, h4, bh) = (s.h, 4 * s.h, s.b * s.h);
        let n = R * U;
        let mut v = [T::zero(); 2 * NR];
        let mut c_prev = [T::zero(); 2 * U];
        for k in 0..R {
            let b = rb * MR + r0 + k;
            // All indices are inside the buffers' [T(+1), B, ·] shapes.
            let a = self.gates.get().add((t * s.b + b) * h4 + j0);
            let mut pre = [T::zero(); NR];
            match self.input {
                Some(input) => {
                    // The same sums as the product would form: Σ_c x·w in
                    // order of c, then the bias in front (for I = 1, the
                    // same bits). Weights and bias are in panel order: one
                    // contiguous run. (Read through pointers: with slices
                    // of the run, the optimizer built the sums one scalar
                    // product at a time.)
                    let x = &input.x[(t * s.b + b) * s.i..][..s.i];
                    let q = j0 / U;
                    let stride = h.div_ceil(U) * NR;
                    debug_assert_eq!(input.w.len(), s.i * stride);
                    let w = input.w.as_ptr().add(q * NR);
                    let bias = input.bias.as_ptr().add(q * NR);
                    if let [x0] = x {
                        // One input (a layer of mono samples): one pass.
                        for (l, sum) in pre.iter_mut().enumerate() {
                            *sum = *bias.add(l) + *x0 * *w.add(l);
                        }
                    } else {
                        for (l, sum) in pre.iter_mut().enumerate() {
                            *sum = x[0] * *w.add(l);
                        }
                        for (c, &xc) in x.iter().enumerate().skip(1) {
                            let wc = w.add(c * stride);
                            for (l, sum) in pre.iter_mut().enumerate() {
                                *sum = *sum + xc * *wc.add(l);
                            }
                        }
                        for (l, sum) in pre.iter_mut().enumerate() {
                            *sum = *bias.add(l) + *sum;
                        }
                    }
                }
                None => {
                    for g in 0..4 {
                        // (Whole copies, not loops: the optimizer may turn a
                        // loop into single-value moves, and a vector read
                        // of values just stored one by one waits for them.)
                        std::ptr::copy_nonoverlapping(
                            a.add(g * h),
                            pre[g * U..].as_mut_ptr(),
                            units,
                        );
                    }
                }
            }
            if self.recur {
                let acc = &tile[(r0 + k) * NR..(r0 + k + 1) * NR];
                for (x, &a) in pre.iter_mut().zip(acc) {
                    *x = *x + a;
                }
            }
            for g in 0..4 {
                v[(g * R + k) * U..(g * R + k + 1) * U].copy_from_slice(&pre[g * U..(g + 1) * U]);
            }
            let state = t * bh + b * h + j0;
            std::ptr::copy_nonoverlapping(
                self.c.get().add(state),
                c_prev[k * U..].as_mut_ptr(),
                units,
            );
        }
        let (ifg, o) = v[..4 * n].split_at_mut(3 * n);
        let (i_f, g) = ifg.split_at_mut(2 * n);
        gate_slice(s.gate, i_f);
        cell_slice(s.cell, g);
        gate_slice(s.gate, o);
        let mut c = [T::zero(); 2 * U];
        let mut hv = [T::zero(); 2 * U];
        for e in 0..n {
            c[e] = v[n + e] * c_prev[e] + v[e] * v[2 * n + e];
        }
        let mut ac = c;
        cell_slice(s.cell, &mut ac[..n]);
        for e in 0..n {
            hv[e] = v[3 * n + e] * ac[e];
        }
        for k in 0..R {
            let (r, b) = (r0 + k, rb * MR + r0 + k);
            let a = self.gates.get().add((t * s.b + b) * h4 + j0);
            let state = t * bh + b * h + j0;
            let row = k * U..k * U + units;
            if self.keep {
                for g in 0..4 {
                    let at = (g * R + k) * U;
                    std::ptr::copy_nonoverlapping(v[at..].as_ptr(), a.add(g * h), units);
                }
                std::ptr::copy_nonoverlapping(
                    ac[row.clone()].as_ptr(),
                    self.act_c.get().add(state),
                    units,
                );
            }
            std::ptr::copy_nonoverlapping(
                c[row.clone()].as_ptr(),
                self.c.get().add(state + bh),
                units,
            );
            std::ptr::copy_nonoverlapping(
                hv[row.clone()].as_ptr(),
                self.h.get().add(state + bh),
                units,
            );
            for (u, &hv) in hv[row].iter().enumerate() {
                // The packed copy is the next timestep's A operand.
                *self.hp_out.get().add((rb * h + j0 + u) * MR + r) = hv;
            }
        }
    }
}

/// Backward buffers of one layer.
pub struct BackwardBuffers<'a, T> {
    /// The forward's activated gates `[T, B, 4H]`, `act(c_t)` `[T, B, H]`
    /// and cell states `[T+1, B, H]`.
    pub gates: &'a [T],
    pub act_c: &'a [T],
    pub c: &'a [T],
    /// `∂L/∂h_t` from above, `[T, B, H]`.
    pub dh_out: &'a [T],
    /// Out: `∂L/∂a_t`, `[T, B, 4H]`.
    pub da: &'a mut [T],
    /// In: zeros; out: `∂L/∂c_0`, `[B, H]`.
    pub dc: &'a mut [T],
    /// Scratch: `packed_rows_len(B, 4H)` each.
    pub da_packed: [&'a mut [T]; 2],
}

/// The backward time loop (BPTT), from `t = T-1` down to 0. `w` is
/// [`pack_backward_weights`].
pub fn backward<T: CpuReal>(s: &LstmShape, w: &[T], buf: BackwardBuffers<'_, T>) {
    let row_panels = s.b.div_ceil(MR);
    let panels = s.h.div_ceil(NR);
    let isa = isa();
    let [mut dap_next, mut dap_cur] = buf.da_packed;
    let runner = PanelRunner::new(
        panels,
        usize::from(s.t > 1) * row_panels * MR * 4 * s.h * NR,
    );
    for t in (0..s.t).rev() {
        let step = BackwardStep {
            s,
            w,
            t,
            recur: t + 1 < s.t,
            gates: buf.gates,
            act_c: buf.act_c,
            c: buf.c,
            dh_out: buf.dh_out,
            dap_in: dap_next,
            dap_out: SendPtr(dap_cur.as_mut_ptr()),
            da: SendPtr(buf.da.as_mut_ptr()),
            dc: SendPtr(buf.dc.as_mut_ptr()),
        };
        // SAFETY: panels are disjoint sets of units (see `BackwardStep::panel`).
        runner.run(step.recur, |q| unsafe { step.run(isa, q) });
        std::mem::swap(&mut dap_next, &mut dap_cur);
    }
}

/// One timestep of the backward loop, shared by the tasks that run its panels.
struct BackwardStep<'a, T> {
    s: &'a LstmShape,
    w: &'a [T],
    t: usize,
    /// Whether `∂L/∂a_{t+1}` flows back through `W_hh` (not at the last step).
    recur: bool,
    gates: &'a [T],
    act_c: &'a [T],
    c: &'a [T],
    dh_out: &'a [T],
    dap_in: &'a [T],
    dap_out: SendPtr<T>,
    da: SendPtr<T>,
    dc: SendPtr<T>,
}

impl<T: CpuReal> BackwardStep<'_, T> {
    /// [`Self::panel`] compiled for the widest vectors at hand (see
    /// [`ForwardStep::run`]).
    ///
    /// # Safety
    /// As [`Self::panel`].
    unsafe fn run(&self, isa: Isa, q: usize) {
        dispatch(isa, Panel(self, q))
    }

    /// Panel `q`'s `NR` units for every row: `∂L/∂h_t` through `W_hh`, then
    /// the gradients of the gates and of the cell state.
    ///
    /// # Safety
    /// The buffers must have the shapes of [`BackwardBuffers`] and no other
    /// task may touch units `q·NR..(q+1)·NR` of this timestep.
    #[inline(always)]
    unsafe fn panel(&self, q: usize) {
        let (s, t) = (self.s, self.t);
        let (h, h4, bh) = (s.h, 4 * s.h, s.b * s.h);
        let (j0, units) = (q * NR, NR.min(h - q * NR));
        if t > 0 {
            // The next timestep's inputs of this panel are short runs far
            // apart, written long ago: too scattered for the hardware to
            // fetch ahead on its own, so ask for them while this step's
            // products run (a hint only; it changes no value).
            let len = units * std::mem::size_of::<T>();
            for b in 0..s.b {
                let (row4, at) = (((t - 1) * s.b + b) * h4 + j0, (t - 1) * bh + b * h + j0);
                for k in 0..4 {
                    prefetch(&self.gates[row4 + k * h..], len);
                }
                for run in [self.act_c, self.c, self.dh_out] {
                    prefetch(&run[at..], len);
                }
            }
        }
        let mut tiles = [[T::zero(); MR * NR]; GROUP];
        let row_blocks = s.b.div_ceil(MR);
        for g0 in (0..row_blocks).step_by(GROUP) {
            let group = &mut tiles[..GROUP.min(row_blocks - g0)];
            if self.recur {
                // Panel rb of dap_in holds 4h·MR values, panel q of w 4h·NR.
                tiles_over(
                    h4,
                    self.dap_in[g0 * h4 * MR..].as_ptr(),
                    h4 * MR,
                    self.w[q * h4 * NR..].as_ptr(),
                    group,
                    Start::Zero,
                );
            }
            for (i, tile) in group.iter().enumerate() {
                let rb = g0 + i;
                for r in 0..MR.min(s.b - rb * MR) {
                    let b = rb * MR + r;
                    let row4 = (t * s.b + b) * h4 + j0;
                    let at = t * bh + b * h + j0;
                    // This row's slices of the panel's units: contiguous, so the
                    // loop below runs on whole vectors.
                    let gate = |k: usize| &self.gates[row4 + k * h..][..units];
                    let (i, f, g, o) = (gate(0), gate(1), gate(2), gate(3));
                    let ac = &self.act_c[at..][..units];
                    let c_prev = &self.c[at..][..units];
                    let dh_out = &self.dh_out[at..][..units];
                    // Units j0..j0+units of row b belong to this task alone.
                    let dc = std::slice::from_raw_parts_mut(self.dc.get().add(b * h + j0), units);
                    let mut d = [[T::zero(); NR]; 4];
                    for l in 0..units {
                        let dh_rec = if self.recur {
                            tile[r * NR + l]
                        } else {
                            T::zero()
                        };
                        let dh = dh_out[l] + dh_rec;
                        let dcj = dc[l] + dh * o[l] * cell_grad(s.cell, ac[l]);
                        d[0][l] = dcj * g[l] * gate_grad(s.gate, i[l]);
                        d[1][l] = dcj * c_prev[l] * gate_grad(s.gate, f[l]);
                        d[2][l] = dcj * i[l] * cell_grad(s.cell, g[l]);
                        d[3][l] = dh * ac[l] * gate_grad(s.gate, o[l]);
                        dc[l] = dcj * f[l];
                    }
                    for (k, dk) in d.iter().enumerate() {
                        let da =
                            std::slice::from_raw_parts_mut(self.da.get().add(row4 + k * h), units);
                        da.copy_from_slice(&dk[..units]);
                        // The packed copy is the next timestep's A operand.
                        let packed = self.dap_out.get().add((rb * h4 + k * h + j0) * MR + r);
                        for (l, &v) in dk[..units].iter().enumerate() {
                            *packed.add(l * MR) = v;
                        }
                    }
                }
            }
        }
    }
}

/// Ask the cache for the first `bytes` of `xs` ahead of use.
#[inline(always)]
fn prefetch<T>(xs: &[T], bytes: usize) {
    // SAFETY: the range lies inside `xs`.
    unsafe { prefetch_raw(xs.as_ptr(), bytes.min(std::mem::size_of_val(xs))) }
}

/// Ask the cache for `bytes` from `p` on ahead of use.
///
/// # Safety
/// The range must lie inside one allocation (a prefetch never faults nor
/// changes memory, but the address arithmetic must stay in bounds).
#[inline(always)]
unsafe fn prefetch_raw<T>(p: *const T, bytes: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = p.cast::<i8>();
        for offset in (0..bytes).step_by(64) {
            _mm_prefetch::<_MM_HINT_T0>(p.add(offset));
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, bytes);
}

/// One panel of a timestep as a [`Kernel`], for [`ForwardStep::run`] and
/// [`BackwardStep::run`].
struct Panel<'s, S>(&'s S, usize);

impl<T: CpuReal> Kernel for Panel<'_, ForwardStep<'_, T>> {
    type Output = ();

    #[inline(always)]
    unsafe fn run(self, _: Isa) {
        self.0.panel(self.1)
    }
}

impl<T: CpuReal> Kernel for Panel<'_, BackwardStep<'_, T>> {
    type Output = ();

    #[inline(always)]
    unsafe fn run(self, _: Isa) {
        self.0.panel(self.1)
    }
}
