//! Free-running generation: the model continues a song on its own.
//!
//! 1. Priming: the model reads the first frames of a song teacher-forced
//!    (`Engine::predict`, its predictions thrown away), which leaves its
//!    inference state where the song's past put it.
//! 2. Free running: each timestep's window is the last `frame` frames, and
//!    from the first step on, every frame the model outputs becomes the
//!    newest frame of the next window (`Engine::free_step`). The window
//!    starts as the prime's last `frame` frames and slides over generated
//!    frames only.
//!
//! `takes` lanes run as one batch from the same prime: the `mse` head is
//! deterministic, so its takes are identical; the `mulaw` head samples each
//! lane's next sample from its distribution (at `temperature`, 0 = most
//! likely class), the `laplace` head from its Laplace law with the scale
//! times `temperature` (0 = the location), each lane with its own
//! SplitMix64 stream derived from `seed`.
//!
//! Every output is clipped to full scale in audio units before it is fed
//! back: `±1` in audio units, `±1/scale` in the model's normalized units.
//! Memory does not grow with the length: frames go out one at a time
//! through `on_frame`.
//!
//! A model that learns the residual of causal LPC (`residual`) has its
//! output added to the LPC prediction of the next frame, which is computed
//! from the signal as it is generated (the prime, then the generated frames,
//! fed back as they were clipped): one [`LpcStream`] per take and channel,
//! refitted every 1024 frames on the preceding second: the predictor the
//! teacher-forced prediction uses on a song, up to rounding.
//!
//! A model over the cascade (`hybrid`) reads, each step, the features of
//! one [`Stream`] per take and channel, run over the prime and then over
//! the generated frames as they were clipped; its next frame is the
//! cascade's base plus the held gain `g` times the network's output plus,
//! at `temperature` T, the excitation T·σ·N(0, 1) (the MSE head has no
//! noise model of its own). Excitation synthesis, set up causally from the
//! prime alone:
//! - the cascade stops adapting at the prime's end ([`Stream::freeze_cascade`]):
//!   refitted on its own output (EWLS remembers 500 samples, the combiner
//!   50) its synthesis filter lost the prime's spectrum within a second and
//!   burst into clipping (clicks; long-term spectra 31–66 dB from the songs');
//! - σ is what the network left unpredicted over the prime's second half,
//!   `RMS(target − output)` in gain units (0.82–0.99 on the shared clips);
//! - the gains are held, not tracked (a gain tracking the generated residual
//!   feeds on itself), and held where the frozen synthesis puts the take at
//!   the prime's RMS: first at the prime's RMS ([`Stream::hold_gains_at`]),
//!   then moved by the ratio of the prime's RMS to the level a copy of the
//!   stream makes of the excitation alone over half a second
//!   ([`synthesis_rms`]); the gains at the prime's last sample follow its
//!   last 12 ms, which may be a note's quiet tail 30 dB under the prime.
//!
//! The gate stays at 1: nothing true arrives to adapt it from.
//!
//! # The figures of a take ([`TakeReport`])
//! Besides its RMS and peak: the quietest second (the lowest RMS of any
//! one-second stretch, every start frame by frame, all channels), its RMS
//! minus the prime's, and, given the song's long-term spectrum, the
//! log-spectral distance of the take's mono mix from it (`spectrum`:
//! Welch, 2048-point Hann frames at 50 % overlap, RMS over all 1025 bins
//! of the dB difference). With `measure_int16` they are measured on the
//! take as a 16-bit file holds it, as the song is: its rounding noise fills
//! the bins a take leaves near silent (the demo's plain model's take is
//! 80.3 dB from the song as generated, 47.1 dB as written).
//!
//! A model trained without carried state (seq-len 1, not stateful: the seed
//! preset) has only ever run from a zero state; it runs every timestep from
//! zero here too (as `predict` does), and the prime only fills its window.

use crate::audio::to_i16;
use crate::dataset::Batch;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::hybrid::{HybridSignal, Stream};
use crate::laplace;
use crate::lpc::{LpcConfig, LpcStream};
use crate::model::Output;
use crate::mulaw;
use crate::predict::Plan;
use crate::residual::Residual;
use crate::rng::SplitMix64;
use crate::run_config::RunConfig;
use crate::spectrum::{self, QuietestWindow, Welch};

#[derive(Clone, Debug)]
pub struct GenerateConfig {
    /// Frames to generate per take.
    pub frames: usize,
    /// Takes (lanes) run as one batch.
    pub takes: usize,
    pub seed: u64,
    /// Softmax temperature of the `mulaw` head (0: most likely class), the
    /// factor on a `laplace` head's scale (0: its location).
    pub temperature: f64,
    /// The song's long-term spectrum (`spectrum::long_term` of its mono
    /// mix), which each take's is measured against; `None`: not measured.
    pub song_spectrum: Option<Vec<f64>>,
    /// Measure the quietest second and the spectrum on the take rounded to
    /// 16 bits, as a 16-bit file holds it (the song is 16-bit too: without
    /// its rounding noise, a smooth take's top bins lie near the −200 dB
    /// floor, 60 dB under the song's).
    pub measure_int16: bool,
}

/// Levels of one take, in audio units (full scale = 1) over all channels.
#[derive(Clone, Debug, PartialEq)]
pub struct TakeReport {
    pub frames: usize,
    pub rms_dbfs: f64,
    /// RMS over the take's last second (or all of it, when shorter).
    pub last_second_rms_dbfs: f64,
    pub peak: f64,
    /// Samples the model put beyond full scale (clipped before feedback).
    pub clipped: u64,
    pub samples: u64,
    /// The lowest RMS of any one-second stretch of the take (every start,
    /// frame by frame; all of it when shorter), over all channels.
    pub quietest_second_dbfs: f64,
    /// The prime's RMS over all channels.
    pub prime_rms_dbfs: f64,
    /// The take's long-term spectrum, its mono mix (`spectrum`).
    pub spectrum: Vec<f64>,
    /// Its log-spectral distance from the song's (`spectrum::lsd_db`), when given one.
    pub lsd_db: Option<f64>,
}

/// Below this RMS over its last second a take has collapsed to silence.
pub const SILENCE_DBFS: f64 = -60.0;
/// More than this fraction of clipped samples: the take exploded.
pub const EXPLODED_FRACTION: f64 = 0.01;

impl TakeReport {
    /// The take's RMS minus the prime's, dB.
    pub fn level_vs_prime_db(&self) -> f64 {
        self.rms_dbfs - self.prime_rms_dbfs
    }
    pub fn collapsed(&self) -> bool {
        self.last_second_rms_dbfs < SILENCE_DBFS
    }
    pub fn exploded(&self) -> bool {
        self.clipped as f64 > EXPLODED_FRACTION * self.samples as f64
    }
}

/// Longest take `generate` writes: one hour. Generation runs at about real
/// time, so a longer request is far more likely a slip (`--seconds 1e12`)
/// than a wish, and it would fill a disk before it finished.
pub const MAX_SECONDS: f64 = 3600.0;

/// Frames of a take of `seconds` at `sample_rate`, after checking the
/// request: a positive number, at most [`MAX_SECONDS`], and small enough for
/// a WAV file of `channels` channels of `bytes_per_sample` bytes (4 GiB).
pub fn take_frames(
    seconds: f64,
    sample_rate: u32,
    channels: usize,
    bytes_per_sample: usize,
) -> Result<usize> {
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err(Error::config("--seconds must be a positive number"));
    }
    if seconds > MAX_SECONDS {
        return Err(Error::config(format!(
            "--seconds {seconds} is more than the {MAX_SECONDS} seconds (one hour) a take may last"
        )));
    }
    let frames = ((seconds * f64::from(sample_rate)).round() as usize).max(1);
    let bytes = frames as u64 * (channels * bytes_per_sample) as u64;
    if bytes > crate::wavstream::MAX_DATA_BYTES {
        return Err(Error::config(format!(
            "--seconds {seconds}: {bytes} bytes of samples is more than a WAV file can hold (4 GiB)"
        )));
    }
    Ok(frames)
}

fn dbfs(mean_square: f64) -> f64 {
    10.0 * mean_square.max(1e-30).log10()
}

/// The SplitMix64 stream (xored into the seed) of the calibration run.
const CALIBRATION_STREAM: u64 = 0xca1b_0000_0000_0000;
/// The calibration moves the held gains by at most this factor (60 dB).
const MAX_CALIBRATION: f64 = 1000.0;

/// The RMS (audio units) of what `stream`'s frozen cascade makes of unit
/// excitation alone (`sigma`·N(0, 1) in its held gain units, no network)
/// over the second half of one second from the prime's end: the level the
/// synthesis filter gives the excitation, less the prime's ringing.
fn synthesis_rms(stream: &Stream, sigma: f64, rate: u32, rng: &mut SplitMix64) -> f64 {
    let mut st = stream.clone();
    let n = (rate as usize).max(2);
    let mut sq = 0.0;
    for i in 0..n {
        let a = (st.base() + st.gain() * sigma * rng.normal()).clamp(-1.0, 1.0);
        if i >= n / 2 {
            sq += a * a;
        }
        st.update(a);
    }
    (sq / (n - n / 2) as f64).sqrt()
}

/// Timesteps per `predict` call while priming (bounds its memory).
const PRIME_CHUNK: usize = 512;
/// Frames between two progress reports.
pub const PROGRESS_EVERY: usize = 1024;

/// Prime on `prime` (`[P, C]`, normalized, at the model's rate) and generate
/// `g.frames` frames per take. `on_frame` receives every generated frame of
/// all takes, `[takes, C]` in audio units; `on_progress` the frames done so
/// far, every [`PROGRESS_EVERY`] frames and at the end.
pub fn generate(
    engine: &mut dyn Engine,
    run: &RunConfig,
    prime: &[f32],
    g: &GenerateConfig,
    on_frame: &mut dyn FnMut(&[f32]) -> Result<()>,
    on_progress: &mut dyn FnMut(usize),
) -> Result<Vec<TakeReport>> {
    let cfg = engine.model().clone();
    let (c, frame, k) = (cfg.channels, cfg.frame, g.takes);
    let width = cfg.input_size();
    let prime_frames = prime.len() / c;
    if k == 0 {
        return Err(Error::config("--variations must be at least 1"));
    }
    if prime_frames < frame + 1 {
        return Err(Error::config(format!(
            "the prime is {prime_frames} frames; the model needs at least {} (its window and one more)",
            frame + 1
        )));
    }
    if !(g.temperature.is_finite() && g.temperature >= 0.0) {
        return Err(Error::config("--temperature must be finite and at least 0"));
    }
    if let Some(s) = &g.song_spectrum {
        if s.len() != spectrum::BINS {
            return Err(Error::config(format!(
                "a song's long-term spectrum has {} bins, not {}",
                spectrum::BINS,
                s.len()
            )));
        }
    }
    let scale = f64::from(run.scale);
    // Each channel's RMS over the prime, audio units.
    let prime_rms: Vec<f64> = (0..c)
        .map(|ch| {
            let sq: f64 = (0..prime_frames)
                .map(|f| (f64::from(prime[f * c + ch]) * scale).powi(2))
                .sum();
            (sq / prime_frames as f64).sqrt()
        })
        .collect();
    // The LPC prediction of each take's next frame, and the model's output units.
    let mut streams: Vec<Stream> = Vec::new();
    let mut hybrid_signal = None;
    let (mut lpc, ratio) = match &run.residual {
        Residual::None => (Vec::new(), 0.0),
        Residual::Cascade { .. } | Residual::Lpc { .. }
            if matches!(cfg.output, Output::Mulaw { .. }) =>
        {
            return Err(Error::config(
                "a mulaw head cannot learn a residual (the checkpoint is inconsistent)",
            ))
        }
        Residual::Cascade { hybrid } => {
            let per_channel: Vec<Stream> = (0..c)
                .map(|ch| {
                    let mut st = Stream::new(hybrid);
                    for f in 0..prime_frames {
                        st.update(f64::from(prime[f * c + ch]) * scale);
                    }
                    st.hold_gains_at(prime_rms[ch]);
                    st.freeze_cascade();
                    st
                })
                .collect();
            streams = (0..k).flat_map(|_| per_channel.iter().cloned()).collect();
            hybrid_signal = Some(HybridSignal::new(
                prime,
                c,
                run.scale,
                std::slice::from_ref(&(0..prime_frames)),
                hybrid,
            ));
            (Vec::new(), 0.0)
        }
        Residual::Lpc { scale: r } => {
            let mut streams = vec![LpcStream::new(LpcConfig::standard(run.sample_rate)); c];
            for (n, &v) in prime.iter().enumerate() {
                streams[n % c].push(v);
            }
            (
                (0..k).flat_map(|_| streams.iter().cloned()).collect(),
                f64::from(*r) / scale,
            )
        }
    };
    let carry = Plan::carries_state(run.data.stateful, run.data.seq_len);

    // Teacher-forced priming: positions frame-1 ..= P-2, so the next window
    // (ending at the prime's last frame) is the first free step's.
    let primed = carry && prime_frames > frame;
    let mut innovation = vec![(0.0f64, 0.0f64); c];
    if primed {
        match &hybrid_signal {
            Some(h) => engine.set_signals(&h.inputs, Some(&h.target))?,
            None => engine.set_signal(prime)?,
        }
        let steps = prime_frames - frame;
        let mut scratch = Vec::new();
        let mut done = 0;
        while done < steps {
            let t = PRIME_CHUNK.min(steps - done);
            let batch = Batch {
                starts: vec![frame - 1 + done; k],
                carry: vec![done > 0; k],
            };
            engine.predict(&batch, t, &mut scratch)?;
            if let Some(h) = &hybrid_signal {
                // Lane 0's outputs (every lane reads the same prime).
                for i in 0..t {
                    let p = frame - 1 + done + i;
                    if p + 1 < prime_frames / 2 {
                        continue;
                    }
                    for ch in 0..c {
                        let e = f64::from(h.target[(p + 1) * c + ch])
                            - f64::from(scratch[i * k * c + ch]);
                        innovation[ch].0 += e * e;
                        innovation[ch].1 += 1.0;
                    }
                }
            }
            done += t;
        }
    }
    // The excitation's level per channel, in gain units: what the network
    // left unpredicted over the prime's second half, or 1 (the targets'
    // own level) when the prime was not run through it.
    let excitation: Vec<f64> = innovation
        .iter()
        .map(|&(s, n)| if n > 0.0 { (s / n).sqrt() } else { 1.0 })
        .collect();
    if !streams.is_empty() {
        for ch in 0..c {
            let mut rng = SplitMix64::derive(g.seed ^ CALIBRATION_STREAM, ch as u64);
            let level = synthesis_rms(&streams[ch], excitation[ch], run.sample_rate, &mut rng);
            if level > 0.0 && level.is_finite() {
                let s = (prime_rms[ch] / level).clamp(1.0 / MAX_CALIBRATION, MAX_CALIBRATION);
                for st in streams.iter_mut().skip(ch).step_by(c) {
                    let held = st.signal_gain() * s;
                    st.hold_gains_at(held);
                }
            }
        }
    }

    let mut window: Vec<f32> = if streams.is_empty() {
        (0..k)
            .flat_map(|_| prime[(prime_frames - frame) * c..].iter().copied())
            .collect()
    } else {
        vec![0.0; k * width]
    };
    let mut rngs: Vec<SplitMix64> = (0..k)
        .map(|lane| SplitMix64::derive(g.seed, lane as u64))
        .collect();
    let mut out = Vec::new();
    let mut frame_out = vec![0.0f32; k * c];
    let mut feed = vec![0.0f32; k * c];
    // Squares of each take's last second, a ring per take.
    let second = (run.sample_rate as usize).max(1).min(g.frames.max(1)) * c;
    let mut last = vec![0.0f64; k * second];
    let mut sum_sq = vec![0.0f64; k];
    let mut peak = vec![0.0f64; k];
    let mut clipped = vec![0u64; k];
    let rate = (run.sample_rate as usize).max(1);
    let mut quiet = vec![QuietestWindow::new(rate); k];
    let mut welch = vec![Welch::new(); k];
    // One take's frame as its figures read it.
    let mut measured = vec![0.0f32; c];
    for n in 0..g.frames {
        let fresh = !carry || (n == 0 && !primed);
        for (row, st) in streams.iter().enumerate() {
            let (lane, ch) = (row / c, row % c);
            st.features(&mut window[lane * width + ch..(lane + 1) * width], c);
        }
        engine.free_step(&window, fresh, &mut out)?;
        for lane in 0..k {
            for ch in 0..c {
                let row = lane * c + ch;
                // The model's next value in its output units (the `mse` and
                // `laplace` heads), then in audio units.
                let y = match cfg.output {
                    Output::Mse => f64::from(out[row]),
                    Output::Laplace { .. } => laplace::sample(
                        f64::from(out[2 * row]),
                        f64::from(out[2 * row + 1]),
                        g.temperature,
                        &mut rngs[lane],
                    ),
                    Output::Mulaw { .. } => 0.0,
                };
                let audio = match cfg.output {
                    Output::Mse if !streams.is_empty() => {
                        let st = &streams[row];
                        let noise = g.temperature * excitation[ch] * rngs[lane].normal();
                        st.base() + st.gain() * (y + noise)
                    }
                    // Its draw is already the excitation, in gain units.
                    Output::Laplace { .. } if !streams.is_empty() => {
                        let st = &streams[row];
                        st.base() + st.gain() * y
                    }
                    Output::Mse | Output::Laplace { .. } if lpc.is_empty() => y * scale,
                    Output::Mse | Output::Laplace { .. } => {
                        (lpc[row].predict() + ratio * y) * scale
                    }
                    Output::Mulaw { .. } => {
                        let z = &out[row * mulaw::CLASSES..(row + 1) * mulaw::CLASSES];
                        mulaw::decode(mulaw::sample(z, g.temperature, &mut rngs[lane]))
                    }
                };
                // NaN counts as beyond full scale, and is fed back as silence.
                if audio.is_nan() || audio.abs() > 1.0 {
                    clipped[lane] += 1;
                }
                let a = if audio.is_nan() {
                    0.0
                } else {
                    audio.clamp(-1.0, 1.0)
                };
                frame_out[row] = a as f32;
                // Model units: |a| ≤ 1 in audio units is ±1/scale here.
                feed[row] = (a / scale) as f32;
                if let Some(l) = lpc.get_mut(row) {
                    l.push(feed[row]);
                }
                if let Some(st) = streams.get_mut(row) {
                    st.update(a);
                }
                sum_sq[lane] += a * a;
                peak[lane] = peak[lane].max(a.abs());
                last[lane * second + (n * c + ch) % second] = a * a;
            }
            for (m, &v) in measured
                .iter_mut()
                .zip(&frame_out[lane * c..(lane + 1) * c])
            {
                *m = if g.measure_int16 {
                    f32::from(to_i16(v)) / 32_768.0
                } else {
                    v
                };
            }
            let f = &measured;
            let sq = f.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / c as f64;
            quiet[lane].push(sq);
            welch[lane].push(f64::from(f.iter().sum::<f32>() / c as f32));
            if !streams.is_empty() {
                continue;
            }
            // Slide the window by one frame, over the new frame.
            let w = &mut window[lane * width..(lane + 1) * width];
            w.copy_within(c.., 0);
            w[width - c..].copy_from_slice(&feed[lane * c..(lane + 1) * c]);
        }
        on_frame(&frame_out)?;
        if (n + 1) % PROGRESS_EVERY == 0 {
            on_progress(n + 1);
        }
    }
    on_progress(g.frames);
    let samples = (g.frames * c) as u64;
    let prime_rms_dbfs = dbfs(
        prime
            .iter()
            .map(|&v| (f64::from(v) * scale).powi(2))
            .sum::<f64>()
            / prime.len() as f64,
    );
    Ok((0..k)
        .map(|lane| {
            let tail = &last[lane * second..(lane + 1) * second];
            let tail_n = (g.frames * c).min(second).max(1);
            let spectrum = welch[lane].spectrum();
            TakeReport {
                quietest_second_dbfs: dbfs(quiet[lane].least_mean_square()),
                prime_rms_dbfs,
                lsd_db: g
                    .song_spectrum
                    .as_ref()
                    .map(|s| spectrum::lsd_db(&spectrum, s)),
                spectrum,
                frames: g.frames,
                rms_dbfs: dbfs(sum_sq[lane] / samples.max(1) as f64),
                last_second_rms_dbfs: dbfs(tail.iter().sum::<f64>() / tail_n as f64),
                peak: peak[lane],
                clipped: clipped[lane],
                samples,
            }
        })
        .collect())
}
