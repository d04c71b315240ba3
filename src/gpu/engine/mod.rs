//! [`Engine`] on a GPU through wgpu: the CPU engine's model and optimizer,
//! every op a WGSL kernel.
//!
//! Parameters, gradients, Adam's moments, activations, carried state and the
//! training audio stay on the device. Per training step the host writes the
//! lanes (start positions and carry flags, 8 bytes a lane) and four step
//! scalars, then submits one command buffer holding one compute pass. Losses
//! and gradient norms collect in a ring on the device and are read back
//! every `readback_every` steps (or when asked), weights only for checkpoints.

mod buffers;
mod profile;
mod programs;

pub use profile::KernelTime;

use super::arena::{Arena, CarryLayout};
use super::compiled::Compiled;
use super::context::{describe, Gpu};
use super::kernels::Pipelines;
use super::program::{stats, Path};
use crate::dataset::Batch;
use crate::engine::{check, Engine, StepStats, TrainState};
use crate::error::{Error, Result};
use crate::model::ModelConfig;
use crate::optim::{AdamConfig, StepConstants};
use buffers::buffer;
use std::collections::HashMap;

/// How the recurrence is run (see [`Path`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathChoice {
    /// Time both paths on the first step of each shape and keep the faster.
    Auto,
    Fixed(Path),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Mode {
    Train,
    Predict,
    /// Forward and backward only, for choosing a path (no update, no state saved).
    TrainTiming,
    PredictTiming,
    /// One timestep of the inference lanes from inputs the host wrote into
    /// the arena's `x` (no gather), carrying the inference state.
    Free,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key {
    t: usize,
    b: usize,
    mode: Mode,
    path: Path,
    /// Every lane starts from zero state.
    fresh: bool,
}

pub struct GpuEngine {
    gpu: Gpu,
    pipes: Pipelines,
    cfg: ModelConfig,
    adam: AdamConfig,
    n: usize,
    params: wgpu::Buffer,
    grads: wgpu::Buffer,
    moments: wgpu::Buffer,
    stats: wgpu::Buffer,
    /// The signal `[N, C]`, then the target signal when it is not the signal.
    signal: wgpu::Buffer,
    frames: usize,
    /// Element offset of the target signal in `signal` (0: the signal itself).
    targets_at: usize,
    /// Element offset of a location–scale head's per-target bin widths (0: none).
    deltas_at: usize,
    lanes: wgpu::Buffer,
    lanes_cap: usize,
    acts: wgpu::Buffer,
    acts_cap: usize,
    carry: wgpu::Buffer,
    carry_layout: CarryLayout,
    /// Lanes of the carried training and inference states (0: none yet).
    train_lanes: usize,
    predict_lanes: usize,
    storage: Option<wgpu::BindGroup>,
    programs: HashMap<Key, Compiled>,
    paths: HashMap<(usize, usize, bool), Path>,
    path_choice: PathChoice,
    ring: usize,
    /// Loss burn-in timesteps (see `Engine::set_burn_in`).
    burn_in: usize,
    pending: usize,
    step: u64,
    done: Vec<StepStats>,
    /// Per-kernel timing of the next `run`s, when asked for (see [`GpuEngine::profile`]).
    profiling: bool,
    profile: Vec<KernelTime>,
}

impl GpuEngine {
    /// `readback_every`: steps between reads of the loss ring (at least 1).
    pub fn new(
        gpu: Gpu,
        cfg: ModelConfig,
        adam: AdamConfig,
        params: Vec<f32>,
        path_choice: PathChoice,
        readback_every: usize,
    ) -> Result<Self> {
        cfg.validate()?;
        check::check_params(&cfg, &params)?;
        let n = cfg.layout().total;
        if let PathChoice::Fixed(p) = path_choice {
            if !p.fits(&cfg) {
                return Err(Error::config(format!(
                    "the sequence path holds at most {} hidden units (--hidden {})",
                    super::program::SEQ_MAX_H_BACKWARD,
                    cfg.hidden
                )));
            }
        }
        let pipes = Pipelines::new(&gpu.device)?;
        let ring = readback_every.max(1);
        let mut e = GpuEngine {
            params: buffer(&gpu, "params", 0),
            grads: buffer(&gpu, "grads", 0),
            moments: buffer(&gpu, "moments", 0),
            stats: buffer(&gpu, "stats", 0),
            signal: buffer(&gpu, "signal", 0),
            lanes: buffer(&gpu, "lanes", 0),
            acts: buffer(&gpu, "acts", 0),
            carry: buffer(&gpu, "carry", 0),
            frames: 0,
            targets_at: 0,
            deltas_at: 0,
            lanes_cap: 0,
            acts_cap: 0,
            carry_layout: CarryLayout::new(&cfg, 0),
            train_lanes: 0,
            predict_lanes: 0,
            storage: None,
            programs: HashMap::new(),
            paths: HashMap::new(),
            path_choice,
            ring,
            burn_in: 0,
            pending: 0,
            step: 0,
            done: Vec::new(),
            profiling: false,
            profile: Vec::new(),
            pipes,
            cfg,
            adam,
            n,
            gpu,
        };
        e.check_size("the parameters", 2 * n)?;
        e.params = e.create("params", n)?;
        e.grads = e.create("grads", n)?;
        e.moments = e.create("moments", 2 * n)?;
        e.stats = e.create("stats", stats::len(ring))?;
        e.gpu
            .queue
            .write_buffer(&e.params, 0, bytemuck::cast_slice(&params));
        e.gpu.check()?;
        Ok(e)
    }

    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Shapes, lane data and the carried state's size, for a pass of `batch`.
    fn prepare(&mut self, batch: &Batch, seq_len: usize, predict: bool) -> Result<()> {
        check::check_batch(&self.cfg, self.frames, batch, seq_len)?;
        let mut data: Vec<u32> = batch.starts.iter().map(|&s| s as u32).collect();
        data.extend(batch.carry.iter().map(|&c| u32::from(c)));
        self.prepare_lanes(seq_len, &data, predict)
    }

    /// Room for a (T, B) pass, the carried state of `B` lanes (zeroed when
    /// the lane count changes, as on the CPU), and the lane data
    /// (`[B]` starts then `[B]` carry flags).
    fn prepare_lanes(&mut self, seq_len: usize, data: &[u32], predict: bool) -> Result<()> {
        let b = data.len() / 2;
        self.ensure_acts(seq_len, b)?;
        self.ensure_lanes(b)?;
        // A different lane count starts the carried state afresh, as on the CPU.
        let (lanes, h) = if predict {
            (&mut self.predict_lanes, self.carry_layout.predict_h())
        } else {
            (&mut self.train_lanes, self.carry_layout.train_h())
        };
        if *lanes != b {
            *lanes = b;
            let per = self.carry_layout.per_tensor;
            let mut enc = self.gpu.device.create_command_encoder(&Default::default());
            enc.clear_buffer(&self.carry, (h * 4) as u64, Some((2 * per * 4) as u64));
            self.gpu.queue.submit([enc.finish()]);
        }
        self.gpu
            .queue
            .write_buffer(&self.lanes, 0, bytemuck::cast_slice(data));
        Ok(())
    }

    /// Read the loss ring back and check that every step stayed finite.
    fn flush(&mut self) -> Result<()> {
        if self.pending == 0 {
            return Ok(());
        }
        let ring = self.gpu.read_f32(&self.stats, stats::LOSS, 2 * self.ring)?;
        let first = self.step - self.pending as u64;
        for i in 0..self.pending {
            let (loss, grad_norm) = (ring[i] as f64, ring[self.ring + i] as f64);
            if !loss.is_finite() || !grad_norm.is_finite() {
                self.pending = 0;
                return Err(Error::Other(format!(
                    "training diverged at step {}: loss {loss}, gradient norm {grad_norm} (try a lower --lr or --clip 1)",
                    first + i as u64 + 1
                )));
            }
            self.done.push(StepStats { loss, grad_norm });
        }
        self.pending = 0;
        Ok(())
    }
}

impl Engine for GpuEngine {
    fn describe(&self) -> String {
        format!("gpu: {}", describe(&self.gpu.info))
    }

    fn model(&self) -> &ModelConfig {
        &self.cfg
    }

    fn set_signals_with_deltas(
        &mut self,
        signal: &[f32],
        targets: Option<&[f32]>,
        deltas: Option<&[f32]>,
    ) -> Result<()> {
        check::check_signals(&self.cfg, signal, targets, deltas)?;
        let len = signal.len() + targets.map_or(0, <[f32]>::len) + deltas.map_or(0, <[f32]>::len);
        self.signal = self.create("audio", len)?;
        let queue = &self.gpu.queue;
        queue.write_buffer(&self.signal, 0, bytemuck::cast_slice(signal));
        // The target signal, then the bin widths, after the signal.
        let mut at = signal.len();
        for (v, offset) in [
            (targets, &mut self.targets_at),
            (deltas, &mut self.deltas_at),
        ] {
            *offset = 0;
            if let Some(v) = v {
                queue.write_buffer(&self.signal, (4 * at) as u64, bytemuck::cast_slice(v));
                *offset = at;
                at += v.len();
            }
        }
        self.frames = signal.len() / self.cfg.input_width();
        self.storage = None;
        // Programs hold the signal's length.
        self.programs.clear();
        self.gpu.check()
    }

    fn train_step(&mut self, batch: &Batch, seq_len: usize, lr: f64) -> Result<()> {
        if self.pending == self.ring {
            self.flush()?;
        }
        self.prepare(batch, seq_len, false)?;
        let b = batch.starts.len();
        let fresh = batch.carry.iter().all(|c| !c);
        let path = self.path_for(seq_len, b, false, fresh)?;
        let k = StepConstants::new(&AdamConfig { lr, ..self.adam }, self.step + 1);
        let scalars = [
            k.step_size,
            k.bias_correction2_sqrt,
            k.decay,
            self.pending as f32,
        ];
        self.gpu
            .queue
            .write_buffer(&self.stats, 0, bytemuck::cast_slice(&scalars));
        self.run(Key {
            t: seq_len,
            b,
            mode: Mode::Train,
            path,
            fresh,
        })?;
        self.step += 1;
        self.pending += 1;
        Ok(())
    }

    fn take_stats(&mut self, force: bool) -> Result<Vec<StepStats>> {
        if force || self.pending == self.ring {
            self.flush()?;
        }
        Ok(std::mem::take(&mut self.done))
    }

    fn set_burn_in(&mut self, steps: usize) {
        if steps != self.burn_in {
            self.burn_in = steps;
            // Training programs hold it.
            self.programs.clear();
        }
    }

    fn predict_with_head(
        &mut self,
        batch: &Batch,
        seq_len: usize,
        out: &mut Vec<f32>,
        head: Option<&mut Vec<f32>>,
    ) -> Result<()> {
        self.prepare(batch, seq_len, true)?;
        let b = batch.starts.len();
        let fresh = batch.carry.iter().all(|c| !c);
        let path = self.path_for(seq_len, b, true, fresh)?;
        self.run(Key {
            t: seq_len,
            b,
            mode: Mode::Predict,
            path,
            fresh,
        })?;
        let ar = Arena::new(&self.cfg, seq_len, b);
        *out = self
            .gpu
            .read_f32(&self.acts, ar.point, seq_len * b * self.cfg.channels)?;
        if let Some(head) = head {
            *head = self.gpu.read_f32(
                &self.acts,
                ar.prediction(),
                seq_len * b * self.cfg.outputs(),
            )?;
        }
        Ok(())
    }

    /// One submission and one read-back per timestep: on a GPU, free running
    /// is bound by that round trip, not by the arithmetic.
    fn free_step(&mut self, inputs: &[f32], fresh: bool, out: &mut Vec<f32>) -> Result<()> {
        let b = check::check_free_step(&self.cfg, inputs)?;
        let mut data = vec![0u32; b];
        data.extend(std::iter::repeat_n(u32::from(!fresh), b));
        self.prepare_lanes(1, &data, true)?;
        let ar = Arena::new(&self.cfg, 1, b);
        self.gpu
            .queue
            .write_buffer(&self.acts, (ar.x * 4) as u64, bytemuck::cast_slice(inputs));
        self.run(Key {
            t: 1,
            b,
            mode: Mode::Free,
            path: Path::Step,
            fresh,
        })?;
        *out = self
            .gpu
            .read_f32(&self.acts, ar.prediction(), b * self.cfg.outputs())?;
        Ok(())
    }

    fn state(&self) -> Result<TrainState> {
        let moments = self.gpu.read_f32(&self.moments, 0, 2 * self.n)?;
        let per = self.cfg.layers * self.train_lanes * self.cfg.hidden;
        let cl = &self.carry_layout;
        Ok(TrainState {
            params: self.gpu.read_f32(&self.params, 0, self.n)?,
            adam_m: moments[..self.n].to_vec(),
            adam_v: moments[self.n..].to_vec(),
            step: self.step,
            carry_h: self.gpu.read_f32(&self.carry, cl.train_h(), per)?,
            carry_c: self.gpu.read_f32(&self.carry, cl.train_c(), per)?,
        })
    }

    fn set_state(&mut self, s: &TrainState) -> Result<()> {
        let n = self.n;
        let lane_size = self.cfg.layers * self.cfg.hidden;
        check::check_state(&self.cfg, s)?;
        self.ensure_lanes(s.carry_h.len() / lane_size)?;
        let q = &self.gpu.queue;
        q.write_buffer(&self.params, 0, bytemuck::cast_slice(&s.params));
        q.write_buffer(&self.moments, 0, bytemuck::cast_slice(&s.adam_m));
        q.write_buffer(
            &self.moments,
            (n * 4) as u64,
            bytemuck::cast_slice(&s.adam_v),
        );
        self.step = s.step;
        let lanes = s.carry_h.len() / lane_size;
        self.train_lanes = lanes;
        if lanes > 0 {
            // [L, B, H] with B = lanes, as the carry buffer holds it.
            let cl = self.carry_layout;
            q.write_buffer(
                &self.carry,
                (cl.train_h() * 4) as u64,
                bytemuck::cast_slice(&s.carry_h),
            );
            q.write_buffer(
                &self.carry,
                (cl.train_c() * 4) as u64,
                bytemuck::cast_slice(&s.carry_c),
            );
        }
        self.gpu.check()
    }
}
