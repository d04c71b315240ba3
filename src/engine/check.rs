//! The checks every engine makes on what it is handed, written once so the
//! CPU and GPU engines refuse the same things with the same words.

use super::TrainState;
use crate::dataset::Batch;
use crate::error::{Error, Result};
use crate::model::ModelConfig;

/// Initial parameters for a model of `cfg`: exactly its layout's count.
pub fn check_params(cfg: &ModelConfig, params: &[f32]) -> Result<()> {
    let n = cfg.layout().total;
    if params.len() != n {
        return Err(Error::Other(format!(
            "expected {n} parameters, got {}",
            params.len()
        )));
    }
    Ok(())
}

/// A training state for a model of `cfg`: parameters and both Adam moments
/// of the layout's size, and a carried state `[L, B, H]` of whole lanes
/// (`B` of them, possibly none), `h` and `c` alike.
pub fn check_state(cfg: &ModelConfig, s: &TrainState) -> Result<()> {
    let n = cfg.layout().total;
    let lane = cfg.layers * cfg.hidden;
    if s.params.len() != n
        || s.adam_m.len() != n
        || s.adam_v.len() != n
        || s.carry_h.len() != s.carry_c.len()
        || !s.carry_h.len().is_multiple_of(lane)
    {
        return Err(Error::Other(
            "training state does not match the model".into(),
        ));
    }
    Ok(())
}

/// The checks every engine makes of the signals it is given: whole frames,
/// and a target signal (if any) as long as the input signal.
/// A model that reads features (`ModelConfig::features`) has an input
/// signal `[N, W]` wider than its targets `[N, C]`, and must be given them.
///
/// Per-target bin widths, if any, belong to a location–scale head and are as
/// long as the targets, positive and finite.
pub fn check_signals(
    cfg: &ModelConfig,
    signal: &[f32],
    targets: Option<&[f32]>,
    deltas: Option<&[f32]>,
) -> Result<()> {
    let other = |m: &str| Err(Error::Other(m.into()));
    if let Some(d) = deltas {
        if cfg.output.law().is_none() {
            return other("per-target bin widths need a laplace or logistic head");
        }
        if d.len() * cfg.input_width() != signal.len() * cfg.channels {
            return other("the bin widths are not as long as the signal");
        }
        if !d.iter().all(|v| v.is_finite() && *v > 0.0) {
            return other("a bin width is not a positive finite number");
        }
    }
    let w = cfg.input_width();
    if !signal.len().is_multiple_of(w) {
        return Err(Error::Other(
            "signal length is not a whole number of frames".into(),
        ));
    }
    let frames = signal.len() / w;
    match targets {
        Some(t) if t.len() != frames * cfg.channels => Err(Error::Other(
            "the target signal is not as long as the signal".into(),
        )),
        None if w != cfg.channels => Err(Error::Other(
            "a model that reads features needs a target signal".into(),
        )),
        _ => Ok(()),
    }
}

/// The checks every engine makes of a batch over a signal of `frames`
/// frames: lanes and flags agree, and every lane's first window and first
/// target lie inside the signal.
pub fn check_batch(cfg: &ModelConfig, frames: usize, batch: &Batch, seq_len: usize) -> Result<()> {
    let ok = !batch.starts.is_empty()
        && batch.starts.len() == batch.carry.len()
        && seq_len > 0
        && batch
            .starts
            .iter()
            .all(|&s| s + 1 >= cfg.frame && s + 1 < frames);
    if ok {
        Ok(())
    } else {
        Err(Error::Other("batch does not fit the signal".into()))
    }
}

/// Free-running inputs: one or more whole windows of the model's input size.
/// Returns the number of lanes.
pub fn check_free_step(cfg: &ModelConfig, inputs: &[f32]) -> Result<usize> {
    let width = cfg.input_size();
    if inputs.is_empty() || !inputs.len().is_multiple_of(width) {
        return Err(Error::Other(format!(
            "free_step: {} inputs is not a whole number of {width}-sample windows",
            inputs.len()
        )));
    }
    Ok(inputs.len() / width)
}
