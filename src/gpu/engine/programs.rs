//! Building, caching and running the engine's programs, and choosing the
//! recurrence path of each shape by timing both.

use super::{GpuEngine, Key, Mode, PathChoice};
use crate::error::Result;
use crate::gpu::arena::Arena;
use crate::gpu::compiled::Compiled;
use crate::gpu::program::{Path, Program};
use std::time::Instant;

impl GpuEngine {
    pub(super) fn build(&self, key: Key) -> Program {
        let cfg = &self.cfg;
        let ar = Arena::new(cfg, key.t, key.b);
        let mut p = Program::default();
        let predict = matches!(key.mode, Mode::Predict | Mode::PredictTiming | Mode::Free);
        if key.mode != Mode::Free {
            p.gather(cfg, &ar, self.frames, self.targets_at, self.deltas_at);
        }
        p.state(cfg, &ar, &self.carry_layout, predict, false);
        p.forward(cfg, &ar, key.path, key.fresh);
        match key.mode {
            Mode::Train | Mode::TrainTiming => {
                p.loss(cfg, &ar, self.burn_in, self.deltas_at != 0);
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
    pub(super) fn run(&mut self, key: Key) -> Result<()> {
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
    pub(super) fn submit(&mut self, prog: &Compiled) -> Result<()> {
        self.storage();
        let storage = self.storage.as_ref().expect("made above");
        prog.submit(&self.gpu, &self.pipes, storage);
        self.gpu.check()
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

    /// The path for a shape: fixed, or timed once (forward and backward for
    /// training, forward for inference) and remembered.
    pub(super) fn path_for(
        &mut self,
        t: usize,
        b: usize,
        predict: bool,
        fresh: bool,
    ) -> Result<Path> {
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
}
