//! `wavelstm import` and `wavelstm export`: PyTorch state dicts in and out
//! (the work is in `torch_io`).

use super::train::{parse_head, Channels};
use crate::checkpoint;
use crate::error::{Error, Result};
use crate::model::{Activation, CellActivation, GateActivation};
use crate::residual::Residual;
use crate::torch_io::import::{self, ImportOptions};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
#[command(
    after_help = "The state dict's names and shapes give the LSTM (`weight_ih_l0`... under \
any one module path: `lstm.`, `rnn.`, none) and the head (the other tensors, one nn.Linear per \
module path in natural order, e.g. an nn.Sequential's `head.0`, `head.2`, with activations \
between). The head's outputs give the channels (1 or 2 samples, or 256 μ-law logits each) and \
the LSTM's inputs the frame. A state dict holds no activations and nothing of the audio: the \
flags give them, with PyTorch's defaults (between dense layers wavelstm's model always applies \
LeakyReLU: --leaky-slope 0 makes it ReLU). A file `wavelstm export` wrote carries them in its \
metadata. The checkpoint starts a fresh run of plain torch.optim.Adam (lr 1e-3, constant, no \
clipping)."
)]
pub(super) struct ImportArgs {
    /// The state dict (safetensors; F16, BF16, F32 or F64).
    state_dict: PathBuf,
    /// The checkpoint to write.
    #[arg(long, short, default_value = "model.safetensors")]
    out: PathBuf,
    /// Samples per channel of one input window (a check) [default: the LSTM's inputs / channels].
    #[arg(long)]
    frame: Option<usize>,
    /// Mono or stereo (a check) [default: from the head's outputs].
    #[arg(long, value_enum)]
    channels: Option<Channels>,
    /// Hidden widths of the head, e.g. 50,25,12 (a check) [default: from the shapes].
    #[arg(long)]
    head: Option<String>,
    /// [default: tanh, as nn.LSTM]
    #[arg(long, value_enum)]
    cell_activation: Option<CellActivation>,
    /// [default: sigmoid, as nn.LSTM]
    #[arg(long, value_enum)]
    gate_activation: Option<GateActivation>,
    /// Activation after the LSTM, before the head [default: linear].
    #[arg(long, value_enum)]
    lstm_activation: Option<Activation>,
    /// Activation of the head's output [default: linear].
    #[arg(long, value_enum)]
    output_activation: Option<Activation>,
    /// Negative slope of the LeakyReLUs [default: 0.01, nn.LeakyReLU's].
    #[arg(long)]
    leaky_slope: Option<f64>,
    /// The rate the model hears audio at; songs are resampled to it [default: 44100].
    #[arg(long)]
    sample_rate: Option<u32>,
    /// The model reads audio / scale and its output times scale is audio (full scale ±1) [default: 1].
    #[arg(long)]
    scale: Option<f32>,
    /// Sequence length it was trained with: 1 starts every timestep from a
    /// zero state, more carries the state through a song [default: 256].
    #[arg(long)]
    seq_len: Option<usize>,
}

#[derive(Args, Debug)]
pub(super) struct ExportArgs {
    /// A checkpoint.
    model: PathBuf,
    /// The state dict to write.
    #[arg(long, short, default_value = "torch.safetensors")]
    out: PathBuf,
}

pub(super) fn import(a: &ImportArgs) -> Result<()> {
    if a.out == a.state_dict {
        return Err(Error::file(&a.out, "--out would replace the state dict"));
    }
    let opts = ImportOptions {
        frame: a.frame,
        channels: a.channels.map(|c| match c {
            Channels::Mono => 1,
            Channels::Stereo => 2,
        }),
        head: a.head.as_deref().map(parse_head).transpose()?,
        cell_activation: a.cell_activation,
        gate_activation: a.gate_activation,
        lstm_activation: a.lstm_activation,
        output_activation: a.output_activation,
        leaky_slope: a.leaky_slope,
        sample_rate: a.sample_rate,
        scale: a.scale,
        seq_len: a.seq_len,
    };
    let (ck, mapped) = import::import(&a.state_dict, &opts)?;
    checkpoint::save(&a.out, &ck)?;
    println!(
        "{}: {} -> {}",
        a.state_dict.display(),
        import::describe(&ck, &mapped),
        a.out.display()
    );
    Ok(())
}

pub(super) fn export(a: &ExportArgs) -> Result<()> {
    let ck = checkpoint::load(&a.model)?;
    crate::torch_io::export::export(&ck, &a.out)?;
    let note = if matches!(ck.config.residual, Residual::Lpc { .. }) {
        " (the model learned LPC-32's residual: the module's output is that residual)"
    } else {
        ""
    };
    println!(
        "{}: {} tensors as a PyTorch state dict{note} -> {} (load it with examples/torch_model.py)",
        a.model.display(),
        ck.config.model.layout().entries.len(),
        a.out.display()
    );
    Ok(())
}
