//! Classic one-step predictors: the yardsticks a learned model must beat.
//!
//! # Layout
//! Every predictor reads a signal `x[N, C]`, frame-major and interleaved as in
//! `dataset` (`x[n * C + ch]`), and predicts the targets of `positions`: for
//! position `p` the target is frame `p + 1`, predicted from frames `..= p`
//! only. The result is `[positions.len(), C]`, the layout
//! `predict::teacher_forced` returns, so `metrics` scores a model and these
//! predictors on exactly the same samples. Channels are predicted
//! independently of each other.
//!
//! # The predictors (t is the target frame, x one channel)
//! - next = current: `x̂[t] = x[t−1]`.
//! - linear extrapolation: `x̂[t] = 2·x[t−1] − x[t−2]`; at `t = 1`, with one
//!   sample of past, `x[0]`.
//! - causal LPC ([`LpcConfig`]): `x̂[t] = Σ_{k=1..p} a_k·x[t−k]`, with the
//!   coefficients `a` refitted at the start of every block of `block` frames
//!   (blocks sit on a grid from frame 0 of the signal, so a prediction does
//!   not depend on which positions are asked for).
//!
//! # The LPC fit: covariance (least-squares) method
//! At block start `t0` the coefficients minimise
//! `Σ_n (x[n] − Σ_k a_k·x[n−k])²` over the rows `n ∈ [max(t0 − history, 0) + p, t0)`,
//! so that every sample the fit reads lies in the preceding `history` frames
//! `x[t0 − history .. t0)` and nothing at or after `t0` is used. With
//! `φ(i, j) = Σ_n x[n−i]·x[n−j]` the normal equations are
//! `Σ_j φ(i, j)·a_j = φ(i, 0)` for `i, j = 1..p`, solved by Cholesky in f64
//! after adding a ridge `λ = ridge · trace(Φ) / p` to the diagonal. The
//! reference ridge is a −120 dB floor under the mean signal energy: enough
//! to keep Φ positive definite on signals with fewer than `p` sinusoids (a
//! pure tone, a silence that ends), too small to act as regularisation, so
//! this is the plain least-squares predictor. (A ridge near 1e-7 would fit
//! real music better out of sample; that would be a different baseline.)
//!
//! A block uses next = current instead when its fit has fewer than
//! `min_rows` rows (the start of the signal: the first block, by default),
//! when the window is silent (`trace(Φ) = 0`), or when Cholesky finds a
//! non-positive pivot.
//!
//! The first row `φ(0, j)` is summed once per grid block of rows and reused
//! by every window that covers that block, and the rest of Φ follows from it
//! by `φ(i+1, j+1) = φ(i, j) + x[a−1−i]·x[a−1−j] − x[b−1−i]·x[b−1−j]` for
//! rows `[a, b)`: the whole predictor is O(N·p + N/block·p³) per channel.

use std::ops::Range;

/// The causal LPC predictor's settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LpcConfig {
    /// Prediction order p: how many past samples a prediction reads.
    pub order: usize,
    /// Frames between refits.
    pub block: usize,
    /// Frames before a block start that its fit may read.
    pub history: usize,
    /// Ridge, relative to the mean of Φ's diagonal.
    pub ridge: f64,
    /// Fewest rows a fit may have; fewer and the block falls back to next = current.
    pub min_rows: usize,
}

/// The order of the reference LPC predictor.
pub const ORDER: usize = 32;
/// Frames between refits of the reference LPC predictor.
pub const BLOCK: usize = 1024;
/// The reference ridge (see the module doc).
pub const RIDGE: f64 = 1e-12;

impl LpcConfig {
    /// The reference predictor: order 32, refitted every 1024 frames on the
    /// preceding second.
    pub fn standard(sample_rate: u32) -> Self {
        LpcConfig {
            order: ORDER,
            block: BLOCK,
            history: sample_rate as usize,
            ridge: RIDGE,
            min_rows: 4 * ORDER,
        }
    }
}

/// `x̂[t] = x[t−1]`: `[positions.len(), C]`.
pub fn next_equals_current(x: &[f32], channels: usize, positions: Range<usize>) -> Vec<f32> {
    let c = channels;
    positions
        .flat_map(|p| x[p * c..(p + 1) * c].iter().copied())
        .collect()
}

/// `x̂[t] = 2·x[t−1] − x[t−2]` (`x[0]` at `t = 1`): `[positions.len(), C]`.
pub fn linear(x: &[f32], channels: usize, positions: Range<usize>) -> Vec<f32> {
    let c = channels;
    let mut out = Vec::with_capacity(positions.len() * c);
    for p in positions {
        for ch in 0..c {
            let cur = x[p * c + ch];
            out.push(if p == 0 {
                cur
            } else {
                // In f64: 2·cur − prev is not exact in f32 near full scale.
                (2.0 * cur as f64 - x[(p - 1) * c + ch] as f64) as f32
            });
        }
    }
    out
}

/// Causal block LPC (see the module doc): `[positions.len(), C]`.
pub fn lpc(x: &[f32], channels: usize, positions: Range<usize>, cfg: &LpcConfig) -> Vec<f32> {
    let c = channels;
    let n = positions.len();
    let mut out = vec![0.0f32; n * c];
    if n == 0 {
        return out;
    }
    let targets = positions.start + 1..positions.end + 1;
    for ch in 0..c {
        // Only the past of the last target is ever read.
        let xc: Vec<f32> = x[..targets.end * c]
            .iter()
            .skip(ch)
            .step_by(c)
            .copied()
            .collect();
        let pred = lpc_channel(&xc, targets.clone(), cfg);
        for (i, v) in pred.into_iter().enumerate() {
            out[i * c + ch] = v as f32;
        }
    }
    out
}

/// One channel: predictions of `x[t]` for `t` in `targets`.
fn lpc_channel(x: &[f32], targets: Range<usize>, cfg: &LpcConfig) -> Vec<f64> {
    let (p, bs) = (cfg.order.max(1), cfg.block.max(1));
    let mut rows = RowSums::new(x, p, bs);
    let mut out = Vec::with_capacity(targets.len());
    let mut t0 = targets.start / bs * bs;
    while t0 < targets.end {
        let fit_rows = fit_rows(t0, cfg.history, p);
        let a = if fit_rows.len() >= cfg.min_rows.max(1) {
            let r0 = rows.first_row(fit_rows.clone());
            solve(&covariance(&r0, x, fit_rows, p), p, cfg.ridge)
        } else {
            None
        };
        for t in t0.max(targets.start)..(t0 + bs).min(targets.end) {
            out.push(match &a {
                Some(a) => dot_past(a, x, t),
                None => x[t - 1] as f64,
            });
        }
        t0 += bs;
    }
    out
}

/// Rows of the fit at block start `t0`: every sample they read lies in `x[t0 − history .. t0)`.
pub fn fit_rows(t0: usize, history: usize, order: usize) -> Range<usize> {
    let a = t0.saturating_sub(history) + order;
    a.min(t0)..t0
}

/// `Σ_k a_k·x[t−k]`, `k = 1..p`.
fn dot_past(a: &[f64], x: &[f32], t: usize) -> f64 {
    a.iter()
        .enumerate()
        .map(|(k, &ak)| ak * x[t - 1 - k] as f64)
        .sum()
}

/// Least-squares coefficients `a[p]` of order `order` over `rows` (every
/// `n ∈ rows` needs `n ≥ order`), with the relative `ridge`: the same fit the
/// block predictor makes, summed directly. None when it would fall back.
pub fn fit(x: &[f32], rows: Range<usize>, order: usize, ridge: f64) -> Option<Vec<f64>> {
    assert!(rows.start >= order, "a row needs `order` samples of past");
    let r0 = lagged_products(x, rows.clone(), order);
    solve(&covariance(&r0, x, rows, order), order, ridge)
}

/// `φ(0, j) = Σ_{n ∈ rows} x[n]·x[n−j]` for `j = 0..=p`.
fn lagged_products(x: &[f32], rows: Range<usize>, p: usize) -> Vec<f64> {
    let mut r = vec![0.0f64; p + 1];
    for n in rows {
        let xn = x[n] as f64;
        for (j, rj) in r.iter_mut().enumerate() {
            *rj += xn * x[n - j] as f64;
        }
    }
    r
}

/// `φ(0, ·)` over any rows `[a, b)` with `a ≥ p`: the rows of whole grid
/// blocks come from a cache (summed once each), the ragged head directly.
/// Each window is a fresh sum, never a running total with old rows
/// subtracted, so no rounding error accumulates along the signal.
struct RowSums<'a> {
    x: &'a [f32],
    p: usize,
    block: usize,
    /// Per grid block: its rows' `φ(0, ·)`, once summed.
    cache: Vec<Option<Vec<f64>>>,
}

impl<'a> RowSums<'a> {
    fn new(x: &'a [f32], p: usize, block: usize) -> Self {
        RowSums {
            x,
            p,
            block,
            cache: vec![None; x.len() / block + 1],
        }
    }

    fn first_row(&mut self, rows: Range<usize>) -> Vec<f64> {
        let (p, bs) = (self.p, self.block);
        let first_whole = rows.start.div_ceil(bs);
        let last_whole = rows.end / bs;
        if first_whole >= last_whole {
            return lagged_products(self.x, rows, p);
        }
        let head = rows.start..first_whole * bs;
        let tail = last_whole * bs..rows.end;
        let mut r = lagged_products(self.x, head, p);
        for (j, v) in lagged_products(self.x, tail, p).into_iter().enumerate() {
            r[j] += v;
        }
        for k in first_whole..last_whole {
            let (x, p) = (self.x, p);
            let part =
                self.cache[k].get_or_insert_with(|| lagged_products(x, k * bs..(k + 1) * bs, p));
            for (rj, v) in r.iter_mut().zip(part.iter()) {
                *rj += v;
            }
        }
        r
    }
}

/// The whole `Φ[(p+1)×(p+1)]`, row-major, `φ(i, j)` over `rows`, from its first row.
fn covariance(r0: &[f64], x: &[f32], rows: Range<usize>, p: usize) -> Vec<f64> {
    let m = p + 1;
    let mut phi = vec![0.0f64; m * m];
    phi[..m].copy_from_slice(r0);
    if rows.is_empty() {
        return phi;
    }
    let (a, b) = (rows.start, rows.end);
    let v = |n: usize| x[n] as f64;
    for i in 0..p {
        for j in i..p {
            // Shifting both lags by one moves the row range to [a−1, b−1).
            phi[(i + 1) * m + j + 1] =
                phi[i * m + j] + v(a - 1 - i) * v(a - 1 - j) - v(b - 1 - i) * v(b - 1 - j);
        }
    }
    for i in 0..m {
        for j in 0..i {
            phi[i * m + j] = phi[j * m + i];
        }
    }
    phi
}

/// Solve `(Φ₁₁ + λI)·a = φ(1.., 0)` by Cholesky, `Φ₁₁` being Φ without its
/// row and column 0. None when the window is silent or a pivot is not positive.
fn solve(phi: &[f64], p: usize, ridge: f64) -> Option<Vec<f64>> {
    let m = p + 1;
    let trace: f64 = (1..m).map(|i| phi[i * m + i]).sum();
    if !(trace > 0.0 && trace.is_finite()) {
        return None;
    }
    let lambda = ridge * trace / p as f64;
    // L·Lᵀ = Φ₁₁ + λI, lower triangle, row-major p×p.
    let mut l = vec![0.0f64; p * p];
    for i in 0..p {
        for j in 0..=i {
            let mut s = phi[(i + 1) * m + j + 1] + if i == j { lambda } else { 0.0 };
            for k in 0..j {
                s -= l[i * p + k] * l[j * p + k];
            }
            if i == j {
                if s <= 0.0 {
                    return None;
                }
                l[i * p + i] = s.sqrt();
            } else {
                l[i * p + j] = s / l[j * p + j];
            }
        }
    }
    let mut y: Vec<f64> = (1..m).map(|i| phi[i * m]).collect();
    cholesky_solve(&l, p, &mut y);
    Some(y)
}

/// In place, `y ← (L·Lᵀ)⁻¹·y` for the lower-triangular `l` (`n × n`
/// row-major, as a Cholesky factorization leaves it): forward (`L·z = y`),
/// then back (`Lᵀ·x = z`) substitution.
pub(crate) fn cholesky_solve(l: &[f64], n: usize, y: &mut [f64]) {
    for i in 0..n {
        for k in 0..i {
            y[i] -= l[i * n + k] * y[k];
        }
        y[i] /= l[i * n + i];
    }
    for i in (0..n).rev() {
        for k in i + 1..n {
            y[i] -= l[k * n + i] * y[k];
        }
        y[i] /= l[i * n + i];
    }
}

/// The causal block LPC of [`lpc`], one frame at a time, for a signal that
/// is written as it is predicted (free-running generation): one channel.
/// Block starts sit on the grid from the first frame pushed, so on the same
/// frames it predicts what [`lpc`] does (up to rounding: the fit here is
/// summed directly, see [`fit`]). Only the last `history + block` frames are
/// kept, so memory stays flat however long the signal grows.
#[derive(Clone, Debug)]
pub struct LpcStream {
    cfg: LpcConfig,
    /// Frames `start .. start + past.len()` of the signal.
    past: Vec<f32>,
    start: usize,
    /// The block start the coefficients were fitted for, and the fit (None: next = current).
    fitted: Option<(usize, Option<Vec<f64>>)>,
}

impl LpcStream {
    pub fn new(cfg: LpcConfig) -> Self {
        LpcStream {
            cfg,
            past: Vec::new(),
            start: 0,
            fitted: None,
        }
    }

    /// Append the signal's next frame.
    pub fn push(&mut self, v: f32) {
        self.past.push(v);
        // A fit at block start t0 reads from t0 − history, and t0 > t − block.
        let keep = self.cfg.history + self.cfg.block.max(1) + self.cfg.order;
        if self.past.len() > 2 * keep {
            let drop = self.past.len() - keep;
            self.past.drain(..drop);
            self.start += drop;
        }
    }

    /// The prediction of the next frame (number `frames pushed`) from the
    /// frames pushed so far; 0 before the first.
    pub fn predict(&mut self) -> f64 {
        let Some(&last) = self.past.last() else {
            return 0.0;
        };
        let (p, bs) = (self.cfg.order.max(1), self.cfg.block.max(1));
        let t = self.start + self.past.len();
        let t0 = t / bs * bs;
        if self.fitted.as_ref().map(|f| f.0) != Some(t0) {
            let rows = fit_rows(t0, self.cfg.history, p);
            let a = if rows.len() >= self.cfg.min_rows.max(1) {
                // Relative to `past`, whose first frame is `start`.
                let rel = rows.start - self.start..rows.end - self.start;
                fit(&self.past, rel, p, self.cfg.ridge)
            } else {
                None
            };
            self.fitted = Some((t0, a));
        }
        match &self.fitted {
            Some((_, Some(a))) => dot_past(a, &self.past, t - self.start),
            _ => last as f64,
        }
    }
}
