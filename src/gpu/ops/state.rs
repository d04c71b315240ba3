//! Carried recurrent state in and out of a pass: shaders/state.wgsl.

use crate::gpu::arena::{Arena, CarryLayout};
use crate::gpu::kernels::Kernel;
use crate::gpu::program::{grid, u, Program, WG};
use crate::gpu::uniform::uniform;
use crate::model::ModelConfig;

uniform! {
    pub struct Params for "state" {
        pub layers: u32,
        pub b: u32,
        pub h: u32,
        pub t: u32,
        pub carry_h: u32,
        pub carry_c: u32,
        /// Offsets of layer 0's h and c; layer k's are `stride` elements further.
        pub h0: u32,
        pub c0: u32,
        pub stride: u32,
    }
}

impl Program {
    /// Initial state of every layer from the carried state (`load`) or the
    /// final state into it (`save`); `predict` picks the inference lanes'.
    pub fn state(
        &mut self,
        cfg: &ModelConfig,
        ar: &Arena,
        cl: &CarryLayout,
        predict: bool,
        save: bool,
    ) {
        let (carry_h, carry_c) = if predict {
            (cl.predict_h(), cl.predict_c())
        } else {
            (cl.train_h(), cl.train_c())
        };
        let kernel = if save {
            Kernel::StateSave
        } else {
            Kernel::StateLoad
        };
        let params = Params {
            layers: u(cfg.layers),
            b: u(ar.b),
            h: u(cfg.hidden),
            t: u(ar.t),
            carry_h: u(carry_h),
            carry_c: u(carry_c),
            h0: u(ar.layers[0].h),
            c0: u(ar.layers[0].c),
            stride: u(ar.layer_stride),
        };
        self.push(kernel, params, grid(cfg.layers * ar.b * cfg.hidden, WG));
    }
}
