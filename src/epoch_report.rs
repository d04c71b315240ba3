//! What an epoch of training achieved. Every checkpoint stores the run's
//! history of them ([`crate::checkpoint`]); the training loop
//! ([`crate::train`]) writes one per epoch.

use crate::metrics::Score;
use serde::{Deserialize, Serialize};

/// One song's validation figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SongScore {
    pub song: String,
    pub score: Score,
}

/// What one epoch (or the part of it a run did) achieved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochReport {
    /// Epoch number from 1.
    pub epoch: u64,
    pub steps: u64,
    /// Mean training loss over the epoch's steps: MSE in sample units for
    /// the `mse` head, cross-entropy in nats per sample for the `mulaw` head,
    /// negative log-likelihood in nats per sample for the `laplace` head.
    /// Stored under its first name, `train_mse`, so checkpoints keep their bytes.
    #[serde(rename = "train_mse")]
    pub train_loss: f64,
    /// Over all validation samples of all songs. A run without a validation
    /// part (`--valid-fraction 0`) has none: `valid.samples` is 0 and the
    /// other figures are 0, not scores (a gain of 0/0 would be NaN, which a
    /// checkpoint cannot hold).
    pub valid: Score,
    pub songs: Vec<SongScore>,
    /// Wall-clock throughput: shown, never stored, so checkpoints stay reproducible.
    #[serde(skip)]
    pub samples_per_sec: f64,
}
