//! Dynamic evaluation (B. Krause, E. Kahembwe, I. Murray and S. Renals,
//! "Dynamic evaluation of neural sequence models", ICML 2018): a model that
//! keeps learning from the stretch it predicts, as it predicts it.
//!
//! One inference lane walks the stretch in order in blocks of `block`
//! positions. Each block is first predicted, teacher-forced, from the state
//! the lane carries and the weights of that moment; only then does the
//! engine take `steps` optimizer steps on that block's targets, so no
//! prediction ever depends on the sample it predicts or on a later one: the
//! weights that predict block `k` have seen the targets of blocks `< k`
//! only. The stretch's last block is predicted and never trained on.
//!
//! A step's batch is the block cut into lanes of `L = min(seq_len, block)`
//! positions, each lane started `burn_in` positions early from a zero state
//! with those positions left out of the loss (training's own burn-in), so
//! every target of the block counts once and its context is the true past.
//! The optimizer is the run's Adam with its clipping and weight decay, from
//! fresh moments, at `lr` (constant). Warm-up before the stretch is
//! predicted as `predict` does it and not trained on. The engine's weights
//! and training state are put back afterwards: one song's adaptation does
//! not leak into the next song's predictions.

use crate::dataset::Batch;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::predict::{zeroed_outputs, Plan};

/// How dynamic evaluation adapts (`--adapt-block`, `--adapt-steps`, `--adapt-lr`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdaptConfig {
    /// Positions predicted between two adaptations.
    pub block: usize,
    /// Optimizer steps on each block once it is predicted.
    pub steps: usize,
    /// Adam's learning rate for them.
    pub lr: f64,
}

impl Default for AdaptConfig {
    /// The settings `--adapt` takes when given nothing else (chosen on the
    /// training part's validation tail of the shared clips, see BENCHMARKS.md).
    fn default() -> Self {
        AdaptConfig {
            block: 4096,
            steps: 1,
            lr: 1e-4,
        }
    }
}

impl AdaptConfig {
    /// Refuse settings no adaptation can use, naming the option.
    pub fn validate(&self, seq_len: usize) -> Result<()> {
        if self.block == 0 {
            return Err(Error::config("--adapt-block must be at least 1"));
        }
        if self.steps == 0 {
            return Err(Error::config(
                "--adapt-steps must be at least 1 (without steps there is nothing to adapt)",
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::config("--adapt-lr must be a positive number"));
        }
        let lane = lane_len(seq_len, self.block);
        if !self.block.is_multiple_of(lane) {
            return Err(Error::config(format!(
                "--adapt-block {} must be a multiple of the model's seq-len {seq_len} (or at most it)",
                self.block
            )));
        }
        Ok(())
    }
}

/// Positions per training lane of a block.
fn lane_len(seq_len: usize, block: usize) -> usize {
    seq_len.clamp(1, block.max(1))
}

/// The predictions `[positions.len(), C]` (and, when `with_head`, the head's
/// raw output `[positions.len(), outputs]`) of `plan.positions`, adapting
/// after every block (see the module doc). `seq_len` and `burn_in` are the
/// model's training settings; the engine holds the signal and its targets
/// (and a location–scale head's bin widths), as for training.
pub fn adaptive_teacher_forced(
    engine: &mut dyn Engine,
    plan: &Plan,
    signal_frames: usize,
    with_head: bool,
    adapt: &AdaptConfig,
    burn_in: usize,
) -> Result<(Vec<f32>, Vec<f32>)> {
    adapt.validate(plan.seq_len)?;
    if !plan.carry {
        return Err(Error::config(
            "--adapt needs a model that carries its state (trained with --seq-len above 1 or --stateful)",
        ));
    }
    let (p0, p1) = (plan.positions.start, plan.positions.end);
    let (c, width, mut out, mut head_out) = zeroed_outputs(engine.model(), p1 - p0, with_head);
    if p1 == p0 {
        return Ok((out, head_out));
    }
    let initial = engine.state()?;
    let last_start = signal_frames.saturating_sub(2);
    let (mut pred, mut head) = (Vec::new(), Vec::new());
    // One lane, in order: warm-up first, its predictions dropped.
    let start = p0.saturating_sub(plan.warmup).max(plan.first_valid);
    let mut at = start;
    let mut carry = false;
    while at < p0 {
        let t = (p0 - at).min(plan.seq_len.max(256));
        let batch = Batch {
            starts: vec![at.min(last_start)],
            carry: vec![carry],
        };
        engine.predict(&batch, t, &mut pred)?;
        (at, carry) = (at + t, true);
    }
    let lane = lane_len(plan.seq_len, adapt.block);
    engine.set_burn_in(burn_in);
    while at < p1 {
        let t = adapt.block.min(p1 - at);
        let batch = Batch {
            starts: vec![at.min(last_start)],
            carry: vec![carry],
        };
        engine.predict_with_head(&batch, t, &mut pred, with_head.then_some(&mut head))?;
        let i = at - p0;
        out[i * c..(i + t) * c].copy_from_slice(&pred[..t * c]);
        if with_head {
            head_out[i * width..(i + t) * width].copy_from_slice(&head[..t * width]);
        }
        (at, carry) = (at + t, true);
        if at >= p1 {
            break;
        }
        // The block just predicted, [at − block, at), as lanes of `lane`
        // positions, each with `burn_in` positions of true past before it.
        let lanes = adapt.block / lane;
        let starts: Vec<usize> = (0..lanes)
            .map(|j| (at - adapt.block + j * lane).saturating_sub(burn_in))
            .collect();
        if starts.iter().any(|&s| s < plan.first_valid) {
            // Too near the song's start for a full context: predict on.
            continue;
        }
        let batch = Batch {
            carry: vec![false; starts.len()],
            starts,
        };
        for _ in 0..adapt.steps {
            engine.train_step(&batch, burn_in + lane, adapt.lr)?;
        }
        engine.take_stats(false)?;
    }
    engine.take_stats(true)?;
    engine.set_state(&initial)?;
    Ok((out, head_out))
}
