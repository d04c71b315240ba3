//! The mean squared error and its gradient: shaders/mse_loss.wgsl, twin of
//! `cpu::network::mse_loss` (reference: `cpu::reference::mse_loss`).

use crate::gpu::kernels::Kernel;
use crate::gpu::program::{stats, u, LossMask, Program};
use crate::gpu::uniform::uniform;

uniform! {
    pub struct Params for "mse_loss" {
        pub n: u32,
        pub pred: u32,
        pub targets: u32,
        pub dpred: u32,
        /// Index in `stats` of the loss ring (this step's slot is `stats[SLOT]`).
        pub loss: u32,
        /// Lanes B, targets a row, and the burn-in timesteps (0: every row counts).
        pub b: u32,
        pub channels: u32,
        pub burn_in: u32,
    }
}

impl Program {
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
        let params = Params {
            n: u(n),
            pred: u(pred),
            targets: u(targets),
            dpred: u(dpred),
            loss: u(stats::LOSS),
            b: u(mask.b),
            channels: u(mask.channels),
            burn_in: u(mask.burn_in),
        };
        self.push(Kernel::MseLoss, params, [1, 1, 1]);
    }
}
