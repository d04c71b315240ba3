//! Matrix product, the op almost all of the LSTM's time goes into.
//!
//! Layout: every matrix is row-major, `x[r * ld + c]`, with leading dimension
//! `ld` ≥ its column count. `Op::T` reads the stored matrix transposed, so a
//! weight stored as PyTorch does, `[out, in]`, multiplies activations
//! `[rows, in]` as `Op::T` without a copy.
//!
//! `gemm_reference` is the textbook triple loop; `gemm` is its fast twin and
//! must agree with it to rounding (tests/cpu_ops.rs).

pub use super::op::Op;
use super::pack::{Base, Operand};
use super::scalar::CpuReal;
use super::send_ptr::SendPtr;
use rayon::prelude::*;

/// Index of element (i, p) of `op(X)` in storage with leading dimension `ld`.
#[inline]
fn at(op: Op, ld: usize, i: usize, p: usize) -> usize {
    match op {
        Op::N => i * ld + p,
        Op::T => p * ld + i,
    }
}

/// Minimum length of the storage of `op(X)`, an `rows × cols` operand.
fn storage_len(op: Op, ld: usize, rows: usize, cols: usize) -> usize {
    let (sr, sc) = match op {
        Op::N => (rows, cols),
        Op::T => (cols, rows),
    };
    if sr == 0 || sc == 0 {
        0
    } else {
        (sr - 1) * ld + sc
    }
}

#[allow(clippy::too_many_arguments)]
fn check_operands<T>(
    op_a: Op,
    op_b: Op,
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    lda: usize,
    b: &[T],
    ldb: usize,
    c: &[T],
    ldc: usize,
) {
    assert!(a.len() >= storage_len(op_a, lda, m, k), "gemm: A too short");
    assert!(b.len() >= storage_len(op_b, ldb, k, n), "gemm: B too short");
    assert!(
        c.len() >= storage_len(Op::N, ldc, m, n),
        "gemm: C too short"
    );
    assert!(ldc >= n, "gemm: ldc < n");
}

/// `C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C`, one dot product per
/// element, summed in order of `p`. (With `beta == 0`, C is overwritten, as in BLAS.)
#[allow(clippy::too_many_arguments)]
pub fn gemm_reference<T: CpuReal>(
    op_a: Op,
    op_b: Op,
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: &[T],
    lda: usize,
    b: &[T],
    ldb: usize,
    beta: T,
    c: &mut [T],
    ldc: usize,
) {
    check_operands(op_a, op_b, m, n, k, a, lda, b, ldb, c, ldc);
    for i in 0..m {
        for j in 0..n {
            let mut acc = T::zero();
            for p in 0..k {
                acc = acc + a[at(op_a, lda, i, p)] * b[at(op_b, ldb, p, j)];
            }
            let old = if beta == T::zero() {
                T::zero()
            } else {
                beta * c[i * ldc + j]
            };
            c[i * ldc + j] = alpha * acc + old;
        }
    }
}

/// Below this many multiply-adds a product runs on the calling thread: handing
/// it to the pool would cost more than it saves.
const PARALLEL_MIN_MACS: usize = 1 << 17;
/// A large product is cut into at most this many independent blocks of C.
/// The cut depends on the shape only, never on the thread count, so every
/// element of C is computed by the same instructions on 1 thread or 64:
/// results are bit-identical whatever the pool size.
const MAX_BLOCKS: usize = 8;

/// The fast twin of [`gemm_reference`]: in `f32` on a CPU with AVX-512 or
/// AVX2+FMA, our own packed product (`cpu::pack`); otherwise (and for the `f64` of the
/// gradient checks) packed microkernels from `matrixmultiply`, with C split
/// into row blocks (or column blocks when C is short and wide) run in
/// parallel by rayon.
#[allow(clippy::too_many_arguments)]
pub fn gemm<T: CpuReal>(
    op_a: Op,
    op_b: Op,
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: &[T],
    lda: usize,
    b: &[T],
    ldb: usize,
    beta: T,
    c: &mut [T],
    ldc: usize,
) {
    check_operands(op_a, op_b, m, n, k, a, lda, b, ldb, c, ldc);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        // matrixmultiply treats k == 0 as "scale C"; spell it out to keep beta == 0 exact.
        for i in 0..m {
            for x in &mut c[i * ldc..i * ldc + n] {
                *x = if beta == T::zero() {
                    T::zero()
                } else {
                    beta * *x
                };
            }
        }
        return;
    }
    if T::packed_is_fast() {
        let (a, b) = (Operand::new(op_a, a, lda), Operand::new(op_b, b, ldb));
        super::pack::gemm_packed(m, n, k, alpha, a, b, Base::Scaled(beta), c, ldc);
        return;
    }
    let (rsa, csa) = strides(op_a, lda);
    let (rsb, csb) = strides(op_b, ldb);
    let cp = SendPtr(c.as_mut_ptr());
    let (ap, bp) = (a.as_ptr() as usize, b.as_ptr() as usize);
    // SAFETY (for every call below): the operand checks above bound all
    // reads; each block writes a disjoint rectangle of C.
    let block = move |r0: usize, r1: usize, c0: usize, c1: usize| unsafe {
        let a0 = (ap as *const T).offset(r0 as isize * rsa);
        let b0 = (bp as *const T).offset(c0 as isize * csb);
        let c00 = cp.get().add(r0 * ldc + c0);
        T::gemm_raw(
            r1 - r0,
            k,
            c1 - c0,
            alpha,
            a0,
            rsa,
            csa,
            b0,
            rsb,
            csb,
            beta,
            c00,
            ldc as isize,
            1,
        );
    };
    if m * n * k < PARALLEL_MIN_MACS {
        block(0, m, 0, n);
    } else if m >= 2 * 16 {
        let rows = m.div_ceil(MAX_BLOCKS).next_multiple_of(8);
        (0..m.div_ceil(rows))
            .into_par_iter()
            .for_each(|i| block(i * rows, ((i + 1) * rows).min(m), 0, n));
    } else {
        let cols = n.div_ceil(MAX_BLOCKS).next_multiple_of(16);
        (0..n.div_ceil(cols))
            .into_par_iter()
            .for_each(|j| block(0, m, j * cols, ((j + 1) * cols).min(n)));
    }
}

fn strides(op: Op, ld: usize) -> (isize, isize) {
    match op {
        Op::N => (ld as isize, 1),
        Op::T => (1, ld as isize),
    }
}

/// `C = op(A)·op(B) + bias`, `bias[n]` added to every row of C: the same bits
/// as filling each row of C with `bias` and calling [`gemm`] with
/// `alpha = beta = 1`, which is what the tests hold it to. Our packed product
/// adds the bias as it stores each tile, so C is written once and never
/// read; the other paths fill C first.
#[allow(clippy::too_many_arguments)]
pub fn gemm_bias<T: CpuReal>(
    op_a: Op,
    op_b: Op,
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    lda: usize,
    b: &[T],
    ldb: usize,
    bias: &[T],
    c: &mut [T],
    ldc: usize,
) {
    check_operands(op_a, op_b, m, n, k, a, lda, b, ldb, c, ldc);
    assert_eq!(bias.len(), n, "gemm_bias: bias is not n long");
    if m > 0 && n > 0 && k > 0 && T::packed_is_fast() {
        let (a, b) = (Operand::new(op_a, a, lda), Operand::new(op_b, b, ldb));
        super::pack::gemm_packed(m, n, k, T::one(), a, b, Base::Bias(bias), c, ldc);
        return;
    }
    for row in c.chunks_mut(ldc).take(m) {
        row[..n].copy_from_slice(bias);
    }
    gemm(
        op_a,
        op_b,
        m,
        n,
        k,
        T::one(),
        a,
        lda,
        b,
        ldb,
        T::one(),
        c,
        ldc,
    );
}
