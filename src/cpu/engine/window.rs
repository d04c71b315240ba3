//! The engine's training step of windows without memory
//! (`cpu::window_step`, seq-len 1 from a zero state): the step itself, the
//! carried state it leaves, and the `W_hh` it lets Adam skip.

use super::{diverged, Carry, CpuEngine};
use crate::cpu::adam::{adam_step_halves, clip_over};
use crate::cpu::window_step::TwoPartStep;
use crate::dataset::Batch;
use crate::engine::StepStats;
use crate::error::Result;
use crate::model::{ModelConfig, ParamLayout};
use crate::optim::AdamConfig;
use std::ops::Range;

/// Threads of the window step (`cpu::window_step::TwoPartStep`): it cuts a
/// batch in two parts.
const WINDOW_STEP_THREADS: usize = 2;

/// Every layer's `W_hh` as a range of the flat buffer, in order.
pub(super) fn recurrent_ranges(cfg: &ModelConfig, layout: &ParamLayout) -> Vec<Range<usize>> {
    let len = 4 * cfg.hidden * cfg.hidden;
    layout.lstm.iter().map(|l| l.w_hh..l.w_hh + len).collect()
}

/// The ranges of `0..total` between the (ordered) `holes`.
pub(super) fn complement(holes: &[Range<usize>], total: usize) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut from = 0;
    for h in holes {
        ranges.push(from..h.start);
        from = h.end;
    }
    ranges.push(from..total);
    ranges.retain(|r| !r.is_empty());
    ranges
}

impl CpuEngine {
    /// Copy the last window step's final state into `train_carry`.
    pub(super) fn settle_window_carry(&mut self) {
        if std::mem::take(&mut self.window_carry) {
            let window = self.window.as_ref().expect("a window step was taken");
            window_state(&self.cfg, window, &mut self.train_carry);
        }
    }

    /// A training step of windows without memory (see `cpu::window_step`).
    pub(super) fn train_window_step(&mut self, batch: &Batch, lr: f64) -> Result<()> {
        self.gather_batch(batch, 1)?;
        let window = self.window.get_or_insert_with(|| {
            TwoPartStep::new(rayon::current_num_threads().min(WINDOW_STEP_THREADS))
        });
        window.forward(&self.cfg, &self.layout, &self.params, &self.x);
        self.loss_carry.clone_from(&batch.carry);
        let loss = self.loss(true);
        let window = self.window.as_mut().expect("made above");
        window.backward(
            &self.cfg,
            &self.layout,
            &self.params,
            &self.dpred,
            &mut self.grads,
            &self.non_recurrent,
        );
        let skip_recurrent = self.recurrent_idle && self.adam.weight_decay == 0.0;
        if !skip_recurrent {
            // Zero, not left from an earlier step: Adam reads them.
            for r in &self.recurrent {
                self.grads[r.clone()].fill(0.0);
            }
            self.recurrent_idle = false;
        }
        // The W_hh gradients are zero and add nothing to the norm.
        let grad_norm = clip_over(&mut self.grads, &self.non_recurrent, self.adam.clip);
        if !loss.is_finite() || !grad_norm.is_finite() {
            return Err(diverged(self.step + 1, loss, grad_norm));
        }
        self.step += 1;
        self.fast_step = None;
        let adam = AdamConfig { lr, ..self.adam };
        let whole = std::slice::from_ref(&self.all_params);
        let ranges = if skip_recurrent {
            &self.non_recurrent[..]
        } else {
            whole
        };
        let window = self.window.as_ref().expect("made above");
        adam_step_halves(
            &adam,
            self.step,
            ranges,
            &mut self.params,
            &self.grads,
            &mut self.m,
            &mut self.v,
            |job| window.run_halves(job),
        );
        self.window_carry = true;
        self.done.push(StepStats { loss, grad_norm });
        Ok(())
    }
}

/// `carry` sized for the window step's last batch and holding its final state.
pub(super) fn window_state(cfg: &ModelConfig, window: &TwoPartStep, carry: &mut Carry) {
    let len = cfg.layers * window.batch() * cfg.hidden;
    carry.h.resize(len, 0.0);
    carry.c.resize(len, 0.0);
    window.final_state(cfg, &mut carry.h, &mut carry.c);
}
