//! Every WGSL kernel of a training step, timed by the GPU itself: the
//! device time of each kernel per step, from timestamp queries written
//! around each dispatch (`GpuEngine::set_profiling`), at the shapes of the
//! `small` and `seed` workloads (`wavelstm::bench`). Forward and backward
//! kernels are separate entries (`lstm_forward::sequence`,
//! `lstm_backward::sequence`, ...); a kernel dispatched several times in a
//! step (the matrix products) is the sum of its dispatches.
//!
//! Each measurement runs real profiled training steps and reports the
//! named kernel's share of their device time, so criterion's statistics
//! are over real runs. The `seq` and `wide` shapes take seconds to minutes
//! a step on a software adapter (Mesa's lavapipe), too long for repeated
//! sampling; `wavelstm bench --workload seq --device gpu --profile` gives
//! their per-kernel table from a few steps.
//!
//! Without an adapter (or one without timestamp queries) this prints why
//! and measures nothing. `WAVELSTM_ADAPTER` picks an adapter by name.
//!
//! Run: `cargo bench --bench gpu_ops`.

use criterion::{criterion_group, criterion_main, Criterion};
use std::time::Duration;
use wavelstm::bench::{self, Workload};
use wavelstm::engine::Engine;
use wavelstm::gpu::context::{self, Gpu};
use wavelstm::gpu::engine::{GpuEngine, PathChoice};

fn open() -> Result<Gpu, String> {
    let name = std::env::var("WAVELSTM_ADAPTER").ok();
    let adapter = context::choose(name.as_deref(), false)
        .map_err(|e| e.to_string())?
        .ok_or("no GPU adapter (Vulkan, Metal or DX12)")?;
    let gpu = Gpu::open(adapter).map_err(|e| e.to_string())?;
    if gpu.timestamps {
        Ok(gpu)
    } else {
        Err(format!("{} has no timestamp queries", gpu.info.name))
    }
}

fn bench_kernels(c: &mut Criterion) {
    let gpu = match open() {
        Ok(gpu) => gpu,
        Err(why) => {
            eprintln!("gpu_ops: skipped: {why}");
            return;
        }
    };
    let mut g = c.benchmark_group("gpu");
    g.warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10);
    for name in ["small", "seed"] {
        let w = Workload::by_name(name).expect("a workload");
        let mut engine = GpuEngine::new(
            gpu.clone(),
            w.model.clone(),
            w.adam(),
            w.params(),
            PathChoice::Auto,
            10,
        )
        .expect("a GPU engine");
        bench::prepare(&mut engine, &w).expect("the signal");
        // Warm: pipelines built, the path chosen, buffers sized.
        bench::run_steps(&mut engine, &w, 3).expect("warm-up steps");
        engine.set_profiling(true);
        bench::run_steps(&mut engine, &w, 1).expect("a profiled step");
        let kernels: Vec<String> = engine.profile().into_iter().map(|k| k.kernel).collect();
        eprintln!(
            "gpu_ops: {name} on {}: {} dispatches per step, {} kernels",
            gpu.info.name,
            engine.dispatches_per_step(w.seq_len, w.batch, true),
            kernels.len()
        );
        for kernel in kernels {
            g.bench_function(format!("{kernel}/{name}"), |b| {
                b.iter_custom(|steps| {
                    engine.set_profiling(true);
                    bench::run_steps(&mut engine, &w, steps as usize).expect("profiled steps");
                    let seconds = engine
                        .profile()
                        .iter()
                        .find(|k| k.kernel == kernel)
                        .map_or(0.0, |k| k.seconds);
                    Duration::from_secs_f64(seconds)
                })
            });
        }
        engine.set_profiling(false);
        // The loss ring is read back, so a failed step is not left unseen.
        engine.take_stats(true).expect("the steps' stats");
    }
    g.finish();
}

criterion_group!(benches, bench_kernels);
criterion_main!(benches);
