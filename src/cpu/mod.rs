//! The CPU engine: reference math and its fast twins, on rayon.

pub mod activation;
pub mod adam;
pub mod dense;
pub mod engine;
pub mod lstm;
pub mod matmul;
pub mod network;
pub mod pack;
pub mod recurrence;
pub mod tile;
