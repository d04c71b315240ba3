//! What the classic predictors reach on a dataset's validation parts: the
//! baselines a run's loss curves are drawn against (`loss_plot`), scored like
//! the model's validation loss, in sample units.

use crate::cascade::{self, CascadeConfig};
use crate::dataset::Dataset;
use crate::lpc::{self, LpcConfig};
use crate::metrics::ScoreSums;
use std::ops::Range;

/// The classic predictors' MSE (sample units) over the validation parts of
/// all songs of `dataset`, merged into one population like the model's
/// validation score: `(name, mse)` for next = current, linear, LPC-32 and
/// the cascade.
pub fn validation_baselines(dataset: &Dataset) -> Vec<(&'static str, f64)> {
    let c = dataset.channels;
    let mut sums = [ScoreSums::default(); 4];
    for s in &dataset.songs {
        // Each song on its own: no predictor reads across a song boundary.
        let x = &dataset.signal[s.offset * c..(s.offset + s.frames) * c];
        let v = s.valid_positions();
        let pos = v.start - s.offset..v.end - s.offset;
        if pos.is_empty() {
            continue;
        }
        let preds = [
            lpc::next_equals_current(x, c, pos.clone()),
            lpc::linear(x, c, pos.clone()),
            lpc::lpc(x, c, pos.clone(), &LpcConfig::standard(dataset.sample_rate)),
            cascade_normalized(x, c, pos.clone(), dataset.scale),
        ];
        for (sum, pred) in sums.iter_mut().zip(&preds) {
            sum.add(pred, x, c, pos.clone());
        }
    }
    if sums[0].score(dataset.scale).samples == 0 {
        return Vec::new();
    }
    let names = [
        "next = current",
        "linear extrapolation",
        "LPC-32",
        "cascade",
    ];
    names
        .into_iter()
        .zip(sums.iter().map(|s| s.score(dataset.scale).mse))
        .collect()
}

/// The default cascade's predictions of a normalized signal `x` (sample
/// units = `x · scale`), run in sample units as `evaluate` runs it.
fn cascade_normalized(x: &[f32], c: usize, pos: Range<usize>, scale: f32) -> Vec<f32> {
    let samples: Vec<f32> = x[..(pos.end + 1).min(x.len() / c) * c]
        .iter()
        .map(|v| v * scale)
        .collect();
    cascade::predict(&samples, c, pos, &CascadeConfig::default())
        .into_iter()
        .map(|v| v / scale)
        .collect()
}
