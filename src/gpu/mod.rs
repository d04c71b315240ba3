//! The GPU engine: the same model and optimizer as `cpu`, every op a WGSL
//! compute kernel (`shaders/`, one file per op) dispatched through wgpu on
//! Vulkan, Metal or DX12.
//!
//! - `context`: adapters, device, errors, read-back.
//! - `kernels`: shader sources and pipelines (one shared bind group layout:
//!   params, grads, moments, acts, signal, lanes, stats, carry).
//! - `arena`: where each tensor of a pass lives in `acts`.
//! - `uniform`: typed kernel parameters; each shader's WGSL `Params` is
//!   generated from its Rust struct.
//! - `ops`: one file per shader: its `Params` and the builder that dispatches it.
//! - `program`: the dispatch list of a training step or inference pass;
//!   `passes` composes the ops into forward, loss, backward and update;
//!   `compiled` puts a program's parameters on the device.
//! - `engine`: [`engine::GpuEngine`], the [`crate::engine::Engine`] on top.
//! - `workbench`: the buffers filled by hand, to run one op in the tests.
//!
//! # The `stats` buffer (f32)
//! `[0] lr, [1] 1-β1ᵗ, [2] 1-β2ᵗ, [3] ring slot` written by the host each
//! step; `[4] clipping factor, [5] 1 if loss and norm are finite` written by
//! the norm kernel for Adam; from `[8]` the loss ring, then the norm ring,
//! one slot per step between read-backs.
//!
//! The CPU and GPU engines never import each other; they meet in the tests.

pub mod arena;
pub mod compiled;
pub mod context;
pub mod engine;
pub mod kernels;
pub mod ops;
pub mod passes;
pub mod program;
pub mod uniform;
pub mod workbench;
