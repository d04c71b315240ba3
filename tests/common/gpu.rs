//! What the GPU tests share: one device per test binary (failing instead of
//! skipping under WAVELSTM_REQUIRE_GPU=1), random inputs, and the relative
//! error they are judged by.

use std::sync::OnceLock;
use wavelstm::engine::Engine;
use wavelstm::gpu::context::{self, Gpu};
use wavelstm::rng::SplitMix64;

/// One device for the whole test binary (each device starts its own
/// thread pool on lavapipe).
pub fn gpu() -> Option<&'static Gpu> {
    static GPU: OnceLock<Option<Gpu>> = OnceLock::new();
    GPU.get_or_init(|| {
        let required = std::env::var("WAVELSTM_REQUIRE_GPU").is_ok_and(|v| v == "1");
        let opened = match context::choose(None, false) {
            Ok(Some(adapter)) => Gpu::open(adapter).map_err(|e| e.to_string()),
            Ok(None) => Err("no GPU adapter (Vulkan, Metal or DX12) found".to_string()),
            Err(e) => Err(e.to_string()),
        };
        match opened {
            Ok(g) => Some(g),
            Err(why) if required => panic!("WAVELSTM_REQUIRE_GPU=1 but {why}"),
            Err(why) => {
                eprintln!("GPU tests skipped: {why}");
                None
            }
        }
    })
    .as_ref()
}

pub fn random(rng: &mut SplitMix64, n: usize, scale: f64) -> Vec<f32> {
    (0..n).map(|_| rng.uniform(-scale, scale) as f32).collect()
}

pub fn f64s(xs: &[f32]) -> Vec<f64> {
    xs.iter().map(|&x| x as f64).collect()
}

/// ‖a − b‖ / max(‖b‖, tiny).
pub fn rel_norm(a: &[f32], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    let diff: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y).powi(2))
        .sum::<f64>()
        .sqrt();
    let norm = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    let r = diff / norm.max(1e-30);
    if r.is_nan() {
        f64::INFINITY
    } else {
        r
    }
}

/// `steps` free-running steps on both engines from `window`, each next
/// window made from the CPU's outputs (any values do: both engines get the
/// same); every step gives `len` outputs, each within `tol`·max(|cpu|, 1) of
/// the CPU's.
pub fn assert_free_run_alike(
    cpu: &mut dyn Engine,
    gpu: &mut dyn Engine,
    mut window: Vec<f32>,
    steps: usize,
    len: usize,
    tol: f32,
    what: &str,
) {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for step in 0..steps {
        cpu.free_step(&window, false, &mut a).unwrap();
        gpu.free_step(&window, false, &mut b).unwrap();
        assert_eq!(a.len(), len);
        for (x, y) in a.iter().zip(&b) {
            assert!(
                (x - y).abs() <= tol * x.abs().max(1.0),
                "{what}: free step {step}: {x} vs {y}"
            );
        }
        for (i, v) in window.iter_mut().enumerate() {
            *v = a[i % a.len()].clamp(-2.0, 2.0);
        }
    }
}
