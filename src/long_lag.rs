//! A long-term predictor of the cascade's residual: music that repeats
//! itself (a loop, a bar played again) leaves residuals that match their
//! own past at a lag of seconds, far beyond the cascade's 256 taps. A
//! feature of the hybrid's network (`hybrid`, `--long-lag`), in the spirit
//! of LPCNet's pitch features (Valin & Skoglund, ICASSP 2019) at a musical
//! time scale, and of the long-term predictor of speech codecs.
//!
//! # How it predicts, causally
//! Every [`BLOCK`] residuals, from the residuals so far only: the lag
//! `L ≥ MIN_LAG` whose window of the past best matches the last
//! [`TEMPLATE`] residuals (largest normalized cross-correlation, by FFT over
//! at most the last [`REACH`] residuals), then three taps `w` around `L`
//! fitted to that template by least squares. Until the next search the
//! prediction of residual `n` is `w₀·e[n−L−1] + w₁·e[n−L] + w₂·e[n−L+1]`,
//! and the match's correlation `r ∈ [−1, 1]` says how far to trust it.
//! Before the first search (the first `TEMPLATE + MIN_LAG` residuals) both
//! are 0. The search costs three FFTs of up to 2²⁰ points per block.
//!
//! (On each shared clip's training part, fitted before 80 % and measured on
//! 80-90 %, this predictor alone took +1.57 dB of the electronic clip's
//! residual and nothing of the piano's and the orchestral clip's:
//! `examples/headroom.rs`.)

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Residuals between searches.
pub const BLOCK: usize = 2048;
/// Residuals the match is made on.
pub const TEMPLATE: usize = 8192;
/// Shortest lag (shorter ones are the cascade's business).
pub const MIN_LAG: usize = 4096;
/// The farthest past searched: 2¹⁹ residuals, 11.9 s at 44.1 kHz.
pub const REACH: usize = 1 << 19;

/// What a checkpoint stores of it: that it is on (the constants above are
/// the method; a later change to them would add fields here).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LongLagConfig {}

/// One channel's long-term predictor.
#[derive(Clone, Default)]
pub struct LongLag {
    /// The last residuals, at least `REACH` of them once there are that
    /// many (all the search and the prediction read), at most `2·REACH`.
    past: Vec<f64>,
    /// Residuals taken so far (the blocks count from the first).
    seen: usize,
    lag: usize,
    taps: [f64; 3],
    correlation: f64,
    /// The forward and inverse transforms of the last search's size, planned
    /// once per size.
    plans: Option<Plans>,
}

/// A size, and its forward and inverse transforms.
type Plans = (usize, Arc<dyn Fft<f64>>, Arc<dyn Fft<f64>>);

impl std::fmt::Debug for LongLag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LongLag")
            .field("residuals", &self.seen)
            .field("lag", &self.lag)
            .field("taps", &self.taps)
            .field("correlation", &self.correlation)
            .finish()
    }
}

impl LongLag {
    pub fn new() -> Self {
        LongLag::default()
    }

    /// The prediction of the next residual, and the correlation of the match
    /// it comes from (both 0 before the first search).
    pub fn predict(&self) -> (f64, f64) {
        if self.lag == 0 {
            return (0.0, 0.0);
        }
        let n = self.past.len();
        let at = |k: usize| self.past[n + k - self.lag - 1];
        let p = self.taps[0] * at(0) + self.taps[1] * at(1) + self.taps[2] * at(2);
        (p, self.correlation)
    }

    /// Take the next residual; every `BLOCK` of them, search again.
    pub fn update(&mut self, e: f64) {
        // Dropped in halves, so a song of any length keeps 8-16 MiB per
        // channel, not 8 bytes of every residual it ever had.
        if self.past.len() == 2 * REACH {
            self.past.drain(..REACH);
        }
        self.past.push(e);
        self.seen += 1;
        let n = self.seen;
        if n.is_multiple_of(BLOCK) && n >= TEMPLATE + MIN_LAG + 2 {
            self.search();
        }
    }

    fn search(&mut self) {
        let n = self.past.len();
        let start = n.saturating_sub(REACH);
        let (m, t0) = (n - start, n - start - TEMPLATE);
        // c[s] = Σ_i hist[s + i]·template[i]: the correlation of the window
        // starting at s (lag t0 − s) with the template.
        let size = (m + TEMPLATE).next_power_of_two();
        if self.plans.as_ref().is_none_or(|p| p.0 != size) {
            let mut planner = FftPlanner::<f64>::new();
            let (fwd, inv) = (
                planner.plan_fft_forward(size),
                planner.plan_fft_inverse(size),
            );
            self.plans = Some((size, fwd, inv));
        }
        let (_, fwd, inv) = self.plans.clone().expect("planned above");
        let hist = &self.past[start..];
        let zero = Complex::new(0.0, 0.0);
        let mut h: Vec<Complex<f64>> = hist.iter().map(|&v| Complex::new(v, 0.0)).collect();
        h.resize(size, zero);
        let mut q: Vec<Complex<f64>> = hist[t0..].iter().map(|&v| Complex::new(v, 0.0)).collect();
        q.resize(size, zero);
        fwd.process(&mut h);
        fwd.process(&mut q);
        let mut c: Vec<Complex<f64>> = h.iter().zip(&q).map(|(a, b)| a * b.conj()).collect();
        inv.process(&mut c);
        let mut energy = vec![0.0; m + 1];
        for (i, v) in hist.iter().enumerate() {
            energy[i + 1] = energy[i] + v * v;
        }
        let template_energy = energy[m] - energy[t0];
        // Windows from s = 1 (the first tap reads s − 1) to lag MIN_LAG.
        let (mut best, mut lag) = (f64::NEG_INFINITY, 0);
        for s in 1..=t0 - MIN_LAG {
            let en = (energy[s + TEMPLATE] - energy[s]) * template_energy;
            if en > 0.0 {
                // The inverse FFT is unnormalized: divide by its size.
                let r = c[s].re / size as f64 / en.sqrt();
                if r > best {
                    best = r;
                    lag = t0 - s;
                }
            }
        }
        if lag == 0 {
            return;
        }
        // Three taps on the template: rows (e[t−L−1], e[t−L], e[t−L+1]) → e[t].
        let (mut a, mut b) = ([[0.0f64; 3]; 3], [0.0f64; 3]);
        for t in t0..m {
            let row = [hist[t - lag - 1], hist[t - lag], hist[t - lag + 1]];
            for i in 0..3 {
                b[i] += row[i] * hist[t];
                for j in 0..3 {
                    a[i][j] += row[i] * row[j];
                }
            }
        }
        let ridge = 1e-6 * (a[0][0] + a[1][1] + a[2][2]) + 1e-300;
        for (i, row) in a.iter_mut().enumerate() {
            row[i] += ridge;
        }
        if let Some(w) = solve3(a, b) {
            self.lag = lag;
            self.taps = w;
            self.correlation = best.clamp(-1.0, 1.0);
        }
    }
}

/// `a·w = b` for a symmetric positive definite 3 × 3 `a` (Cholesky), None
/// if it is not.
fn solve3(a: [[f64; 3]; 3], b: [f64; 3]) -> Option<[f64; 3]> {
    let mut l = [[0.0f64; 3]; 3];
    for j in 0..3 {
        let d = a[j][j] - (0..j).map(|k| l[j][k] * l[j][k]).sum::<f64>();
        // Not positive, or NaN.
        if d.is_nan() || d <= 0.0 {
            return None;
        }
        l[j][j] = d.sqrt();
        for i in j + 1..3 {
            l[i][j] = (a[i][j] - (0..j).map(|k| l[i][k] * l[j][k]).sum::<f64>()) / l[j][j];
        }
    }
    let mut y = [0.0f64; 3];
    for i in 0..3 {
        y[i] = (b[i] - (0..i).map(|k| l[i][k] * y[k]).sum::<f64>()) / l[i][i];
    }
    let mut w = [0.0f64; 3];
    for i in (0..3).rev() {
        w[i] = (y[i] - (i + 1..3).map(|k| l[k][i] * w[k]).sum::<f64>()) / l[i][i];
    }
    w.iter().all(|v| v.is_finite()).then_some(w)
}
