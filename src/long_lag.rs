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
//! [`TEMPLATE`] residuals (largest normalized cross-correlation over at most
//! the last [`REACH`] residuals), then three taps `w` around `L` fitted to
//! that template by least squares. Until the next search the prediction of
//! residual `n` is `w₀·e[n−L−1] + w₁·e[n−L] + w₂·e[n−L+1]`, and the
//! match's correlation `r ∈ [−1, 1]` says how far to trust it. Before the
//! first search (the first `TEMPLATE + MIN_LAG` residuals) both are 0.
//!
//! # The search, exactly
//! With `n` residuals taken (`e[0..n]`, absolute indices), the template is
//! `e[n−T..n]` (`T = TEMPLATE`), and a window starting at `s` is
//! `e[s..s+T]`, lag `n − T − s`, for every `s` in
//! `max(1, n − REACH + 1) ..= n − T − MIN_LAG` (`s ≥ 1` since the first tap
//! reads `e[s−1]`). Its correlation is `Σ e[s+i]·e[n−T+i] / √(E_s·E_t)`
//! over `i < T` (`E` the windows' energies; windows of no energy are
//! skipped); the largest wins, the earliest `s` of equal ones.
//! [`reference_match`] computes exactly that, directly; [`LongLag`] gets
//! the same lag by FFT (below) and then computes the winner's correlation
//! and taps directly, as the reference does.
//!
//! # The fast search: the past's transforms, kept
//! The correlations for the window starts `kS .. (k+1)S` (segment `k`,
//! `S = SEGMENT`) need only `e[kS .. kS + S + T]`: one circular correlation
//! of size `S + T` (overlap-save; no wrap reaches the outputs kept). A
//! segment's input never changes once the song has passed its end, so its
//! transform is taken once, kept while the segment is within reach, and a
//! search costs one transform of the template, at most one of the newest
//! (still growing, zero-filled) segment, and one product and inverse
//! transform per segment: 22 inverse real transforms of 2¹⁵ points at full
//! reach, where one correlation over the whole reach took three complex
//! ones of 2²⁰.
//!
//! (On each shared clip's training part, fitted before 80 % and measured on
//! 80-90 %, this predictor alone took +1.57 dB of the electronic clip's
//! residual and nothing of the piano's and the orchestral clip's:
//! `examples/headroom.rs`.)

use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use rustfft::num_complex::Complex;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Arc;

/// Residuals between searches.
pub const BLOCK: usize = 2048;
/// Residuals the match is made on.
pub const TEMPLATE: usize = 8192;
/// Shortest lag (shorter ones are the cascade's business).
pub const MIN_LAG: usize = 4096;
/// The farthest past searched: 2¹⁹ residuals, 11.9 s at 44.1 kHz.
pub const REACH: usize = 1 << 19;
/// Window starts per kept transform: `SEGMENT + TEMPLATE` is a power of two.
pub const SEGMENT: usize = 3 * TEMPLATE;

/// What a checkpoint stores of it: that it is on (the constants above are
/// the method; a later change to them would add fields here).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LongLagConfig {}

/// The search's sizes: the constants above in a model, smaller ones in tests
/// (so the direct reference can check the fast search in reasonable time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub block: usize,
    pub template: usize,
    pub min_lag: usize,
    pub reach: usize,
    /// Window starts per kept transform; `segment + template` is the
    /// transforms' size, which must be even (a real transform's) and is
    /// fastest as a power of two.
    pub segment: usize,
}

impl Shape {
    /// The model's.
    pub const MODEL: Shape = Shape {
        block: BLOCK,
        template: TEMPLATE,
        min_lag: MIN_LAG,
        reach: REACH,
        segment: SEGMENT,
    };

    /// Residuals needed before the first search.
    fn first_search(&self) -> usize {
        self.template + self.min_lag + 2
    }

    /// The window starts searched once `n` residuals are in.
    fn starts(&self, n: usize) -> std::ops::RangeInclusive<usize> {
        ((n + 1).saturating_sub(self.reach)).max(1)..=n - self.template - self.min_lag
    }
}

/// What a search found: the lag, its three taps, its correlation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Match {
    pub lag: usize,
    pub taps: [f64; 3],
    pub correlation: f64,
}

/// One channel's long-term predictor.
#[derive(Clone)]
pub struct LongLag {
    shape: Shape,
    /// The last residuals, at least `reach + segment` of them once there are
    /// that many (all the search and the prediction read), at most twice that.
    past: Vec<f64>,
    /// Residuals taken so far (the blocks count from the first).
    seen: usize,
    found: Option<Match>,
    /// Transforms of the segments whose input is complete, from `first_kept`
    /// on, one after another.
    kept: VecDeque<Vec<Complex<f64>>>,
    first_kept: usize,
    fwd: Arc<dyn RealToComplex<f64>>,
    inv: Arc<dyn ComplexToReal<f64>>,
    scratch: Scratch,
}

/// A search's working buffers, kept from one search to the next: the
/// window energies alone are 4 MiB at full reach, and freshly allocated
/// every block they cost the generation a page fault per few samples.
#[derive(Clone)]
struct Scratch {
    /// A transform's real input, `segment + template`.
    input: Vec<f64>,
    /// The template's spectrum, conjugated in use.
    template: Vec<Complex<f64>>,
    /// A segment's spectrum that is not kept (the newest, still growing).
    fresh: Vec<Complex<f64>>,
    /// A segment's spectrum times the template's, then its inverse.
    product: Vec<Complex<f64>>,
    correlation: Vec<f64>,
    /// Running sums of squares over the windows searched.
    energy: Vec<f64>,
    /// What the transforms work in.
    fft: Vec<Complex<f64>>,
}

impl std::fmt::Debug for LongLag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LongLag")
            .field("residuals", &self.seen)
            .field("found", &self.found)
            .field("kept_transforms", &self.kept.len())
            .finish()
    }
}

impl Default for LongLag {
    fn default() -> Self {
        LongLag::new()
    }
}

impl LongLag {
    pub fn new() -> Self {
        LongLag::with_shape(Shape::MODEL)
    }

    pub fn with_shape(shape: Shape) -> Self {
        assert!(
            shape.block > 0 && shape.template > 0 && shape.segment > 0,
            "{shape:?}"
        );
        assert!(
            (shape.segment + shape.template).is_multiple_of(2),
            "{shape:?}"
        );
        let mut planner = RealFftPlanner::<f64>::new();
        let size = shape.segment + shape.template;
        let (fwd, inv) = (
            planner.plan_fft_forward(size),
            planner.plan_fft_inverse(size),
        );
        let scratch = Scratch {
            input: fwd.make_input_vec(),
            template: fwd.make_output_vec(),
            fresh: fwd.make_output_vec(),
            product: inv.make_input_vec(),
            correlation: inv.make_output_vec(),
            energy: Vec::new(),
            fft: vec![Complex::default(); fwd.get_scratch_len().max(inv.get_scratch_len())],
        };
        LongLag {
            shape,
            past: Vec::new(),
            seen: 0,
            found: None,
            kept: VecDeque::new(),
            first_kept: 0,
            fwd,
            inv,
            scratch,
        }
    }

    /// The prediction of the next residual, and the correlation of the match
    /// it comes from (both 0 before the first search).
    pub fn predict(&self) -> (f64, f64) {
        let Some(m) = &self.found else {
            return (0.0, 0.0);
        };
        let n = self.past.len();
        let at = |k: usize| self.past[n + k - m.lag - 1];
        let p = m.taps[0] * at(0) + m.taps[1] * at(1) + m.taps[2] * at(2);
        (p, m.correlation)
    }

    /// The last search's match (None before the first, or while no window
    /// has energy).
    pub fn matched(&self) -> Option<Match> {
        self.found
    }

    /// Take the next residual; every `block` of them, search again.
    pub fn update(&mut self, e: f64) {
        // Dropped in halves, so a song of any length keeps 9-18 MiB per
        // channel, not 8 bytes of every residual it ever had.
        let keep = self.shape.reach + self.shape.segment;
        if self.past.len() == 2 * keep {
            self.past.drain(..keep);
        }
        self.past.push(e);
        self.seen += 1;
        let n = self.seen;
        if n.is_multiple_of(self.shape.block) && n >= self.shape.first_search() {
            self.search();
        }
    }

    /// Residual `i` (absolute index), which must still be kept.
    fn at(&self, i: usize) -> f64 {
        at(&self.past, self.seen, i)
    }

    /// The transform of the residuals from `from` on, zero past the last
    /// taken, into `out`: a segment's input from `k·segment`, the template's
    /// from `n − template`.
    fn transform(&mut self, from: usize, out: &mut [Complex<f64>]) {
        let sc = &mut self.scratch;
        for (j, v) in sc.input.iter_mut().enumerate() {
            *v = if from + j < self.seen {
                at(&self.past, self.seen, from + j)
            } else {
                0.0
            };
        }
        self.fwd
            .process_with_scratch(&mut sc.input, out, &mut sc.fft)
            .expect("the transform's buffers have its size");
    }

    fn search(&mut self) {
        let Shape {
            template, segment, ..
        } = self.shape;
        let size = segment + template;
        let n = self.seen;
        let starts = self.shape.starts(n);
        let (k_lo, k_hi) = (starts.start() / segment, starts.end() / segment);
        // Forget the segments out of reach, keep the ones just completed.
        while self.first_kept < k_lo && !self.kept.is_empty() {
            self.kept.pop_front();
            self.first_kept += 1;
        }
        if self.kept.is_empty() {
            self.first_kept = k_lo;
        }
        while (self.first_kept + self.kept.len()) * segment + size <= n {
            let mut t = self.fwd.make_output_vec();
            self.transform((self.first_kept + self.kept.len()) * segment, &mut t);
            self.kept.push_back(t);
        }
        // The template's transform (the template, then zeros: the last
        // residual taken is its end), conjugated in use: a correlation, not
        // a convolution.
        let t0 = n - template;
        let mut tq = std::mem::take(&mut self.scratch.template);
        self.transform(t0, &mut tq);
        self.scratch.template = tq;
        let (seen, sc) = (self.seen, &mut self.scratch);
        // Window energies by running sums over the residuals the windows cover.
        let base = *starts.start();
        sc.energy.clear();
        sc.energy.push(0.0);
        let mut sum = 0.0;
        for i in base..starts.end() + template {
            let v = at(&self.past, seen, i);
            sum += v * v;
            sc.energy.push(sum);
        }
        let template_energy: f64 = (t0..n).map(|i| self.at(i).powi(2)).sum();
        let (mut best, mut best_s) = (f64::NEG_INFINITY, None);
        for k in k_lo..=k_hi {
            let is_kept = k >= self.first_kept && k < self.first_kept + self.kept.len();
            if !is_kept {
                let mut fresh = std::mem::take(&mut self.scratch.fresh);
                self.transform(k * segment, &mut fresh);
                self.scratch.fresh = fresh;
            }
            let sc = &mut self.scratch;
            let h = if is_kept {
                &self.kept[k - self.first_kept]
            } else {
                &sc.fresh
            };
            for ((p, a), b) in sc.product.iter_mut().zip(h).zip(&sc.template) {
                *p = a * b.conj();
            }
            // Both ends of a real signal's half spectrum are real.
            sc.product[0].im = 0.0;
            let last = sc.product.len() - 1;
            sc.product[last].im = 0.0;
            self.inv
                .process_with_scratch(&mut sc.product, &mut sc.correlation, &mut sc.fft)
                .expect("the transform's buffers have its size");
            let (energy, c) = (&sc.energy, &sc.correlation);
            let from = (k * segment).max(base);
            let to = ((k + 1) * segment - 1).min(*starts.end());
            for s in from..=to {
                let en = (energy[s + template - base] - energy[s - base]) * template_energy;
                if en > 0.0 {
                    // The inverse transform is unnormalized: divide by its size.
                    let r = c[s - k * segment] / size as f64 / en.sqrt();
                    if r > best {
                        best = r;
                        best_s = Some(s);
                    }
                }
            }
        }
        if let Some(s) = best_s {
            let e = |i: usize| self.at(i);
            if let Some(m) = fit(&e, n, template, s) {
                self.found = Some(m);
            }
        }
    }
}

/// Residual `i` (absolute index) of the `seen` taken, of which `past` holds
/// the last; it must still be kept.
fn at(past: &[f64], seen: usize, i: usize) -> f64 {
    past[i + past.len() - seen]
}

/// The match at window start `s` once `n` residuals are in: its
/// correlation and three taps, computed directly (`e(i)` is residual `i`);
/// None where the taps' system is singular.
fn fit(e: &dyn Fn(usize) -> f64, n: usize, template: usize, s: usize) -> Option<Match> {
    let t0 = n - template;
    let lag = t0 - s;
    let (mut dot, mut ew, mut et) = (0.0, 0.0, 0.0);
    for i in 0..template {
        dot += e(s + i) * e(t0 + i);
        ew += e(s + i).powi(2);
        et += e(t0 + i).powi(2);
    }
    let correlation = (dot / (ew * et).sqrt()).clamp(-1.0, 1.0);
    // Three taps on the template: rows (e[t−L−1], e[t−L], e[t−L+1]) → e[t].
    let (mut a, mut b) = ([[0.0f64; 3]; 3], [0.0f64; 3]);
    for t in t0..n {
        let row = [e(t - lag - 1), e(t - lag), e(t - lag + 1)];
        for i in 0..3 {
            b[i] += row[i] * e(t);
            for j in 0..3 {
                a[i][j] += row[i] * row[j];
            }
        }
    }
    let ridge = 1e-6 * (a[0][0] + a[1][1] + a[2][2]) + 1e-300;
    for (i, row) in a.iter_mut().enumerate() {
        row[i] += ridge;
    }
    solve3(a, b).map(|taps| Match {
        lag,
        taps,
        correlation,
    })
}

/// The search of the module's doc done directly, over `e` (all residuals so
/// far, `n = e.len()`): what a [`LongLag`] of this shape finds after taking
/// them, if `n` is a search's. The readable twin of the FFT search.
pub fn reference_match(e: &[f64], shape: Shape) -> Option<Match> {
    let n = e.len();
    if n < shape.first_search() {
        return None;
    }
    let t0 = n - shape.template;
    let template = &e[t0..];
    let te: f64 = template.iter().map(|v| v * v).sum();
    let (mut best, mut best_s) = (f64::NEG_INFINITY, None);
    for s in shape.starts(n) {
        let w = &e[s..s + shape.template];
        let en = w.iter().map(|v| v * v).sum::<f64>() * te;
        if en > 0.0 {
            let r = w.iter().zip(template).map(|(a, b)| a * b).sum::<f64>() / en.sqrt();
            if r > best {
                best = r;
                best_s = Some(s);
            }
        }
    }
    fit(&|i| e[i], n, shape.template, best_s?)
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
