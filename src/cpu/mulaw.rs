//! The `mulaw` head's loss and point prediction on the CPU.
//!
//! Layout: the head's output `logits[R, C·256]` (R = T·B rows, channel `ch`'s
//! 256 logits at `ch·256`), targets `[R, C]` in model (normalized) units,
//! `scale` the dataset's normalization (audio = model units · scale). The
//! target class of a sample is `mulaw::encode(target · scale)`.
//!
//! Loss: the mean over all `N = R·C` distributions of the softmax
//! cross-entropy `−log softmax(z)[k] = logsumexp(z) − z_k`, with logsumexp
//! taken around the largest logit so no `exp` overflows; its gradient is
//! `(softmax(z) − onehot(k)) / N`.
//!
//! `softmax_xent_reference` is the same loss as the formula reads, without
//! the shift, for the tests to hold the fast twin against.

use super::network::BurnIn;
use crate::mulaw::{decode_table, encode, CLASSES};
use crate::real::Real;
use rayon::prelude::*;

/// Distributions per parallel task (each one is 256 `exp`s).
const ROWS_PER_TASK: usize = 64;

/// Mean softmax cross-entropy (accumulated in f64) and its gradient into
/// `dlogits` (resized to the logits' shape). `row_loss` is scratch.
pub fn softmax_xent_loss<T: Real>(
    logits: &[T],
    targets: &[T],
    scale: f64,
    dlogits: &mut Vec<T>,
    row_loss: &mut Vec<f64>,
) -> f64 {
    softmax_xent_loss_masked(logits, targets, scale, 1, BurnIn::NONE, dlogits, row_loss)
}

/// [`softmax_xent_loss`] over the distributions of the rows `burn_in`
/// counts (`channels` distributions a row); the others add nothing and get
/// a zero gradient, and the mean is over the ones counted.
pub fn softmax_xent_loss_masked<T: Real>(
    logits: &[T],
    targets: &[T],
    scale: f64,
    channels: usize,
    burn_in: BurnIn<'_>,
    dlogits: &mut Vec<T>,
    row_loss: &mut Vec<f64>,
) -> f64 {
    assert_eq!(
        logits.len(),
        targets.len() * CLASSES,
        "softmax_xent_loss: shapes"
    );
    let each = |_: usize, z: &[T], y: T, inv_n: f64, d: &mut [T]| {
        let k = encode(y.to_f64().unwrap_or(f64::NAN) * scale);
        let max = z.iter().fold(T::neg_infinity(), |m, &v| m.max(v));
        let max = max.to_f64().unwrap_or(f64::NAN);
        let mut sum = 0.0f64;
        for &v in z {
            sum += (v.to_f64().unwrap_or(f64::NAN) - max).exp();
        }
        let lse = max + sum.ln();
        for (i, (di, &v)) in d.iter_mut().zip(z).enumerate() {
            let p = (v.to_f64().unwrap_or(f64::NAN) - lse).exp();
            let onehot = if i == k { 1.0 } else { 0.0 };
            *di = T::from_f64_lossy((p - onehot) * inv_n);
        }
        lse - z[k].to_f64().unwrap_or(f64::NAN)
    };
    burn_in.mean_loss(
        logits,
        CLASSES,
        targets,
        channels,
        ROWS_PER_TASK,
        dlogits,
        row_loss,
        each,
    )
}

/// The loss as the formula reads: `−ln(e^{z_k} / Σ_j e^{z_j})`, averaged.
pub fn softmax_xent_reference(logits: &[f64], targets: &[f64], scale: f64) -> f64 {
    let mut total = 0.0;
    for (z, &y) in logits.chunks_exact(CLASSES).zip(targets) {
        let k = encode(y * scale);
        let denom: f64 = z.iter().map(|v| v.exp()).sum();
        total += -(z[k].exp() / denom).ln();
    }
    total / targets.len() as f64
}

/// The point prediction of every distribution, in model units: the expected
/// audio value `Σ_k softmax(z)_k · decode(k)`, divided by `scale`.
///
/// The expectation rather than the most likely class because it is the
/// prediction with the least expected squared error under the model's own
/// distribution, and squared error is what `predict` and `eval` score; the
/// argmax is a level of the μ-law grid, whose steps near full scale are
/// coarse, and ignores how the mass is spread.
pub fn expected_value<T: Real>(logits: &[T], scale: f64, out: &mut Vec<T>) {
    assert_eq!(logits.len() % CLASSES, 0, "expected_value: shape");
    let values = decode_table();
    out.resize(logits.len() / CLASSES, T::zero());
    out.par_iter_mut()
        .zip(logits.par_chunks(CLASSES))
        .with_min_len(ROWS_PER_TASK)
        .for_each(|(o, z)| {
            let max = z.iter().fold(T::neg_infinity(), |m, &v| m.max(v));
            let max = max.to_f64().unwrap_or(f64::NAN);
            let (mut sum, mut weighted) = (0.0f64, 0.0f64);
            for (&v, &a) in z.iter().zip(&values) {
                let e = (v.to_f64().unwrap_or(f64::NAN) - max).exp();
                sum += e;
                weighted += e * a;
            }
            *o = T::from_f64_lossy(weighted / sum / scale);
        });
}
