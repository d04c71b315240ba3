//! Typed kernel parameters: each shader's `Params` uniform is one
//! `#[repr(C)]` Pod struct in Rust (declared with `uniform!` beside the
//! op's builder in `src/gpu/ops/`), and the WGSL `struct Params` is generated
//! from it and put in front of the shader's source (`kernels::source`), so
//! the two layouts cannot drift apart by hand. `tests/gpu_shaders.rs` checks
//! every generated struct against the layout naga computes for it.

/// Bytes of the uniform block each dispatch binds: room for 16 four-byte
/// fields, the most any kernel's parameters take.
pub const PARAMS_BYTES: usize = 64;

/// A four-byte scalar a `Params` field may hold, with its WGSL type name.
pub trait Scalar {
    const WGSL: &'static str;
}

impl Scalar for u32 {
    const WGSL: &'static str = "u32";
}

impl Scalar for f32 {
    const WGSL: &'static str = "f32";
}

/// One field of a `Params` struct as Rust lays it out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub wgsl_type: &'static str,
    pub offset: usize,
}

/// A shader's parameter block.
pub trait Uniform: bytemuck::Pod {
    /// The shader file (`shaders/<SHADER>.wgsl`) whose `Params` this is.
    const SHADER: &'static str;
    /// Fields in declaration order, with their Rust offsets.
    fn fields() -> Vec<Field>;
}

/// Declares a shader's `Params`: a `#[repr(C)]` Pod struct of `u32` / `f32`
/// fields and its [`Uniform`] impl.
macro_rules! uniform {
    (
        $(#[$meta:meta])*
        pub struct $name:ident for $shader:literal {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl $crate::gpu::uniform::Uniform for $name {
            const SHADER: &'static str = $shader;
            fn fields() -> Vec<$crate::gpu::uniform::Field> {
                vec![$($crate::gpu::uniform::Field {
                    name: stringify!($field),
                    wgsl_type: <$ty as $crate::gpu::uniform::Scalar>::WGSL,
                    offset: std::mem::offset_of!($name, $field),
                },)*]
            }
        }

        const _: () = assert!(
            std::mem::size_of::<$name>() <= $crate::gpu::uniform::PARAMS_BYTES,
            "a kernel's parameters fit in one uniform block"
        );
    };
}
pub(crate) use uniform;

/// The WGSL declaration of a `Params` struct and its binding (group 1).
pub fn wgsl(fields: &[Field]) -> String {
    let mut s = String::from("struct Params {\n");
    for f in fields {
        s.push_str(&format!("    {}: {},\n", f.name, f.wgsl_type));
    }
    s.push_str("}\n@group(1) @binding(0) var<uniform> p: Params;\n");
    s
}

/// The fields of a shader file's `Params`, or `None` for a file without.
pub fn fields_of(shader: &str) -> Option<Vec<Field>> {
    use super::ops::*;
    fn of<P: Uniform>(shader: &str) -> Option<Vec<Field>> {
        (P::SHADER == shader).then(P::fields)
    }
    of::<gather::Params>(shader)
        .or_else(|| of::<state::Params>(shader))
        .or_else(|| of::<matmul::Params>(shader))
        .or_else(|| of::<lstm_forward::Params>(shader))
        .or_else(|| of::<lstm_backward::Params>(shader))
        .or_else(|| of::<column_sum::Params>(shader))
        .or_else(|| of::<activation::Params>(shader))
        .or_else(|| of::<mse_loss::Params>(shader))
        .or_else(|| of::<softmax_xent::Params>(shader))
        .or_else(|| of::<law_nll::Params>(shader))
        .or_else(|| of::<grad_norm::Params>(shader))
        .or_else(|| of::<adam::Params>(shader))
}
