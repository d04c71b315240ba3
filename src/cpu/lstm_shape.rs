//! The shape of one LSTM layer run, shared by the layer (`cpu::lstm`) and
//! its time loop (`cpu::recurrence`).

use crate::model::{CellActivation, GateActivation};

/// Sizes and activations of one layer run.
#[derive(Clone, Copy, Debug)]
pub struct LstmShape {
    /// Timesteps.
    pub t: usize,
    /// Sequences in the batch.
    pub b: usize,
    /// Inputs per timestep.
    pub i: usize,
    /// Hidden units.
    pub h: usize,
    pub cell: CellActivation,
    pub gate: GateActivation,
}
