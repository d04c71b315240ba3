//! The discretized Laplace head's negative log-likelihood and location:
//! shaders/laplace_nll.wgsl, twin of `cpu::laplace_nll`.

use crate::gpu::kernels::Kernel;
use crate::gpu::program::{grid, stats, u, u_or_none, LossMask, Program, NONE, WG};
use crate::gpu::uniform::uniform;

uniform! {
    /// Offsets in `acts`: `head[R, 2]` (location, raw log-scale), `targets[R]`.
    pub struct Params for "laplace_nll" {
        pub rows: u32,
        pub head: u32,
        pub targets: u32,
        pub dhead: u32,
        pub per_row: u32,
        /// Index in `stats` of the loss ring (this step's slot is stats[SLOT]).
        pub loss: u32,
        /// One target bin's width, unless `delta_at` (`[R]` in `acts`) gives one per target.
        pub delta: f32,
        pub delta_at: u32,
        /// Distributions a row, lanes B, and the burn-in timesteps (0: every row counts).
        pub channels: u32,
        pub b: u32,
        pub burn_in: u32,
    }
}

/// Where the Laplace loss's tensors are in `acts`.
#[derive(Clone, Copy, Debug)]
pub struct LaplaceAt {
    /// `[R, 2]`: location, raw log-scale.
    pub head: usize,
    pub targets: usize,
    pub dhead: usize,
    pub per_row: usize,
    /// Per-target bin widths `[R]`, or one width for all.
    pub delta_at: Option<usize>,
}

impl Program {
    /// The discretized Laplace NLL of `rows` distributions (see
    /// shaders/laplace_nll.wgsl): per-distribution losses into `at.per_row`,
    /// their mean into the loss ring, the gradient into `at.dhead`. Every
    /// target's bin is `delta` wide, or `acts[at.delta_at + r]`.
    pub fn laplace_nll(&mut self, rows: usize, at: LaplaceAt, delta: f32, mask: LossMask) {
        let p = Params {
            rows: u(rows),
            head: u(at.head),
            targets: u(at.targets),
            dhead: u(at.dhead),
            per_row: u(at.per_row),
            loss: u(stats::LOSS),
            delta,
            delta_at: u_or_none(at.delta_at),
            channels: u(mask.channels),
            b: u(mask.b),
            burn_in: u(mask.burn_in),
        };
        self.push(Kernel::LaplaceNllRows, p, grid(rows, WG));
        self.push(Kernel::LaplaceNllMean, p, [1, 1, 1]);
    }

    /// The locations of `rows` Laplace distributions (`head[rows, 2]`) into `out`.
    pub fn location_rows(&mut self, rows: usize, head: usize, out: usize) {
        let p = Params {
            rows: u(rows),
            head: u(head),
            targets: NONE,
            dhead: NONE,
            per_row: u(out),
            loss: NONE,
            ..Params::default()
        };
        self.push(Kernel::LaplaceNllLocation, p, grid(rows, WG));
    }
}
