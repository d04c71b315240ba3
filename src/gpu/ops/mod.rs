//! One file per shader: the kernel's typed `Params` (the WGSL struct is
//! generated from it, see `gpu::uniform`) and the [`Program`] builder
//! methods that dispatch it, each the GPU twin of the CPU op of the same name
//! (the table in `src/cpu/README.md`).
//!
//! [`Program`]: super::program::Program

pub mod activation;
pub mod adam;
pub mod column_sum;
pub mod gather;
pub mod grad_norm;
pub mod law_nll;
pub mod lstm_backward;
pub mod lstm_forward;
pub mod matmul;
pub mod mse_loss;
pub mod softmax_xent;
pub mod state;
