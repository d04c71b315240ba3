//! The register tile every fast product is made of: `MR × NR` dot products of
//! length `k` from packed operands, summed in order of `p`.
//!
//! Packed layouts (see `cpu::pack`): an A panel holds `MR` rows, `a[p·MR + r]`;
//! a B panel holds `NR` columns, `b[p·NR + c]`. Both are read strictly
//! forwards, one `p` at a time, so the tile streams them from cache while its
//! `MR × NR` accumulators stay in registers.
//!
//! With AVX-512 the tile is 16 accumulators of 16 lanes: per `p`, two vector
//! loads of B, eight broadcasts of A and sixteen fused multiply-adds, which
//! keeps both FMA pipes of a core busy. Without it, the same loop in plain
//! Rust, compiled for AVX2 + FMA where the CPU has them.
//!
//! Every element of the tile is the same chain of operations whatever tile,
//! task or thread computes it, so the products built on this are
//! bit-identical on any number of threads.

use super::isa::{dispatch, Kernel};
use crate::real::Real;

/// Rows of a tile (batch rows in the recurrent products).
pub const MR: usize = 8;
/// Columns of a tile.
pub const NR: usize = 32;

/// `out[r·NR + c] = Σ_p a[p·MR + r] · b[p·NR + c]`, on plain arithmetic.
/// `FUSED`: one rounding per multiply-add (only where FMA is in hardware).
///
/// # Safety
/// `a` must hold `k·MR` and `b` `k·NR` readable elements.
#[inline(always)]
pub unsafe fn tile_portable<T: Real, const FUSED: bool>(
    k: usize,
    a: *const T,
    b: *const T,
    out: &mut [T; MR * NR],
) {
    let mut acc = [[T::zero(); NR]; MR];
    for p in 0..k {
        let ap = std::slice::from_raw_parts(a.add(p * MR), MR);
        let bp = std::slice::from_raw_parts(b.add(p * NR), NR);
        for r in 0..MR {
            for c in 0..NR {
                acc[r][c] = if FUSED {
                    ap[r].mul_add(bp[c], acc[r][c])
                } else {
                    acc[r][c] + ap[r] * bp[c]
                };
            }
        }
    }
    for r in 0..MR {
        out[r * NR..(r + 1) * NR].copy_from_slice(&acc[r]);
    }
}

// Kept here for `cpu::adam`, which names them through this module.
pub use super::isa::{isa, Isa};

/// The `f32` tile on the best instruction set at hand.
///
/// # Safety
/// As [`tile_portable`].
#[inline]
pub unsafe fn tile_f32(k: usize, a: *const f32, b: *const f32, out: &mut [f32; MR * NR]) {
    tile_f32_on(isa(), k, a, b, out)
}

/// The `f32` tile compiled for `isa` (the tests run every variant).
///
/// # Safety
/// As [`tile_portable`].
///
/// # Panics
/// If the CPU does not run `isa`.
#[inline]
pub unsafe fn tile_f32_on(
    isa: Isa,
    k: usize,
    a: *const f32,
    b: *const f32,
    out: &mut [f32; MR * NR],
) {
    dispatch(isa, TileF32 { k, a, b, out })
}

/// The `f32` tile as a [`Kernel`]: AVX-512 intrinsics where the CPU has
/// them, else the plain loop (fused with FMA, so the AVX2 and AVX-512 tiles
/// give the same bits and the portable one may differ in the last).
struct TileF32<'a> {
    k: usize,
    a: *const f32,
    b: *const f32,
    out: &'a mut [f32; MR * NR],
}

impl Kernel for TileF32<'_> {
    type Output = ();

    #[inline(always)]
    unsafe fn run(self, isa: Isa) {
        let TileF32 { k, a, b, out } = self;
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => x86::tile_avx512(k, a, b, out),
            Isa::Avx2Fma => tile_portable::<f32, true>(k, a, b, out),
            _ => tile_portable::<f32, false>(k, a, b, out),
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{MR, NR};
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f")]
    pub unsafe fn tile_avx512(k: usize, a: *const f32, b: *const f32, out: &mut [f32; MR * NR]) {
        let mut acc = [[_mm512_setzero_ps(); 2]; MR];
        for p in 0..k {
            let b0 = _mm512_loadu_ps(b.add(p * NR));
            let b1 = _mm512_loadu_ps(b.add(p * NR + 16));
            let ap = a.add(p * MR);
            for (r, row) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*ap.add(r));
                row[0] = _mm512_fmadd_ps(av, b0, row[0]);
                row[1] = _mm512_fmadd_ps(av, b1, row[1]);
            }
        }
        let o = out.as_mut_ptr();
        for (r, row) in acc.iter().enumerate() {
            _mm512_storeu_ps(o.add(r * NR), row[0]);
            _mm512_storeu_ps(o.add(r * NR + 16), row[1]);
        }
    }
}
