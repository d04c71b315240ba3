//! The optimizer's settings and the per-step scalars derived from them:
//! what the CPU engine (`cpu::adam`) and the GPU engine (`adam.wgsl`) both
//! take, so that neither imports the other. The update itself, and its
//! formulas and sources, are in `cpu::adam`.

use serde::{Deserialize, Serialize};

/// Adam(W)'s settings; part of every run's configuration (and so of every
/// checkpoint).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdamConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Global-norm clipping threshold; 0 turns clipping off.
    pub clip: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            clip: 0.0,
        }
    }
}

/// The scalars of update number `t` (from 1), computed in f64 and rounded
/// to f32 once, as PyTorch does (its Python floats are doubles, and a scalar
/// meets an f32 tensor as an f32). Both engines use the same values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepConstants {
    /// `1 − β1`: the weight of `lerp(m, g, ·)`.
    pub one_minus_beta1: f32,
    /// `1 − (1 − β1)`, the other weight `lerp` uses when `1 − β1 ≥ 0.5`.
    pub beta1_complement: f32,
    pub beta2: f32,
    pub one_minus_beta2: f32,
    /// `lr / (1 − β1ᵗ)`.
    pub step_size: f32,
    /// `√(1 − β2ᵗ)`.
    pub bias_correction2_sqrt: f32,
    pub eps: f32,
    /// `1 − lr·wd`: the decoupled decay's factor.
    pub decay: f32,
}

impl StepConstants {
    pub fn new(cfg: &AdamConfig, t: u64) -> Self {
        let t = t as f64;
        let one_minus_beta1 = (1.0 - cfg.beta1) as f32;
        StepConstants {
            one_minus_beta1,
            // PyTorch's lerp forms its `1 − weight` from the f32 weight.
            beta1_complement: 1.0 - one_minus_beta1,
            beta2: cfg.beta2 as f32,
            one_minus_beta2: (1.0 - cfg.beta2) as f32,
            step_size: (cfg.lr / (1.0 - cfg.beta1.powf(t))) as f32,
            bias_correction2_sqrt: (1.0 - cfg.beta2.powf(t)).sqrt() as f32,
            eps: cfg.eps as f32,
            decay: (1.0 - cfg.lr * cfg.weight_decay) as f32,
        }
    }
}
