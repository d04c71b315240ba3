//! The register tile every fast product is made of: `MR × NR` dot products of
//! length `k` from packed operands, summed in order of `p`.
//!
//! Packed layouts (see `cpu::pack`): an A panel holds `MR` rows, `a[p·MR + r]`;
//! a B panel holds `NR` columns, `b[p·NR + c]`. Both are read strictly
//! forwards, one `p` at a time, so the tile streams them from cache while its
//! `MR × NR` accumulators stay in registers.
//!
//! With AVX-512 the tile is 16 accumulators of 16 lanes: per `p`, two vector
//! loads of B, eight broadcasts of A and sixteen fused multiply-adds, which
//! keeps both FMA pipes of a core busy. Without it, the same loop in plain
//! Rust, compiled for AVX2 + FMA where the CPU has them.
//!
//! Every element of the tile is the same chain of operations whatever tile,
//! task or thread computes it, so the products built on this are
//! bit-identical on any number of threads.

use crate::real::Real;

/// Rows of a tile (batch rows in the recurrent products).
pub const MR: usize = 8;
/// Columns of a tile.
pub const NR: usize = 32;

/// `out[r·NR + c] = Σ_p a[p·MR + r] · b[p·NR + c]`, on plain arithmetic.
/// `FUSED`: one rounding per multiply-add (only where FMA is in hardware).
///
/// # Safety
/// `a` must hold `k·MR` and `b` `k·NR` readable elements.
#[inline(always)]
pub unsafe fn tile_portable<T: Real, const FUSED: bool>(
    k: usize,
    a: *const T,
    b: *const T,
    out: &mut [T; MR * NR],
) {
    let mut acc = [[T::zero(); NR]; MR];
    for p in 0..k {
        let ap = std::slice::from_raw_parts(a.add(p * MR), MR);
        let bp = std::slice::from_raw_parts(b.add(p * NR), NR);
        for r in 0..MR {
            for c in 0..NR {
                acc[r][c] = if FUSED {
                    ap[r].mul_add(bp[c], acc[r][c])
                } else {
                    acc[r][c] + ap[r] * bp[c]
                };
            }
        }
    }
    for r in 0..MR {
        out[r * NR..(r + 1) * NR].copy_from_slice(&acc[r]);
    }
}

/// An instruction set the fast kernels are compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    Avx512,
    Avx2Fma,
    Portable,
}

/// The instruction set the fast kernels run on, decided once: the best the
/// CPU has, unless `WAVELSTM_ISA` names another it runs (see [`requested`]),
/// so that every variant can be tested and timed on one machine.
pub fn isa() -> Isa {
    use std::sync::OnceLock;
    static ISA: OnceLock<Isa> = OnceLock::new();
    *ISA.get_or_init(|| requested().ok().flatten().unwrap_or_else(best))
}

/// The environment variable that picks the instruction set.
pub const ISA_VAR: &str = "WAVELSTM_ISA";

/// What `WAVELSTM_ISA` asks for (`avx512`, `avx2` or `portable`): nothing
/// when it is unset or empty, an error naming the problem when the name is
/// unknown or the CPU does not run it (the command line reports it; the
/// kernels then keep the best instruction set).
pub fn requested() -> Result<Option<Isa>, String> {
    let name = match std::env::var(ISA_VAR) {
        Ok(n) if !n.is_empty() => n,
        _ => return Ok(None),
    };
    let isa = Isa::from_name(&name).ok_or_else(|| {
        format!("{ISA_VAR}={name}: unknown instruction set (known: avx512, avx2, portable)")
    })?;
    if isa.supported() {
        Ok(Some(isa))
    } else {
        Err(format!("{ISA_VAR}={name}: this CPU does not run it"))
    }
}

fn best() -> Isa {
    Isa::all_supported()[0]
}

impl Isa {
    /// The name `WAVELSTM_ISA` takes.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2Fma => "avx2",
            Isa::Portable => "portable",
        }
    }

    pub fn from_name(name: &str) -> Option<Isa> {
        [Isa::Avx512, Isa::Avx2Fma, Isa::Portable]
            .into_iter()
            .find(|i| i.name() == name.trim().to_ascii_lowercase())
    }

    /// Whether this CPU runs code compiled for `self`.
    pub fn supported(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            Isa::Portable => true,
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// Every instruction set this CPU runs, best first: the tests run each
    /// variant of a kernel the machine can, not only the one it would pick.
    pub fn all_supported() -> Vec<Isa> {
        [Isa::Avx512, Isa::Avx2Fma, Isa::Portable]
            .into_iter()
            .filter(|i| i.supported())
            .collect()
    }
}

/// The `f32` tile on the best instruction set at hand.
///
/// # Safety
/// As [`tile_portable`].
#[inline]
pub unsafe fn tile_f32(k: usize, a: *const f32, b: *const f32, out: &mut [f32; MR * NR]) {
    tile_f32_on(isa(), k, a, b, out)
}

/// The `f32` tile compiled for `isa` (the tests run every variant).
///
/// # Safety
/// As [`tile_portable`], and the CPU must run `isa` ([`Isa::supported`]).
#[inline]
pub unsafe fn tile_f32_on(
    isa: Isa,
    k: usize,
    a: *const f32,
    b: *const f32,
    out: &mut [f32; MR * NR],
) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => x86::tile_avx512(k, a, b, out),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => x86::tile_avx2(k, a, b, out),
        _ => tile_portable::<f32, false>(k, a, b, out),
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{tile_portable, MR, NR};
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f")]
    pub unsafe fn tile_avx512(k: usize, a: *const f32, b: *const f32, out: &mut [f32; MR * NR]) {
        let mut acc = [[_mm512_setzero_ps(); 2]; MR];
        for p in 0..k {
            let b0 = _mm512_loadu_ps(b.add(p * NR));
            let b1 = _mm512_loadu_ps(b.add(p * NR + 16));
            let ap = a.add(p * MR);
            for (r, row) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*ap.add(r));
                row[0] = _mm512_fmadd_ps(av, b0, row[0]);
                row[1] = _mm512_fmadd_ps(av, b1, row[1]);
            }
        }
        let o = out.as_mut_ptr();
        for (r, row) in acc.iter().enumerate() {
            _mm512_storeu_ps(o.add(r * NR), row[0]);
            _mm512_storeu_ps(o.add(r * NR + 16), row[1]);
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn tile_avx2(k: usize, a: *const f32, b: *const f32, out: &mut [f32; MR * NR]) {
        tile_portable::<f32, true>(k, a, b, out)
    }
}
