//! Per-kernel device time: the same program with every dispatch in a
//! compute pass of its own, timestamped (`wavelstm bench --profile`).

use super::{GpuEngine, Key};
use crate::error::Result;

/// Device time spent in one kernel over the profiled runs.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelTime {
    pub kernel: String,
    pub dispatches: usize,
    pub seconds: f64,
}

impl GpuEngine {
    /// The same program with every dispatch in a compute pass of its own,
    /// timestamped at its start and end (WebGPU's portable timestamps are
    /// per pass). Adds each kernel's device time to the profile; waits.
    pub(super) fn run_profiled(&mut self, key: Key) -> Result<()> {
        self.storage();
        let storage = self.storage.as_ref().expect("made above");
        let prog = &self.programs[&key];
        let dev = &self.gpu.device;
        let per_set = (wgpu::QUERY_SET_MAX_QUERIES / 2) as usize;
        let mut times = Vec::with_capacity(prog.dispatches.len());
        for chunk in prog.dispatches.chunks(per_set) {
            let count = 2 * chunk.len() as u32;
            let set = dev.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("kernel timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count,
            });
            let resolved = dev.create_buffer(&wgpu::BufferDescriptor {
                label: Some("timestamps"),
                size: u64::from(count) * 8,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let mut enc = dev.create_command_encoder(&Default::default());
            for (i, &(kernel, offset, [x, y, z])) in chunk.iter().enumerate() {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("profiled"),
                    timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                        query_set: &set,
                        beginning_of_pass_write_index: Some(2 * i as u32),
                        end_of_pass_write_index: Some(2 * i as u32 + 1),
                    }),
                });
                pass.set_bind_group(0, storage, &[]);
                pass.set_pipeline(self.pipes.get(kernel));
                pass.set_bind_group(1, &prog.bind, &[offset]);
                pass.dispatch_workgroups(x, y, z);
            }
            enc.resolve_query_set(&set, 0..count, &resolved, 0);
            self.gpu.queue.submit([enc.finish()]);
            let raw = self.gpu.read_f32(&resolved, 0, 2 * count as usize)?;
            let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&raw);
            let period = f64::from(self.gpu.queue.get_timestamp_period()) * 1e-9;
            for (i, &(kernel, _, _)) in chunk.iter().enumerate() {
                let dt = ticks[2 * i + 1].saturating_sub(ticks[2 * i]) as f64 * period;
                times.push((kernel, dt));
            }
        }
        for (kernel, dt) in times {
            let name = kernel.name();
            match self.profile.iter_mut().find(|k| k.kernel == name) {
                Some(k) => {
                    k.dispatches += 1;
                    k.seconds += dt;
                }
                None => self.profile.push(KernelTime {
                    kernel: name,
                    dispatches: 1,
                    seconds: dt,
                }),
            }
        }
        self.gpu.check()
    }

    /// Time every kernel of the following steps (when the adapter has
    /// timestamp queries; `false` when it has not). Profiled steps run one
    /// pass per dispatch and wait, so they are slower than plain steps.
    pub fn set_profiling(&mut self, on: bool) -> bool {
        self.profiling = on;
        self.profile.clear();
        self.gpu.timestamps
    }

    /// Device time per kernel since profiling was switched on, largest first.
    pub fn profile(&self) -> Vec<KernelTime> {
        let mut p = self.profile.clone();
        p.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
        p
    }
}
