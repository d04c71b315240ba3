//! Normalized LMS: the cascade's later stages.
//!
//! A stage of `T` taps predicts its input `u` from its own past,
//! `û[n+1] = w · h`, `h = (u[n], …, u[n−T+1])`, and when `u[n+1]` arrives
//! takes one normalized gradient step on the squared error (Haykin,
//! "Adaptive Filter Theory", 4th ed., §6):
//! ```text
//! e = u[n+1] − û[n+1],     w ← w + μ · e · h / (h·h + ε)
//! ```
//! Normalizing by the window's energy makes the step size `μ` independent
//! of the input's level (0 < μ < 2 for stability).
//!
//! Weights and history are f32 (an NLMS stage corrects what the f64 EWLS
//! stage left, a small signal, and its own adaptation noise is far above
//! f32 rounding); products are summed in 16 independent lanes so the dot
//! product and the update vectorize. The energy `h·h` is kept as a running
//! f64 sum (add the new sample's square, drop the oldest's), refreshed from
//! scratch every `T` samples so its rounding cannot build up.

use crate::cpu::isa::{dispatch, isa, Isa, Kernel};
use serde::{Deserialize, Serialize};

/// One NLMS stage's settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct NlmsConfig {
    /// Taps T: past inputs a prediction reads.
    pub taps: usize,
    /// Step size μ.
    pub step: f64,
}

/// Regularizer ε of the normalization, in the input's units squared:
/// negligible beside any audible window, and it keeps silence finite.
pub const EPSILON: f64 = 1e-12;

/// One channel's NLMS stage.
#[derive(Clone, Debug)]
pub struct Nlms {
    cfg: NlmsConfig,
    /// The last T inputs, newest first, twice over: `past[head..head + T]` is contiguous.
    past: Vec<f32>,
    head: usize,
    w: Vec<f32>,
    energy: f64,
    since_refresh: usize,
    /// The prediction made from the current state (what [`Nlms::update`] scores).
    pred: f32,
    isa: Isa,
}

impl Nlms {
    pub fn new(cfg: NlmsConfig) -> Self {
        let t = cfg.taps.max(1);
        Nlms {
            cfg,
            past: vec![0.0; 2 * t],
            head: t,
            w: vec![0.0; t],
            energy: 0.0,
            since_refresh: 0,
            pred: 0.0,
            isa: isa(),
        }
    }

    pub fn config(&self) -> &NlmsConfig {
        &self.cfg
    }

    pub fn weights(&self) -> &[f32] {
        &self.w
    }

    /// Stop adapting: the weights stay as they are (a zero step adds
    /// exactly nothing to them), the inputs still go through.
    pub fn freeze(&mut self) {
        self.cfg.step = 0.0;
    }

    /// The prediction of the next input from the inputs so far.
    pub fn predict(&self) -> f64 {
        self.pred as f64
    }

    /// Take the next input `u`: adapt on the error of the last prediction,
    /// then shift `u` into the history and predict the one after, compiled for
    /// the instruction set `cpu::isa` picks (the same bits on every set).
    pub fn update(&mut self, u: f64) {
        // SAFETY: safe code inside; `dispatch` checks the instruction set.
        unsafe { dispatch(self.isa, Update(self, u)) }
    }

    #[inline(always)]
    fn update_portable(&mut self, u: f64) {
        let t = self.w.len();
        let h = &self.past[self.head..self.head + t];
        let e = u - self.pred as f64;
        let g = (self.cfg.step * e / (self.energy + EPSILON)) as f32;
        axpy(&mut self.w, g, h);
        // Shift in: the oldest sample leaves the energy, the newest joins.
        let oldest = self.past[self.head + t - 1] as f64;
        let uf = u as f32;
        self.head = if self.head == 0 { t - 1 } else { self.head - 1 };
        self.past[self.head] = uf;
        self.past[self.head + t] = uf;
        let h = &self.past[self.head..self.head + t];
        self.since_refresh += 1;
        if self.since_refresh >= t {
            self.since_refresh = 0;
            self.energy = h.iter().map(|&v| v as f64 * v as f64).sum();
        } else {
            self.energy = (self.energy + uf as f64 * uf as f64 - oldest * oldest).max(0.0);
        }
        self.pred = dot(&self.w, h);
    }
}

const LANES: usize = 16;

/// `Σ a_i b_i` in 16 independent f32 sums, added pairwise at the end.
#[inline(always)]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut s = [0.0f32; LANES];
    let mut ca = a.chunks_exact(LANES);
    let mut cb = b.chunks_exact(LANES);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for k in 0..LANES {
            s[k] += x[k] * y[k];
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        tail += x * y;
    }
    let mut w = LANES;
    while w > 1 {
        w /= 2;
        for k in 0..w {
            s[k] += s[k + w];
        }
    }
    s[0] + tail
}

/// `w ← w + g·h`.
#[inline(always)]
fn axpy(w: &mut [f32], g: f32, h: &[f32]) {
    for (wi, &hi) in w.iter_mut().zip(h) {
        *wi += g * hi;
    }
}

/// [`Nlms::update`]'s body as a [`Kernel`] (`cpu::isa`).
struct Update<'a>(&'a mut Nlms, f64);

impl Kernel for Update<'_> {
    type Output = ();

    #[inline(always)]
    unsafe fn run(self, _: Isa) {
        self.0.update_portable(self.1)
    }
}
