//! PyTorch in and out: a state dict saved by a torch module becomes a
//! wavelstm checkpoint (`import`), and a checkpoint becomes a state dict the
//! module of `examples/torch_model.py` loads (`export`).
//!
//! The torch module wavelstm's model is, in PyTorch's terms:
//! ```text
//! lstm = nn.LSTM(frame·channels, hidden, layers, batch_first=True)
//! head = nn.Sequential(Linear(hidden, w1), LeakyReLU(slope), ..., Linear(·, outputs))
//! ```
//! with an optional LeakyReLU after the LSTM and after the head's last layer,
//! and the Keras variants of the cell (hard-sigmoid gates, linear cell
//! activation), which have no `nn.LSTM` equivalent but the same parameters.
//! A state dict holds no activations, so the importer takes those from flags
//! and infers everything else from names and shapes (see [`names`]).

pub mod export;
pub mod import;
pub mod names;
pub mod tensors;
