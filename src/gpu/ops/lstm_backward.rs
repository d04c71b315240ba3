//! One LSTM layer's backward gate math (BPTT): shaders/lstm_backward.wgsl,
//! twin of `cpu::lstm::lstm_backward` (reference: `cpu::reference::lstm_backward`).

use crate::gpu::kernels::Kernel;
use crate::gpu::ops::lstm_forward::{per_lane, per_unit};
use crate::gpu::program::Program;
use crate::gpu::uniform::uniform;

uniform! {
    /// Offsets in `acts`, layouts as in `lstm_forward`'s: `a[T, B, 4H]` the
    /// activated gates (overwritten with `da`), `c[T+1, B, H]`,
    /// `dh_out[T, B, H]` = ∂L/∂h_t from above; `step` also reads
    /// `dh_rec[B, H]` (the recurrent da_{t+1}·W_hh) and carries
    /// `dc[B, H]` = ∂L/∂c from t+1 to t.
    pub struct Params for "lstm_backward" {
        /// `step`: the timestep.
        pub t: u32,
        pub b: u32,
        pub h: u32,
        /// See `lstm_forward::kinds`.
        pub kinds: u32,
        pub a: u32,
        pub c: u32,
        pub dh_out: u32,
        pub dh_rec: u32,
        pub dc: u32,
        /// `step`: 1 at t = T-1, where nothing flows back from the future yet.
        /// `sequence`: the number of timesteps T.
        pub first_or_steps: u32,
        /// Offset of `W_hh[4H, H]` in `params` (`sequence` only).
        pub w_hh: u32,
    }
}

impl Program {
    /// Timestep `p.t` of every lane (called for t = T-1 down to 0); one
    /// thread per (lane, unit).
    pub fn lstm_backward_step(&mut self, p: Params) {
        self.push(Kernel::LstmBackwardStep, p, per_unit(p.b, p.h));
    }

    /// All timesteps from T-1 down to 0, the recurrent product included;
    /// one workgroup per lane.
    pub fn lstm_backward_sequence(&mut self, p: Params) {
        self.push(Kernel::LstmBackwardSequence, p, per_lane(p.b));
    }
}
