//! One test body run on every engine: the CPU engine always, the GPU engine
//! when the machine has an adapter (skipped with a note when it has none,
//! a failure when WAVELSTM_REQUIRE_GPU=1, as CI sets it: `gpu::gpu`).

use super::gpu::gpu;
use wavelstm::cpu::engine::CpuEngine;
use wavelstm::engine::Engine;
use wavelstm::gpu::engine::{GpuEngine, PathChoice};
use wavelstm::model::ModelConfig;
use wavelstm::optim::AdamConfig;

/// Run `body` on a fresh engine of each kind holding `params` for `cfg`,
/// handing it the engine's name for its messages.
pub fn for_each_engine(cfg: &ModelConfig, params: &[f32], body: impl Fn(&str, &mut dyn Engine)) {
    let adam = AdamConfig::default();
    let mut cpu = CpuEngine::new(cfg.clone(), adam, params.to_vec()).expect("a CPU engine");
    body("cpu", &mut cpu);
    if let Some(gpu) = gpu() {
        let mut gpu = GpuEngine::new(
            gpu.clone(),
            cfg.clone(),
            adam,
            params.to_vec(),
            PathChoice::Auto,
            1,
        )
        .expect("a GPU engine");
        body("gpu", &mut gpu);
    }
}
