//! CPU ops at the workload shapes of issue 5, forward and backward apart, and
//! the register tile under them on each instruction set.
//!
//! Throughput is reported as criterion's "elem/s" with one element per FLOP
//! (`wavelstm::flops`), so `Gelem/s` reads as GFLOP/s. Workloads (input 1,
//! linear head):
//! - `seq`:   hidden 256, 2 layers, seq-len 256, batch 32
//! - `wide`:  hidden 512, 1 layer,  seq-len 128, batch 64
//! - `small`: hidden 32,  1 layer,  seq-len 64,  batch 8
//!
//! Run: `cargo bench --bench cpu_ops` (a filter narrows it, e.g. `-- lstm/seq`).

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;
use wavelstm::cpu::adam::adam_step;
use wavelstm::cpu::lstm::{lstm_backward, lstm_forward, LstmCache, LstmGrads, LstmShape, Pass};
use wavelstm::cpu::matmul::{gemm, Op};
use wavelstm::cpu::network::{backward, forward, mse_loss, Workspace};
use wavelstm::flops;
use wavelstm::model::{init_params, ModelConfig};
use wavelstm::optim::AdamConfig;
use wavelstm::preset::Defaults;
use wavelstm::rng::SplitMix64;

struct Workload {
    name: &'static str,
    hidden: usize,
    layers: usize,
    t: usize,
    b: usize,
}

const WORKLOADS: [Workload; 3] = [
    Workload {
        name: "seq",
        hidden: 256,
        layers: 2,
        t: 256,
        b: 32,
    },
    Workload {
        name: "wide",
        hidden: 512,
        layers: 1,
        t: 128,
        b: 64,
    },
    Workload {
        name: "small",
        hidden: 32,
        layers: 1,
        t: 64,
        b: 8,
    },
];

fn config(w: &Workload) -> ModelConfig {
    ModelConfig {
        hidden: w.hidden,
        layers: w.layers,
        ..Defaults::of(None).model(1)
    }
}

fn random(rng: &mut SplitMix64, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.uniform(-1.0, 1.0) as f32).collect()
}

fn quick(c: &mut Criterion) -> criterion::BenchmarkGroup<'_, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group("cpu");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    g
}

/// The register tile the fast products are made of, alone, on each vector
/// instruction set this CPU runs: both panels (`k·MR` and `k·NR` values)
/// stay in L1, so this is the tile's own rate on one core, the ceiling of
/// the products below. The portable tile is left out: it is a plain loop
/// whose speed is whatever its caller's inlining makes of it (here it came
/// out scalar, about six times slower than inside the recurrence), so the
/// products measure it instead.
fn bench_tile(c: &mut Criterion) {
    use wavelstm::cpu::isa::Isa;
    use wavelstm::cpu::tile::{tile_f32_on, Start, MR, NR};
    let mut g = quick(c);
    let mut rng = SplitMix64::new(3);
    for k in [64, 128, 256] {
        let (a, b) = (random(&mut rng, k * MR), random(&mut rng, k * NR));
        let mut out = [0.0f32; MR * NR];
        g.throughput(Throughput::Elements((2 * MR * NR * k) as u64));
        for isa in Isa::all_supported() {
            if isa == Isa::Portable {
                continue;
            }
            let id = BenchmarkId::new(format!("tile/{isa:?}"), k);
            g.bench_function(id, |bench| {
                bench.iter(|| {
                    // SAFETY: the panels hold k·MR and k·NR values; the CPU runs `isa`.
                    unsafe {
                        tile_f32_on(
                            isa,
                            k,
                            black_box(a.as_ptr()),
                            b.as_ptr(),
                            &mut out,
                            Start::Zero,
                        )
                    };
                    black_box(out[0])
                })
            });
        }
    }
    g.finish();
}

/// The two products a layer is made of: the input projection of all
/// timesteps at once and one timestep's recurrent product.
fn bench_gemm(c: &mut Criterion) {
    let mut g = quick(c);
    let mut rng = SplitMix64::new(1);
    for w in &WORKLOADS {
        let (h4, tb) = (4 * w.hidden, w.t * w.b);
        for (what, m, k) in [("projection", tb, w.hidden), ("recurrent", w.b, w.hidden)] {
            let a = random(&mut rng, m * k);
            let bw = random(&mut rng, h4 * k);
            let mut out = vec![0.0f32; m * h4];
            g.throughput(Throughput::Elements(flops::gemm(m, h4, k) as u64));
            g.bench_function(BenchmarkId::new(format!("gemm/{what}"), w.name), |bench| {
                bench.iter(|| {
                    gemm(
                        Op::N,
                        Op::T,
                        m,
                        h4,
                        k,
                        1.0,
                        black_box(&a),
                        k,
                        &bw,
                        k,
                        0.0,
                        &mut out,
                        h4,
                    )
                })
            });
        }
    }
    g.finish();
}

/// One LSTM layer (the top one of the workload, input H, or input 1 for a
/// single layer), forward and backward apart.
fn bench_lstm(c: &mut Criterion) {
    let mut g = quick(c);
    for w in &WORKLOADS {
        let cfg = config(w);
        let k = w.layers - 1;
        let layout = cfg.layout();
        let mut rng = SplitMix64::new(2);
        let params = init_params(&cfg, &mut rng);
        let s = LstmShape {
            t: w.t,
            b: w.b,
            i: cfg.layer_input(k),
            h: w.hidden,
            cell: cfg.cell_activation,
            gate: cfg.gate_activation,
        };
        let x = random(&mut rng, s.t * s.b * s.i);
        let zeros = vec![0.0f32; s.b * s.h];
        let mut cache = LstmCache::default();
        let fwd = flops::lstm_layer_forward(s.i, s.h, s.b, s.t);
        g.throughput(Throughput::Elements(fwd as u64));
        let forward = |cache: &mut LstmCache<f32>, x: &[f32]| {
            lstm_forward(
                &s,
                &params,
                &layout.lstm[k],
                x,
                &zeros,
                &zeros,
                cache,
                Pass::Training,
            )
        };
        g.bench_function(BenchmarkId::new("lstm/forward", w.name), |bench| {
            bench.iter(|| forward(&mut cache, black_box(&x)))
        });
        forward(&mut cache, &x);
        let dh = random(&mut rng, s.t * s.b * s.h);
        let mut grads = vec![0.0f32; params.len()];
        let mut dx = vec![0.0f32; x.len()];
        let (mut dh0, mut dc0) = (zeros.clone(), zeros.clone());
        let mut da = Vec::new();
        g.throughput(Throughput::Elements((2.0 * fwd) as u64));
        g.bench_function(BenchmarkId::new("lstm/backward", w.name), |bench| {
            bench.iter(|| {
                lstm_backward(
                    &s,
                    &params,
                    &layout.lstm[k],
                    &x,
                    &cache,
                    black_box(&dh),
                    &mut da,
                    LstmGrads {
                        params: &mut grads,
                        x: if k > 0 { Some(&mut dx) } else { None },
                        h0: &mut dh0,
                        c0: &mut dc0,
                    },
                )
            })
        });
    }
    g.finish();
}

/// A whole training step's math (forward, loss, backward, Adam) as the
/// engine runs it, without the batch gather.
fn bench_step(c: &mut Criterion) {
    let mut g = quick(c);
    for w in &WORKLOADS {
        let cfg = config(w);
        let mut rng = SplitMix64::new(3);
        let mut params = init_params(&cfg, &mut rng);
        let x = random(&mut rng, w.t * w.b);
        let target = random(&mut rng, w.t * w.b);
        let zeros = vec![0.0f32; w.layers * w.b * w.hidden];
        let (mut dh0, mut dc0) = (zeros.clone(), zeros.clone());
        let mut grads = vec![0.0f32; params.len()];
        let (mut m, mut v) = (grads.clone(), grads.clone());
        let mut ws = Workspace::default();
        let mut dpred = Vec::new();
        let adam = AdamConfig::default();
        let mut step = 0;
        g.throughput(Throughput::Elements(
            flops::train_step(&cfg, w.b, w.t) as u64
        ));
        g.bench_function(BenchmarkId::new("train_step", w.name), |bench| {
            bench.iter(|| {
                forward(
                    &cfg,
                    &params,
                    w.t,
                    w.b,
                    black_box(&x),
                    &zeros,
                    &zeros,
                    &mut ws,
                );
                let loss = mse_loss(ws.prediction(), &target, &mut dpred);
                grads.iter_mut().for_each(|g| *g = 0.0);
                backward(
                    &cfg, &params, &x, &dpred, &mut ws, &mut grads, &mut dh0, &mut dc0,
                );
                step += 1;
                adam_step(&adam, step, &mut params, &grads, &mut m, &mut v);
                loss
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_tile, bench_gemm, bench_lstm, bench_step);
criterion_main!(benches);
