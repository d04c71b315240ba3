//! The CPU engine: reference math and its fast twins, on rayon. Every op by
//! name (reference, fast twin, shader, tests): `src/cpu/README.md`.

pub mod activation;
pub mod adam;
pub mod aligned;
pub mod dense;
pub mod engine;
pub mod fast_step;
pub mod gemv;
pub mod gemv_blocked;
pub mod isa;
pub mod lanes;
pub mod law_nll;
pub mod lstm;
pub mod lstm_shape;
pub mod matmul;
pub mod mulaw;
pub mod network;
pub mod op;
pub mod pack;
pub mod recurrence;
pub mod reference;
pub mod scalar;
pub mod send_ptr;
pub mod step;
pub mod step_threads;
pub mod tile;
pub mod tile_group;
pub mod window_step;
