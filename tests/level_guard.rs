//! The network's share of a free-running hybrid take (`level_guard`): kept
//! whole while the take stays near the prime's level, halved after each
//! block that runs loud and at each sample at full scale, and never raised
//! again.

use wavelstm::level_guard::{LevelGuard, BLOCK, CUT, MAX_OVER_DB};

/// `blocks` blocks of a square wave of amplitude `amp` pushed into `g`; β after each.
fn run(g: &mut LevelGuard, amp: f64, blocks: usize) -> Vec<f64> {
    (0..blocks)
        .map(|_| {
            for i in 0..BLOCK {
                g.push(if i % 2 == 0 { amp } else { -amp });
            }
            g.beta()
        })
        .collect()
}

#[test]
fn a_take_at_the_primes_level_keeps_the_whole_share() {
    let prime_rms = 0.1;
    let mut g = LevelGuard::new(prime_rms);
    // Just under the limit (a square wave's RMS is its amplitude).
    let amp = prime_rms * 10f64.powf((MAX_OVER_DB - 0.01) / 20.0);
    assert!(run(&mut g, amp, 50).iter().all(|&b| b == 1.0));
    // A part of a block over the limit decides nothing until the block ends.
    for _ in 0..BLOCK - 1 {
        g.push(0.99);
    }
    assert_eq!(g.beta(), 1.0);
    g.push(0.99);
    assert_eq!(g.beta(), CUT);
}

#[test]
fn a_sample_at_full_scale_cuts_the_share_at_once() {
    let mut g = LevelGuard::new(0.5);
    g.push(0.2);
    g.push(-1.0);
    assert_eq!(g.beta(), CUT);
    g.push(1.0);
    assert_eq!(g.beta(), CUT * CUT);
    // The rest of the block is quiet: no further cut at its end.
    for _ in 3..BLOCK {
        g.push(0.0);
    }
    assert_eq!(g.beta(), CUT * CUT);
}

#[test]
fn a_loud_take_has_its_share_cut_each_block_and_never_raised() {
    let prime_rms = 0.01;
    let mut g = LevelGuard::new(prime_rms);
    let amp = prime_rms * 10f64.powf((MAX_OVER_DB + 0.01) / 20.0);
    let loud = run(&mut g, amp, 3);
    assert_eq!(loud, vec![CUT, CUT * CUT, CUT * CUT * CUT]);
    // Quiet again: the share stays where it was cut to.
    let quiet = run(&mut g, prime_rms * 0.1, 20);
    assert!(quiet.iter().all(|&b| b == CUT * CUT * CUT), "{quiet:?}");
    // Silence after a silent prime: nothing is over a zero limit.
    let mut s = LevelGuard::new(0.0);
    assert!(run(&mut s, 0.0, 5).iter().all(|&b| b == 1.0));
}
