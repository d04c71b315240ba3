//! Operands copied into the tile's panels, and the product built on them.
//!
//! Why pack: the tile (`cpu::tile`) reads one row of `MR` values of A and one
//! row of `NR` values of B per step of `p`. Copied into that order once, both
//! operands are read as two forward streams, whatever their original
//! layout or transposition; a panel is reused by every tile it meets.
//!
//! The product is cut into blocks as BLIS does (Van Zee & van de Geijn, "BLIS:
//! A Framework for Rapidly Instantiating BLAS Functionality", ACM TOMS 2015):
//! `KC` values of `p` at a time so a B panel (`KC × NR`) stays in L1 while the
//! A block (`MC × KC`) is read from L2. A task owns an `MC × NC` block of C
//! and packs what it reads itself, so tasks never wait on each other.

use super::op::Op;
use super::scalar::{CpuReal, Scratch};
use super::send_ptr::SendPtr;
use super::tile::{Start, MR, NR};
use super::tile_group::{tiles_over, GROUP};
use rayon::prelude::*;

const KC: usize = 256;
const MC: usize = 256;
const NC: usize = 256;
/// Below this many multiply-adds a product runs on the calling thread.
pub const PARALLEL_MIN_MACS: usize = 1 << 20;
/// From this many blocks of `MC` rows on, a task owns whole rows of C.
const MIN_ROW_TASKS: usize = 8;

/// Rows `r0..r0+rows` and columns `p0..p0+kc` of `op(A)` as `⌈rows/MR⌉`
/// panels of `kc × MR`, padded with zeros.
#[allow(clippy::too_many_arguments)]
pub fn pack_a<T: CpuReal>(
    op: Op,
    a: &[T],
    lda: usize,
    r0: usize,
    rows: usize,
    p0: usize,
    kc: usize,
    out: &mut [T],
) {
    for (i, panel) in out[..rows.div_ceil(MR) * kc * MR]
        .chunks_exact_mut(kc * MR)
        .enumerate()
    {
        let (first, valid) = (r0 + i * MR, (rows - i * MR).min(MR));
        panel_from::<T, MR>(op, a, lda, first, valid, p0, kc, panel);
    }
}

/// Panel of `op(B)` columns `first..first + min(cols, NR)`, rows `p0..p0+kc`.
#[allow(clippy::too_many_arguments)]
fn pack_b_panel<T: CpuReal>(
    op: Op,
    b: &[T],
    ldb: usize,
    p0: usize,
    kc: usize,
    first: usize,
    cols: usize,
    panel: &mut [T],
) {
    // B's columns are A's rows of Bᵀ: the same copy with the op flipped.
    let flipped = match op {
        Op::N => Op::T,
        Op::T => Op::N,
    };
    panel_from::<T, NR>(flipped, b, ldb, first, cols.min(NR), p0, kc, panel);
}

/// `panel[p·W + r] = op(X)[first + r, p0 + p]` for `r < valid`, zero for
/// `valid ≤ r < W`. Reads along whichever direction is contiguous in memory;
/// the panel width is a constant so a full panel's copies compile to whole
/// vector moves rather than calls to `memcpy` for a few values each.
#[allow(clippy::too_many_arguments)]
#[inline]
fn panel_from<T: CpuReal, const W: usize>(
    op: Op,
    x: &[T],
    ld: usize,
    first: usize,
    valid: usize,
    p0: usize,
    kc: usize,
    panel: &mut [T],
) {
    let panel = &mut panel[..kc * W];
    if valid < W {
        panel.fill(T::zero());
    }
    match op {
        // Row r of op(X) is contiguous: read W rows side by side and write
        // the panel in order, one p at a time.
        Op::N if valid == W => {
            let rows: [&[T]; W] = std::array::from_fn(|r| &x[(first + r) * ld + p0..][..kc]);
            for (p, dst) in panel.chunks_exact_mut(W).enumerate() {
                for (d, row) in dst.iter_mut().zip(&rows) {
                    *d = row[p];
                }
            }
        }
        Op::N => {
            for r in 0..valid {
                let row = &x[(first + r) * ld + p0..][..kc];
                for (dst, &v) in panel[r..].iter_mut().step_by(W).zip(row) {
                    *dst = v;
                }
            }
        }
        // Column p of op(X) is contiguous: one copy per p.
        Op::T if valid == W => {
            for (p, dst) in panel.chunks_exact_mut(W).enumerate() {
                let at = (p0 + p) * ld + first;
                let src: &[T; W] = x[at..at + W].try_into().expect("W values");
                dst.copy_from_slice(src);
            }
        }
        Op::T => {
            for (p, dst) in panel.chunks_exact_mut(W).enumerate() {
                let at = (p0 + p) * ld + first;
                dst[..valid].copy_from_slice(&x[at..at + valid]);
            }
        }
    }
}

/// What the first block of `p` of a product adds its sums to.
#[derive(Clone, Copy)]
pub enum Base<'a, T> {
    /// `beta · C`, C's old value (not read when `beta` is 0, as in BLAS).
    Scaled(T),
    /// `bias[j]` in every row `i` of C, whose old value is never read: the
    /// same bits as `Scaled(1)` on a C filled with `bias`, without writing C
    /// first and reading it back (a `[T·B, 4H]` input projection is tens of
    /// megabytes, which the second pass fetched from memory again).
    Bias(&'a [T]),
}

/// One row of a finished tile into C, columns `col..col + dst.len()`:
/// `base + alpha·acc` for the first block of `p`, `C + alpha·acc` after.
/// One loop per case, so each vectorizes.
#[inline(always)]
fn store<T: CpuReal>(
    dst: &mut [T],
    acc: &[T],
    alpha: T,
    base: Base<'_, T>,
    col: usize,
    first: bool,
) {
    let (one, zero) = (T::one(), T::zero());
    match (first, base) {
        (false, _) if alpha == one => dst.iter_mut().zip(acc).for_each(|(d, &v)| *d = *d + v),
        (false, _) => dst
            .iter_mut()
            .zip(acc)
            .for_each(|(d, &v)| *d = *d + alpha * v),
        (true, Base::Scaled(beta)) if beta == zero => {
            dst.iter_mut().zip(acc).for_each(|(d, &v)| *d = alpha * v)
        }
        (true, Base::Scaled(beta)) => dst
            .iter_mut()
            .zip(acc)
            .for_each(|(d, &v)| *d = beta * *d + alpha * v),
        (true, Base::Bias(bias)) => dst
            .iter_mut()
            .zip(acc)
            .zip(&bias[col..])
            .for_each(|((d, &v), &b)| *d = b + alpha * v),
    }
}

/// One operand of a product: `op(X)`, with `X` stored row-major in `data`
/// with leading dimension `ld`.
#[derive(Clone, Copy)]
pub struct Operand<'a, T> {
    pub op: Op,
    pub data: &'a [T],
    pub ld: usize,
}

impl<'a, T> Operand<'a, T> {
    pub fn new(op: Op, data: &'a [T], ld: usize) -> Self {
        Operand { op, data, ld }
    }
}

/// `C = alpha · op(A) · op(B) + base` on packed panels (operands checked by
/// the caller, `m, n, k > 0`, a bias `n` long). Each element is
/// `base + alpha·acc₀` (`base` = `beta·C` or the column's bias), then
/// `+ alpha·acc_j` for every further block of `KC` values of `p`, each `acc`
/// summed in order of `p`: a fixed order that depends on `k` only.
///
/// `op(B)` is packed once, whole, before the tasks start (each column panel
/// over all of `k`, so the block of `KC` rows a task needs is a contiguous
/// part of it): every task reads the same panels, instead of each packing
/// its own copy. A task packs its block of A once per block of `p` and runs
/// it against all its columns.
#[allow(clippy::too_many_arguments)]
pub fn gemm_packed<T: CpuReal>(
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: Operand<'_, T>,
    b: Operand<'_, T>,
    base: Base<'_, T>,
    c: &mut [T],
    ldc: usize,
) {
    let parallel = m * n * k >= PARALLEL_MIN_MACS;
    let row_blocks = m.div_ceil(MC);
    // Enough row blocks to share out: a task owns whole rows of C and packs
    // its A block once; otherwise the columns are cut as well.
    let task_cols = if row_blocks >= MIN_ROW_TASKS { n } else { NC };
    let col_blocks = n.div_ceil(task_cols);
    let col_panels = n.div_ceil(NR);
    let cp = SendPtr(c.as_mut_ptr());
    T::with_scratch(Scratch::Shared, col_panels * k * NR, |bp| {
        let pack_panel = |(j, panel): (usize, &mut [T])| {
            pack_b_panel(b.op, b.data, b.ld, 0, k, j * NR, n - j * NR, panel);
        };
        if parallel && col_panels > 1 {
            bp.par_chunks_mut(k * NR).enumerate().for_each(pack_panel);
        } else {
            bp.chunks_mut(k * NR).enumerate().for_each(pack_panel);
        }
        let bp: &[T] = bp;
        let task = |id: usize| {
            let (r0, c0) = ((id / col_blocks) * MC, (id % col_blocks) * task_cols);
            let (rows, cols) = ((m - r0).min(MC), (n - c0).min(task_cols));
            let a_len = rows.div_ceil(MR) * MR * k.min(KC);
            T::with_scratch(Scratch::Task, a_len, |ap| {
                let mut tiles = [[T::zero(); MR * NR]; GROUP];
                let row_panels = rows.div_ceil(MR);
                for p0 in (0..k).step_by(KC) {
                    let kc = (k - p0).min(KC);
                    pack_a(a.op, a.data, a.ld, r0, rows, p0, kc, ap);
                    for j in 0..cols.div_ceil(NR) {
                        let bj = bp[((c0 / NR + j) * k + p0) * NR..].as_ptr();
                        let valid_c = (cols - j * NR).min(NR);
                        for g0 in (0..row_panels).step_by(GROUP) {
                            let group = &mut tiles[..GROUP.min(row_panels - g0)];
                            // SAFETY: each A panel holds kc·MR values, the B
                            // panel from row p0 on (k - p0)·NR ≥ kc·NR.
                            unsafe {
                                let a0 = ap[g0 * kc * MR..].as_ptr();
                                tiles_over(kc, a0, kc * MR, bj, group, Start::Zero)
                            };
                            for (g, out) in group.iter().enumerate() {
                                let i = g0 + g;
                                for r in 0..(rows - i * MR).min(MR) {
                                    let row = (r0 + i * MR + r) * ldc + c0 + j * NR;
                                    // SAFETY: inside this task's block of C, which
                                    // the caller checked lies inside `c`.
                                    let dst = unsafe {
                                        std::slice::from_raw_parts_mut(cp.get().add(row), valid_c)
                                    };
                                    let acc = &out[r * NR..r * NR + valid_c];
                                    store(dst, acc, alpha, base, c0 + j * NR, p0 == 0);
                                }
                            }
                        }
                    }
                }
            });
        };
        let tasks = row_blocks * col_blocks;
        if !parallel || tasks == 1 {
            (0..tasks).for_each(task);
        } else {
            (0..tasks).into_par_iter().for_each(task);
        }
    });
}
