//! The cascade predictor (`cascade`), one channel, one sample at a time as
//! `eval` and generation run it: the default cascade (EWLS order 32, NLMS
//! 256/32/16, the least-squares combiner), EWLS alone, and each NLMS stage.
//!
//! Throughput is criterion's "elem/s" with one element per sample, so the
//! real-time factor at 44.1 kHz is (elem/s) / 44,100. The input is a
//! second of the bundled piano clip (mono), so the solves see real music.
//!
//! Run: `cargo bench --bench cascade`.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use std::time::Duration;
use wavelstm::audio::{self, ChannelMode};
use wavelstm::cascade::{Cascade, CascadeConfig, Nlms, NlmsConfig};

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

criterion_group!(benches, bench_cascade);
criterion_main!(benches);
