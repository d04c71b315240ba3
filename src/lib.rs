//! wavelstm: an LSTM engine written from scratch that learns raw audio.
//!
//! Data flows one way: CLI → train / predict → engine → ops.
//! `audio` and `dataset` know nothing of engines.

pub mod audio;
pub mod cpu;
pub mod error;
pub mod model;
pub mod real;
pub mod rng;

pub use error::{Error, Result};
