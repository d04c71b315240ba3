//! Presets: what a training run uses for every option it is not given.
//!
//! [`Defaults::of`] is the one place these values are written down: the
//! command line's `train` fills its unset options from it, and the `seed`
//! benchmark workload takes its model from it.

use crate::model::{Activation, CellActivation, GateActivation, ModelConfig, Output};
use crate::run_config::LrSchedule;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// The original Keras notebook's model, without its bugs: frame 3, seq-len 1,
    /// LSTM(100) with linear cell activation and hard-sigmoid gates, LeakyReLU(0.3)
    /// after the LSTM and after every dense layer 50-25-12-1, batch 100, 20 epochs,
    /// Adam lr 1e-3, the first 160,000 frames of each song.
    Seed,
    /// The learned predictor over the cascade: --base cascade (see `hybrid`)
    /// with the long-lag features, LSTM(64), a logistic head, stateful
    /// sequences of 256, batch 32, Adam lr 2e-3, cosine, 40 epochs.
    Hybrid,
}

/// What a model's output is added to (`--base`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Base {
    /// Nothing: the model predicts the next sample itself.
    #[default]
    None,
    /// The model learns the residual of the causal LPC-32 predictor (the
    /// LPCNet idea); the prediction is LPC's plus the model's output.
    Lpc,
    /// The cascade (EWLS + NLMS) predicts first, each song on its own; the
    /// model reads its recent residuals, its prediction and the last samples
    /// in local gain units and predicts the next residual, its correction
    /// weighed by a causal least-squares gate (see `hybrid`).
    Cascade,
}

/// The values of a run's options when they are not given.
#[derive(Clone, Debug, PartialEq)]
pub struct Defaults {
    /// The model, for one channel, without features; its head's kind, whose
    /// scale the data sets (what the data and the head options decide is set
    /// elsewhere: see [`Defaults::model`] and `train_setup::resolve`).
    pub model: ModelConfig,
    pub seq_len: usize,
    pub batch: usize,
    pub valid_fraction: f64,
    /// Global gradient-norm clip (0: off).
    pub clip: f64,
    /// Frames of each song used (`None`: all).
    pub max_frames: Option<usize>,
    pub epochs: u64,
    pub lr_schedule: LrSchedule,
    pub base: Base,
    /// Carry the state across consecutive sequences.
    pub stateful: bool,
    /// Adam's learning rate (`None`: the optimizer's default).
    pub lr: Option<f64>,
    /// The hybrid's long-lag features (with `Base::Cascade` only).
    pub long_lag: bool,
}

impl Defaults {
    /// The plain defaults (`None`) or a preset's.
    pub fn of(preset: Option<Preset>) -> Defaults {
        let plain = Defaults {
            model: ModelConfig {
                channels: 1,
                frame: 1,
                features: 0,
                hidden: 64,
                layers: 1,
                head: vec![],
                cell_activation: CellActivation::Tanh,
                gate_activation: GateActivation::Sigmoid,
                lstm_output_activation: Activation::Linear,
                output_activation: Activation::Linear,
                leaky_slope: 0.3,
                output: Output::Mse,
            },
            seq_len: 256,
            batch: 32,
            valid_fraction: 0.1,
            clip: 1.0,
            max_frames: None,
            epochs: 1,
            lr_schedule: LrSchedule::Cosine,
            base: Base::None,
            stateful: false,
            lr: None,
            long_lag: false,
        };
        match preset {
            None => plain,
            Some(Preset::Seed) => Defaults {
                model: ModelConfig {
                    frame: 3,
                    hidden: 100,
                    head: vec![50, 25, 12],
                    cell_activation: CellActivation::Linear,
                    gate_activation: GateActivation::HardSigmoid,
                    lstm_output_activation: Activation::LeakyRelu,
                    output_activation: Activation::LeakyRelu,
                    ..plain.model.clone()
                },
                seq_len: 1,
                batch: 100,
                clip: 0.0,
                max_frames: Some(160_000),
                epochs: 20,
                lr_schedule: LrSchedule::Constant,
                ..plain
            },
            // The features carry the short-term past; the carried state the
            // longer one (the residual's slow structure is what is left to learn).
            // 40 epochs: on the validation tail of each shared clip's training
            // part the 20-epoch figures of a 40-epoch run were no better, and a
            // 150-epoch run's (piano) no better past epoch 40 (BENCHMARKS.md);
            // one epoch, the plain default, is about 48 steps of a 10-s clip.
            // The logistic head and the long-lag features: chosen on the same
            // validation tails (BENCHMARKS.md, issue 11), the head for its bits
            // on every clip, the features for the clips that repeat themselves.
            Some(Preset::Hybrid) => Defaults {
                model: ModelConfig {
                    output: Output::Logistic { scale: 1.0 },
                    ..plain.model.clone()
                },
                long_lag: true,
                base: Base::Cascade,
                stateful: true,
                lr: Some(2e-3),
                epochs: 40,
                ..plain
            },
        }
    }

    /// The model these defaults describe, with `channels` channels and the `mse` head.
    pub fn model(&self, channels: usize) -> ModelConfig {
        ModelConfig {
            channels,
            ..self.model.clone()
        }
    }
}
