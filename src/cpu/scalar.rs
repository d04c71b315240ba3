//! What the CPU kernels ask of the float type they run on: `f32` brings the
//! register tile of the instruction set at hand and `matrixmultiply`'s
//! `sgemm`; `f64` (the gradient checks) the plain tile and `dgemm`. Each
//! type keeps its own per-thread scratch buffers.

use super::aligned::AlignedVec;
use super::isa::{isa, Isa};
use super::tile::{tile_f32, tile_portable, Start, MR, NR};
use crate::real::Real;
use std::cell::RefCell;
use std::thread::LocalKey;

/// A [`Real`] the CPU kernels run on.
pub trait CpuReal: Real {
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

    /// The register tile of `cpu::tile`: `out = s + Σ_p a[p·MR + r] · b[p·NR + c]`,
    /// `s` zero or `out`'s own value (`start`).
    ///
    /// # Safety
    /// `a` must hold `k·MR` and `b` `k·NR` readable elements.
    unsafe fn tile(
        k: usize,
        a: *const Self,
        b: *const Self,
        out: &mut [Self; MR * NR],
        start: Start,
    );

    /// Whether the packed product (`cpu::pack`) beats `matrixmultiply` here:
    /// the intrinsic tiles (AVX-512, AVX2); portable f32 and f64 keep it.
    fn packed_is_fast() -> bool;

    /// Run `f` on scratch buffer `slot` of `len` values (contents
    /// unspecified) kept by the calling thread, so that the small products
    /// of a small model's every step allocate nothing.
    fn with_scratch<R>(slot: Scratch, len: usize, f: impl FnOnce(&mut [Self]) -> R) -> R;

    /// The slice as `f32`, when it is one (the vectorized activations are `f32` only).
    fn as_f32_mut(xs: &mut [Self]) -> Option<&mut [f32]>;
}

/// The items of [`CpuReal`] that are the same for `f32` and `f64` but for
/// the type: the thread's own scratch buffers and `matrixmultiply`'s gemm
/// of that type.
macro_rules! per_type_items {
    ($t:ty, $gemm:path) => {
        fn with_scratch<R>(slot: Scratch, len: usize, f: impl FnOnce(&mut [$t]) -> R) -> R {
            thread_local! {
                static SCRATCH: [RefCell<AlignedVec<$t>>; 2] =
                    const { [RefCell::new(AlignedVec::new()), RefCell::new(AlignedVec::new())] };
            }
            scratch(&SCRATCH, slot, len, f)
        }

        unsafe fn gemm_raw(
            m: usize,
            k: usize,
            n: usize,
            alpha: $t,
            a: *const $t,
            rsa: isize,
            csa: isize,
            b: *const $t,
            rsb: isize,
            csb: isize,
            beta: $t,
            c: *mut $t,
            rsc: isize,
            csc: isize,
        ) {
            $gemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
        }
    };
}

impl CpuReal for f32 {
    unsafe fn tile(k: usize, a: *const f32, b: *const f32, out: &mut [f32; MR * NR], start: Start) {
        tile_f32(k, a, b, out, start)
    }

    fn packed_is_fast() -> bool {
        // On AVX2 too: `matrixmultiply` picks its kernel from the CPU's own
        // features, so with it `WAVELSTM_ISA=avx2` would run AVX-512
        // products on an AVX-512 machine and measure no AVX2 machine.
        matches!(isa(), Isa::Avx512 | Isa::Avx2Fma)
    }

    per_type_items!(f32, matrixmultiply::sgemm);

    fn as_f32_mut(xs: &mut [f32]) -> Option<&mut [f32]> {
        Some(xs)
    }
}

impl CpuReal for f64 {
    unsafe fn tile(k: usize, a: *const f64, b: *const f64, out: &mut [f64; MR * NR], start: Start) {
        tile_portable::<f64, false>(k, a, b, out, start)
    }

    fn packed_is_fast() -> bool {
        false
    }

    per_type_items!(f64, matrixmultiply::dgemm);

    fn as_f32_mut(_: &mut [f64]) -> Option<&mut [f32]> {
        None
    }
}

/// Which of a thread's two scratch buffers: a product's packed B, shared by
/// its tasks, is held in one while the same thread runs tasks that pack
/// their A in the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scratch {
    Shared = 0,
    Task = 1,
}

/// A thread's scratch buffer, grown to `len`; a fresh one if the thread's
/// is already lent out further up its stack. Cache-line aligned, as the
/// tile streams packed panels out of it.
fn scratch<T: Copy + Default + 'static, R>(
    key: &'static LocalKey<[RefCell<AlignedVec<T>>; 2]>,
    slot: Scratch,
    len: usize,
    f: impl FnOnce(&mut [T]) -> R,
) -> R {
    key.with(|cells| match cells[slot as usize].try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < len {
                buf.resize(len);
            }
            f(&mut buf[..len])
        }
        Err(_) => f(&mut AlignedVec::zeroed(len)),
    })
}
