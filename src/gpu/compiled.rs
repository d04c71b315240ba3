//! A [`Program`] with its parameters on the device, ready to submit.

use super::context::Gpu;
use super::kernels::{Kernel, Pipelines};
use super::program::Program;
use super::uniform::PARAMS_BYTES;

pub struct Compiled {
    pub bind: wgpu::BindGroup,
    _uniforms: wgpu::Buffer,
    /// Kernel, offset of its parameters in the uniform buffer, workgroups.
    pub dispatches: Vec<(Kernel, u32, [u32; 3])>,
}

impl Compiled {
    /// Pack every dispatch's parameters at the device's uniform offset alignment.
    pub fn new(gpu: &Gpu, pipes: &Pipelines, program: &Program) -> Compiled {
        let align = gpu
            .limits
            .min_uniform_buffer_offset_alignment
            .max(PARAMS_BYTES as u32) as usize;
        let mut bytes = vec![0u8; program.dispatches.len().max(1) * align];
        let mut dispatches = Vec::with_capacity(program.dispatches.len());
        for (i, d) in program.dispatches.iter().enumerate() {
            bytes[i * align..i * align + PARAMS_BYTES]
                .copy_from_slice(bytemuck::cast_slice(&d.params));
            dispatches.push((d.kernel, (i * align) as u32, d.groups));
        }
        let uniforms = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("dispatch parameters"),
            size: bytes.len() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        gpu.queue.write_buffer(&uniforms, 0, &bytes);
        let bind = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("dispatch parameters"),
            layout: &pipes.params_layout,
            entries: &[wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &uniforms,
                    offset: 0,
                    size: wgpu::BufferSize::new(PARAMS_BYTES as u64),
                }),
            }],
        });
        Compiled {
            bind,
            _uniforms: uniforms,
            dispatches,
        }
    }

    /// Record every dispatch into one compute pass and submit it.
    pub fn submit(&self, gpu: &Gpu, pipes: &Pipelines, storage: &wgpu::BindGroup) {
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("step"),
                timestamp_writes: None,
            });
            pass.set_bind_group(0, storage, &[]);
            for &(kernel, offset, [x, y, z]) in &self.dispatches {
                pass.set_pipeline(pipes.get(kernel));
                pass.set_bind_group(1, &self.bind, &[offset]);
                pass.dispatch_workgroups(x, y, z);
            }
        }
        gpu.queue.submit([enc.finish()]);
    }
}
