//! The colour of the excitation in free-running generation over the cascade.
//!
//! A take over the cascade is excitation through the frozen cascade's
//! synthesis filter `H(z)` (`generate`), so its long-term spectrum is
//! `|H|²` times the excitation's. White excitation gives the take the
//! frozen filter's spectrum alone, and that is not the song's: the cascade
//! whitened the prime while it adapted, sample by sample, and the filter it
//! froze into at the prime's end is one moment's. On the shared piano the
//! frozen filter puts the top octaves about 30 dB too high against the
//! bass; the level calibration, which matches the RMS (the bass), leaves the
//! top as a floor 35 dB over the song's.
//!
//! So the excitation is coloured so that the synthesis puts out the prime's
//! long-term spectrum: an all-pole filter `1/A(z)`, `A(z) = 1 + Σ_{k=1..p} a_k z^{−k}`,
//! runs on the unit noise before it enters the synthesis, fitted per
//! channel to the power spectrum `T = P / |H|²` it should have:
//! 1. `P[k]`: the prime's long-term spectrum (`spectrum::long_term`, 1025
//!    bins); `H[k]`: the frozen synthesis's response at the same bins, from
//!    its impulse response over [`RESPONSE_LEN`] samples, folded onto the
//!    2048-point grid (sampling `H` at those frequencies) and transformed;
//! 2. `r_j = Σ_{k=0..2047} T[k] cos(2π jk / 2048)`, `j = 0..=p` (`T`
//!    mirrored above Nyquist): the autocorrelation whose spectrum is `T`
//!    (Wiener–Khinchin);
//! 3. lag window and white-noise correction: `r_j ← r_j · exp(−½(2π f₀ j / fs)²)`
//!    (a Gaussian smoothing of the spectrum of about `f₀` Hz, which keeps
//!    the poles off the unit circle) and `r_0 ← r_0 (1 + η)` (a floor η
//!    under the power, the deepest null the filter can draw);
//! 4. Levinson–Durbin solves `Σ_j a_j r_{|i−j|} = −r_i`, `i = 1..=p`, in
//!    f64: with `r` positive definite every reflection coefficient has
//!    `|k| < 1`, so `1/A(z)` is stable; it leaves the prediction error
//!    `E = r_0 Π (1 − k_i²)`;
//! 5. the filter's input is scaled by `sqrt(E / r_0)`: the AR process
//!    `1/A(z)` driven by noise of power `E` has the autocorrelation `r` it
//!    was fitted to (Yule–Walker), so unit noise comes out at unit power
//!    and the excitation's level (`σ`) and its calibration keep their meaning.
//!
//! The fit reads the prime and the frozen cascade only; a take's filters
//! start from a zero state. (Fitting `1/A` to what the network left over
//! the prime instead, the residual's own colour, was measured first: that
//! residual is near white, so it changed the LSD by under 0.5 dB.)

use crate::hybrid::Stream;
use crate::rng::SplitMix64;
use crate::spectrum::{self, BINS, WELCH_LEN};
use rustfft::num_complex::Complex;
use rustfft::FftPlanner;

/// Default order `p` of the shaping filter (0: white excitation).
pub const DEFAULT_ORDER: usize = 32;
/// Gaussian lag window's bandwidth `f₀`, Hz.
pub const LAG_WINDOW_HZ: f64 = 40.0;
/// White-noise correction η: the deepest null the filter draws, −60 dB.
pub const WHITE_NOISE: f64 = 1e-6;
/// The least `|H|²` divided by, relative to its largest (−90 dB: a frozen
/// filter spans about 70 dB on the shared clips, and a floor inside that
/// range bends the fit where `H` is weak. Measured LSD piano / orchestral /
/// electronic: −60 dB 7.5 / 7.4 / 15.2, −90 dB 7.5 / 6.7 / 9.1, −120 dB
/// 7.5 / 5.1 / the electronic take clipping into a burst).
pub const RESPONSE_FLOOR: f64 = 1e-9;
/// Samples of the frozen synthesis's impulse response read.
pub const RESPONSE_LEN: usize = 32_768;

/// The first `n` samples of the impulse response of `stream`'s synthesis
/// (its cascade frozen, its gains held: linear in what it is fed): two
/// copies run on, one fed its own base plus a unit impulse, one its base;
/// their difference is the response, the prime's ringing cancelled.
pub fn impulse_response(stream: &Stream, n: usize) -> Vec<f64> {
    let (mut a, mut b) = (stream.clone(), stream.clone());
    (0..n)
        .map(|i| {
            let xa = a.base() + if i == 0 { 1.0 } else { 0.0 };
            let xb = b.base();
            a.update(xa);
            b.update(xb);
            xa - xb
        })
        .collect()
}

/// `|H[k]|²` at the [`BINS`] bins of the 2048-point grid of the response `h`
/// (folded onto the grid, then transformed).
pub fn response_power(h: &[f64]) -> Vec<f64> {
    let mut buf = vec![Complex::new(0.0, 0.0); WELCH_LEN];
    for (i, &v) in h.iter().enumerate() {
        buf[i % WELCH_LEN].re += v;
    }
    FftPlanner::new()
        .plan_fft_forward(WELCH_LEN)
        .process(&mut buf);
    buf[..BINS].iter().map(|c| c.norm_sqr()).collect()
}

/// `r_0 ..= r_lags` of the two-sided power spectrum whose bins
/// `0 ..= 1024` are `power` (step 2 above).
pub fn autocorrelation_of(power: &[f64], lags: usize) -> Vec<f64> {
    let n = WELCH_LEN as f64;
    (0..=lags)
        .map(|j| {
            (0..WELCH_LEN)
                .map(|k| {
                    let t = power[if k < BINS { k } else { WELCH_LEN - k }];
                    t * (2.0 * std::f64::consts::PI * (j * k) as f64 / n).cos()
                })
                .sum()
        })
        .collect()
}

/// Lag window and white-noise correction of `r` in place (step 2 above).
pub fn condition(r: &mut [f64], bandwidth_hz: f64, rate: u32, white_noise: f64) {
    let s = 2.0 * std::f64::consts::PI * bandwidth_hz / f64::from(rate.max(1));
    for (k, v) in r.iter_mut().enumerate().skip(1) {
        *v *= (-0.5 * (s * k as f64).powi(2)).exp();
    }
    if let Some(r0) = r.first_mut() {
        *r0 *= 1.0 + white_noise;
    }
}

/// Levinson–Durbin on `r_0 ..= r_p`: the coefficients `a_1 ..= a_p` of
/// `A(z)` and the prediction error `E`. `None` unless `r` is positive
/// definite (a reflection coefficient reaching ±1, `r_0 ≤ 0`, or non-finite).
pub fn levinson(r: &[f64]) -> Option<(Vec<f64>, f64)> {
    let p = r.len().checked_sub(1)?;
    let mut e = r[0];
    if !(e.is_finite() && e > 0.0) {
        return None;
    }
    let mut a = vec![0.0f64; p];
    let mut prev = vec![0.0f64; p];
    for i in 0..p {
        // Order i + 1 from order i: a_{i+1} = k, a_j += k · a_{i+1−j}.
        let acc = r[i + 1] + (0..i).map(|j| a[j] * r[i - j]).sum::<f64>();
        let k = -acc / e;
        if !(k.is_finite() && k.abs() < 1.0) {
            return None;
        }
        prev[..i].copy_from_slice(&a[..i]);
        for j in 0..i {
            a[j] = prev[j] + k * prev[i - 1 - j];
        }
        a[i] = k;
        e *= 1.0 - k * k;
    }
    Some((a, e))
}

/// One all-pole shaping filter and its state: `y_n = gain · w_n − Σ a_k y_{n−k}`.
#[derive(Clone, Debug)]
pub struct Shaper {
    a: Vec<f64>,
    gain: f64,
    /// The last `p` outputs, a ring; `pos` is where the newest went.
    past: Vec<f64>,
    pos: usize,
}

impl Shaper {
    /// The identity: white excitation.
    pub fn white() -> Self {
        Shaper {
            a: Vec::new(),
            gain: 1.0,
            past: Vec::new(),
            pos: 0,
        }
    }

    /// The filter of order `order` whose output, at unit power, has the
    /// spectrum `power` (`[BINS]`, steps 2–5 above); white when `order` is
    /// 0 or the fit fails (a silent or non-finite spectrum).
    pub fn fit(power: &[f64], order: usize, rate: u32) -> Self {
        if order == 0 || power.len() != BINS {
            return Shaper::white();
        }
        let mut r = autocorrelation_of(power, order);
        condition(&mut r, LAG_WINDOW_HZ, rate, WHITE_NOISE);
        match levinson(&r) {
            Some((a, e)) => Shaper::from_coefficients(a, (e / r[0]).sqrt()),
            None => Shaper::white(),
        }
    }

    /// The filter that makes `stream`'s frozen synthesis put out the
    /// spectrum of `prime` (one channel, audio units): fitted to
    /// `P / |H|²` (step 1 above), each `|H|²` floored [`RESPONSE_FLOOR`]
    /// times its largest.
    pub fn for_synthesis(stream: &Stream, prime: &[f32], order: usize, rate: u32) -> Self {
        if order == 0 {
            return Shaper::white();
        }
        let p = spectrum::long_term(prime);
        let h = response_power(&impulse_response(stream, RESPONSE_LEN));
        let floor = h.iter().copied().fold(0.0, f64::max) * RESPONSE_FLOOR;
        if !(floor.is_finite() && floor > 0.0) {
            return Shaper::white();
        }
        let t: Vec<f64> = p.iter().zip(&h).map(|(p, h)| p / h.max(floor)).collect();
        Shaper::fit(&t, order, rate)
    }

    /// The filter `gain / A(z)` with `A`'s coefficients `a_1 ..= a_p`, from rest.
    pub fn from_coefficients(a: Vec<f64>, gain: f64) -> Self {
        let p = a.len();
        Shaper {
            a,
            gain,
            past: vec![0.0; p],
            pos: 0,
        }
    }

    /// `a_1 ..= a_p` (empty: white).
    pub fn coefficients(&self) -> &[f64] {
        &self.a
    }

    /// The input's scale, `sqrt(E / r_0)`.
    pub fn gain(&self) -> f64 {
        self.gain
    }

    /// Filter the next input sample.
    pub fn next(&mut self, w: f64) -> f64 {
        let p = self.a.len();
        if p == 0 {
            return w;
        }
        // past[pos] is y_{n−1}, past[pos − 1] is y_{n−2}, … (mod p).
        let mut y = self.gain * w;
        for (k, a) in self.a.iter().enumerate() {
            y -= a * self.past[(self.pos + p - k) % p];
        }
        self.pos = (self.pos + 1) % p;
        self.past[self.pos] = y;
        y
    }
}

/// The RMS (audio units) of what `stream`'s frozen cascade makes of the
/// excitation alone (`sigma` times `shaper`'s unit noise, in its held gain
/// units, no network) over the second half of one second from the prime's
/// end: the level the synthesis filter gives the excitation, less the
/// prime's ringing.
pub fn synthesis_rms(
    stream: &Stream,
    shaper: &Shaper,
    sigma: f64,
    rate: u32,
    rng: &mut SplitMix64,
) -> f64 {
    let (mut st, mut sh) = (stream.clone(), shaper.clone());
    let n = (rate as usize).max(2);
    let mut sq = 0.0;
    for i in 0..n {
        let a = (st.base() + st.gain() * sigma * sh.next(rng.normal())).clamp(-1.0, 1.0);
        if i >= n / 2 {
            sq += a * a;
        }
        st.update(a);
    }
    (sq / (n - n / 2) as f64).sqrt()
}

/// The calibration moves the held gains by at most this factor (60 dB) a round.
const MAX_CALIBRATION: f64 = 1000.0;
/// Calibration rounds at most.
const CALIBRATION_ROUNDS: usize = 4;

/// Hold the gains of `streams[rows]` (one channel's, every take) where
/// [`synthesis_rms`] of the first puts the excitation at `target_rms`:
/// `(target_rms, sigma, rate)`. Again while the level is off by more than
/// 0.5 dB: a run whose synthesis clipped measured too low a level for its
/// gains. Every round draws the same noise (`seed`, stream `lane`).
pub fn calibrate_gains(
    streams: &mut [Stream],
    rows: &[usize],
    shaper: &Shaper,
    (target_rms, sigma, rate): (f64, f64, u32),
    seed: u64,
    lane: u64,
) {
    let Some(&first) = rows.first() else {
        return;
    };
    for _ in 0..CALIBRATION_ROUNDS {
        let mut rng = SplitMix64::derive(seed, lane);
        let level = synthesis_rms(&streams[first], shaper, sigma, rate, &mut rng);
        if !(level > 0.0 && level.is_finite()) {
            return;
        }
        let s = (target_rms / level).clamp(1.0 / MAX_CALIBRATION, MAX_CALIBRATION);
        for &r in rows {
            streams[r].scale_held_gains(s);
        }
        if 20.0 * s.log10().abs() < 0.5 {
            return;
        }
    }
}
