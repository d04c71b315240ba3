//! Where every tensor of one training or inference pass lives in the `acts`
//! buffer, for a batch of `B` lanes of `T` timesteps. All offsets count f32
//! elements. Layouts are the CPU engine's (`cpu::lstm`, `cpu::network`):
//!
//! | tensor | shape |
//! |---|---|
//! | `x` | `[T, B, frame·C]` gathered inputs |
//! | `target` | `[T, B, C]` |
//! | per layer: `gates` | `[T, B, 4H]` pre-activations, then activated gates, then (backward) their gradients da |
//! | per layer: `c`, `h` | `[T+1, B, H]`, block 0 the initial state |
//! | `top` | `[T·B, H]`, the top layer's h after its output activation (the top `h` itself when that is linear) |
//! | `dense[j]`, `dy[j]` | `[T·B, out_j]`: head layer outputs and their gradients |
//! | `dh`, `dx` | `[T·B, H]`: ∂L/∂h of a layer and of the one below (ping-pong) |
//! | `dh_rec`, `dc` | `[B, H]` recurrent gradient and carried ∂L/∂c (step path) |
//! | `partials` | the gradient norm's per-workgroup sums |
//! | `point` | `[T, B, C]`: a distribution head's per-distribution losses (training) or point predictions (inference: a `mulaw` head's expected values, a `laplace` head's locations); the head's output itself for `mse` |
//! | `delta` | `[T, B, C]`: a `laplace` head's per-target bin widths, when it is given them (none for the other heads) |
//!
//! Two savings against the CPU engine's layout keep the `seq` workload
//! (hidden 256, 2 layers, T 256, B 32) inside the 128 MiB storage binding
//! that WebGPU guarantees: `act(c_t)` is recomputed in backward instead of
//! stored, and da overwrites the gates in place.
//!
//! The layers' blocks are equally sized and consecutive, so layer k's
//! `h` is `layers[0].h + k·layer_stride` (the state kernels rely on it).
//!
//! The `carry` buffer, which outlives any one shape, holds the training
//! lanes' state and then the inference lanes' state, each `h` then `c`,
//! each `[L, B, H]` (see [`CarryLayout`]).

use crate::model::{Activation, ModelConfig, Output};

/// Workgroups of the gradient norm's first pass (a constant, so its sums
/// are grouped the same way whatever the shape).
pub const NORM_GROUPS: usize = 64;

#[derive(Clone, Copy, Debug)]
pub struct LayerRegion {
    pub gates: usize,
    pub c: usize,
    pub h: usize,
}

#[derive(Clone, Debug)]
pub struct Arena {
    pub t: usize,
    pub b: usize,
    pub x: usize,
    pub target: usize,
    pub layers: Vec<LayerRegion>,
    pub layer_stride: usize,
    pub top: usize,
    pub dense: Vec<usize>,
    pub dy: Vec<usize>,
    pub dh: usize,
    pub dx: usize,
    pub dh_rec: usize,
    pub dc: usize,
    pub partials: usize,
    pub delta: Option<usize>,
    pub point: usize,
    /// Elements in all.
    pub total: usize,
}

impl Arena {
    pub fn new(cfg: &ModelConfig, t: usize, b: usize) -> Arena {
        let (h, tb) = (cfg.hidden, t * b);
        let mut at = 0usize;
        let mut take = |n: usize| {
            at += n;
            at - n
        };
        let x = take(tb * cfg.input_size());
        let target = take(tb * cfg.channels);
        let layer_stride = tb * 4 * h + 2 * (t + 1) * b * h;
        let mut layers = Vec::new();
        for _ in 0..cfg.layers {
            let gates = take(tb * 4 * h);
            let c = take((t + 1) * b * h);
            let hh = take((t + 1) * b * h);
            layers.push(LayerRegion { gates, c, h: hh });
        }
        let top = if cfg.lstm_output_activation == Activation::Linear {
            layers[cfg.layers - 1].h + b * h
        } else {
            take(tb * h)
        };
        let shapes = cfg.dense_shapes();
        let dense: Vec<usize> = shapes.iter().map(|&(_, o)| take(tb * o)).collect();
        let dy = shapes.iter().map(|&(_, o)| take(tb * o)).collect();
        let dh = take(tb * h);
        let dx = if cfg.layers > 1 { take(tb * h) } else { dh };
        let dh_rec = take(b * h);
        let dc = take(b * h);
        let partials = take(NORM_GROUPS);
        let point = match cfg.output {
            Output::Mse => *dense.last().expect("the head has an output layer"),
            Output::Mulaw { .. } | Output::Laplace { .. } | Output::Logistic { .. } => {
                take(tb * cfg.channels)
            }
        };
        let delta = cfg.output.law().map(|_| take(tb * cfg.channels));
        Arena {
            t,
            b,
            x,
            target,
            layers,
            layer_stride,
            top,
            dense,
            dy,
            dh,
            dx,
            dh_rec,
            dc,
            partials,
            point,
            delta,
            total: at,
        }
    }

    /// The head's output, `[T, B, outputs]` (the predictions for `mse`).
    pub fn prediction(&self) -> usize {
        *self.dense.last().expect("the head has an output layer")
    }
}

/// Offsets in the `carry` buffer for `lanes` lanes of capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CarryLayout {
    pub lanes: usize,
    pub per_tensor: usize,
}

impl CarryLayout {
    pub fn new(cfg: &ModelConfig, lanes: usize) -> Self {
        CarryLayout {
            lanes,
            per_tensor: cfg.layers * lanes * cfg.hidden,
        }
    }
    pub fn train_h(&self) -> usize {
        0
    }
    pub fn train_c(&self) -> usize {
        self.per_tensor
    }
    pub fn predict_h(&self) -> usize {
        2 * self.per_tensor
    }
    pub fn predict_c(&self) -> usize {
        3 * self.per_tensor
    }
    pub fn total(&self) -> usize {
        4 * self.per_tensor
    }
}
