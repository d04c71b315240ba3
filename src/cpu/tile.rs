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
//! keeps both FMA pipes of a core busy. AVX2 has 16 registers of 8 lanes, half
//! the 32 the whole tile would take, so its tile is three passes over `p`:
//! two 6 × 16 blocks in 12 accumulators (per `p`: two loads of B, six
//! broadcasts of A, twelve fused multiply-adds) and the last two rows across
//! all 32 columns in 8; the compiler's vectorization of the plain loop kept
//! every accumulator in memory, one scalar multiply-add at a time. The
//! portable tile is the plain loop.
//!
//! Every element of the tile is the same chain of operations whatever tile,
//! task or thread computes it, so the products built on this are
//! bit-identical on any number of threads.
//!
//! A tile may also go on from the sums already in `out` ([`Start::Out`]):
//! `k` values of `p` taken as two calls of `k₁` and `k - k₁` are the same
//! chain, stored and reloaded between them (exact in the tile's own type),
//! so a long product can be cut into blocks of `p` that fit in L1 without
//! changing a bit.

use super::isa::{dispatch, isa, Isa, Kernel};
use crate::real::Real;

/// Where a tile's sums start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// From zero: `out` is overwritten.
    Zero,
    /// From the values in `out`: the chain of an earlier call on the
    /// preceding values of `p` goes on.
    Out,
}

/// Rows of a tile (batch rows in the recurrent products).
pub const MR: usize = 8;
/// Columns of a tile.
pub const NR: usize = 32;

/// `out[r·NR + c] = s + Σ_p a[p·MR + r] · b[p·NR + c]`, on plain arithmetic,
/// where `s` is 0 or `out`'s own value (`start`), added to in order of `p`.
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
    start: Start,
) {
    let mut acc = [[T::zero(); NR]; MR];
    if start == Start::Out {
        for (r, row) in acc.iter_mut().enumerate() {
            row.copy_from_slice(&out[r * NR..(r + 1) * NR]);
        }
    }
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

/// The `f32` tile on the best instruction set at hand.
///
/// # Safety
/// As [`tile_portable`].
#[inline]
pub unsafe fn tile_f32(
    k: usize,
    a: *const f32,
    b: *const f32,
    out: &mut [f32; MR * NR],
    start: Start,
) {
    tile_f32_on(isa(), k, a, b, out, start)
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
    start: Start,
) {
    dispatch(
        isa,
        TileF32 {
            k,
            a,
            b,
            out,
            start,
        },
    )
}

/// The `f32` tile as a [`Kernel`]: AVX-512 or AVX2 intrinsics where the CPU
/// has them, else the plain loop. Both intrinsic tiles run every element as
/// the same chain of fused multiply-adds in order of `p`, so they give the
/// same bits; the portable one (unfused) may differ in the last.
struct TileF32<'a> {
    k: usize,
    a: *const f32,
    b: *const f32,
    out: &'a mut [f32; MR * NR],
    start: Start,
}

impl Kernel for TileF32<'_> {
    type Output = ();

    #[inline(always)]
    unsafe fn run(self, isa: Isa) {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => x86::tile_avx512(self),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => x86::tile_avx2(self),
            _ => tile_portable::<f32, false>(self.k, self.a, self.b, self.out, self.start),
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Start, TileF32, MR, NR};
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f")]
    pub unsafe fn tile_avx512(tile: TileF32<'_>) {
        let (k, a, b, start, o) = (tile.k, tile.a, tile.b, tile.start, tile.out.as_mut_ptr());
        let mut acc = [[_mm512_setzero_ps(); 2]; MR];
        if start == Start::Out {
            for (r, row) in acc.iter_mut().enumerate() {
                row[0] = _mm512_loadu_ps(o.add(r * NR));
                row[1] = _mm512_loadu_ps(o.add(r * NR + 16));
            }
        }
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
        for (r, row) in acc.iter().enumerate() {
            _mm512_storeu_ps(o.add(r * NR), row[0]);
            _mm512_storeu_ps(o.add(r * NR + 16), row[1]);
        }
    }

    /// Rows of each of the AVX2 tile's first two passes, and the
    /// columns each of them covers: 6 × 16 is 12 accumulators, with two
    /// registers for B and one for the broadcast of A.
    const WR: usize = 6;
    const WC: usize = NR / 2;

    /// The tile in three passes over the whole of `p`: rows `0..6` on each
    /// half of the columns, then rows `6..8` on all 32. Twelve chains of
    /// fused multiply-adds in flight hide the FMA's latency (4 cycles on
    /// Zen 3 and Zen 5, two pipes: eight chains is the bare minimum), and a
    /// row of A is broadcast once per 16 columns, not once per 8. On one
    /// Zen 5 core with the panels in L1 (`cargo bench --bench cpu_ops --
    /// tile`): 112-114 GFLOP/s, against 104-106 for four 4 × 16 quarters.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn tile_avx2(tile: TileF32<'_>) {
        let (k, a, b, start, o) = (tile.k, tile.a, tile.b, tile.start, tile.out.as_mut_ptr());
        for c0 in [0, WC] {
            let mut acc = [[_mm256_setzero_ps(); 2]; WR];
            if start == Start::Out {
                for (r, row) in acc.iter_mut().enumerate() {
                    let at = o.add(r * NR + c0);
                    row[0] = _mm256_loadu_ps(at);
                    row[1] = _mm256_loadu_ps(at.add(8));
                }
            }
            for p in 0..k {
                let bp = b.add(p * NR + c0);
                let (b0, b1) = (_mm256_loadu_ps(bp), _mm256_loadu_ps(bp.add(8)));
                let ap = a.add(p * MR);
                for (r, row) in acc.iter_mut().enumerate() {
                    let av = _mm256_broadcast_ss(&*ap.add(r));
                    row[0] = _mm256_fmadd_ps(av, b0, row[0]);
                    row[1] = _mm256_fmadd_ps(av, b1, row[1]);
                }
            }
            for (r, row) in acc.iter().enumerate() {
                let at = o.add(r * NR + c0);
                _mm256_storeu_ps(at, row[0]);
                _mm256_storeu_ps(at.add(8), row[1]);
            }
        }
        let mut acc = [[_mm256_setzero_ps(); NR / 8]; MR - WR];
        if start == Start::Out {
            for (r, row) in acc.iter_mut().enumerate() {
                for (j, v) in row.iter_mut().enumerate() {
                    *v = _mm256_loadu_ps(o.add((WR + r) * NR + 8 * j));
                }
            }
        }
        for p in 0..k {
            let bp = b.add(p * NR);
            let bv = [
                _mm256_loadu_ps(bp),
                _mm256_loadu_ps(bp.add(8)),
                _mm256_loadu_ps(bp.add(16)),
                _mm256_loadu_ps(bp.add(24)),
            ];
            let ap = a.add(p * MR + WR);
            for (r, row) in acc.iter_mut().enumerate() {
                let av = _mm256_broadcast_ss(&*ap.add(r));
                for (v, bj) in row.iter_mut().zip(bv) {
                    *v = _mm256_fmadd_ps(av, bj, *v);
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                _mm256_storeu_ps(o.add((WR + r) * NR + 8 * j), *v);
            }
        }
    }
}
