//! The WGSL kernels: their sources (each file of `shaders/` behind the shared
//! prelude `shaders/common.wgsl`), and their compiled pipelines, all under
//! one pipeline layout.

use super::uniform::{self, PARAMS_BYTES};
use crate::error::{Error, Result};

/// Every kernel entry point, named `file::entry`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    Gather,
    StateLoad,
    StateSave,
    Matmul,
    MatmulLarge,
    LstmForwardStep,
    LstmForwardSequence,
    LstmBackwardStep,
    LstmBackwardSequence,
    ColumnSum,
    ActivationForward,
    ActivationBackward,
    MseLoss,
    SoftmaxXentRows,
    SoftmaxXentMean,
    SoftmaxXentExpected,
    LawNllRows,
    LawNllMean,
    LawNllLocation,
    GradNormPartial,
    GradNormFinish,
    Adam,
}

pub const ALL: [Kernel; 22] = [
    Kernel::Gather,
    Kernel::StateLoad,
    Kernel::StateSave,
    Kernel::Matmul,
    Kernel::MatmulLarge,
    Kernel::LstmForwardStep,
    Kernel::LstmForwardSequence,
    Kernel::LstmBackwardStep,
    Kernel::LstmBackwardSequence,
    Kernel::ColumnSum,
    Kernel::ActivationForward,
    Kernel::ActivationBackward,
    Kernel::MseLoss,
    Kernel::SoftmaxXentRows,
    Kernel::SoftmaxXentMean,
    Kernel::SoftmaxXentExpected,
    Kernel::LawNllRows,
    Kernel::LawNllMean,
    Kernel::LawNllLocation,
    Kernel::GradNormPartial,
    Kernel::GradNormFinish,
    Kernel::Adam,
];

/// `[(name, source)]` of `shaders/<name>.wgsl` for each name, compiled into the binary.
macro_rules! shaders {
    ($($name:literal),* $(,)?) => {
        [$(($name, include_str!(concat!("../../shaders/", $name, ".wgsl")))),*]
    };
}

/// The shader files, prelude first.
pub const SHADERS: [(&str, &str); 13] = shaders![
    "common",
    "gather",
    "state",
    "matmul",
    "lstm_forward",
    "lstm_backward",
    "column_sum",
    "activation",
    "mse_loss",
    "softmax_xent",
    "law_nll",
    "grad_norm",
    "adam",
];

impl Kernel {
    /// `(shader file, entry point)`.
    pub fn entry(self) -> (&'static str, &'static str) {
        match self {
            Kernel::Gather => ("gather", "main"),
            Kernel::StateLoad => ("state", "load"),
            Kernel::StateSave => ("state", "save"),
            Kernel::Matmul => ("matmul", "main"),
            Kernel::MatmulLarge => ("matmul", "large"),
            Kernel::LstmForwardStep => ("lstm_forward", "step"),
            Kernel::LstmForwardSequence => ("lstm_forward", "sequence"),
            Kernel::LstmBackwardStep => ("lstm_backward", "step"),
            Kernel::LstmBackwardSequence => ("lstm_backward", "sequence"),
            Kernel::ColumnSum => ("column_sum", "main"),
            Kernel::ActivationForward => ("activation", "forward"),
            Kernel::ActivationBackward => ("activation", "backward"),
            Kernel::MseLoss => ("mse_loss", "main"),
            Kernel::SoftmaxXentRows => ("softmax_xent", "rows"),
            Kernel::SoftmaxXentMean => ("softmax_xent", "mean"),
            Kernel::SoftmaxXentExpected => ("softmax_xent", "expected"),
            Kernel::LawNllRows => ("law_nll", "rows"),
            Kernel::LawNllMean => ("law_nll", "mean"),
            Kernel::LawNllLocation => ("law_nll", "location"),
            Kernel::GradNormPartial => ("grad_norm", "partial"),
            Kernel::GradNormFinish => ("grad_norm", "finish"),
            Kernel::Adam => ("adam", "main"),
        }
    }

    pub fn name(self) -> String {
        let (file, entry) = self.entry();
        format!("{file}::{entry}")
    }
}

/// The workgroup reductions, put after the prelude of the files in [`REDUCING`].
pub const REDUCE: &str = include_str!("../../shaders/reduce.wgsl");

/// The shader files that reduce over a workgroup.
pub const REDUCING: [&str; 4] = ["mse_loss", "softmax_xent", "law_nll", "grad_norm"];

/// The full source of one shader file: the prelude (and the reductions,
/// where the file uses them), the file's `Params` (generated from its Rust
/// struct, `gpu::uniform`), then the file.
pub fn source(file: &str) -> Option<String> {
    let body = SHADERS.iter().find(|(n, _)| *n == file)?.1;
    let reduce = if REDUCING.contains(&file) { REDUCE } else { "" };
    let params = uniform::fields_of(file).map_or_else(String::new, |f| uniform::wgsl(&f));
    Some(format!("{}\n{reduce}\n{params}\n{body}", SHADERS[0].1))
}

/// Storage buffers of the shared bind group, in binding order (see
/// shaders/common.wgsl); all read-write except `signal` and `lanes`.
pub const BINDINGS: [(&str, bool); 8] = [
    ("params", false),
    ("grads", false),
    ("moments", false),
    ("acts", false),
    ("signal", true),
    ("lanes", true),
    ("stats", false),
    ("carry", false),
];

pub struct Pipelines {
    pub storage_layout: wgpu::BindGroupLayout,
    pub params_layout: wgpu::BindGroupLayout,
    pipelines: Vec<(Kernel, wgpu::ComputePipeline)>,
}

impl Pipelines {
    pub fn new(device: &wgpu::Device) -> Result<Pipelines> {
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let storage_entries: Vec<wgpu::BindGroupLayoutEntry> = BINDINGS
            .iter()
            .enumerate()
            .map(|(i, &(_, read_only))| wgpu::BindGroupLayoutEntry {
                binding: i as u32,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage { read_only },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            })
            .collect();
        let storage_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("storage"),
            entries: &storage_entries,
        });
        let params_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("params"),
            entries: &[wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: true,
                    min_binding_size: wgpu::BufferSize::new(PARAMS_BYTES as u64),
                },
                count: None,
            }],
        });
        let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("wavelstm"),
            bind_group_layouts: &[Some(&storage_layout), Some(&params_layout)],
            immediate_size: 0,
        });
        let mut modules = Vec::new();
        for (file, _) in &SHADERS[1..] {
            let src = source(file).expect("listed shader");
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(file),
                source: wgpu::ShaderSource::Wgsl(src.into()),
            });
            modules.push((*file, module));
        }
        let mut pipelines = Vec::new();
        for k in ALL {
            let (file, entry) = k.entry();
            let module = &modules.iter().find(|(f, _)| *f == file).expect("module").1;
            let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(&k.name()),
                layout: Some(&layout),
                module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            });
            pipelines.push((k, pipeline));
        }
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Other(format!("GPU kernels failed to build: {e}")));
        }
        Ok(Pipelines {
            storage_layout,
            params_layout,
            pipelines,
        })
    }

    /// The bind group of the eight storage buffers, in [`BINDINGS`] order.
    pub fn storage_group(
        &self,
        device: &wgpu::Device,
        label: &str,
        buffers: [&wgpu::Buffer; 8],
    ) -> wgpu::BindGroup {
        let entries: Vec<wgpu::BindGroupEntry> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout: &self.storage_layout,
            entries: &entries,
        })
    }

    pub fn get(&self, k: Kernel) -> &wgpu::ComputePipeline {
        &self
            .pipelines
            .iter()
            .find(|(kk, _)| *kk == k)
            .expect("every kernel has a pipeline")
            .1
    }
}
