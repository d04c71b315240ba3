//! The model: its configuration and where every parameter lives.
//!
//! # Architecture
//! `layers` stacked LSTM layers of `hidden` units, then a dense head applied
//! to every timestep: `head` hidden widths with LeakyReLU between them, and a
//! final layer to [`ModelConfig::outputs`] outputs: the next sample of every
//! channel (the `mse` head), or 256 logits per channel over its μ-law
//! quantized next sample (the `mulaw` head, see `crate::mulaw`), channel-major:
//! output `ch·256 + k` is class `k` of channel `ch`; or a location and a
//! log-scale per channel of a Laplace or a logistic law over the next sample
//! (the `laplace` and `logistic` heads, see `crate::law`): output `2·ch` is
//! channel `ch`'s location, `2·ch + 1` its log-scale.
//!
//! One timestep's input is the `frame` most recent frames of the input
//! signal, oldest first: `x[f * W + j]` with `W = input_width()` values per
//! frame, so layer 0 has `input = frame · W` inputs. A plain model's input
//! frame is one sample of every channel (`W = channels`); a model over a
//! base predictor reads `features` values per channel each timestep
//! (`W = features · channels`, feature-major, channel fastest; see `hybrid`).
//!
//! # Parameter layout
//! All parameters live in one flat buffer, in this order, with PyTorch's
//! `nn.LSTM` / `nn.Linear` names, shapes and row-major layouts:
//!
//! | name | shape |
//! |---|---|
//! | `weight_ih_l{k}` | `[4H, I_k]` (`I_0 = frame·channels`, `I_k = H` above) |
//! | `weight_hh_l{k}` | `[4H, H]` |
//! | `bias_ih_l{k}` | `[4H]` |
//! | `bias_hh_l{k}` | `[4H]` |
//! | `head.{j}.weight` | `[out_j, in_j]` |
//! | `head.{j}.bias` | `[out_j]` |
//!
//! The `4H` rows are the gates in PyTorch's order: input `i`, forget `f`,
//! cell candidate `g`, output `o`. Gradients and Adam's moments use the same
//! layout, so the optimizer is one loop over one buffer and a device uploads
//! one buffer.

use crate::error::{Error, Result};
use crate::law::Law;
use serde::{Deserialize, Serialize};

/// Activation of the cell candidate `g` and of the cell state before the
/// output gate (`h = o · act(c)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum CellActivation {
    Tanh,
    /// Keras `activation='linear'`: no squashing at all.
    Linear,
}

/// Activation of the gates `i`, `f`, `o`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum GateActivation {
    Sigmoid,
    /// Keras 2.2's `hard_sigmoid`: `clip(0.2·x + 0.5, 0, 1)`.
    HardSigmoid,
}

/// Activation applied element-wise after the LSTM or after the last dense layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    Linear,
    LeakyRelu,
}

/// What the head predicts, and so which loss trains it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Output {
    /// The next sample itself, trained by mean squared error.
    #[default]
    Mse,
    /// A distribution over the 256 μ-law classes of the next sample, trained
    /// by softmax cross-entropy. The classes are fixed in audio units (full
    /// scale ±1); `scale` is the dataset's normalization (audio = model units
    /// · scale), which places them in the model's units.
    Mulaw { scale: f32 },
    /// A Laplace location and log-scale per channel of the next sample,
    /// trained by the negative log-likelihood of its 16-bit bin. `scale` is
    /// audio units per output unit, which sets the bin width `2⁻¹⁵/scale`.
    Laplace { scale: f32 },
    /// A logistic location and log-scale per channel (`crate::logistic`),
    /// otherwise like `Laplace`: the same layout, bins and `scale`.
    Logistic { scale: f32 },
}

impl Output {
    /// The law of a location–scale head (`laplace`, `logistic`) and its
    /// `scale`; None for `mse` and `mulaw`.
    pub fn law(self) -> Option<(Law, f32)> {
        match self {
            Output::Laplace { scale } => Some((Law::Laplace, scale)),
            Output::Logistic { scale } => Some((Law::Logistic, scale)),
            Output::Mse | Output::Mulaw { .. } => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Audio channels: the model's outputs, and inputs per sample.
    pub channels: usize,
    /// Samples per channel in one timestep's input window.
    pub frame: usize,
    pub hidden: usize,
    pub layers: usize,
    /// Hidden widths of the dense head (empty: one linear layer `H → channels`).
    pub head: Vec<usize>,
    pub cell_activation: CellActivation,
    pub gate_activation: GateActivation,
    /// Applied to the top LSTM layer's `h` before the head.
    pub lstm_output_activation: Activation,
    /// Applied to the head's last layer.
    pub output_activation: Activation,
    /// Negative slope of every LeakyReLU (Keras' default, 0.3).
    pub leaky_slope: f64,
    /// The head's kind (checkpoints from before it existed are `mse`).
    #[serde(default)]
    pub output: Output,
    /// Input values per channel in one frame of the input signal; 0 (the
    /// default, not written) means the sample itself. See `hybrid`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub features: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl ModelConfig {
    /// Values in one frame of the input signal (`[N, W]`).
    pub fn input_width(&self) -> usize {
        self.channels * self.features.max(1)
    }

    pub fn input_size(&self) -> usize {
        self.frame * self.input_width()
    }

    /// Inputs of LSTM layer `k`.
    pub fn layer_input(&self, k: usize) -> usize {
        if k == 0 {
            self.input_size()
        } else {
            self.hidden
        }
    }

    /// Outputs of the head's last layer per timestep: `channels` for the
    /// `mse` head, `256·channels` logits for the `mulaw` head, a location and
    /// a log-scale per channel for the `laplace` head.
    pub fn outputs(&self) -> usize {
        match self.output {
            Output::Mse => self.channels,
            Output::Mulaw { .. } => self.channels * crate::mulaw::CLASSES,
            Output::Laplace { .. } | Output::Logistic { .. } => 2 * self.channels,
        }
    }

    /// `(in, out)` of every dense layer of the head, in order.
    pub fn dense_shapes(&self) -> Vec<(usize, usize)> {
        let mut shapes = Vec::with_capacity(self.head.len() + 1);
        let mut prev = self.hidden;
        let last = self.outputs();
        for &w in self.head.iter().chain(std::iter::once(&last)) {
            shapes.push((prev, w));
            prev = w;
        }
        shapes
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::config(format!("invalid model: {what}")));
        if self.channels == 0 {
            return bad("channels must be at least 1");
        }
        if self.frame == 0 {
            return bad("--frame must be at least 1");
        }
        if self.hidden == 0 {
            return bad("--hidden must be at least 1");
        }
        if self.layers == 0 {
            return bad("--layers must be at least 1");
        }
        if self.head.contains(&0) {
            return bad("--head widths must be at least 1");
        }
        if !(0.0..1.0).contains(&self.leaky_slope) {
            // The backward pass reads LeakyReLU's slope off the sign of its
            // output, which needs a slope in [0, 1).
            return bad("--leaky-slope must be in [0, 1)");
        }
        if let Output::Mulaw { scale } | Output::Laplace { scale } | Output::Logistic { scale } =
            self.output
        {
            if !(scale.is_finite() && scale > 0.0) {
                return bad("a distribution head needs a positive finite scale");
            }
        }
        let n = self.layout().total;
        if n > (1 << 31) {
            return bad(&format!("{n} parameters is more than this engine supports"));
        }
        Ok(())
    }

    pub fn layout(&self) -> ParamLayout {
        ParamLayout::new(self)
    }
}

/// One named tensor inside the flat parameter buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamEntry {
    pub name: String,
    pub shape: Vec<usize>,
    pub offset: usize,
    pub len: usize,
}

/// Offsets of one LSTM layer's tensors in the flat buffer.
#[derive(Clone, Copy, Debug)]
pub struct LstmOffsets {
    pub input: usize,
    pub w_ih: usize,
    pub w_hh: usize,
    pub b_ih: usize,
    pub b_hh: usize,
}

/// Offsets of one dense layer's tensors in the flat buffer.
#[derive(Clone, Copy, Debug)]
pub struct DenseOffsets {
    pub input: usize,
    pub output: usize,
    pub weight: usize,
    pub bias: usize,
}

#[derive(Clone, Debug)]
pub struct ParamLayout {
    pub entries: Vec<ParamEntry>,
    pub lstm: Vec<LstmOffsets>,
    pub dense: Vec<DenseOffsets>,
    pub total: usize,
}

impl ParamLayout {
    fn new(cfg: &ModelConfig) -> Self {
        let mut entries = Vec::new();
        let mut offset = 0;
        let mut push = |name: String, shape: Vec<usize>| {
            let len = shape.iter().product();
            entries.push(ParamEntry {
                name,
                shape,
                offset,
                len,
            });
            offset += len;
            offset - len
        };
        let h4 = 4 * cfg.hidden;
        let mut lstm = Vec::new();
        for k in 0..cfg.layers {
            let input = cfg.layer_input(k);
            let w_ih = push(format!("weight_ih_l{k}"), vec![h4, input]);
            let w_hh = push(format!("weight_hh_l{k}"), vec![h4, cfg.hidden]);
            let b_ih = push(format!("bias_ih_l{k}"), vec![h4]);
            let b_hh = push(format!("bias_hh_l{k}"), vec![h4]);
            lstm.push(LstmOffsets {
                input,
                w_ih,
                w_hh,
                b_ih,
                b_hh,
            });
        }
        let mut dense = Vec::new();
        for (j, (input, output)) in cfg.dense_shapes().into_iter().enumerate() {
            let weight = push(format!("head.{j}.weight"), vec![output, input]);
            let bias = push(format!("head.{j}.bias"), vec![output]);
            dense.push(DenseOffsets {
                input,
                output,
                weight,
                bias,
            });
        }
        ParamLayout {
            entries,
            lstm,
            dense,
            total: offset,
        }
    }

    pub fn get(&self, name: &str) -> Option<&ParamEntry> {
        self.entries.iter().find(|e| e.name == name)
    }
}

/// PyTorch's default initialisation, drawn from `rng` in layout order:
/// every LSTM tensor from U(-1/√H, 1/√H) (`nn.LSTM`), every dense tensor from
/// U(-1/√in, 1/√in) (`nn.Linear`'s Kaiming-uniform with a = √5 comes to that bound).
pub fn init_params(cfg: &ModelConfig, rng: &mut crate::rng::SplitMix64) -> Vec<f32> {
    let layout = cfg.layout();
    let mut params = vec![0.0f32; layout.total];
    for e in &layout.entries {
        let fan = if e.name.starts_with("head.") {
            layout
                .dense
                .iter()
                .find(|d| d.weight == e.offset || d.bias == e.offset)
                .map(|d| d.input)
                .unwrap_or(1)
        } else {
            cfg.hidden
        };
        let bound = 1.0 / (fan as f64).sqrt();
        for p in &mut params[e.offset..e.offset + e.len] {
            *p = (rng.uniform(-bound, bound)) as f32;
        }
    }
    params
}
