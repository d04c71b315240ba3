//! The global gradient norm and clipping factor: shaders/grad_norm.wgsl,
//! twin of `cpu::adam::global_norm` (reference: `cpu::reference::grad_norm`).

use crate::gpu::arena::NORM_GROUPS;
use crate::gpu::kernels::Kernel;
use crate::gpu::program::{stats, u, Program};
use crate::gpu::uniform::uniform;

uniform! {
    pub struct Params for "grad_norm" {
        pub n: u32,
        /// Offset in `acts` of the per-workgroup partial sums.
        pub partials: u32,
        /// Number of workgroups of `partial` (a constant of the engine).
        pub groups: u32,
        /// Index in `stats` of the norm ring and of the loss ring.
        pub norm: u32,
        pub loss: u32,
        /// Clip threshold (0 = no clipping).
        pub clip: f32,
    }
}

impl Program {
    /// The norm of all `n` gradients into the norm ring (of `ring` slots),
    /// and Adam's clipping factor and finiteness flag into `stats`.
    pub fn grad_norm(&mut self, n: usize, partials: usize, ring: usize, clip: f64) {
        let p = Params {
            n: u(n),
            partials: u(partials),
            groups: u(NORM_GROUPS),
            norm: u(stats::norm(ring)),
            loss: u(stats::LOSS),
            clip: clip as f32,
        };
        self.push(Kernel::GradNormPartial, p, [u(NORM_GROUPS), 1, 1]);
        self.push(Kernel::GradNormFinish, p, [1, 1, 1]);
    }
}
