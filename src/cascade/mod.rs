//! The cascade: a streaming causal predictor in the shape lossless audio
//! codecs use, a yardstick stronger than block LPC.
//!
//! ```text
//!   x ──► EWLS (order 32) ──p₀──┐
//!   │          e₀ = x − p₀      │
//!   └──────► NLMS 256 taps ─p₁──┤   x̂ = Σ_k w_k·p_k + b    (adaptive weights, `mix`)
//!              e₁ = e₀ − p₁     │
//!            NLMS 32 taps ──p₂──┤
//!            NLMS 16 taps ──p₃──┘
//! ```
//! Stage 0 ([`ewls`]) predicts the signal by exponentially weighted least
//! squares; each later stage ([`nlms`]) predicts its own input, the residual
//! the stage before it left; the combiner ([`mix`]) weighs the stage
//! predictions. This is the structure of MPEG-4 ALS's RLS-LMS mode (RLS,
//! then NLMS stages, then a sign-sign combiner) and of Monkey's Audio and
//! sac; see issue 10 for the figures that motivated it.
//!
//! One sample in, one prediction out ([`Cascade::update`], then
//! [`Cascade::predict`]), so it runs inside free-running generation; it reads
//! nothing but the samples given so far. [`Cascade::base`] is stage 0's
//! prediction alone, for a model that learns what the cascade leaves.
//! Channels are predicted independently, one `Cascade` each.
//!
//! # Defaults, and how they were chosen
//! EWLS order 32, λ = 0.998, solved every 8 samples, ridge 1e-7; NLMS
//! stages of 256, 32 and 16 taps with steps 0.002, 0.005 and 0.01 (the
//! prototype `../shared/tools/cascade_proto.py` of issue 10). The combiner
//! (least squares, λ = 0.98, ridge 1e-4, no bias correction) was picked by
//! `examples/cascade_figures.rs --train` on the first 90 % of the three
//! shared clips only (the scored last 10 % never took part): prediction gain
//! there 53.58 / 44.43 / 31.85 dB (piano / orchestral / electronic) against
//! 53.83 / 39.34 / 31.21 dB for the plain sum and 53.51 / 39.87 / 31.32 dB
//! for sign-sign LMS of step 5e-4, at equal or fewer bits per sample.
//! README.md gives the figures on the scored part.

pub mod ewls;
pub mod mix;
pub mod nlms;

pub use ewls::{Ewls, EwlsConfig};
pub use mix::{Mix, MixConfig, MixRule};
pub use nlms::{Nlms, NlmsConfig};

use serde::{Deserialize, Serialize};
use std::ops::Range;

/// The whole cascade's settings (stored as they are in a checkpoint that uses one).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CascadeConfig {
    pub ewls: EwlsConfig,
    /// The NLMS stages after EWLS, in order (may be empty).
    pub stages: Vec<NlmsConfig>,
    pub mix: MixConfig,
}

impl Default for CascadeConfig {
    fn default() -> Self {
        CascadeConfig {
            ewls: EwlsConfig::default(),
            stages: vec![
                NlmsConfig {
                    taps: 256,
                    step: 0.002,
                },
                NlmsConfig {
                    taps: 32,
                    step: 0.005,
                },
                NlmsConfig {
                    taps: 16,
                    step: 0.01,
                },
            ],
            mix: MixConfig {
                rule: MixRule::LeastSquares {
                    lambda: 0.98,
                    ridge: 1e-4,
                },
                bias_rate: 0.0,
            },
        }
    }
}

impl CascadeConfig {
    /// Stage 0 alone: the default EWLS, no NLMS, no combiner.
    pub fn ewls_only() -> Self {
        CascadeConfig {
            ewls: EwlsConfig::default(),
            stages: Vec::new(),
            mix: MixConfig {
                rule: MixRule::Sum,
                bias_rate: 0.0,
            },
        }
    }
}

/// One channel's cascade.
#[derive(Clone, Debug)]
pub struct Cascade {
    ewls: Ewls,
    nlms: Vec<Nlms>,
    mix: Mix,
    /// The stage predictions of the next sample: `preds[0]` EWLS's, `preds[k]` stage k's.
    preds: Vec<f64>,
    prediction: f64,
}

impl Cascade {
    pub fn new(cfg: &CascadeConfig) -> Self {
        let stages = 1 + cfg.stages.len();
        Cascade {
            ewls: Ewls::new(cfg.ewls),
            nlms: cfg.stages.iter().map(|&s| Nlms::new(s)).collect(),
            mix: Mix::new(cfg.mix, stages),
            preds: vec![0.0; stages],
            prediction: 0.0,
        }
    }

    /// The prediction of the next sample (0 before the first).
    pub fn predict(&self) -> f64 {
        self.prediction
    }

    /// Stage 0's (EWLS's) prediction of the next sample alone.
    pub fn base(&self) -> f64 {
        self.preds[0]
    }

    /// Every stage's prediction of its own next input (stage 0: the signal).
    pub fn stage_predictions(&self) -> &[f64] {
        &self.preds
    }

    pub fn mix(&self) -> &Mix {
        &self.mix
    }

    /// Stop every stage and the combiner adapting: from here on a fixed
    /// linear predictor of the samples given (what free-running generation
    /// runs on its own output, see `hybrid::Stream::freeze_cascade`).
    pub fn freeze(&mut self) {
        self.ewls.freeze();
        self.nlms.iter_mut().for_each(Nlms::freeze);
        self.mix.freeze();
    }

    /// Take the next sample `x`: every stage adapts on its error, then all
    /// predict the sample after.
    pub fn update(&mut self, x: f64) {
        self.mix.update(&self.preds, x, x - self.prediction);
        // Stage k's input is what stage k − 1 failed to predict.
        let mut u = x - self.preds[0];
        self.ewls.update(x);
        for (k, s) in self.nlms.iter_mut().enumerate() {
            let next = u - self.preds[k + 1];
            s.update(u);
            u = next;
        }
        self.preds[0] = self.ewls.predict();
        for (p, s) in self.preds[1..].iter_mut().zip(&self.nlms) {
            *p = s.predict();
        }
        self.prediction = self.mix.combine(&self.preds);
    }
}

/// The cascade's predictions of the targets of `positions` in `x[N, C]`
/// (frame `p + 1` for position `p`, from frames `..= p`), `[positions.len(), C]`:
/// the layout of `lpc`'s predictors. Each channel runs from frame 0.
pub fn predict(
    x: &[f32],
    channels: usize,
    positions: Range<usize>,
    cfg: &CascadeConfig,
) -> Vec<f32> {
    let c = channels;
    let n = positions.len();
    let mut out = vec![0.0f32; n * c];
    if n == 0 {
        return out;
    }
    for ch in 0..c {
        let mut s = Cascade::new(cfg);
        for p in 0..positions.end {
            s.update(x[p * c + ch] as f64);
            if p >= positions.start {
                out[(p - positions.start) * c + ch] = s.predict() as f32;
            }
        }
    }
    out
}
