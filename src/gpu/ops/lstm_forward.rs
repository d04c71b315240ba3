//! One LSTM layer's gate math after the products: shaders/lstm_forward.wgsl,
//! twin of `cpu::lstm::lstm_forward` (reference: `cpu::reference::lstm_forward`).

use crate::gpu::kernels::Kernel;
use crate::gpu::program::{grid, Program, WG};
use crate::gpu::uniform::uniform;
use crate::model::{CellActivation, GateActivation};

uniform! {
    /// Offsets in `acts`: `a[T, B, 4H]` the pre-activations (overwritten
    /// with the activated gates), `c` and `hs` `[T+1, B, H]` with block 0
    /// the initial state.
    pub struct Params for "lstm_forward" {
        /// `step`: the timestep.
        pub t: u32,
        pub b: u32,
        pub h: u32,
        /// See [`kinds`].
        pub kinds: u32,
        pub a: u32,
        pub c: u32,
        pub hs: u32,
        /// Offset of `W_hh[4H, H]` in `params` (`sequence` only).
        pub w_hh: u32,
        /// `sequence`: the number of timesteps T.
        pub steps: u32,
    }
}

/// The activations as the LSTM kernels read them: bit 0 a linear cell
/// activation (else tanh), bit 1 hard-sigmoid gates (else logistic).
pub fn kinds(cell: CellActivation, gate: GateActivation) -> u32 {
    u32::from(cell == CellActivation::Linear)
        | (u32::from(gate == GateActivation::HardSigmoid) << 1)
}

/// The LSTM kernels' two dispatch shapes (forward and backward alike):
/// `step` one thread per (lane, unit) of `b` lanes of `h` units, `sequence`
/// one workgroup per lane.
pub(crate) fn per_unit(b: u32, h: u32) -> [u32; 3] {
    grid((b * h) as usize, WG)
}

pub(crate) fn per_lane(b: u32) -> [u32; 3] {
    [b, 1, 1]
}

impl Program {
    /// Timestep `p.t` of every lane, once `a[t]` holds all of its products
    /// (`x·W_ihᵀ + biases + h_{t-1}·W_hhᵀ`); one thread per (lane, unit).
    pub fn lstm_forward_step(&mut self, p: Params) {
        self.push(Kernel::LstmForwardStep, p, per_unit(p.b, p.h));
    }

    /// All `p.steps` timesteps, the recurrent product included (`a` holds
    /// only `x·W_ihᵀ + biases`); one workgroup per lane.
    pub fn lstm_forward_sequence(&mut self, p: Params) {
        self.push(Kernel::LstmForwardSequence, p, per_lane(p.b));
    }
}
