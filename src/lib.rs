//! wavelstm: an LSTM engine written from scratch that learns raw audio.
//!
//! Data flows one way: CLI → train / eval / predict / generate → engine → ops.
//! `audio` and `dataset` know nothing of engines; `lpc` and `plot` know
//! nothing of engines or the command line.

pub mod adapt;
pub mod atomic;
pub mod audio;
pub mod baselines;
pub mod bench;
pub mod cascade;
pub mod checkpoint;
pub mod cli;
pub mod codelength;
pub mod cpu;
pub mod dataset;
pub mod demo;
pub mod engine;
pub mod epoch_report;
pub mod error;
pub mod eval;
pub mod excitation;
pub mod flops;
pub mod generate;
pub mod gpu;
pub mod hybrid;
pub mod laplace;
pub mod law;
pub mod level_guard;
pub mod logistic;
pub mod long_lag;
pub mod loss_plot;
pub mod lpc;
pub mod metrics;
pub mod model;
pub mod mulaw;
pub mod optim;
pub mod plot;
pub mod predict;
pub mod predict_song;
pub mod preset;
pub mod rawaudio;
pub mod real;
pub mod residual;
pub mod rng;
pub mod run_config;
pub mod spectrum;
pub mod take_report;
pub mod torch_io;
pub mod train;
pub mod train_setup;
pub mod wavstream;

pub use error::{Error, Result};
