//! A checkpoint's weights as a plain torch state dict, for the module of
//! `examples/torch_model.py`:
//!
//! | tensor | is |
//! |---|---|
//! | `lstm.weight_ih_l{k}` ... `lstm.bias_hh_l{k}` | `nn.LSTM`'s, as they are |
//! | `head.{2j}.weight`, `head.{2j}.bias` | dense layer `j` of an `nn.Sequential` whose odd members are LeakyReLUs |
//!
//! Everything the module needs besides the tensors (activations, the audio
//! normalization, the rate) is one JSON object, [`ModuleSpec`], under the
//! metadata key [`SPEC_KEY`]; `import` reads it back, so export then import
//! gives the same model.

use crate::atomic::write_atomic;
use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};
use crate::model::{Activation, CellActivation, GateActivation, Output};
use crate::predict::Plan;
use crate::residual::Residual;
use safetensors::tensor::{Dtype, TensorView};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

pub const SPEC_KEY: &str = "wavelstm_module";
pub const SPEC_FORMAT: &str = "wavelstm-torch-1";

/// The module around the tensors (read by examples/torch_model.py).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModuleSpec {
    pub format: String,
    pub channels: usize,
    pub frame: usize,
    pub hidden: usize,
    pub layers: usize,
    /// Hidden widths of the head.
    pub head: Vec<usize>,
    pub cell_activation: CellActivation,
    pub gate_activation: GateActivation,
    pub lstm_activation: Activation,
    pub output_activation: Activation,
    pub leaky_slope: f64,
    /// "mse" (the next sample), "mulaw" (256 logits per channel) or
    /// "laplace" (location and log-scale per channel).
    pub output: String,
    /// The model's input is audio / `scale`; an `mse` head's output times
    /// `scale` is audio.
    pub scale: f32,
    /// For a model that learned the residual of LPC-32: its scale (the
    /// head's output times it is the residual, in audio units).
    pub residual_scale: Option<f32>,
    pub sample_rate: u32,
    /// Whether the state runs on through a song (else every timestep starts from zero).
    pub carry_state: bool,
}

impl ModuleSpec {
    pub fn of(ck: &Checkpoint) -> Self {
        let c = &ck.config;
        let m = &c.model;
        ModuleSpec {
            format: SPEC_FORMAT.into(),
            channels: m.channels,
            frame: m.frame,
            hidden: m.hidden,
            layers: m.layers,
            head: m.head.clone(),
            cell_activation: m.cell_activation,
            gate_activation: m.gate_activation,
            lstm_activation: m.lstm_output_activation,
            output_activation: m.output_activation,
            leaky_slope: m.leaky_slope,
            output: match m.output {
                Output::Mse => "mse".into(),
                Output::Mulaw { .. } => "mulaw".into(),
                Output::Laplace { .. } => "laplace".into(),
                Output::Logistic { .. } => "logistic".into(),
            },
            scale: c.scale,
            residual_scale: match c.residual {
                Residual::Lpc { scale } => Some(scale),
                // `export` refuses a cascade model before it gets here.
                Residual::None | Residual::Cascade { .. } => None,
            },
            sample_rate: c.sample_rate,
            carry_state: Plan::carries_state(c.data.stateful, c.data.seq_len),
        }
    }
}

/// The torch name of wavelstm parameter `name` (see the table above).
pub fn torch_name(name: &str) -> String {
    match name
        .strip_prefix("head.")
        .and_then(|r| r.split_once('.'))
        .and_then(|(j, leaf)| Some((j.parse::<usize>().ok()?, leaf)))
    {
        Some((j, leaf)) => format!("head.{}.{leaf}", 2 * j),
        None => format!("lstm.{name}"),
    }
}

/// Write the weights of `ck` to `out` as a torch state dict (atomically).
pub fn export(ck: &Checkpoint, out: &Path) -> Result<()> {
    if matches!(ck.config.residual, Residual::Cascade { .. }) {
        // The module reads raw audio; this model reads the cascade's
        // residuals and gains, which examples/torch_model.py does not compute.
        return Err(Error::config(
            "a model trained with --base cascade cannot be exported: the torch module has no cascade to feed it",
        ));
    }
    let layout = ck.config.model.layout();
    let tensors: Vec<(String, Vec<usize>, Vec<u8>)> = layout
        .entries
        .iter()
        .map(|e| {
            let bytes = ck.state.params[e.offset..e.offset + e.len]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect();
            (torch_name(&e.name), e.shape.clone(), bytes)
        })
        .collect();
    let views = tensors
        .iter()
        .map(|(n, s, b)| {
            TensorView::new(Dtype::F32, s.clone(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| Error::Other(e.to_string()))
        })
        .collect::<Result<Vec<_>>>()?;
    let spec =
        serde_json::to_string(&ModuleSpec::of(ck)).map_err(|e| Error::Other(e.to_string()))?;
    let meta = HashMap::from([(SPEC_KEY.to_string(), spec)]);
    let buf = safetensors::tensor::serialize(views, &Some(meta))
        .map_err(|e| Error::file(out, format!("cannot serialize: {e}")))?;
    write_atomic(out, |w| {
        w.write_all(&buf)
            .map_err(|e| Error::file(out, format!("cannot write: {e}")))
    })
}
