//! End-to-end throughput of an [`Engine`] on the workloads of issue 5, run on
//! the same synthetic signal and shapes as the PyTorch and Keras peer scripts
//! (`../shared/bench/`), so the figures can sit side by side.
//!
//! Workloads (input 1 and a linear head on every timestep unless said):
//!
//! | name | model | step |
//! |---|---|---|
//! | `seed` | `--preset seed`: frame 3, LSTM(100) linear cell, hard-sigmoid gates, head 50-25-12-1 | one epoch of 320,000 windows, batch 100, seq-len 1 |
//! | `seq` | hidden 256, 2 layers | seq-len 256, batch 32 |
//! | `wide` | hidden 512, 1 layer | seq-len 128, batch 64 |
//! | `small` | hidden 32, 1 layer | seq-len 64, batch 8 |
//! | `seq-infer`, `wide-infer` | as `seq`, `wide` | forward only ([`Engine::predict`]) |
//! | `generate` | hidden 256, 1 layer | free running ([`Engine::free_step`]), 1 take; timed unit: 1 s of audio at 44.1 kHz |
//! | `generate-8` | as `generate` | 8 takes as one batch; timed unit: 1 s of audio per take |
//!
//! Every timed training step waits for its stats (`take_stats(true)`), so an
//! engine that queues work (the GPU) is timed to completion. The `seed` epoch
//! waits only at its end, as training does. A free step hands back its output,
//! which the next step needs as input, so generation is timed to completion
//! step by step, as `generate` runs it. Nothing here prints.
//!
//! The generation workloads have no peer: they measure the real-time factor
//! of `wavelstm generate`'s free running (seconds of audio produced per
//! wall-clock second), after a short teacher-forced prime and untimed
//! warm-up seconds.

use crate::dataset::Batch;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::flops;
use crate::model::{init_params, ModelConfig};
use crate::optim::AdamConfig;
use crate::preset::{Defaults, Preset};
use crate::rng::SplitMix64;
use serde::Serialize;
use std::time::Instant;

/// The peer scripts' sample rate and signal length for sequence workloads.
const SAMPLE_RATE: f64 = 44_100.0;
const SIGNAL_SECONDS: usize = 10;
/// The `seed` epoch: 320,000 windows in batches of 100.
pub const SEED_WINDOWS: usize = 320_000;
const SEED_BATCH: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Training steps timed one by one.
    Train,
    /// Forward passes timed one by one.
    Infer,
    /// Whole training epochs timed (the `seed` workload).
    Epoch,
    /// Free-running generation timed one second of audio at a time.
    Generate,
}

#[derive(Clone, Debug)]
pub struct Workload {
    pub name: &'static str,
    pub model: ModelConfig,
    pub seq_len: usize,
    pub batch: usize,
    pub kind: Kind,
}

pub const NAMES: [&str; 8] = [
    "seed",
    "seq",
    "wide",
    "small",
    "seq-infer",
    "wide-infer",
    "generate",
    "generate-8",
];

/// Free steps in one timed unit of a generation workload: one second of
/// audio per take.
pub const GENERATE_UNIT: usize = SAMPLE_RATE as usize;
/// Frames the takes read teacher-forced before they run free (10 ms), as
/// `generate` primes on a song: enough to leave the state where a signal put
/// it, short enough to cost nothing next to the timed seconds.
const GENERATE_PRIME: usize = 441;

/// The plain default model (mono) at another size.
fn lstm_model(hidden: usize, layers: usize) -> ModelConfig {
    ModelConfig {
        hidden,
        layers,
        ..Defaults::of(None).model(1)
    }
}

/// The `--preset seed` model, mono.
fn seed_model() -> ModelConfig {
    Defaults::of(Some(Preset::Seed)).model(1)
}

impl Workload {
    pub fn by_name(name: &str) -> Result<Workload> {
        let (model, seq_len, batch, kind) = match name {
            "seed" => (seed_model(), 1, SEED_BATCH, Kind::Epoch),
            "seq" => (lstm_model(256, 2), 256, 32, Kind::Train),
            "wide" => (lstm_model(512, 1), 128, 64, Kind::Train),
            "small" => (lstm_model(32, 1), 64, 8, Kind::Train),
            "seq-infer" => (lstm_model(256, 2), 256, 32, Kind::Infer),
            "wide-infer" => (lstm_model(512, 1), 128, 64, Kind::Infer),
            // One timestep per call; the batch is the takes.
            "generate" => (lstm_model(256, 1), 1, 1, Kind::Generate),
            "generate-8" => (lstm_model(256, 1), 1, 8, Kind::Generate),
            _ => {
                return Err(Error::config(format!(
                    "unknown workload `{name}` (known: {})",
                    NAMES.join(", ")
                )))
            }
        };
        let name = NAMES.iter().find(|n| **n == name).expect("matched above");
        Ok(Workload {
            name,
            model,
            seq_len,
            batch,
            kind,
        })
    }

    /// Steps of one `seed` epoch.
    pub fn steps_per_epoch(&self) -> usize {
        SEED_WINDOWS / self.batch
    }

    /// Engine steps in one timed unit: one, a whole epoch for `seed`, a
    /// second of audio for generation.
    pub fn steps_per_unit(&self) -> usize {
        match self.kind {
            Kind::Train | Kind::Infer => 1,
            Kind::Epoch => self.steps_per_epoch(),
            Kind::Generate => GENERATE_UNIT,
        }
    }

    /// FLOPs of one timed unit (see [`Workload::steps_per_unit`]).
    pub fn flops(&self) -> f64 {
        let (cfg, b, t) = (&self.model, self.batch, self.seq_len);
        let per_step = match self.kind {
            Kind::Train => flops::train_step(cfg, b, t),
            Kind::Epoch => flops::window_train_step(cfg, b),
            Kind::Infer => flops::lstm_forward(cfg, b, t),
            Kind::Generate => flops::free_step(cfg, b),
        };
        per_step * self.steps_per_unit() as f64
    }

    /// Samples (timesteps of one sequence) per timed unit, every lane (take)
    /// counted.
    pub fn samples(&self) -> usize {
        self.batch * self.seq_len * self.steps_per_unit()
    }

    /// Frames of the synthetic signal the workload reads.
    pub fn signal_frames(&self) -> usize {
        match self.kind {
            // The peers' windows: frames 0..=SEED_WINDOWS+frame.
            Kind::Epoch => SEED_WINDOWS + self.model.frame + 1,
            Kind::Train | Kind::Infer => SIGNAL_SECONDS * SAMPLE_RATE as usize,
            // The prime, and the frame after it the first free window ends on.
            Kind::Generate => GENERATE_PRIME + 1,
        }
    }

    /// The parameters every engine starts from (PyTorch's initialisation, seed 0).
    pub fn params(&self) -> Vec<f32> {
        init_params(&self.model, &mut SplitMix64::new(0))
    }

    pub fn adam(&self) -> AdamConfig {
        AdamConfig::default()
    }
}

/// The peers' synthetic audio (`common.make_signal`): sines at 220, 1375 and
/// 3010 Hz of amplitude 0.5, 0.3, 0.15, plus uniform noise of amplitude 0.02,
/// clipped to [-1, 1]. The noise comes from our generator, not NumPy's, so
/// the samples differ in the noise only; the work done on them does not.
pub fn signal(frames: usize) -> Vec<f32> {
    let mut rng = SplitMix64::new(1234);
    let tau = std::f64::consts::TAU;
    (0..frames)
        .map(|n| {
            let t = n as f64 / SAMPLE_RATE;
            let x = 0.5 * (tau * 220.0 * t).sin()
                + 0.3 * (tau * 1375.0 * t).sin()
                + 0.15 * (tau * 3010.0 * t).sin()
                + 0.02 * rng.uniform(-1.0, 1.0);
            x.clamp(-1.0, 1.0) as f32
        })
        .collect()
}

/// How long to measure.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Untimed steps first (kernels compiled, caches and pools warm);
    /// seconds of audio per take for generation.
    pub warmup: usize,
    /// Timed steps (epochs for `seed`, seconds of audio for generation).
    pub repeats: usize,
}

/// What a workload measured, in the peers' field names.
#[derive(Clone, Debug, Serialize)]
pub struct Measurement {
    pub workload: &'static str,
    pub kind: Kind,
    /// Timed units: steps, epochs for `seed`, seconds of audio per take for
    /// generation.
    pub repeats: usize,
    /// Times of one unit.
    pub median_s: f64,
    pub min_s: f64,
    pub max_s: f64,
    /// Median time of one engine step (for `seed`: the epoch's mean step;
    /// for generation: the mean free step, all takes at once).
    pub ms_per_step: f64,
    /// Timesteps per second, every lane (take) counted.
    pub samples_per_s: f64,
    pub gflops: f64,
    /// Mean loss of the timed steps (proof the engine did learn something).
    pub loss: f64,
    /// Generation: seconds of audio produced per wall-clock second, every
    /// take counted (absent for the other workloads).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtf: Option<f64>,
    /// Generation: the same for one take (equal to `rtf` for one take).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtf_per_take: Option<f64>,
}

/// Random lane starts for a sequence workload, the same for every engine.
fn random_batch(rng: &mut SplitMix64, w: &Workload, frames: usize) -> Batch {
    let first = w.model.frame - 1;
    let span = (frames - w.seq_len - 1 - first) as u64;
    Batch {
        starts: (0..w.batch)
            .map(|_| first + rng.below(span) as usize)
            .collect(),
        carry: vec![false; w.batch],
    }
}

/// The `seed` epoch's batches: every window once, shuffled.
fn seed_epoch(rng: &mut SplitMix64, w: &Workload) -> Vec<Batch> {
    let first = w.model.frame - 1;
    let mut starts: Vec<usize> = (first..first + SEED_WINDOWS).collect();
    rng.shuffle(&mut starts);
    starts
        .chunks_exact(w.batch)
        .map(|c| Batch {
            starts: c.to_vec(),
            carry: vec![false; w.batch],
        })
        .collect()
}

/// Give `engine` (made for `w.model` from `w.params()`) the workload's signal.
pub fn prepare(engine: &mut dyn Engine, w: &Workload) -> Result<()> {
    engine.set_signal(&signal(w.signal_frames()))
}

/// The takes of a generation workload running free, as `generate` runs
/// them: every output is clipped to full scale and fed back as the newest
/// frame of the take's next window. The synthetic signal is in audio units
/// already, so full scale is ±1 here.
struct FreeRun {
    /// The next step's windows, `[takes, frame·C]`.
    window: Vec<f32>,
    out: Vec<f32>,
    /// The next step starts from a zero state.
    fresh: bool,
}

impl FreeRun {
    /// Takes whose first window is the signal's last `frame` frames. When
    /// `prime`, the takes first read the rest of the signal teacher-forced
    /// (`Engine::predict`), so free running continues from the state it left;
    /// otherwise the first free step starts from zero.
    fn start(engine: &mut dyn Engine, w: &Workload, prime: bool) -> Result<FreeRun> {
        let cfg = &w.model;
        let (c, frame, takes) = (cfg.channels, cfg.frame, w.batch);
        let frames = w.signal_frames();
        let signal = signal(frames);
        if prime {
            // Windows ending at frame-1 ..= frames-2: the next one is the first free step's.
            let batch = Batch {
                starts: vec![frame - 1; takes],
                carry: vec![false; takes],
            };
            let mut scratch = Vec::new();
            engine.predict(&batch, frames - frame, &mut scratch)?;
        }
        let last = &signal[(frames - frame) * c..];
        Ok(FreeRun {
            window: (0..takes).flat_map(|_| last.iter().copied()).collect(),
            out: Vec::new(),
            fresh: !prime,
        })
    }

    /// `steps` free steps of every take.
    fn run(&mut self, engine: &mut dyn Engine, steps: usize) -> Result<()> {
        let c = engine.model().channels;
        let width = engine.model().input_size();
        for _ in 0..steps {
            engine.free_step(&self.window, self.fresh, &mut self.out)?;
            self.fresh = false;
            // The `mse` head: one output per take and channel, `[takes, C]`.
            for (w, y) in self
                .window
                .chunks_exact_mut(width)
                .zip(self.out.chunks_exact(c))
            {
                w.copy_within(c.., 0);
                for (x, &v) in w[width - c..].iter_mut().zip(y) {
                    // NaN is fed back as silence, as `generate` does.
                    *x = if v.is_nan() { 0.0 } else { v.clamp(-1.0, 1.0) };
                }
            }
        }
        Ok(())
    }
}

/// Run `steps` untimed steps of `w` (for profiling): training steps,
/// forward passes, or for generation free steps (one timestep of every take).
pub fn run_steps(engine: &mut dyn Engine, w: &Workload, steps: usize) -> Result<()> {
    if w.kind == Kind::Generate {
        // No prime: a profile should hold the free steps' kernels only.
        return FreeRun::start(engine, w, false)?.run(engine, steps);
    }
    let mut rng = SplitMix64::new(7);
    let frames = w.signal_frames();
    let lr = w.adam().lr;
    let mut out = Vec::new();
    for _ in 0..steps {
        let batch = random_batch(&mut rng, w, frames);
        if w.kind == Kind::Infer {
            engine.predict(&batch, w.seq_len, &mut out)?;
        } else {
            engine.train_step(&batch, w.seq_len, lr)?;
            engine.take_stats(true)?;
        }
    }
    Ok(())
}

/// Warm up, then time `plan.repeats` steps (or epochs) of `w` on `engine`.
pub fn measure(engine: &mut dyn Engine, w: &Workload, plan: Plan) -> Result<Measurement> {
    if plan.repeats == 0 {
        return Err(Error::config(
            "at least one timed step (a second of audio for generation) is needed",
        ));
    }
    let mut rng = SplitMix64::new(7);
    let frames = w.signal_frames();
    let lr = w.adam().lr;
    let mut times = Vec::with_capacity(plan.repeats);
    let mut losses = Vec::new();
    let mut out = Vec::new();
    match w.kind {
        Kind::Epoch => {
            let warm = seed_epoch(&mut rng, w);
            for batch in warm.iter().cycle().take(plan.warmup) {
                engine.train_step(batch, w.seq_len, lr)?;
                engine.take_stats(false)?;
            }
            engine.take_stats(true)?;
            for _ in 0..plan.repeats {
                let epoch = seed_epoch(&mut rng, w);
                let started = Instant::now();
                for batch in &epoch {
                    engine.train_step(batch, w.seq_len, lr)?;
                    losses.extend(engine.take_stats(false)?.iter().map(|s| s.loss));
                }
                losses.extend(engine.take_stats(true)?.iter().map(|s| s.loss));
                times.push(started.elapsed().as_secs_f64());
            }
        }
        Kind::Train | Kind::Infer => {
            for k in 0..plan.warmup + plan.repeats {
                let batch = random_batch(&mut rng, w, frames);
                let started = Instant::now();
                if w.kind == Kind::Infer {
                    engine.predict(&batch, w.seq_len, &mut out)?;
                } else {
                    engine.train_step(&batch, w.seq_len, lr)?;
                    let stats = engine.take_stats(true)?;
                    if k >= plan.warmup {
                        losses.extend(stats.iter().map(|s| s.loss));
                    }
                }
                if k >= plan.warmup {
                    times.push(started.elapsed().as_secs_f64());
                }
            }
        }
        Kind::Generate => {
            let mut takes = FreeRun::start(engine, w, true)?;
            takes.run(engine, plan.warmup * GENERATE_UNIT)?;
            for _ in 0..plan.repeats {
                let started = Instant::now();
                takes.run(engine, GENERATE_UNIT)?;
                times.push(started.elapsed().as_secs_f64());
            }
        }
    }
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let median = median(&sorted);
    let per_step = median / w.steps_per_unit() as f64;
    let (rtf, rtf_per_take) = match w.kind {
        Kind::Generate => {
            let per_take = GENERATE_UNIT as f64 / SAMPLE_RATE / median;
            (Some(w.batch as f64 * per_take), Some(per_take))
        }
        _ => (None, None),
    };
    Ok(Measurement {
        workload: w.name,
        kind: w.kind,
        repeats: plan.repeats,
        median_s: median,
        min_s: sorted[0],
        max_s: sorted[sorted.len() - 1],
        ms_per_step: 1e3 * per_step,
        samples_per_s: w.samples() as f64 / median,
        gflops: w.flops() / median / 1e9,
        loss: if losses.is_empty() {
            f64::NAN
        } else {
            losses.iter().sum::<f64>() / losses.len() as f64
        },
        rtf,
        rtf_per_take,
    })
}

/// Median of sorted values (the mean of the middle two for an even count, as Python's).
fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        0.5 * (sorted[n / 2 - 1] + sorted[n / 2])
    }
}
