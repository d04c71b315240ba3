//! Exponentially weighted least squares (EWLS): the cascade's first stage.
//!
//! After sample `x[n]` the coefficients `a[P]` solve the normal equations of
//! the exponentially weighted prediction error
//! `Σ_{k ≤ n} λ^{n−k} (x[k] − Σ_i a_i·x[k−1−i])²`:
//! ```text
//! R_n = Σ_{k≤n} λ^{n−k} h_k h_kᵀ,   r_n = Σ_{k≤n} λ^{n−k} h_k x[k],   h_k = (x[k−1], …, x[k−P])
//! (R_n + δ I) a = r_n,              δ = ridge · trace(R_n) / P
//! ```
//! (samples before the first are zero), and predict `x̂[n+1] = a · h_{n+1}`.
//! This is what recursive least squares tracks; solving it afresh every
//! `every` samples by Cholesky in f64 is simpler and cannot drift.
//!
//! # Why the update is O(P) a sample
//! `R_n` need not be updated entry by entry (`R ← λR + h hᵀ`, O(P²)). Its
//! entries are shifted lag products: with
//! `c_t(l) = Σ_{m≤t} λ^{t−m} x[m]·x[m−l]`, updated as `c_t = λ·c_{t−1} + x[t]·(x[t], …, x[t−P])`,
//! ```text
//! R_n(i, j) = c_{n−1−i}(j − i)   (j ≥ i),        r_n(j) = c_n(j + 1)
//! ```
//! because shifting both lags of a row by one is the same sum one sample
//! earlier. So the stage keeps the last `P + 1` vectors `c_t` (lags `0..=P`)
//! and builds `R` from them only when it solves: O(P) a sample, plus
//! O(P³/6) every `every` samples. `tests/cascade.rs` holds the result against
//! the normal equations summed from scratch.
//!
//! When Cholesky meets a non-positive pivot, or the window is silent
//! (`trace = 0`), the previous coefficients stay (zero at the start).
//!
//! # Solving early when the coefficients go stale
//! Between solves the stage sums its a-priori squared errors and the squared
//! samples; when the errors outweigh the samples (the coefficients now do
//! worse than predicting silence) it solves at once instead of waiting for
//! the next multiple of `every`. The case this is for: the first notes after
//! silence, where the window holds fewer samples than P and the solve fits
//! them with large coefficients (|a|₁ ≈ 75 on the bundled piano's first
//! onset) that extrapolate wildly a few samples on. Solving every 16 samples
//! let such a fit run 16 samples and cost 20 dB of the piano's training-part
//! gain (52.6 dB at 8, 32.8 dB at 16); with the early solve 16 gives 53.0 dB.
//! In steady music the errors sit tens of dB under the signal, so the early
//! solve almost never fires (the defaults' scored figures move by at most
//! 0.01 dB).

use crate::cpu::isa::{dispatch, isa, Isa, Kernel};
use serde::{Deserialize, Serialize};

/// The EWLS stage's settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EwlsConfig {
    /// Prediction order P: past samples a prediction reads.
    pub order: usize,
    /// Forgetting factor λ in (0, 1]: a sample `k` back weighs `λ^k`
    /// (memory about `1 / (1 − λ)` samples).
    pub lambda: f64,
    /// Samples between solves.
    pub every: usize,
    /// Ridge relative to the mean of R's diagonal.
    pub ridge: f64,
}

impl Default for EwlsConfig {
    /// Order 32, λ = 0.998 (a memory of 500 samples, 11 ms at 44.1 kHz),
    /// solved every 8 samples, ridge 1e-7: the prototype's settings (see `cascade`).
    fn default() -> Self {
        EwlsConfig {
            order: 32,
            lambda: 0.998,
            every: 8,
            ridge: 1e-7,
        }
    }
}

/// One channel's EWLS predictor. Feed it with [`Ewls::update`]; read the
/// next prediction with [`Ewls::predict`].
#[derive(Clone, Debug)]
pub struct Ewls {
    cfg: EwlsConfig,
    p: usize,
    /// The last P + 1 samples, newest first, twice over: `past[head..head + P + 1]`
    /// is contiguous whatever the ring's position.
    past: Vec<f64>,
    head: usize,
    /// Ring of the last P + 1 lag vectors `c_t` (each `P + 1` long), newest at `newest`.
    lags: Vec<f64>,
    newest: usize,
    /// The coefficients `a[P]` (lag 1 first).
    a: Vec<f64>,
    seen: u64,
    /// The prediction of the next sample from the current coefficients.
    pred: f64,
    /// Since the last solve: the a-priori squared errors and the squared samples.
    err_energy: f64,
    sig_energy: f64,
    /// Scratch: the matrix and its factor, `P × P` row-major, and the right-hand side.
    m: Vec<f64>,
    rhs: Vec<f64>,
    inv_diag: Vec<f64>,
    /// What the solve is compiled for.
    isa: Isa,
    /// Keep the coefficients (see [`Ewls::freeze`]).
    frozen: bool,
}

impl Ewls {
    pub fn new(cfg: EwlsConfig) -> Self {
        let p = cfg.order.max(1);
        Ewls {
            cfg,
            p,
            past: vec![0.0; 2 * (p + 1)],
            head: p + 1,
            lags: vec![0.0; (p + 1) * (p + 1)],
            newest: 0,
            a: vec![0.0; p],
            seen: 0,
            pred: 0.0,
            err_energy: 0.0,
            sig_energy: 0.0,
            m: vec![0.0; p * p],
            rhs: vec![0.0; p],
            inv_diag: vec![0.0; p],
            isa: isa(),
            frozen: false,
        }
    }

    pub fn config(&self) -> &EwlsConfig {
        &self.cfg
    }

    /// The current coefficients, lag 1 first.
    pub fn coefficients(&self) -> &[f64] {
        &self.a
    }

    /// The prediction of the next sample from the samples given so far.
    pub fn predict(&self) -> f64 {
        self.pred
    }

    /// Stop solving: the coefficients stay as they are, the samples still
    /// go through (a fixed predictor from here on).
    pub fn freeze(&mut self) {
        self.frozen = true;
    }

    /// Take the next sample `x`; re-solve when `every` samples have gone by.
    pub fn update(&mut self, x: f64) {
        let (p, q) = (self.p, self.p + 1);
        // Push x at the front of the doubled ring: both copies.
        self.head = if self.head == 0 { q - 1 } else { self.head - 1 };
        self.past[self.head] = x;
        self.past[self.head + q] = x;
        // c_n = λ c_{n−1} + x · (x[n], …, x[n−P]).
        let prev = self.newest * q;
        self.newest = (self.newest + 1) % q;
        let cur = self.newest * q;
        let lam = self.cfg.lambda;
        let h = &self.past[self.head..self.head + q];
        for (l, &hl) in h.iter().enumerate() {
            self.lags[cur + l] = lam * self.lags[prev + l] + x * hl;
        }
        self.seen += 1;
        // Stale coefficients: doing worse since the last solve than predicting
        // silence would means the signal has changed under them (an onset
        // after a window too short or too quiet to pin them down); solve now.
        let e = x - self.pred;
        self.err_energy += e * e;
        self.sig_energy += x * x;
        if !self.frozen
            && (self.seen.is_multiple_of(self.cfg.every.max(1) as u64)
                || self.err_energy > self.sig_energy)
        {
            self.solve();
            self.err_energy = 0.0;
            self.sig_energy = 0.0;
        }
        let h = &self.past[self.head..self.head + p];
        self.pred = dot(&self.a, h);
    }

    /// `c_{n−back}`, the lag vector `back` samples before the newest.
    fn lag(&self, back: usize) -> &[f64] {
        let q = self.p + 1;
        let k = (self.newest + q - back) % q;
        &self.lags[k * q..(k + 1) * q]
    }

    /// Build `R_n + δI` and `r_n` and solve; keep the old coefficients if it
    /// fails. Compiled for the instruction set `cpu::isa` picks (wider vectors,
    /// the same operations in the same order: the same bits on every set).
    fn solve(&mut self) {
        // SAFETY: `dispatch` checks the instruction set.
        unsafe { dispatch(self.isa, Solve(self)) }
    }

    #[inline(always)]
    fn solve_with(&mut self, dot: impl Fn(&[f64], &[f64]) -> f64 + Copy) {
        let p = self.p;
        let mut rhs = std::mem::take(&mut self.rhs);
        rhs.copy_from_slice(&self.lag(0)[1..=p]);
        let mut m = std::mem::take(&mut self.m);
        // The lower triangle, row-major: m[i][j] = R(j, i) = c_{n−1−j}(i − j), j ≤ i.
        for j in 0..p {
            let c = self.lag(1 + j);
            for i in j..p {
                m[i * p + j] = c[i - j];
            }
        }
        let trace: f64 = (0..p).map(|i| m[i * p + i]).sum();
        let ok = trace > 0.0
            && trace.is_finite()
            && cholesky_lower(
                &mut m,
                p,
                self.cfg.ridge * trace / p as f64,
                &mut self.inv_diag,
                dot,
            );
        if ok {
            solve_lower(&m, p, &self.inv_diag, &mut rhs, dot);
            self.a.copy_from_slice(&rhs);
        }
        self.m = m;
        self.rhs = rhs;
    }
}

/// [`Ewls::solve`]'s body as a [`Kernel`] (`cpu::isa`).
struct Solve<'a>(&'a mut Ewls);

impl Kernel for Solve<'_> {
    type Output = ();

    /// On AVX2 and AVX-512 the dot products are AVX2 intrinsics (the
    /// compiler's own vectorization of [`dot`] shuffled pairs of lanes): the
    /// same four lanes summed in the same order, so the same bits as portable.
    #[inline(always)]
    unsafe fn run(self, isa: Isa) {
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `dispatch` runs this for these sets only on a CPU with AVX2.
            Isa::Avx512 | Isa::Avx2Fma => self.0.solve_with(|a, b| unsafe { dot_avx2(a, b) }),
            _ => self.0.solve_with(dot),
        }
    }
}

/// `Σ a_i b_i` in four independent sums (so it vectorizes).
#[inline(always)]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut s = [0.0f64; 4];
    let mut ca = a.chunks_exact(4);
    let mut cb = b.chunks_exact(4);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for k in 0..4 {
            s[k] += x[k] * y[k];
        }
    }
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    (s[0] + s[1]) + (s[2] + s[3]) + tail
}

/// [`dot`] in AVX2: one vector holds the four sums, a multiply then an add
/// (no FMA, which would round differently), reduced as `dot` reduces.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn dot_avx2(a: &[f64], b: &[f64]) -> f64 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let whole = n - n % 4;
    let mut s = _mm256_setzero_pd();
    let mut i = 0;
    while i < whole {
        // SAFETY: i + 4 ≤ whole ≤ n, the length of both slices.
        let (x, y) = unsafe {
            (
                _mm256_loadu_pd(a.as_ptr().add(i)),
                _mm256_loadu_pd(b.as_ptr().add(i)),
            )
        };
        s = _mm256_add_pd(s, _mm256_mul_pd(x, y));
        i += 4;
    }
    let mut lanes = [0.0f64; 4];
    // SAFETY: `lanes` holds four f64.
    unsafe { _mm256_storeu_pd(lanes.as_mut_ptr(), s) };
    let tail: f64 = a[whole..].iter().zip(&b[whole..]).map(|(x, y)| x * y).sum();
    (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]) + tail
}

/// Rows of `L` computed side by side in [`cholesky_lower`].
const ROWS: usize = 4;

/// In place: the lower triangle of `m` (P × P row-major, symmetric, only
/// `j ≤ i` read) plus `delta` on the diagonal becomes `L` with `L·Lᵀ = M + δI`
/// (Cholesky–Crout: every entry one dot product of two contiguous row
/// prefixes). False on a non-positive or non-finite pivot.
///
/// Entry `(i, j)` needs row `j` finished and row `i`'s entries before `j`: a
/// chain of dependent dot products along each row, which is what bounds the
/// time. Rows `i .. i + ROWS` only need the rows above them for their columns
/// before `i`, so those columns go side by side over the block's rows (four
/// independent chains for the CPU to overlap), then the triangle inside the
/// block row by row. Every entry is the same operations in the same order as
/// the row-by-row loop (`cholesky_lower_rows`, the tests' reference): the same bits.
#[inline(always)]
fn cholesky_lower(
    m: &mut [f64],
    p: usize,
    delta: f64,
    inv_diag: &mut [f64],
    dot: impl Fn(&[f64], &[f64]) -> f64,
) -> bool {
    for i0 in (0..p).step_by(ROWS) {
        let rows = ROWS.min(p - i0);
        let (done, block) = m.split_at_mut(i0 * p);
        let block = &mut block[..rows * p];
        // The block's columns before i0, against the finished rows above.
        for j in 0..i0 {
            let lj = &done[j * p..j * p + j];
            for row in block.chunks_exact_mut(p) {
                row[j] = (row[j] - dot(&row[..j], lj)) * inv_diag[j];
            }
        }
        // The triangle inside the block.
        for k in 0..rows {
            let (above, rest) = block.split_at_mut(k * p);
            if !finish_row(&mut rest[..p], above, i0, i0 + k, delta, inv_diag, &dot) {
                return false;
            }
        }
    }
    true
}

/// Row `i` of `L` (`row`, P long) from column `j0` on: its entries `j0 .. i`
/// against the finished rows `j0 .. i` (row `j` at `done[(j − j0)·P ..]`),
/// then its diagonal `L_ii = √(m_ii + δ − Σ_{j<i} L_ij²)` and that diagonal's
/// reciprocal. False when the pivot under the root is not positive and finite.
#[inline(always)]
fn finish_row(
    row: &mut [f64],
    done: &[f64],
    j0: usize,
    i: usize,
    delta: f64,
    inv_diag: &mut [f64],
    dot: &impl Fn(&[f64], &[f64]) -> f64,
) -> bool {
    let p = row.len();
    for j in j0..i {
        let lj = &done[(j - j0) * p..(j - j0) * p + j];
        row[j] = (row[j] - dot(&row[..j], lj)) * inv_diag[j];
    }
    let d = row[i] + delta - dot(&row[..i], &row[..i]);
    if !(d > 0.0 && d.is_finite()) {
        return false;
    }
    row[i] = d.sqrt();
    inv_diag[i] = 1.0 / row[i];
    true
}

/// The row-by-row Crout loop [`cholesky_lower`] reorders: the reference its
/// tests hold it to, bit for bit.
#[cfg(test)]
fn cholesky_lower_rows(m: &mut [f64], p: usize, delta: f64, inv_diag: &mut [f64]) -> bool {
    for i in 0..p {
        let (done, rest) = m.split_at_mut(i * p);
        if !finish_row(&mut rest[..p], done, 0, i, delta, inv_diag, &dot) {
            return false;
        }
    }
    true
}

/// Solve `L·Lᵀ a = b` in place (`L` and its diagonal's reciprocals from [`cholesky_lower`]).
#[inline(always)]
fn solve_lower(
    l: &[f64],
    p: usize,
    inv_diag: &[f64],
    b: &mut [f64],
    dot: impl Fn(&[f64], &[f64]) -> f64,
) {
    // L y = b: forward, row dot products.
    for i in 0..p {
        let s = dot(&l[i * p..i * p + i], &b[..i]);
        b[i] = (b[i] - s) * inv_diag[i];
    }
    // Lᵀ a = y: backward; row i of L holds column i of Lᵀ, a contiguous axpy.
    for i in (0..p).rev() {
        b[i] *= inv_diag[i];
        let ai = b[i];
        for (bk, &lik) in b[..i].iter_mut().zip(&l[i * p..i * p + i]) {
            *bk -= lik * ai;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The blocked factorization gives the row-by-row loop's bits, and
    /// refuses the same matrices, on fresh random Gram matrices of odd and
    /// even sizes (some made singular, so the ridge decides).
    #[test]
    fn blocked_cholesky_is_bit_identical_to_the_row_by_row_loop() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        for p in [1usize, 2, 3, 4, 5, 7, 8, 13, 31, 32, 33] {
            for (rank, delta) in [(p + 3, 0.0), (p.div_ceil(2), 1e-9), (p.div_ceil(2), 0.0)] {
                let h: Vec<f64> = (0..rank * p).map(|_| next()).collect();
                let mut m = vec![0.0; p * p];
                for i in 0..p {
                    for j in 0..p {
                        m[i * p + j] = (0..rank).map(|k| h[k * p + i] * h[k * p + j]).sum();
                    }
                }
                let (mut a, mut b) = (m.clone(), m);
                let (mut da, mut db) = (vec![0.0; p], vec![0.0; p]);
                let ok_a = cholesky_lower(&mut a, p, delta, &mut da, dot);
                let ok_b = cholesky_lower_rows(&mut b, p, delta, &mut db);
                assert_eq!(ok_a, ok_b, "p {p} rank {rank}");
                if ok_a {
                    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&a), bits(&b), "p {p} rank {rank}");
                    assert_eq!(bits(&da), bits(&db), "p {p} rank {rank}");
                }
            }
        }
    }

    /// The AVX2 dot product gives `dot`'s bits on fresh inputs of every length
    /// the solve meets (0..=40, odd ones too), values spread over many scales.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_dot_is_bit_identical_to_the_portable_one() {
        if !(std::is_x86_feature_detected!("avx2")) {
            return;
        }
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let u = (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            u * 10f64.powi((state % 9) as i32 - 4)
        };
        for n in 0..=40 {
            for _ in 0..20 {
                let a: Vec<f64> = (0..n).map(|_| next()).collect();
                let b: Vec<f64> = (0..n).map(|_| next()).collect();
                // SAFETY: checked above that the CPU has AVX2.
                let fast = unsafe { dot_avx2(&a, &b) };
                assert_eq!(fast.to_bits(), dot(&a, &b).to_bits(), "length {n}");
            }
        }
    }
}
