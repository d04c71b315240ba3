//! `wavelstm devices`: every GPU adapter wgpu sees, and the limits the engine checks.

use crate::error::Result;
use crate::gpu::context;

/// `wavelstm devices`: every adapter wgpu sees, and what the engine uses of it.
pub(super) fn run() -> Result<()> {
    let all = context::adapters();
    if all.is_empty() {
        println!("no GPU adapters (Vulkan, Metal, DX12) found; --device auto uses the CPU");
        return Ok(());
    }
    for a in all {
        let info = a.get_info();
        let l = a.limits();
        println!("{}", context::describe(&info));
        println!(
            "  auto picks it: {}; timestamp queries: {}",
            if context::is_hardware(&info) {
                "yes"
            } else {
                "no (software)"
            },
            if a.features().contains(wgpu::Features::TIMESTAMP_QUERY) {
                "yes"
            } else {
                "no"
            }
        );
        println!(
            "  max_storage_buffer_binding_size {} MiB, max_buffer_size {} MiB, storage buffers per stage {}",
            l.max_storage_buffer_binding_size >> 20,
            l.max_buffer_size >> 20,
            l.max_storage_buffers_per_shader_stage
        );
        println!(
            "  workgroup: {} invocations, {} B shared memory, {} workgroups per dimension",
            l.max_compute_invocations_per_workgroup,
            l.max_compute_workgroup_storage_size,
            l.max_compute_workgroups_per_dimension
        );
    }
    Ok(())
}
