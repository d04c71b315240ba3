//! The free-running step (`cpu::fast_step`, what `generate` runs per
//! sample) at the `generate` workloads' shape: hidden 256, 1 layer, linear
//! head, one take and 8 takes, on one and two threads; and its
//! matrix-vector product (`cpu::gemv`) alone.
//!
//! Throughput is criterion's "elem/s" with one element per FLOP
//! (`wavelstm::flops::free_step`), so `Gelem/s` reads as GFLOP/s; the
//! real-time factor at 44.1 kHz is 1 / (44,100 × the time of one step).
//!
//! Run: `cargo bench --bench free_step`.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;
use wavelstm::bench::Workload;
use wavelstm::cpu::fast_step::FastStep;
use wavelstm::cpu::gemv::{gemv, GemvShape};
use wavelstm::flops;
use wavelstm::rng::SplitMix64;

fn bench_free_step(c: &mut Criterion) {
    let mut g = c.benchmark_group("free_step");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for name in ["generate", "generate-8"] {
        let w = Workload::by_name(name).expect("a generation workload");
        let (cfg, b) = (&w.model, w.batch);
        let params = w.params();
        let x = vec![0.1f32; b * cfg.input_size()];
        g.throughput(Throughput::Elements(flops::free_step(cfg, b) as u64));
        for threads in [1, 2] {
            let mut fast = FastStep::new(cfg, &params, threads);
            let n = cfg.layers * b * cfg.hidden;
            let (mut h, mut cs) = (vec![0.0f32; n], vec![0.0f32; n]);
            g.bench_function(
                BenchmarkId::new(name, format!("{threads} threads")),
                |bench| bench.iter(|| fast.step(b, black_box(&x), &mut h, &mut cs)[0]),
            );
        }
    }
    // The recurrent product of one take: W_hh [4H, H] times h [H].
    let (rows, cols) = (1024, 256);
    let mut rng = SplitMix64::new(9);
    let w: Vec<f32> = (0..rows * cols)
        .map(|_| rng.uniform(-0.06, 0.06) as f32)
        .collect();
    let h: Vec<f32> = (0..cols).map(|_| rng.uniform(-1.0, 1.0) as f32).collect();
    let mut out = vec![0.0f32; rows];
    g.throughput(Throughput::Elements(flops::gemm(1, rows, cols) as u64));
    g.bench_function("gemv/1024x256", |bench| {
        bench.iter(|| {
            gemv(
                GemvShape::packed(rows, cols, 1),
                &w,
                black_box(&h),
                &mut out,
            )
        })
    });
    g.finish();
}

criterion_group!(benches, bench_free_step);
criterion_main!(benches);
