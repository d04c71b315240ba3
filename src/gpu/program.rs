//! A program: the fixed list of dispatches of one training step or one
//! inference pass for a (T, B) shape, with every dispatch's parameters
//! packed once into one uniform buffer (`compiled::Compiled`). Per step the host only
//! writes the lanes and the step scalars, then records the list into one
//! compute pass and submits it once.
//!
//! One op's builder methods live beside its parameters in `src/gpu/ops/`
//! (one file per shader); `src/gpu/passes.rs` composes them into the
//! network's forward, backward, loss and update.

use super::kernels::Kernel;
use super::uniform::{Uniform, PARAMS_BYTES};
use crate::model::ModelConfig;

/// Offset meaning "no such tensor" (the shaders' `NONE`).
pub const NONE: u32 = u32::MAX;

/// Threads per workgroup of the one-dimensional kernels (`WG` in WGSL).
pub(crate) const WG: usize = 64;
/// Largest H of the sequence path's forward and backward kernels
/// (`SEQ_MAX_H` in shaders/lstm_forward.wgsl and lstm_backward.wgsl).
pub const SEQ_MAX_H_FORWARD: usize = 1024;
pub const SEQ_MAX_H_BACKWARD: usize = 512;

/// Outputs from which a matmul runs in 64×64 blocks: 64 such blocks, a
/// count that keeps the cores of a small GPU busy.
pub const LARGE_MATMUL_MIN_OUTPUT: usize = 64 * 64 * 64;

#[derive(Clone, Copy, Debug)]
pub struct Dispatch {
    pub kernel: Kernel,
    /// The kernel's `Params`, as bytes of one uniform block.
    pub params: [u32; PARAMS_BYTES / 4],
    pub groups: [u32; 3],
}

/// How the recurrence runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Path {
    /// Per timestep: a recurrent matmul dispatch and a gate-math dispatch.
    Step,
    /// One workgroup per lane walks all timesteps (small models).
    Sequence,
}

impl Path {
    pub fn fits(self, cfg: &ModelConfig) -> bool {
        match self {
            Path::Step => true,
            Path::Sequence => cfg.hidden <= SEQ_MAX_H_BACKWARD,
        }
    }
}

/// An element offset or count as a shader field.
pub(crate) fn u(x: usize) -> u32 {
    u32::try_from(x).expect("offsets are checked against the device limits")
}

/// An optional offset as a shader field ([`NONE`] for none).
pub(crate) fn u_or_none(x: Option<usize>) -> u32 {
    x.map(u).unwrap_or(NONE)
}

/// Workgroups for `threads` threads of a 1-D kernel with `wg` per group,
/// folded into a 2-D grid (a grid dimension holds at most 65,535).
pub(crate) fn grid(threads: usize, wg: usize) -> [u32; 3] {
    let groups = threads.div_ceil(wg).max(1);
    let x = groups.min(65_535);
    [u(x), u(groups.div_ceil(x)), 1]
}

/// Which rows a loss counts (see `cpu::network::BurnIn`): all but the first
/// `burn_in` timesteps of the lanes whose carry flag in `lanes` is 0, for a
/// batch of `b` lanes and `channels` targets a row.
#[derive(Clone, Copy, Debug)]
pub struct LossMask {
    pub channels: usize,
    pub b: usize,
    pub burn_in: usize,
}

impl LossMask {
    /// Every row counts.
    pub fn none(channels: usize) -> LossMask {
        LossMask {
            channels,
            b: 1,
            burn_in: 0,
        }
    }
}

/// Offsets of the step scalars and rings in `stats` (see shaders/common.wgsl).
pub mod stats {
    /// Adam's per-step scalars (`optim::StepConstants`).
    pub const STEP_SIZE: usize = 0;
    pub const BIAS_CORRECTION2_SQRT: usize = 1;
    pub const DECAY: usize = 2;
    pub const SLOT: usize = 3;
    /// The loss ring (one slot per step between read-backs); the norm ring
    /// of the same length follows it.
    pub const LOSS: usize = 8;
    pub fn norm(ring: usize) -> usize {
        LOSS + ring
    }
    pub fn len(ring: usize) -> usize {
        LOSS + 2 * ring
    }
}

pub struct Program {
    pub dispatches: Vec<Dispatch>,
    /// Outputs from which matmuls use the 64×64 tiling (the tests set it to
    /// run every shape through each tiling).
    pub large_matmul_from: usize,
}

impl Default for Program {
    fn default() -> Self {
        Program {
            dispatches: Vec::new(),
            large_matmul_from: LARGE_MATMUL_MIN_OUTPUT,
        }
    }
}

impl Program {
    /// Append one dispatch of `kernel` with its shader's typed parameters.
    pub fn push<P: Uniform>(&mut self, kernel: Kernel, params: P, groups: [u32; 3]) {
        assert_eq!(
            kernel.entry().0,
            P::SHADER,
            "{} takes the parameters of its own shader",
            kernel.name()
        );
        let mut block = [0u32; PARAMS_BYTES / 4];
        bytemuck::cast_slice_mut::<u32, u8>(&mut block)[..std::mem::size_of::<P>()]
            .copy_from_slice(bytemuck::bytes_of(&params));
        self.dispatches.push(Dispatch {
            kernel,
            params: block,
            groups,
        });
    }
}
