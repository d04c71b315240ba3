//! The dense layers' activations: shaders/activation.wgsl, twin of
//! `cpu::activation::activate`.

use crate::gpu::kernels::Kernel;
use crate::gpu::program::{grid, u, Program, NONE, WG};
use crate::gpu::uniform::uniform;
use crate::model::{Activation, ModelConfig};

uniform! {
    pub struct Params for "activation" {
        pub n: u32,
        /// 0 linear, 1 leaky ReLU.
        pub kind: u32,
        pub x: u32,
        pub y: u32,
        pub dy: u32,
        pub slope: f32,
    }
}

fn kind(a: Activation) -> u32 {
    match a {
        Activation::Linear => 0,
        Activation::LeakyRelu => 1,
    }
}

impl Program {
    /// `y = act(x)` over `n` elements of `acts` (nothing for linear in place).
    pub fn activation(&mut self, cfg: &ModelConfig, act: Activation, n: usize, x: usize, y: usize) {
        if act == Activation::Linear && x == y {
            return;
        }
        let params = Params {
            n: u(n),
            kind: kind(act),
            x: u(x),
            y: u(y),
            dy: NONE,
            slope: cfg.leaky_slope as f32,
        };
        self.push(Kernel::ActivationForward, params, grid(n, WG));
    }

    /// `dy *= act'` where the activation's output is `y`, in place.
    pub fn activation_backward(
        &mut self,
        cfg: &ModelConfig,
        act: Activation,
        n: usize,
        y: usize,
        dy: usize,
    ) {
        if act == Activation::Linear {
            return;
        }
        let params = Params {
            n: u(n),
            kind: kind(act),
            x: NONE,
            y: u(y),
            dy: u(dy),
            slope: cfg.leaky_slope as f32,
        };
        self.push(Kernel::ActivationBackward, params, grid(n, WG));
    }
}
