//! The small models the step tests are checked on.

use wavelstm::model::{Activation, CellActivation, GateActivation, ModelConfig, Output};
use wavelstm::preset::Defaults;

/// `channels` channels in frames of 3, `layers` LSTM layers of `hidden`
/// units with leaky-ReLU outputs, the dense `head`, then `output`; the rest
/// as the defaults have it.
pub fn lstm(
    channels: usize,
    layers: usize,
    hidden: usize,
    head: &[usize],
    cell: CellActivation,
    gate: GateActivation,
    output: Output,
) -> ModelConfig {
    ModelConfig {
        frame: 3,
        hidden,
        layers,
        head: head.to_vec(),
        cell_activation: cell,
        gate_activation: gate,
        lstm_output_activation: Activation::LeakyRelu,
        output,
        ..Defaults::of(None).model(channels)
    }
}
