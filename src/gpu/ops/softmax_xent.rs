//! The μ-law head's softmax cross-entropy and expected value:
//! shaders/softmax_xent.wgsl, twin of `cpu::mulaw::softmax_xent_loss`.

use crate::gpu::kernels::Kernel;
use crate::gpu::program::{grid, stats, u, LossMask, Program, NONE};
use crate::gpu::uniform::uniform;

uniform! {
    /// Rows of 256 logits in `acts`: `logits[R, 256]`, `targets[R]`.
    pub struct Params for "softmax_xent" {
        pub rows: u32,
        pub logits: u32,
        pub targets: u32,
        pub dlogits: u32,
        pub per_row: u32,
        /// Index in `stats` of the loss ring (this step's slot is `stats[SLOT]`).
        pub loss: u32,
        pub scale: f32,
        /// Distributions a row, lanes B, and the burn-in timesteps (0: every row counts).
        pub channels: u32,
        pub b: u32,
        pub burn_in: u32,
    }
}

impl Program {
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
        let p = Params {
            rows: u(rows),
            logits: u(logits),
            targets: u(targets),
            dlogits: u(dlogits),
            per_row: u(per_row),
            loss: u(stats::LOSS),
            scale,
            channels: u(mask.channels),
            b: u(mask.b),
            burn_in: u(mask.burn_in),
        };
        self.push(Kernel::SoftmaxXentRows, p, grid(rows, 1));
        self.push(Kernel::SoftmaxXentMean, p, [1, 1, 1]);
    }

    /// The expected values (model units) of `rows` rows of logits into `out`.
    pub fn expected_rows(&mut self, rows: usize, logits: usize, out: usize, scale: f32) {
        let p = Params {
            rows: u(rows),
            logits: u(logits),
            targets: NONE,
            dlogits: NONE,
            per_row: u(out),
            loss: NONE,
            scale,
            ..Params::default()
        };
        self.push(Kernel::SoftmaxXentExpected, p, grid(rows, 1));
    }
}
