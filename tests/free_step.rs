//! The free-running step's fast parts against their textbook twins: the
//! matrix-vector kernel against the plain loop, the fast gate math and the
//! whole fast step against `step_forward`, and the fast step's results
//! against themselves on one and two threads, bit for bit.
//!
//! Tolerances: the twins sum the same products in different orders (and the
//! AVX2 kernel fuses each multiply-add), so a dot product of length k may
//! differ by about k·ε·Σ|wᵢxᵢ| (Higham, *Accuracy and Stability of
//! Numerical Algorithms*, §3.1); we allow `2·k·ε·Σ|wᵢxᵢ|`, ε = 2^-23. The
//! whole step is compared in absolute terms: its σ and tanh are within a
//! few 1e-7 of libm's and every sum here is of order one, so 2e-5 holds
//! with a wide margin while any wrong index is off by far more.

use wavelstm::cpu::aligned::{aligned_len, AlignedVec};
use wavelstm::cpu::fast_step::FastStep;
use wavelstm::cpu::gemv::{gemv, gemv_on, gemv_portable, gemv_reference, GemvShape};
use wavelstm::cpu::gemv_blocked::{blocked_portable, gemv_blocked, BlockedRows};
use wavelstm::cpu::isa::Isa;
use wavelstm::cpu::step::{step_forward, StepScratch};
use wavelstm::cpu::step_threads::StepThreads;
use wavelstm::model::{CellActivation, GateActivation, ModelConfig, Output};
use wavelstm::rng::SplitMix64;

mod common;
use common::models::lstm;
use common::sums::dot_f64;

fn random(rng: &mut SplitMix64, n: usize, scale: f64) -> Vec<f32> {
    (0..n).map(|_| rng.uniform(-scale, scale) as f32).collect()
}

/// A variant of `gemv` with its operands bound, writing `out`.
type Kernel<'a> = Box<dyn Fn(&mut [f32]) + 'a>;

/// `n` rows of `cols` random values, `ld` apart, the gaps NaN: a kernel
/// that reads past a row's end poisons its result.
fn strided(rng: &mut SplitMix64, n: usize, cols: usize, ld: usize) -> Vec<f32> {
    let mut v = vec![f32::NAN; n.saturating_sub(1) * ld + cols];
    for r in 0..n {
        for p in 0..cols {
            v[r * ld + p] = rng.uniform(-1.0, 1.0) as f32;
        }
    }
    v
}

/// A `rows × cols` by `lanes` product's shape with fresh operands, rows and
/// lanes `ld` apart (the gaps NaN, as [`strided`]).
fn operands(
    rng: &mut SplitMix64,
    rows: usize,
    cols: usize,
    lanes: usize,
    ld: usize,
) -> (GemvShape, Vec<f32>, Vec<f32>) {
    let s = GemvShape {
        rows,
        cols,
        lanes,
        ld,
    };
    let w = strided(rng, rows, cols, ld);
    let x = strided(rng, lanes, cols, ld);
    (s, w, x)
}

#[test]
fn gemv_twins_agree_on_every_shape() {
    let mut rng = SplitMix64::new(11);
    for hidden in [1, 7, 33, 100, 256] {
        // The shapes a step multiplies: 4H gate rows by 1 + H inputs, and a head row.
        for (rows, cols) in [(4 * hidden, hidden + 1), (hidden, hidden), (1, hidden)] {
            for lanes in [1, 3, 8] {
                // Back to back, and padded as the step pads its rows.
                for ld in [cols, aligned_len(cols), cols + 3] {
                    let (s, w, x) = operands(&mut rng, rows, cols, lanes, ld);
                    let mut want = vec![0.0; rows * lanes];
                    gemv_reference(s, &w, &x, &mut want);
                    let (w, x) = (&w[..], &x[..]);
                    let mut kernels: Vec<(String, Kernel<'_>)> = vec![
                        ("gemv".into(), Box::new(|out| gemv(s, w, x, out))),
                        (
                            "gemv_portable".into(),
                            Box::new(|out| gemv_portable(s, w, x, out)),
                        ),
                    ];
                    for isa in Isa::all_supported() {
                        kernels.push((
                            format!("gemv_on({isa:?})"),
                            Box::new(move |out| gemv_on(isa, s, w, x, out)),
                        ));
                    }
                    for (name, kernel) in &kernels {
                        let mut got = vec![f32::NAN; rows * lanes];
                        kernel(&mut got);
                        for r in 0..rows {
                            for l in 0..lanes {
                                let mag: f32 = (0..cols)
                                    .map(|p| (w[r * ld + p] * x[l * ld + p]).abs())
                                    .sum();
                                let bound = 2.0 * cols as f32 * f32::EPSILON * mag;
                                let (g, e) = (got[r * lanes + l], want[r * lanes + l]);
                                assert!(
                                    (g - e).abs() <= bound,
                                    "{name} {rows}x{cols} (ld {ld}), {lanes} lanes, [{r}, {l}]: {g} vs {e} (bound {bound})"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Every variant of `gemv` this CPU runs (AVX-512's sixteen partial sums,
/// AVX2's eight, portable) against f64 sums, on fresh random operands of odd
/// and even shapes: columns short of, at and past a whole register (15, 16,
/// 17, 31, 257) and row counts off the tiles' 8 and 4. Bound: `2·k·ε·Σ|wᵢxᵢ|`
/// as above; a wrong index or a dropped leftover product is off by far more.
#[test]
fn gemv_on_every_instruction_set_matches_f64_sums() {
    let mut rng = SplitMix64::new(29);
    for (rows, cols) in [(1, 15), (9, 16), (13, 17), (5, 31), (31, 257), (1028, 257)] {
        for lanes in [1, 2, 5] {
            let s = GemvShape::packed(rows, cols, lanes);
            let w = random(&mut rng, rows * cols, 1.0);
            let x = random(&mut rng, lanes * cols, 1.0);
            for isa in Isa::all_supported() {
                let mut got = vec![f32::NAN; rows * lanes];
                gemv_on(isa, s, &w, &x, &mut got);
                for r in 0..rows {
                    for l in 0..lanes {
                        let (want, mag) =
                            dot_f64(0.0, cols, |p| (w[r * cols + p], x[l * cols + p]));
                        let bound = 2.0 * cols as f64 * f64::from(f32::EPSILON) * mag;
                        let g = f64::from(got[r * lanes + l]);
                        assert!(
                            (g - want).abs() <= bound,
                            "{isa:?} {rows}x{cols}, {lanes} lanes, [{r}, {l}]: {g} vs {want} (bound {bound})"
                        );
                    }
                }
            }
        }
    }
}

/// The blocked layout's product gives `gemv_on`'s bits on the same
/// instruction set (and `gemv_portable`'s on the portable packing), on
/// fresh random operands: rows off the block's 8 and the tiles' 4, columns
/// short of, at and past a register of 8 and of 16, lanes odd and even,
/// rows and lanes back to back and padded (the gaps NaN). Packing keeps
/// every value where `get` finds it.
#[test]
fn gemv_blocked_gives_the_bits_of_gemv() {
    let mut rng = SplitMix64::new(41);
    let shapes = [
        (1, 1),
        (3, 7),
        (8, 8),
        // Whole blocks of rows shorter than a register: a tile's start lies
        // past the last block's few values.
        (8, 2),
        (16, 5),
        (9, 15),
        (13, 16),
        (12, 17),
        (4 * 33, 31),
        (20, 33),
        (4 * 7, 257),
        (1028, 257),
    ];
    for (rows, cols) in shapes {
        for lanes in [1, 2, 3, 8] {
            for ld in [cols, aligned_len(cols), cols + 3] {
                if rows > 100 && (lanes == 3 || ld == cols + 3) {
                    continue; // the large shape once per stride kind is enough
                }
                let (s, w, x) = operands(&mut rng, rows, cols, lanes, ld);
                let mut packings = vec![Isa::Portable];
                packings.extend(Isa::all_supported());
                for isa in packings {
                    let blocked = BlockedRows::pack(isa, rows, cols, &w, ld);
                    assert_eq!((blocked.rows(), blocked.cols()), (rows, cols));
                    for r in 0..rows {
                        for p in 0..cols {
                            assert_eq!(blocked.get(r, p).to_bits(), w[r * ld + p].to_bits());
                        }
                    }
                    let mut want = vec![f32::NAN; rows * lanes];
                    gemv_on(isa, s, &w, &x, &mut want);
                    let mut got = vec![f32::NAN; rows * lanes];
                    gemv_blocked(&blocked, &x, ld, lanes, &mut got);
                    let mut pairs = vec![("gemv_blocked vs gemv_on", got, want)];
                    if isa != Isa::Avx512 {
                        // Eight-wide packings also run the plain-Rust twin.
                        let mut got = vec![f32::NAN; rows * lanes];
                        blocked_portable(&blocked, &x, ld, lanes, &mut got);
                        let mut want = vec![f32::NAN; rows * lanes];
                        gemv_portable(s, &w, &x, &mut want);
                        pairs.push(("blocked_portable vs gemv_portable", got, want));
                    }
                    for (name, got, want) in pairs {
                        for (k, (g, e)) in got.iter().zip(&want).enumerate() {
                            assert_eq!(
                                g.to_bits(),
                                e.to_bits(),
                                "{name}, packed for {isa:?}, {rows}x{cols} (ld {ld}), {lanes} lanes, out {k}: {g} vs {e}"
                            );
                        }
                    }
                }
            }
        }
    }
}

/// A row's result does not depend on the lanes computed beside it, nor on
/// the stride its rows and lanes are stored at.
#[test]
fn gemv_results_depend_neither_on_the_batch_nor_on_the_stride() {
    let mut rng = SplitMix64::new(12);
    let (rows, cols) = (4 * 33, 34);
    let w = random(&mut rng, rows * cols, 1.0);
    let x = random(&mut rng, 8 * cols, 1.0);
    // The same operands with rows and lanes 48 apart.
    let ld = aligned_len(cols);
    let spread = |v: &[f32], n: usize| {
        let mut out = vec![f32::NAN; n * ld];
        for r in 0..n {
            out[r * ld..r * ld + cols].copy_from_slice(&v[r * cols..(r + 1) * cols]);
        }
        out
    };
    let (w_ld, x_ld) = (spread(&w, rows), spread(&x, 8));
    for isa in Isa::all_supported() {
        let mut all = vec![0.0; rows * 8];
        gemv_on(isa, GemvShape::packed(rows, cols, 8), &w, &x, &mut all);
        let mut all_ld = vec![0.0; rows * 8];
        let s = GemvShape {
            rows,
            cols,
            lanes: 8,
            ld,
        };
        gemv_on(isa, s, &w_ld, &x_ld, &mut all_ld);
        for l in 0..8 {
            let mut one = vec![0.0; rows];
            let xl = &x[l * cols..(l + 1) * cols];
            gemv_on(isa, GemvShape::packed(rows, cols, 1), &w, xl, &mut one);
            for r in 0..rows {
                let e = all[r * 8 + l].to_bits();
                assert_eq!(one[r].to_bits(), e, "{isa:?} row {r}, lane {l}");
                assert_eq!(
                    all_ld[r * 8 + l].to_bits(),
                    e,
                    "{isa:?} row {r}, lane {l}, ld {ld}"
                );
            }
        }
    }
}

fn configs() -> Vec<ModelConfig> {
    let (t, s) = (CellActivation::Tanh, GateActivation::Sigmoid);
    let mut v: Vec<ModelConfig> = [1, 7, 33, 100, 256]
        .into_iter()
        .map(|h| lstm(2, 1, h, &[], t, s, Output::Mse))
        .collect();
    v.push(lstm(2, 2, 33, &[5, 3], t, s, Output::Mse));
    v.push(lstm(
        2,
        1,
        100,
        &[],
        CellActivation::Linear,
        GateActivation::HardSigmoid,
        Output::Mse,
    ));
    v.push(lstm(2, 2, 7, &[4], t, s, Output::Mulaw { scale: 0.3 }));
    // Mono, rows of 5 and 7 values: shorter than a register, so the
    // product is all leftovers (on AVX-512 these panicked before e344a4c).
    v.push(lstm(1, 1, 2, &[], t, s, Output::Mse));
    v.push(lstm(1, 1, 4, &[3], t, s, Output::Mse));
    v
}

/// Runs `steps` timesteps of `b` lanes with the fast step, feeding each
/// output back, and checks every output and state against `step_forward`.
#[test]
fn fast_step_matches_the_reference_step() {
    for cfg in configs() {
        let layout = cfg.layout();
        let mut rng = SplitMix64::new(cfg.hidden as u64);
        let params = random(&mut rng, layout.total, 0.5);
        for b in [1, 3, 8] {
            for (isa, threads) in Isa::all_supported()
                .into_iter()
                .flat_map(|isa| [(isa, 1), (isa, 2)])
            {
                let mut fast = FastStep::on(isa, &cfg, &params, threads);
                let n = cfg.layers * b * cfg.hidden;
                let mut x = random(&mut rng, b * cfg.input_size(), 1.0);
                let (h0, c0) = (random(&mut rng, n, 0.9), random(&mut rng, n, 1.0));
                let (mut h, mut c) = (h0.clone(), c0.clone());
                let (mut hr, mut cr) = (h0, c0);
                let mut s = StepScratch::default();
                for step in 0..3 {
                    let y = fast.step(b, &x, &mut h, &mut c).to_vec();
                    step_forward(&cfg, &layout, &params, b, &x, &mut hr, &mut cr, &mut s);
                    let what = format!(
                        "H {} L {} B {b} {isa:?} threads {threads} step {step}",
                        cfg.hidden, cfg.layers
                    );
                    for (name, got, want) in [
                        ("output", &y[..], s.output()),
                        ("h", &h, &hr),
                        ("c", &c, &cr),
                    ] {
                        assert_eq!(got.len(), want.len());
                        for (i, (g, e)) in got.iter().zip(want).enumerate() {
                            assert!((g - e).abs() <= 2e-5, "{what}: {name}[{i}] {g} vs {e}");
                        }
                    }
                    // Feed back what the reference produced, so both see the same input.
                    x.iter_mut()
                        .zip(s.output())
                        .for_each(|(x, &y)| *x = y.clamp(-1.0, 1.0));
                    h.copy_from_slice(&hr);
                    c.copy_from_slice(&cr);
                }
            }
        }
    }
}

#[test]
fn fast_step_is_bit_identical_on_one_and_two_threads() {
    for cfg in configs() {
        let layout = cfg.layout();
        let mut rng = SplitMix64::new(7 + cfg.hidden as u64);
        let params = random(&mut rng, layout.total, 0.5);
        let b = 3;
        let mut one = FastStep::new(&cfg, &params, 1);
        let mut two = FastStep::new(&cfg, &params, 2);
        assert_eq!(one.threads(), 1);
        let n = cfg.layers * b * cfg.hidden;
        let x = random(&mut rng, b * cfg.input_size(), 1.0);
        let (h0, c0) = (random(&mut rng, n, 0.9), random(&mut rng, n, 1.0));
        let (mut h1, mut c1, mut h2, mut c2) = (h0.clone(), c0.clone(), h0, c0);
        for _ in 0..50 {
            let y1 = one.step(b, &x, &mut h1, &mut c1).to_vec();
            let y2 = two.step(b, &x, &mut h2, &mut c2).to_vec();
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&y1), bits(&y2), "hidden {}", cfg.hidden);
            assert_eq!(bits(&h1), bits(&h2));
            assert_eq!(bits(&c1), bits(&c2));
        }
    }
    // The models above that are large enough to split really ran on two.
    let big = lstm(
        2,
        1,
        256,
        &[],
        CellActivation::Tanh,
        GateActivation::Sigmoid,
        Output::Mse,
    );
    let params = vec![0.0; big.layout().total];
    assert_eq!(FastStep::new(&big, &params, 2).threads(), 2);
}

#[test]
fn step_threads_run_every_part_once_per_round_and_report_panics() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let team = StepThreads::new(3);
    let counts: Vec<AtomicUsize> = (0..3).map(|_| AtomicUsize::new(0)).collect();
    for _ in 0..1000 {
        team.run(&|p| {
            counts[p].fetch_add(1, Ordering::Relaxed);
        });
    }
    assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1000));
    // A long idle spell: the workers park, and wake for the next round.
    std::thread::sleep(std::time::Duration::from_millis(5));
    team.run(&|p| {
        counts[p].fetch_add(1, Ordering::Relaxed);
    });
    assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1001));
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        team.run(&|p| assert!(p != 2, "part 2 fails"));
    }));
    assert!(panicked.is_err());
    // The team still works after a panic, and shuts down when dropped.
    team.run(&|p| {
        counts[p].fetch_add(1, Ordering::Relaxed);
    });
    assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1002));
    // Part 0 panics: no part of that round runs once `run` has unwound
    // (its job's borrow has ended), and the team goes on.
    let late = AtomicUsize::new(0);
    for _ in 0..100 {
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            team.run(&|p| {
                assert!(p != 0, "part 0 fails");
                late.fetch_add(1, Ordering::SeqCst);
            });
        }));
        assert!(panicked.is_err());
        let after = late.load(Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_micros(300));
        assert_eq!(
            late.load(Ordering::SeqCst),
            after,
            "a part ran after run returned"
        );
    }
    team.run(&|p| {
        counts[p].fetch_add(1, Ordering::Relaxed);
    });
    assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1003));
    drop(team);
}

/// The engine's aligned buffers start on a cache line whatever the
/// allocator hands back, for both float types, and resize as a `Vec` does:
/// the values kept, the new ones zero.
#[test]
fn aligned_buffers_start_on_a_cache_line() {
    fn check<T: Copy + Default + PartialEq + std::fmt::Debug + From<u8>>(name: &str) {
        for len in [0, 1, 15, 16, 17, 257, 4 * 256 * 272, 1 << 20] {
            let mut v = AlignedVec::<T>::zeroed(len);
            assert_eq!(v.len(), len);
            assert!(
                v.iter().all(|&x| x == T::default()),
                "{name} {len}: not zeroed"
            );
            if len == 0 {
                continue;
            }
            assert_eq!(
                v.as_ptr() as usize % 64,
                0,
                "{name} {len}: start off a line"
            );
            v[len - 1] = T::from(3);
            let copy = v.clone();
            assert_eq!(
                copy.as_ptr() as usize % 64,
                0,
                "{name} {len}: clone off a line"
            );
            assert_eq!(&copy[..], &v[..], "{name} {len}: clone differs");
            v.resize(len);
            assert_eq!(v[len - 1], T::from(3), "{name} {len}: resize lost a value");
            v.resize(len - 1);
            v.resize(2 * len + 1);
            assert_eq!(
                v.as_ptr() as usize % 64,
                0,
                "{name} 2·{len}+1: start off a line"
            );
            assert!(
                v[len - 1..].iter().all(|&x| x == T::default()),
                "{name} {len}: new values not zero"
            );
            assert_eq!(
                &v[..len - 1],
                &copy[..len - 1],
                "{name} {len}: grow lost values"
            );
        }
    }
    check::<f32>("f32");
    check::<f64>("f64");
}
