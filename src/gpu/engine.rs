//! [`Engine`] on a GPU through wgpu: the CPU engine's model and optimizer,
//! every op a WGSL kernel.
//!
//! Parameters, gradients, Adam's moments, activations, carried state and the
//! training audio stay on the device. Per training step the host writes the
//! lanes (start positions and carry flags, 8 bytes a lane) and four step
//! scalars, then submits one command buffer holding one compute pass. Losses
//! and gradient norms collect in a ring on the device and are read back
//! every `readback_every` steps (or when asked), weights only for checkpoints.

use super::arena::{Arena, CarryLayout};
use super::context::{describe, Gpu};
use super::kernels::Pipelines;
use super::program::{stats, Compiled, Path, Program};
use crate::cpu::adam::{AdamConfig, StepConstants};
use crate::dataset::Batch;
use crate::engine::{check_batch, check_signals, Engine, StepStats, TrainState};
use crate::error::{Error, Result};
use crate::model::ModelConfig;
use std::collections::HashMap;
use std::time::Instant;

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

/// Device time spent in one kernel over the profiled runs.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelTime {
    pub kernel: String,
    pub dispatches: usize,
    pub seconds: f64,
}

const USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_DST)
    .union(wgpu::BufferUsages::COPY_SRC);

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
        let n = cfg.layout().total;
        if params.len() != n {
            return Err(Error::Other(format!(
                "expected {n} parameters, got {}",
                params.len()
            )));
        }
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

    /// Refuse a buffer larger than the device can bind, naming the limit.
    fn check_size(&self, what: &str, elements: usize) -> Result<()> {
        let bytes = elements as u64 * 4;
        let l = &self.gpu.limits;
        let max = l.max_storage_buffer_binding_size.min(l.max_buffer_size);
        if bytes > max || elements > u32::MAX as usize {
            return Err(Error::config(format!(
                "{what} need {:.1} MiB on the GPU, more than {}'s max_storage_buffer_binding_size / max_buffer_size ({:.1} MiB)",
                bytes as f64 / (1 << 20) as f64,
                self.gpu.info.name,
                max as f64 / (1 << 20) as f64
            )));
        }
        Ok(())
    }

    fn create(&self, label: &str, elements: usize) -> Result<wgpu::Buffer> {
        self.check_size(label, elements)?;
        let scope = self
            .gpu
            .device
            .push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let b = buffer(&self.gpu, label, elements);
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Other(format!(
                "cannot allocate the {label} buffer ({} MiB) on the GPU: {e}",
                (elements * 4) >> 20
            )));
        }
        Ok(b)
    }

    /// Make the activation arena hold a (T, B) pass, refusing shapes the
    /// device cannot bind with the largest batch that would fit.
    fn ensure_acts(&mut self, t: usize, b: usize) -> Result<()> {
        // A matmul over all T·B rows runs in blocks of 16 rows, one grid row
        // of workgroups each; the sequence path runs a workgroup per lane.
        let max_groups = self.gpu.limits.max_compute_workgroups_per_dimension as usize;
        if (t * b).div_ceil(16) > max_groups || b > max_groups {
            return Err(Error::config(format!(
                "--seq-len {t} × --batch {b} = {} rows is more than {}'s max_compute_workgroups_per_dimension ({max_groups}) allows: at most {} rows",
                t * b,
                self.gpu.info.name,
                16 * max_groups
            )));
        }
        let need = Arena::new(&self.cfg, t, b).total;
        if need <= self.acts_cap {
            return Ok(());
        }
        if let Err(e) = self.check_size("the activations", need) {
            let fits = (1..b).rev().find(|&bb| {
                self.check_size("", Arena::new(&self.cfg, t, bb).total)
                    .is_ok()
            });
            return Err(Error::config(format!(
                "{e}; at --seq-len {t} the largest batch that fits is {}",
                fits.map(|f| f.to_string()).unwrap_or_else(|| "none".into())
            )));
        }
        self.acts = self.create("activations", need)?;
        self.acts_cap = need;
        self.storage = None;
        Ok(())
    }

    fn ensure_lanes(&mut self, b: usize) -> Result<()> {
        if b > self.lanes_cap {
            self.lanes = self.create("lanes", 2 * b)?;
            self.lanes_cap = b;
            self.storage = None;
        }
        if b > self.carry_layout.lanes {
            let old = self.carry_layout;
            let new = CarryLayout::new(&self.cfg, b);
            let buf = self.create("carried state", new.total())?;
            let mut enc = self.gpu.device.create_command_encoder(&Default::default());
            let per = |lanes: usize| (self.cfg.layers * lanes * self.cfg.hidden * 4) as u64;
            for (from, to, lanes) in [
                (old.train_h(), new.train_h(), self.train_lanes),
                (old.train_c(), new.train_c(), self.train_lanes),
                (old.predict_h(), new.predict_h(), self.predict_lanes),
                (old.predict_c(), new.predict_c(), self.predict_lanes),
            ] {
                if lanes > 0 {
                    enc.copy_buffer_to_buffer(
                        &self.carry,
                        (from * 4) as u64,
                        &buf,
                        (to * 4) as u64,
                        per(lanes),
                    );
                }
            }
            self.gpu.queue.submit([enc.finish()]);
            self.carry = buf;
            self.carry_layout = new;
            self.storage = None;
            // Programs hold carry offsets.
            self.programs.clear();
        }
        Ok(())
    }

    fn storage(&mut self) -> &wgpu::BindGroup {
        if self.storage.is_none() {
            let buffers = [
                &self.params,
                &self.grads,
                &self.moments,
                &self.acts,
                &self.signal,
                &self.lanes,
                &self.stats,
                &self.carry,
            ];
            let entries: Vec<wgpu::BindGroupEntry> = buffers
                .iter()
                .enumerate()
                .map(|(i, b)| wgpu::BindGroupEntry {
                    binding: i as u32,
                    resource: b.as_entire_binding(),
                })
                .collect();
            self.storage = Some(
                self.gpu
                    .device
                    .create_bind_group(&wgpu::BindGroupDescriptor {
                        label: Some("storage"),
                        layout: &self.pipes.storage_layout,
                        entries: &entries,
                    }),
            );
        }
        self.storage.as_ref().expect("just made")
    }

    fn build(&self, key: Key) -> Program {
        let cfg = &self.cfg;
        let ar = Arena::new(cfg, key.t, key.b);
        let mut p = Program::default();
        let predict = matches!(key.mode, Mode::Predict | Mode::PredictTiming | Mode::Free);
        if key.mode != Mode::Free {
            p.gather(cfg, &ar, self.frames, self.targets_at);
        }
        p.state(cfg, &ar, &self.carry_layout, predict, false);
        p.forward(cfg, &ar, key.path, key.fresh);
        match key.mode {
            Mode::Train | Mode::TrainTiming => {
                p.loss(cfg, &ar, self.burn_in);
                p.backward(cfg, &ar, key.path);
                if key.mode == Mode::Train {
                    p.update(&self.adam, self.n, &ar, self.ring);
                    p.state(cfg, &ar, &self.carry_layout, false, true);
                }
            }
            Mode::Predict => {
                p.expected(cfg, &ar);
                p.state(cfg, &ar, &self.carry_layout, true, true);
            }
            Mode::PredictTiming => p.expected(cfg, &ar),
            Mode::Free => p.state(cfg, &ar, &self.carry_layout, true, true),
        }
        p
    }

    /// Record `key`'s program into one compute pass and submit it.
    fn run(&mut self, key: Key) -> Result<()> {
        if !self.programs.contains_key(&key) {
            let compiled = Compiled::new(&self.gpu, &self.pipes, &self.build(key));
            self.programs.insert(key, compiled);
        }
        if self.profiling && self.gpu.timestamps {
            return self.run_profiled(key);
        }
        let prog = self.programs.remove(&key).expect("compiled above");
        let result = self.submit(&prog);
        self.programs.insert(key, prog);
        result
    }

    /// Record a compiled program into one compute pass and submit it.
    fn submit(&mut self, prog: &Compiled) -> Result<()> {
        self.storage();
        let storage = self.storage.as_ref().expect("made above");
        prog.submit(&self.gpu, &self.pipes, storage);
        self.gpu.check()
    }

    /// The same program with every dispatch in a compute pass of its own,
    /// timestamped at its start and end (WebGPU's portable timestamps are
    /// per pass). Adds each kernel's device time to the profile; waits.
    fn run_profiled(&mut self, key: Key) -> Result<()> {
        self.storage();
        let storage = self.storage.as_ref().expect("made above");
        let prog = &self.programs[&key];
        let dev = &self.gpu.device;
        let per_set = (wgpu::QUERY_SET_MAX_QUERIES / 2) as usize;
        let mut times = Vec::with_capacity(prog.dispatches.len());
        for chunk in prog.dispatches.chunks(per_set) {
            let count = 2 * chunk.len() as u32;
            let set = dev.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("kernel timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count,
            });
            let resolved = dev.create_buffer(&wgpu::BufferDescriptor {
                label: Some("timestamps"),
                size: u64::from(count) * 8,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let mut enc = dev.create_command_encoder(&Default::default());
            for (i, &(kernel, offset, [x, y, z])) in chunk.iter().enumerate() {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("profiled"),
                    timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                        query_set: &set,
                        beginning_of_pass_write_index: Some(2 * i as u32),
                        end_of_pass_write_index: Some(2 * i as u32 + 1),
                    }),
                });
                pass.set_bind_group(0, storage, &[]);
                pass.set_pipeline(self.pipes.get(kernel));
                pass.set_bind_group(1, &prog.bind, &[offset]);
                pass.dispatch_workgroups(x, y, z);
            }
            enc.resolve_query_set(&set, 0..count, &resolved, 0);
            self.gpu.queue.submit([enc.finish()]);
            let raw = self.gpu.read_f32(&resolved, 0, 2 * count as usize)?;
            let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&raw);
            let period = f64::from(self.gpu.queue.get_timestamp_period()) * 1e-9;
            for (i, &(kernel, _, _)) in chunk.iter().enumerate() {
                let dt = ticks[2 * i + 1].saturating_sub(ticks[2 * i]) as f64 * period;
                times.push((kernel, dt));
            }
        }
        for (kernel, dt) in times {
            let name = kernel.name();
            match self.profile.iter_mut().find(|k| k.kernel == name) {
                Some(k) => {
                    k.dispatches += 1;
                    k.seconds += dt;
                }
                None => self.profile.push(KernelTime {
                    kernel: name,
                    dispatches: 1,
                    seconds: dt,
                }),
            }
        }
        self.gpu.check()
    }

    /// Time every kernel of the following steps (when the adapter has
    /// timestamp queries; `false` when it has not). Profiled steps run one
    /// pass per dispatch and wait, so they are slower than plain steps.
    pub fn set_profiling(&mut self, on: bool) -> bool {
        self.profiling = on;
        self.profile.clear();
        self.gpu.timestamps
    }

    /// Device time per kernel since profiling was switched on, largest first.
    pub fn profile(&self) -> Vec<KernelTime> {
        let mut p = self.profile.clone();
        p.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
        p
    }

    /// Which recurrence path a training shape runs (after its first step).
    pub fn path(&self, t: usize, b: usize) -> Option<Path> {
        match self.path_choice {
            PathChoice::Fixed(p) => Some(p),
            PathChoice::Auto if !Path::Sequence.fits(&self.cfg) => Some(Path::Step),
            PathChoice::Auto => self.paths.get(&(t, b, false)).copied(),
        }
    }

    /// Number of dispatches of one training step at this shape.
    pub fn dispatches_per_step(&mut self, t: usize, b: usize, fresh: bool) -> usize {
        let path = self
            .paths
            .get(&(t, b, false))
            .copied()
            .unwrap_or(Path::Step);
        self.build(Key {
            t,
            b,
            mode: Mode::Train,
            path,
            fresh,
        })
        .dispatches
        .len()
    }

    /// Shapes, lane data and the carried state's size, for a pass of `batch`.
    fn prepare(&mut self, batch: &Batch, seq_len: usize, predict: bool) -> Result<()> {
        check_batch(&self.cfg, self.frames, batch, seq_len)?;
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

    /// The path for a shape: fixed, or timed once (forward and backward for
    /// training, forward for inference) and remembered.
    fn path_for(&mut self, t: usize, b: usize, predict: bool, fresh: bool) -> Result<Path> {
        let fixed = match self.path_choice {
            PathChoice::Fixed(p) => Some(p),
            PathChoice::Auto if !Path::Sequence.fits(&self.cfg) => Some(Path::Step),
            PathChoice::Auto => None,
        };
        if let Some(p) = fixed {
            return Ok(p);
        }
        if let Some(&p) = self.paths.get(&(t, b, predict)) {
            return Ok(p);
        }
        let mode = if predict {
            Mode::PredictTiming
        } else {
            Mode::TrainTiming
        };
        // The timing runs write a loss into the ring slot of the last step:
        // hand over the ring first.
        self.flush()?;
        let mut best = (f64::INFINITY, Path::Step);
        for path in [Path::Step, Path::Sequence] {
            let key = Key {
                t,
                b,
                mode,
                path,
                fresh,
            };
            // The first run compiles the kernels; time the second.
            self.run(key)?;
            self.gpu.wait()?;
            let started = Instant::now();
            self.run(key)?;
            self.gpu.wait()?;
            let took = started.elapsed().as_secs_f64();
            if took < best.0 {
                best = (took, path);
            }
            self.programs.remove(&key);
        }
        if !predict {
            // The timing runs left gradients behind; Adam expects zeros.
            let mut enc = self.gpu.device.create_command_encoder(&Default::default());
            enc.clear_buffer(&self.grads, 0, None);
            self.gpu.queue.submit([enc.finish()]);
        }
        self.paths.insert((t, b, predict), best.1);
        Ok(best.1)
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

fn buffer(gpu: &Gpu, label: &str, elements: usize) -> wgpu::Buffer {
    gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: (elements.max(1) * 4) as u64,
        usage: USAGE,
        mapped_at_creation: false,
    })
}

impl Engine for GpuEngine {
    fn describe(&self) -> String {
        format!("gpu: {}", describe(&self.gpu.info))
    }

    fn model(&self) -> &ModelConfig {
        &self.cfg
    }

    fn set_signals(&mut self, signal: &[f32], targets: Option<&[f32]>) -> Result<()> {
        check_signals(&self.cfg, signal, targets)?;
        let len = signal.len() + targets.map_or(0, <[f32]>::len);
        self.signal = self.create("audio", len)?;
        let queue = &self.gpu.queue;
        queue.write_buffer(&self.signal, 0, bytemuck::cast_slice(signal));
        if let Some(t) = targets {
            queue.write_buffer(
                &self.signal,
                (4 * signal.len()) as u64,
                bytemuck::cast_slice(t),
            );
        }
        self.targets_at = if targets.is_some() { signal.len() } else { 0 };
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
        let width = self.cfg.input_size();
        if inputs.is_empty() || !inputs.len().is_multiple_of(width) {
            return Err(Error::Other(format!(
                "free_step: {} inputs is not a whole number of {width}-sample windows",
                inputs.len()
            )));
        }
        let b = inputs.len() / width;
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
        if s.params.len() != n
            || s.adam_m.len() != n
            || s.adam_v.len() != n
            || s.carry_h.len() != s.carry_c.len()
            || !s.carry_h.len().is_multiple_of(lane_size)
        {
            return Err(Error::Other(
                "training state does not match the model".into(),
            ));
        }
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
