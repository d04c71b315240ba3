//! The scalar type the math is generic over: `f32` for training, `f64` for
//! the finite-difference gradient checks, which need the extra precision.

use crate::cpu::tile::{isa, tile_f32, tile_portable, Isa, MR, NR};
use num_traits::{Float, FromPrimitive};
use std::fmt::Debug;

pub trait Real:
    Float + FromPrimitive + Default + Debug + Send + Sync + std::iter::Sum + 'static
{
    /// Row-major single-threaded `C = alpha·A·B + beta·C` with arbitrary strides,
    /// from the `matrixmultiply` crate (packed, register-tiled microkernels).
    ///
    /// # Safety
    /// The pointers and strides must describe valid `m×k`, `k×n` and `m×n`
    /// matrices, and `c` must not alias `a` or `b`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    );

    /// The register tile of `cpu::tile`: `out = Σ_p a[p·MR + r] · b[p·NR + c]`.
    ///
    /// # Safety
    /// `a` must hold `k·MR` and `b` `k·NR` readable elements.
    unsafe fn tile(k: usize, a: *const Self, b: *const Self, out: &mut [Self; MR * NR]);

    /// Whether the packed product (`cpu::pack`) beats `matrixmultiply` here:
    /// only where the tile has vector instructions behind it.
    fn packed_is_fast() -> bool;

    /// The slice as `f32`, when it is one (the vectorized activations are `f32` only).
    fn as_f32_mut(xs: &mut [Self]) -> Option<&mut [f32]>;

    fn from_f64_lossy(x: f64) -> Self {
        Self::from_f64(x).unwrap_or_else(Self::nan)
    }
}

impl Real for f32 {
    unsafe fn tile(k: usize, a: *const f32, b: *const f32, out: &mut [f32; MR * NR]) {
        tile_f32(k, a, b, out)
    }

    fn packed_is_fast() -> bool {
        isa() != Isa::Portable
    }

    fn as_f32_mut(xs: &mut [f32]) -> Option<&mut [f32]> {
        Some(xs)
    }

    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        alpha: f32,
        a: *const f32,
        rsa: isize,
        csa: isize,
        b: *const f32,
        rsb: isize,
        csb: isize,
        beta: f32,
        c: *mut f32,
        rsc: isize,
        csc: isize,
    ) {
        matrixmultiply::sgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
    }
}

impl Real for f64 {
    unsafe fn tile(k: usize, a: *const f64, b: *const f64, out: &mut [f64; MR * NR]) {
        tile_portable::<f64, false>(k, a, b, out)
    }

    fn packed_is_fast() -> bool {
        false
    }

    fn as_f32_mut(_: &mut [f64]) -> Option<&mut [f32]> {
        None
    }

    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        alpha: f64,
        a: *const f64,
        rsa: isize,
        csa: isize,
        b: *const f64,
        rsb: isize,
        csb: isize,
        beta: f64,
        c: *mut f64,
        rsc: isize,
        csc: isize,
    ) {
        matrixmultiply::dgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
    }
}
