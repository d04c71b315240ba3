//! The location–scale heads' loss and point prediction on the CPU (twin of
//! shaders/law_nll.wgsl; the laws and their derivations are in
//! `crate::laplace` and `crate::logistic`, the seam between them `crate::law`).
//!
//! Layout: the head's output `head[R, 2C]` (R = T·B rows; channel `ch`'s
//! location at `2ch`, its log-scale at `2ch + 1`), targets `[R, C]` in the
//! model's output units, and per target the width `δ` of one 16-bit step
//! in those units ([`Delta`]).
//!
//! Loss: the mean over the counted distributions (all `N = R·C`, or fewer
//! under a loss burn-in, [`BurnIn`]) of the discretized negative
//! log-likelihood, in nats per sample; its gradient is each distribution's
//! `(∂/∂μ, ∂/∂s) / N`, zero for the distributions not counted.
//!
//! [`laplace_nll_reference`] and [`logistic_nll_reference`] are the same loss
//! as its definition reads, the difference of two CDF values, for the tests
//! to hold the fast twin against.

use super::network::BurnIn;
use crate::laplace::{LOG_SCALE_MAX, LOG_SCALE_MIN};
use crate::law::Law;
use crate::real::Real;

/// Distributions per parallel task.
const ROWS_PER_TASK: usize = 256;

/// The width of one 16-bit step in the model's output units, per target.
#[derive(Clone, Copy, Debug)]
pub enum Delta<'a, T> {
    /// The same for every target: `2⁻¹⁵/scale` for a global `scale`.
    Uniform(f64),
    /// One per target, `[R, C]` like the targets (a model whose units
    /// follow a local gain).
    PerTarget(&'a [T]),
}

impl<T: Real> Delta<'_, T> {
    fn at(&self, i: usize) -> f64 {
        match self {
            Delta::Uniform(d) => *d,
            Delta::PerTarget(d) => d[i].to_f64().unwrap_or(f64::NAN),
        }
    }
}

/// Mean discretized NLL under `law` over the distributions `burn_in` counts
/// (accumulated in f64, in distribution order, so it is reproducible) and
/// its gradient into `dhead` (resized to the head's shape). `channels` is C
/// (distributions per row); `row_loss` is scratch.
#[allow(clippy::too_many_arguments)]
pub fn law_nll_loss<T: Real>(
    law: Law,
    head: &[T],
    targets: &[T],
    delta: Delta<'_, T>,
    channels: usize,
    burn_in: BurnIn<'_>,
    dhead: &mut Vec<T>,
    row_loss: &mut Vec<f64>,
) -> f64 {
    let n = targets.len();
    assert_eq!(head.len(), 2 * n, "law_nll_loss: shapes");
    if let Delta::PerTarget(d) = delta {
        assert_eq!(d.len(), n, "law_nll_loss: one δ per target");
    }
    let f = |v: T| v.to_f64().unwrap_or(f64::NAN);
    let each = |i: usize, h: &[T], x: T, inv_n: f64, d: &mut [T]| {
        let (nll, dmu, ds) = law.bin_nll(f(h[0]), f(h[1]), f(x), delta.at(i));
        d[0] = T::from_f64_lossy(dmu * inv_n);
        d[1] = T::from_f64_lossy(ds * inv_n);
        nll
    };
    burn_in.mean_loss(
        head,
        2,
        targets,
        channels,
        ROWS_PER_TASK,
        dhead,
        row_loss,
        each,
    )
}

/// The loss as its definition reads, every target counted:
/// `−ln(F(x + δ/2) − F(x − δ/2))` with the Laplace CDF
/// `F(y) = ½e^{(y−μ)/b}` below μ and `1 − ½e^{−(y−μ)/b}` above (for a bin
/// above μ taken as the difference of the survival function `1 − F`, which
/// is the same number without the cancellation of `1 − 1`), averaged.
/// Accurate (in f64) while the bin is not much narrower than 1e-8 scales.
pub fn laplace_nll_reference(head: &[f64], targets: &[f64], deltas: &[f64]) -> f64 {
    let cdf = |y: f64, mu: f64, b: f64| {
        if y < mu {
            0.5 * ((y - mu) / b).exp()
        } else {
            1.0 - 0.5 * (-(y - mu) / b).exp()
        }
    };
    // 1 − F above μ.
    let survival = |y: f64, mu: f64, b: f64| 0.5 * (-(y - mu) / b).exp();
    let mut total = 0.0;
    for ((h, &x), &delta) in head.chunks_exact(2).zip(targets).zip(deltas) {
        let (mu, b) = (h[0], h[1].clamp(LOG_SCALE_MIN, LOG_SCALE_MAX).exp());
        let (lo, hi) = (x - delta / 2.0, x + delta / 2.0);
        let p = if lo >= mu {
            // The same difference from the other end: no 1 − 1 in the tail.
            survival(lo, mu, b) - survival(hi, mu, b)
        } else {
            cdf(hi, mu, b) - cdf(lo, mu, b)
        };
        total -= p.ln();
    }
    total / targets.len() as f64
}

/// The loss under the logistic law as its definition reads, every target
/// counted: `−ln(σ((x + δ/2 − μ)/b) − σ((x − δ/2 − μ)/b))`, for a bin above μ
/// taken as the difference of the survival function `σ(−(y − μ)/b)` (no
/// `1 − 1` in the upper tail), averaged. Accurate (in f64) while the bin is
/// not much narrower than 1e-8 scales.
pub fn logistic_nll_reference(head: &[f64], targets: &[f64], deltas: &[f64]) -> f64 {
    let sigmoid = |z: f64| 1.0 / (1.0 + (-z).exp());
    let mut total = 0.0;
    for ((h, &x), &delta) in head.chunks_exact(2).zip(targets).zip(deltas) {
        let (mu, b) = (h[0], h[1].clamp(LOG_SCALE_MIN, LOG_SCALE_MAX).exp());
        let (lo, hi) = ((x - delta / 2.0 - mu) / b, (x + delta / 2.0 - mu) / b);
        let p = if lo >= 0.0 {
            sigmoid(-lo) - sigmoid(-hi)
        } else {
            sigmoid(hi) - sigmoid(lo)
        };
        total -= p.ln();
    }
    total / targets.len() as f64
}

/// The point prediction of every distribution, in model units: its
/// location μ (the median, and the mean, of either law), `[R, C]`.
pub fn location<T: Real>(head: &[T], out: &mut Vec<T>) {
    assert_eq!(head.len() % 2, 0, "location: shape");
    out.clear();
    out.extend(head.chunks_exact(2).map(|h| h[0]));
}
