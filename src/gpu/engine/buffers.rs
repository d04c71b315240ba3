//! The engine's device buffers: creating them within the device's limits,
//! growing the activation arena and the carried state, and the one bind
//! group of all eight (binding order in `kernels::BINDINGS`).

use super::GpuEngine;
use crate::error::{Error, Result};
use crate::gpu::arena::{Arena, CarryLayout};
use crate::gpu::context::Gpu;

const USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_DST)
    .union(wgpu::BufferUsages::COPY_SRC);

impl GpuEngine {
    /// Refuse a buffer larger than the device can bind, naming the limit.
    pub(super) fn check_size(&self, what: &str, elements: usize) -> Result<()> {
        let bytes = elements as u64 * 4;
        let l = &self.gpu.limits;
        let max = l.max_storage_buffer_binding_size.min(l.max_buffer_size);
        if bytes > max || elements > u32::MAX as usize {
            return Err(Error::config(format!(
                "{what} need {:.1} MiB on the GPU, more than {}'s max_storage_buffer_binding_size / max_buffer_size ({:.1} MiB)",
                bytes as f64 / (1 << 20) as f64,
                self.gpu.info.name,
                max as f64 / (1 << 20) as f64
            )));
        }
        Ok(())
    }

    pub(super) fn create(&self, label: &str, elements: usize) -> Result<wgpu::Buffer> {
        self.check_size(label, elements)?;
        let scope = self
            .gpu
            .device
            .push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let b = buffer(&self.gpu, label, elements);
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Other(format!(
                "cannot allocate the {label} buffer ({} MiB) on the GPU: {e}",
                (elements * 4) >> 20
            )));
        }
        Ok(b)
    }

    /// Make the activation arena hold a (T, B) pass, refusing shapes the
    /// device cannot bind with the largest batch that would fit.
    pub(super) fn ensure_acts(&mut self, t: usize, b: usize) -> Result<()> {
        // A matmul over all T·B rows runs in blocks of 16 rows, one grid row
        // of workgroups each; the sequence path runs a workgroup per lane.
        let max_groups = self.gpu.limits.max_compute_workgroups_per_dimension as usize;
        if (t * b).div_ceil(16) > max_groups || b > max_groups {
            return Err(Error::config(format!(
                "--seq-len {t} × --batch {b} = {} rows is more than {}'s max_compute_workgroups_per_dimension ({max_groups}) allows: at most {} rows",
                t * b,
                self.gpu.info.name,
                16 * max_groups
            )));
        }
        let need = Arena::new(&self.cfg, t, b).total;
        if need <= self.acts_cap {
            return Ok(());
        }
        if let Err(e) = self.check_size("the activations", need) {
            let fits = (1..b).rev().find(|&bb| {
                self.check_size("", Arena::new(&self.cfg, t, bb).total)
                    .is_ok()
            });
            return Err(Error::config(format!(
                "{e}; at --seq-len {t} the largest batch that fits is {}",
                fits.map(|f| f.to_string()).unwrap_or_else(|| "none".into())
            )));
        }
        self.acts = self.create("activations", need)?;
        self.acts_cap = need;
        self.storage = None;
        Ok(())
    }

    pub(super) fn ensure_lanes(&mut self, b: usize) -> Result<()> {
        if b > self.lanes_cap {
            self.lanes = self.create("lanes", 2 * b)?;
            self.lanes_cap = b;
            self.storage = None;
        }
        if b > self.carry_layout.lanes {
            let old = self.carry_layout;
            let new = CarryLayout::new(&self.cfg, b);
            let buf = self.create("carried state", new.total())?;
            let mut enc = self.gpu.device.create_command_encoder(&Default::default());
            let per = |lanes: usize| (self.cfg.layers * lanes * self.cfg.hidden * 4) as u64;
            for (from, to, lanes) in [
                (old.train_h(), new.train_h(), self.train_lanes),
                (old.train_c(), new.train_c(), self.train_lanes),
                (old.predict_h(), new.predict_h(), self.predict_lanes),
                (old.predict_c(), new.predict_c(), self.predict_lanes),
            ] {
                if lanes > 0 {
                    enc.copy_buffer_to_buffer(
                        &self.carry,
                        (from * 4) as u64,
                        &buf,
                        (to * 4) as u64,
                        per(lanes),
                    );
                }
            }
            self.gpu.queue.submit([enc.finish()]);
            self.carry = buf;
            self.carry_layout = new;
            self.storage = None;
            // Programs hold carry offsets.
            self.programs.clear();
        }
        Ok(())
    }

    pub(super) fn storage(&mut self) -> &wgpu::BindGroup {
        if self.storage.is_none() {
            let buffers = [
                &self.params,
                &self.grads,
                &self.moments,
                &self.acts,
                &self.signal,
                &self.lanes,
                &self.stats,
                &self.carry,
            ];
            self.storage = Some(
                self.pipes
                    .storage_group(&self.gpu.device, "storage", buffers),
            );
        }
        self.storage.as_ref().expect("just made")
    }
}

pub(super) fn buffer(gpu: &Gpu, label: &str, elements: usize) -> wgpu::Buffer {
    gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: (elements.max(1) * 4) as u64,
        usage: USAGE,
        mapped_at_creation: false,
    })
}
