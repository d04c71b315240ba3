//! Rows of a weight matrix times a few lanes' vectors, the product a
//! free-running step spends its time in:
//!
//! ```text
//! out[r·lanes + l] = Σ_{p < cols} w[r·ld + p] · x[l·ld + p]
//! ```
//!
//! `w` holds `rows` rows as PyTorch stores a weight, `x` one vector per lane
//! (take), each row and each vector `ld ≥ cols` values after the one
//! before ([`GemvShape`]); `out[rows, lanes]` keeps a row's lanes together,
//! so whoever owns a range of rows owns a contiguous range of `out`. A
//! stride above `cols` is padding a caller chooses so that every row starts
//! on a cache line (`cpu::aligned`); it is never read.
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
//! rows are split between threads, nor on how many lanes run together, nor
//! on the stride.
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

/// `rows × cols` weights times `lanes` vectors of `cols`; row `r` of `w`
/// starts at `r·ld`, lane `l` of `x` at `l·ld`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemvShape {
    pub rows: usize,
    pub cols: usize,
    pub lanes: usize,
    pub ld: usize,
}

impl GemvShape {
    /// Rows and lanes stored back to back (`ld = cols`).
    pub fn packed(rows: usize, cols: usize, lanes: usize) -> Self {
        GemvShape {
            rows,
            cols,
            lanes,
            ld: cols,
        }
    }

    /// Panics unless the buffers hold the shape.
    fn check(&self, w: &[f32], x: &[f32], out: &[f32]) {
        let GemvShape {
            rows,
            cols,
            lanes,
            ld,
        } = *self;
        assert!(ld >= cols, "gemv: stride below the row length");
        let span = |n: usize| if n == 0 { 0 } else { (n - 1) * ld + cols };
        assert!(w.len() >= span(rows), "gemv: w too short");
        assert!(x.len() >= span(lanes), "gemv: x too short");
        assert!(out.len() >= rows * lanes, "gemv: out too short");
    }
}

/// One dot product per output, summed in order of `p`.
pub fn gemv_reference(s: GemvShape, w: &[f32], x: &[f32], out: &mut [f32]) {
    s.check(w, x, out);
    for r in 0..s.rows {
        for l in 0..s.lanes {
            let mut sum = 0.0f32;
            for p in 0..s.cols {
                sum += w[r * s.ld + p] * x[l * s.ld + p];
            }
            out[r * s.lanes + l] = sum;
        }
    }
}

/// The fast twin of [`gemv_reference`] on the instruction set of [`isa`].
pub fn gemv(s: GemvShape, w: &[f32], x: &[f32], out: &mut [f32]) {
    gemv_on(isa(), s, w, x, out)
}

/// [`gemv`] compiled for `isa` (the tests run every variant).
///
/// # Panics
/// If the CPU does not run `isa`, or the buffers are shorter than the shape.
pub fn gemv_on(isa: Isa, s: GemvShape, w: &[f32], x: &[f32], out: &mut [f32]) {
    s.check(w, x, out);
    // SAFETY: the shapes were checked; `dispatch` checks the instruction set.
    unsafe { dispatch(isa, Gemv { s, w, x, out }) }
}

struct Gemv<'a> {
    s: GemvShape,
    w: &'a [f32],
    x: &'a [f32],
    out: &'a mut [f32],
}

impl Kernel for Gemv<'_> {
    type Output = ();

    #[inline(always)]
    unsafe fn run(self, isa: Isa) {
        let Gemv { s, w, x, out } = self;
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => x86::gemv_avx512(s, w, x, out),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => x86::gemv_avx2_fma(s, w, x, out),
            _ => gemv_portable(s, w, x, out),
        }
    }
}

/// Eight interleaved partial sums reduced as the AVX2 kernel reduces them,
/// in plain Rust the compiler vectorizes for any target (SSE2, NEON).
pub fn gemv_portable(s: GemvShape, w: &[f32], x: &[f32], out: &mut [f32]) {
    s.check(w, x, out);
    let (cols, ld) = (s.cols, s.ld);
    let body = cols - cols % 8;
    for r in 0..s.rows {
        let wr = &w[r * ld..r * ld + cols];
        for l in 0..s.lanes {
            let xl = &x[l * ld..l * ld + cols];
            let mut acc = [0.0f32; 8];
            for (wc, xc) in wr[..body].chunks_exact(8).zip(xl[..body].chunks_exact(8)) {
                for k in 0..8 {
                    acc[k] += wc[k] * xc[k];
                }
            }
            let mut sum = reduce8(acc);
            for p in body..cols {
                sum += wr[p] * xl[p];
            }
            out[r * s.lanes + l] = sum;
        }
    }
}

/// The kernel's reduction of eight partial sums: halves, then quarters, then pairs.
#[inline]
pub(super) fn reduce8(a: [f32; 8]) -> f32 {
    let q = [a[0] + a[4], a[1] + a[5], a[2] + a[6], a[3] + a[7]];
    let d = [q[0] + q[2], q[1] + q[3]];
    d[0] + d[1]
}

/// The kernels' reductions of eight and of sixteen partial sums, for `gemv_blocked`.
#[cfg(target_arch = "x86_64")]
pub(super) use x86::{reduce as x86_reduce, reduce512 as x86_reduce512};

/// Sixteen-lane registers on AVX2, for `gemv_blocked`'s tests as for ours.
#[cfg(all(test, target_arch = "x86_64"))]
pub(super) use x86::wide16;

/// One row times one lane summed as the AVX-512 tiles sum it, in plain
/// Rust: sixteen partial sums of fused multiply-adds over the whole
/// registers, folded to eight (`k + 8` onto `k`), reduced as [`reduce8`],
/// then the `cols % 16` leftover products added in order (multiplied and
/// added apart, as the tiles' scalar tail does). The order written down
/// once, so that the AVX-512 source can be held to it where it cannot run.
#[cfg(test)]
pub(super) fn dot16(w: &[f32], x: &[f32]) -> f32 {
    assert_eq!(w.len(), x.len(), "dot16: lengths");
    let body = w.len() - w.len() % 16;
    let mut acc = [0.0f32; 16];
    for (wc, xc) in w[..body].chunks_exact(16).zip(x[..body].chunks_exact(16)) {
        for k in 0..16 {
            acc[k] = wc[k].mul_add(xc[k], acc[k]);
        }
    }
    let mut sum = reduce8(std::array::from_fn(|k| acc[k] + acc[k + 8]));
    for (&wp, &xp) in w[body..].iter().zip(&x[body..]) {
        sum += wp * xp;
    }
    sum
}

/// Holds `out` and, where given, `real` (both `[rows, lanes]`) to `want(r,
/// l)`, the [`dot16`] of row `r` and lane `l`, bit for bit; `what` names
/// the case in a failure. Returns how many values it checked.
#[cfg(test)]
pub(super) fn assert_dot16_bits(
    what: &str,
    out: &[f32],
    real: Option<&[f32]>,
    lanes: usize,
    want: impl Fn(usize, usize) -> f32,
) -> usize {
    for (e, &got) in out.iter().enumerate() {
        let (r, l) = (e / lanes, e % lanes);
        let want = want(r, l);
        assert_eq!(got.to_bits(), want.to_bits(), "{what}: ({r}, {l})");
        if let Some(real) = real {
            assert_eq!(
                real[e].to_bits(),
                want.to_bits(),
                "AVX-512 {what}: ({r}, {l})"
            );
        }
    }
    out.len()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::GemvShape;
    use std::arch::x86_64::*;

    /// Tiles of rows × lanes: one lane gets eight rows (eight independent
    /// sums, enough to keep both FMA pipes busy), several lanes get four
    /// rows by two lanes, so each weight vector loaded serves two lanes.
    /// `tile` stands for `tile` here and `tile512` in `gemv_avx512`.
    macro_rules! tiles {
        ($tile:ident, $s:expr, $w:expr, $x:expr, $out:expr) => {{
            let (s, w, x, out): (GemvShape, &[f32], &[f32], &mut [f32]) = ($s, $w, $x, $out);
            let (ld, lanes) = (s.ld, s.lanes);
            let mut r = 0;
            if lanes == 1 {
                while r + 8 <= s.rows {
                    $tile::<8, 1>(s, &w[r * ld..], x, &mut out[r..]);
                    r += 8;
                }
            }
            while r + 4 <= s.rows {
                let mut l = 0;
                while l + 2 <= lanes {
                    let o = &mut out[r * lanes + l..];
                    $tile::<4, 2>(s, &w[r * ld..], &x[l * ld..], o);
                    l += 2;
                }
                if l < lanes {
                    let o = &mut out[r * lanes + l..];
                    $tile::<4, 1>(s, &w[r * ld..], &x[l * ld..], o);
                }
                r += 4;
            }
            while r < s.rows {
                for l in 0..lanes {
                    let o = &mut out[r * lanes + l..];
                    $tile::<1, 1>(s, &w[r * ld..], &x[l * ld..], o);
                }
                r += 1;
            }
        }};
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA, and the buffers must hold the
    /// shape (as `GemvShape::check` asserts).
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn gemv_avx2_fma(s: GemvShape, w: &[f32], x: &[f32], out: &mut [f32]) {
        s.check(w, x, out);
        tiles!(tile, s, w, x, out)
    }

    /// Panics unless `R` rows of `w`, `L` lanes of `x` and the tile's
    /// outputs (`(i, j)` at `out[i·lanes + j]`) are in the buffers.
    #[inline(always)]
    fn check_tile<const R: usize, const L: usize>(s: GemvShape, w: &[f32], x: &[f32], out: &[f32]) {
        assert!(
            w.len() >= (R - 1) * s.ld + s.cols && x.len() >= (L - 1) * s.ld + s.cols,
            "gemv tile: short input"
        );
        assert!(
            out.len() > (R - 1) * s.lanes + L - 1,
            "gemv tile: short output"
        );
    }

    /// `R` rows of `w` times `L` lanes of `x`; result `(i, j)` goes to
    /// `out[i·lanes + j]`. Written once for both register widths: a
    /// register of `$width` partial sums per result, reduced by `$reduce`,
    /// then the `cols % $width` leftover products added in order.
    macro_rules! gemv_tile {
        ($name:ident, $features:literal, $width:literal, $zero:ident, $loadu:ident,
         $fmadd:ident, $reduce:ident) => {
            #[target_feature(enable = $features)]
            #[inline]
            fn $name<const R: usize, const L: usize>(
                s: GemvShape,
                w: &[f32],
                x: &[f32],
                out: &mut [f32],
            ) {
                check_tile::<R, L>(s, w, x, out);
                let (cols, ld) = (s.cols, s.ld);
                let body = cols - cols % $width;
                let (wp, xp) = (w.as_ptr(), x.as_ptr());
                let mut acc = [[$zero(); L]; R];
                let mut p = 0;
                while p < body {
                    let mut xv = [$zero(); L];
                    for (j, v) in xv.iter_mut().enumerate() {
                        // SAFETY: j < L and p + width <= cols, so this reads
                        // inside x's first L lanes (checked above).
                        *v = unsafe { $loadu(xp.add(j * ld + p)) };
                    }
                    for (i, row) in acc.iter_mut().enumerate() {
                        // SAFETY: as above, inside w's first R rows.
                        let wv = unsafe { $loadu(wp.add(i * ld + p)) };
                        for (a, &xj) in row.iter_mut().zip(&xv) {
                            *a = $fmadd(wv, xj, *a);
                        }
                    }
                    p += $width;
                }
                for (i, row) in acc.iter().enumerate() {
                    for (j, &a) in row.iter().enumerate() {
                        let mut sum = $reduce(a);
                        for q in body..cols {
                            sum += w[i * ld + q] * x[j * ld + q];
                        }
                        out[i * s.lanes + j] = sum;
                    }
                }
            }
        };
    }

    gemv_tile!(
        tile,
        "avx2,fma",
        8,
        _mm256_setzero_ps,
        _mm256_loadu_ps,
        _mm256_fmadd_ps,
        reduce
    );

    /// [`gemv_avx2_fma`] with 16-lane registers: the same tiles, each weight
    /// vector twice as long, so a row's stream takes half the instructions.
    ///
    /// # Safety
    /// The CPU must support AVX-512F, and the buffers must hold the shape
    /// (as `GemvShape::check` asserts).
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub unsafe fn gemv_avx512(s: GemvShape, w: &[f32], x: &[f32], out: &mut [f32]) {
        s.check(w, x, out);
        tiles!(tile512, s, w, x, out)
    }

    gemv_tile!(
        tile512,
        "avx512f,avx2,fma",
        16,
        _mm512_setzero_ps,
        _mm512_loadu_ps,
        _mm512_fmadd_ps,
        reduce512
    );

    /// Sixteen partial sums folded to eight (element `k` plus element
    /// `k + 8`), then reduced as [`reduce`].
    #[target_feature(enable = "avx512f,avx2,fma")]
    #[inline]
    pub(in crate::cpu) fn reduce512(a: __m512) -> f32 {
        let high = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(a)));
        reduce(_mm256_add_ps(_mm512_castps512_ps256(a), high))
    }

    /// The same reduction as `super::reduce8`: halves, quarters, pairs.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub(in crate::cpu) fn reduce(v: __m256) -> f32 {
        let q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let d = _mm_add_ps(q, _mm_movehl_ps(q, q));
        _mm_cvtss_f32(_mm_add_ss(d, _mm_shuffle_ps::<0b01>(d, d)))
    }

    /// A register of sixteen lanes as two AVX2 halves, for the tests: with
    /// it the AVX-512 tiles' source (`gemv_tile!` here, `blocked_tile!` in
    /// `gemv_blocked`) is compiled at width 16 for AVX2, so its indexing
    /// runs on every x86 machine the tests run on, not only on those with
    /// AVX-512. Lane by lane it computes what the AVX-512 instructions
    /// compute: a fused multiply-add rounds once per lane at either width,
    /// and `reduce16` adds the halves as `reduce512` does.
    #[cfg(test)]
    pub(in crate::cpu) mod wide16 {
        use super::reduce;
        use std::arch::x86_64::*;

        #[derive(Clone, Copy)]
        pub struct V16(__m256, __m256);

        #[target_feature(enable = "avx2,fma")]
        pub fn zero16() -> V16 {
            V16(_mm256_setzero_ps(), _mm256_setzero_ps())
        }

        /// # Safety
        /// Sixteen values at `p` are readable.
        #[target_feature(enable = "avx2,fma")]
        pub unsafe fn loadu16(p: *const f32) -> V16 {
            unsafe { V16(_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8))) }
        }

        /// As [`loadu16`], and `p` must be on 64 bytes: `_mm512_load_ps`
        /// faults otherwise, so the emulation refuses it too.
        ///
        /// # Safety
        /// As [`loadu16`].
        #[target_feature(enable = "avx2,fma")]
        pub unsafe fn load16(p: *const f32) -> V16 {
            assert_eq!(p as usize % 64, 0, "load16: unaligned");
            unsafe { V16(_mm256_load_ps(p), _mm256_load_ps(p.add(8))) }
        }

        #[target_feature(enable = "avx2,fma")]
        pub fn fmadd16(a: V16, b: V16, c: V16) -> V16 {
            V16(
                _mm256_fmadd_ps(a.0, b.0, c.0),
                _mm256_fmadd_ps(a.1, b.1, c.1),
            )
        }

        #[target_feature(enable = "avx2,fma")]
        pub fn reduce16(a: V16) -> f32 {
            reduce(_mm256_add_ps(a.0, a.1))
        }
    }

    /// The AVX-512 tiles' source at width 16 on AVX2 registers, held to
    /// [`dot16`](super::dot16), the order the AVX-512 instance sums in; on
    /// a machine with AVX-512 the real instance is held to it as well.
    #[cfg(test)]
    mod tests {
        use super::super::{assert_dot16_bits, dot16, gemv_on};
        use super::wide16::{fmadd16, loadu16, reduce16, zero16};
        use super::*;
        use crate::cpu::isa::Isa;
        use crate::rng::SplitMix64;

        gemv_tile!(tile16, "avx2,fma", 16, zero16, loadu16, fmadd16, reduce16);

        /// # Safety
        /// The CPU must support AVX2 and FMA.
        #[target_feature(enable = "avx2,fma")]
        unsafe fn gemv_wide16(s: GemvShape, w: &[f32], x: &[f32], out: &mut [f32]) {
            s.check(w, x, out);
            tiles!(tile16, s, w, x, out)
        }

        #[test]
        fn the_avx512_tile_source_sums_in_the_avx512_order() {
            if !Isa::Avx2Fma.supported() {
                eprintln!("skipped: this CPU has no AVX2+FMA to emulate 16 lanes on");
                return;
            }
            let mut rng = SplitMix64::new(41);
            let mut checked = 0;
            for (rows, cols) in [
                (1, 1),
                (3, 15),
                (8, 16),
                (9, 17),
                (13, 33),
                (37, 257),
                (16, 272),
            ] {
                for lanes in 1..=5 {
                    for pad in [0, 5] {
                        let s = GemvShape {
                            rows,
                            cols,
                            lanes,
                            ld: cols + pad,
                        };
                        let w: Vec<f32> = (0..rows * s.ld)
                            .map(|_| rng.uniform(-1.0, 1.0) as f32)
                            .collect();
                        let x: Vec<f32> = (0..lanes * s.ld)
                            .map(|_| rng.uniform(-1.0, 1.0) as f32)
                            .collect();
                        let mut out = vec![f32::NAN; rows * lanes];
                        // SAFETY: AVX2+FMA checked above.
                        unsafe { gemv_wide16(s, &w, &x, &mut out) };
                        let real = Isa::Avx512.supported().then(|| {
                            let mut real = vec![f32::NAN; rows * lanes];
                            gemv_on(Isa::Avx512, s, &w, &x, &mut real);
                            real
                        });
                        let (ld, what) = (s.ld, format!("{s:?}"));
                        checked +=
                            assert_dot16_bits(&what, &out, real.as_deref(), lanes, |r, l| {
                                dot16(&w[r * ld..r * ld + cols], &x[l * ld..l * ld + cols])
                            });
                    }
                }
            }
            assert!(checked > 1000);
        }
    }
}
