//! Every WGSL file parses and validates (naga, the compiler wgpu uses), with
//! the shared prelude and its generated `Params` in front, exactly as the
//! engine builds it; and every `Params` naga lays out is the Rust struct's
//! layout, field by field. Needs no GPU.

use wavelstm::gpu::kernels::{self, ALL, SHADERS};
use wavelstm::gpu::uniform::{self, Field, PARAMS_BYTES};

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

/// How `src`'s `struct Params` differs from `fields` (names, WGSL types and
/// byte offsets as naga lays the struct out), or `None` when it does not.
fn params_mismatch(src: &str, fields: &[Field]) -> Option<String> {
    let module = match naga::front::wgsl::parse_str(src) {
        Ok(m) => m,
        Err(e) => return Some(e.emit_to_string(src)),
    };
    let Some((_, ty)) = module
        .types
        .iter()
        .find(|(_, t)| t.name.as_deref() == Some("Params"))
    else {
        return Some("no struct Params".into());
    };
    let naga::TypeInner::Struct { members, span } = &ty.inner else {
        return Some("Params is not a struct".into());
    };
    if *span as usize > PARAMS_BYTES {
        return Some(format!(
            "Params spans {span} bytes, more than {PARAMS_BYTES}"
        ));
    }
    let wgsl: Vec<(String, String, usize)> = members
        .iter()
        .map(|m| {
            let ty = match module.types[m.ty].inner {
                naga::TypeInner::Scalar(naga::Scalar {
                    kind: naga::ScalarKind::Uint,
                    width: 4,
                }) => "u32".to_string(),
                naga::TypeInner::Scalar(naga::Scalar {
                    kind: naga::ScalarKind::Float,
                    width: 4,
                }) => "f32".to_string(),
                ref other => format!("{other:?}"),
            };
            let name = m.name.clone().unwrap_or_default();
            (name, ty, m.offset as usize)
        })
        .collect();
    let rust: Vec<(String, String, usize)> = fields
        .iter()
        .map(|f| (f.name.to_string(), f.wgsl_type.to_string(), f.offset))
        .collect();
    (wgsl != rust).then(|| format!("WGSL {wgsl:?}\nRust {rust:?}"))
}

#[test]
fn every_shader_params_match_its_rust_struct() {
    let mut failures = Vec::new();
    for (file, _) in &SHADERS[1..] {
        let Some(fields) = uniform::fields_of(file) else {
            failures.push(format!("{file}.wgsl has no Rust Params struct"));
            continue;
        };
        let src = kernels::source(file).expect("listed shader");
        if let Some(why) = params_mismatch(&src, &fields) {
            failures.push(format!("{file}.wgsl:\n{why}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Every kernel's shader is among them.
    for k in ALL {
        assert!(uniform::fields_of(k.entry().0).is_some(), "{}", k.name());
    }
}

#[test]
fn a_params_mismatch_is_reported() {
    // The check above must be able to fail: on a renamed field, on a
    // changed type, and on a field naga places elsewhere than Rust does.
    let fields = uniform::fields_of("column_sum").expect("column_sum has Params");
    let good = uniform::wgsl(&fields);
    assert_eq!(params_mismatch(&good, &fields), None);
    let renamed = good.replace("cols:", "columns:");
    assert!(params_mismatch(&renamed, &fields).is_some());
    let retyped = good.replace("cols: u32", "cols: f32");
    assert!(params_mismatch(&retyped, &fields).is_some());
    // A vec2 is 8-aligned in WGSL: every later field moves.
    let moved = good.replace("rows: u32", "rows: u32,\n    pad: vec2<u32>");
    assert!(params_mismatch(&moved, &fields).is_some());
    let mut shifted = fields.clone();
    shifted[1].offset += 4;
    assert!(params_mismatch(&good, &shifted).is_some());
}
