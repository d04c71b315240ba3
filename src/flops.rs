//! Floating-point operation counts, written down once: the benches and the
//! throughput figures divide measured times by these.
//!
//! A multiply-add counts as two FLOPs. Only the matrix products are counted
//! (the gate math, activations and the optimizer are O(size) next to them),
//! and the convention of issue 5 is kept: a backward pass costs twice its
//! forward, so a training step is three forwards.

use crate::model::ModelConfig;

/// `C[m×n] += A[m×k]·B[k×n]`.
pub fn gemm(m: usize, n: usize, k: usize) -> f64 {
    2.0 * m as f64 * n as f64 * k as f64
}

/// One LSTM layer's forward over `t` timesteps of `b` sequences: the input
/// projection `[T·B, I]·[I, 4H]` plus `T` recurrent products `[B, H]·[H, 4H]`.
pub fn lstm_layer_forward(i: usize, h: usize, b: usize, t: usize) -> f64 {
    gemm(t * b, 4 * h, i + h)
}

/// Every LSTM layer of `cfg` forward (the head is not counted).
pub fn lstm_forward(cfg: &ModelConfig, b: usize, t: usize) -> f64 {
    (0..cfg.layers)
        .map(|k| lstm_layer_forward(cfg.layer_input(k), cfg.hidden, b, t))
        .sum()
}

/// A training step: forward plus a backward counted as twice the forward.
pub fn train_step(cfg: &ModelConfig, b: usize, t: usize) -> f64 {
    3.0 * lstm_forward(cfg, b, t)
}

/// The head's dense layers forward on `rows` timestep-lanes: one product
/// `[rows, in]·[in, out]` per layer (`ModelConfig::dense_shapes`).
pub fn head_forward(cfg: &ModelConfig, rows: usize) -> f64 {
    cfg.dense_shapes()
        .iter()
        .map(|&(i, o)| gemm(rows, o, i))
        .sum()
}

/// A training step of `b` windows of one timestep from a zero state (the
/// `seed` workload). [`train_step`]'s count would include the recurrent
/// products, which multiply zeros there and are not computed; what is
/// left are the input projections and the head, which is most of the
/// work at this shape, so it is counted here.
pub fn window_train_step(cfg: &ModelConfig, b: usize) -> f64 {
    let projections: f64 = (0..cfg.layers)
        .map(|k| gemm(b, 4 * cfg.hidden, cfg.layer_input(k)))
        .sum();
    3.0 * (projections + head_forward(cfg, b))
}

/// One free-running timestep of `b` lanes (`Engine::free_step`): every
/// layer's input and recurrent products `[B, I+H]·[I+H, 4H]` plus the head.
/// The head is counted here, unlike in [`lstm_forward`]: a free step is the
/// whole model's forward, and a `mulaw` head (`[H, 256·C]`) does a quarter
/// of a hidden-256 layer's products.
pub fn free_step(cfg: &ModelConfig, b: usize) -> f64 {
    lstm_forward(cfg, b, 1) + head_forward(cfg, b)
}
