//! [`gemv`](super::gemv)'s product with the weights stored in the order the
//! kernel reads them, so that a product is one sequential stream through
//! memory rather than eight interleaved ones.
//!
//! Why: a one-take free step is a matrix-vector product over weights that
//! live in L2, or, when a core's share is larger than its L2 (a hidden-256
//! layer split in two is 544 KiB a core, Zen 3 has 512 KiB), partly in L3.
//! With rows stored one after another, an 8-row tile reads eight rows side
//! by side: eight streams 1 KiB apart, each a handful of lines long, which
//! the hardware prefetchers follow badly. Stored as below, the same tile
//! reads consecutive addresses only, and a software prefetch a fixed
//! distance ahead keeps the next lines in flight (on Zen 3 one thread's
//! product over 544 KiB went from 72-76 GB/s to 80-88 GB/s).
//!
//! Layout ([`BlockedRows`]): rows in blocks of [`BLOCK_ROWS`], the last
//! block holding what is left (`h ≤ 8` rows). With `W` the register width
//! of the instruction set packed for (16 on AVX-512, 8 otherwise) and
//! `body = cols - cols % W`, a block of height `h` is
//!
//! ```text
//! chunk k (k < body / W):  h·W values, row i's columns k·W..k·W+W at k·h·W + i·W
//! tail:                    h·(cols - body) values, row i's leftover columns at body·h + i·(cols - body)
//! ```
//!
//! and block `b` starts `b·block_len` values into the buffer, `block_len`
//! being `8·cols` rounded up to whole cache lines (so every chunk row is an
//! aligned vector).
//!
//! Packed for the portable kernel, blocks are single rows (the rows one
//! after another, each on a cache line): its plain loop sums one row and
//! lane at a time, which the compiler vectorizes well over a contiguous
//! row; walking 8-row blocks it ran one take 15 % slower on Zen 3, and
//! summing more rows at once it made scalar code.
//!
//! Bits: a row's result is summed exactly as `gemv_on` on the same
//! instruction set sums it (the same partial sums over the body, the same
//! reduction, the leftovers added in order), so the two agree bit for bit,
//! whatever the tiling (`gemv_blocked_*` in tests/free_step.rs). The lanes'
//! vectors `x` stay as `gemv` takes them: lane `l` at `l·ldx`.

use super::aligned::{aligned_len, AlignedVec};
use super::gemv::reduce8;
use super::isa::{dispatch, Isa, Kernel};

/// Rows per block: the tallest tile, one take's eight independent sums.
pub const BLOCK_ROWS: usize = 8;

/// How far ahead of the values being multiplied the kernel prefetches:
/// 2 KiB, the best of 1, 2 and 4 KiB on Zen 3 (the three within 3 %).
#[cfg(target_arch = "x86_64")]
const PREFETCH_AHEAD: usize = 512;

/// A `rows × cols` weight matrix stored in the layout above, for products
/// on one instruction set.
#[derive(Clone, Debug)]
pub struct BlockedRows {
    isa: Isa,
    /// Rows per block: [`BLOCK_ROWS`], or 1 for the portable kernel.
    block_rows: usize,
    rows: usize,
    cols: usize,
    width: usize,
    block_len: usize,
    w: AlignedVec<f32>,
}

impl BlockedRows {
    /// Rows `r` of `src` (`cols` values at `r·ld`) stored for products on `isa`.
    ///
    /// # Panics
    /// If `src` is shorter than the shape.
    pub fn pack(isa: Isa, rows: usize, cols: usize, src: &[f32], ld: usize) -> Self {
        assert!(ld >= cols, "BlockedRows: stride below the row length");
        assert!(
            rows == 0 || src.len() >= (rows - 1) * ld + cols,
            "BlockedRows: source too short"
        );
        let width = match isa {
            Isa::Avx512 => 16,
            Isa::Avx2Fma | Isa::Portable => 8,
        };
        let block_rows = if isa == Isa::Portable { 1 } else { BLOCK_ROWS };
        let block_len = aligned_len(block_rows * cols);
        let mut out = BlockedRows {
            isa,
            block_rows,
            rows,
            cols,
            width,
            block_len,
            w: AlignedVec::zeroed(rows.div_ceil(block_rows) * block_len),
        };
        for r in 0..rows {
            for p in 0..cols {
                let at = out.offset(r, p);
                out.w[at] = src[r * ld + p];
            }
        }
        out
    }

    pub fn isa(&self) -> Isa {
        self.isa
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Where row `r`, column `p` is stored (the layout in the module docs).
    fn offset(&self, r: usize, p: usize) -> usize {
        let (block, i) = (r / self.block_rows, r % self.block_rows);
        let h = self.height(block * self.block_rows);
        let body = self.body();
        let within = if p < body {
            (p / self.width) * h * self.width + i * self.width + p % self.width
        } else {
            body * h + i * (self.cols - body) + (p - body)
        };
        block * self.block_len + within
    }

    /// Height of the block that starts at row `r0`.
    fn height(&self, r0: usize) -> usize {
        self.block_rows.min(self.rows - r0)
    }

    /// Columns in whole registers.
    fn body(&self) -> usize {
        self.cols - self.cols % self.width
    }

    /// Row `r`, column `p`.
    pub fn get(&self, r: usize, p: usize) -> f32 {
        assert!(r < self.rows && p < self.cols, "BlockedRows: out of range");
        self.w[self.offset(r, p)]
    }
}

/// `out[r·lanes + l] = Σ_p w(r, p) · x[l·ldx + p]`, on the instruction set
/// `w` was packed for, with the bits of `gemv_on` on that set.
///
/// # Panics
/// If `x` or `out` is shorter than the shape, or the CPU does not run `w`'s
/// instruction set.
pub fn gemv_blocked(w: &BlockedRows, x: &[f32], ldx: usize, lanes: usize, out: &mut [f32]) {
    assert!(ldx >= w.cols, "gemv_blocked: stride below the row length");
    assert!(
        lanes == 0 || x.len() >= (lanes - 1) * ldx + w.cols,
        "gemv_blocked: x too short"
    );
    assert!(out.len() >= w.rows * lanes, "gemv_blocked: out too short");
    let k = GemvBlocked {
        w,
        x,
        ldx,
        lanes,
        out,
    };
    // SAFETY: the shapes were checked; `dispatch` checks the instruction set.
    unsafe { dispatch(w.isa, k) }
}

struct GemvBlocked<'a> {
    w: &'a BlockedRows,
    x: &'a [f32],
    ldx: usize,
    lanes: usize,
    out: &'a mut [f32],
}

impl Kernel for GemvBlocked<'_> {
    type Output = ();

    #[inline(always)]
    unsafe fn run(self, isa: Isa) {
        let GemvBlocked {
            w,
            x,
            ldx,
            lanes,
            out,
        } = self;
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => x86::blocked_avx512(w, x, ldx, lanes, out),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => x86::blocked_avx2_fma(w, x, ldx, lanes, out),
            _ => blocked_portable(w, x, ldx, lanes, out),
        }
    }
}

/// One block's tile: rows `i0..i0+R` of the block starting at `base`, of
/// height `h`. `fetch`: the tile is the first to read these rows, so it
/// prefetches ahead; the tiles of further lanes find them in L1, and their
/// prefetches would only take load slots from a product that is then
/// bound by arithmetic.
#[derive(Clone, Copy)]
struct Tile {
    base: usize,
    h: usize,
    i0: usize,
    fetch: bool,
}

/// Walk `w`'s blocks in the tiles `gemv` uses (eight rows of one lane, four
/// rows by two lanes, then single rows), calling `$tile::<R, L>(w, tile,
/// x, ldx, lanes, out)` with `x` at the tile's first lane and `out` at its
/// first output (its output `(i, j)` at `out[i·lanes + j]`).
macro_rules! blocked_tiles {
    ($tile:ident, $w:expr, $x:expr, $ldx:expr, $lanes:expr, $out:expr) => {{
        let (w, x, ldx, lanes, out): (&BlockedRows, &[f32], usize, usize, &mut [f32]) =
            ($w, $x, $ldx, $lanes, $out);
        let mut r0 = 0;
        while r0 < w.rows {
            let h = w.height(r0);
            let base = (r0 / w.block_rows) * w.block_len;
            let at = |i0: usize, l: usize| Tile {
                base,
                h,
                i0,
                fetch: l == 0,
            };
            let mut i = 0;
            if lanes == 1 && h == BLOCK_ROWS {
                $tile::<8, 1>(w, at(0, 0), x, ldx, lanes, &mut out[r0..]);
                i = BLOCK_ROWS;
            }
            while i + 4 <= h {
                let mut l = 0;
                while l + 2 <= lanes {
                    let o = &mut out[(r0 + i) * lanes + l..];
                    $tile::<4, 2>(w, at(i, l), &x[l * ldx..], ldx, lanes, o);
                    l += 2;
                }
                if l < lanes {
                    let o = &mut out[(r0 + i) * lanes + l..];
                    $tile::<4, 1>(w, at(i, l), &x[l * ldx..], ldx, lanes, o);
                }
                i += 4;
            }
            while i < h {
                for l in 0..lanes {
                    let o = &mut out[(r0 + i) * lanes + l..];
                    $tile::<1, 1>(w, at(i, l), &x[l * ldx..], ldx, lanes, o);
                }
                i += 1;
            }
            r0 += h;
        }
    }};
}

/// The AVX2 kernel's sums in plain Rust, as `gemv_portable` computes them.
///
/// # Panics
/// As [`gemv_blocked`], or if `w` was packed for AVX-512.
pub fn blocked_portable(w: &BlockedRows, x: &[f32], ldx: usize, lanes: usize, out: &mut [f32]) {
    assert_eq!(w.width, 8, "blocked_portable: packed for {:?}", w.isa);
    blocked_tiles!(tile_portable, w, x, ldx, lanes, out)
}

/// Panics unless the tile's weights, lanes and outputs are in the buffers.
#[inline(always)]
fn check_tile<const R: usize, const L: usize>(
    w: &BlockedRows,
    t: Tile,
    x: &[f32],
    ldx: usize,
    lanes: usize,
    out: &[f32],
) {
    assert!(
        t.i0 + R <= t.h && t.base + t.h * w.cols <= w.w.len(),
        "gemv_blocked tile: short weights"
    );
    assert!(
        x.len() >= (L - 1) * ldx + w.cols,
        "gemv_blocked tile: short input"
    );
    assert!(
        out.len() > (R - 1) * lanes + L - 1,
        "gemv_blocked tile: short output"
    );
}

/// Row `t.i0 + i`'s leftover products added to `sum` in order of column.
#[inline(always)]
fn add_tail(w: &BlockedRows, t: Tile, i: usize, x: &[f32], mut sum: f32) -> f32 {
    let (cols, body) = (w.cols, w.body());
    let left = cols - body;
    let tail = &w.w[t.base + body * t.h + (t.i0 + i) * left..][..left];
    for (&wq, &xq) in tail.iter().zip(&x[body..cols]) {
        sum += wq * xq;
    }
    sum
}

/// The AVX2 kernel's sums for one row and lane at a time: the plain loop
/// that `gemv_portable` is, walking a block's chunks.
fn tile_portable<const R: usize, const L: usize>(
    w: &BlockedRows,
    t: Tile,
    x: &[f32],
    ldx: usize,
    lanes: usize,
    out: &mut [f32],
) {
    check_tile::<R, L>(w, t, x, ldx, lanes, out);
    let chunk = t.h * 8;
    for i in 0..R {
        for j in 0..L {
            let xj = &x[j * ldx..];
            let mut acc = [0.0f32; 8];
            for k in 0..w.body() / 8 {
                let wc = &w.w[t.base + k * chunk + (t.i0 + i) * 8..][..8];
                let xc = &xj[k * 8..][..8];
                for q in 0..8 {
                    acc[q] += wc[q] * xc[q];
                }
            }
            out[i * lanes + j] = add_tail(w, t, i, xj, reduce8(acc));
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{add_tail, check_tile, BlockedRows, Tile, BLOCK_ROWS, PREFETCH_AHEAD};
    use crate::cpu::gemv::{x86_reduce as reduce, x86_reduce512 as reduce512};
    use std::arch::x86_64::*;

    /// Values in a cache line.
    const LINE: usize = 16;

    /// # Safety
    /// The CPU must support AVX2 and FMA; the buffers must hold the shape
    /// (as `gemv_blocked` asserts).
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn blocked_avx2_fma(
        w: &BlockedRows,
        x: &[f32],
        ldx: usize,
        lanes: usize,
        out: &mut [f32],
    ) {
        assert_eq!(w.width, 8, "blocked_avx2_fma: packed for {:?}", w.isa);
        blocked_tiles!(tile, w, x, ldx, lanes, out)
    }

    /// Prefetch the lines `PREFETCH_AHEAD` values past `n` values at `p`
    /// (a tile's rows of one chunk), a line at a time. The address may lie
    /// past the buffer: a prefetch never faults, and `wrapping_add` keeps
    /// the pointer arithmetic defined.
    #[inline(always)]
    fn prefetch(p: *const f32, n: usize) {
        let mut k = 0;
        while k < n {
            let at = p.wrapping_add(PREFETCH_AHEAD + k) as *const i8;
            // SAFETY: a prefetch reads nothing architecturally.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(at) };
            k += LINE;
        }
    }

    /// One tile on one register width, written once for both widths:
    /// `R` rows of a block times `L` lanes, a register of `$width` partial
    /// sums each, reduced by `$reduce` to the bits of `gemv`'s tile on the
    /// same instruction set. Single-row AVX2 tiles (the few rows a short
    /// block leaves) read half a line a chunk and do not prefetch.
    macro_rules! blocked_tile {
        ($name:ident, $features:literal, $width:literal, $zero:ident, $loadu:ident,
         $load:ident, $fmadd:ident, $reduce:ident) => {
            #[target_feature(enable = $features)]
            #[inline]
            fn $name<const R: usize, const L: usize>(
                w: &BlockedRows,
                t: Tile,
                x: &[f32],
                ldx: usize,
                lanes: usize,
                out: &mut [f32],
            ) {
                check_tile::<R, L>(w, t, x, ldx, lanes, out);
                let chunk = t.h * $width;
                // The tile's first chunk row; with no whole chunk (`cols`
                // below the width) this may lie past the buffer, and is not read.
                let xp = x.as_ptr();
                let mut wp = w.w.as_ptr().wrapping_add(t.base + t.i0 * $width);
                let mut acc = [[$zero(); L]; R];
                let mut p = 0;
                while p < w.body() {
                    if t.fetch && R * $width >= LINE {
                        prefetch(wp, R * $width);
                    }
                    let mut xv = [$zero(); L];
                    for (j, v) in xv.iter_mut().enumerate() {
                        // SAFETY: j < L and p + width <= cols: inside x's
                        // first L lanes (checked).
                        *v = unsafe { $loadu(xp.add(j * ldx + p)) };
                    }
                    for (i, row) in acc.iter_mut().enumerate() {
                        // SAFETY: row i0 + i < h of a chunk inside the block
                        // (checked); chunk rows are register-aligned.
                        let wv = unsafe { $load(wp.add(i * $width)) };
                        for (a, &xj) in row.iter_mut().zip(&xv) {
                            *a = $fmadd(wv, xj, *a);
                        }
                    }
                    // Past the body this points into the tail or beyond the
                    // block; it is not read there.
                    wp = wp.wrapping_add(chunk);
                    p += $width;
                }
                for (i, row) in acc.iter().enumerate() {
                    for (j, &a) in row.iter().enumerate() {
                        out[i * lanes + j] = add_tail(w, t, i, &x[j * ldx..], $reduce(a));
                    }
                }
            }
        };
    }

    blocked_tile!(
        tile,
        "avx2,fma",
        8,
        _mm256_setzero_ps,
        _mm256_loadu_ps,
        _mm256_load_ps,
        _mm256_fmadd_ps,
        reduce
    );

    /// # Safety
    /// The CPU must support AVX-512F; the buffers must hold the shape (as
    /// `gemv_blocked` asserts).
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub unsafe fn blocked_avx512(
        w: &BlockedRows,
        x: &[f32],
        ldx: usize,
        lanes: usize,
        out: &mut [f32],
    ) {
        assert_eq!(w.width, 16, "blocked_avx512: packed for {:?}", w.isa);
        blocked_tiles!(tile512, w, x, ldx, lanes, out)
    }

    blocked_tile!(
        tile512,
        "avx512f,avx2,fma",
        16,
        _mm512_setzero_ps,
        _mm512_loadu_ps,
        _mm512_load_ps,
        _mm512_fmadd_ps,
        reduce512
    );

    /// The AVX-512 tile's source at width 16 on AVX2 registers
    /// (`gemv::wide16`), over weights packed for AVX-512, held to `dot16`,
    /// the order the AVX-512 instance sums in: the layout's offsets, the
    /// short blocks and rows shorter than a register run on every x86
    /// machine the tests run on. Where AVX-512 is present the real kernel
    /// is held to the same bits.
    #[cfg(test)]
    mod tests {
        use super::super::gemv_blocked;
        use super::*;
        use crate::cpu::aligned::aligned_len;
        use crate::cpu::gemv::wide16::{fmadd16, load16, loadu16, reduce16, zero16};
        use crate::cpu::gemv::{assert_dot16_bits, dot16};
        use crate::cpu::isa::Isa;
        use crate::rng::SplitMix64;

        blocked_tile!(tile16, "avx2,fma", 16, zero16, loadu16, load16, fmadd16, reduce16);

        /// # Safety
        /// The CPU must support AVX2 and FMA; the buffers hold the shape.
        #[target_feature(enable = "avx2,fma")]
        unsafe fn blocked_wide16(
            w: &BlockedRows,
            x: &[f32],
            ldx: usize,
            lanes: usize,
            out: &mut [f32],
        ) {
            assert_eq!(w.width, 16, "blocked_wide16: packed for {:?}", w.isa);
            blocked_tiles!(tile16, w, x, ldx, lanes, out)
        }

        #[test]
        fn the_avx512_blocked_tile_source_sums_in_the_avx512_order() {
            if !Isa::Avx2Fma.supported() {
                eprintln!("skipped: this CPU has no AVX2+FMA to emulate 16 lanes on");
                return;
            }
            let mut rng = SplitMix64::new(43);
            let mut checked = 0;
            let shapes = [
                (8, 2),
                (16, 5),
                (1, 1),
                (3, 16),
                (13, 17),
                (8, 31),
                (37, 33),
                (64, 257),
                (24, 272),
            ];
            for (rows, cols) in shapes {
                let ld = cols + 3;
                let src: Vec<f32> = (0..rows * ld)
                    .map(|_| rng.uniform(-1.0, 1.0) as f32)
                    .collect();
                let w = BlockedRows::pack(Isa::Avx512, rows, cols, &src, ld);
                for lanes in 1..=4 {
                    for ldx in [cols, aligned_len(cols)] {
                        let x: Vec<f32> = (0..lanes * ldx)
                            .map(|_| rng.uniform(-1.0, 1.0) as f32)
                            .collect();
                        let mut out = vec![f32::NAN; rows * lanes];
                        // SAFETY: AVX2+FMA checked above; the shapes fit.
                        unsafe { blocked_wide16(&w, &x, ldx, lanes, &mut out) };
                        let real = Isa::Avx512.supported().then(|| {
                            let mut real = vec![f32::NAN; rows * lanes];
                            gemv_blocked(&w, &x, ldx, lanes, &mut real);
                            real
                        });
                        let what = format!("{rows}x{cols}, {lanes} lanes, ldx {ldx}");
                        checked +=
                            assert_dot16_bits(&what, &out, real.as_deref(), lanes, |r, l| {
                                dot16(&src[r * ld..r * ld + cols], &x[l * ldx..l * ldx + cols])
                            });
                    }
                }
            }
            assert!(checked > 1000);
        }
    }
}
