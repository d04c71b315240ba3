//! A training run set up before its first step: the run configuration from
//! the options given (then a preset, then the defaults, see `preset`), the
//! songs decoded into a dataset, the starting weights; or all of it from a
//! checkpoint, to continue a run exactly where it stopped.

use crate::atomic;
use crate::audio::{self, ChannelMode};
use crate::checkpoint::{self, Cursor};
use crate::dataset::{DataConfig, Dataset};
use crate::engine::TrainState;
use crate::epoch_report::EpochReport;
use crate::error::{Error, Result};
use crate::hybrid::HybridConfig;
use crate::long_lag::LongLagConfig;
use crate::model::{init_params, Activation, CellActivation, GateActivation, Output};
use crate::optim::AdamConfig;
use crate::preset::{Base, Defaults, Preset};
use crate::residual::Residual;
use crate::rng::SplitMix64;
use crate::run_config::{self, LrSchedule, RunConfig};
use std::path::PathBuf;

/// What a training run is asked for; `None` takes the preset's value, or
/// the default's (see [`Defaults::of`]).
#[derive(Clone, Debug, Default)]
pub struct TrainOptions {
    /// Songs to learn (ignored when resuming: the checkpoint names them).
    pub songs: Vec<PathBuf>,
    /// The checkpoint written after every epoch.
    pub out: PathBuf,
    /// Continue the run of this checkpoint (songs, model and data options
    /// come from it; `epochs` and `max_steps` may extend it).
    pub resume: Option<PathBuf>,
    /// Start from the weights of this safetensors file (a checkpoint or a torch state dict).
    pub init: Option<PathBuf>,
    pub preset: Option<Preset>,
    pub epochs: Option<u64>,
    /// Stop after this many training steps in all.
    pub max_steps: Option<u64>,
    pub seed: Option<u64>,
    /// Mono mixdown or stereo [default: mono].
    pub channels: Option<ChannelMode>,
    /// Resample every song to this rate [default: the first song's].
    pub sample_rate: Option<u32>,
    pub max_frames: Option<usize>,
    pub valid_fraction: Option<f64>,
    pub frame: Option<usize>,
    pub seq_len: Option<usize>,
    pub batch: Option<usize>,
    pub stateful: bool,
    pub no_shuffle: bool,
    pub layers: Option<usize>,
    pub hidden: Option<usize>,
    pub head: Option<Vec<usize>>,
    pub cell_activation: Option<CellActivation>,
    pub gate_activation: Option<GateActivation>,
    pub lstm_activation: Option<Activation>,
    pub output_activation: Option<Activation>,
    pub leaky_slope: Option<f64>,
    /// The head's kind (its scale is the data's, set once the songs are read).
    pub output: Option<Output>,
    /// Loss burn-in timesteps [default: `dataset::default_burn_in`].
    pub burn_in: Option<usize>,
    /// What the model's output is added to (`--base`; `--residual lpc` is `Lpc`).
    pub base: Option<Base>,
    /// The hybrid's long-term predictor features (`--long-lag`, `--no-long-lag`;
    /// `--base cascade` only).
    pub long_lag: Option<bool>,
    pub lr: Option<f64>,
    pub beta1: Option<f64>,
    pub beta2: Option<f64>,
    pub adam_eps: Option<f64>,
    pub weight_decay: Option<f64>,
    pub lr_schedule: Option<LrSchedule>,
    pub clip: Option<f64>,
}

/// The run configuration of `o` for songs of `sample_rate` and `channels`,
/// and the frames to read of each song. Scales that depend on the data
/// (the signal's, a μ-law head's, a residual's) are left for the dataset.
pub fn resolve(
    o: &TrainOptions,
    sample_rate: u32,
    channels: usize,
) -> Result<(RunConfig, Option<usize>)> {
    let d = Defaults::of(o.preset);
    let base = o.base.unwrap_or(d.base);
    // A preset's long-lag features go with its base: asked for another base,
    // they are dropped; asked for by name, they are refused there.
    let long_lag = base == Base::Cascade && o.long_lag.unwrap_or(d.long_lag);
    let hybrid = HybridConfig {
        long_lag: long_lag.then_some(LongLagConfig {}),
        ..HybridConfig::default()
    };
    if o.long_lag == Some(true) && base != Base::Cascade {
        return Err(Error::config(
            "--long-lag is a feature of the model over the cascade: it needs --base cascade",
        ));
    }
    if base == Base::Cascade && o.frame.is_some_and(|f| f != 1) {
        return Err(Error::config(
            "--base cascade reads the cascade's features each timestep, not a window: leave --frame at 1",
        ));
    }
    let model = crate::model::ModelConfig {
        channels,
        frame: o.frame.unwrap_or(d.model.frame),
        hidden: o.hidden.unwrap_or(d.model.hidden),
        layers: o.layers.unwrap_or(d.model.layers),
        head: o.head.clone().unwrap_or_else(|| d.model.head.clone()),
        cell_activation: o.cell_activation.unwrap_or(d.model.cell_activation),
        gate_activation: o.gate_activation.unwrap_or(d.model.gate_activation),
        lstm_output_activation: o.lstm_activation.unwrap_or(d.model.lstm_output_activation),
        output_activation: o.output_activation.unwrap_or(d.model.output_activation),
        leaky_slope: o.leaky_slope.unwrap_or(d.model.leaky_slope),
        features: if base == Base::Cascade {
            hybrid.features()
        } else {
            0
        },
        // A distribution head's scale is the data's, known once the songs are read.
        output: o.output.unwrap_or(d.model.output),
    };
    model.validate()?;
    if base == Base::Cascade && matches!(model.output, Output::Mulaw { .. }) {
        return Err(Error::config(
            "--base cascade needs --output mse (a μ-law head is too coarse for a residual)",
        ));
    }
    if base != Base::None && matches!(model.output, Output::Mulaw { .. }) {
        // μ-law classes are spaced for full-scale audio: a residual 30 to 50 dB
        // below it would fall into a handful of classes around zero.
        return Err(Error::config(format!(
            "--base {} needs --output mse, laplace or logistic (a μ-law head is too coarse for a residual)",
            if base == Base::Lpc { "lpc" } else { "cascade" }
        )));
    }
    let data = DataConfig {
        frame: model.frame,
        seq_len: o.seq_len.unwrap_or(d.seq_len),
        batch: o.batch.unwrap_or(d.batch),
        valid_fraction: o.valid_fraction.unwrap_or(d.valid_fraction),
        stateful: o.stateful || d.stateful,
        shuffle: !o.no_shuffle,
        burn_in: 0,
    };
    if data.seq_len == 0 || data.batch == 0 {
        return Err(Error::config("--seq-len and --batch must be at least 1"));
    }
    let burn_in = o
        .burn_in
        .unwrap_or(crate::dataset::default_burn_in(data.seq_len));
    if burn_in >= data.seq_len && burn_in > 0 {
        return Err(Error::config(format!(
            "--burn-in {burn_in} leaves nothing of a --seq-len {} sequence to learn from",
            data.seq_len
        )));
    }
    let data = DataConfig { burn_in, ..data };
    let a = AdamConfig::default();
    let adam = AdamConfig {
        lr: o.lr.or(d.lr).unwrap_or(a.lr),
        beta1: o.beta1.unwrap_or(a.beta1),
        beta2: o.beta2.unwrap_or(a.beta2),
        eps: o.adam_eps.unwrap_or(a.eps),
        weight_decay: o.weight_decay.unwrap_or(a.weight_decay),
        clip: o.clip.unwrap_or(d.clip),
    };
    let finite_pos = |v: f64| v.is_finite() && v > 0.0;
    if !finite_pos(adam.lr)
        || !(0.0..1.0).contains(&adam.beta1)
        || !(0.0..1.0).contains(&adam.beta2)
        || !finite_pos(adam.eps)
        || adam.weight_decay.is_nan()
        || adam.weight_decay < 0.0
        || adam.clip.is_nan()
        || adam.clip < 0.0
    {
        return Err(Error::config("invalid optimizer settings: need lr > 0, 0 ≤ beta < 1, eps > 0, weight decay ≥ 0, clip ≥ 0"));
    }
    Ok((
        RunConfig {
            model,
            data,
            adam,
            seed: o.seed.unwrap_or(0),
            epochs: o.epochs.unwrap_or(d.epochs),
            sample_rate,
            channel_mode: o.channels.unwrap_or(ChannelMode::Mono),
            scale: 0.0,
            songs: o.songs.iter().map(|s| s.display().to_string()).collect(),
            lr_schedule: o.lr_schedule.unwrap_or(d.lr_schedule),
            schedule_steps: 0,
            // The residual's scale is the dataset's, known once the songs are read.
            residual: match base {
                Base::None => Residual::None,
                Base::Lpc => Residual::Lpc { scale: 1.0 },
                Base::Cascade => Residual::Cascade { hybrid },
            },
            max_frames: o.max_frames.or(d.max_frames),
        },
        o.max_frames.or(d.max_frames),
    ))
}

/// Decode every song at one rate and channel layout (`rate`, or the first
/// song's); `max_frames` cuts each.
pub fn load_songs(
    paths: &[PathBuf],
    mode: ChannelMode,
    rate: Option<u32>,
    max_frames: Option<usize>,
) -> Result<Vec<(PathBuf, audio::Audio)>> {
    load_songs_warning(paths, mode, rate, max_frames, &mut |_| {})
}

/// [`load_songs`], handing each decoder warning (one line naming its file,
/// see `audio::Decoded::warnings`) to `warn`.
pub fn load_songs_warning(
    paths: &[PathBuf],
    mode: ChannelMode,
    rate: Option<u32>,
    max_frames: Option<usize>,
    warn: &mut dyn FnMut(String),
) -> Result<Vec<(PathBuf, audio::Audio)>> {
    let mut out = Vec::new();
    let mut rate = rate;
    for p in paths {
        let (mut a, warnings) = audio::load_with_warnings(p, mode, rate)?;
        for w in warnings {
            warn(format!("{}: {w}", p.display()));
        }
        rate.get_or_insert(a.sample_rate);
        if let Some(n) = max_frames {
            a.samples.truncate(n * a.channels);
        }
        out.push((p.clone(), a));
    }
    Ok(out)
}

/// The steps a run is planned to take: its epochs, or fewer with `max_steps`.
pub fn planned_steps(cfg: &RunConfig, dataset: &Dataset, max_steps: Option<u64>) -> u64 {
    let all = cfg
        .epochs
        .saturating_mul(dataset.steps_per_epoch(&cfg.data) as u64);
    all.min(max_steps.unwrap_or(u64::MAX))
}

/// A run ready for its first (or next) step.
pub struct Prepared {
    pub cfg: RunConfig,
    pub dataset: Dataset,
    /// The weights to start from.
    pub params: Vec<f32>,
    /// The optimizer and carried state of a resumed run.
    pub state: Option<TrainState>,
    pub cursor: Cursor,
    pub history: Vec<EpochReport>,
    /// What the decoders warned of, one line each, naming the file.
    pub warnings: Vec<String>,
}

/// Set up the run `o` asks for: a fresh one, or the resumed checkpoint's.
/// A batch the data cannot fill is refused here, before any work starts.
pub fn prepare(o: &TrainOptions) -> Result<Prepared> {
    // Runs that would do nothing, or could not write their checkpoint, are
    // refused before any song is read.
    run_config::check_plan(o.epochs, o.max_steps)?;
    atomic::check_output(&o.out)?;
    let mut warnings = Vec::new();
    let mut warn = |w: String| warnings.push(w);
    let (cfg, dataset, state, cursor, history) = if let Some(resume) = &o.resume {
        let ck = checkpoint::load(resume)?;
        let mut cfg = ck.config;
        if let Some(e) = o.epochs {
            cfg.epochs = e;
        }
        let replan = o.epochs.is_some() || o.max_steps.is_some();
        let songs: Vec<PathBuf> = cfg.songs.iter().map(PathBuf::from).collect();
        // Cut as the run was: a resumed run sees the very frames it trained on.
        let audio = load_songs_warning(
            &songs,
            cfg.channel_mode,
            Some(cfg.sample_rate),
            cfg.max_frames,
            &mut warn,
        )?;
        let mut dataset = Dataset::new(audio, &cfg.data, Some(cfg.scale))?;
        match &cfg.residual {
            Residual::Lpc { scale } => {
                dataset.learn_lpc_residual(Some(*scale))?;
            }
            Residual::Cascade { hybrid } => dataset.learn_cascade_residual(hybrid)?,
            Residual::None => {}
        }
        if replan {
            cfg.schedule_steps = planned_steps(&cfg, &dataset, o.max_steps);
        }
        (cfg, dataset, Some(ck.state), ck.cursor, ck.history)
    } else {
        if o.songs.is_empty() {
            return Err(Error::config("no songs to train on"));
        }
        let mode = o.channels.unwrap_or(ChannelMode::Mono);
        let (planned, max_frames) = resolve(o, 0, 1)?;
        planned.validate()?;
        let audio = load_songs_warning(&o.songs, mode, o.sample_rate, max_frames, &mut warn)?;
        let (rate, channels) = (audio[0].1.sample_rate, audio[0].1.channels);
        let (mut cfg, _) = resolve(o, rate, channels)?;
        let mut dataset = Dataset::new(audio, &cfg.data, None)?;
        cfg.scale = dataset.scale;
        match &mut cfg.residual {
            Residual::Lpc { scale } => *scale = dataset.learn_lpc_residual(None)?,
            Residual::Cascade { hybrid } => dataset.learn_cascade_residual(hybrid)?,
            Residual::None => {}
        }
        if let Output::Mulaw { scale } = &mut cfg.model.output {
            *scale = dataset.scale;
        }
        let output_scale = cfg.output_scale();
        if let Output::Laplace { scale } | Output::Logistic { scale } = &mut cfg.model.output {
            // Its bins are 16-bit steps in the units it predicts in.
            *scale = output_scale;
        }
        cfg.schedule_steps = planned_steps(&cfg, &dataset, o.max_steps);
        (cfg, dataset, None, Cursor::default(), Vec::new())
    };
    dataset.epoch_batches(&cfg.data, cfg.seed, cursor.epoch)?;
    let params = match (&state, &o.init) {
        (Some(s), _) => s.params.clone(),
        (None, Some(init)) => crate::torch_io::import::load_weights(init, &cfg.model)?,
        (None, None) => init_params(&cfg.model, &mut SplitMix64::new(cfg.seed)),
    };
    Ok(Prepared {
        cfg,
        dataset,
        params,
        state,
        cursor,
        history,
        warnings,
    })
}
