//! Timing of one run: worker threads released together by a barrier,
//! wall-clock time from the release to the last join, and each thread's
//! wait for a CPU from `/proc/thread-self/schedstat`.

use std::sync::Barrier;
use std::time::Instant;

/// One worker thread of a run: given the start barrier, it returns the
/// operations it did and the nanoseconds it waited for a CPU.
pub type Job<'a> = Box<dyn FnOnce(&Barrier) -> (u64, u64) + Send + 'a>;

/// Nanoseconds the calling thread has spent runnable but waiting for a
/// CPU (the second field of `/proc/thread-self/schedstat`; 0 where there
/// is none).
fn run_delay() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|line| line.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// A worker's view of one run: it starts when every thread is ready and
/// counts the time the thread then waited for a CPU (other programs on
/// the machine, or more threads than cores).
pub struct Timing(u64);

impl Timing {
    pub fn start(barrier: &Barrier) -> Self {
        barrier.wait();
        Self(run_delay())
    }

    /// The operations done, and the nanoseconds spent waiting for a CPU.
    pub fn stop(self, ops: u64) -> (u64, u64) {
        (ops, run_delay().saturating_sub(self.0))
    }
}

/// What one run measured.
pub struct Outcome {
    pub ops: u64,
    pub seconds: f64,
    /// Share of the threads' time spent waiting for a CPU.
    pub queued: f64,
    /// Trips to the allocator's lock, if it counts them.
    pub locks: Option<u64>,
}

impl Outcome {
    /// Operations per second, all threads together.
    pub fn rate(&self) -> f64 {
        self.ops as f64 / self.seconds
    }
}

/// Runs every job on a thread of its own, released together, and reads
/// `locks` once they have all finished.
pub fn time_jobs(jobs: Vec<Job<'_>>, locks: impl FnOnce() -> Option<u64>) -> Outcome {
    let threads = jobs.len();
    let start = Barrier::new(threads + 1);
    let start = &start;
    std::thread::scope(|scope| {
        let workers: Vec<_> = jobs
            .into_iter()
            .map(|job| scope.spawn(move || job(start)))
            .collect();
        start.wait();
        let began = Instant::now();
        let (mut done, mut queued) = (0, 0);
        for worker in workers {
            let (ops, waited) = worker.join().unwrap();
            done += ops;
            queued += waited;
        }
        let seconds = began.elapsed().as_secs_f64();
        Outcome {
            ops: done,
            seconds,
            queued: queued as f64 / 1e9 / (seconds * threads as f64),
            locks: locks(),
        }
    })
}

/// The outcome of the median round by throughput.
pub fn median(outcomes: &mut [Outcome]) -> &Outcome {
    outcomes.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
    &outcomes[outcomes.len() / 2]
}
