//! Adam with bias correction and decoupled weight decay (AdamW), and
//! global-norm gradient clipping, over the flat parameter buffer.
//!
//! Adam: Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015,
//! Algorithm 1. Decoupled weight decay: Loshchilov & Hutter, "Decoupled
//! Weight Decay Regularization", ICLR 2019. At step `t` (from 1):
//! ```text
//! m ← β1·m + (1−β1)·g          v ← β2·v + (1−β2)·g²
//! θ ← θ − lr·wd·θ − lr · (m / (1−β1ᵗ)) / (√(v / (1−β2ᵗ)) + ε)
//! ```
//!
//! The operations are PyTorch's (`torch.optim.Adam`/`AdamW`, single-tensor
//! path, as of torch 2.x): every scalar that does not depend on the element —
//! `1−β1`, `1−β2`, `lr/(1−β1ᵗ)`, `√(1−β2ᵗ)`, `1−lr·wd` — is computed in f64
//! on the host and only then rounded to f32 ([`StepConstants`]), and per element
//! ```text
//! m ← lerp(m, g, 1−β1)          v ← β2·v + (1−β2)·g·g
//! θ ← θ·(1−lr·wd)               θ ← θ − (lr/(1−β1ᵗ))·m / (√v / √(1−β2ᵗ) + ε)
//! ```
//! Rounding `β2` to f32 first and subtracting in f32 would give
//! `1 − f32(0.999) = 9.99987e-4`: every `v` 1.3e-5 too small.

use super::isa::{dispatch, isa, Isa, Kernel};
use crate::optim::{AdamConfig, StepConstants};
use rayon::prelude::*;
use std::ops::Range;
use std::sync::{Mutex, PoisonError};

/// Elements per parallel chunk: fixed, so the norm's partial sums (and hence
/// its rounding) never depend on the thread count.
const CHUNK: usize = 1 << 14;

/// Below this many parameters the optimizer runs on the calling thread: a
/// small model's step (the seed preset's) is not worth a fork-join. The
/// chunks and their order are the same either way.
const PARALLEL_MIN: usize = 4 * CHUNK;

/// `Σ g²` in f64, over eight interleaved partial sums combined in a fixed
/// order: one running sum would make every addition wait for the last
/// (a latency chain as long as the buffer), eight keep the adders busy.
fn sum_squares(g: &[f32]) -> f64 {
    let mut acc = [0.0f64; 8];
    let chunks = g.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += f64::from(x) * f64::from(x);
        }
    }
    for (a, &x) in acc.iter_mut().zip(tail) {
        *a += f64::from(x) * f64::from(x);
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

/// `√(Σ g²)`, accumulated in f64 chunk by chunk, chunks combined in order.
pub fn global_norm(grads: &[f32]) -> f64 {
    norm_over(grads, std::slice::from_ref(&(0..grads.len())))
}

/// [`global_norm`] of the values in `ranges` of `grads`, range after range
/// (a buffer in one range gives the same bits as [`global_norm`]).
pub fn norm_over(grads: &[f32], ranges: &[Range<usize>]) -> f64 {
    let mut sum = 0.0f64;
    for r in ranges {
        let g = &grads[r.clone()];
        if g.len() < PARALLEL_MIN {
            for c in g.chunks(CHUNK) {
                sum += sum_squares(c);
            }
        } else {
            let partial: Vec<f64> = g.par_chunks(CHUNK).map(sum_squares).collect();
            for p in partial {
                sum += p;
            }
        }
    }
    sum.sqrt()
}

/// Scale `grads` so their global norm is at most `clip` (PyTorch's
/// `clip_grad_norm_` without its 1e-6 fudge). Returns the norm before clipping.
pub fn clip_global_norm(grads: &mut [f32], clip: f64) -> f64 {
    let all = 0..grads.len();
    clip_over(grads, std::slice::from_ref(&all), clip)
}

/// [`clip_global_norm`] of the values in `ranges` of `grads` only (the rest
/// is neither counted nor scaled). Returns the norm before clipping.
pub fn clip_over(grads: &mut [f32], ranges: &[Range<usize>], clip: f64) -> f64 {
    let norm = norm_over(grads, ranges);
    if clip > 0.0 && norm > clip {
        let s = (clip / norm) as f32;
        for r in ranges {
            let g = &mut grads[r.clone()];
            if g.len() < PARALLEL_MIN {
                g.iter_mut().for_each(|g| *g *= s);
            } else {
                g.par_chunks_mut(CHUNK)
                    .for_each(|c| c.iter_mut().for_each(|g| *g *= s));
            }
        }
    }
    norm
}

/// One Adam step at step number `t` (1 for the first update).
pub fn adam_step(
    cfg: &AdamConfig,
    t: u64,
    params: &mut [f32],
    grads: &[f32],
    m: &mut [f32],
    v: &mut [f32],
) {
    adam_step_on(isa(), cfg, t, params, grads, m, v)
}

/// [`adam_step`] compiled for `isa`, which the CPU must run. Every variant
/// computes the same bits (the tests hold them to it).
pub fn adam_step_on(
    isa: Isa,
    cfg: &AdamConfig,
    t: u64,
    params: &mut [f32],
    grads: &[f32],
    m: &mut [f32],
    v: &mut [f32],
) {
    assert!(isa.supported(), "adam_step: {isa:?} is not supported here");
    assert!(t >= 1, "Adam steps count from 1");
    assert!(params.len() == grads.len() && m.len() == grads.len() && v.len() == grads.len());
    let k = StepConstants::new(cfg, t);
    let update =
        |p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]| update_on(isa, &k, p, g, m, v);
    if params.len() < PARALLEL_MIN {
        update(params, grads, m, v);
    } else {
        params
            .par_chunks_mut(CHUNK)
            .zip(grads.par_chunks(CHUNK))
            .zip(m.par_chunks_mut(CHUNK).zip(v.par_chunks_mut(CHUNK)))
            .for_each(|((p, g), (m, v))| update(p, g, m, v));
    }
}

/// [`update`] over one stretch, compiled for `isa`.
fn update_on(isa: Isa, k: &StepConstants, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
    // SAFETY: the update reads and writes only the slices it is handed;
    // `dispatch` checks the instruction set.
    unsafe { dispatch(isa, Update { k, p, g, m, v }) }
}

/// One piece of the four buffers, the same elements of each.
type Piece<'a> = (&'a mut [f32], &'a [f32], &'a mut [f32], &'a mut [f32]);

/// [`adam_step`] over the elements of `ranges` (ordered and disjoint), cut
/// into two halves of nearly equal length that `run` must run as `job(0)`
/// and `job(1)`, on two threads at once or one after the other. The update
/// is element by element, so where the cut falls changes no bit.
///
/// For a small model's step: the seed preset's 8.6 thousand trained
/// parameters are too few for a fork-join of the pool, yet their square
/// roots and two divisions each took about a seventh of the calling
/// thread's time in its step (a profile on a Zen 4), while the other core
/// waited. The window step's two threads are awake already. Ranges long
/// enough for the pool (as many elements as [`adam_step`] shares out) go to
/// it as [`adam_step`] sends them: it may have more than two threads.
#[allow(clippy::too_many_arguments)]
pub fn adam_step_halves(
    cfg: &AdamConfig,
    t: u64,
    ranges: &[Range<usize>],
    params: &mut [f32],
    grads: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    run: impl FnOnce(&(dyn Fn(usize) + Sync)),
) {
    let total: usize = ranges.iter().map(Range::len).sum();
    if total >= PARALLEL_MIN {
        for r in ranges {
            let r = r.clone();
            adam_step(
                cfg,
                t,
                &mut params[r.clone()],
                &grads[r.clone()],
                &mut m[r.clone()],
                &mut v[r],
            );
        }
        return;
    }
    assert!(t >= 1, "Adam steps count from 1");
    assert!(params.len() == grads.len() && m.len() == grads.len() && v.len() == grads.len());
    let (isa, k) = (isa(), StepConstants::new(cfg, t));
    // A whole number of 64-byte lines before the cut, so that the two
    // threads never write the same line of an aligned buffer.
    let cut = total / 2 / 16 * 16;
    let mut halves: [Vec<Piece<'_>>; 2] = Default::default();
    let (mut p, mut g, mut mm, mut vv) = (params, grads, m, v);
    let (mut at, mut done) = (0, 0);
    for r in ranges {
        assert!(
            r.start >= at && r.end <= at + p.len(),
            "ranges out of order"
        );
        let skip = r.start - at;
        let (piece_p, rest_p) = std::mem::take(&mut p)[skip..].split_at_mut(r.len());
        let (piece_g, rest_g) = g[skip..].split_at(r.len());
        let (piece_m, rest_m) = std::mem::take(&mut mm)[skip..].split_at_mut(r.len());
        let (piece_v, rest_v) = std::mem::take(&mut vv)[skip..].split_at_mut(r.len());
        (p, g, mm, vv, at) = (rest_p, rest_g, rest_m, rest_v, r.end);
        // Elements of this range that fall before the cut.
        let first = cut.saturating_sub(done).min(r.len());
        done += r.len();
        let (p0, p1) = piece_p.split_at_mut(first);
        let (g0, g1) = piece_g.split_at(first);
        let (m0, m1) = piece_m.split_at_mut(first);
        let (v0, v1) = piece_v.split_at_mut(first);
        halves[0].push((p0, g0, m0, v0));
        halves[1].push((p1, g1, m1, v1));
    }
    let halves = halves.map(Mutex::new);
    run(&|part| {
        let mut pieces = halves[part].lock().unwrap_or_else(PoisonError::into_inner);
        for (p, g, m, v) in pieces.iter_mut() {
            update_on(isa, &k, p, g, m, v)
        }
    });
}

/// The update of [`adam_step`] over one stretch of the buffers. No
/// operation is fused, so every instruction set computes the same bits.
/// `m ← lerp(m, g, w)` is formed as PyTorch's `lerp` forms it: from the end
/// nearer the weight (`m + w·(g − m)` for `w < 0.5`, else
/// `g − (g − m)·(1 − w)`); the choice is made once, outside the loop.
#[inline(always)]
fn update(k: &StepConstants, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
    let (w, w_c) = (k.one_minus_beta1, k.beta1_complement);
    if w < 0.5 {
        update_with(k, p, g, m, v, |m, g| m + w * (g - m))
    } else {
        update_with(k, p, g, m, v, |m, g| g - (g - m) * w_c)
    }
}

#[inline(always)]
fn update_with(
    k: &StepConstants,
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    lerp: impl Fn(f32, f32) -> f32,
) {
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        *m = lerp(*m, g);
        *v = k.beta2 * *v + k.one_minus_beta2 * g * g;
        let denom = v.sqrt() / k.bias_correction2_sqrt + k.eps;
        *p *= k.decay;
        *p -= k.step_size * *m / denom;
    }
}

/// [`update`] as a [`Kernel`], compiled for each instruction set (wider
/// vectors: at the seed preset's step the optimizer is otherwise a tenth of
/// the time). The body is plain arithmetic, so every set gives the same bits.
struct Update<'a> {
    k: &'a StepConstants,
    p: &'a mut [f32],
    g: &'a [f32],
    m: &'a mut [f32],
    v: &'a mut [f32],
}

impl Kernel for Update<'_> {
    type Output = ();

    #[inline(always)]
    unsafe fn run(self, _isa: Isa) {
        let Update { k, p, g, m, v } = self;
        update(k, p, g, m, v)
    }
}
