//! The engine factory: a CPU or a GPU engine, as a run's device options ask.

use super::Engine;
use crate::cpu::engine::CpuEngine;
use crate::error::{Error, Result};
use crate::gpu::{context, engine::GpuEngine, engine::PathChoice};
use crate::model::ModelConfig;
use crate::optim::AdamConfig;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Device {
    /// A hardware GPU adapter if there is one, else the CPU.
    Auto,
    /// A GPU adapter (software ones such as Mesa's lavapipe included).
    Gpu,
    Cpu,
}

/// GPU: read the loss back every this many training steps unless told otherwise.
pub const DEFAULT_READBACK_EVERY: usize = 10;

/// Which engine to open, and how a GPU one runs.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineChoice {
    pub device: Device,
    /// A GPU adapter whose name contains this (case-insensitive).
    pub adapter: Option<String>,
    pub gpu_path: PathChoice,
    /// GPU: read the loss back every N training steps.
    pub readback_every: usize,
}

impl Default for EngineChoice {
    fn default() -> Self {
        EngineChoice {
            device: Device::Auto,
            adapter: None,
            gpu_path: PathChoice::Auto,
            readback_every: DEFAULT_READBACK_EVERY,
        }
    }
}

/// An engine by its type: `bench --profile` asks the GPU one for its kernel times.
pub enum Opened {
    Cpu(Box<CpuEngine>),
    Gpu(Box<GpuEngine>),
}

impl Opened {
    pub fn engine(&mut self) -> &mut dyn Engine {
        match self {
            Opened::Cpu(e) => e.as_mut(),
            Opened::Gpu(e) => e.as_mut(),
        }
    }

    pub fn into_engine(self) -> Box<dyn Engine> {
        match self {
            Opened::Cpu(e) => e,
            Opened::Gpu(e) => e,
        }
    }
}

/// The engine `choice` asks for. `note` receives a line for the user when
/// the engine is not quite what was asked (`auto` without a hardware GPU).
pub fn open_engine(
    choice: &EngineChoice,
    model: &ModelConfig,
    adam: AdamConfig,
    params: Vec<f32>,
    note: &mut dyn FnMut(&str),
) -> Result<Opened> {
    let adapter = match choice.device {
        Device::Cpu => None,
        Device::Gpu => Some(
            context::choose(choice.adapter.as_deref(), false)?.ok_or_else(|| {
                Error::config("--device gpu: no GPU adapter found (Vulkan, Metal or DX12); `wavelstm devices` lists what wgpu sees")
            })?,
        ),
        Device::Auto => {
            let a = context::choose(choice.adapter.as_deref(), choice.adapter.is_none())?;
            if a.is_none() {
                note("--device auto: no hardware GPU adapter, using the CPU");
            }
            a
        }
    };
    match adapter {
        None => Ok(Opened::Cpu(Box::new(CpuEngine::new(
            model.clone(),
            adam,
            params,
        )?))),
        Some(adapter) => {
            let gpu = context::Gpu::open(adapter)?;
            Ok(Opened::Gpu(Box::new(GpuEngine::new(
                gpu,
                model.clone(),
                adam,
                params,
                choice.gpu_path,
                choice.readback_every,
            )?)))
        }
    }
}

/// [`open_engine`], behind the trait.
pub fn make_engine(
    choice: &EngineChoice,
    model: &ModelConfig,
    adam: AdamConfig,
    params: Vec<f32>,
    note: &mut dyn FnMut(&str),
) -> Result<Box<dyn Engine>> {
    Ok(open_engine(choice, model, adam, params, note)?.into_engine())
}
