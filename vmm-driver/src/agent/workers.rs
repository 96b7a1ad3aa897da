//! Threads for the agent's blocking work (a command's pipes), kept a while after their
//! job so the next command does not pay for new ones: every exec needs three, and under
//! gVisor making them cost about a millisecond of each exec.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::Duration;

type Job = Box<dyn FnOnce() + Send>;

/// How long a worker waits for its next job before it ends.
const IDLE: Duration = Duration::from_secs(60);

/// Workers waiting for a job, each by its number and the way to hand it one.
static IDLE_WORKERS: Mutex<Vec<(u64, mpsc::Sender<Job>)>> = Mutex::new(Vec::new());

static NEXT_WORKER: AtomicU64 = AtomicU64::new(0);

fn idle_workers() -> std::sync::MutexGuard<'static, Vec<(u64, mpsc::Sender<Job>)>> {
    IDLE_WORKERS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `job` on a waiting worker, or on a new thread named `name`; an error when no
/// thread could be made.
pub fn run(name: &str, job: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    let job: Job = Box::new(job);
    // Taken off the list under the lock, a worker waits until it gets this job.
    if let Some((_, worker)) = idle_workers().pop() {
        if let Err(mpsc::SendError(job)) = worker.send(job) {
            // Only a worker that died in a job drops its receiver early.
            return spawn(name, job);
        }
        return Ok(());
    }
    spawn(name, job)
}

fn spawn(name: &str, job: Job) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || work(job))
        .map(drop)
}

fn work(mut job: Job) {
    let me = NEXT_WORKER.fetch_add(1, Ordering::Relaxed);
    loop {
        job();
        let (tx, rx) = mpsc::channel();
        idle_workers().push((me, tx));
        job = match rx.recv_timeout(IDLE) {
            Ok(next) => next,
            Err(_) => {
                let mut idle = idle_workers();
                match idle.iter().position(|(id, _)| *id == me) {
                    Some(at) => {
                        idle.swap_remove(at);
                        return;
                    }
                    // `run` took it off the list: the job is on its way.
                    None => {
                        drop(idle);
                        match rx.recv() {
                            Ok(next) => next,
                            Err(_) => return,
                        }
                    }
                }
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_is_used_again_and_every_job_runs() {
        let (done, finished) = mpsc::channel();
        for i in 0..50 {
            let done = done.clone();
            run("test", move || {
                done.send((i, std::thread::current().id())).unwrap();
            })
            .unwrap();
            // One at a time: the worker is back on the list before the next job.
            let (got, _) = finished.recv_timeout(Duration::from_secs(5)).unwrap();
            assert_eq!(got, i);
            while idle_workers().is_empty() {
                std::thread::yield_now();
            }
        }
        let threads: std::collections::HashSet<_> = (0..20)
            .map(|i| {
                let done = done.clone();
                run("test", move || {
                    done.send((i, std::thread::current().id())).unwrap()
                })
                .unwrap();
                finished.recv_timeout(Duration::from_secs(5)).unwrap().1
            })
            .collect();
        assert!(
            threads.len() < 20,
            "threads were made anew: {}",
            threads.len()
        );
    }
}
