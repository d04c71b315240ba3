//! μ-law companding and the 256 classes of the `mulaw` output head.
//!
//! Predicting a distribution over quantized sample values instead of the
//! value itself is how WaveNet (van den Oord et al., "WaveNet: A Generative
//! Model for Raw Audio", 2016, §2.2) and SampleRNN (Mehri et al.,
//! "SampleRNN: An Unconditional End-to-End Neural Audio Generation Model",
//! ICLR 2017) model raw audio: a softmax can be multi-modal where a squared
//! error regresses to the mean, and sampling from it keeps free-running
//! generation from collapsing to the average (silence).
//!
//! The companding law is the continuous μ-law of ITU-T Recommendation G.711
//! (1972/1988), with μ = 255:
//! ```text
//! F(x)    = sgn(x) · ln(1 + μ|x|) / ln(1 + μ),        x ∈ [-1, 1]
//! F⁻¹(y)  = sgn(y) · ((1 + μ)^|y| − 1) / μ,            y ∈ [-1, 1]
//! ```
//! (G.711's own 8-bit codes approximate F by 8 linear segments; like WaveNet
//! we quantize F(x) itself, uniformly into 256 levels.) Class `k` stands for
//! `y_k = 2k/μ − 1`, so `k = round((F(x) + 1)/2 · μ)`. The classes live in
//! audio units (full scale ±1): a model that reads normalized samples
//! multiplies by its dataset's scale before quantizing.
//!
//! This module is neither CPU nor GPU: both engines and `generate` use it
//! (the GPU's twin of [`encode`] and [`decode`] is in shaders/softmax_xent.wgsl).

use crate::rng::SplitMix64;

/// μ of the companding law.
pub const MU: f64 = 255.0;
/// Quantization levels: one per byte value.
pub const CLASSES: usize = 256;

/// The class of an audio-unit sample (clipped to full scale first).
pub fn encode(x: f64) -> usize {
    let x = if x.is_nan() { 0.0 } else { x.clamp(-1.0, 1.0) };
    let y = x.signum() * (MU * x.abs()).ln_1p() / MU.ln_1p();
    ((y + 1.0) / 2.0 * MU + 0.5).floor().clamp(0.0, MU) as usize
}

/// The audio-unit value class `k` stands for.
pub fn decode(k: usize) -> f64 {
    let y = 2.0 * k as f64 / MU - 1.0;
    y.signum() * ((1.0 + MU).powf(y.abs()) - 1.0) / MU
}

/// The audio-unit value of every class, for the loops that weigh them.
pub fn decode_table() -> [f64; CLASSES] {
    std::array::from_fn(decode)
}

/// Draw one class from the softmax of `logits / temperature` (256 logits of
/// one channel); `temperature = 0` takes the most likely class (the first
/// of equal ones). Sums run in f64 in index order, so a seed replays exactly.
pub fn sample(logits: &[f32], temperature: f64, rng: &mut SplitMix64) -> usize {
    debug_assert_eq!(logits.len(), CLASSES);
    let (best, max) =
        logits
            .iter()
            .enumerate()
            .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
                if v > bv {
                    (i, v)
                } else {
                    (bi, bv)
                }
            });
    if temperature <= 0.0 || !max.is_finite() {
        return best;
    }
    let mut weights = [0.0f64; CLASSES];
    let mut total = 0.0;
    for (w, &z) in weights.iter_mut().zip(logits) {
        *w = ((f64::from(z) - f64::from(max)) / temperature).exp();
        total += *w;
    }
    let mut u = rng.next_f64() * total;
    for (k, w) in weights.iter().enumerate() {
        if u < *w {
            return k;
        }
        u -= w;
    }
    // Rounding left `u` a hair above the last weight: the last class with any.
    weights.iter().rposition(|w| *w > 0.0).unwrap_or(best)
}
