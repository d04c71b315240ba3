//! Splits, windows, batches and the truncated-BPTT schedule.

use std::collections::HashSet;
use std::path::PathBuf;
use wavelstm::audio::Audio;
use wavelstm::dataset::{gather, DataConfig, Dataset};

fn ramp_song(frames: usize, channels: usize, base: f32) -> Audio {
    // Sample value encodes (frame, channel) so gathered windows can be checked by value.
    let samples = (0..frames * channels)
        .map(|i| base + (i / channels) as f32 + 0.25 * (i % channels) as f32)
        .collect();
    Audio {
        sample_rate: 8000,
        channels,
        samples,
    }
}

fn dc(frame: usize, seq_len: usize, batch: usize, stateful: bool, shuffle: bool) -> DataConfig {
    DataConfig {
        frame,
        seq_len,
        batch,
        valid_fraction: 0.1,
        stateful,
        shuffle,
        burn_in: 0,
    }
}

fn dataset(lengths: &[usize], channels: usize, cfg: &DataConfig) -> Dataset {
    let songs = lengths
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            (
                PathBuf::from(format!("song{i}.wav")),
                ramp_song(n, channels, 1000.0 * i as f32),
            )
        })
        .collect();
    // scale 1 so signal values stay readable
    Dataset::new(songs, cfg, Some(1.0)).unwrap()
}

#[test]
fn split_keeps_validation_out_of_training() {
    for (stateful, shuffle) in [(false, true), (false, false), (true, false)] {
        let cfg = dc(3, 16, 4, stateful, shuffle);
        let ds = dataset(&[1000, 777, 1500], 1, &cfg);
        for epoch in 0..3 {
            for b in ds.epoch_batches(&cfg, 7, epoch).unwrap() {
                assert_eq!(b.starts.len(), 4);
                for &s in &b.starts {
                    let song = ds
                        .songs
                        .iter()
                        .find(|sp| s >= sp.offset && s < sp.offset + sp.frames)
                        .unwrap();
                    // Full window inside the song, every target inside the training part.
                    assert!(s + 1 >= song.offset + cfg.frame);
                    let last_target = s + cfg.seq_len; // target of the last timestep
                    assert!(
                        last_target < song.offset + song.train_frames,
                        "target {last_target} in validation of {:?}",
                        song.path
                    );
                }
            }
        }
        for s in &ds.songs {
            assert_eq!(
                s.train_frames,
                s.frames - (s.frames as f64 * 0.1).round() as usize
            );
            let v = s.valid_positions();
            assert_eq!(
                v.start + 1,
                s.offset + s.train_frames,
                "first validation target is the first validation frame"
            );
            assert_eq!(v.end, s.offset + s.frames - 1);
        }
    }
}

#[test]
fn gather_reads_windows_oldest_first_and_next_frame_targets() {
    let cfg = dc(3, 5, 2, false, false);
    let ds = dataset(&[400], 2, &cfg);
    let starts = [10usize, 57];
    let (mut x, mut y) = (Vec::new(), Vec::new());
    gather(&ds.signal, &ds.signal, 2, 2, 3, &starts, 5, &mut x, &mut y);
    assert_eq!(x.len(), 5 * 2 * 3 * 2);
    for t in 0..5 {
        for (b, &s) in starts.iter().enumerate() {
            let p = s + t;
            let row = t * 2 + b;
            for f in 0..3 {
                for ch in 0..2 {
                    let want = (p - 2 + f) as f32 + 0.25 * ch as f32;
                    assert_eq!(x[row * 6 + f * 2 + ch], want);
                }
            }
            assert_eq!(y[row * 2], (p + 1) as f32);
            assert_eq!(y[row * 2 + 1], (p + 1) as f32 + 0.25);
        }
    }
}

#[test]
fn shuffled_epochs_are_reproducible_and_differ() {
    let cfg = dc(1, 8, 3, false, true);
    let ds = dataset(&[900, 600], 1, &cfg);
    let e0 = ds.epoch_batches(&cfg, 42, 0).unwrap();
    assert_eq!(e0, ds.epoch_batches(&cfg, 42, 0).unwrap());
    assert_ne!(e0, ds.epoch_batches(&cfg, 42, 1).unwrap());
    assert_ne!(e0, ds.epoch_batches(&cfg, 43, 0).unwrap());
    assert_eq!(e0.len(), ds.steps_per_epoch(&cfg));
    // Within an epoch no sequence is used twice.
    let all: Vec<usize> = e0.iter().flat_map(|b| b.starts.clone()).collect();
    assert_eq!(all.len(), all.iter().collect::<HashSet<_>>().len());
    assert!(e0.iter().all(|b| b.carry.iter().all(|c| !c)));
}

#[test]
fn in_order_batches_tile_each_song() {
    let cfg = dc(2, 10, 2, false, false);
    let ds = dataset(&[300], 1, &cfg);
    let b = ds.epoch_batches(&cfg, 0, 0).unwrap();
    let starts: Vec<usize> = b.iter().flat_map(|b| b.starts.clone()).collect();
    assert_eq!(starts[0], 1);
    for w in starts.windows(2) {
        assert_eq!(w[1], w[0] + 10);
    }
}

#[test]
fn stateful_lanes_continue_and_reset_at_song_boundaries() {
    let cfg = dc(1, 10, 3, true, true);
    let ds = dataset(&[500, 260, 340], 1, &cfg);
    let batches = ds.epoch_batches(&cfg, 1, 0).unwrap();
    let mut resets_inside = 0;
    for k in 0..batches.len() {
        for lane in 0..3 {
            let s = batches[k].starts[lane];
            if k == 0 {
                assert!(!batches[k].carry[lane]);
                continue;
            }
            let prev = batches[k - 1].starts[lane];
            let contiguous = prev + cfg.seq_len == s;
            assert_eq!(batches[k].carry[lane], contiguous, "step {k} lane {lane}");
            if !contiguous {
                // Only where a lane enters a new song.
                let song = |p: usize| {
                    ds.songs
                        .iter()
                        .position(|sp| p >= sp.offset && p < sp.offset + sp.frames)
                };
                assert_ne!(song(prev), song(s));
                resets_inside += 1;
            }
        }
    }
    assert!(
        resets_inside > 0,
        "the test data must make a lane cross a song boundary"
    );
    // Shuffle does not apply to stateful lanes: the same for every seed.
    assert_eq!(batches, ds.epoch_batches(&cfg, 99, 0).unwrap());
}

#[test]
fn too_short_song_names_the_file() {
    let cfg = dc(3, 256, 1, false, true);
    let songs = vec![
        (PathBuf::from("long.wav"), ramp_song(5000, 1, 0.0)),
        (PathBuf::from("tiny.wav"), ramp_song(200, 1, 0.0)),
    ];
    let err = Dataset::new(songs, &cfg, None).unwrap_err().to_string();
    assert!(
        err.contains("tiny.wav") && err.contains("too short"),
        "{err}"
    );
}

#[test]
fn batch_larger_than_the_data_is_an_error() {
    let cfg = dc(1, 100, 50, false, true);
    let ds = dataset(&[2000], 1, &cfg);
    let err = ds.epoch_batches(&cfg, 0, 0).unwrap_err().to_string();
    assert!(err.contains("--batch"), "{err}");
}

#[test]
fn scale_is_the_rms_of_the_training_parts() {
    let cfg = dc(1, 4, 1, false, true);
    // Training part all ±0.5, validation part loud: the scale ignores it.
    let mut samples: Vec<f32> = (0..90)
        .map(|i| if i % 2 == 0 { 0.5 } else { -0.5 })
        .collect();
    samples.extend(std::iter::repeat_n(0.9, 10));
    let ds = Dataset::new(
        vec![(
            PathBuf::from("a.wav"),
            Audio {
                sample_rate: 100,
                channels: 1,
                samples,
            },
        )],
        &cfg,
        None,
    )
    .unwrap();
    assert!((ds.scale - 0.5).abs() < 1e-6);
    assert!((ds.signal[0] - 1.0).abs() < 1e-6);
    let silent = Audio {
        sample_rate: 100,
        channels: 1,
        samples: vec![0.0; 100],
    };
    let err = Dataset::new(vec![(PathBuf::from("quiet.wav"), silent)], &cfg, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("quiet.wav") && err.contains("silent"), "{err}");
}
