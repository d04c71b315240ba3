//! Channel layouts and sample rates.

use rayon::prelude::*;
use rubato::{FftFixedInOut, Resampler};

use super::{sample_buffer, Audio, ChannelMode, Problem, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE};

/// `Audio`'s fields are public, so anything handed in may be inconsistent.
pub(super) fn check_layout(audio: &Audio) -> Problem<()> {
    if audio.channels == 0 {
        return Err("the audio has 0 channels".into());
    }
    if audio.sample_rate == 0 {
        return Err("the audio's sample rate is 0 Hz".into());
    }
    if !audio.samples.len().is_multiple_of(audio.channels) {
        return Err(format!(
            "{} samples do not divide into frames of {} channels",
            audio.samples.len(),
            audio.channels
        ));
    }
    Ok(())
}

pub(super) fn channels_to(audio: &Audio, mode: ChannelMode) -> Problem<Audio> {
    check_layout(audio)?;
    let c = audio.channels;
    let samples = match (mode, c) {
        (ChannelMode::Mono, 1) | (ChannelMode::Stereo, 2) => return Ok(audio.clone()),
        (ChannelMode::Mono, _) => audio
            .samples
            .chunks_exact(c)
            .map(|frame| frame.iter().sum::<f32>() / c as f32)
            .collect(),
        (ChannelMode::Stereo, 1) => audio.samples.iter().flat_map(|&x| [x, x]).collect(),
        (ChannelMode::Stereo, _) => {
            return Err(format!(
                "has {c} channels; stereo needs 1 or 2 (use mono to mix them down)"
            ));
        }
    };
    let channels = match mode {
        ChannelMode::Mono => 1,
        ChannelMode::Stereo => 2,
    };
    Ok(Audio {
        sample_rate: audio.sample_rate,
        channels,
        samples,
    })
}

/// Input frames per FFT block, roughly: long enough for a sharp anti-aliasing
/// filter (the filter is as long as the block), short enough to stay cheap.
const RESAMPLE_BLOCK: usize = 1024;

/// Largest reduced rate ratio term; beyond it the FFT blocks get huge.
const MAX_RATIO_TERM: usize = 1 << 20;

pub(super) fn resample_to(audio: &Audio, to_rate: u32) -> Problem<Audio> {
    check_layout(audio)?;
    if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&to_rate) {
        return Err(format!(
            "cannot resample to {to_rate} Hz: rates from {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz are supported"
        ));
    }
    let from = audio.sample_rate as usize;
    let to = to_rate as usize;
    if from == to {
        return Ok(audio.clone());
    }
    let frames = audio.frames();
    // round(frames * to / from), in integers so it is exact.
    let target = (frames as u128 * to as u128 + from as u128 / 2) / from as u128;
    // Bounded before anything is allocated: a file declaring a tiny rate
    // would otherwise ask for an output hundreds of times its own size.
    let target = usize::try_from(target)
        .ok()
        .filter(|t| t.checked_mul(audio.channels).is_some_and(|n| n <= super::MAX_SAMPLES))
        .ok_or_else(|| {
            format!(
                "resampling {frames} frames from {from} Hz to {to} Hz would make more than {} samples",
                super::MAX_SAMPLES
            )
        })?;

    let g = gcd(from, to);
    let (a, b) = (from / g, to / g);
    if a > MAX_RATIO_TERM || b > MAX_RATIO_TERM {
        return Err(format!(
            "cannot resample from {from} Hz to {to} Hz: the ratio {a}:{b} is too fine"
        ));
    }
    // Whole multiples of the reduced ratio per block, and an even number of
    // them, so the block sizes are even and the delay (half a block) is a
    // whole number of frames at both rates.
    let mut k = RESAMPLE_BLOCK.div_ceil(a).max(1);
    k += k % 2;
    let (block_in, block_out) = (k * a, k * b);

    let channels: Vec<Vec<f32>> = (0..audio.channels)
        .into_par_iter()
        .map(|ch| resample_channel(&audio.channel(ch), from, to, block_in, block_out, target))
        .collect::<Problem<_>>()?;

    let mut samples = sample_buffer(target * audio.channels, "the resampled audio")?;
    for i in 0..target {
        samples.extend(channels.iter().map(|c| c[i]));
    }
    Ok(Audio {
        sample_rate: to_rate,
        channels: audio.channels,
        samples,
    })
}

/// Resample one channel to exactly `target` frames, delay removed.
fn resample_channel(
    input: &[f32],
    from: usize,
    to: usize,
    block_in: usize,
    block_out: usize,
    target: usize,
) -> Problem<Vec<f32>> {
    let mut resampler = FftFixedInOut::<f32>::new(from, to, block_in, 1)
        .map_err(|e| format!("cannot build a resampler from {from} Hz to {to} Hz: {e}"))?;
    if resampler.input_frames_next() != block_in || resampler.output_frames_next() != block_out {
        return Err(format!(
            "resampler from {from} Hz to {to} Hz chose unexpected block sizes"
        ));
    }
    // The filter is centred half a block in: output frame `delay` is aligned
    // with input frame 0. Run that much past the end (feeding zeros) so the
    // last frames come out too, then cut the delay off the front.
    let delay = resampler.output_delay();
    let needed = delay + target;
    let blocks = needed.div_ceil(block_out);
    let mut out = sample_buffer(blocks * block_out, "the resampled audio")?;
    out.resize(blocks * block_out, 0.0);
    let mut chunk = vec![0.0f32; block_in];
    for (i, out_block) in out.chunks_exact_mut(block_out).enumerate() {
        let start = (i * block_in).min(input.len());
        let end = (start + block_in).min(input.len());
        let n = end - start;
        chunk[..n].copy_from_slice(&input[start..end]);
        chunk[n..].fill(0.0);
        resampler
            .process_into_buffer(&[&chunk[..]], &mut [out_block], None)
            .map_err(|e| format!("resampling from {from} Hz to {to} Hz failed: {e}"))?;
    }
    out.drain(..delay);
    out.truncate(target);
    Ok(out)
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}
