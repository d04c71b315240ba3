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
//!
//! Every timed training step waits for its stats (`take_stats(true)`), so an
//! engine that queues work (the GPU) is timed to completion. The `seed` epoch
//! waits only at its end, as training does. Nothing here prints.

use crate::cpu::adam::AdamConfig;
use crate::dataset::Batch;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::flops;
use crate::model::{init_params, Activation, CellActivation, GateActivation, ModelConfig};
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
}

#[derive(Clone, Debug)]
pub struct Workload {
    pub name: &'static str,
    pub model: ModelConfig,
    pub seq_len: usize,
    pub batch: usize,
    pub kind: Kind,
}

pub const NAMES: [&str; 6] = ["seed", "seq", "wide", "small", "seq-infer", "wide-infer"];

fn lstm_model(hidden: usize, layers: usize) -> ModelConfig {
    ModelConfig {
        channels: 1,
        frame: 1,
        hidden,
        layers,
        head: vec![],
        cell_activation: CellActivation::Tanh,
        gate_activation: GateActivation::Sigmoid,
        lstm_output_activation: Activation::Linear,
        output_activation: Activation::Linear,
        leaky_slope: 0.3,
        output: crate::model::Output::Mse,
    }
}

/// The `--preset seed` model (see `cli`).
fn seed_model() -> ModelConfig {
    ModelConfig {
        channels: 1,
        frame: 3,
        hidden: 100,
        layers: 1,
        head: vec![50, 25, 12],
        cell_activation: CellActivation::Linear,
        gate_activation: GateActivation::HardSigmoid,
        lstm_output_activation: Activation::LeakyRelu,
        output_activation: Activation::LeakyRelu,
        leaky_slope: 0.3,
        output: crate::model::Output::Mse,
    }
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

    /// FLOPs of one timed unit: a step, or a whole epoch for `seed`.
    pub fn flops(&self) -> f64 {
        let (cfg, b, t) = (&self.model, self.batch, self.seq_len);
        match self.kind {
            Kind::Train => flops::train_step(cfg, b, t),
            Kind::Infer => flops::lstm_forward(cfg, b, t),
            Kind::Epoch => flops::window_train_step(cfg, b) * self.steps_per_epoch() as f64,
        }
    }

    /// Samples (timesteps of one sequence) per timed unit.
    pub fn samples(&self) -> usize {
        match self.kind {
            Kind::Epoch => self.steps_per_epoch() * self.batch,
            _ => self.batch * self.seq_len,
        }
    }

    /// Frames of the synthetic signal the workload reads.
    pub fn signal_frames(&self) -> usize {
        match self.kind {
            // The peers' windows: frames 0..=SEED_WINDOWS+frame.
            Kind::Epoch => SEED_WINDOWS + self.model.frame + 1,
            _ => SIGNAL_SECONDS * SAMPLE_RATE as usize,
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
    /// Untimed steps first (kernels compiled, caches and pools warm).
    pub warmup: usize,
    /// Timed steps (epochs for `seed`).
    pub repeats: usize,
}

/// What a workload measured, in the peers' field names.
#[derive(Clone, Debug, Serialize)]
pub struct Measurement {
    pub workload: &'static str,
    pub kind: Kind,
    /// Timed steps, or epochs for `seed`.
    pub repeats: usize,
    pub median_s: f64,
    pub min_s: f64,
    pub max_s: f64,
    /// Median time of one training step (for `seed`: the epoch's mean step).
    pub ms_per_step: f64,
    pub samples_per_s: f64,
    pub gflops: f64,
    /// Mean loss of the timed steps (proof the engine did learn something).
    pub loss: f64,
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

/// Run `steps` untimed steps of `w` (for profiling).
pub fn run_steps(engine: &mut dyn Engine, w: &Workload, steps: usize) -> Result<()> {
    let mut rng = SplitMix64::new(7);
    let frames = w.signal_frames();
    let lr = w.adam().lr;
    let mut out = Vec::new();
    for _ in 0..steps {
        let batch = random_batch(&mut rng, w, frames);
        match w.kind {
            Kind::Infer => engine.predict(&batch, w.seq_len, &mut out)?,
            Kind::Train | Kind::Epoch => {
                engine.train_step(&batch, w.seq_len, lr)?;
                engine.take_stats(true)?;
            }
        }
    }
    Ok(())
}

/// Warm up, then time `plan.repeats` steps (or epochs) of `w` on `engine`.
pub fn measure(engine: &mut dyn Engine, w: &Workload, plan: Plan) -> Result<Measurement> {
    if plan.repeats == 0 {
        return Err(Error::config("at least one timed step is needed"));
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
    }
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let median = median(&sorted);
    let per_step = match w.kind {
        Kind::Epoch => median / w.steps_per_epoch() as f64,
        _ => median,
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
