//! Rows of a weight matrix times a few lanes' vectors, the product a
//! free-running step spends its time in:
//!
//! ```text
//! out[r·lanes + l] = Σ_p w[r·cols + p] · x[l·cols + p]
//! ```
//!
//! `w[rows, cols]` is stored as PyTorch stores a weight, `x[lanes, cols]`
//! holds one vector per lane (take), and `out[rows, lanes]` keeps a row's
//! lanes together, so whoever owns a range of rows owns a contiguous range
//! of `out`.
//!
//! With one to eight lanes this is a matrix-vector product (or a very thin
//! matrix product): every weight is used `lanes` times per call, so the
//! speed is that of streaming `w` through the core. The fast twin therefore
//! reads each weight vector once per tile and multiplies it into every lane
//! of the tile while it sits in a register, and keeps enough independent
//! running sums to hide the latency of a fused multiply-add.
//!
//! Summation order: every `(row, lane)` sum is accumulated in eight
//! interleaved partial sums over `cols` in order, reduced in a fixed
//! pattern, then the `cols % 8` leftover products are added in order. Which
//! tile computes a row, and which other rows and lanes share that tile,
//! does not change a single bit of its result: results depend neither on how
//! rows are split between threads nor on how many lanes run together.
//!
//! On AVX-512 the partial sums are sixteen, one register of 16 lanes, folded
//! to eight as their first reduction step and then reduced as above; the
//! leftover products are then `cols % 16`. The same holds for every tile, so
//! within an instruction set the results are as independent of the tiling.
//!
//! `gemv_reference` is the textbook loop; `gemv` runs the AVX-512 kernel,
//! the AVX2+FMA kernel or `gemv_portable` (the same bits as the AVX2 one
//! up to fusing), as `cpu::isa` decides. All must agree with the f32
//! reference to rounding and with f64 sums to a stated bound (`gemv_*` in
//! tests/free_step.rs).

use super::isa::{dispatch, isa, Isa, Kernel};

/// Panics unless the buffers hold the shapes they are said to.
fn check(rows: usize, cols: usize, w: &[f32], x: &[f32], lanes: usize, out: &[f32]) {
    assert!(w.len() >= rows * cols, "gemv: w too short");
    assert!(x.len() >= lanes * cols, "gemv: x too short");
    assert!(out.len() >= rows * lanes, "gemv: out too short");
}

/// One dot product per output, summed in order of `p`.
pub fn gemv_reference(
    rows: usize,
    cols: usize,
    w: &[f32],
    x: &[f32],
    lanes: usize,
    out: &mut [f32],
) {
    check(rows, cols, w, x, lanes, out);
    for r in 0..rows {
        for l in 0..lanes {
            let mut s = 0.0f32;
            for p in 0..cols {
                s += w[r * cols + p] * x[l * cols + p];
            }
            out[r * lanes + l] = s;
        }
    }
}

/// The fast twin of [`gemv_reference`] on the instruction set of [`isa`].
pub fn gemv(rows: usize, cols: usize, w: &[f32], x: &[f32], lanes: usize, out: &mut [f32]) {
    gemv_on(isa(), rows, cols, w, x, lanes, out)
}

/// [`gemv`] compiled for `isa` (the tests run every variant).
///
/// # Panics
/// If the CPU does not run `isa`, or the buffers are shorter than the shapes.
pub fn gemv_on(
    isa: Isa,
    rows: usize,
    cols: usize,
    w: &[f32],
    x: &[f32],
    lanes: usize,
    out: &mut [f32],
) {
    check(rows, cols, w, x, lanes, out);
    // SAFETY: the shapes were checked; `dispatch` checks the instruction set.
    unsafe {
        dispatch(
            isa,
            Gemv {
                rows,
                cols,
                w,
                x,
                lanes,
                out,
            },
        )
    }
}

struct Gemv<'a> {
    rows: usize,
    cols: usize,
    w: &'a [f32],
    x: &'a [f32],
    lanes: usize,
    out: &'a mut [f32],
}

impl Kernel for Gemv<'_> {
    type Output = ();

    #[inline(always)]
    unsafe fn run(self, isa: Isa) {
        let Gemv {
            rows,
            cols,
            w,
            x,
            lanes,
            out,
        } = self;
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => x86::gemv_avx512(rows, cols, w, x, lanes, out),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => x86::gemv_avx2_fma(rows, cols, w, x, lanes, out),
            _ => gemv_portable(rows, cols, w, x, lanes, out),
        }
    }
}

/// Eight interleaved partial sums reduced as the AVX2 kernel reduces them,
/// in plain Rust the compiler vectorizes for any target (SSE2, NEON).
pub fn gemv_portable(
    rows: usize,
    cols: usize,
    w: &[f32],
    x: &[f32],
    lanes: usize,
    out: &mut [f32],
) {
    check(rows, cols, w, x, lanes, out);
    let body = cols - cols % 8;
    for r in 0..rows {
        let wr = &w[r * cols..(r + 1) * cols];
        for l in 0..lanes {
            let xl = &x[l * cols..(l + 1) * cols];
            let mut acc = [0.0f32; 8];
            for (wc, xc) in wr[..body].chunks_exact(8).zip(xl[..body].chunks_exact(8)) {
                for k in 0..8 {
                    acc[k] += wc[k] * xc[k];
                }
            }
            let mut s = reduce8(acc);
            for p in body..cols {
                s += wr[p] * xl[p];
            }
            out[r * lanes + l] = s;
        }
    }
}

/// The kernel's reduction of eight partial sums: halves, then quarters, then pairs.
#[inline]
fn reduce8(a: [f32; 8]) -> f32 {
    let q = [a[0] + a[4], a[1] + a[5], a[2] + a[6], a[3] + a[7]];
    let d = [q[0] + q[2], q[1] + q[3]];
    d[0] + d[1]
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// Tiles of rows × lanes: one lane gets eight rows (eight independent
    /// sums, enough to keep both FMA pipes busy), several lanes get four
    /// rows by two lanes, so each weight vector loaded serves two lanes.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA, and the buffers must hold the
    /// shapes given (as `super::check` asserts).
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn gemv_avx2_fma(
        rows: usize,
        cols: usize,
        w: &[f32],
        x: &[f32],
        lanes: usize,
        out: &mut [f32],
    ) {
        super::check(rows, cols, w, x, lanes, out);
        let mut r = 0;
        if lanes == 1 {
            while r + 8 <= rows {
                tile::<8, 1>(cols, &w[r * cols..], x, 1, &mut out[r..]);
                r += 8;
            }
        }
        while r + 4 <= rows {
            let mut l = 0;
            while l + 2 <= lanes {
                tile::<4, 2>(
                    cols,
                    &w[r * cols..],
                    &x[l * cols..],
                    lanes,
                    &mut out[r * lanes + l..],
                );
                l += 2;
            }
            if l < lanes {
                tile::<4, 1>(
                    cols,
                    &w[r * cols..],
                    &x[l * cols..],
                    lanes,
                    &mut out[r * lanes + l..],
                );
            }
            r += 4;
        }
        while r < rows {
            for l in 0..lanes {
                tile::<1, 1>(
                    cols,
                    &w[r * cols..],
                    &x[l * cols..],
                    lanes,
                    &mut out[r * lanes + l..],
                );
            }
            r += 1;
        }
    }

    /// `R` rows of `w` times `L` lanes of `x`; result `(i, j)` goes to
    /// `out[i·stride + j]`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn tile<const R: usize, const L: usize>(
        cols: usize,
        w: &[f32],
        x: &[f32],
        stride: usize,
        out: &mut [f32],
    ) {
        assert!(
            w.len() >= R * cols && x.len() >= L * cols,
            "gemv tile: short input"
        );
        assert!(
            out.len() > (R - 1) * stride + L - 1,
            "gemv tile: short output"
        );
        let body = cols - cols % 8;
        let (wp, xp) = (w.as_ptr(), x.as_ptr());
        let mut acc = [[_mm256_setzero_ps(); L]; R];
        let mut p = 0;
        while p < body {
            let mut xv = [_mm256_setzero_ps(); L];
            for (j, v) in xv.iter_mut().enumerate() {
                // SAFETY: j < L and p + 8 <= cols, so this reads inside x's
                // first L rows of `cols` (asserted above).
                *v = unsafe { _mm256_loadu_ps(xp.add(j * cols + p)) };
            }
            for (i, row) in acc.iter_mut().enumerate() {
                // SAFETY: as above, inside w's first R rows.
                let wv = unsafe { _mm256_loadu_ps(wp.add(i * cols + p)) };
                for (a, &xj) in row.iter_mut().zip(&xv) {
                    *a = _mm256_fmadd_ps(wv, xj, *a);
                }
            }
            p += 8;
        }
        for (i, row) in acc.iter().enumerate() {
            for (j, &a) in row.iter().enumerate() {
                let mut s = reduce(a);
                for q in body..cols {
                    s += w[i * cols + q] * x[j * cols + q];
                }
                out[i * stride + j] = s;
            }
        }
    }

    /// [`gemv_avx2_fma`] with 16-lane registers: the same tiles, each weight
    /// vector twice as long, so a row's stream takes half the instructions.
    ///
    /// # Safety
    /// The CPU must support AVX-512F, and the buffers must hold the shapes
    /// given (as `super::check` asserts).
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub unsafe fn gemv_avx512(
        rows: usize,
        cols: usize,
        w: &[f32],
        x: &[f32],
        lanes: usize,
        out: &mut [f32],
    ) {
        super::check(rows, cols, w, x, lanes, out);
        let mut r = 0;
        if lanes == 1 {
            while r + 8 <= rows {
                tile512::<8, 1>(cols, &w[r * cols..], x, 1, &mut out[r..]);
                r += 8;
            }
        }
        while r + 4 <= rows {
            let mut l = 0;
            while l + 2 <= lanes {
                let o = &mut out[r * lanes + l..];
                tile512::<4, 2>(cols, &w[r * cols..], &x[l * cols..], lanes, o);
                l += 2;
            }
            if l < lanes {
                let o = &mut out[r * lanes + l..];
                tile512::<4, 1>(cols, &w[r * cols..], &x[l * cols..], lanes, o);
            }
            r += 4;
        }
        while r < rows {
            for l in 0..lanes {
                let o = &mut out[r * lanes + l..];
                tile512::<1, 1>(cols, &w[r * cols..], &x[l * cols..], lanes, o);
            }
            r += 1;
        }
    }

    /// [`tile`] in 16 lanes.
    #[target_feature(enable = "avx512f,avx2,fma")]
    #[inline]
    fn tile512<const R: usize, const L: usize>(
        cols: usize,
        w: &[f32],
        x: &[f32],
        stride: usize,
        out: &mut [f32],
    ) {
        assert!(
            w.len() >= R * cols && x.len() >= L * cols,
            "gemv tile: short input"
        );
        assert!(
            out.len() > (R - 1) * stride + L - 1,
            "gemv tile: short output"
        );
        let body = cols - cols % 16;
        let (wp, xp) = (w.as_ptr(), x.as_ptr());
        let mut acc = [[_mm512_setzero_ps(); L]; R];
        let mut p = 0;
        while p < body {
            let mut xv = [_mm512_setzero_ps(); L];
            for (j, v) in xv.iter_mut().enumerate() {
                // SAFETY: j < L and p + 16 <= cols, so this reads inside x's
                // first L rows of `cols` (asserted above).
                *v = unsafe { _mm512_loadu_ps(xp.add(j * cols + p)) };
            }
            for (i, row) in acc.iter_mut().enumerate() {
                // SAFETY: as above, inside w's first R rows.
                let wv = unsafe { _mm512_loadu_ps(wp.add(i * cols + p)) };
                for (a, &xj) in row.iter_mut().zip(&xv) {
                    *a = _mm512_fmadd_ps(wv, xj, *a);
                }
            }
            p += 16;
        }
        for (i, row) in acc.iter().enumerate() {
            for (j, &a) in row.iter().enumerate() {
                let half = _mm256_add_ps(
                    _mm512_castps512_ps256(a),
                    _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(a))),
                );
                let mut s = reduce(half);
                for q in body..cols {
                    s += w[i * cols + q] * x[j * cols + q];
                }
                out[i * stride + j] = s;
            }
        }
    }

    /// The same reduction as `super::reduce8`: halves, quarters, pairs.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn reduce(v: __m256) -> f32 {
        let q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let d = _mm_add_ps(q, _mm_movehl_ps(q, q));
        _mm_cvtss_f32(_mm_add_ss(d, _mm_shuffle_ps::<0b01>(d, d)))
    }
}
