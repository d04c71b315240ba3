//! The cascade predictor (`cascade`), one channel, one sample at a time as
//! `eval` and generation run it: the default cascade (EWLS order 32, NLMS
//! 256/32/16, the least-squares combiner), EWLS alone, and each NLMS stage.
//!
//! Throughput is criterion's "elem/s" with one element per sample, so the
//! real-time factor at 44.1 kHz is (elem/s) / 44,100. The input is a
//! second of the bundled piano clip (mono), so the solves see real music.
//!
//! `long_lag/search-at-full-reach` is the long-term predictor of the
//! hybrid's `--long-lag` features over one block of residuals, the block's
//! search included, once its past fills the whole reach (the most a search
//! costs): elem/s / 44,100 is again the real-time factor, per channel.
//!
//! Run: `cargo bench --bench cascade`.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use std::time::Duration;
use wavelstm::audio::{self, ChannelMode};
use wavelstm::cascade::{Cascade, CascadeConfig, Nlms, NlmsConfig};
use wavelstm::long_lag::{LongLag, BLOCK, REACH};
use wavelstm::rng::SplitMix64;

fn second_of_piano() -> Vec<f64> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets/audio/piano_sabatella_unclaimed_gift.wav");
    let a = audio::load(&path, ChannelMode::Mono, None).expect("the bundled piano clip");
    let start = a.samples.len() / 2;
    a.samples[start..start + 44100]
        .iter()
        .map(|&v| v as f64)
        .collect()
}

fn bench_cascade(c: &mut Criterion) {
    let x = second_of_piano();
    let mut g = c.benchmark_group("cascade");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
        .throughput(Throughput::Elements(x.len() as u64));
    for (name, cfg) in [
        ("default", CascadeConfig::default()),
        ("ewls-only", CascadeConfig::ewls_only()),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut s = Cascade::new(&cfg);
                let mut acc = 0.0;
                for &v in &x {
                    s.update(black_box(v));
                    acc += s.predict();
                }
                acc
            })
        });
    }
    for taps in [256, 32, 16] {
        let cfg = NlmsConfig { taps, step: 0.002 };
        g.bench_function(format!("nlms-{taps}"), |b| {
            b.iter(|| {
                let mut s = Nlms::new(cfg);
                let mut acc = 0.0;
                for &v in &x {
                    s.update(black_box(v));
                    acc += s.predict();
                }
                acc
            })
        });
    }
    g.finish();
}

fn bench_long_lag(c: &mut Criterion) {
    // Noise: the search costs the same whatever it finds.
    let mut rng = SplitMix64::new(1);
    let mut warm = LongLag::new();
    // Up to one residual before a search, with the whole reach behind it.
    let fill = (REACH / BLOCK + 8) * BLOCK;
    for _ in 0..fill {
        warm.update(rng.normal());
    }
    let block: Vec<f64> = (0..BLOCK).map(|_| rng.normal()).collect();
    let mut g = c.benchmark_group("long_lag");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4))
        .sample_size(10)
        .throughput(Throughput::Elements(BLOCK as u64));
    g.bench_function("search-at-full-reach", |b| {
        b.iter_batched(
            || warm.clone(),
            |mut ll| {
                let mut acc = 0.0;
                for &v in &block {
                    acc += ll.predict().0;
                    ll.update(black_box(v));
                }
                (acc, ll)
            },
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench_cascade, bench_long_lag);
criterion_main!(benches);
