//! Scoring a trained model on songs, next to the classic predictors of
//! `lpc` and the `cascade` on exactly the same samples.
//!
//! A song is heard as the model was trained: decoded, mixed or spread to the
//! model's channel layout, resampled to its rate, and divided by its `scale`
//! (the `dataset` signal layout, `[N, C]` interleaved). The model predicts
//! teacher-forced (`predict`), the classic predictors read the same
//! signal, and `metrics` scores all five on the same positions.
//!
//! Every figure has its bits per sample (`codelength`): a point prediction's
//! 16-bit residual under the adaptive Laplace law. A model with a
//! distribution head also gets its own (`SongReport::model_bits_per_sample`):
//! a `mulaw` head's class probability of each 16-bit sample, a location–scale
//! head's law (`laplace`, `logistic`).
//!
//! Which part is scored: the checkpoint records the training songs by the
//! path they were given as, not by content, so a song cannot be recognised
//! for sure. By default the last `valid_fraction` of every song is scored,
//! which for a training song is exactly the part it was never trained on;
//! `Scope::Whole` scores every position that has a full window.

use crate::adapt::{adaptive_teacher_forced, AdaptConfig};
use crate::audio::{self, Audio};
use crate::cascade::{self, CascadeConfig};
use crate::codelength::{residual_bits, to_16bit, MulawGrid};
use crate::dataset::valid_frames;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::hybrid::HybridSignal;
use crate::laplace;
use crate::law;
use crate::lpc::{self, LpcConfig};
use crate::metrics::score;
use crate::model::Output;
use crate::predict::{teacher_forced, teacher_forced_outputs, teacher_forced_with_head, Plan};
use crate::residual::{lpc_base, Residual, ResidualSignal};
use crate::run_config::RunConfig;
use crate::train::{warmup_frames, MAX_LANES};
use serde::Serialize;
use std::ops::Range;
use std::path::Path;

/// Which part of a song is scored.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scope {
    /// The last fraction of the song (the model's validation split when it is the model's own).
    Last(f64),
    /// Every position with a full window.
    Whole,
}

/// One predictor's error on a stretch: MSE in sample units (full scale = 1),
/// prediction gain in dB (see `metrics`), and bits per sample (see `codelength`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Figure {
    pub mse: f64,
    pub gain_db: f64,
    pub bits_per_sample: f64,
}

/// The model and the classic predictors on one song.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SongReport {
    pub song: String,
    /// "last 10%" or "whole".
    pub part: String,
    /// First and one-past-last target frame scored, at the model's rate.
    pub first_frame: usize,
    pub end_frame: usize,
    /// Whether the checkpoint lists this path among its training songs.
    pub training_song: bool,
    /// Samples scored (frames × channels).
    pub samples: usize,
    pub model: Figure,
    pub next_equals_current: Figure,
    pub linear: Figure,
    pub lpc: Figure,
    /// The default `cascade` (EWLS → NLMS stages → combiner).
    pub cascade: Figure,
    /// The model's own bits per sample on the scored samples, from its
    /// distribution head ([`model_bits_per_sample`]: a `laplace` head's law, a
    /// `mulaw` head's class probabilities); None for the `mse` head, and then
    /// left out of the JSON. (`model.bits_per_sample` is its point
    /// prediction costed like the other predictors'.)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_bits_per_sample: Option<f64>,
}

/// A song as the model hears it and what the model predicted of it.
pub struct SignalPrediction {
    /// The song at the model's rate and channel layout, sample units.
    pub input: Audio,
    /// `input` divided by the model's scale, `[N, C]`.
    pub signal: Vec<f32>,
    /// The positions predicted: targets are frames `positions.start + 1 ..= positions.end`.
    pub positions: Range<usize>,
    /// Teacher-forced predictions `[positions.len(), C]`, normalized units
    /// (a residual model's with the LPC prediction added back).
    pub pred: Vec<f32>,
    /// A distribution head's raw output at every position,
    /// `[positions.len(), outputs]` (empty for the other heads), and the
    /// targets in its units (the signal's, or a residual model's residual),
    /// `[positions.len(), C]`.
    pub head: Vec<f32>,
    pub head_targets: Vec<f32>,
    /// Each head target's 16-bit bin width in its units, `[positions.len(),
    /// C]`, when they differ (a model over the cascade, whose unit is the
    /// local gain); empty when one width from the head's scale fits all.
    pub head_deltas: Vec<f32>,
}

impl SignalPrediction {
    /// The scored targets and their predictions, each mixed down to mono, in
    /// sample units: frames `positions.start + 1 ..= positions.end`.
    pub fn scored_mono(&self, scale: f32) -> (Vec<f32>, Vec<f32>) {
        let c = self.input.channels;
        let first = self.positions.start + 1;
        let mix = |v: &[f32]| v.iter().sum::<f32>() / c as f32;
        let original = self.input.samples[first * c..(first + self.positions.len()) * c]
            .chunks_exact(c)
            .map(mix)
            .collect();
        let predicted = self.pred.chunks_exact(c).map(|f| mix(f) * scale).collect();
        (original, predicted)
    }
}

/// Decode `song` at the model's rate and channel layout.
pub fn load_song(song: &Path, cfg: &RunConfig) -> Result<Audio> {
    let input = audio::load(song, cfg.channel_mode, Some(cfg.sample_rate))?;
    let frame = cfg.model.frame;
    if input.frames() < frame + 1 {
        return Err(Error::file(
            song,
            format!(
                "too short: {} frames, the model needs at least {}",
                input.frames(),
                frame + 1
            ),
        ));
    }
    Ok(input)
}

/// The positions `scope` scores in a song of `frames` frames for a model
/// whose window is `frame` frames long.
pub fn positions(frames: usize, frame: usize, scope: Scope) -> Range<usize> {
    let first = frame - 1;
    match scope {
        Scope::Whole => first..frames - 1,
        Scope::Last(f) => {
            let start = (frames - valid_frames(frames, f)).max(1) - 1;
            start.max(first)..frames - 1
        }
    }
}

/// The prediction of the signal at `positions` of `input` (the model's view
/// of a song): the model's outputs teacher-forced (`predict::teacher_forced`)
/// with the lanes, warm-up and state carrying training used. A
/// residual model's outputs are added back to the song's causal LPC
/// prediction. (The engine reads no targets when it predicts, so it is given
/// the signal alone.)
pub fn predict_signal(
    engine: &mut dyn Engine,
    cfg: &RunConfig,
    input: Audio,
    positions: Range<usize>,
) -> Result<SignalPrediction> {
    predict_signal_adapting(engine, cfg, input, positions, None)
}

/// Refuse `--adapt` for a model it cannot adapt: one whose engine targets
/// are not what it learnt (`--base lpc` predicts from the signal alone) or
/// whose bits are read by another pass (`mulaw`).
pub fn check_adapt(cfg: &RunConfig, adapt: &AdaptConfig) -> Result<()> {
    if matches!(cfg.residual, Residual::Lpc { .. }) {
        return Err(Error::config(
            "--adapt needs --base none or cascade (this model learns the LPC residual)",
        ));
    }
    if matches!(cfg.model.output, Output::Mulaw { .. }) {
        return Err(Error::config(
            "--adapt needs the mse, laplace or logistic head",
        ));
    }
    adapt.validate(cfg.data.seq_len)
}

/// [`predict_signal`], with dynamic evaluation when `adapt` is given (see
/// `adapt`): the engine then learns each block of `positions` once it is
/// predicted, and is put back as it was afterwards.
pub fn predict_signal_adapting(
    engine: &mut dyn Engine,
    cfg: &RunConfig,
    input: Audio,
    positions: Range<usize>,
    adapt: Option<&AdaptConfig>,
) -> Result<SignalPrediction> {
    if let Some(a) = adapt {
        check_adapt(cfg, a)?;
    }
    let signal: Vec<f32> = input.samples.iter().map(|v| v / cfg.scale).collect();
    let hybrid = match &cfg.residual {
        Residual::Cascade { hybrid } => Some(HybridSignal::new(
            &signal,
            input.channels,
            cfg.scale,
            std::slice::from_ref(&(0..input.frames())),
            hybrid,
        )),
        _ => None,
    };
    let with_head = cfg.model.output.law().is_some();
    let deltas = hybrid
        .as_ref()
        .filter(|_| with_head)
        .map(HybridSignal::deltas);
    match &hybrid {
        Some(h) => engine.set_signals_with_deltas(&h.inputs, Some(&h.target), deltas.as_deref())?,
        None => engine.set_signal(&signal)?,
    }
    let plan = plan(cfg, positions.clone());
    let (mut pred, head) = match adapt {
        Some(a) => adaptive_teacher_forced(
            engine,
            &plan,
            input.frames(),
            with_head,
            a,
            cfg.data.burn_in,
        )?,
        None => teacher_forced_with_head_if(engine, &plan, input.frames(), with_head)?,
    };
    let c = input.channels;
    let targets_of = |t: &[f32]| t[(positions.start + 1) * c..(positions.end + 1) * c].to_vec();
    // The scored samples are the 16-bit integers the cascade's bits and a
    // codec count (a mono mixdown of two channels falls between them): a
    // head's bins are costed on that grid, not on bins centred between it.
    let on_grid = |v: f32| f64::from(to_16bit(f64::from(v))) / 32768.0;
    let scored = (positions.start + 1) * c..(positions.end + 1) * c;
    let mut head_targets = if with_head {
        input.samples[scored.clone()]
            .iter()
            .map(|&v| (on_grid(v) / f64::from(cfg.scale)) as f32)
            .collect()
    } else {
        Vec::new()
    };
    let mut head_deltas = Vec::new();
    if let Some(h) = &hybrid {
        h.restore(&mut pred, &signal, positions.clone(), true);
        if let Some(d) = &deltas {
            head_targets = scored
                .clone()
                .map(|n| ((on_grid(input.samples[n]) - h.base[n]) / h.gain[n]) as f32)
                .collect();
            head_deltas = targets_of(d);
        }
    }
    if let Residual::Lpc { scale } = cfg.residual {
        let whole = 0..input.frames();
        let base = lpc_base(&signal, c, cfg.sample_rate, std::slice::from_ref(&whole));
        let residual = ResidualSignal::new(&signal, c, base, scale / cfg.scale);
        residual.restore(&mut pred, positions.clone());
        if with_head {
            head_targets = targets_of(&residual.target);
        }
    }
    Ok(SignalPrediction {
        input,
        signal,
        positions,
        pred,
        head,
        head_targets,
        head_deltas,
    })
}

fn teacher_forced_with_head_if(
    engine: &mut dyn Engine,
    plan: &Plan,
    frames: usize,
    with_head: bool,
) -> Result<(Vec<f32>, Vec<f32>)> {
    if with_head {
        teacher_forced_with_head(engine, plan, frames)
    } else {
        Ok((teacher_forced(engine, plan, frames)?, Vec::new()))
    }
}

/// The model's own bits per sample on `forced`'s scored samples: −log₂ of
/// the probability its location–scale head (`laplace`, `logistic`) gives
/// each sample's 16-bit bin, averaged (see `law::bits_per_sample`); None for
/// the other heads.
/// Over the cascade the head's law is over the residual in local gain units
/// and each bin is one 16-bit step of audio in those units, so the figure is
/// in the audio's integer grid like the cascade's and a codec's. (It is the
/// head's own law: the gate weighs the point prediction only.)
pub fn model_bits_per_sample(cfg: &RunConfig, forced: &SignalPrediction) -> Option<f64> {
    let (law, scale) = cfg.model.output.law()?;
    if !forced.head_deltas.is_empty() {
        return Some(law::bits_per_sample_per_target(
            law,
            &forced.head,
            &forced.head_targets,
            &forced.head_deltas,
        ));
    }
    (!forced.head_targets.is_empty()).then(|| {
        law::bits_per_sample(
            law,
            &forced.head,
            &forced.head_targets,
            laplace::delta_for_scale(f64::from(scale)),
        )
    })
}

/// How training's teacher forcing runs over `positions` for a model of `cfg`.
fn plan(cfg: &RunConfig, positions: Range<usize>) -> Plan {
    Plan {
        positions,
        first_valid: cfg.model.frame - 1,
        seq_len: cfg.data.seq_len,
        warmup: warmup_frames(cfg.sample_rate, cfg.data.seq_len),
        max_lanes: MAX_LANES,
        carry: Plan::carries_state(cfg.data.stateful, cfg.data.seq_len),
    }
}

/// A `mulaw` model's bits per sample of the targets of `forced.positions`:
/// its own `−log2 p` of every 16-bit sample (see `codelength`), from the
/// head's logits, teacher-forced as [`predict_signal`] predicts.
fn mulaw_bits(
    engine: &mut dyn Engine,
    cfg: &RunConfig,
    forced: &SignalPrediction,
    head_scale: f32,
) -> Result<f64> {
    let c = forced.input.channels;
    let grid = MulawGrid::new(head_scale as f64 / cfg.scale as f64);
    let classes = crate::mulaw::CLASSES;
    let samples = &forced.input.samples;
    let mut bits = vec![0.0f64; forced.positions.len() * c];
    let p0 = forced.positions.start;
    teacher_forced_outputs(
        engine,
        &plan(cfg, forced.positions.clone()),
        &forced.signal,
        |p, z| {
            for ch in 0..c {
                let x = samples[(p + 1) * c + ch] as f64;
                bits[(p - p0) * c + ch] = grid.bits(&z[ch * classes..(ch + 1) * classes], x);
            }
        },
    )?;
    // Summed in position order whatever order the lanes ran in.
    Ok(bits.iter().sum::<f64>() / bits.len().max(1) as f64)
}

/// Score the model and the classic predictors on `scope` of `song`.
pub fn evaluate(
    engine: &mut dyn Engine,
    cfg: &RunConfig,
    song: &Path,
    scope: Scope,
) -> Result<(SongReport, SignalPrediction)> {
    evaluate_adapting(engine, cfg, song, scope, None)
}

/// [`evaluate`], the model adapting as it goes when `adapt` is given.
pub fn evaluate_adapting(
    engine: &mut dyn Engine,
    cfg: &RunConfig,
    song: &Path,
    scope: Scope,
    adapt: Option<&AdaptConfig>,
) -> Result<(SongReport, SignalPrediction)> {
    let input = load_song(song, cfg)?;
    let pos = positions(input.frames(), cfg.model.frame, scope);
    if pos.is_empty() {
        return Err(Error::file(song, "too short: nothing left to score"));
    }
    let forced = predict_signal_adapting(engine, cfg, input, pos.clone(), adapt)?;
    let (x, c) = (&forced.signal, forced.input.channels);
    // The targets in sample units, for the bits.
    let targets: Vec<f64> = forced.input.samples[(pos.start + 1) * c..(pos.end + 1) * c]
        .iter()
        .map(|&v| v as f64)
        .collect();
    let figure = |pred: &[f32]| {
        let s = score(pred, x, c, pos.clone(), cfg.scale);
        let in_samples: Vec<f64> = pred.iter().map(|&v| v as f64 * cfg.scale as f64).collect();
        Figure {
            mse: s.mse,
            gain_db: s.gain_db,
            bits_per_sample: residual_bits(&targets, &in_samples, c),
        }
    };
    let model = figure(&forced.pred);
    let model_bits_per_sample = match cfg.model.output {
        Output::Mulaw { scale } => Some(mulaw_bits(engine, cfg, &forced, scale)?),
        _ => model_bits_per_sample(cfg, &forced),
    };
    // The cascade reads the song in sample units (its settings are in them),
    // its predictions are brought to the model's units to be scored alike.
    let cascade_pred: Vec<f32> = cascade::predict(
        &forced.input.samples,
        c,
        pos.clone(),
        &CascadeConfig::default(),
    )
    .into_iter()
    .map(|v| v / cfg.scale)
    .collect();
    let report = SongReport {
        song: song.display().to_string(),
        part: match scope {
            Scope::Whole => "whole".into(),
            Scope::Last(f) => format!("last {}%", (f * 1e4).round() / 100.0),
        },
        first_frame: pos.start + 1,
        end_frame: pos.end + 1,
        training_song: is_training_song(song, cfg),
        samples: pos.len() * c,
        model,
        next_equals_current: figure(&lpc::next_equals_current(x, c, pos.clone())),
        linear: figure(&lpc::linear(x, c, pos.clone())),
        lpc: figure(&lpc::lpc(
            x,
            c,
            pos.clone(),
            &LpcConfig::standard(cfg.sample_rate),
        )),
        cascade: figure(&cascade_pred),
        model_bits_per_sample,
    };
    Ok((report, forced))
}

/// Whether `song` names one of the run's training songs (same file after
/// resolving links and relative paths, or the same path as given).
fn is_training_song(song: &Path, cfg: &RunConfig) -> bool {
    let canon = |p: &Path| std::fs::canonicalize(p).ok();
    let this = canon(song);
    cfg.songs.iter().any(|s| {
        let s = Path::new(s);
        s == song || (this.is_some() && canon(s) == this)
    })
}
