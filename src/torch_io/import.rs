//! A wavelstm checkpoint from a torch state dict: the weights as they are,
//! the model's shape from the tensors' shapes ([`names`]), and what a state
//! dict cannot hold (activations, the audio's rate and normalization) from
//! [`ImportOptions`] — or, for a file `export` wrote, from its metadata.
//!
//! The checkpoint is a fresh run's: Adam's moments zero at step 0, plain
//! `torch.optim.Adam` settings (constant learning rate 1e-3, no clipping),
//! no songs, no history. `predict`, `eval` and `generate` read it as any
//! other.

use super::export::{ModuleSpec, SPEC_KEY};
use super::names::{self, Mapped};
use super::tensors::{self, StateDict};
use crate::audio::ChannelMode;
use crate::checkpoint::{Checkpoint, Cursor};
use crate::dataset::DataConfig;
use crate::engine::TrainState;
use crate::error::{Error, Result};
use crate::model::{Activation, CellActivation, GateActivation, ModelConfig, Output};
use crate::mulaw::CLASSES;
use crate::optim::AdamConfig;
use crate::residual::Residual;
use crate::run_config::{LrSchedule, RunConfig};
use std::path::Path;

/// What the tensors do not tell. `None` takes the exported file's value, else the default.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Samples per channel in one input window [default: inputs / channels].
    pub frame: Option<usize>,
    /// 1 or 2 [default: from the head's outputs].
    pub channels: Option<usize>,
    /// Hidden widths the head must have (a check; they are read off the shapes).
    pub head: Option<Vec<usize>>,
    /// [default: tanh, as `nn.LSTM`]
    pub cell_activation: Option<CellActivation>,
    /// [default: sigmoid, as `nn.LSTM`]
    pub gate_activation: Option<GateActivation>,
    /// After the LSTM, before the head [default: linear].
    pub lstm_activation: Option<Activation>,
    /// After the head's last layer [default: linear].
    pub output_activation: Option<Activation>,
    /// Slope of the LeakyReLU between the head's layers [default: 0.01, `nn.LeakyReLU`'s].
    pub leaky_slope: Option<f64>,
    /// The rate the model hears audio at [default: 44,100 Hz].
    pub sample_rate: Option<u32>,
    /// The model's input is audio / scale, and its output times scale is audio [default: 1].
    pub scale: Option<f32>,
    /// The sequence length it was trained with: 1 means every timestep starts
    /// from a zero state at inference, more carries the state through a song [default: 256].
    pub seq_len: Option<usize>,
}

pub const DEFAULT_SAMPLE_RATE: u32 = 44_100;
pub const DEFAULT_SEQ_LEN: usize = 256;
/// `nn.LeakyReLU`'s default negative slope.
pub const TORCH_LEAKY_SLOPE: f64 = 0.01;

/// `channels` and whether the head is μ-law's, from the last layer's width.
fn outputs(width: usize) -> Option<(usize, bool)> {
    match width {
        1 | 2 => Some((width, false)),
        w if w == CLASSES || w == 2 * CLASSES => Some((w / CLASSES, true)),
        _ => None,
    }
}

/// The model and run configuration for `mapped` under `opts` (and `spec`,
/// an exported file's own description, for what `opts` leaves open).
fn config(
    path: &Path,
    mapped: &Mapped,
    opts: &ImportOptions,
    spec: Option<&ModuleSpec>,
) -> Result<RunConfig> {
    let refuse = |why: String| Error::file(path, why);
    // `opts.$field`, else the exported file's own `$field`, else `$default`.
    macro_rules! pick {
        ($field:ident, $default:expr) => {
            opts.$field.or(spec.map(|s| s.$field)).unwrap_or($default)
        };
    }
    let s = &mapped.shapes;
    let last = *s.widths.last().expect("a head has a layer");
    let (channels, mulaw) = outputs(last).ok_or_else(|| {
        refuse(format!(
            "the last linear layer (`{}`) has {last} outputs; wavelstm predicts 1 or 2 channels \
             (a sample each, or 256 μ-law logits each: 256 or 512)",
            mapped.dense_paths.last().expect("a head has a layer")
        ))
    })?;
    if let Some(c) = opts.channels {
        if c != channels {
            return Err(refuse(format!(
                "--channels {c} does not fit the head's {last} outputs ({channels} channel(s))"
            )));
        }
    }
    if !s.input.is_multiple_of(channels) {
        return Err(refuse(format!(
            "the LSTM takes {} inputs, not a whole number of frames of {channels} channels",
            s.input
        )));
    }
    let frame = s.input / channels;
    if let Some(f) = opts.frame {
        if f != frame {
            return Err(refuse(format!(
                "--frame {f} does not fit: the LSTM takes {} inputs = frame {frame} × {channels} channel(s)",
                s.input
            )));
        }
    }
    let head = s.widths[..s.widths.len() - 1].to_vec();
    if let Some(h) = &opts.head {
        if *h != head {
            return Err(refuse(format!(
                "--head {h:?} does not fit: the file's head has hidden widths {head:?}"
            )));
        }
    }
    let scale = pick!(scale, 1.0);
    if !(scale.is_finite() && scale > 0.0) {
        return Err(Error::config("--scale must be positive and finite"));
    }
    let model = ModelConfig {
        channels,
        frame,
        features: 0,
        hidden: s.hidden,
        layers: s.layers,
        head,
        cell_activation: pick!(cell_activation, CellActivation::Tanh),
        gate_activation: pick!(gate_activation, GateActivation::Sigmoid),
        lstm_output_activation: pick!(lstm_activation, Activation::Linear),
        output_activation: pick!(output_activation, Activation::Linear),
        leaky_slope: pick!(leaky_slope, TORCH_LEAKY_SLOPE),
        output: if mulaw {
            Output::Mulaw { scale }
        } else {
            Output::Mse
        },
    };
    model
        .validate()
        .map_err(|e| Error::file(path, e.to_string()))?;
    let seq_len = opts
        .seq_len
        .or(spec.map(|s| if s.carry_state { DEFAULT_SEQ_LEN } else { 1 }))
        .unwrap_or(DEFAULT_SEQ_LEN);
    let sample_rate = pick!(sample_rate, DEFAULT_SAMPLE_RATE);
    if seq_len == 0 || sample_rate == 0 {
        return Err(Error::config(
            "--seq-len and --sample-rate must be at least 1",
        ));
    }
    Ok(RunConfig {
        data: DataConfig {
            frame,
            seq_len,
            batch: 32,
            valid_fraction: 0.1,
            stateful: false,
            shuffle: true,
            burn_in: 0,
        },
        adam: AdamConfig::default(),
        seed: 0,
        epochs: 1,
        sample_rate,
        channel_mode: if channels == 2 {
            ChannelMode::Stereo
        } else {
            ChannelMode::Mono
        },
        scale,
        songs: Vec::new(),
        max_frames: None,
        lr_schedule: LrSchedule::Constant,
        schedule_steps: 0,
        residual: match spec.and_then(|s| s.residual_scale) {
            Some(scale) => Residual::Lpc { scale },
            None => Residual::None,
        },
        model,
    })
}

/// The flat parameters of `model` from `mapped` (missing LSTM biases: zeros).
fn params(path: &Path, mapped: &Mapped, model: &ModelConfig) -> Result<Vec<f32>> {
    let layout = model.layout();
    let mut params = vec![0.0f32; layout.total];
    for e in &layout.entries {
        match mapped.tensors.get(&e.name) {
            Some(t) if t.shape == e.shape => {
                params[e.offset..e.offset + e.len].copy_from_slice(&t.data)
            }
            Some(t) => {
                return Err(Error::file(
                    path,
                    format!(
                        "`{}` has shape {:?}, the model needs {:?}",
                        t.name, t.shape, e.shape
                    ),
                ))
            }
            None if e.name.starts_with("bias_") => {}
            None => return Err(Error::file(path, format!("has no tensor for `{}`", e.name))),
        }
    }
    Ok(params)
}

/// The state dict at `path` (and how it mapped, to show the user).
pub fn read_state_dict(path: &Path) -> Result<(StateDict, Mapped)> {
    let sd = tensors::read(path)?;
    if sd.metadata.contains_key(crate::checkpoint::META_KEY) {
        return Err(Error::file(
            path,
            "is a wavelstm checkpoint already (predict, eval and generate read it as it is)",
        ));
    }
    let mapped = names::map(path, &sd)?;
    Ok((sd, mapped))
}

/// Import the state dict at `path` as a fresh checkpoint.
pub fn import(path: &Path, opts: &ImportOptions) -> Result<(Checkpoint, Mapped)> {
    let (sd, mapped) = read_state_dict(path)?;
    let spec = match sd.metadata.get(SPEC_KEY) {
        Some(raw) => Some(
            serde_json::from_str::<ModuleSpec>(raw)
                .map_err(|e| Error::file(path, format!("bad `{SPEC_KEY}` metadata: {e}")))?,
        ),
        None => None,
    };
    if let Some(s) = spec
        .as_ref()
        .filter(|s| s.output == "laplace" || s.output == "logistic")
    {
        return Err(Error::file(
            path,
            format!(
                "holds a {} head, which import cannot tell from a stereo one by its shapes (not supported yet)",
                s.output
            ),
        ));
    }
    let config = config(path, &mapped, opts, spec.as_ref())?;
    let params = params(path, &mapped, &config.model)?;
    let n = params.len();
    let ck = Checkpoint {
        config,
        state: TrainState {
            params,
            adam_m: vec![0.0; n],
            adam_v: vec![0.0; n],
            step: 0,
            carry_h: Vec::new(),
            carry_c: Vec::new(),
        },
        cursor: Cursor::default(),
        history: Vec::new(),
    };
    Ok((ck, mapped))
}

/// The weights of `model` for `train --init`, from a wavelstm checkpoint or
/// a torch state dict: the file's shapes must be the model's.
pub fn load_weights(path: &Path, model: &ModelConfig) -> Result<Vec<f32>> {
    let sd = tensors::read(path)?;
    if sd.metadata.contains_key(crate::checkpoint::META_KEY) {
        return crate::checkpoint::load_weights(path, model);
    }
    let mapped = names::map(path, &sd)?;
    let s = &mapped.shapes;
    let widths: Vec<usize> = model.dense_shapes().iter().map(|d| d.1).collect();
    if (s.input, s.hidden, s.layers, &s.widths)
        != (model.input_size(), model.hidden, model.layers, &widths)
    {
        return Err(Error::file(
            path,
            format!(
                "holds a model of {} inputs, {} layer(s) of {} units and dense widths {:?}; \
                 the run's has {} inputs, {} layer(s) of {} units and dense widths {widths:?}",
                s.input,
                s.layers,
                s.hidden,
                s.widths,
                model.input_size(),
                model.layers,
                model.hidden
            ),
        ));
    }
    params(path, &mapped, model)
}

/// One line saying what `import` made of a state dict, for the user to check
/// the assumptions (activations, rate, scale) against their module.
pub fn describe(ck: &Checkpoint, mapped: &Mapped) -> String {
    let (c, m) = (&ck.config, &ck.config.model);
    let act = |x: Activation| match x {
        Activation::Linear => String::new(),
        Activation::LeakyRelu => format!(", LeakyReLU({})", m.leaky_slope),
    };
    let lstm_path = if mapped.lstm_path.is_empty() {
        "(bare names)".to_string()
    } else {
        format!("`{}`", mapped.lstm_path)
    };
    let mut head = String::new();
    for (j, (p, (i, o))) in mapped.dense_paths.iter().zip(m.dense_shapes()).enumerate() {
        if j > 0 {
            head += &format!(", LeakyReLU({}), ", m.leaky_slope);
        }
        head += &format!("`{p}` {i}→{o}");
    }
    format!(
        "LSTM {lstm_path}: {} layer(s) of {} ({:?} cell, {:?} gates, {} inputs = frame {} × {} ch){}; head {head}{} ({}); {} Hz, scale {}, {}",
        m.layers,
        m.hidden,
        m.cell_activation,
        m.gate_activation,
        m.input_size(),
        m.frame,
        m.channels,
        act(m.lstm_output_activation),
        act(m.output_activation),
        match m.output {
            Output::Mse => "next sample",
            Output::Mulaw { .. } => "μ-law logits",
            Output::Laplace { .. } => "Laplace location and log-scale",
            Output::Logistic { .. } => "logistic location and log-scale",
        },
        c.sample_rate,
        c.scale,
        if c.data.seq_len > 1 {
            "state carried through a song"
        } else {
            "every timestep from a zero state"
        }
    )
}
