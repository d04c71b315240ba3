//! The combiner: how the cascade adds its stages' predictions up.
//!
//! Stage `k` predicts its own input (stage 0 the signal, stage `k` the
//! residual stage `k − 1` left), so the plain cascade's prediction of the
//! signal is the sum of the stage predictions `p_k`. The combiner weighs
//! them instead, `x̂ = Σ_k w_k·p_k + b`, weights starting at 1 (the plain
//! sum), so that a stage which does not help can be weighed down. Two rules:
//!
//! - **Sign-sign LMS** (the combiner of MPEG-4 ALS's RLS-LMS mode; Huang et
//!   al., "Cascaded RLS-LMS prediction in MPEG-4 lossless audio coding",
//!   IEEE Trans. ASLP 16(3), 2008): `w_k ← w_k + μ·sgn(e)·sgn(p_k)` on the
//!   final error `e = x − x̂`. Blind to levels: every sample moves the
//!   weights by the same step, loud or quiet.
//! - **Local least squares** (the default): the weights minimise the
//!   exponentially weighted squared error of the last `1/(1 − λ)` samples,
//!   with a ridge that pulls them towards the plain sum:
//!   ```text
//!   R ← λR + p pᵀ,   r ← λr + p·x,   (R + δI) w = r + δ·1,   δ = ridge · trace(R) / K
//!   ```
//!   solved after every sample (K is 4 for the default cascade: a 4 × 4
//!   Cholesky). A stage that helps on most samples but hurts in loud
//!   passages (where the squared error is made) is muted there within a few
//!   hundred samples; sign-sign LMS would take thousands.
//!
//! Then an optional bias correction: `b ← b + rate·e` (the running mean of
//! the final error).

use crate::lpc::cholesky_solve;
use serde::{Deserialize, Serialize};

/// How the combiner adapts its weights.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "rule")]
pub enum MixRule {
    /// Fixed weights of 1: the plain cascade.
    Sum,
    /// Sign-sign LMS of step μ.
    SignSign { step: f64 },
    /// Exponentially weighted least squares with forgetting `lambda`, and a
    /// ridge relative to the mean of R's diagonal towards weights of 1.
    LeastSquares { lambda: f64, ridge: f64 },
}

/// The combiner's settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MixConfig {
    pub rule: MixRule,
    /// Rate of the bias correction (0: none).
    pub bias_rate: f64,
}

/// One channel's combiner of `K` stage predictions.
#[derive(Clone, Debug)]
pub struct Mix {
    cfg: MixConfig,
    w: Vec<f64>,
    bias: f64,
    /// Least squares: `R[K×K]` row-major and `r[K]`.
    r_mat: Vec<f64>,
    r_vec: Vec<f64>,
    /// Scratch for the factor and the solution.
    l: Vec<f64>,
    y: Vec<f64>,
}

impl Mix {
    /// A combiner of `stages` predictions, every weight 1, no bias.
    pub fn new(cfg: MixConfig, stages: usize) -> Self {
        let k = stages;
        Mix {
            cfg,
            w: vec![1.0; k],
            bias: 0.0,
            r_mat: vec![0.0; k * k],
            r_vec: vec![0.0; k],
            l: vec![0.0; k * k],
            y: vec![0.0; k],
        }
    }

    pub fn weights(&self) -> &[f64] {
        &self.w
    }

    pub fn bias(&self) -> f64 {
        self.bias
    }

    /// Stop adapting: the weights and the bias stay as they are.
    pub fn freeze(&mut self) {
        self.cfg.rule = MixRule::Sum;
        self.cfg.bias_rate = 0.0;
    }

    /// `Σ w_k·p_k + b`.
    pub fn combine(&self, preds: &[f64]) -> f64 {
        self.w.iter().zip(preds).map(|(w, p)| w * p).sum::<f64>() + self.bias
    }

    /// Adapt on the true sample `x`, given what the stages predicted of it
    /// (`preds`) and the combined prediction's error `e = x − combine(preds)`.
    pub fn update(&mut self, preds: &[f64], x: f64, e: f64) {
        match self.cfg.rule {
            MixRule::Sum => {}
            MixRule::SignSign { step } => {
                let se = sign(e);
                for (w, &p) in self.w.iter_mut().zip(preds) {
                    *w += step * se * sign(p);
                }
            }
            MixRule::LeastSquares { lambda, ridge } => self.least_squares(preds, x, lambda, ridge),
        }
        self.bias += self.cfg.bias_rate * e;
    }

    fn least_squares(&mut self, p: &[f64], x: f64, lambda: f64, ridge: f64) {
        let k = self.w.len();
        // The target of the weights is x minus the bias the combiner adds.
        let t = x - self.bias;
        for i in 0..k {
            self.r_vec[i] = lambda * self.r_vec[i] + p[i] * t;
            for j in 0..k {
                self.r_mat[i * k + j] = lambda * self.r_mat[i * k + j] + p[i] * p[j];
            }
        }
        let trace: f64 = (0..k).map(|i| self.r_mat[i * k + i]).sum();
        if !(trace > 0.0 && trace.is_finite()) {
            return;
        }
        let delta = ridge * trace / k as f64;
        // Cholesky L·Lᵀ = R + δI, then the two triangular solves for w.
        let l = &mut self.l;
        for i in 0..k {
            for j in 0..=i {
                let mut s = self.r_mat[i * k + j] + if i == j { delta } else { 0.0 };
                for m in 0..j {
                    s -= l[i * k + m] * l[j * k + m];
                }
                if i == j {
                    if s.is_nan() || s <= 0.0 {
                        return;
                    }
                    l[i * k + i] = s.sqrt();
                } else {
                    l[i * k + j] = s / l[j * k + j];
                }
            }
        }
        let y = &mut self.y;
        for (yi, ri) in y.iter_mut().zip(&self.r_vec) {
            *yi = ri + delta;
        }
        cholesky_solve(l, k, y);
        if y.iter().all(|v| v.is_finite()) {
            for (w, v) in self.w.iter_mut().zip(y.iter()) {
                *w = v.clamp(0.0, 1.0);
            }
        }
    }
}

/// −1, 0 or 1.
fn sign(v: f64) -> f64 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
}
