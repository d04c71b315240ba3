//! What defines a run: the model, the data, the optimizer, the seed and the
//! schedule. Every checkpoint stores one ([`crate::checkpoint`]); the training
//! loop ([`crate::train`]) runs one.

use crate::audio::ChannelMode;
use crate::dataset::DataConfig;
use crate::error::{Error, Result};
use crate::model::ModelConfig;
use crate::optim::AdamConfig;
use crate::residual::Residual;
use serde::{Deserialize, Serialize};

/// Everything that defines a run; stored in every checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub model: ModelConfig,
    pub data: DataConfig,
    pub adam: AdamConfig,
    pub seed: u64,
    /// Total epochs the run is asked for.
    pub epochs: u64,
    pub sample_rate: u32,
    pub channel_mode: ChannelMode,
    /// The normalization the model was trained with (RMS of the training parts).
    pub scale: f32,
    pub songs: Vec<String>,
    pub lr_schedule: LrSchedule,
    /// Steps the learning-rate schedule spans (the run's planned length).
    pub schedule_steps: u64,
    /// What the model's output is added to (checkpoints from before it existed: nothing).
    #[serde(default)]
    pub residual: Residual,
    /// Only the first this many frames of each song are used (`--max-frames`);
    /// a resumed run must cut its songs the same way. Absent: whole songs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_frames: Option<usize>,
}

/// How the learning rate moves over a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum LrSchedule {
    Constant,
    /// Half a cosine from `lr` down to 2 % of it (`COSINE_FLOOR`) over the planned
    /// steps (Loshchilov & Hutter, "SGDR", ICLR 2017, without restarts), then
    /// flat. The small final steps let the weights settle: on a quiet passage a
    /// tiny offset in the output costs many dB of prediction gain.
    Cosine,
}

pub const COSINE_FLOOR: f64 = 0.02;

impl RunConfig {
    /// Audio units per unit of the model's output: the residual's scale for
    /// a model that learns a residual, else the signal's.
    pub fn output_scale(&self) -> f32 {
        match self.residual {
            Residual::None => self.scale,
            Residual::Lpc { scale } => scale,
            // A hybrid's output unit is a local gain that moves; its loss
            // is reported in those units.
            Residual::Cascade { .. } => 1.0,
        }
    }

    /// Refuse settings no run can use, before any work is done.
    pub fn validate(&self) -> Result<()> {
        self.model.validate()?;
        let a = &self.adam;
        let finite_pos = |v: f64| v.is_finite() && v > 0.0;
        // The engines compute in f32: a rate beyond its range would be infinite there.
        if !finite_pos(a.lr) || !(a.lr as f32).is_finite() {
            return Err(Error::config(format!(
                "--lr {:e} is not a positive number an f32 can hold",
                a.lr
            )));
        }
        let at_least_0 = |v: f64| v.is_finite() && v >= 0.0;
        let valid = (0.0..1.0).contains(&a.beta1)
            && (0.0..1.0).contains(&a.beta2)
            && finite_pos(a.eps)
            && at_least_0(a.weight_decay)
            && at_least_0(a.clip);
        if !valid {
            return Err(Error::config("invalid optimizer settings: need lr > 0, 0 ≤ beta < 1, eps > 0, weight decay ≥ 0, clip ≥ 0"));
        }
        let d = &self.data;
        if d.seq_len == 0 || d.batch == 0 {
            return Err(Error::config("--seq-len and --batch must be at least 1"));
        }
        if !(0.0..1.0).contains(&d.valid_fraction) {
            return Err(Error::config("--valid-fraction must be in [0, 1)"));
        }
        if self.max_frames == Some(0) {
            return Err(Error::config("--max-frames must be at least 1"));
        }
        if self.epochs == 0 {
            return Err(nothing_to_train("--epochs 0"));
        }
        Ok(())
    }

    /// Learning rate of update number `step` (from 0).
    pub fn lr_at(&self, step: u64) -> f64 {
        let lr = self.adam.lr;
        match self.lr_schedule {
            LrSchedule::Constant => lr,
            LrSchedule::Cosine => {
                let x = (step as f64 / self.schedule_steps.max(1) as f64).min(1.0);
                let floor = lr * COSINE_FLOOR;
                floor + 0.5 * (lr - floor) * (1.0 + (std::f64::consts::PI * x).cos())
            }
        }
    }
}

fn nothing_to_train(what: &str) -> Error {
    Error::config(format!(
        "{what}: nothing to train (ask for at least one epoch and one step)"
    ))
}

/// Refuse a plan that does no work: `--epochs 0` or `--max-steps 0` would
/// end at once and write nothing.
pub fn check_plan(epochs: Option<u64>, max_steps: Option<u64>) -> Result<()> {
    if epochs == Some(0) {
        return Err(nothing_to_train("--epochs 0"));
    }
    if max_steps == Some(0) {
        return Err(nothing_to_train("--max-steps 0"));
    }
    Ok(())
}
