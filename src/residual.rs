//! The residual of causal LPC as the model's target: the LPCNet idea
//! (J.-M. Valin and J. Skoglund, "LPCNet: Improving neural speech synthesis
//! through linear prediction", ICASSP 2019). A linear predictor takes the
//! part of the waveform it can, and the network learns only what it misses,
//! so it starts where the linear predictor stops.
//!
//! # Units and layout
//! `x[N, C]` is a signal in the model's input units (audio / `scale`, the
//! `dataset` layout), made of songs that sit at frame ranges of it.
//! - `base[N, C]`: the causal LPC-32 prediction of every frame from the
//!   frames before it ([`lpc::lpc`] with [`LpcConfig::standard`], run per song
//!   so that no prediction reads across a song boundary), in x's units. A
//!   song's first frame has no past and is never a target: its base is 0.
//! - `target[N, C] = (x − base) / ratio`: what the model learns for each
//!   frame, with `ratio = residual_scale / scale`. `residual_scale` is the
//!   RMS of the training parts' residual in audio units, so the target has
//!   unit variance, although the residual lies 30 to 50 dB below the signal.
//! - A model output `y` for frame n becomes the prediction `base[n] + ratio·y`.
//!
//! # What the model reads
//! Its input stays the raw window of x, as without a residual: the engines,
//! the parameter layout and the free-running step do not change, and the
//! recurrent state has read every sample the LPC prediction is made of. (LPCNet
//! also feeds its network the LPC prediction as an input feature, which
//! would let the model rescale the linear estimate directly; not done here.)
//! Everything stays causal: `base[n]` reads frames before n only, so the
//! target of frame n is known once frame n is.

use crate::hybrid::HybridConfig;
use crate::lpc::{self, LpcConfig};
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// What a model's output is added to.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Residual {
    /// Nothing: the model predicts the next sample itself.
    #[default]
    None,
    /// The model predicts the residual of causal LPC-32; `scale` is the
    /// residual's RMS over the training parts, in audio units.
    Lpc { scale: f32 },
    /// The model reads the cascade's residual and features and predicts the
    /// next residual in its local gain's units (`hybrid`).
    Cascade { hybrid: HybridConfig },
}

/// A signal split into its causal LPC prediction and the model's targets.
#[derive(Clone, Debug, PartialEq)]
pub struct ResidualSignal {
    pub channels: usize,
    /// `[N, C]`, x's units (see the module doc).
    pub base: Vec<f32>,
    /// `[N, C]`, the model's output units.
    pub target: Vec<f32>,
    /// Residual scale over signal scale.
    pub ratio: f32,
}

impl ResidualSignal {
    /// Split `x` by its `base` ([`lpc_base`]) with `ratio`.
    pub fn new(x: &[f32], channels: usize, base: Vec<f32>, ratio: f32) -> Self {
        let target = x
            .iter()
            .zip(&base)
            .map(|(&v, &b)| ((v as f64 - b as f64) / ratio as f64) as f32)
            .collect();
        ResidualSignal {
            channels,
            base,
            target,
            ratio,
        }
    }

    /// Model outputs `y[positions.len(), C]` (for the targets of
    /// `positions`, frames `p + 1`) into predictions in x's units, in place.
    pub fn restore(&self, y: &mut [f32], positions: Range<usize>) {
        let c = self.channels;
        for (i, p) in positions.enumerate() {
            let base = &self.base[(p + 1) * c..(p + 2) * c];
            for (v, &b) in y[i * c..(i + 1) * c].iter_mut().zip(base) {
                *v = (b as f64 + self.ratio as f64 * *v as f64) as f32;
            }
        }
    }
}

/// The causal LPC-32 prediction of every frame of `x` (see the module doc).
pub fn lpc_base(x: &[f32], channels: usize, sample_rate: u32, songs: &[Range<usize>]) -> Vec<f32> {
    let c = channels;
    let cfg = LpcConfig::standard(sample_rate);
    let mut base = vec![0.0f32; x.len()];
    for s in songs {
        if s.len() < 2 {
            continue;
        }
        let song = &x[s.start * c..s.end * c];
        // Positions 0 ..= len−2 predict frames 1 ..= len−1.
        let pred = lpc::lpc(song, c, 0..s.len() - 1, &cfg);
        base[(s.start + 1) * c..s.end * c].copy_from_slice(&pred);
    }
    base
}

/// Root mean square of `x − base` over the frames of `ranges`.
pub fn residual_rms(x: &[f32], base: &[f32], channels: usize, ranges: &[Range<usize>]) -> f64 {
    let (mut sum, mut n) = (0.0f64, 0usize);
    for r in ranges {
        for i in r.start * channels..r.end * channels {
            let e = x[i] as f64 - base[i] as f64;
            sum += e * e;
            n += 1;
        }
    }
    (sum / n.max(1) as f64).sqrt()
}
