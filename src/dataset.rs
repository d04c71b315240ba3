//! Songs → training sequences and batches. Knows nothing of engines.
//!
//! # The signal
//! All songs of a run are concatenated into one buffer, frame-major and
//! interleaved, `signal[n * C + ch]`, divided by `scale` (the RMS of the
//! training parts, so the model sees unit-variance input whatever the
//! song's level; predictions are multiplied back).
//!
//! # Positions, windows, targets
//! A *position* `p` is an index of a frame in the signal. The timestep at
//! position `p` sees the window of the `frame` most recent frames
//! `p-frame+1 ..= p` (oldest first; see `model`) and its target is frame
//! `p+1`. A sequence is `seq_len` consecutive positions; a batch lane is
//! named by the position of its first timestep.
//!
//! A target is read from the *target signal*, `[N, C]` like `signal`: the
//! signal itself, or, for a model that learns the residual of causal LPC
//! (`residual`), that residual in its own units. Windows always come from
//! `signal`.
//!
//! # The split
//! Each song's last `valid_fraction` of frames is validation: no training
//! target lies there, and no training sequence crosses a song boundary.
//! Validation predicts the targets inside that part, reading the frames
//! before it as context (they are the past, not the answer).
//!
//! # Truncated BPTT
//! Without `stateful`, every sequence starts from a zero state and the
//! sequences of an epoch are shuffled (their grid is also shifted by a random
//! phase each epoch, so every epoch cuts the songs differently). With
//! `stateful`, the training sequences are dealt into `batch` lanes of
//! consecutive chunks; lane `b` of step `k+1` continues where lane `b` of step
//! `k` stopped, and the engine carries `h` and `c` across (no gradient crosses
//! the chunk boundary). A lane's state is reset to zero where it enters a new
//! song.
//!
//! # Loss burn-in
//! A sequence that starts from a zero state spends its first timesteps
//! building up a state; what it predicts there says how fast the state
//! fills, not how well the model predicts (the loss of those timesteps is
//! orders of magnitude above the rest). The first `burn_in` timesteps of
//! such a sequence are therefore context: the engine runs them, and leaves
//! them out of the loss and so of the gradient. With `stateful`, only the
//! sequences that start from zero (a lane's first, and where a lane enters
//! a new song) burn in; the others carry their context in. Validation
//! already means the same: every validation lane runs a warm-up of at least
//! four sequences (`train::warmup_frames`) over the true past before the
//! part it scores.

use crate::audio::Audio;
use crate::error::{Error, Result};
use crate::hybrid::{HybridConfig, HybridSignal};
use crate::residual::{lpc_base, residual_rms, ResidualSignal};
use crate::rng::SplitMix64;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// One song's place in the concatenated signal.
#[derive(Clone, Debug)]
pub struct SongSpan {
    pub path: PathBuf,
    /// First frame of the song in the signal.
    pub offset: usize,
    pub frames: usize,
    /// Frames `0..train_frames` are the training part, the rest validation.
    pub train_frames: usize,
}

impl SongSpan {
    /// Positions whose targets lie in the validation part.
    pub fn valid_positions(&self) -> std::ops::Range<usize> {
        self.offset + self.train_frames - 1..self.offset + self.frames - 1
    }
}

/// Frames at the end of a song of `frames` that its validation part holds.
pub fn valid_frames(frames: usize, valid_fraction: f64) -> usize {
    (frames as f64 * valid_fraction).round() as usize
}

#[derive(Clone, Debug)]
pub struct Dataset {
    pub channels: usize,
    pub sample_rate: u32,
    /// `[N, C]` interleaved, divided by `scale`.
    pub signal: Vec<f32>,
    pub songs: Vec<SongSpan>,
    pub scale: f32,
    /// The LPC prediction and residual targets, when the model learns the
    /// residual ([`Dataset::learn_lpc_residual`]); None: targets are `signal`'s.
    pub residual: Option<ResidualSignal>,
    /// The cascade's base, the model's features and residual targets, when
    /// the model learns the cascade's residual ([`Dataset::learn_cascade_residual`]).
    pub hybrid: Option<HybridSignal>,
}

/// How training sequences are cut and batched.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataConfig {
    pub frame: usize,
    pub seq_len: usize,
    pub batch: usize,
    pub valid_fraction: f64,
    pub stateful: bool,
    pub shuffle: bool,
    /// Loss burn-in: the first `burn_in` timesteps of every training
    /// sequence that starts from a zero state are context, not loss (see
    /// the module doc). Checkpoints from before it existed: 0, which is not
    /// written either, so a run without it keeps its checkpoint's bytes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub burn_in: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The default loss burn-in for sequences of `seq_len` timesteps:
/// `min(seq_len / 4, 32)`. 32 samples is the order of the LPC the model is
/// measured against, the past a linear predictor needs to predict well, so
/// a model that starts from nothing is not blamed for those; at most a
/// quarter of a sequence, so short sequences keep most of their targets
/// (seq-len 1, the notebook's windows, keeps all).
pub fn default_burn_in(seq_len: usize) -> usize {
    (seq_len / 4).min(32)
}

/// One training or inference step's lanes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// Position of each lane's first timestep.
    pub starts: Vec<usize>,
    /// Per lane: continue from the state this lane ended the previous step
    /// with (true), or start from zero (false).
    pub carry: Vec<bool>,
}

impl Dataset {
    /// Concatenate `songs` (same rate and channel count) and split each.
    /// `scale` None: measure the RMS of the training parts.
    pub fn new(songs: Vec<(PathBuf, Audio)>, dc: &DataConfig, scale: Option<f32>) -> Result<Self> {
        let first = songs
            .first()
            .ok_or_else(|| Error::config("no songs given"))?;
        let (channels, sample_rate) = (first.1.channels, first.1.sample_rate);
        if !(0.0..1.0).contains(&dc.valid_fraction) {
            return Err(Error::config("--valid-fraction must be in [0, 1)"));
        }
        let mut signal = Vec::new();
        let mut spans = Vec::new();
        for (path, audio) in songs {
            if audio.channels != channels || audio.sample_rate != sample_rate {
                return Err(Error::file(
                    &path,
                    format!(
                        "has {} channels at {} Hz, expected {channels} at {sample_rate} Hz like the first song",
                        audio.channels, audio.sample_rate
                    ),
                ));
            }
            let frames = audio.frames();
            let valid = valid_frames(frames, dc.valid_fraction);
            let train_frames = frames - valid;
            let needed = dc.seq_len + dc.frame;
            if train_frames < needed {
                return Err(Error::file(
                    &path,
                    format!(
                        "too short: its training part has {train_frames} frames, one sequence needs {needed} (--seq-len {} + --frame {})",
                        dc.seq_len, dc.frame
                    ),
                ));
            }
            if dc.valid_fraction > 0.0 && valid < 2 {
                return Err(Error::file(&path, "too short to keep a validation part"));
            }
            spans.push(SongSpan {
                path,
                offset: signal.len() / channels,
                frames,
                train_frames,
            });
            signal.extend_from_slice(&audio.samples);
        }
        let scale = match scale {
            Some(s) => s,
            None => {
                let (mut sum, mut n) = (0.0f64, 0usize);
                for s in &spans {
                    for &v in &signal[s.offset * channels..(s.offset + s.train_frames) * channels] {
                        sum += (v as f64) * (v as f64);
                        n += 1;
                    }
                }
                let rms = (sum / n.max(1) as f64).sqrt() as f32;
                if rms.is_nan() || rms <= 1e-6 {
                    return Err(Error::file(&spans[0].path, "is silent: nothing to learn"));
                }
                rms
            }
        };
        for v in &mut signal {
            *v /= scale;
        }
        Ok(Dataset {
            channels,
            sample_rate,
            signal,
            songs: spans,
            scale,
            residual: None,
            hybrid: None,
        })
    }

    /// Make the targets the residual of causal LPC-32 (see `residual`).
    /// `residual_scale` None: the RMS of the training parts' residual (audio
    /// units), which is returned.
    pub fn learn_lpc_residual(&mut self, residual_scale: Option<f32>) -> Result<f32> {
        let c = self.channels;
        let songs: Vec<_> = self
            .songs
            .iter()
            .map(|s| s.offset..s.offset + s.frames)
            .collect();
        let base = lpc_base(&self.signal, c, self.sample_rate, &songs);
        let residual_scale = match residual_scale {
            Some(r) => r,
            None => {
                // Training targets: a song's frames 1 .. train_frames (frame 0 has no past).
                let train: Vec<_> = self
                    .songs
                    .iter()
                    .map(|s| s.offset + 1..s.offset + s.train_frames)
                    .collect();
                (residual_rms(&self.signal, &base, c, &train) * self.scale as f64) as f32
            }
        };
        if !(residual_scale.is_finite() && residual_scale > 0.0) {
            return Err(Error::file(
                &self.songs[0].path,
                "has no LPC residual to learn (the linear predictor is exact)",
            ));
        }
        let ratio = residual_scale / self.scale;
        self.residual = Some(ResidualSignal::new(&self.signal, c, base, ratio));
        Ok(residual_scale)
    }

    /// Make the inputs the cascade's features and the targets its residual
    /// in local gain units (see `hybrid`), each song run on its own.
    pub fn learn_cascade_residual(&mut self, cfg: &HybridConfig) -> Result<()> {
        cfg.validate().map_err(Error::config)?;
        let songs: Vec<_> = self
            .songs
            .iter()
            .map(|s| s.offset..s.offset + s.frames)
            .collect();
        self.hybrid = Some(HybridSignal::new(
            &self.signal,
            self.channels,
            self.scale,
            &songs,
            cfg,
        ));
        Ok(())
    }

    /// The target signal when it is not `signal` (see the module doc).
    pub fn targets(&self) -> Option<&[f32]> {
        if let Some(h) = &self.hybrid {
            return Some(&h.target);
        }
        self.residual.as_ref().map(|r| &r.target[..])
    }

    /// A hybrid's per-target 16-bit bin widths (see `HybridSignal::deltas`),
    /// for a `laplace` head; None for every other dataset, whose bins all
    /// have the width of its scale.
    pub fn target_deltas(&self) -> Option<Vec<f32>> {
        self.hybrid.as_ref().map(HybridSignal::deltas)
    }

    /// The signal the model's windows are read from: `signal`, or a hybrid
    /// model's features (`[N, F·C]`).
    pub fn inputs(&self) -> &[f32] {
        self.hybrid.as_ref().map_or(&self.signal, |h| &h.inputs)
    }

    pub fn frames(&self) -> usize {
        self.signal.len() / self.channels
    }

    /// Training sequence starts of song `s` for a grid shifted by `phase`.
    fn song_chunks(&self, s: &SongSpan, dc: &DataConfig, phase: usize, out: &mut Vec<usize>) {
        // Positions p with p ≥ frame-1 (a full window) and p+1 < train_frames.
        let first = s.offset + dc.frame - 1 + phase;
        let end = s.offset + s.train_frames - 1;
        let mut p = first;
        while p + dc.seq_len <= end {
            out.push(p);
            p += dc.seq_len;
        }
    }

    /// Sequences per epoch without a phase shift.
    pub fn chunks_per_epoch(&self, dc: &DataConfig) -> usize {
        let mut v = Vec::new();
        for s in &self.songs {
            self.song_chunks(s, dc, 0, &mut v);
        }
        v.len()
    }

    /// Steps in every epoch (the last incomplete batch is dropped, so every
    /// step has the same shape). The random phase can cost at most one
    /// sequence per song, so the count is taken with that loss.
    pub fn steps_per_epoch(&self, dc: &DataConfig) -> usize {
        if dc.stateful || !dc.shuffle {
            self.chunks_per_epoch(dc) / dc.batch
        } else {
            self.chunks_per_epoch(dc).saturating_sub(self.songs.len()) / dc.batch
        }
    }

    /// The batches of epoch `epoch` (from 0), a pure function of the seed and
    /// the epoch number, so a resumed run sees exactly the same data.
    pub fn epoch_batches(&self, dc: &DataConfig, seed: u64, epoch: u64) -> Result<Vec<Batch>> {
        let steps = self.steps_per_epoch(dc);
        if steps == 0 {
            return Err(Error::config(format!(
                "the training parts hold {} sequences of --seq-len {}, fewer than one --batch of {}",
                self.chunks_per_epoch(dc),
                dc.seq_len,
                dc.batch
            )));
        }
        let mut rng = SplitMix64::derive(seed, epoch + 1);
        let mut starts = Vec::new();
        let shuffled = dc.shuffle && !dc.stateful;
        for s in &self.songs {
            let phase = if shuffled {
                rng.below(dc.seq_len as u64) as usize
            } else {
                0
            };
            self.song_chunks(s, dc, phase, &mut starts);
        }
        if shuffled {
            rng.shuffle(&mut starts);
        }
        if !dc.stateful {
            return Ok(starts[..steps * dc.batch]
                .chunks_exact(dc.batch)
                .map(|c| Batch {
                    starts: c.to_vec(),
                    carry: vec![false; dc.batch],
                })
                .collect());
        }
        // Stateful: lane b walks chunks b·steps .. (b+1)·steps in order.
        // A lane carries its state on iff its previous chunk ends right where
        // this one begins (never true across a song boundary: the validation
        // part lies between).
        Ok((0..steps)
            .map(|k| {
                let idx = |b: usize| b * steps + k;
                Batch {
                    starts: (0..dc.batch).map(|b| starts[idx(b)]).collect(),
                    carry: (0..dc.batch)
                        .map(|b| k > 0 && starts[idx(b) - 1] + dc.seq_len == starts[idx(b)])
                        .collect(),
                }
            })
            .collect())
    }
}

/// Gather windows from `signal` (`[N, W]`, `W = width` values a frame:
/// `channels` for a plain model, more for one that reads features, see
/// `hybrid`) and targets from `targets` (`[N, C]`) for `t` timesteps of every
/// lane: `x[T, B, frame·W]` and `target[T, B, C]` (see the module doc). A
/// position past the last one that has a target (`N-2`) reads as that last
/// one, so inference may run a lane past the end of its song and discard
/// what it predicts there.
#[allow(clippy::too_many_arguments)]
pub fn gather(
    signal: &[f32],
    targets: &[f32],
    channels: usize,
    width: usize,
    frame: usize,
    starts: &[usize],
    t: usize,
    x: &mut Vec<f32>,
    target: &mut Vec<f32>,
) {
    let b = starts.len();
    let (c, w) = (channels, width);
    let last = (signal.len() / w).saturating_sub(2);
    x.resize(t * b * frame * w, 0.0);
    target.resize(t * b * c, 0.0);
    for step in 0..t {
        for (lane, &s) in starts.iter().enumerate() {
            let p = (s + step).min(last);
            let row = step * b + lane;
            let w0 = (p + 1 - frame) * w;
            x[row * frame * w..(row + 1) * frame * w].copy_from_slice(&signal[w0..w0 + frame * w]);
            target[row * c..(row + 1) * c].copy_from_slice(&targets[(p + 1) * c..(p + 2) * c]);
        }
    }
}

/// The targets alone of [`gather`]: `out[T, B, C]` from `targets[N, C]`,
/// positions past `N-2` read as `N-2` (a `laplace` head's per-target bin
/// widths travel this way, beside the targets they belong to).
pub fn gather_targets(
    targets: &[f32],
    channels: usize,
    starts: &[usize],
    t: usize,
    out: &mut Vec<f32>,
) {
    let (b, c) = (starts.len(), channels);
    let last = (targets.len() / c).saturating_sub(2);
    out.resize(t * b * c, 0.0);
    for step in 0..t {
        for (lane, &s) in starts.iter().enumerate() {
            let p = (s + step).min(last);
            let row = step * b + lane;
            out[row * c..(row + 1) * c].copy_from_slice(&targets[(p + 1) * c..(p + 2) * c]);
        }
    }
}
