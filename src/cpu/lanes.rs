//! Products on matrices stored *lanes last*: `[features, BP]`, one lane per
//! batch row, `BP` the batch rounded up as [`padded_for`] says (whole
//! vectors, or half ones on AVX2). A small model's step (the seed
//! preset's: batch 100, widths 3 to 400) is a chain of small products; in
//! this layout each of them streams whole rows of lanes through vector
//! registers, with the weights read in place (PyTorch's `[out, in]`
//! row-major layout, broadcast one value at a time), so no operand is ever
//! packed or transposed.
//!
//! The three products of a dense layer `Y = W·X` (`W[n, k]`, `X[k, ·]`):
//! - [`mul_lanes`] with `W` as is: `Y = W·X` (forward);
//! - [`mul_lanes`] with `W` read transposed: `dX = Wᵀ·dY` (backward, data);
//! - [`dot_lanes`]: `dW = dY·Xᵀ`, dot products along the lanes (backward,
//!   weights), and [`sum_lanes`] for the bias.
//!
//! Every output is the same chain of operations whichever block computes
//! it, so splitting the rows between threads changes no bit. With AVX-512 or
//! AVX2 the multiply-adds are fused (one rounding), so results differ in
//! the last bits between machines, never between runs.

use super::isa::{dispatch, Isa, Kernel};

/// Lanes of one vector register (`f32` in AVX-512).
pub const LANES: usize = 16;

/// The kernels take any `BP` that is a multiple of this: half a vector,
/// one AVX2 register. They run whole vectors and then, where `BP` ends in
/// the middle of one, a half. A half computes what a whole vector with
/// zeros in its upper half would, bit for bit (`fma(0, 0, s) = s`), so no
/// result depends on the padding.
pub const GRAIN: usize = LANES / 2;

/// `b` rounded up to whole [`GRAIN`]s: the least `BP` the kernels take.
pub fn padded(b: usize) -> usize {
    b.div_ceil(GRAIN) * GRAIN
}

/// The `BP` a batch of `b` is best run at on `isa`. On AVX2 a half vector
/// is a whole register, so a batch ending in one skips the upper half (the
/// seed preset's second part, 52 rows: 56 lanes, not 64). Elsewhere whole
/// vectors: a 64-byte register gains nothing from a half, and rows of a
/// half vector more would start in the middle of a cache line.
pub fn padded_for(isa: Isa, b: usize) -> usize {
    match isa {
        Isa::Avx2Fma => padded(b),
        _ => b.div_ceil(LANES) * LANES,
    }
}

/// A matrix read row by row from a flat buffer: element `(r, p)` at
/// `data[r·row_stride + p·col_stride]`.
#[derive(Clone, Copy)]
pub struct Strided<'a> {
    pub data: &'a [f32],
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> Strided<'a> {
    /// `W[n, k]` row-major, read as is: `(r, p) = W[r, p]`.
    pub fn rows(w: &'a [f32], k: usize) -> Self {
        Strided {
            data: w,
            row_stride: k,
            col_stride: 1,
        }
    }

    /// `W[n, k]` row-major, read transposed: `(r, p) = W[p, r]`.
    pub fn transposed(w: &'a [f32], k: usize) -> Self {
        Strided {
            data: w,
            row_stride: 1,
            col_stride: k,
        }
    }

    fn end(&self, rows: usize, depth: usize) -> usize {
        if rows == 0 || depth == 0 {
            0
        } else {
            (rows - 1) * self.row_stride + (depth - 1) * self.col_stride + 1
        }
    }
}

/// Rows of `out` computed together: each lane vector of `x` loaded once
/// serves this many rows.
const ROWS: usize = 6;
/// Lane vectors computed together (6 × 4 accumulators of 16 lanes fill 24 of
/// AVX-512's 32 registers).
const VECS: usize = 4;

/// `out[r, ·] = (accumulate ? out[r, ·] : 0) + Σ_p a(r, p) · x[p, ·]` for
/// rows `r` in `rows`, over `bp` lanes; `x` is `[depth, bp]`, `out` `[·, bp]`
/// (row `r` at `out[r·bp..]`). Compiled for `isa`, which the CPU must run.
#[allow(clippy::too_many_arguments)]
pub fn mul_lanes(
    isa: Isa,
    a: Strided<'_>,
    rows: std::ops::Range<usize>,
    depth: usize,
    x: &[f32],
    bp: usize,
    out: &mut [f32],
    accumulate: bool,
) {
    assert!(bp.is_multiple_of(GRAIN), "mul_lanes: lanes not padded");
    assert!(
        a.data.len() >= a.end(rows.end, depth),
        "mul_lanes: a too short"
    );
    assert!(x.len() >= depth * bp, "mul_lanes: x too short");
    assert!(out.len() >= rows.end * bp, "mul_lanes: out too short");
    // SAFETY: the asserts above bound every index the kernels form;
    // `dispatch` checks that the CPU runs the instruction set.
    unsafe {
        dispatch(
            isa,
            MulLanes {
                a,
                rows,
                depth,
                x,
                bp,
                out,
                accumulate,
            },
        )
    }
}

struct MulLanes<'a> {
    a: Strided<'a>,
    rows: std::ops::Range<usize>,
    depth: usize,
    x: &'a [f32],
    bp: usize,
    out: &'a mut [f32],
    accumulate: bool,
}

/// AVX-512 or AVX2 intrinsics for the blocks, else the plain loop.
impl Kernel for MulLanes<'_> {
    type Output = ();

    #[inline(always)]
    unsafe fn run(self, isa: Isa) {
        let MulLanes {
            a,
            rows,
            depth,
            x,
            bp,
            out,
            accumulate,
        } = self;
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => mul_lanes_impl::<x86::Avx512>(a, rows, depth, x, bp, out, accumulate),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => mul_lanes_impl::<x86::Avx2>(a, rows, depth, x, bp, out, accumulate),
            _ => mul_lanes_impl::<Plain<false>>(a, rows, depth, x, bp, out, accumulate),
        }
    }
}

/// `out[n·ld + k] = (accumulate ? out[n·ld + k] : 0) + Σ_l y[n, l] · x[k, l]`
/// for `n` in `rows` and `k < cols`: `y` is `[·, bp]`, `x` `[cols, bp]`.
/// Compiled for `isa`, which the CPU must run.
#[allow(clippy::too_many_arguments)]
pub fn dot_lanes(
    isa: Isa,
    y: &[f32],
    rows: std::ops::Range<usize>,
    x: &[f32],
    cols: usize,
    bp: usize,
    out: &mut [f32],
    ld: usize,
    accumulate: bool,
) {
    assert!(bp.is_multiple_of(GRAIN), "dot_lanes: lanes not padded");
    assert!(y.len() >= rows.end * bp, "dot_lanes: y too short");
    assert!(x.len() >= cols * bp, "dot_lanes: x too short");
    assert!(cols <= ld, "dot_lanes: leading dimension");
    assert!(
        rows.is_empty() || out.len() >= (rows.end - 1) * ld + cols,
        "dot_lanes: out too short"
    );
    // SAFETY: as in `mul_lanes`.
    unsafe {
        dispatch(
            isa,
            DotLanes {
                y,
                rows,
                x,
                cols,
                bp,
                out,
                ld,
                accumulate,
            },
        )
    }
}

struct DotLanes<'a> {
    y: &'a [f32],
    rows: std::ops::Range<usize>,
    x: &'a [f32],
    cols: usize,
    bp: usize,
    out: &'a mut [f32],
    ld: usize,
    accumulate: bool,
}

/// Every block in AVX-512 or AVX2 intrinsics where the CPU has them, the
/// plain loop on the portable set.
impl Kernel for DotLanes<'_> {
    type Output = ();

    #[inline(always)]
    unsafe fn run(self, isa: Isa) {
        let DotLanes {
            y,
            rows,
            x,
            cols,
            bp,
            out,
            ld,
            accumulate,
        } = self;
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => dot_lanes_impl::<x86::Avx512>(y, rows, x, cols, bp, out, ld, accumulate),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => dot_lanes_impl::<x86::Avx2>(y, rows, x, cols, bp, out, ld, accumulate),
            _ => dot_lanes_impl::<Plain<false>>(y, rows, x, cols, bp, out, ld, accumulate),
        }
    }
}

/// `out[r] = Σ_l y[r, l]` for `r` in `rows` (the bias gradient).
#[inline(always)]
pub fn sum_lanes(y: &[f32], rows: std::ops::Range<usize>, bp: usize, out: &mut [f32]) {
    for r in rows {
        let mut acc = [0.0f32; LANES];
        let mut vecs = y[r * bp..(r + 1) * bp].chunks_exact(LANES);
        for v in &mut vecs {
            for (a, &x) in acc.iter_mut().zip(v) {
                *a += x;
            }
        }
        // A half vector: its upper lanes add nothing. (In whole halves, so
        // the compiler knows the length: a remainder of unknown length
        // became masked stores.)
        for half in vecs.remainder().chunks_exact(GRAIN) {
            for (a, &x) in acc.iter_mut().zip(half) {
                *a += x;
            }
        }
        out[r] = hsum(acc);
    }
}

/// `dst[f, l] = src[l·features + f]` for `l < b`, zero for `b ≤ l < bp`:
/// a `[b, features]` row-major matrix into lanes-last form.
#[inline]
pub fn to_lanes(src: &[f32], b: usize, features: usize, bp: usize, dst: &mut [f32]) {
    for f in 0..features {
        let row = &mut dst[f * bp..(f + 1) * bp];
        for (l, v) in row[..b].iter_mut().enumerate() {
            *v = src[l * features + f];
        }
        row[b..].fill(0.0);
    }
}

/// `dst[l·features + f] = src[f, l]` for `l < b`: back to row-major `[b, features]`.
#[inline]
pub fn from_lanes(src: &[f32], b: usize, features: usize, bp: usize, dst: &mut [f32]) {
    for f in 0..features {
        for (l, &v) in src[f * bp..f * bp + b].iter().enumerate() {
            dst[l * features + f] = v;
        }
    }
}

/// The lanes of a vector summed in a fixed tree order.
#[inline(always)]
fn hsum(mut v: [f32; LANES]) -> f32 {
    let mut width = LANES / 2;
    while width > 0 {
        for l in 0..width {
            v[l] += v[l + width];
        }
        width /= 2;
    }
    v[0]
}

#[inline(always)]
fn fma<const FUSED: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FUSED {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// The rows in blocks of [`ROWS`] and the lanes in blocks of [`VECS`]
/// vectors, the last of each smaller. A block's size is a constant of its
/// kernel (the accumulators must be registers), so each of the 6 × 4 sizes
/// is its own instance, chosen by the match below.
///
/// # Safety
/// As checked by [`mul_lanes`]; `K` only on an instruction set the CPU runs.
#[inline(always)]
unsafe fn mul_lanes_impl<K: MulBlock>(
    a: Strided<'_>,
    rows: std::ops::Range<usize>,
    depth: usize,
    x: &[f32],
    bp: usize,
    out: &mut [f32],
    accumulate: bool,
) {
    let mut r = rows.start;
    while r < rows.end {
        let nr = ROWS.min(rows.end - r);
        let mut v = 0;
        // Rows `r..r + nr` of `nv` vectors from `v`, `w` lanes each.
        macro_rules! block {
            ($nv:literal, $w:expr) => {
                match nr {
                    1 => K::block::<1, $nv, $w>(a, r, depth, x, bp, v, out, accumulate),
                    2 => K::block::<2, $nv, $w>(a, r, depth, x, bp, v, out, accumulate),
                    3 => K::block::<3, $nv, $w>(a, r, depth, x, bp, v, out, accumulate),
                    4 => K::block::<4, $nv, $w>(a, r, depth, x, bp, v, out, accumulate),
                    5 => K::block::<5, $nv, $w>(a, r, depth, x, bp, v, out, accumulate),
                    _ => K::block::<ROWS, $nv, $w>(a, r, depth, x, bp, v, out, accumulate),
                }
            };
        }
        while v < bp / LANES {
            let nv = VECS.min(bp / LANES - v);
            match nv {
                1 => block!(1, LANES),
                2 => block!(2, LANES),
                3 => block!(3, LANES),
                4 => block!(4, LANES),
                _ => unreachable!(),
            }
            v += nv;
        }
        if v * LANES < bp {
            block!(1, GRAIN);
        }
        r += nr;
    }
}

/// One block of [`mul_lanes`] on one instruction set: rows `r0..r0+R`,
/// lane vectors `v0..v0+V`, the first `W` lanes of each (all [`LANES`], or
/// a [`GRAIN`] for the last half vector, with `V = 1`), as [`mul_block`]
/// computes it.
trait MulBlock {
    #[allow(clippy::too_many_arguments)]
    unsafe fn block<const R: usize, const V: usize, const W: usize>(
        a: Strided<'_>,
        r0: usize,
        depth: usize,
        x: &[f32],
        bp: usize,
        v0: usize,
        out: &mut [f32],
        accumulate: bool,
    );
}

/// [`mul_block`] in plain Rust, for the compiler to vectorize (unfused: the
/// portable set; the others have intrinsic blocks).
struct Plain<const FUSED: bool>;

impl<const FUSED: bool> MulBlock for Plain<FUSED> {
    #[inline(always)]
    unsafe fn block<const R: usize, const V: usize, const W: usize>(
        a: Strided<'_>,
        r0: usize,
        depth: usize,
        x: &[f32],
        bp: usize,
        v0: usize,
        out: &mut [f32],
        accumulate: bool,
    ) {
        mul_block::<FUSED, R, V, W>(a, r0, depth, x, bp, v0, out, accumulate)
    }
}

/// Rows `r0..r0+R`, lane vectors `v0..v0+V`: `R·V` accumulators of the
/// first `W` lanes of a vector (all [`LANES`], or a [`GRAIN`]), kept in
/// registers over the whole depth.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn mul_block<const FUSED: bool, const R: usize, const V: usize, const W: usize>(
    a: Strided<'_>,
    r0: usize,
    depth: usize,
    x: &[f32],
    bp: usize,
    v0: usize,
    out: &mut [f32],
    accumulate: bool,
) {
    let (ap, xp, op) = (a.data.as_ptr(), x.as_ptr(), out.as_mut_ptr());
    let mut acc = [[[0.0f32; W]; V]; R];
    if accumulate {
        for (i, row) in acc.iter_mut().enumerate() {
            for (j, vec) in row.iter_mut().enumerate() {
                let o = op.add((r0 + i) * bp + (v0 + j) * LANES);
                vec.copy_from_slice(std::slice::from_raw_parts(o, W));
            }
        }
    }
    for p in 0..depth {
        let mut xv = [[0.0f32; W]; V];
        for (j, vec) in xv.iter_mut().enumerate() {
            vec.copy_from_slice(std::slice::from_raw_parts(
                xp.add(p * bp + (v0 + j) * LANES),
                W,
            ));
        }
        for (i, row) in acc.iter_mut().enumerate() {
            let w = *ap.add((r0 + i) * a.row_stride + p * a.col_stride);
            for (vec, xs) in row.iter_mut().zip(&xv) {
                for (c, &xl) in vec.iter_mut().zip(xs) {
                    *c = fma::<FUSED>(w, xl, *c);
                }
            }
        }
    }
    for (i, row) in acc.iter().enumerate() {
        for (j, vec) in row.iter().enumerate() {
            let o = op.add((r0 + i) * bp + (v0 + j) * LANES);
            std::slice::from_raw_parts_mut(o, W).copy_from_slice(vec);
        }
    }
}

/// Output rows and columns of one block of dot products: 4 × 4
/// accumulators, each lane vector of `y` and `x` loaded once per block.
const DOT: usize = 4;

/// Where one block of dot products reads and writes: rows `n0..` of `y`
/// and rows `k0..` of `x` (both `[·, bp]`), sums stored at `out[n·ld + k]`,
/// or added to what is there when `accumulate`. Pointers into the slices
/// [`dot_lanes`] checked.
#[derive(Clone, Copy)]
struct DotAt {
    y: *const f32,
    n0: usize,
    x: *const f32,
    k0: usize,
    bp: usize,
    out: *mut f32,
    ld: usize,
    accumulate: bool,
}

impl DotAt {
    /// The fields in declaration order, for the kernels' own names.
    #[inline(always)]
    #[allow(clippy::type_complexity)]
    fn parts(
        self,
    ) -> (
        *const f32,
        usize,
        *const f32,
        usize,
        usize,
        *mut f32,
        usize,
        bool,
    ) {
        let DotAt {
            y,
            n0,
            x,
            k0,
            bp,
            out,
            ld,
            accumulate,
        } = self;
        (y, n0, x, k0, bp, out, ld, accumulate)
    }
}

/// An `N × K` block of dot products (`N, K ≤ DOT`) for one instruction set,
/// with the results of [`dot_block`] bit for bit.
trait DotBlock {
    /// # Safety
    /// As [`dot_block`]; only on an instruction set the CPU runs.
    unsafe fn block<const N: usize, const K: usize>(at: DotAt);
}

impl<const FUSED: bool> DotBlock for Plain<FUSED> {
    #[inline(always)]
    unsafe fn block<const N: usize, const K: usize>(at: DotAt) {
        dot_block::<FUSED, N, K>(at)
    }
}

/// The outputs in blocks of [`DOT`] × [`DOT`], the last of each smaller;
/// each size is its own instance of `D`'s block (its accumulators must be
/// registers).
///
/// # Safety
/// As checked by [`dot_lanes`]; `D` only on an instruction set the CPU runs.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn dot_lanes_impl<D: DotBlock>(
    y: &[f32],
    rows: std::ops::Range<usize>,
    x: &[f32],
    cols: usize,
    bp: usize,
    out: &mut [f32],
    ld: usize,
    accumulate: bool,
) {
    let mut n = rows.start;
    while n < rows.end {
        let nn = DOT.min(rows.end - n);
        let mut k = 0;
        while k < cols {
            let nk = DOT.min(cols - k);
            let at = DotAt {
                y: y.as_ptr(),
                n0: n,
                x: x.as_ptr(),
                k0: k,
                bp,
                out: out.as_mut_ptr(),
                ld,
                accumulate,
            };
            macro_rules! block {
                ($($r:literal),*) => {
                    match nn {
                        $(
                            $r => match nk {
                                1 => D::block::<$r, 1>(at),
                                2 => D::block::<$r, 2>(at),
                                3 => D::block::<$r, 3>(at),
                                _ => D::block::<$r, DOT>(at),
                            },
                        )*
                        _ => unreachable!(),
                    }
                };
            }
            block!(1, 2, 3, 4);
            k += nk;
        }
        n += nn;
    }
}

/// The plain block: `N·K` accumulators of [`LANES`] lanes, each product's
/// lanes summed in [`hsum`]'s order; a last half vector adds to the lower
/// half of the accumulators only. (The compiler's vectorization of this
/// loop is fragile: inlined into the lanes kernels' wrapper it computed
/// every lane with its own scalar multiply-add, through the stack, which
/// is why the vector sets have blocks of their own.)
#[inline(always)]
unsafe fn dot_block<const FUSED: bool, const N: usize, const K: usize>(at: DotAt) {
    let (_, n0, _, k0, bp, op, ld, accumulate) = at.parts();
    let mut acc = [[[0.0f32; LANES]; K]; N];
    for v in 0..bp / LANES {
        dot_step::<FUSED, N, K, LANES>(&mut acc, at, v * LANES);
    }
    if !bp.is_multiple_of(LANES) {
        dot_step::<FUSED, N, K, GRAIN>(&mut acc, at, bp - GRAIN);
    }
    for (i, row) in acc.iter().enumerate() {
        for (j, vec) in row.iter().enumerate() {
            let o = op.add((n0 + i) * ld + k0 + j);
            let s = hsum(*vec);
            *o = if accumulate { *o + s } else { s };
        }
    }
}

/// Lanes `l0..l0+W` of [`dot_block`]'s products into the first `W` lanes of
/// its accumulators.
#[inline(always)]
unsafe fn dot_step<const FUSED: bool, const N: usize, const K: usize, const W: usize>(
    acc: &mut [[[f32; LANES]; K]; N],
    at: DotAt,
    l0: usize,
) {
    let (yp, n0, xp, k0, bp, ..) = at.parts();
    let mut xv = [[0.0f32; W]; K];
    for (j, vec) in xv.iter_mut().enumerate() {
        vec.copy_from_slice(std::slice::from_raw_parts(xp.add((k0 + j) * bp + l0), W));
    }
    for (i, row) in acc.iter_mut().enumerate() {
        let yv = std::slice::from_raw_parts(yp.add((n0 + i) * bp + l0), W);
        for (vec, xs) in row.iter_mut().zip(&xv) {
            for ((c, &xl), &yl) in vec.iter_mut().zip(xs).zip(yv) {
                *c = fma::<FUSED>(yl, xl, *c);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{hsum, DotAt, DotBlock, MulBlock, Strided, DOT, GRAIN, LANES};
    use std::arch::x86_64::*;

    /// [`super::mul_block`] in AVX2 intrinsics. A lane vector is two
    /// registers here, and AVX2 has 16: the block is run one lane vector at
    /// a time, all its rows together (at most 6 × 2 accumulators, two loads
    /// of `x` and one broadcast per row and `p`). Every output is the same
    /// chain of fused multiply-adds as in the AVX-512 block: the same bits.
    pub struct Avx2;

    impl MulBlock for Avx2 {
        #[inline(always)]
        unsafe fn block<const R: usize, const V: usize, const W: usize>(
            a: Strided<'_>,
            r0: usize,
            depth: usize,
            x: &[f32],
            bp: usize,
            v0: usize,
            out: &mut [f32],
            accumulate: bool,
        ) {
            for j in 0..V {
                if W == LANES {
                    mul_block_avx2::<R, 2>(a, r0, depth, x, bp, v0 + j, out, accumulate)
                } else {
                    mul_block_avx2::<R, 1>(a, r0, depth, x, bp, v0 + j, out, accumulate)
                }
            }
        }
    }

    /// Rows `r0..r0+R` of lane vector `v`, its first `REGS` registers (2:
    /// the whole vector, 1: its lower half).
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn mul_block_avx2<const R: usize, const REGS: usize>(
        a: Strided<'_>,
        r0: usize,
        depth: usize,
        x: &[f32],
        bp: usize,
        v: usize,
        out: &mut [f32],
        accumulate: bool,
    ) {
        let (ap, xp, op) = (a.data.as_ptr(), x.as_ptr(), out.as_mut_ptr());
        let at = |i: usize| (r0 + i) * bp + v * LANES;
        let mut acc = [[_mm256_setzero_ps(); REGS]; R];
        if accumulate {
            for (i, row) in acc.iter_mut().enumerate() {
                for (h, reg) in row.iter_mut().enumerate() {
                    *reg = _mm256_loadu_ps(op.add(at(i) + h * GRAIN));
                }
            }
        }
        for p in 0..depth {
            let xq = xp.add(p * bp + v * LANES);
            let xv: [__m256; REGS] = std::array::from_fn(|h| _mm256_loadu_ps(xq.add(h * GRAIN)));
            for (i, row) in acc.iter_mut().enumerate() {
                let w = _mm256_broadcast_ss(&*ap.add((r0 + i) * a.row_stride + p * a.col_stride));
                for (reg, &xh) in row.iter_mut().zip(&xv) {
                    *reg = _mm256_fmadd_ps(w, xh, *reg);
                }
            }
        }
        for (i, row) in acc.iter().enumerate() {
            for (h, &reg) in row.iter().enumerate() {
                _mm256_storeu_ps(op.add(at(i) + h * GRAIN), reg);
            }
        }
    }

    impl DotBlock for Avx2 {
        #[inline(always)]
        unsafe fn block<const N: usize, const K: usize>(at: DotAt) {
            // In quarters of at most 2 × 2 products: eight accumulators (a
            // dot product's 16 lane sums are two registers).
            for ni in (0..N).step_by(2) {
                for kj in (0..K).step_by(2) {
                    let at = DotAt {
                        n0: at.n0 + ni,
                        k0: at.k0 + kj,
                        ..at
                    };
                    match (N - ni >= 2, K - kj >= 2) {
                        (true, true) => dot_quarter_avx2::<2, 2>(at),
                        (true, false) => dot_quarter_avx2::<2, 1>(at),
                        (false, true) => dot_quarter_avx2::<1, 2>(at),
                        (false, false) => dot_quarter_avx2::<1, 1>(at),
                    }
                }
            }
        }
    }

    /// [`super::dot_block`] for an `N × K` block (`N, K ≤ 2`) in AVX2. Each
    /// product's lanes are summed in [`super::hsum`]'s order, so the results
    /// are those of the AVX-512 blocks, bit for bit.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot_quarter_avx2<const N: usize, const K: usize>(at: DotAt) {
        let (yp, n0, xp, k0, bp, op, ld, accumulate) = at.parts();
        let mut acc = [[[_mm256_setzero_ps(); 2]; K]; N];
        for v in 0..bp / LANES {
            let load = |p: *const f32, row: usize| {
                let q = p.add(row * bp + v * LANES);
                [_mm256_loadu_ps(q), _mm256_loadu_ps(q.add(8))]
            };
            let xv: [[__m256; 2]; K] = std::array::from_fn(|j| load(xp, k0 + j));
            for (i, row) in acc.iter_mut().enumerate() {
                let yv = load(yp, n0 + i);
                for (prod, xj) in row.iter_mut().zip(&xv) {
                    prod[0] = _mm256_fmadd_ps(yv[0], xj[0], prod[0]);
                    prod[1] = _mm256_fmadd_ps(yv[1], xj[1], prod[1]);
                }
            }
        }
        if !bp.is_multiple_of(LANES) {
            // The last half vector: the lower registers only.
            let load = |p: *const f32, row: usize| _mm256_loadu_ps(p.add((row + 1) * bp - GRAIN));
            let xv: [__m256; K] = std::array::from_fn(|j| load(xp, k0 + j));
            for (i, row) in acc.iter_mut().enumerate() {
                let yv = load(yp, n0 + i);
                for (prod, &xj) in row.iter_mut().zip(&xv) {
                    prod[0] = _mm256_fmadd_ps(yv, xj, prod[0]);
                }
            }
        }
        for (i, row) in acc.iter().enumerate() {
            for (j, prod) in row.iter().enumerate() {
                let o = op.add((n0 + i) * ld + k0 + j);
                let s = hsum16(prod[0], prod[1]);
                *o = if accumulate { *o + s } else { s };
            }
        }
    }

    /// [`super::hsum`] of lanes `lo ++ hi`: halves, quarters, pairs, last pair.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn hsum16(lo: __m256, hi: __m256) -> f32 {
        let h = _mm256_add_ps(lo, hi);
        let q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps::<1>(h));
        let d = _mm_add_ps(q, _mm_movehl_ps(q, q));
        _mm_cvtss_f32(_mm_add_ss(d, _mm_shuffle_ps::<0b01>(d, d)))
    }

    /// [`super::mul_block`] in AVX-512 intrinsics: the compiler's own
    /// vectorization of the plain loop spills accumulators to the stack.
    pub struct Avx512;

    impl MulBlock for Avx512 {
        /// A half vector is one AVX2 register, which every AVX-512 CPU has.
        #[inline(always)]
        unsafe fn block<const R: usize, const V: usize, const W: usize>(
            a: Strided<'_>,
            r0: usize,
            depth: usize,
            x: &[f32],
            bp: usize,
            v0: usize,
            out: &mut [f32],
            accumulate: bool,
        ) {
            if W == LANES {
                mul_block_avx512::<R, V>(a, r0, depth, x, bp, v0, out, accumulate)
            } else {
                <Avx2 as MulBlock>::block::<R, V, W>(a, r0, depth, x, bp, v0, out, accumulate)
            }
        }
    }

    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn mul_block_avx512<const R: usize, const V: usize>(
        a: Strided<'_>,
        r0: usize,
        depth: usize,
        x: &[f32],
        bp: usize,
        v0: usize,
        out: &mut [f32],
        accumulate: bool,
    ) {
        let (ap, xp, op) = (a.data.as_ptr(), x.as_ptr(), out.as_mut_ptr());
        let at = |i: usize, j: usize| (r0 + i) * bp + (v0 + j) * LANES;
        let mut acc = [[_mm512_setzero_ps(); V]; R];
        if accumulate {
            for (i, row) in acc.iter_mut().enumerate() {
                for (j, vec) in row.iter_mut().enumerate() {
                    *vec = _mm512_loadu_ps(op.add(at(i, j)));
                }
            }
        }
        for p in 0..depth {
            let xv: [__m512; V] =
                std::array::from_fn(|j| _mm512_loadu_ps(xp.add(p * bp + (v0 + j) * LANES)));
            for (i, row) in acc.iter_mut().enumerate() {
                let w = _mm512_set1_ps(*ap.add((r0 + i) * a.row_stride + p * a.col_stride));
                for (vec, &xj) in row.iter_mut().zip(&xv) {
                    *vec = _mm512_fmadd_ps(w, xj, *vec);
                }
            }
        }
        for (i, row) in acc.iter().enumerate() {
            for (j, &vec) in row.iter().enumerate() {
                _mm512_storeu_ps(op.add(at(i, j)), vec);
            }
        }
    }

    /// Lane vector `v` of `row` of a `[·, bp]` matrix; with `HALF`, its
    /// lower half and zeros above (the upper half is not read).
    #[inline(always)]
    unsafe fn load_vec<const HALF: bool>(p: *const f32, row: usize, bp: usize, v: usize) -> __m512 {
        let q = p.add(row * bp + v * LANES);
        if HALF {
            _mm512_maskz_loadu_ps((1 << GRAIN) - 1, q)
        } else {
            _mm512_loadu_ps(q)
        }
    }

    impl DotBlock for Avx512 {
        #[inline(always)]
        unsafe fn block<const N: usize, const K: usize>(at: DotAt) {
            if N == DOT && K == DOT {
                dot_block_4x4(at)
            } else {
                dot_edge_avx512::<N, K>(at)
            }
        }
    }

    /// [`super::dot_block`] for a block at the edge of the grid (fewer than
    /// 4 rows or columns) in AVX-512: the products in registers, each one's
    /// lanes then summed by [`hsum`] itself (few enough here not to matter).
    #[target_feature(enable = "avx512f")]
    unsafe fn dot_edge_avx512<const N: usize, const K: usize>(at: DotAt) {
        let (_, n0, _, k0, bp, op, ld, accumulate) = at.parts();
        let mut acc = [[_mm512_setzero_ps(); K]; N];
        #[inline(always)]
        unsafe fn step<const N: usize, const K: usize, const HALF: bool>(
            acc: &mut [[__m512; K]; N],
            at: DotAt,
            v: usize,
        ) {
            let (yp, n0, xp, k0, bp, ..) = at.parts();
            let xv: [__m512; K] = std::array::from_fn(|j| load_vec::<HALF>(xp, k0 + j, bp, v));
            for (i, row) in acc.iter_mut().enumerate() {
                let yv = load_vec::<HALF>(yp, n0 + i, bp, v);
                for (prod, &xj) in row.iter_mut().zip(&xv) {
                    *prod = _mm512_fmadd_ps(yv, xj, *prod);
                }
            }
        }
        for v in 0..bp / LANES {
            step::<N, K, false>(&mut acc, at, v);
        }
        if !bp.is_multiple_of(LANES) {
            step::<N, K, true>(&mut acc, at, bp / LANES);
        }
        for (i, row) in acc.iter().enumerate() {
            for (j, &prod) in row.iter().enumerate() {
                let mut lanes = [0.0f32; LANES];
                _mm512_storeu_ps(lanes.as_mut_ptr(), prod);
                let o = op.add((n0 + i) * ld + k0 + j);
                let s = hsum(lanes);
                *o = if accumulate { *o + s } else { s };
            }
        }
    }

    /// [`super::dot_block`] for a whole 4 × 4 block in AVX-512. Sixteen
    /// dot products end as sixteen vectors of partial sums; summing each
    /// vector across its lanes apart would cost more than the products at
    /// the seed preset's 48 and 64 lanes, so [`sum_across`] adds all sixteen at
    /// once, halving the lanes of every vector per level (15 additions).
    #[target_feature(enable = "avx512f")]
    unsafe fn dot_block_4x4(at: DotAt) {
        let (_, n0, _, k0, bp, op, ld, accumulate) = at.parts();
        // Accumulator 4·j + i: row n0 + i, column k0 + j (see sum_across).
        let mut acc = [_mm512_setzero_ps(); DOT * DOT];
        #[inline(always)]
        unsafe fn step<const HALF: bool>(acc: &mut [__m512; DOT * DOT], at: DotAt, v: usize) {
            let (yp, n0, xp, k0, bp, ..) = at.parts();
            let xv: [__m512; DOT] = std::array::from_fn(|j| load_vec::<HALF>(xp, k0 + j, bp, v));
            for i in 0..DOT {
                let yv = load_vec::<HALF>(yp, n0 + i, bp, v);
                for (j, &xj) in xv.iter().enumerate() {
                    acc[DOT * j + i] = _mm512_fmadd_ps(yv, xj, acc[DOT * j + i]);
                }
            }
        }
        for v in 0..bp / LANES {
            step::<false>(&mut acc, at, v);
        }
        if !bp.is_multiple_of(LANES) {
            step::<true>(&mut acc, at, bp / LANES);
        }
        let sums = sum_across(&acc);
        let rows = [
            _mm512_extractf32x4_ps::<0>(sums),
            _mm512_extractf32x4_ps::<1>(sums),
            _mm512_extractf32x4_ps::<2>(sums),
            _mm512_extractf32x4_ps::<3>(sums),
        ];
        for (i, &row) in rows.iter().enumerate() {
            let o = op.add((n0 + i) * ld + k0);
            let row = if accumulate {
                _mm_add_ps(_mm_loadu_ps(o), row)
            } else {
                row
            };
            _mm_storeu_ps(o, row);
        }
    }

    /// Lane `4q + s` of the result is the sum of all lanes of `a[4s + q]`.
    /// Levels 1 and 2 fold 128-bit quarters, levels 3 and 4 lanes within a
    /// quarter; each level pairs up vectors so that no addition is wasted.
    #[target_feature(enable = "avx512f")]
    unsafe fn sum_across(a: &[__m512; 16]) -> __m512 {
        // Quarters [a.q0+a.q2, a.q1+a.q3, b.q0+b.q2, b.q1+b.q3].
        let c: [__m512; 8] = std::array::from_fn(|m| {
            let (a, b) = (a[2 * m], a[2 * m + 1]);
            _mm512_add_ps(
                _mm512_shuffle_f32x4::<0x44>(a, b),
                _mm512_shuffle_f32x4::<0xEE>(a, b),
            )
        });
        // Quarter q: 4 partial sums of a[4p + q].
        let e: [__m512; 4] = std::array::from_fn(|p| {
            let (c, d) = (c[2 * p], c[2 * p + 1]);
            _mm512_add_ps(
                _mm512_shuffle_f32x4::<0x88>(c, d),
                _mm512_shuffle_f32x4::<0xDD>(c, d),
            )
        });
        // Per quarter: 2 partial sums of each of two vectors.
        let g: [__m512; 2] = std::array::from_fn(|p| {
            let (e, f) = (e[2 * p], e[2 * p + 1]);
            _mm512_add_ps(
                _mm512_shuffle_ps::<0x44>(e, f),
                _mm512_shuffle_ps::<0xEE>(e, f),
            )
        });
        _mm512_add_ps(
            _mm512_shuffle_ps::<0x88>(g[0], g[1]),
            _mm512_shuffle_ps::<0xDD>(g[0], g[1]),
        )
    }
}
