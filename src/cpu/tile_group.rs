//! Several tiles run together over blocks of `p` short enough for L1, for
//! the products whose B panel is longer than L1 holds.
//!
//! A B panel is `k × NR` values (`k · 128` bytes in `f32`): at `k = 256` it
//! is the whole of Zen 3's 32 KB L1 data cache. Run over all of `k` for one
//! A panel after another, it is read from L2 again for every tile. Cut into
//! blocks of [`KC`] values of `p` (16 KB) and run over a group of A panels
//! before the next block, each block is read from L2 once per group.
//!
//! A tile continued from its stored sums ([`Start::Out`]) is the same chain
//! of operations as one call over all of `k`, so the blocking changes no
//! bit of any result.

use super::scalar::CpuReal;
use super::tile::{Start, MR, NR};

/// Values of `p` per block: a `KC × NR` block of B (16 KB in `f32`) stays in
/// L1 (32 KB on Zen 3, 48 KB on recent Intel) beside the A panels and tiles
/// streaming past it.
pub const KC: usize = 128;
/// A panels (tiles) per group: each block of B is read from L2 once per
/// group rather than once per panel; the group's tiles take 8 KB in `f32`.
pub const GROUP: usize = 8;

/// `tiles[i] = s_i + Σ_p a_i[p·MR + r] · b[p·NR + c]` for the `tiles.len()` A
/// panels `a_i = a + i·a_stride`, over `k` values of `p` in blocks of [`KC`],
/// where `s_i` is 0 or the tile's own value (`start`): the chain of one
/// [`CpuReal::tile`] over all of `k`, the same bits.
///
/// # Safety
/// Each A panel must hold `k·MR` and `b` `k·NR` readable elements.
#[inline(always)]
pub unsafe fn tiles_over<T: CpuReal>(
    k: usize,
    a: *const T,
    a_stride: usize,
    b: *const T,
    tiles: &mut [[T; MR * NR]],
    start: Start,
) {
    for p0 in (0..k).step_by(KC) {
        let kc = KC.min(k - p0);
        let start = if p0 == 0 { start } else { Start::Out };
        for (i, tile) in tiles.iter_mut().enumerate() {
            T::tile(
                kc,
                a.add(i * a_stride + p0 * MR),
                b.add(p0 * NR),
                tile,
                start,
            );
        }
    }
}
