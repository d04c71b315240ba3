//! The training loop: epochs of batches, validation after each, and a
//! checkpoint written atomically at every epoch's end (and where a run stops).
//!
//! Nothing here prints: progress goes out through the `on_event` callback.

use crate::checkpoint::{self, Checkpoint, Cursor};
use crate::dataset::{DataConfig, Dataset};
use crate::engine::{Engine, StepStats, TrainState};
use crate::epoch_report::{EpochReport, SongScore};
use crate::error::{Error, Result};
use crate::metrics::{Score, ScoreSums};
use crate::model::Output;
use crate::predict::{teacher_forced, Plan};
use crate::run_config::{check_plan, RunConfig};
use std::path::Path;
use std::time::Instant;

pub enum Event<'a> {
    Start {
        steps_per_epoch: u64,
        total_steps: u64,
        done_steps: u64,
    },
    /// One or more steps done (an engine may report several at once).
    Step {
        epoch: u64,
        step_in_epoch: u64,
        global_step: u64,
        loss: f64,
        samples_per_sec: f64,
    },
    Validating {
        epoch: u64,
    },
    Epoch(&'a EpochReport),
}

/// Warm-up of each inference lane before its segment (see `predict`): 50 ms
/// of audio or four training sequences, whichever is longer.
pub fn warmup_frames(sample_rate: u32, seq_len: usize) -> usize {
    ((sample_rate as f64 * 0.05) as usize).max(4 * seq_len)
}
/// Inference lanes at most.
pub const MAX_LANES: usize = 32;

/// Validation scores of every song of `dataset` (on `engine`'s current
/// weights, with `dataset.signal` set on it), and over all songs together.
/// A residual model's outputs are added back to the LPC prediction first, so
/// the scores are of the prediction of the signal either way.
pub fn validate(
    engine: &mut dyn Engine,
    dataset: &Dataset,
    dc: &DataConfig,
) -> Result<(Score, Vec<SongScore>)> {
    let (seq_len, dc_stateful) = (dc.seq_len, dc.stateful);
    let mut per_song = Vec::new();
    let mut all = ScoreSums::default();
    for s in &dataset.songs {
        let positions = s.valid_positions();
        if positions.is_empty() {
            continue;
        }
        let plan = Plan {
            positions: positions.clone(),
            first_valid: s.offset + engine.model().frame - 1,
            seq_len,
            warmup: warmup_frames(dataset.sample_rate, seq_len),
            max_lanes: MAX_LANES,
            carry: Plan::carries_state(dc_stateful, seq_len),
        };
        let mut pred = teacher_forced(engine, &plan, dataset.frames())?;
        if let Some(r) = &dataset.residual {
            r.restore(&mut pred, positions.clone());
        }
        if let Some(h) = &dataset.hybrid {
            h.restore(&mut pred, &dataset.signal, positions.clone(), true);
        }
        let mut sums = ScoreSums::default();
        sums.add(&pred, &dataset.signal, dataset.channels, positions);
        all.merge(&sums);
        per_song.push(SongScore {
            song: s.path.display().to_string(),
            score: sums.score(dataset.scale),
        });
    }
    let all = all.score(dataset.scale);
    if all.samples == 0 {
        return Ok((Score::default(), per_song));
    }
    Ok((all, per_song))
}

/// Where a state went wrong: the first parameter group (named as in the
/// checkpoint) holding a NaN or an infinity.
fn non_finite_group(cfg: &RunConfig, state: &TrainState) -> Option<String> {
    let layout = cfg.model.layout();
    layout.entries.iter().find_map(|e| {
        let r = e.offset..e.offset + e.len;
        let bad = |v: &[f32]| {
            v.get(r.clone())
                .is_some_and(|v| v.iter().any(|x| !x.is_finite()))
        };
        if bad(&state.params) {
            Some(format!("`{}`", e.name))
        } else if bad(&state.adam_m) || bad(&state.adam_v) {
            Some(format!("Adam's moments of `{}`", e.name))
        } else {
            None
        }
    })
}

/// The parameter group whose weights reach furthest from zero, and how far.
fn largest_group(cfg: &RunConfig, state: &TrainState) -> Option<(String, f32)> {
    let layout = cfg.model.layout();
    layout
        .entries
        .iter()
        .filter_map(|e| {
            let w = state.params.get(e.offset..e.offset + e.len)?;
            Some((e.name.clone(), w.iter().fold(0.0f32, |m, x| m.max(x.abs()))))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

/// Name the parameter group in an engine's divergence error: the group that
/// went non-finite, or else the one whose weights grew largest.
fn name_the_group(e: Error, engine: &dyn Engine, cfg: &RunConfig) -> Error {
    let Error::Other(msg) = &e else { return e };
    if !msg.starts_with("training diverged") {
        return e;
    }
    let Ok(state) = engine.state() else { return e };
    let what = match non_finite_group(cfg, &state) {
        Some(group) => format!("{group} holds a non-finite value"),
        None => match largest_group(cfg, &state) {
            Some((name, m)) => format!("the largest weights are in `{name}`, |w| up to {m:e}"),
            None => return e,
        },
    };
    Error::Other(format!("{msg}; {what}"))
}

/// Train from `cursor` until `cfg.epochs` epochs are done or the run has
/// made `max_steps` steps in all. Writes `out` after each epoch.
#[allow(clippy::too_many_arguments)]
pub fn train(
    engine: &mut dyn Engine,
    dataset: &Dataset,
    cfg: &RunConfig,
    mut cursor: Cursor,
    mut history: Vec<EpochReport>,
    max_steps: Option<u64>,
    out: &Path,
    on_event: &mut dyn FnMut(Event),
) -> Result<Vec<EpochReport>> {
    let dc = &cfg.data;
    cfg.validate()?;
    check_plan(None, max_steps)?;
    let deltas = cfg.model.output.law().and_then(|_| dataset.target_deltas());
    engine.set_signals_with_deltas(dataset.inputs(), dataset.targets(), deltas.as_deref())?;
    engine.set_burn_in(dc.burn_in);
    let steps_per_epoch = dataset.steps_per_epoch(dc) as u64;
    let total = cfg
        .epochs
        .saturating_mul(steps_per_epoch)
        .min(max_steps.unwrap_or(u64::MAX));
    if cursor.epoch >= cfg.epochs || cursor.global_step >= total {
        return Err(Error::config(format!(
            "nothing to train: the run has done {} epoch(s) and {} step(s), all that --epochs {} and --max-steps {} ask for (raise one of them to go on)",
            cursor.epoch,
            cursor.global_step,
            cfg.epochs,
            max_steps.map_or_else(|| "(none)".to_string(), |m| m.to_string())
        )));
    }
    on_event(Event::Start {
        steps_per_epoch,
        total_steps: total,
        done_steps: cursor.global_step,
    });
    while cursor.epoch < cfg.epochs && cursor.global_step < total {
        let batches = dataset.epoch_batches(dc, cfg.seed, cursor.epoch)?;
        let started = Instant::now();
        let (mut loss_sum, mut steps) = (0.0f64, 0u64);
        let samples_per_step = (dc.batch * dc.seq_len) as f64;
        let mut step_event =
            |stats: Vec<StepStats>, steps: &mut u64, loss_sum: &mut f64, cursor: &Cursor| {
                if let Some(last) = stats.last() {
                    *steps += stats.len() as u64;
                    *loss_sum += stats.iter().map(|s| s.loss).sum::<f64>();
                    on_event(Event::Step {
                        epoch: cursor.epoch + 1,
                        step_in_epoch: cursor.step_in_epoch,
                        global_step: cursor.global_step,
                        loss: last.loss,
                        samples_per_sec: *steps as f64 * samples_per_step
                            / started.elapsed().as_secs_f64(),
                    });
                }
            };
        for batch in &batches[cursor.step_in_epoch as usize..] {
            if cursor.global_step >= total {
                break;
            }
            engine
                .train_step(batch, dc.seq_len, cfg.lr_at(cursor.global_step))
                .map_err(|e| name_the_group(e, engine, cfg))?;
            cursor.step_in_epoch += 1;
            cursor.global_step += 1;
            let stats = engine
                .take_stats(false)
                .map_err(|e| name_the_group(e, engine, cfg))?;
            step_event(stats, &mut steps, &mut loss_sum, &cursor);
        }
        let stats = engine
            .take_stats(true)
            .map_err(|e| name_the_group(e, engine, cfg))?;
        step_event(stats, &mut steps, &mut loss_sum, &cursor);
        // The engines check each step's loss and gradient before its update,
        // so the last update of a run is checked here, after it: weights it
        // made non-finite must never replace the last good checkpoint.
        let state = engine.state()?;
        if let Some(group) = non_finite_group(cfg, &state) {
            return Err(Error::Other(format!(
                "training diverged at step {}: {group} holds a non-finite value after the update (try a lower --lr or --clip 1); {} was not overwritten",
                cursor.global_step,
                out.display()
            )));
        }
        let elapsed = started.elapsed().as_secs_f64();
        on_event(Event::Validating {
            epoch: cursor.epoch + 1,
        });
        let (valid, songs) = validate(engine, dataset, dc)?;
        let report = EpochReport {
            epoch: cursor.epoch + 1,
            steps,
            train_loss: match cfg.model.output {
                Output::Mse => loss_sum / steps.max(1) as f64 * (cfg.output_scale() as f64).powi(2),
                Output::Mulaw { .. } | Output::Laplace { .. } | Output::Logistic { .. } => {
                    loss_sum / steps.max(1) as f64
                }
            },
            valid,
            songs,
            samples_per_sec: steps as f64 * samples_per_step / elapsed.max(1e-9),
        };
        if cursor.step_in_epoch as usize >= batches.len() {
            cursor.epoch += 1;
            cursor.step_in_epoch = 0;
        }
        history.push(report);
        checkpoint::save(
            out,
            &Checkpoint {
                config: cfg.clone(),
                state,
                cursor,
                history: history.clone(),
            },
        )?;
        on_event(Event::Epoch(history.last().expect("just pushed")));
    }
    Ok(history)
}
