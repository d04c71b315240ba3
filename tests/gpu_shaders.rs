//! Every WGSL file parses and validates (naga, the compiler wgpu uses), with
//! the shared prelude in front, exactly as the engine builds it. Needs no GPU.

use wavelstm::gpu::kernels::{self, ALL, SHADERS};

fn validate(file: &str) -> Result<naga::Module, String> {
    let src = kernels::source(file).ok_or("unknown shader")?;
    let module = naga::front::wgsl::parse_str(&src).map_err(|e| e.emit_to_string(&src))?;
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::empty(),
    )
    .validate(&module)
    .map_err(|e| e.emit_to_string(&src))?;
    Ok(module)
}

#[test]
fn every_shader_parses_and_validates() {
    let mut failures = Vec::new();
    for (file, _) in &SHADERS[1..] {
        if let Err(e) = validate(file) {
            failures.push(format!("{file}.wgsl:\n{e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_kernel_names_an_entry_point_of_its_shader() {
    for k in ALL {
        let (file, entry) = k.entry();
        let module = validate(file).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(
            module.entry_points.iter().any(|ep| ep.name == entry),
            "{file}.wgsl has no entry point {entry}"
        );
    }
}

#[test]
fn a_broken_shader_is_reported() {
    // The check above must be able to fail.
    let src = format!(
        "{}\nfn broken() -> f32 {{ return undefined_name; }}",
        SHADERS[0].1
    );
    assert!(naga::front::wgsl::parse_str(&src)
        .map_err(|_| ())
        .and_then(|m| naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::empty()
        )
        .validate(&m)
        .map(|_| ())
        .map_err(|_| ()))
        .is_err());
}
