//! Bias gradients, `out += Σ_rows m`: shaders/column_sum.wgsl, twin of
//! `cpu::lstm::column_sums` (reference: `cpu::reference::column_sum`).

use crate::gpu::kernels::Kernel;
use crate::gpu::program::{grid, u, u_or_none, Program, WG};
use crate::gpu::uniform::uniform;

uniform! {
    pub struct Params for "column_sum" {
        pub rows: u32,
        pub cols: u32,
        /// `m[rows, cols]` in `acts`.
        pub m: u32,
        /// Where the sums are added in `grads` (`out2`: also there, or NONE).
        pub out1: u32,
        pub out2: u32,
    }
}

impl Program {
    /// `grads[out1 + j] += Σ_r acts[m + r·cols + j]` (and the same into `out2`).
    pub fn column_sum(
        &mut self,
        rows: usize,
        cols: usize,
        m: usize,
        out1: usize,
        out2: Option<usize>,
    ) {
        let params = Params {
            rows: u(rows),
            cols: u(cols),
            m: u(m),
            out1: u(out1),
            out2: u_or_none(out2),
        };
        self.push(Kernel::ColumnSum, params, grid(cols, WG));
    }
}
