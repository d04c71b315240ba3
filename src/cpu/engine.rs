//! [`Engine`] on the CPU: the network of `cpu::network` in f32, on rayon.

use super::adam::{adam_step, clip_global_norm};
use super::fast_step::FastStep;
use super::law_nll::{law_nll_loss, location, Delta};
use super::lstm::Pass;
use super::mulaw::{expected_value, softmax_xent_loss_masked};
use super::network::{backward, forward, mse_loss_masked, BurnIn, Workspace};
use super::window_step::{self, TwoPartStep};
use crate::dataset::{gather, gather_targets, Batch};
use crate::engine::{check, Engine, StepStats, TrainState};
use crate::error::{Error, Result};
use crate::model::{ModelConfig, Output, ParamLayout};
use crate::optim::AdamConfig;
use std::ops::Range;
use window::{complement, recurrent_ranges, window_state};

mod window;

/// Threads of the free-running step: the units of a layer are split in
/// this many fixed parts. Two halves of a hidden-256 layer's weights fit in
/// two cores' L2 caches; every further part adds a cross-core handoff to a
/// step of about ten microseconds.
const FREE_STEP_THREADS: usize = 2;

pub struct CpuEngine {
    cfg: ModelConfig,
    layout: ParamLayout,
    adam: AdamConfig,
    params: Vec<f32>,
    grads: Vec<f32>,
    m: Vec<f32>,
    v: Vec<f32>,
    step: u64,
    signal: Vec<f32>,
    /// The target signal when it is not `signal` (empty: it is).
    targets: Vec<f32>,
    /// Per-target 16-bit bin widths `[N, C]` of a `laplace` head (empty:
    /// one width from its scale), and the batch's, `[T, B, C]`.
    deltas: Vec<f32>,
    delta: Vec<f32>,
    ws: Workspace<f32>,
    x: Vec<f32>,
    target: Vec<f32>,
    dpred: Vec<f32>,
    /// Carried state of training lanes and of inference lanes, `[L, B, H]`.
    train_carry: Carry,
    predict_carry: Carry,
    dh0: Vec<f32>,
    dc0: Vec<f32>,
    /// Per-distribution losses of a distribution head (scratch).
    row_loss: Vec<f64>,
    /// Leading timesteps of a zero-state training lane the loss leaves out.
    burn_in: usize,
    /// The carry flags of the batch the loss is taken on.
    loss_carry: Vec<bool>,
    /// The free step's packed weights and threads, built on the first
    /// `free_step` after the parameters last changed.
    fast_step: Option<FastStep>,
    /// The step of windows without memory (seq-len 1 from a zero state),
    /// made on the first such step.
    window: Option<TwoPartStep>,
    /// The last training step was `window`'s: the carried training state is
    /// its final state, not yet copied into `train_carry`.
    window_carry: bool,
    /// Adam's moments of every `W_hh` are exactly zero. Then, as long as
    /// the gradients of `W_hh` are zero too (window steps) and there is no
    /// weight decay, Adam leaves `W_hh` and its moments exactly as they are
    /// (`m = v = 0` gives an update of `0 / (0 + ε)`), so window steps skip
    /// them: at the seed preset they are most of the parameters.
    recurrent_idle: bool,
    /// Every layer's `W_hh`, and the parameters other than those, as
    /// ranges of the flat buffer.
    recurrent: Vec<Range<usize>>,
    non_recurrent: Vec<Range<usize>>,
    all_params: Range<usize>,
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
        check::check_params(&cfg, &params)?;
        let n = params.len();
        let layout = cfg.layout();
        let recurrent = recurrent_ranges(&cfg, &layout);
        Ok(CpuEngine {
            non_recurrent: complement(&recurrent, layout.total),
            recurrent,
            all_params: 0..layout.total,
            layout,
            cfg,
            adam,
            grads: vec![0.0; n],
            m: vec![0.0; n],
            v: vec![0.0; n],
            params,
            step: 0,
            signal: Vec::new(),
            targets: Vec::new(),
            deltas: Vec::new(),
            delta: Vec::new(),
            ws: Workspace::default(),
            x: Vec::new(),
            target: Vec::new(),
            dpred: Vec::new(),
            train_carry: Carry::default(),
            predict_carry: Carry::default(),
            dh0: Vec::new(),
            dc0: Vec::new(),
            row_loss: Vec::new(),
            burn_in: 0,
            loss_carry: Vec::new(),
            fast_step: None,
            window: None,
            window_carry: false,
            recurrent_idle: true,
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
    /// Check the batch and gather its windows into `x` and targets into `target`.
    fn gather_batch(&mut self, batch: &Batch, seq_len: usize) -> Result<()> {
        let cfg = &self.cfg;
        check::check_batch(cfg, self.signal.len() / cfg.input_width(), batch, seq_len)?;
        let targets = if self.targets.is_empty() {
            &self.signal
        } else {
            &self.targets
        };
        gather(
            &self.signal,
            targets,
            cfg.channels,
            cfg.input_width(),
            cfg.frame,
            &batch.starts,
            seq_len,
            &mut self.x,
            &mut self.target,
        );
        if !self.deltas.is_empty() {
            gather_targets(
                &self.deltas,
                cfg.channels,
                &batch.starts,
                seq_len,
                &mut self.delta,
            );
        }
        Ok(())
    }

    /// Gather the batch's windows and targets and run the forward pass from
    /// the carried state of `lanes` (zeroed where a lane starts afresh).
    fn forward_batch(&mut self, batch: &Batch, seq_len: usize, lanes: Lanes) -> Result<()> {
        self.gather_batch(batch, seq_len)?;
        if matches!(lanes, Lanes::Training) {
            self.settle_window_carry();
        }
        let cfg = &self.cfg;
        let carry = match lanes {
            Lanes::Training => &mut self.train_carry,
            Lanes::Inference => &mut self.predict_carry,
        };
        carry.prepare(cfg, &batch.carry);
        let b = batch.starts.len();
        self.ws.pass = match lanes {
            Lanes::Training => Pass::Training,
            Lanes::Inference => Pass::Inference,
        };
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

    /// The loss of the predictions `pred` against `self.target`, its gradient
    /// into `self.dpred`.
    fn loss(&mut self, pred_of_window: bool) -> f64 {
        let pred = if pred_of_window {
            self.window.as_ref().expect("a window step").prediction()
        } else {
            self.ws.prediction()
        };
        let burn_in = BurnIn {
            steps: self.burn_in,
            carry: &self.loss_carry,
        };
        let c = self.cfg.channels;
        match self.cfg.output {
            Output::Mse => mse_loss_masked(pred, &self.target, c, burn_in, &mut self.dpred),
            Output::Mulaw { scale } => softmax_xent_loss_masked(
                pred,
                &self.target,
                f64::from(scale),
                c,
                burn_in,
                &mut self.dpred,
                &mut self.row_loss,
            ),
            Output::Laplace { scale } | Output::Logistic { scale } => law_nll_loss(
                self.cfg.output.law().expect("a location–scale head").0,
                pred,
                &self.target,
                if self.deltas.is_empty() {
                    Delta::Uniform(crate::laplace::delta_for_scale(f64::from(scale)))
                } else {
                    Delta::PerTarget(&self.delta)
                },
                c,
                burn_in,
                &mut self.dpred,
                &mut self.row_loss,
            ),
        }
    }
}

fn diverged(step: u64, loss: f64, grad_norm: f64) -> Error {
    Error::Other(format!(
        "training diverged at step {step}: loss {loss}, gradient norm {grad_norm} (try a lower --lr or --clip 1)"
    ))
}

impl Engine for CpuEngine {
    fn describe(&self) -> String {
        format!(
            "cpu ({} threads, {})",
            rayon::current_num_threads(),
            super::isa::isa().name()
        )
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
        self.signal = signal.to_vec();
        self.targets = targets.map_or_else(Vec::new, <[f32]>::to_vec);
        self.deltas = deltas.map_or_else(Vec::new, <[f32]>::to_vec);
        Ok(())
    }

    fn train_step(&mut self, batch: &Batch, seq_len: usize, lr: f64) -> Result<()> {
        if window_step::applies(seq_len, &batch.carry) {
            return self.train_window_step(batch, lr);
        }
        self.forward_batch(batch, seq_len, Lanes::Training)?;
        self.loss_carry.clone_from(&batch.carry);
        let loss = self.loss(false);
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
            return Err(diverged(self.step + 1, loss, grad_norm));
        }
        self.step += 1;
        self.recurrent_idle = false;
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

    fn set_burn_in(&mut self, steps: usize) {
        self.burn_in = steps;
    }

    fn predict_with_head(
        &mut self,
        batch: &Batch,
        seq_len: usize,
        out: &mut Vec<f32>,
        head: Option<&mut Vec<f32>>,
    ) -> Result<()> {
        self.forward_batch(batch, seq_len, Lanes::Inference)?;
        match self.cfg.output {
            Output::Mse => {
                out.clear();
                out.extend_from_slice(self.ws.prediction());
            }
            Output::Mulaw { scale } => expected_value(self.ws.prediction(), f64::from(scale), out),
            Output::Laplace { .. } | Output::Logistic { .. } => location(self.ws.prediction(), out),
        }
        if let Some(head) = head {
            head.clear();
            head.extend_from_slice(self.ws.prediction());
        }
        let carry = &mut self.predict_carry;
        self.ws.final_state(&self.cfg, &mut carry.h, &mut carry.c);
        Ok(())
    }

    fn free_step(&mut self, inputs: &[f32], fresh: bool, out: &mut Vec<f32>) -> Result<()> {
        let b = check::check_free_step(&self.cfg, inputs)?;
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
        let mut carry = Carry::default();
        let carry = if self.window_carry {
            let window = self.window.as_ref().expect("a window step was taken");
            window_state(&self.cfg, window, &mut carry);
            &carry
        } else {
            &self.train_carry
        };
        Ok(TrainState {
            params: self.params.clone(),
            adam_m: self.m.clone(),
            adam_v: self.v.clone(),
            step: self.step,
            carry_h: carry.h.clone(),
            carry_c: carry.c.clone(),
        })
    }

    fn set_state(&mut self, s: &TrainState) -> Result<()> {
        check::check_state(&self.cfg, s)?;
        self.params.clone_from(&s.params);
        self.fast_step = None;
        self.m.clone_from(&s.adam_m);
        self.v.clone_from(&s.adam_v);
        self.step = s.step;
        self.train_carry.h.clone_from(&s.carry_h);
        self.train_carry.c.clone_from(&s.carry_c);
        self.window_carry = false;
        self.recurrent_idle = self.recurrent.iter().all(|r| {
            self.m[r.clone()]
                .iter()
                .chain(&self.v[r.clone()])
                .all(|&x| x == 0.0)
        });
        Ok(())
    }
}
