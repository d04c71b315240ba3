//! A training run on screen: a progress bar, and a line per epoch.

use crate::epoch_report::EpochReport;
use crate::loss_plot::LossPlot;
use crate::model::Output;
use crate::train::Event;
use indicatif::{ProgressBar, ProgressStyle};

pub(super) struct Progress {
    pub(super) bar: ProgressBar,
    steps_per_epoch: u64,
    pub(super) loss: Option<LossPlot>,
}

impl Progress {
    pub(super) fn new() -> Self {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ETA {eta}")
                .expect("static template")
                .progress_chars("=> "),
        );
        Progress {
            bar,
            steps_per_epoch: 1,
            loss: None,
        }
    }

    pub(super) fn event(&mut self, e: Event) {
        match e {
            Event::Start {
                steps_per_epoch,
                total_steps,
                done_steps,
            } => {
                self.steps_per_epoch = steps_per_epoch.max(1);
                self.bar.set_length(total_steps);
                self.bar.set_position(done_steps);
                self.bar.reset_eta();
            }
            Event::Step {
                epoch,
                step_in_epoch,
                global_step,
                loss,
                samples_per_sec,
            } => {
                self.bar.set_prefix(format!(
                    "epoch {epoch} step {step_in_epoch}/{}",
                    self.steps_per_epoch
                ));
                self.bar
                    .set_message(format!("loss {loss:.4} {samples_per_sec:.0} samples/s"));
                self.bar.set_position(global_step);
            }
            Event::Validating { epoch } => {
                self.bar.set_message(format!("validating epoch {epoch}..."))
            }
            Event::Epoch(r) => {
                let output = self.loss.as_ref().map_or(Output::Mse, |l| l.output);
                self.bar.suspend(|| print_epoch(r, output));
                if let Some(l) = &mut self.loss {
                    if let Err(e) = l.add(r) {
                        if !l.failed {
                            self.bar.suspend(|| eprintln!("warning: no loss plot: {e}"));
                        }
                        l.failed = true;
                    }
                }
            }
        }
    }
}

fn print_epoch(r: &EpochReport, output: Output) {
    let train = match output {
        Output::Mse => format!("train MSE {:.3e}", r.train_loss),
        Output::Mulaw { .. } => format!("train cross-entropy {:.4} nats", r.train_loss),
        Output::Laplace { .. } | Output::Logistic { .. } => {
            format!("train NLL {:.4} nats", r.train_loss)
        }
    };
    if r.valid.samples == 0 {
        println!(
            "epoch {:>3}: {train} | no validation part (--valid-fraction 0) | {:.0} samples/s",
            r.epoch, r.samples_per_sec
        );
        return;
    }
    println!(
        "epoch {:>3}: {train} | valid MSE {:.3e}, gain {:.2} dB (next = current: {:.2} dB) | {:.0} samples/s",
        r.epoch, r.valid.mse, r.valid.gain_db, r.valid.baseline_gain_db, r.samples_per_sec
    );
    if r.songs.len() > 1 {
        for s in &r.songs {
            println!(
                "           {}: gain {:.2} dB (next = current: {:.2} dB)",
                s.song, s.score.gain_db, s.score.baseline_gain_db
            );
        }
    }
}
