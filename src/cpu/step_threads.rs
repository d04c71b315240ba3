//! A fixed team of threads for work that comes in tiny, frequent rounds: one
//! free-running timestep is about ten microseconds of arithmetic, and
//! handing that to a general pool (rayon) costs a wake-up through the
//! kernel whenever its workers have gone to sleep, which is a good part of
//! the step itself.
//!
//! The team is the calling thread plus `parts - 1` workers. [`StepThreads::run`]
//! calls `job(part)` once for every part, part 0 on the caller, and returns
//! when all are done; which thread runs which part is fixed, so a job that
//! splits its work by part splits it the same way every time.
//!
//! A part is claimed by whoever gets to it first: once the caller has done
//! part 0 it takes over every part no worker has started. On a machine
//! whose cores are busy with other work a worker may not get a core for
//! milliseconds; the round then finishes on the caller alone instead of
//! waiting. (The parts compute the same thing whoever runs them.)
//!
//! Between rounds a worker spins for a short while (the next round usually
//! comes within microseconds), then parks: an idle team costs nothing. The
//! team shuts down when dropped.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long an idle worker spins before it parks.
const SPIN_BEFORE_PARK: Duration = Duration::from_micros(200);
/// Spins between two looks at the clock, and between two yields of a caller
/// waiting for a worker (which may have been descheduled on a busy machine).
const SPINS_PER_CHECK: u32 = 128;

const OPEN: u8 = 0;
const RUNNING: u8 = 1;
const DONE: u8 = 2;
const TAKEN: u8 = 3;

/// A job with its lifetime erased: see the SAFETY note in [`StepThreads::run`].
type Job = &'static (dyn Fn(usize) + Sync);

struct Shared {
    job: Mutex<Option<Job>>,
    /// Bumped once per round; a worker runs each round it sees once.
    round: AtomicU64,
    /// Per worker part: [`OPEN`], [`RUNNING`] (claimed by its worker),
    /// [`DONE`], or [`TAKEN`] (claimed by the caller).
    state: Vec<AtomicU8>,
    /// A worker's job panicked this round.
    panicked: AtomicBool,
    stop: AtomicBool,
}

pub struct StepThreads {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl StepThreads {
    /// A team of `parts` (at least 1: the caller alone).
    pub fn new(parts: usize) -> Self {
        let shared = Arc::new(Shared {
            job: Mutex::new(None),
            round: AtomicU64::new(0),
            state: (1..parts.max(1)).map(|_| AtomicU8::new(DONE)).collect(),
            panicked: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        let workers = (1..parts.max(1))
            .map(|part| {
                let shared = Arc::clone(&shared);
                thread::Builder::new()
                    .name(format!("wavelstm-step-{part}"))
                    .spawn(move || worker(&shared, part))
                    .expect("cannot start a free-step thread")
            })
            .collect();
        StepThreads { shared, workers }
    }

    pub fn parts(&self) -> usize {
        self.workers.len() + 1
    }

    /// Run `job(part)` for every part in `0..parts()`, part 0 on this
    /// thread; returns when every part is done. A panic in any part is
    /// raised here once all parts have stopped.
    pub fn run(&self, job: &(dyn Fn(usize) + Sync)) {
        if self.workers.is_empty() {
            job(0);
            return;
        }
        let s = &*self.shared;
        // SAFETY: a worker only calls the job after claiming its part of
        // this round (`OPEN` -> `RUNNING`), and this function does not
        // return (nor unwind, thanks to `WaitForWorkers`) before every
        // claimed part is `DONE`; the slot is cleared before returning, and
        // a part that is not `OPEN` is never claimed. So the erased
        // reference is never used after the borrow it came from ends.
        let erased: Job = unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync), Job>(job) };
        *s.job.lock().expect("step job slot") = Some(erased);
        for st in &s.state {
            st.store(OPEN, Ordering::SeqCst);
        }
        s.round.fetch_add(1, Ordering::SeqCst);
        for w in &self.workers {
            // Cheap unless the worker is parked.
            w.thread().unpark();
        }
        {
            let _wait = WaitForWorkers(s);
            job(0);
            for (i, st) in s.state.iter().enumerate() {
                if st
                    .compare_exchange(OPEN, TAKEN, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    job(i + 1);
                }
            }
        }
        *s.job.lock().expect("step job slot") = None;
        if s.panicked.swap(false, Ordering::SeqCst) {
            panic!("a free-step worker thread panicked");
        }
    }
}

/// Waits for the round's workers when dropped, also while unwinding. When
/// part 0 panicked, parts still `OPEN` are closed unrun first: a worker
/// claiming one later would call the job after its borrow has ended.
struct WaitForWorkers<'a>(&'a Shared);

impl Drop for WaitForWorkers<'_> {
    fn drop(&mut self) {
        let mut spins = 0u32;
        for st in &self.0.state {
            // Fails unless unwinding: `run` claimed or saw claimed every part.
            let _ = st.compare_exchange(OPEN, TAKEN, Ordering::AcqRel, Ordering::Acquire);
            while st.load(Ordering::Acquire) == RUNNING {
                spins += 1;
                if spins.is_multiple_of(SPINS_PER_CHECK) {
                    thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
            }
        }
    }
}

fn worker(s: &Shared, part: usize) {
    let mut seen = 0u64;
    loop {
        // Wait for the next round: spin a little, then park.
        let idle_since = Instant::now();
        let mut spins = 0u32;
        loop {
            if s.stop.load(Ordering::SeqCst) {
                return;
            }
            let round = s.round.load(Ordering::SeqCst);
            if round != seen {
                seen = round;
                break;
            }
            spins += 1;
            if !spins.is_multiple_of(SPINS_PER_CHECK) {
                std::hint::spin_loop();
            } else if idle_since.elapsed() > SPIN_BEFORE_PARK {
                // An `unpark` between the check above and here is not lost:
                // it leaves a token that makes this `park` return at once.
                thread::park();
            } else {
                // On a busy machine the caller may share this core.
                thread::yield_now();
            }
        }
        let st = &s.state[part - 1];
        if st
            .compare_exchange(OPEN, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            continue; // the caller took this part
        }
        let job = s
            .job
            .lock()
            .expect("step job slot")
            .expect("a claimed part without a job");
        if catch_unwind(AssertUnwindSafe(|| job(part))).is_err() {
            s.panicked.store(true, Ordering::SeqCst);
        }
        st.store(DONE, Ordering::Release);
    }
}

impl Drop for StepThreads {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for w in &self.workers {
            w.thread().unpark();
        }
        for w in self.workers.drain(..) {
            // A worker's panics were caught and reported by `run`.
            let _ = w.join();
        }
    }
}
