//! The network's share of a free-running take over the cascade, cut back
//! while the take runs loud.
//!
//! A hybrid take's next sample is the frozen cascade's base plus the held
//! gain times (β·network + excitation). With β = 1 a model trained to the
//! end of `--preset hybrid` can close a loop the frozen cascade alone does
//! not: on the bundled piano, after a prime that ends on one held note, the
//! network's correction turned that note into an undamped tone at +8 dB
//! over the prime even without excitation, and with it the take clipped on
//! more than half its samples. The calibration of the gains runs without
//! the network, so it cannot see this.
//!
//! [`LevelGuard`] watches each row's generated samples and halves β at
//! once when one reaches full scale, and after every block whose RMS is
//! more than [`MAX_OVER_DB`] over the prime's. It never raises β again (a
//! share that grew back would close the same loop). Judged on blocks of
//! 1024 frames alone it came too late on the shared electronic clip: its
//! take was at full scale within the first block, and the frozen cascade,
//! fed clipped samples, stayed there for all 30 s with β near 0; cut at
//! the first clipped sample the take held the prime's level. The guard
//! reads only generated samples, so the take stays causal; a take that
//! never runs loud keeps β = 1, bit for bit.

/// Frames per block the level is judged over (about 6 ms at 44.1 kHz).
pub const BLOCK: usize = 256;
/// How far over the prime's RMS a block may run before β is cut.
pub const MAX_OVER_DB: f64 = 6.0;
/// Each cut multiplies β by this.
pub const CUT: f64 = 0.5;

/// One row's guard: its β and the squares of its current block.
#[derive(Clone, Debug)]
pub struct LevelGuard {
    /// The largest mean square a block may have.
    limit: f64,
    sum_sq: f64,
    frames: usize,
    beta: f64,
}

impl LevelGuard {
    /// A guard for a row whose prime has RMS `prime_rms` (audio units).
    pub fn new(prime_rms: f64) -> LevelGuard {
        let limit = (prime_rms * 10f64.powf(MAX_OVER_DB / 20.0)).powi(2);
        LevelGuard {
            limit,
            sum_sq: 0.0,
            frames: 0,
            beta: 1.0,
        }
    }

    /// The network's share for the next sample.
    pub fn beta(&self) -> f64 {
        self.beta
    }

    /// Count one generated sample `a` (audio units, as fed back).
    pub fn push(&mut self, a: f64) {
        if a.abs() >= 1.0 {
            self.beta *= CUT;
        }
        self.sum_sq += a * a;
        self.frames += 1;
        if self.frames == BLOCK {
            if self.sum_sq / BLOCK as f64 > self.limit {
                self.beta *= CUT;
            }
            self.sum_sq = 0.0;
            self.frames = 0;
        }
    }
}
