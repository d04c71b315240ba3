//! `loss.png` beside a run's checkpoint, redrawn after every epoch: the
//! training and validation loss, and the classic predictors' validation MSE.

use crate::baselines;
use crate::dataset::Dataset;
use crate::epoch_report::EpochReport;
use crate::error::Result;
use crate::model::Output;
use crate::plot::{self, EpochLoss};
use std::path::{Path, PathBuf};

pub struct LossPlot {
    path: PathBuf,
    history: Vec<EpochLoss>,
    /// The classic predictors' validation MSE: the levels the model must get below.
    baselines: Vec<(&'static str, f64)>,
    /// A plot that cannot be written is reported once and never stops training.
    pub failed: bool,
    pub output: Output,
}

impl LossPlot {
    /// The plot of a run writing `checkpoint`, with the epochs it has done.
    pub fn new(
        checkpoint: &Path,
        history: &[EpochReport],
        dataset: &Dataset,
        output: Output,
    ) -> Self {
        LossPlot {
            path: checkpoint.with_file_name("loss.png"),
            history: history.iter().map(|r| epoch_loss(r, output)).collect(),
            baselines: baselines::validation_baselines(dataset),
            failed: false,
            output,
        }
    }

    /// One more epoch, and the plot redrawn.
    pub fn add(&mut self, r: &EpochReport) -> Result<()> {
        self.history.push(epoch_loss(r, self.output));
        plot::loss_plot(&self.path, &self.history, &self.baselines)
    }
}

fn epoch_loss(r: &EpochReport, output: Output) -> EpochLoss {
    EpochLoss {
        epoch: r.epoch,
        // A distribution head's training loss is a cross-entropy or an NLL,
        // not an MSE: not on this axis.
        train_mse: match output {
            Output::Mse => r.train_loss,
            Output::Mulaw { .. } | Output::Laplace { .. } | Output::Logistic { .. } => f64::NAN,
        },
        valid_mse: r.valid.mse,
    }
}
