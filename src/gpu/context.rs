//! Finding an adapter, opening a device on it, and turning every wgpu error
//! into an [`Error`] instead of a panic.

use crate::error::{Error, Result};
use std::sync::{Arc, Mutex};

/// Environment variable that picks an adapter by name, like `--adapter`.
pub const ADAPTER_ENV: &str = "WAVELSTM_ADAPTER";

/// An open device and what the engine needs to know about it. Clones share
/// the device.
#[derive(Clone)]
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    /// The limits the device was opened with (the adapter's own, for the
    /// buffer sizes; see [`required_limits`]).
    pub limits: wgpu::Limits,
    pub timestamps: bool,
    /// The first error wgpu reported outside an error scope, or the reason
    /// the device was lost; checked after every submission.
    errors: Arc<Mutex<Option<String>>>,
}

/// Every adapter of the backends this engine runs on (Vulkan, Metal, DX12).
pub fn adapters() -> Vec<wgpu::Adapter> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: wgpu::Backends::PRIMARY,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY))
}

/// A line naming an adapter for the user.
pub fn describe(info: &wgpu::AdapterInfo) -> String {
    format!(
        "{} ({:?}, {:?}{})",
        info.name,
        info.backend,
        info.device_type,
        if info.driver.is_empty() {
            String::new()
        } else {
            format!(", {} {}", info.driver, info.driver_info)
        }
    )
}

/// Whether `auto` takes this adapter: a real GPU, not a software rasterizer
/// (Mesa's lavapipe reports itself as a CPU and runs far slower than the
/// CPU engine; `--device gpu` still takes it when it is all there is).
pub fn is_hardware(info: &wgpu::AdapterInfo) -> bool {
    !matches!(
        info.device_type,
        wgpu::DeviceType::Cpu | wgpu::DeviceType::Other
    )
}

/// Choose an adapter: by name (`--adapter`, else `WAVELSTM_ADAPTER`), or the
/// best one (discrete, then integrated, virtual, software). `hardware_only`
/// is `auto`'s rule. `Ok(None)`: nothing suitable (and no name was asked for).
pub fn choose(name: Option<&str>, hardware_only: bool) -> Result<Option<wgpu::Adapter>> {
    let all = adapters();
    let env = std::env::var(ADAPTER_ENV).ok().filter(|s| !s.is_empty());
    let wanted = name.map(str::to_owned).or(env);
    if let Some(w) = wanted {
        let needle = w.to_lowercase();
        let names: Vec<String> = all.iter().map(|a| describe(&a.get_info())).collect();
        return match all
            .into_iter()
            .find(|a| a.get_info().name.to_lowercase().contains(&needle))
        {
            Some(a) => Ok(Some(a)),
            None => Err(Error::config(format!(
                "no GPU adapter's name contains \"{w}\"; adapters here: {}",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join("; ")
                }
            ))),
        };
    }
    let rank = |t: wgpu::DeviceType| match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    };
    Ok(all
        .into_iter()
        .filter(|a| !hardware_only || is_hardware(&a.get_info()))
        .min_by_key(|a| rank(a.get_info().device_type)))
}

/// The limits the engine asks for: WebGPU's defaults (7 storage buffers,
/// 256 invocations and 16 KiB of workgroup memory per workgroup), raised to
/// what the adapter offers only for the buffer sizes, which bound the model
/// and batch the engine can hold.
pub fn required_limits(adapter: &wgpu::Limits) -> wgpu::Limits {
    wgpu::Limits {
        max_storage_buffer_binding_size: adapter.max_storage_buffer_binding_size,
        max_buffer_size: adapter.max_buffer_size,
        ..wgpu::Limits::default()
    }
}

impl Gpu {
    pub fn open(adapter: wgpu::Adapter) -> Result<Gpu> {
        let info = adapter.get_info();
        let limits = required_limits(&adapter.limits());
        let timestamps = adapter.features().contains(wgpu::Features::TIMESTAMP_QUERY);
        let features = if timestamps {
            wgpu::Features::TIMESTAMP_QUERY
        } else {
            wgpu::Features::empty()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("wavelstm"),
            required_features: features,
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| Error::Other(format!("cannot open {}: {e}", describe(&info))))?;
        let errors = Arc::new(Mutex::new(None::<String>));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let mut slot = sink.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert_with(|| e.to_string());
        }));
        let sink = errors.clone();
        device.set_device_lost_callback(move |reason, msg| {
            let mut slot = sink.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert_with(|| format!("GPU device lost ({reason:?}): {msg}"));
        });
        Ok(Gpu {
            device,
            queue,
            info,
            limits,
            timestamps,
            errors,
        })
    }

    /// The first error wgpu reported since the device opened, as an [`Error`].
    pub fn check(&self) -> Result<()> {
        let slot = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        match slot.as_ref() {
            None => Ok(()),
            Some(e) => Err(Error::Other(format!(
                "GPU error on {}: {e}",
                describe(&self.info)
            ))),
        }
    }

    /// Wait until the device has finished all submitted work.
    pub fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: None,
                timeout: None,
            })
            .map_err(|e| Error::Other(format!("GPU wait failed: {e}")))?;
        self.check()
    }

    /// Copy `len` f32s from `buffer` at element offset `offset` to the host
    /// (blocks until the device has done all submitted work).
    pub fn read_f32(&self, buffer: &wgpu::Buffer, offset: usize, len: usize) -> Result<Vec<f32>> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let bytes = (len * 4) as u64;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(buffer, (offset * 4) as u64, &staging, 0, bytes);
        self.queue.submit([enc.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        rx.recv()
            .map_err(|_| Error::Other("GPU readback was dropped".into()))?
            .map_err(|e| Error::Other(format!("GPU readback failed: {e}")))?;
        let view = staging
            .get_mapped_range(..)
            .map_err(|e| Error::Other(format!("GPU readback failed: {e}")))?;
        let out = bytemuck::cast_slice(&view).to_vec();
        drop(view);
        staging.unmap();
        Ok(out)
    }
}
