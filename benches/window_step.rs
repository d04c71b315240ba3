//! The step of windows without memory (`cpu::window_step`) at the `seed`
//! workload's shape (`--preset seed`: frame 3, LSTM(100), head 50-25-12-1,
//! batch 100): forward and backward apart, and its largest products.
//!
//! Throughput is criterion's "elem/s" with one element per FLOP
//! (`wavelstm::flops`), so `Gelem/s` reads as GFLOP/s.
//!
//! Run: `cargo bench --bench window_step`.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use std::time::Duration;
use wavelstm::bench::Workload;
use wavelstm::cpu::isa::isa;
use wavelstm::cpu::lanes::{dot_lanes, mul_lanes, padded_for, Strided};
use wavelstm::cpu::window_step::WindowStep;
use wavelstm::flops;
use wavelstm::model::init_params;
use wavelstm::rng::SplitMix64;

fn random(rng: &mut SplitMix64, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.uniform(-1.0, 1.0) as f32).collect()
}

fn quick(c: &mut Criterion) -> criterion::BenchmarkGroup<'_, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group("window_step");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    g
}

fn bench_step(c: &mut Criterion) {
    let w = Workload::by_name("seed").expect("the seed workload");
    let (cfg, b) = (&w.model, w.batch);
    let layout = cfg.layout();
    let mut rng = SplitMix64::new(5);
    let params = init_params(cfg, &mut rng);
    let x = random(&mut rng, b * cfg.input_size());
    let dpred = random(&mut rng, b * cfg.outputs());
    let mut grads = vec![0.0f32; layout.total];
    let mut step = WindowStep::default();
    let fwd = flops::window_train_step(cfg, b) / 3.0;

    let mut g = quick(c);
    g.throughput(Throughput::Elements(fwd as u64));
    g.bench_function("forward/seed", |bench| {
        bench.iter(|| step.forward(cfg, &layout, &params, black_box(&x)).len())
    });
    g.throughput(Throughput::Elements(2 * fwd as u64));
    // The backward reads the last forward's state; a filter that runs this
    // one alone must still find it.
    step.forward(cfg, &layout, &params, &x);
    g.bench_function("backward/seed", |bench| {
        bench.iter(|| {
            step.backward(cfg, &layout, &params, black_box(&dpred), &mut grads);
            grads[0]
        })
    });
    g.finish();
}

/// The head's first layer (100 → 50) at batch 100: its forward, data and
/// weight products.
fn bench_products(c: &mut Criterion) {
    let (n, k, b) = (50, 100, 100);
    let bp = padded_for(isa(), b);
    let mut rng = SplitMix64::new(6);
    let w = random(&mut rng, n * k);
    let x = random(&mut rng, k * bp);
    let dy = random(&mut rng, n * bp);
    let mut y = vec![0.0f32; n * bp];
    let mut dx = vec![0.0f32; k * bp];
    let mut dw = vec![0.0f32; n * k];
    let f = flops::gemm(b, n, k) as u64;

    let mut g = quick(c);
    g.throughput(Throughput::Elements(f));
    // A product and its transpose: y = W·x, and dx = Wᵀ·dy.
    for (name, a, rows, depth, input, out) in [
        ("mul_lanes/100x50", Strided::rows(&w, k), n, k, &x, &mut y),
        (
            "mul_lanes_transposed/50x100",
            Strided::transposed(&w, k),
            k,
            n,
            &dy,
            &mut dx,
        ),
    ] {
        g.bench_function(name, |bench| {
            bench.iter(|| mul_lanes(isa(), a, 0..rows, depth, black_box(input), bp, out, false))
        });
    }
    g.bench_function("dot_lanes/50x100", |bench| {
        bench.iter(|| dot_lanes(isa(), black_box(&dy), 0..n, &x, k, bp, &mut dw, k, false))
    });
    g.finish();
}

criterion_group!(benches, bench_step, bench_products);
criterion_main!(benches);
