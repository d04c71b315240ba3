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
//! cascade's base plus the local gain times the network's output plus, at
//! `temperature` T, T·N(0, 1): the MSE head has no noise model of its own,
//! and its targets are the residual in units of its local RMS, so a unit
//! Gaussian is the excitation that keeps the residual's level (at T = 1).
//! The gate stays at 1: nothing true arrives to adapt it from; the gains
//! are held at the prime's end ([`Stream::hold_gains`]).
//!
//! A model trained without carried state (seq-len 1, not stateful: the seed
//! preset) has only ever run from a zero state; it runs every timestep from
//! zero here too (as `predict` does), and the prime only fills its window.

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
use crate::train::RunConfig;

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
}

/// Below this RMS over its last second a take has collapsed to silence.
pub const SILENCE_DBFS: f64 = -60.0;
/// More than this fraction of clipped samples: the take exploded.
pub const EXPLODED_FRACTION: f64 = 0.01;

impl TakeReport {
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
    let scale = f64::from(run.scale);
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
                    st.hold_gains();
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
            done += t;
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
                        let noise = g.temperature * rngs[lane].normal();
                        st.base() + st.gain() * (y + noise)
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
    Ok((0..k)
        .map(|lane| {
            let tail = &last[lane * second..(lane + 1) * second];
            let tail_n = (g.frames * c).min(second).max(1);
            TakeReport {
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
