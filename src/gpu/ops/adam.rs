//! One Adam update with decoupled weight decay: shaders/adam.wgsl, twin of
//! `cpu::adam::adam_step` (reference: `cpu::reference::adam`).

use crate::gpu::kernels::Kernel;
use crate::gpu::program::{grid, u, Program, WG};
use crate::gpu::uniform::uniform;
use crate::optim::{AdamConfig, StepConstants};

uniform! {
    /// The constants of every step; the per-step scalars come from `stats`.
    pub struct Params for "adam" {
        pub n: u32,
        /// 1 − β1, and 1 − (1 − β1) in f32: lerp's two weights.
        pub one_minus_beta1: f32,
        pub beta1_complement: f32,
        pub beta2: f32,
        pub one_minus_beta2: f32,
        pub eps: f32,
    }
}

impl Program {
    /// Adam on all `n` parameters, scaled by the clipping factor the norm
    /// kernel left in `stats`.
    pub fn adam(&mut self, adam: &AdamConfig, n: usize) {
        let k = StepConstants::new(adam, 1);
        let p = Params {
            n: u(n),
            one_minus_beta1: k.one_minus_beta1,
            beta1_complement: k.beta1_complement,
            beta2: k.beta2,
            one_minus_beta2: k.one_minus_beta2,
            eps: k.eps,
        };
        self.push(Kernel::Adam, p, grid(n, WG));
    }
}
