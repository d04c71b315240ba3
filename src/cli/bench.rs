//! `wavelstm bench`: throughput of the benchmark workloads, as a table or
//! JSON, and on a GPU optionally where each step's device time goes.

use super::{CommonArgs, Device};
use crate::bench;
use crate::engine::open::Opened;
use crate::error::{Error, Result};
use crate::gpu::{self, engine::GpuEngine};
use clap::Args;

#[derive(Args, Debug)]
#[command(
    after_help = "Workloads: seed (the --preset seed model, one epoch of 320,000 windows at batch 100), \
seq (hidden 256, 2 layers, seq-len 256, batch 32), wide (hidden 512, 1 layer, seq-len 128, batch 64), \
small (hidden 32, 1 layer, seq-len 64, batch 8), seq-infer and wide-infer (forward only), \
generate (free-running generation, hidden 256, 1 layer, one take) and generate-8 (8 takes as \
one batch). Each timed training step waits for the device to finish it. GFLOP/s count the \
LSTM's matrix products only: 3 × Σ over layers of 2·4H(I+H)·B·T per training step; for \
generation, Σ over layers of 2·4H(I+H)·B plus the head's products per free step. Generation is \
timed one second of audio (44,100 free steps) per take at a time, after a 10-ms prime; rtf is \
seconds of audio per wall-clock second, every take counted (and per take)."
)]
pub(super) struct BenchArgs {
    /// Workloads, comma-separated: seed, seq, wide, small, seq-infer,
    /// wide-infer, generate, generate-8.
    #[arg(long, value_delimiter = ',', required = true)]
    workload: Vec<String>,
    /// Timed steps after the warm-up (at least 20 for a fair median);
    /// generation: timed seconds of audio per take [default: 20; generate: 5].
    #[arg(long)]
    steps: Option<usize>,
    /// Untimed steps first [default: 3; seed: 300; generate: 1 second of audio].
    #[arg(long)]
    warmup: Option<usize>,
    /// Timed epochs of the seed workload.
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    /// One JSON object per workload on stdout instead of a table.
    #[arg(long)]
    json: bool,
    /// GPU: device time per kernel of a few extra steps, the dispatches per
    /// step and the recurrence path.
    #[arg(long)]
    profile: bool,
    #[command(flatten)]
    pub(super) common: CommonArgs,
}

/// Steps of a GPU profile (each runs one pass per kernel and waits, so it is
/// timed apart from the measurement).
const PROFILE_STEPS: usize = 3;

pub(super) fn run(a: &BenchArgs) -> Result<()> {
    let workloads = a
        .workload
        .iter()
        .map(|n| bench::Workload::by_name(n.trim()))
        .collect::<Result<Vec<_>>>()?;
    if a.profile && !a.json && a.common.device == Device::Cpu {
        eprintln!(
            "--profile: the CPU engine has no kernel profile (see `cargo bench --bench cpu_ops`)"
        );
    }
    for w in &workloads {
        let mut opened =
            super::open_engine(&a.common.engine_choice(), &w.model, w.adam(), w.params())?;
        let engine = opened.engine();
        let device = engine.describe();
        eprintln!("bench {} on {device}...", w.name);
        bench::prepare(engine, w)?;
        let plan = match w.kind {
            bench::Kind::Epoch => bench::Plan {
                warmup: a.warmup.unwrap_or(300),
                repeats: a.epochs,
            },
            bench::Kind::Train | bench::Kind::Infer => bench::Plan {
                warmup: a.warmup.unwrap_or(3),
                repeats: a.steps.unwrap_or(20),
            },
            // Seconds of audio: a few make a steady median and keep the
            // workload to seconds (generate-8 runs 8 takes per second).
            bench::Kind::Generate => bench::Plan {
                warmup: a.warmup.unwrap_or(1),
                repeats: a.steps.unwrap_or(5),
            },
        };
        let m = bench::measure(engine, w, plan)?;
        let profile = match &mut opened {
            Opened::Gpu(g) if a.profile => Some(gpu_profile(g, w)?),
            _ => None,
        };
        if a.json {
            let mut doc = serde_json::json!({ "engine": "wavelstm", "device": device });
            let fields = serde_json::to_value(&m).map_err(|e| Error::Other(e.to_string()))?;
            doc.as_object_mut()
                .expect("an object")
                .extend(fields.as_object().expect("a struct").clone());
            if let Some(p) = &profile {
                doc["profile"] =
                    serde_json::to_value(p).map_err(|e| Error::Other(e.to_string()))?;
            }
            println!("{doc}");
        } else {
            print_measurement(&device, &m);
            if let Some(p) = &profile {
                print_profile(p);
            }
        }
    }
    Ok(())
}

/// Where a GPU step's device time goes.
#[derive(serde::Serialize)]
struct GpuProfile {
    /// What one profiled step is.
    step: &'static str,
    path: Option<String>,
    dispatches_per_step: Option<usize>,
    /// Per kernel: dispatches and milliseconds per step, largest first
    /// (empty when the adapter has no timestamp queries).
    kernels: Vec<(String, f64, f64)>,
    timestamps: bool,
}

fn gpu_profile(engine: &mut GpuEngine, w: &bench::Workload) -> Result<GpuProfile> {
    let training = matches!(w.kind, bench::Kind::Train | bench::Kind::Epoch);
    let timestamps = engine.set_profiling(true);
    bench::run_steps(engine, w, PROFILE_STEPS)?;
    let steps = PROFILE_STEPS as f64;
    let kernels = engine
        .profile()
        .into_iter()
        .map(|k| {
            (
                k.kernel,
                k.dispatches as f64 / steps,
                1e3 * k.seconds / steps,
            )
        })
        .collect();
    engine.set_profiling(false);
    let (step, path) = match w.kind {
        bench::Kind::Train | bench::Kind::Epoch => {
            ("training step", engine.path(w.seq_len, w.batch))
        }
        bench::Kind::Infer => ("forward pass", engine.path(w.seq_len, w.batch)),
        // A free step is one timestep: it always runs the per-timestep dispatches.
        bench::Kind::Generate => ("free step of every take", Some(gpu::program::Path::Step)),
    };
    Ok(GpuProfile {
        step,
        path: path.map(|p| format!("{p:?}").to_lowercase()),
        dispatches_per_step: training.then(|| engine.dispatches_per_step(w.seq_len, w.batch, true)),
        kernels,
        timestamps,
    })
}

fn print_measurement(device: &str, m: &bench::Measurement) {
    let unit = match m.kind {
        bench::Kind::Epoch => "epochs",
        bench::Kind::Train | bench::Kind::Infer => "steps",
        bench::Kind::Generate => "s of audio per take",
    };
    let rtf = match (m.rtf, m.rtf_per_take) {
        (Some(all), Some(one)) => format!(
            ", real-time factor {}x ({}x per take)",
            three_digits(all),
            three_digits(one)
        ),
        _ => String::new(),
    };
    println!(
        "{:<10} {device}: median {:.4} s (min {:.4}, max {:.4}; {} {unit}), {:.3} ms/step, {:.0} samples/s, {:.1} GFLOP/s{rtf}",
        m.workload, m.median_s, m.min_s, m.max_s, m.repeats, m.ms_per_step, m.samples_per_s, m.gflops
    );
}

/// `x` to three significant digits: a software GPU's real-time factor is
/// thousandths, a fast CPU's tens.
fn three_digits(x: f64) -> String {
    let decimals = if x.is_finite() && x > 0.0 {
        (2 - x.log10().floor() as i32).clamp(0, 9) as usize
    } else {
        2
    };
    format!("{x:.decimals$}")
}

fn print_profile(p: &GpuProfile) {
    let path = p.path.as_deref().unwrap_or("not chosen yet");
    println!("  a step below is one {}", p.step);
    match p.dispatches_per_step {
        Some(d) => println!("  recurrence path: {path}; {d} dispatches per training step"),
        None => println!("  recurrence path: {path}"),
    }
    if !p.timestamps {
        println!("  (this adapter has no timestamp queries: no kernel times)");
        return;
    }
    let total: f64 = p.kernels.iter().map(|k| k.2).sum();
    println!(
        "  {:<28} {:>12} {:>12} {:>7}",
        "kernel", "dispatches", "ms/step", "share"
    );
    for (name, n, ms) in &p.kernels {
        println!(
            "  {name:<28} {n:>12.1} {ms:>12.3} {:>6.1}%",
            100.0 * ms / total.max(1e-12)
        );
    }
    println!("  {:<28} {:>12} {total:>12.3}", "device total", "");
}
