//! [`Engine`] on the CPU: the network of `cpu::network` in f32, on rayon.

use super::adam::{adam_step, clip_global_norm, AdamConfig};
use super::fast_step::FastStep;
use super::mulaw::{expected_value, softmax_xent_loss};
use super::network::{backward, forward, mse_loss, Workspace};
use crate::dataset::{gather, Batch};
use crate::engine::{check_batch, check_signals, Engine, StepStats, TrainState};
use crate::error::{Error, Result};
use crate::model::{ModelConfig, Output};

/// Threads of the free-running step: the units of a layer are split in
/// this many fixed parts. Two halves of a hidden-256 layer's weights fit in
/// two cores' L2 caches; every further part adds a cross-core handoff to a
/// step of about ten microseconds.
const FREE_STEP_THREADS: usize = 2;

pub struct CpuEngine {
    cfg: ModelConfig,
    adam: AdamConfig,
    params: Vec<f32>,
    grads: Vec<f32>,
    m: Vec<f32>,
    v: Vec<f32>,
    step: u64,
    signal: Vec<f32>,
    /// The target signal when it is not `signal` (empty: it is).
    targets: Vec<f32>,
    ws: Workspace<f32>,
    x: Vec<f32>,
    target: Vec<f32>,
    dpred: Vec<f32>,
    /// Carried state of training lanes and of inference lanes, `[L, B, H]`.
    train_carry: Carry,
    predict_carry: Carry,
    dh0: Vec<f32>,
    dc0: Vec<f32>,
    /// Per-distribution losses of the `mulaw` head (scratch).
    row_loss: Vec<f64>,
    /// The free step's packed weights and threads, built on the first
    /// `free_step` after the parameters last changed.
    fast_step: Option<FastStep>,
    /// Stats of the steps not yet taken.
    done: Vec<StepStats>,
}

#[derive(Default)]
struct Carry {
    h: Vec<f32>,
    c: Vec<f32>,
}

impl Carry {
    /// Make the state fit `b` lanes and zero the lanes that start afresh.
    fn prepare(&mut self, cfg: &ModelConfig, carry: &[bool]) {
        let (b, hn) = (carry.len(), cfg.hidden);
        let len = cfg.layers * b * hn;
        if self.h.len() != len {
            self.h = vec![0.0; len];
            self.c = vec![0.0; len];
        }
        for k in 0..cfg.layers {
            for (lane, &keep) in carry.iter().enumerate() {
                if !keep {
                    let r = (k * b + lane) * hn..(k * b + lane + 1) * hn;
                    self.h[r.clone()].fill(0.0);
                    self.c[r].fill(0.0);
                }
            }
        }
    }
}

impl CpuEngine {
    pub fn new(cfg: ModelConfig, adam: AdamConfig, params: Vec<f32>) -> Result<Self> {
        cfg.validate()?;
        let n = cfg.layout().total;
        if params.len() != n {
            return Err(Error::Other(format!(
                "expected {n} parameters, got {}",
                params.len()
            )));
        }
        Ok(CpuEngine {
            cfg,
            adam,
            grads: vec![0.0; n],
            m: vec![0.0; n],
            v: vec![0.0; n],
            params,
            step: 0,
            signal: Vec::new(),
            targets: Vec::new(),
            ws: Workspace::default(),
            x: Vec::new(),
            target: Vec::new(),
            dpred: Vec::new(),
            train_carry: Carry::default(),
            predict_carry: Carry::default(),
            dh0: Vec::new(),
            dc0: Vec::new(),
            row_loss: Vec::new(),
            fast_step: None,
            done: Vec::new(),
        })
    }
}

/// Which carried state a forward pass starts from.
#[derive(Clone, Copy)]
enum Lanes {
    Training,
    Inference,
}

impl CpuEngine {
    /// Gather the batch's windows and targets and run the forward pass from
    /// the carried state of `lanes` (zeroed where a lane starts afresh).
    fn forward_batch(&mut self, batch: &Batch, seq_len: usize, lanes: Lanes) -> Result<()> {
        check_batch(
            &self.cfg,
            self.signal.len() / self.cfg.channels,
            batch,
            seq_len,
        )?;
        let cfg = &self.cfg;
        let targets = if self.targets.is_empty() {
            &self.signal
        } else {
            &self.targets
        };
        gather(
            &self.signal,
            targets,
            cfg.channels,
            cfg.frame,
            &batch.starts,
            seq_len,
            &mut self.x,
            &mut self.target,
        );
        let carry = match lanes {
            Lanes::Training => &mut self.train_carry,
            Lanes::Inference => &mut self.predict_carry,
        };
        carry.prepare(cfg, &batch.carry);
        let b = batch.starts.len();
        forward(
            cfg,
            &self.params,
            seq_len,
            b,
            &self.x,
            &carry.h,
            &carry.c,
            &mut self.ws,
        );
        Ok(())
    }
}

impl Engine for CpuEngine {
    fn describe(&self) -> String {
        format!("cpu ({} threads)", rayon::current_num_threads())
    }

    fn model(&self) -> &ModelConfig {
        &self.cfg
    }

    fn set_signals(&mut self, signal: &[f32], targets: Option<&[f32]>) -> Result<()> {
        check_signals(&self.cfg, signal, targets)?;
        self.signal = signal.to_vec();
        self.targets = targets.map_or_else(Vec::new, <[f32]>::to_vec);
        Ok(())
    }

    fn train_step(&mut self, batch: &Batch, seq_len: usize, lr: f64) -> Result<()> {
        self.forward_batch(batch, seq_len, Lanes::Training)?;
        let loss = match self.cfg.output {
            Output::Mse => mse_loss(self.ws.prediction(), &self.target, &mut self.dpred),
            Output::Mulaw { scale } => softmax_xent_loss(
                self.ws.prediction(),
                &self.target,
                f64::from(scale),
                &mut self.dpred,
                &mut self.row_loss,
            ),
        };
        self.grads.fill(0.0);
        self.dh0.resize(self.train_carry.h.len(), 0.0);
        self.dc0.resize(self.train_carry.c.len(), 0.0);
        backward(
            &self.cfg,
            &self.params,
            &self.x,
            &self.dpred,
            &mut self.ws,
            &mut self.grads,
            &mut self.dh0,
            &mut self.dc0,
        );
        let grad_norm = clip_global_norm(&mut self.grads, self.adam.clip);
        if !loss.is_finite() || !grad_norm.is_finite() {
            return Err(Error::Other(format!(
                "training diverged at step {}: loss {loss}, gradient norm {grad_norm} (try a lower --lr or --clip 1)",
                self.step + 1
            )));
        }
        self.step += 1;
        self.fast_step = None;
        adam_step(
            &AdamConfig { lr, ..self.adam },
            self.step,
            &mut self.params,
            &self.grads,
            &mut self.m,
            &mut self.v,
        );
        // The state after the step's last timestep (computed with the
        // weights before the update, as the forward pass saw them).
        let carry = &mut self.train_carry;
        self.ws.final_state(&self.cfg, &mut carry.h, &mut carry.c);
        self.done.push(StepStats { loss, grad_norm });
        Ok(())
    }

    fn take_stats(&mut self, _force: bool) -> Result<Vec<StepStats>> {
        Ok(std::mem::take(&mut self.done))
    }

    fn predict(&mut self, batch: &Batch, seq_len: usize, out: &mut Vec<f32>) -> Result<()> {
        self.forward_batch(batch, seq_len, Lanes::Inference)?;
        match self.cfg.output {
            Output::Mse => {
                out.clear();
                out.extend_from_slice(self.ws.prediction());
            }
            Output::Mulaw { scale } => expected_value(self.ws.prediction(), f64::from(scale), out),
        }
        let carry = &mut self.predict_carry;
        self.ws.final_state(&self.cfg, &mut carry.h, &mut carry.c);
        Ok(())
    }

    fn free_step(&mut self, inputs: &[f32], fresh: bool, out: &mut Vec<f32>) -> Result<()> {
        let width = self.cfg.input_size();
        if inputs.is_empty() || !inputs.len().is_multiple_of(width) {
            return Err(Error::Other(format!(
                "free_step: {} inputs is not a whole number of {width}-sample windows",
                inputs.len()
            )));
        }
        let b = inputs.len() / width;
        let carry = &mut self.predict_carry;
        let len = self.cfg.layers * b * self.cfg.hidden;
        if carry.h.len() != len {
            carry.h.resize(len, 0.0);
            carry.c.resize(len, 0.0);
            carry.h.fill(0.0);
            carry.c.fill(0.0);
        } else if fresh {
            carry.h.fill(0.0);
            carry.c.fill(0.0);
        }
        let fast = self.fast_step.get_or_insert_with(|| {
            let threads = rayon::current_num_threads().min(FREE_STEP_THREADS);
            FastStep::new(&self.cfg, &self.params, threads)
        });
        let y = fast.step(b, inputs, &mut carry.h, &mut carry.c);
        out.clear();
        out.extend_from_slice(y);
        Ok(())
    }

    fn state(&self) -> Result<TrainState> {
        Ok(TrainState {
            params: self.params.clone(),
            adam_m: self.m.clone(),
            adam_v: self.v.clone(),
            step: self.step,
            carry_h: self.train_carry.h.clone(),
            carry_c: self.train_carry.c.clone(),
        })
    }

    fn set_state(&mut self, s: &TrainState) -> Result<()> {
        let n = self.params.len();
        if s.params.len() != n
            || s.adam_m.len() != n
            || s.adam_v.len() != n
            || s.carry_h.len() != s.carry_c.len()
        {
            return Err(Error::Other(
                "training state does not match the model".into(),
            ));
        }
        self.params.clone_from(&s.params);
        self.fast_step = None;
        self.m.clone_from(&s.adam_m);
        self.v.clone_from(&s.adam_v);
        self.step = s.step;
        self.train_carry.h.clone_from(&s.carry_h);
        self.train_carry.c.clone_from(&s.carry_c);
        Ok(())
    }
}
