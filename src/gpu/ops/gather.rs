//! The windows and targets of a batch: shaders/gather.wgsl, twin of
//! `dataset::gather` (reference: `cpu::reference::gather`).

use crate::gpu::arena::Arena;
use crate::gpu::kernels::Kernel;
use crate::gpu::program::{grid, u, Program, WG};
use crate::gpu::uniform::uniform;
use crate::model::ModelConfig;

uniform! {
    pub struct Params for "gather" {
        pub t: u32,
        pub b: u32,
        pub frame: u32,
        pub channels: u32,
        pub frames: u32,
        pub x: u32,
        pub targets: u32,
        pub targets_at: u32,
        pub in_width: u32,
        pub deltas_at: u32,
        pub deltas: u32,
    }
}

impl Program {
    /// Windows and targets of the batch; the target signal starts at element
    /// `targets_at` of the signal buffer (0: the signal is its own target),
    /// a `laplace` head's per-target bin widths at `deltas_at` (0: none).
    pub fn gather(
        &mut self,
        cfg: &ModelConfig,
        ar: &Arena,
        frames: usize,
        targets_at: usize,
        deltas_at: usize,
    ) {
        let params = Params {
            t: u(ar.t),
            b: u(ar.b),
            frame: u(cfg.frame),
            channels: u(cfg.channels),
            frames: u(frames),
            x: u(ar.x),
            targets: u(ar.target),
            targets_at: u(targets_at),
            in_width: u(cfg.input_width()),
            deltas_at: u(deltas_at),
            deltas: u(ar.delta.unwrap_or(0)),
        };
        self.push(Kernel::Gather, params, grid(ar.t * ar.b, WG));
    }
}
