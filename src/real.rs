//! The scalar type the math is generic over: `f32` for training, `f64` for
//! the finite-difference gradient checks, which need the extra precision.
//! Only arithmetic lives here; what the CPU kernels ask of a type (its tile,
//! its scratch buffers) is `cpu::scalar::CpuReal`.

use num_traits::{Float, FromPrimitive};
use std::fmt::Debug;

pub trait Real:
    Float + FromPrimitive + Default + Debug + Send + Sync + std::iter::Sum + 'static
{
    fn from_f64_lossy(x: f64) -> Self {
        Self::from_f64(x).unwrap_or_else(Self::nan)
    }
}

impl Real for f32 {}
impl Real for f64 {}
