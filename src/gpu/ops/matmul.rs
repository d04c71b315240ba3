//! `C = alpha·op(A)·op(B)` (+ C) (+ bias rows): shaders/matmul.wgsl, twin of
//! `cpu::matmul::gemm`.

use crate::gpu::kernels::Kernel;
use crate::gpu::program::{u, u_or_none, Program};
use crate::gpu::uniform::uniform;

uniform! {
    pub struct Params for "matmul" {
        pub m: u32,
        pub n: u32,
        pub k: u32,
        /// Bit 0: A transposed, bit 1: B transposed, bits 2-3: A's buffer,
        /// bits 4-5: B's buffer ([`Src`]), bit 6: C in grads (else acts),
        /// bit 7: accumulate into C.
        pub flags: u32,
        pub a: u32,
        pub lda: u32,
        pub b: u32,
        pub ldb: u32,
        pub c: u32,
        pub ldc: u32,
        /// Offsets in `params` of up to two bias vectors `[n]` added to every row.
        pub bias1: u32,
        pub bias2: u32,
        pub alpha: f32,
    }
}

/// Which buffer a matmul operand is read from (bits of the `flags` field).
#[derive(Clone, Copy)]
pub enum Src {
    Params = 0,
    Acts = 1,
    Grads = 2,
}

/// One operand: buffer, element offset, leading dimension, transposed.
#[derive(Clone, Copy)]
pub struct Operand {
    pub src: Src,
    pub offset: usize,
    pub ld: usize,
    pub transposed: bool,
}

pub fn acts(offset: usize, ld: usize) -> Operand {
    Operand {
        src: Src::Acts,
        offset,
        ld,
        transposed: false,
    }
}

pub fn weights(offset: usize, ld: usize) -> Operand {
    Operand {
        src: Src::Params,
        offset,
        ld,
        transposed: false,
    }
}

impl Operand {
    pub fn t(self) -> Operand {
        Operand {
            transposed: true,
            ..self
        }
    }
}

/// The destination of a matmul.
#[derive(Clone, Copy)]
pub struct Dest {
    pub grads: bool,
    pub offset: usize,
    pub ld: usize,
    pub accumulate: bool,
}

impl Program {
    /// `C = op(A)·op(B)` (+ C) (+ bias rows), C `[m×n]`.
    #[allow(clippy::too_many_arguments)]
    pub fn matmul(
        &mut self,
        m: usize,
        n: usize,
        k: usize,
        a: Operand,
        b: Operand,
        c: Dest,
        bias: [Option<usize>; 2],
    ) {
        if m == 0 || n == 0 {
            return;
        }
        let flags = u32::from(a.transposed)
            | (u32::from(b.transposed) << 1)
            | ((a.src as u32) << 2)
            | ((b.src as u32) << 4)
            | (u32::from(c.grads) << 6)
            | (u32::from(c.accumulate) << 7);
        // 64×64 blocks where the output is large enough to fill the device
        // with them; 16×16 blocks for the small per-timestep products.
        let (kernel, block) = if m * n >= self.large_matmul_from {
            (Kernel::MatmulLarge, 64)
        } else {
            (Kernel::Matmul, 16)
        };
        let params = Params {
            m: u(m),
            n: u(n),
            k: u(k),
            flags,
            a: u(a.offset),
            lda: u(a.ld),
            b: u(b.offset),
            ldb: u(b.ld),
            c: u(c.offset),
            ldc: u(c.ld),
            bias1: u_or_none(bias[0]),
            bias2: u_or_none(bias[1]),
            alpha: 1.0,
        };
        self.push(
            kernel,
            params,
            [u(n.div_ceil(block)), u(m.div_ceil(block)), 1],
        );
    }
}
