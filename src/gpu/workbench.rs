//! The engine's eight buffers filled from the host, for running any
//! [`Program`] on chosen inputs and reading any tensor back: how the tests
//! hold each kernel against its CPU twin without a whole training step.

use super::compiled::Compiled;
use super::context::Gpu;
use super::kernels::{Pipelines, BINDINGS};
use super::program::Program;
use crate::error::Result;

/// The buffers of the shared bind group, in binding order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Buf {
    Params = 0,
    Grads,
    Moments,
    Acts,
    Signal,
    Lanes,
    Stats,
    Carry,
}

pub struct Workbench {
    gpu: Gpu,
    pipes: Pipelines,
    buffers: Vec<wgpu::Buffer>,
}

impl Workbench {
    /// Every buffer starts as one zero.
    pub fn new(gpu: &Gpu) -> Result<Workbench> {
        let pipes = Pipelines::new(&gpu.device)?;
        let buffers = BINDINGS.iter().map(|_| make(gpu, &[0])).collect();
        Ok(Workbench {
            gpu: gpu.clone(),
            pipes,
            buffers,
        })
    }

    /// Replace a buffer's contents (and size) with `data`.
    pub fn set(&mut self, b: Buf, data: &[f32]) {
        self.set_bits(b, &data.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
    }

    pub fn set_bits(&mut self, b: Buf, data: &[u32]) {
        self.buffers[b as usize] = make(&self.gpu, data);
    }

    pub fn run(&self, program: &Program) -> Result<()> {
        let buffers = std::array::from_fn(|i| &self.buffers[i]);
        let storage = self
            .pipes
            .storage_group(&self.gpu.device, "workbench", buffers);
        Compiled::new(&self.gpu, &self.pipes, program).submit(&self.gpu, &self.pipes, &storage);
        self.gpu.wait()
    }

    pub fn read(&self, b: Buf, offset: usize, len: usize) -> Result<Vec<f32>> {
        self.gpu.read_f32(&self.buffers[b as usize], offset, len)
    }
}

fn make(gpu: &Gpu, data: &[u32]) -> wgpu::Buffer {
    let data = if data.is_empty() { &[0][..] } else { data };
    let buffer = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("workbench"),
        size: (data.len() * 4) as u64,
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_DST
            | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    gpu.queue
        .write_buffer(&buffer, 0, bytemuck::cast_slice(data));
    buffer
}
