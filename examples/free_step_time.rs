//! Time one free-running step of a model on the CPU, alone, in
//! microseconds per step (median of several runs).
//!
//! cargo run --release --example free_step_time -- [hidden] [takes] [threads] [steps]

use std::time::Instant;
use wavelstm::cpu::fast_step::FastStep;
use wavelstm::model::{init_params, ModelConfig};
use wavelstm::preset::Defaults;
use wavelstm::rng::SplitMix64;

fn main() {
    let arg = |i: usize, d: usize| {
        std::env::args()
            .nth(i)
            .map_or(d, |s| s.parse().expect("a number"))
    };
    let (hidden, takes, threads, steps) = (arg(1, 256), arg(2, 1), arg(3, 2), arg(4, 20000));
    let cfg = ModelConfig {
        hidden,
        ..Defaults::of(None).model(1)
    };
    let params = init_params(&cfg, &mut SplitMix64::new(1));
    let mut fast = FastStep::new(&cfg, &params, threads);
    let (mut h, mut c) = (vec![0.0f32; takes * hidden], vec![0.0f32; takes * hidden]);
    let mut x = vec![0.1f32; takes];
    let mut runs = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        for _ in 0..steps {
            let y = fast.step(takes, &x, &mut h, &mut c);
            for (xi, &yi) in x.iter_mut().zip(y) {
                *xi = yi.clamp(-1.0, 1.0);
            }
        }
        runs.push(t.elapsed().as_secs_f64() * 1e6 / steps as f64);
    }
    runs.sort_by(f64::total_cmp);
    println!(
        "hidden {hidden}, {takes} take(s), {} thread(s): {:.2} µs/step median (min {:.2}, max {:.2}); real-time factor at 44.1 kHz {:.2}",
        fast.threads(),
        runs[3],
        runs[0],
        runs[6],
        1e6 / 44100.0 / runs[3]
    );
}
