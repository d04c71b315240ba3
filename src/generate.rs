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
//! likely class), the `laplace` and `logistic` heads from their law with the
//! scale times `temperature` (0 = the location), each lane with its own
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
//! at `temperature` T, the excitation T·σ·w, `w` unit Gaussian noise
//! coloured by a per-channel all-pole filter (the MSE head has no noise
//! model of its own; a location–scale head's draw is coloured about its
//! location). Excitation synthesis, set up causally from the prime alone:
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
//!   ([`synthesis_rms`](crate::excitation::synthesis_rms)); the gains at the prime's last sample follow its
//!   last 12 ms, which may be a note's quiet tail 30 dB under the prime;
//! - the colour of `w` ([`crate::excitation`], order `excitation_order`)
//!   makes the frozen synthesis put out the prime's long-term spectrum:
//!   white, the frozen filter's own spectrum left the piano's top octaves
//!   a floor 35 dB over the song's (LSD 27.6 dB; coloured, 7.5 dB);
//! - at the end of each of the first `SETTLE_SECONDS` (2) seconds of the
//!   take the held gains move by the ratio of the prime's RMS to the
//!   take's own: the network's share of the level, which the calibration
//!   leaves out, is seen only there (generated audio only: still causal);
//! - the network's share β of each row starts at 1 and is halved at every
//!   sample at full scale and after every block that runs more than 6 dB
//!   over the prime ([`LevelGuard`]): trained to the end of the preset, a
//!   model made the piano's held note an undamped tone and the electronic
//!   clip's take a full-scale square; the calibration is done without it.
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
use crate::excitation::{calibrate_gains, Shaper};
use crate::hybrid::{HybridSignal, Stream};
use crate::level_guard::LevelGuard;
use crate::lpc::{LpcConfig, LpcStream};
use crate::model::Output;
use crate::mulaw;
use crate::predict::Plan;
use crate::residual::Residual;
use crate::rng::SplitMix64;
use crate::run_config::RunConfig;
use crate::spectrum::{self, QuietestWindow, Welch};
use crate::take_report::dbfs;
pub use crate::take_report::{
    take_frames, TakeReport, EXPLODED_FRACTION, MAX_SECONDS, SILENCE_DBFS,
};

#[derive(Clone, Debug)]
pub struct GenerateConfig {
    /// Frames to generate per take.
    pub frames: usize,
    /// Takes (lanes) run as one batch.
    pub takes: usize,
    pub seed: u64,
    /// Softmax temperature of the `mulaw` head (0: most likely class), the
    /// factor on a location–scale head's scale (0: its location).
    pub temperature: f64,
    /// The song's long-term spectrum (`spectrum::long_term` of its mono
    /// mix), which each take's is measured against; `None`: not measured.
    pub song_spectrum: Option<Vec<f64>>,
    /// Measure the quietest second and the spectrum on the take rounded to
    /// 16 bits, as a 16-bit file holds it (the song is 16-bit too: without
    /// its rounding noise, a smooth take's top bins lie near the −200 dB
    /// floor, 60 dB under the song's).
    pub measure_int16: bool,
    /// Order of the all-pole filter that colours the excitation of a model
    /// over the cascade so that the frozen synthesis puts out the prime's
    /// long-term spectrum ([`crate::excitation`]); 0: white.
    pub excitation_order: usize,
}

/// The SplitMix64 stream (xored into the seed) of the calibration run.
const CALIBRATION_STREAM: u64 = 0xca1b_0000_0000_0000;

/// Seconds at whose ends a take over the cascade moves its held gains by
/// the ratio of the prime's RMS to its own over that second's second half:
/// the calibration runs the synthesis without the network, whose share of
/// the take it cannot see (4–5 dB on the shared piano and electronic clips
/// with a coloured excitation, the piano's take clipping into a burst).
const SETTLE_SECONDS: usize = 2;
/// Settling moves the held gains by at most this factor (12 dB) each time.
const MAX_SETTLE: f64 = 4.0;

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
    // Its colour: what makes the frozen synthesis put out the prime's spectrum.
    let mut shapers: Vec<Shaper> = if streams.is_empty() {
        Vec::new()
    } else {
        let per_channel: Vec<Shaper> = (0..c)
            .map(|ch| {
                let x: Vec<f32> = (0..prime_frames)
                    .map(|f| (f64::from(prime[f * c + ch]) * scale) as f32)
                    .collect();
                Shaper::for_synthesis(&streams[ch], &x, g.excitation_order, run.sample_rate)
            })
            .collect();
        (0..k).flat_map(|_| per_channel.iter().cloned()).collect()
    };
    for ch in 0..c.min(streams.len()) {
        let rows: Vec<usize> = (ch..streams.len()).step_by(c).collect();
        let seed = g.seed ^ CALIBRATION_STREAM;
        let level = (prime_rms[ch], excitation[ch], run.sample_rate);
        calibrate_gains(&mut streams, &rows, &shapers[ch], level, seed, ch as u64);
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
    // Each row's squares over the second half of the current second, for
    // the settling of the held gains.
    let mut settle = vec![0.0f64; streams.len()];
    let mut guards: Vec<LevelGuard> = (0..streams.len())
        .map(|row| LevelGuard::new(prime_rms[row % c]))
        .collect();
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
                // location–scale heads), then in audio units.
                let y = match cfg.output.law() {
                    Some((law, _)) => law.sample(
                        f64::from(out[2 * row]),
                        f64::from(out[2 * row + 1]),
                        g.temperature,
                        &mut rngs[lane],
                    ),
                    None if cfg.output == Output::Mse => f64::from(out[row]),
                    None => 0.0,
                };
                let audio = match cfg.output {
                    Output::Mse if !streams.is_empty() => {
                        let (st, beta) = (&streams[row], guards[row].beta());
                        let w = shapers[row].next(rngs[lane].normal());
                        st.base() + st.gain() * (beta * y + g.temperature * excitation[ch] * w)
                    }
                    // Its draw is already the excitation, in gain units:
                    // its spread about the location is coloured. The guard
                    // cuts the network's share of both: its law's scale
                    // follows its inputs, so a loud take widened its own
                    // draws (the electronic clip's went to full scale); what
                    // β takes of the spread the calibrated excitation gives.
                    Output::Laplace { .. } | Output::Logistic { .. } if !streams.is_empty() => {
                        let (st, mu) = (&streams[row], f64::from(out[2 * row]));
                        let beta = guards[row].beta();
                        let spread = if beta < 1.0 {
                            let w = rngs[lane].normal();
                            beta * (y - mu) + (1.0 - beta) * g.temperature * excitation[ch] * w
                        } else {
                            y - mu
                        };
                        st.base() + st.gain() * (beta * mu + shapers[row].next(spread))
                    }
                    Output::Mse | Output::Laplace { .. } | Output::Logistic { .. }
                        if lpc.is_empty() =>
                    {
                        y * scale
                    }
                    Output::Mse | Output::Laplace { .. } | Output::Logistic { .. } => {
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
                    guards[row].push(a);
                }
                if let Some(q) = settle.get_mut(row) {
                    if n / rate < SETTLE_SECONDS && n % rate >= rate / 2 {
                        *q += a * a;
                    }
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
        if (n + 1) % rate == 0 && (n + 1) / rate <= SETTLE_SECONDS {
            for (row, st) in streams.iter_mut().enumerate() {
                let level = (settle[row] / (rate - rate / 2) as f64).sqrt();
                if level > 0.0 {
                    let s = (prime_rms[row % c] / level).clamp(1.0 / MAX_SETTLE, MAX_SETTLE);
                    st.scale_held_gains(s);
                }
                settle[row] = 0.0;
            }
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
