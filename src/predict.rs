//! Teacher-forced one-step prediction of a stretch of signal: every
//! timestep is fed the true past and predicts the next sample.
//!
//! A long stretch runs as parallel lanes (a batch) so an engine is busy:
//! the stretch is cut into up to `max_lanes` segments, and each lane starts
//! `warmup` positions before its segment from a zero state, feeding the true
//! signal and discarding its predictions until it reaches the segment. The
//! first lane starts at the stretch's start (or earlier, when there is past
//! to warm up on). With `warmup` longer than the model's memory this is the
//! same as one pass over the whole stretch.
//!
//! A model trained with seq-len 1 and no carried state (the original
//! notebook's setting) has never seen a non-zero state: for it `carry` is
//! off and every timestep starts from zero, exactly as in training.

use crate::dataset::Batch;
use crate::engine::Engine;
use crate::error::Result;
use crate::model::ModelConfig;
use std::ops::Range;

pub struct Plan {
    /// Predict the targets of these positions.
    pub positions: Range<usize>,
    /// The first position with a full window (lanes never start before it).
    pub first_valid: usize,
    pub seq_len: usize,
    pub warmup: usize,
    pub max_lanes: usize,
    /// Carry the state from one chunk of a lane to the next.
    pub carry: bool,
}

impl Plan {
    /// Whether a model trained with these settings should carry its state at inference.
    pub fn carries_state(stateful: bool, seq_len: usize) -> bool {
        stateful || seq_len > 1
    }

    /// The lanes `positions` is cut into, each `(start, s0, s1)`: the lane
    /// runs from `start` and keeps its predictions of `s0..s1` (non-empty);
    /// `start` is `warmup` before `s0` when the state is carried, never
    /// before `first_valid`. Segments are at least twice the warm-up (or the
    /// sequence length), so at most a third of the work is warm-up.
    fn segments(&self) -> Vec<(usize, usize, usize)> {
        let (p0, p1) = (self.positions.start, self.positions.end);
        let n = p1 - p0;
        if n == 0 {
            return Vec::new();
        }
        let warmup = if self.carry { self.warmup } else { 0 };
        let lanes = (n / (2 * warmup.max(self.seq_len))).clamp(1, self.max_lanes.max(1));
        let seg = n.div_ceil(lanes);
        (0..lanes)
            .map(|k| {
                let s0 = p0 + k * seg;
                let s1 = (s0 + seg).min(p1);
                (s0.saturating_sub(warmup).max(self.first_valid), s0, s1)
            })
            .filter(|&(_, s0, s1)| s0 < s1)
            .collect()
    }
}

/// Predictions `[positions.len(), C]` in normalized units, from the signal
/// already set on `engine`: the model's outputs, which for a residual model
/// are still to be added to the LPC prediction (`residual`).
pub fn teacher_forced(
    engine: &mut dyn Engine,
    plan: &Plan,
    signal_frames: usize,
) -> Result<Vec<f32>> {
    Ok(run(engine, plan, signal_frames, false)?.0)
}

/// [`teacher_forced`], and the head's raw output at every position,
/// `[positions.len(), outputs]` (`ModelConfig::outputs`): what a
/// distribution head's likelihood of the signal is read from.
pub fn teacher_forced_with_head(
    engine: &mut dyn Engine,
    plan: &Plan,
    signal_frames: usize,
) -> Result<(Vec<f32>, Vec<f32>)> {
    run(engine, plan, signal_frames, true)
}

/// `model`'s channels `C` and head width (0 without `with_head`), and
/// zeroed predictions `[n, C]` and head outputs `[n, width]` for `n` positions.
pub(crate) fn zeroed_outputs(
    model: &ModelConfig,
    n: usize,
    with_head: bool,
) -> (usize, usize, Vec<f32>, Vec<f32>) {
    let (c, width) = (model.channels, if with_head { model.outputs() } else { 0 });
    (c, width, vec![0.0; n * c], vec![0.0; n * width])
}

fn run(
    engine: &mut dyn Engine,
    plan: &Plan,
    signal_frames: usize,
    with_head: bool,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let p0 = plan.positions.start;
    let (c, width, mut out, mut head_out) =
        zeroed_outputs(engine.model(), plan.positions.len(), with_head);
    if plan.positions.is_empty() {
        return Ok((out, head_out));
    }
    let segs = plan.segments();
    let longest = segs
        .iter()
        .map(|&(start, _, s1)| s1 - start)
        .max()
        .unwrap_or(0);
    // With the state carried, chunk length changes nothing but the number of
    // engine calls: keep chunks long. Without it, chunks are training's sequences.
    let t = if plan.carry {
        plan.seq_len.max(256)
    } else {
        plan.seq_len
    };
    let last_start = signal_frames.saturating_sub(2);
    let (mut pred, mut head) = (Vec::new(), Vec::new());
    for i in 0..longest.div_ceil(t) {
        let batch = Batch {
            starts: segs
                .iter()
                .map(|&(start, _, _)| (start + i * t).min(last_start))
                .collect(),
            carry: vec![plan.carry && i > 0; segs.len()],
        };
        engine.predict_with_head(&batch, t, &mut pred, with_head.then_some(&mut head))?;
        let b = segs.len();
        for step in 0..t {
            for (lane, &(start, s0, s1)) in segs.iter().enumerate() {
                let p = start + i * t + step;
                if (s0..s1).contains(&p) {
                    let src = (step * b + lane) * c;
                    out[(p - p0) * c..(p - p0 + 1) * c].copy_from_slice(&pred[src..src + c]);
                    if with_head {
                        let (src, dst) = ((step * b + lane) * width, (p - p0) * width);
                        head_out[dst..dst + width].copy_from_slice(&head[src..src + width]);
                    }
                }
            }
        }
    }
    Ok((out, head_out))
}

/// The head's raw outputs (`ModelConfig::outputs` per position: a `mulaw`
/// head's logits) for the targets of `plan.positions`, teacher-forced from
/// `signal` (`[N, C]`, normalized, the signal [`teacher_forced`] reads):
/// `each(p, outputs)` is called for every position `p` in order within each
/// lane. The lanes, warm-up and carrying are [`teacher_forced`]'s, stepped
/// one timestep at a time through `Engine::free_step` with the true windows
/// as inputs, because `Engine::predict` returns point predictions only.
pub fn teacher_forced_outputs(
    engine: &mut dyn Engine,
    plan: &Plan,
    signal: &[f32],
    mut each: impl FnMut(usize, &[f32]),
) -> Result<()> {
    let model = engine.model().clone();
    let (c, frame, outputs) = (model.channels, model.frame, model.outputs());
    let segs = plan.segments();
    if segs.is_empty() {
        return Ok(());
    }
    let longest = segs.iter().map(|&(a, _, s1)| s1 - a).max().unwrap_or(0);
    let w = frame * c;
    let mut inputs = vec![0.0f32; segs.len() * w];
    let mut out = Vec::new();
    for step in 0..longest {
        for (lane, &(start, _, s1)) in segs.iter().enumerate() {
            // A lane past its end repeats its last window; its outputs are dropped.
            let p = (start + step).min(s1 - 1);
            inputs[lane * w..(lane + 1) * w]
                .copy_from_slice(&signal[(p + 1 - frame) * c..(p + 1) * c]);
        }
        engine.free_step(&inputs, step == 0 || !plan.carry, &mut out)?;
        for (lane, &(start, s0, s1)) in segs.iter().enumerate() {
            let p = start + step;
            if (s0..s1).contains(&p) {
                each(p, &out[lane * outputs..(lane + 1) * outputs]);
            }
        }
    }
    Ok(())
}
