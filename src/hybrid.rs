//! A network over the cascade's residual: the cascade (`crate::cascade`)
//! predicts each sample first, and the LSTM learns what it leaves, in the
//! residual's own local units (the LPCNet shape: J.-M. Valin and J. Skoglund,
//! "LPCNet: Improving neural speech synthesis through linear prediction",
//! ICASSP 2019, where a linear predictor's output and the last residual feed
//! an RNN that models the excitation).
//!
//! # Per channel, per position `p` (its target is frame `p + 1`)
//! Everything below reads frames `..= p` only, so a feature never sees its
//! target. Audio units throughout (`x_j` is sample `j` of the song).
//! - `b = base_{p+1}`: the cascade's prediction, run over the song from its
//!   first frame; `e_j = x_j − base_j`, its residual (`base_0 = 0`).
//! - `g = g_{p+1}`: the local residual gain, `sqrt(max(v_p, floor²))` with
//!   `v_p = (1 − α)·v_{p−1} + α·e_p²`, `α = 1 / gain_window` (an exponential
//!   mean of about `gain_window` samples), `v_{−1} = 0`; likewise `gx` over
//!   `x_j²`, the signal's local gain.
//! - features, `[F]` with `F = residuals + 1 + samples + 2`:
//!   `e_p/g, …, e_{p−K+1}/g` (zero before the song), `b/gx`,
//!   `x_p/gx, …, x_{p−M+1}/gx`, `ln(g)/10`, `ln(gx/g)/10`; with `--long-lag`
//!   (`F` two more) the long-term predictor's prediction of the next
//!   residual `/g` and the correlation of its match (`crate::long_lag`).
//! - target `(x_{p+1} − b)/g`; a model output `y` becomes the prediction
//!   `b + w·g·y`, `w` the gate ([`Gate`]), learnt causally on the scored
//!   stretch from its start.
//!
//! Why the samples and the base are divided by the signal's gain and not by
//! the residual's: the residual lies 30 to 60 dB under the signal, so `x/g`
//! would be hundreds to thousands and saturate every gate of the first layer
//! at initialization; `ln(gx/g)` tells the network the ratio instead. The
//! logarithms are divided by 10 to bring them near unit size (`ln g` of
//! 16-bit audio lies in about −10.4 … 0).
//!
//! # Layout
//! A channel's features are interleaved like samples (feature-major, channel
//! fastest): frame `p` of the input signal is `[F, C]` flattened, read by
//! the engines as a model with `frame = 1` and `features = F`
//! (`ModelConfig::input_width`).

use crate::cascade::{Cascade, CascadeConfig};
use crate::long_lag::{LongLag, LongLagConfig};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::ops::Range;

/// What a hybrid model needs to rebuild its base and its inputs exactly
/// (stored in its checkpoint).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HybridConfig {
    pub cascade: CascadeConfig,
    /// Past cascade residuals the network reads (K).
    pub residuals: usize,
    /// Past samples the network reads (M).
    pub samples: usize,
    /// Samples the gains average over (the inverse of their smoothing rate).
    pub gain_window: usize,
    /// Least gain, audio units: one 16-bit step, below which a residual is
    /// quantization noise.
    pub gain_floor: f64,
    pub gate: GateConfig,
    /// The long-term predictor's two features (`--long-lag`; absent: off,
    /// as in checkpoints from before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long_lag: Option<LongLagConfig>,
}

impl Default for HybridConfig {
    fn default() -> Self {
        HybridConfig {
            cascade: CascadeConfig::default(),
            residuals: 32,
            samples: 8,
            gain_window: 512,
            gain_floor: 1.0 / 32768.0,
            gate: GateConfig::default(),
            long_lag: None,
        }
    }
}

impl HybridConfig {
    /// Input values per channel per timestep (F).
    pub fn features(&self) -> usize {
        self.residuals + 1 + self.samples + 2 + if self.long_lag.is_some() { 2 } else { 0 }
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.gain_window == 0 {
            return Err("the hybrid's gain window must be at least 1 sample".into());
        }
        if !(self.gain_floor.is_finite() && self.gain_floor > 0.0) {
            return Err("the hybrid's gain floor must be positive".into());
        }
        if !((0.0..1.0).contains(&self.gate.lambda) && self.gate.max > 0.0) {
            return Err("the hybrid's gate needs 0 ≤ λ < 1 and a positive bound".into());
        }
        Ok(())
    }
}

/// The gate on the network's share of the prediction, `b + w·d` with
/// `d = g·y`: `w` is the exponentially weighted least-squares weight of `d`
/// against the cascade's residual `x − b` over the frames already past,
/// `w = clamp(Σ λ^k (x−b)·d / Σ λ^k d², 0, max)` (1 until a correction has
/// been seen). A network whose corrections point the wrong way, or are
/// noise, or an offset, gets `w ≈ 0`, where the hybrid is the cascade; one
/// that helps keeps `w` near 1. (Sign-sign LMS on `w`, step 1/512, was
/// measured first: on the bundled piano it let a constant 3-gain offset cost
/// 0.31 dB against the cascade: it needs 512 frames to walk down from 1 and
/// then jitters around 0; this rule closes within a few frames.)
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GateConfig {
    /// Forgetting factor λ per frame.
    pub lambda: f64,
    /// Largest weight.
    pub max: f64,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            lambda: 0.995,
            max: 1.5,
        }
    }
}

/// One channel's gate.
#[derive(Clone, Copy, Debug)]
pub struct Gate {
    cfg: GateConfig,
    /// `Σ λ^k d²` and `Σ λ^k (x−b)·d`.
    dd: f64,
    ed: f64,
}

impl Gate {
    pub fn new(cfg: GateConfig) -> Self {
        Gate {
            cfg,
            dd: 0.0,
            ed: 0.0,
        }
    }

    /// The network's current weight.
    pub fn weight(&self) -> f64 {
        if self.dd > 0.0 {
            (self.ed / self.dd).clamp(0.0, self.cfg.max)
        } else {
            1.0
        }
    }

    /// The prediction from the base `b` and the network's correction `d = g·y`.
    pub fn combine(&self, b: f64, d: f64) -> f64 {
        b + self.weight() * d
    }

    /// Learn from the true sample `x` of the frame `b` and `d` were for.
    pub fn update(&mut self, x: f64, b: f64, d: f64) {
        let l = self.cfg.lambda;
        self.dd = l * self.dd + d * d;
        self.ed = l * self.ed + (x - b) * d;
    }
}

/// A causal exponential mean of squares, read as a floored RMS.
#[derive(Clone, Copy, Debug)]
struct Level {
    alpha: f64,
    v: f64,
}

impl Level {
    fn new(window: usize) -> Self {
        Level {
            alpha: 1.0 / window as f64,
            v: 0.0,
        }
    }
    fn update(&mut self, x: f64) {
        self.v += self.alpha * (x * x - self.v);
    }
    fn rms(&self, floor: f64) -> f64 {
        self.v.max(floor * floor).sqrt()
    }
}

/// One channel's streaming base and features: one sample in
/// ([`Stream::update`]), the next sample's base, gain and features out.
#[derive(Clone, Debug)]
pub struct Stream {
    cfg: HybridConfig,
    cascade: Cascade,
    /// Newest first.
    residuals: VecDeque<f64>,
    samples: VecDeque<f64>,
    res_level: Level,
    sig_level: Level,
    /// Keep the gains where they are (see [`Stream::hold_gains`]).
    held: bool,
    long_lag: Option<LongLag>,
}

impl Stream {
    pub fn new(cfg: &HybridConfig) -> Self {
        Stream {
            cfg: cfg.clone(),
            cascade: Cascade::new(&cfg.cascade),
            residuals: VecDeque::from(vec![0.0; cfg.residuals]),
            samples: VecDeque::from(vec![0.0; cfg.samples]),
            res_level: Level::new(cfg.gain_window),
            sig_level: Level::new(cfg.gain_window),
            held: false,
            long_lag: cfg.long_lag.map(|_| LongLag::new()),
        }
    }

    /// Stop the gains following the signal. Free running needs it: the
    /// residual of generated audio is the gain times the network's output
    /// plus the excitation, so a gain that tracked it would feed on itself
    /// (any excess of their RMS over 1 grows it exponentially, any lack
    /// shrinks it to the floor).
    pub fn hold_gains(&mut self) {
        self.held = true;
    }

    /// Hold the gains ([`Stream::hold_gains`]) at the signal gain `rms`
    /// (audio units), the residual gain moved by the same factor: their
    /// ratio, the local prediction gain, stays as the signal left it. Free
    /// running holds them at the prime's whole RMS this way: the gains at
    /// its last sample follow its last 12 ms (`gain_window`), which may be
    /// the quiet tail of a note 30 dB under the prime.
    pub fn hold_gains_at(&mut self, rms: f64) {
        let s = rms.max(self.cfg.gain_floor) / self.signal_gain();
        let g = self.gain() * s;
        self.res_level.v = g * g;
        self.sig_level.v = rms * rms;
        self.held = true;
    }

    /// Move the held gains by the factor `s` ([`Stream::hold_gains_at`] of
    /// `s` times the signal gain): the calibration and the settling of a take.
    pub fn scale_held_gains(&mut self, s: f64) {
        self.hold_gains_at(self.signal_gain() * s);
    }

    /// Stop the cascade adapting (`Cascade::freeze`): free running feeds it
    /// its own output, and refitted on that (EWLS's memory is 500 samples,
    /// the combiner's 50) it loses the prime's spectrum within a second.
    pub fn freeze_cascade(&mut self) {
        self.cascade.freeze();
    }

    /// The base prediction of the next sample.
    pub fn base(&self) -> f64 {
        self.cascade.predict()
    }

    /// The residual gain `g` of the next sample.
    pub fn gain(&self) -> f64 {
        self.res_level.rms(self.cfg.gain_floor)
    }

    /// The signal gain `gx` of the next sample.
    pub fn signal_gain(&self) -> f64 {
        self.sig_level.rms(self.cfg.gain_floor)
    }

    /// The next sample's features, `[F]` into `out` at stride `stride`
    /// (the channel count, for the interleaved layout).
    pub fn features(&self, out: &mut [f32], stride: usize) {
        let (g, gx) = (self.gain(), self.signal_gain());
        let mut k = 0;
        let mut put = |v: f64| {
            out[k * stride] = v as f32;
            k += 1;
        };
        for &e in &self.residuals {
            put(e / g);
        }
        put(self.base() / gx);
        for &x in &self.samples {
            put(x / gx);
        }
        put(g.ln() / 10.0);
        put((gx / g).ln() / 10.0);
        if let Some(ll) = &self.long_lag {
            let (p, r) = ll.predict();
            put(p / g);
            put(r);
        }
    }

    /// Take the next sample (the one [`Stream::base`] predicted).
    pub fn update(&mut self, x: f64) {
        let e = x - self.cascade.predict();
        if !self.held {
            self.res_level.update(e);
            self.sig_level.update(x);
        }
        if self.cfg.residuals > 0 {
            self.residuals.pop_back();
            self.residuals.push_front(e);
        }
        if self.cfg.samples > 0 {
            self.samples.pop_back();
            self.samples.push_front(x);
        }
        if let Some(ll) = &mut self.long_lag {
            ll.update(e);
        }
        self.cascade.update(x);
    }
}

/// A song's (or a run's songs') base, gains, features and targets, built
/// once over the model-unit signal `x[N, C]` (audio / `scale`).
#[derive(Clone, Debug, PartialEq)]
pub struct HybridSignal {
    pub channels: usize,
    pub features: usize,
    /// `[N, F·C]`: row `p` holds the features of position `p`.
    pub inputs: Vec<f32>,
    /// `[N, C]`: frame `n`'s base prediction and gain, audio units
    /// (frame 0 of a song: base 0, gain at its floor).
    pub base: Vec<f64>,
    pub gain: Vec<f64>,
    /// `[N, C]`: frame `n`'s target, `(x_n − base_n)/gain_n`.
    pub target: Vec<f32>,
    pub scale: f32,
    pub gate: GateConfig,
}

impl HybridSignal {
    /// Run the streams over every song of `songs` (frame ranges of `x`), each
    /// from its own first frame.
    pub fn new(
        x: &[f32],
        channels: usize,
        scale: f32,
        songs: &[Range<usize>],
        cfg: &HybridConfig,
    ) -> Self {
        let (c, f) = (channels, cfg.features());
        let n = x.len() / c;
        let mut inputs = vec![0.0f32; n * f * c];
        let mut base = vec![0.0f64; n * c];
        let mut gain = vec![cfg.gain_floor; n * c];
        let mut target = vec![0.0f32; n * c];
        for s in songs {
            for ch in 0..c {
                let mut st = Stream::new(cfg);
                for p in s.clone() {
                    let i = p * c + ch;
                    let v = x[i] as f64 * scale as f64;
                    base[i] = st.base();
                    gain[i] = st.gain();
                    target[i] = ((v - base[i]) / gain[i]) as f32;
                    st.update(v);
                    st.features(&mut inputs[p * f * c + ch..], c);
                }
            }
        }
        HybridSignal {
            channels,
            features: f,
            inputs,
            base,
            gain,
            target,
            scale,
            gate: cfg.gate,
        }
    }

    /// Model outputs `y[positions.len(), C]` (for the targets of `positions`,
    /// frames `p + 1`) into predictions in the model's units, in place,
    /// through a gate per channel that starts at 1 at `positions.start` and
    /// learns from each true frame `x` (model units) once it is past. With
    /// `gated` false the gate stays at 1.
    pub fn restore(&self, y: &mut [f32], x: &[f32], positions: Range<usize>, gated: bool) {
        let c = self.channels;
        let s = self.scale as f64;
        let mut gates = vec![Gate::new(self.gate); c];
        for (i, p) in positions.enumerate() {
            for (ch, gate) in gates.iter_mut().enumerate() {
                let n = (p + 1) * c + ch;
                let (b, d) = (self.base[n], self.gain[n] * y[i * c + ch] as f64);
                y[i * c + ch] = (gate.combine(b, d) / s) as f32;
                if gated {
                    gate.update(x[n] as f64 * s, b, d);
                }
            }
        }
    }

    /// Every target's 16-bit bin width in its own units, `[N, C]`: one
    /// step of audio (`laplace::STEP_16`, the signal's units being audio
    /// here) divided by the target's gain, so that a location–scale head's bin
    /// of `(x − b)/g` is exactly the integer sample `x`'s.
    pub fn deltas(&self) -> Vec<f32> {
        self.gain
            .iter()
            .map(|&g| (crate::laplace::STEP_16 / g) as f32)
            .collect()
    }

    /// The base predictions of the targets of `positions`, model units, `[positions.len(), C]`.
    pub fn base_of(&self, positions: Range<usize>) -> Vec<f32> {
        let c = self.channels;
        let s = self.scale as f64;
        self.base[(positions.start + 1) * c..(positions.end + 1) * c]
            .iter()
            .map(|&b| (b / s) as f32)
            .collect()
    }
}
