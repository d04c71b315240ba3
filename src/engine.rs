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
    /// Mean squared error of the batch in model (normalized) units, before the update.
    pub loss: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
}

pub trait Engine {
    /// What runs the math, for the user ("cpu (2 threads)", an adapter name...).
    fn describe(&self) -> String;
    fn model(&self) -> &ModelConfig;
    /// The signal windows are read from, `[N, C]` interleaved, normalized.
    fn set_signal(&mut self, signal: &[f32]) -> Result<()>;
    /// Forward, backward, clipping and one Adam update at learning rate `lr`
    /// on `batch` of `seq_len` timesteps. The carried training state is updated.
    /// The step's loss comes later, from [`Engine::take_stats`]: a GPU reads
    /// its losses back only every few steps.
    fn train_step(&mut self, batch: &Batch, seq_len: usize, lr: f64) -> Result<()>;
    /// The stats of the steps done since the last call, oldest first: all of
    /// them when `force`, otherwise whatever the engine has at hand without
    /// waiting (possibly nothing). A step that diverged is an error here.
    fn take_stats(&mut self, force: bool) -> Result<Vec<StepStats>>;
    /// Teacher-forced predictions `[seq_len, B, C]` (normalized units) for
    /// `batch`, carrying an inference state of its own (training's carried
    /// state is not touched).
    fn predict(&mut self, batch: &Batch, seq_len: usize, out: &mut Vec<f32>) -> Result<()>;
    fn state(&self) -> Result<TrainState>;
    fn set_state(&mut self, state: &TrainState) -> Result<()>;
}
