//! The instruction sets the fast kernels are compiled for, and the one place
//! that compiles a kernel for each of them.
//!
//! The crate builds for baseline x86-64 (SSE2), so wide vectors are reached
//! at run time: [`dispatch`] calls a [`Kernel`]'s body from one wrapper per
//! instruction set, each wrapper carrying that set's `#[target_feature]`s.
//! The body is `#[inline(always)]`, so it is compiled inside every wrapper,
//! once per set, with that set's registers and instructions. Which set runs
//! is decided once per process by [`isa`]: the best this CPU has, unless
//! `WAVELSTM_ISA` names another it runs, so every variant of every kernel
//! can be tested and timed on one machine.
//!
//! Rust never fuses a multiply and an add on its own, so a body of plain
//! arithmetic computes the same bits on every set; a body that differs per
//! set (explicit intrinsics, fused multiply-adds) says so where it is written.

/// An instruction set the fast kernels are compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512F (with AVX2 and FMA, which every AVX-512 CPU has).
    Avx512,
    /// AVX2 and FMA.
    Avx2Fma,
    /// The crate's baseline target, no run-time features.
    Portable,
}

/// The environment variable that picks the instruction set.
pub const ISA_VAR: &str = "WAVELSTM_ISA";

/// The instruction set the fast kernels run on, decided once: the best the
/// CPU has, unless `WAVELSTM_ISA` names another it runs (see [`requested`]).
pub fn isa() -> Isa {
    use std::sync::OnceLock;
    static ISA: OnceLock<Isa> = OnceLock::new();
    *ISA.get_or_init(|| requested().ok().flatten().unwrap_or_else(best))
}

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
            Isa::Avx512 => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
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

/// A kernel whose body [`dispatch`] compiles once per instruction set.
///
/// Implementations write `run` as `#[inline(always)]`: only an inlined body
/// is compiled with the wrapper's features. The body is handed the set it
/// runs on (a constant once inlined), so one that needs a different inner
/// loop per set (intrinsics, fused multiply-adds) picks it with a `match`
/// that compiles away.
pub trait Kernel {
    type Output;

    /// The kernel's work.
    ///
    /// # Safety
    /// The CPU runs `isa`, and whatever the implementation's own contract
    /// asks (raw pointers valid, buffers of the right shapes).
    unsafe fn run(self, isa: Isa) -> Self::Output;
}

/// `kernel` compiled for `isa` and run.
///
/// # Safety
/// The kernel's own contract (see [`Kernel::run`]); the instruction set
/// itself is checked here.
///
/// # Panics
/// If the CPU does not run `isa`.
#[inline]
pub unsafe fn dispatch<K: Kernel>(isa: Isa, kernel: K) -> K::Output {
    assert!(isa.supported(), "{isa:?} is not supported by this CPU");
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => x86::avx512(kernel),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => x86::avx2(kernel),
        _ => kernel.run(Isa::Portable),
    }
}

/// The wrappers, written once for every kernel. Each is kept a function of
/// its own: inlined into one another (a window step's body calling the
/// lanes products, each through its own wrapper) they made one huge body,
/// and the seed epoch took 0.40-0.45 s against 0.345 s as separate
/// functions (AVX-512, this repository's BENCHMARKS.md).
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Isa, Kernel};

    #[inline(never)]
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub unsafe fn avx512<K: Kernel>(kernel: K) -> K::Output {
        kernel.run(Isa::Avx512)
    }

    #[inline(never)]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn avx2<K: Kernel>(kernel: K) -> K::Output {
        kernel.run(Isa::Avx2Fma)
    }
}
