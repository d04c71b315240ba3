//! The CPU engine: reference math and its fast twins, on rayon.

pub mod activation;
pub mod dense;
pub mod lstm;
pub mod matmul;
pub mod network;
