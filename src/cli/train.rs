//! `wavelstm train`: the arguments, and the run printed as it goes.

use super::progress::Progress;
use super::CommonArgs;
use crate::audio::ChannelMode;
use crate::engine::open::EngineChoice;
use crate::epoch_report::EpochReport;
use crate::error::{Error, Result};
use crate::loss_plot::LossPlot;
use crate::model::{Activation, CellActivation, GateActivation, Output};
use crate::preset::{Base, Preset};
use crate::residual::Residual;
use crate::run_config::LrSchedule;
use crate::train;
use crate::train_setup::{self, TrainOptions};
use clap::{Args, ValueEnum};
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(super) enum Channels {
    /// Mix all channels down to one.
    Mono,
    /// Two channels as two features of one model, in and out.
    Stereo,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum OutputHead {
    /// The next sample, trained by mean squared error.
    Mse,
    /// 256 logits per channel over the μ-law quantized next sample (μ = 255),
    /// trained by softmax cross-entropy, as in WaveNet and SampleRNN.
    Mulaw,
    /// A Laplace location and log-scale per channel, trained by the negative
    /// log-likelihood of the 16-bit sample; predicts its location, generates
    /// by sampling.
    Laplace,
    /// As `laplace` with a logistic law: lighter tails, a rounder peak (over
    /// the cascade it costs ~0.05 bit per sample less on the shared clips).
    Logistic,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Truncated backpropagation through time: a training sequence is --seq-len \
timesteps and gradients never flow between sequences. Without --stateful every sequence starts \
from a zero state (h = c = 0) and sequences are shuffled each epoch (from --seed). With \
--stateful the training data is dealt into --batch lanes of consecutive sequences; each lane \
carries h and c over from one step to the next (no gradient crosses), and restarts from zero \
where it enters a new song. The first --burn-in timesteps of a sequence that starts from zero are \
context, not loss. The last --valid-fraction of every song is never trained on.\n\n\
The optimizer computes torch.optim.Adam's step (torch.optim.AdamW's with --weight-decay); plain torch.optim.Adam is \
--lr-schedule constant --clip 0, and --burn-in 0 makes the loss PyTorch's mean over every timestep (the defaults add a \
cosine schedule, clipping at norm 1 and a burn-in)."
)]
pub(super) struct TrainArgs {
    /// Songs to learn (WAV, MP3, FLAC, Ogg Vorbis).
    #[arg(required_unless_present = "resume")]
    songs: Vec<PathBuf>,
    /// Checkpoint to write (safetensors), after every epoch.
    #[arg(long, short, default_value = "model.safetensors")]
    out: PathBuf,
    /// Continue a run exactly where its checkpoint stopped (songs, model and data
    /// options come from the checkpoint; --epochs and --max-steps may extend it).
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Start from the weights of this safetensors file: a checkpoint, or a
    /// PyTorch state dict of the same shapes (names as `wavelstm import` maps them).
    #[arg(long)]
    init: Option<PathBuf>,
    #[arg(long, value_enum)]
    preset: Option<Preset>,
    /// Epochs to train [default: 1; hybrid preset: 40].
    #[arg(long)]
    epochs: Option<u64>,
    /// Stop after this many training steps in all.
    #[arg(long)]
    max_steps: Option<u64>,
    /// Seed of initialisation and shuffling [default: 0].
    #[arg(long)]
    seed: Option<u64>,

    /// Mono mixdown or stereo [default: mono].
    #[arg(long, value_enum)]
    channels: Option<Channels>,
    /// Resample every song to this rate [default: the first song's rate].
    #[arg(long)]
    sample_rate: Option<u32>,
    /// Use only the first N frames of each song.
    #[arg(long)]
    max_frames: Option<usize>,
    /// Fraction at the end of each song kept for validation [default: 0.1].
    #[arg(long)]
    valid_fraction: Option<f64>,
    /// Samples per channel each timestep sees (the notebook's look_back) [default: 1].
    #[arg(long)]
    frame: Option<usize>,
    /// Timesteps per training sequence [default: 256].
    #[arg(long)]
    seq_len: Option<usize>,
    /// Sequences per step [default: 32].
    #[arg(long)]
    batch: Option<usize>,
    /// Carry h and c across consecutive sequences (see below).
    #[arg(long)]
    stateful: bool,
    /// Take sequences in order instead of shuffled.
    #[arg(long)]
    no_shuffle: bool,
    /// Leading timesteps of a zero-state sequence left out of the loss
    /// (must be below --seq-len) [default: min(seq-len / 4, 32)].
    #[arg(long)]
    burn_in: Option<usize>,

    /// LSTM layers [default: 1].
    #[arg(long)]
    layers: Option<usize>,
    /// LSTM hidden units [default: 64].
    #[arg(long)]
    hidden: Option<usize>,
    /// Hidden widths of the dense head, e.g. 50,25,12 ("" for a linear head) [default: ""].
    #[arg(long)]
    head: Option<String>,
    /// Activation of the cell candidate and the cell state [default: tanh].
    #[arg(long, value_enum)]
    cell_activation: Option<CellActivation>,
    /// Activation of the gates [default: sigmoid].
    #[arg(long, value_enum)]
    gate_activation: Option<GateActivation>,
    /// Activation after the LSTM, before the head [default: linear].
    #[arg(long, value_enum)]
    lstm_activation: Option<Activation>,
    /// Activation of the head's output [default: linear].
    #[arg(long, value_enum)]
    output_activation: Option<Activation>,
    /// Negative slope of LeakyReLU [default: 0.3].
    #[arg(long)]
    leaky_slope: Option<f64>,
    /// What the head predicts [default: mse; hybrid preset: logistic].
    #[arg(long, value_enum)]
    output: Option<OutputHead>,
    /// What the model's output is added to [default: none; hybrid preset: cascade].
    /// `lpc`: a causal LPC-32 refitted every 1024 samples on the preceding
    /// second; `cascade`: the streaming cascade, the model reading its features.
    #[arg(long, value_enum)]
    base: Option<Base>,
    /// The old name of --base lpc (`lpc` or `none`).
    #[arg(long, value_enum)]
    residual: Option<Base>,
    /// With --base cascade: two more features, a long-term predictor of the
    /// cascade's residual (the lag, seconds back, whose past best matches the
    /// last 8192 residuals, searched every 2048) and its match's correlation.
    /// For music that repeats itself [default: off; hybrid preset: on].
    #[arg(long, conflicts_with = "no_long_lag")]
    long_lag: bool,
    /// Without the long-lag features (under --preset hybrid).
    #[arg(long)]
    no_long_lag: bool,

    /// Adam learning rate [default: 1e-3].
    #[arg(long)]
    lr: Option<f64>,
    #[arg(long)]
    beta1: Option<f64>,
    #[arg(long)]
    beta2: Option<f64>,
    #[arg(long)]
    adam_eps: Option<f64>,
    /// Decoupled weight decay (AdamW) [default: 0].
    #[arg(long)]
    weight_decay: Option<f64>,
    /// Learning-rate schedule over the planned run (--epochs, or --max-steps
    /// when that ends it sooner) [default: cosine; seed preset: constant].
    #[arg(long, value_enum)]
    lr_schedule: Option<LrSchedule>,
    /// Clip the global gradient norm to this (0: off) [default: 1].
    #[arg(long)]
    clip: Option<f64>,

    #[command(flatten)]
    pub(super) common: CommonArgs,
}

impl TrainArgs {
    /// The run these arguments ask for.
    fn options(&self) -> Result<TrainOptions> {
        Ok(TrainOptions {
            songs: self.songs.clone(),
            out: self.out.clone(),
            resume: self.resume.clone(),
            init: self.init.clone(),
            preset: self.preset,
            epochs: self.epochs,
            max_steps: self.max_steps,
            seed: self.seed,
            channels: self.channels.map(|c| match c {
                Channels::Mono => ChannelMode::Mono,
                Channels::Stereo => ChannelMode::Stereo,
            }),
            sample_rate: self.sample_rate,
            max_frames: self.max_frames,
            valid_fraction: self.valid_fraction,
            frame: self.frame,
            seq_len: self.seq_len,
            batch: self.batch,
            stateful: self.stateful,
            no_shuffle: self.no_shuffle,
            layers: self.layers,
            hidden: self.hidden,
            // A resumed run takes its model from the checkpoint: --head is not read.
            head: match (&self.head, &self.resume) {
                (Some(h), None) => Some(parse_head(h)?),
                _ => None,
            },
            cell_activation: self.cell_activation,
            gate_activation: self.gate_activation,
            lstm_activation: self.lstm_activation,
            output_activation: self.output_activation,
            leaky_slope: self.leaky_slope,
            // A distribution head's scale is the data's, set once the songs are read.
            output: self.output.map(|h| match h {
                OutputHead::Mse => Output::Mse,
                OutputHead::Mulaw => Output::Mulaw { scale: 1.0 },
                OutputHead::Laplace => Output::Laplace { scale: 1.0 },
                OutputHead::Logistic => Output::Logistic { scale: 1.0 },
            }),
            burn_in: self.burn_in,
            long_lag: match (self.long_lag, self.no_long_lag) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            },
            base: match (self.base, self.residual) {
                (_, Some(Base::Cascade)) => {
                    return Err(Error::config(
                        "--residual takes lpc or none; the cascade is --base cascade",
                    ))
                }
                (Some(b), Some(r)) if b != r => {
                    return Err(Error::config(
                        "--residual is the old name of --base: give one of them",
                    ))
                }
                (b, r) => b.or(r),
            },
            lr: self.lr,
            beta1: self.beta1,
            beta2: self.beta2,
            adam_eps: self.adam_eps,
            weight_decay: self.weight_decay,
            lr_schedule: self.lr_schedule,
            clip: self.clip,
        })
    }
}

pub(super) fn parse_head(s: &str) -> Result<Vec<usize>> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|x| {
            x.parse::<usize>().map_err(|_| {
                Error::config(format!(
                    "--head: `{x}` is not a width (expected e.g. 50,25,12)"
                ))
            })
        })
        .collect()
}

/// `wavelstm train`.
pub(super) fn run_args(a: &TrainArgs) -> Result<Vec<EpochReport>> {
    run(&a.options()?, &a.common.engine_choice())
}

/// Train as `o` says on the engine `choice` opens; returns the run's history.
pub(super) fn run(o: &TrainOptions, choice: &EngineChoice) -> Result<Vec<EpochReport>> {
    let p = train_setup::prepare(o)?;
    for w in &p.warnings {
        eprintln!("warning: {w}");
    }
    let (cfg, dataset) = (&p.cfg, &p.dataset);
    let mut engine = super::make_engine(choice, &cfg.model, cfg.adam, p.params)?;
    if let Some(s) = &p.state {
        engine.set_state(s)?;
    }
    eprintln!(
        "training on {} ({} song(s), {} Hz, {} ch, {} parameters); checkpoint: {}",
        engine.describe(),
        dataset.songs.len(),
        dataset.sample_rate,
        dataset.channels,
        cfg.model.layout().total,
        o.out.display()
    );
    if let Residual::Cascade { hybrid } = &cfg.residual {
        eprintln!(
            "learning the cascade's residual in local gain units: {} features per channel ({} residuals, the base, {} samples, 2 log gains{}), gain over {} samples",
            hybrid.features(),
            hybrid.residuals,
            hybrid.samples,
            if hybrid.long_lag.is_some() {
                ", the long-lag prediction and its correlation"
            } else {
                ""
            },
            hybrid.gain_window
        );
    }
    if let Residual::Lpc { scale } = cfg.residual {
        eprintln!(
            "learning the residual of causal LPC-32: RMS {:.1} dBFS over the training parts (the signal's {:.1} dBFS)",
            20.0 * f64::from(scale).log10(),
            20.0 * f64::from(cfg.scale).log10()
        );
    }
    let mut progress = Progress::new();
    progress.loss = Some(LossPlot::new(&o.out, &p.history, dataset, cfg.model.output));
    let history = train::train(
        engine.as_mut(),
        dataset,
        cfg,
        p.cursor,
        p.history,
        o.max_steps,
        &o.out,
        &mut |e| progress.event(e),
    )?;
    progress.bar.finish_and_clear();
    Ok(history)
}
