//! The one interface the commands drive: a CPU and a GPU implementation.
//!
//! An engine owns the parameters, the optimizer state, the signal it reads
//! windows from, and the recurrent state it carries between steps. The
//! commands hand it batches (`dataset::Batch`: lane start positions and
//! carry flags) and read back losses, predictions, and, for checkpoints,
//! the whole training state.

use crate::dataset::Batch;
use crate::error::Result;
use crate::model::ModelConfig;

/// Everything a checkpoint must hold to continue training exactly.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainState {
    /// Flat parameters (layout in `model`).
    pub params: Vec<f32>,
    /// Adam's first and second moments, same layout.
    pub adam_m: Vec<f32>,
    pub adam_v: Vec<f32>,
    /// Adam updates done so far.
    pub step: u64,
    /// Recurrent state carried between stateful training steps, `[L, B, H]`
    /// each (empty when nothing is carried).
    pub carry_h: Vec<f32>,
    pub carry_c: Vec<f32>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepStats {
    /// The batch's loss before the update: mean squared error in model
    /// (normalized) units for the `mse` head, mean cross-entropy in nats per
    /// sample for the `mulaw` head, mean negative log-likelihood of the
    /// 16-bit sample in nats for the `laplace` head.
    pub loss: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
}

pub trait Engine {
    /// What runs the math, for the user ("cpu (2 threads)", an adapter name...).
    fn describe(&self) -> String;
    fn model(&self) -> &ModelConfig;
    /// The signal windows and targets are read from, `[N, C]` interleaved,
    /// normalized (a model that reads features takes `[N, W]` and targets,
    /// see [`check::check_signals`]).
    fn set_signal(&mut self, signal: &[f32]) -> Result<()> {
        self.set_signals(signal, None)
    }
    /// Windows from `signal`, targets from `targets` when given (`[N, C]`
    /// like `signal`: a residual the model learns instead of the signal,
    /// see `dataset`), else from `signal`.
    fn set_signals(&mut self, signal: &[f32], targets: Option<&[f32]>) -> Result<()> {
        self.set_signals_with_deltas(signal, targets, None)
    }
    /// [`Engine::set_signals`], and for a `laplace` head whose units follow
    /// a local gain (`--base cascade`) the width of every target's 16-bit bin
    /// in those units, `[N, C]` like the targets (positive, finite); without
    /// them every bin is `laplace::delta_for_scale` of the head's scale wide.
    fn set_signals_with_deltas(
        &mut self,
        signal: &[f32],
        targets: Option<&[f32]>,
        deltas: Option<&[f32]>,
    ) -> Result<()>;
    /// Forward, backward, clipping and one Adam update at learning rate `lr`
    /// on `batch` of `seq_len` timesteps. The carried training state is updated.
    /// The step's loss comes later, from [`Engine::take_stats`]: a GPU reads
    /// its losses back only every few steps.
    fn train_step(&mut self, batch: &Batch, seq_len: usize, lr: f64) -> Result<()>;
    /// Leave the first `steps` timesteps of every training lane that starts
    /// from a zero state (`carry` false) out of the loss: they are context
    /// (the loss burn-in, see `dataset`). 0, the default, counts them all.
    fn set_burn_in(&mut self, steps: usize);
    /// The stats of the steps done since the last call, oldest first: all of
    /// them when `force`, otherwise whatever the engine has at hand without
    /// waiting (possibly nothing). A step that diverged is an error here.
    fn take_stats(&mut self, force: bool) -> Result<Vec<StepStats>>;
    /// Teacher-forced predictions `[seq_len, B, C]` (normalized units) for
    /// `batch`, carrying an inference state of its own (training's carried
    /// state is not touched). A `mulaw` head's prediction is the expected
    /// value of its distribution (see `cpu::mulaw::expected_value`), a
    /// `laplace` head's its location.
    fn predict(&mut self, batch: &Batch, seq_len: usize, out: &mut Vec<f32>) -> Result<()> {
        self.predict_with_head(batch, seq_len, out, None)
    }
    /// [`Engine::predict`], and, when `head` is given, the head's raw output
    /// `[seq_len, B, outputs]` (`ModelConfig::outputs`) into it: what a
    /// distribution head's own likelihood of the signal is computed from.
    fn predict_with_head(
        &mut self,
        batch: &Batch,
        seq_len: usize,
        out: &mut Vec<f32>,
        head: Option<&mut Vec<f32>>,
    ) -> Result<()>;
    /// One free-running timestep of `B` inference lanes whose input windows
    /// are given, `inputs[B, frame·W]` (`W = ModelConfig::input_width`; normalized, oldest frame first),
    /// instead of read from the signal. Continues from the inference lanes'
    /// carried state (what [`Engine::predict`] left, or the previous
    /// `free_step`), or from zero when `fresh` or when `B` differs from the
    /// carried lane count, and carries the new state on. `out` receives the
    /// head's raw output `[B, outputs]` (`ModelConfig::outputs`): the next
    /// normalized sample per channel, a `mulaw` head's 256 logits per
    /// channel, or a `laplace` head's location and log-scale per channel,
    /// for the caller to sample from.
    fn free_step(&mut self, inputs: &[f32], fresh: bool, out: &mut Vec<f32>) -> Result<()>;
    fn state(&self) -> Result<TrainState>;
    fn set_state(&mut self, state: &TrainState) -> Result<()>;
}

pub mod check;
pub mod open;
