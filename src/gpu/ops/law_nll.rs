//! The location–scale heads' discretized negative log-likelihood and
//! location: shaders/law_nll.wgsl, twin of `cpu::law_nll`.

use crate::gpu::kernels::Kernel;
use crate::gpu::program::{grid, stats, u, u_or_none, LossMask, Program, NONE, WG};
use crate::gpu::uniform::uniform;
use crate::law::Law;

uniform! {
    /// Offsets in `acts`: `head[R, 2]` (location, raw log-scale), `targets[R]`.
    pub struct Params for "law_nll" {
        pub rows: u32,
        pub head: u32,
        pub targets: u32,
        pub dhead: u32,
        pub per_row: u32,
        /// Index in `stats` of the loss ring (this step's slot is `stats[SLOT]`).
        pub loss: u32,
        /// One target bin's width, unless `delta_at` (`[R]` in `acts`) gives one per target.
        pub delta: f32,
        pub delta_at: u32,
        /// Distributions a row, lanes B, and the burn-in timesteps (0: every row counts).
        pub channels: u32,
        pub b: u32,
        pub burn_in: u32,
        /// The law: `Law::code` (0 Laplace, 1 logistic).
        pub law: u32,
    }
}

/// Where the location–scale loss's tensors are in `acts`.
#[derive(Clone, Copy, Debug)]
pub struct LawAt {
    /// `[R, 2]`: location, raw log-scale.
    pub head: usize,
    pub targets: usize,
    pub dhead: usize,
    pub per_row: usize,
    /// Per-target bin widths `[R]`, or one width for all.
    pub delta_at: Option<usize>,
}

impl Program {
    /// The discretized NLL under `law` of `rows` distributions (see
    /// shaders/law_nll.wgsl): per-distribution losses into `at.per_row`,
    /// their mean into the loss ring, the gradient into `at.dhead`. Every
    /// target's bin is `delta` wide, or `acts[at.delta_at + r]`.
    pub fn law_nll(&mut self, law: Law, rows: usize, at: LawAt, delta: f32, mask: LossMask) {
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
            law: law.code(),
        };
        self.push(Kernel::LawNllRows, p, grid(rows, WG));
        self.push(Kernel::LawNllMean, p, [1, 1, 1]);
    }

    /// The locations of `rows` location–scale distributions (`head[rows, 2]`) into `out`.
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
        self.push(Kernel::LawNllLocation, p, grid(rows, WG));
    }
}
