//! The dynamic-evaluation options `eval` and `predict` share (see `crate::adapt`).

use crate::adapt::AdaptConfig;
use clap::Args;

#[derive(Args, Debug, Default)]
pub(super) struct AdaptArgs {
    /// Dynamic evaluation: after predicting each block of --adapt-block
    /// samples, take --adapt-steps Adam steps on it (strictly causal: a
    /// prediction only ever uses weights trained on the samples before its
    /// block). The weights are put back after every song.
    #[arg(long)]
    adapt: bool,
    /// Samples per block: a multiple of the model's --seq-len, or at most it [default: 4096].
    #[arg(long, requires = "adapt")]
    adapt_block: Option<usize>,
    /// Adam steps on each block once it is predicted [default: 1].
    #[arg(long, requires = "adapt")]
    adapt_steps: Option<usize>,
    /// Their learning rate, constant [default: 1e-4].
    #[arg(long, requires = "adapt")]
    adapt_lr: Option<f64>,
}

impl AdaptArgs {
    /// The adaptation asked for, or None without --adapt.
    pub(super) fn config(&self) -> Option<AdaptConfig> {
        let d = AdaptConfig::default();
        self.adapt.then(|| AdaptConfig {
            block: self.adapt_block.unwrap_or(d.block),
            steps: self.adapt_steps.unwrap_or(d.steps),
            lr: self.adapt_lr.unwrap_or(d.lr),
        })
    }
}
