//! `Pool`: re-executed workers that serve typed calls one after another, each over its own
//! two pipes, and are started again when one dies.
//!
//! Runs in the parent. A worker is an ordinary typed child (`serve.rs` loops over calls
//! until its input pipe ends); what is here is the choice of an idle worker, the call's
//! exchange on blocking pipes, and the restart.

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::marker::PhantomData;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use nix::poll::PollFlags;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::wire;
use super::{TypedEntry, decode_answer, request, start_on_pipes, wait_for};
use crate::command::{Child, Command};
use crate::error::Error;

/// A fixed number of workers, each a child re-executed into one typed entry, serving calls
/// one at a time: a call costs a round trip on two pipes, not a process start.
///
/// [`call`](Self::call) takes an idle worker — waiting while all are busy, from any number
/// of threads — sends the input, reads the answer and gives the worker back;
/// [`call_timeout`](Self::call_timeout) gives up on one that takes too long. A worker
/// that dies (killed, crashed, exited) fails the call it was serving, with the same
/// errors as [`TypedChild::join`](crate::TypedChild::join), and is replaced by a new one;
/// a panic is answered as [`Error::Panicked`] and the worker serves on. One that died
/// while idle is replaced before a call reaches it — unless it dies just as the call
/// starts, which then fails as above: the call is not retried, since whether the entry
/// ran can't be known.
///
/// Each worker starts from a [`Command`] set up by the `configure` function given to
/// [`with_command`](Self::with_command): namespaces, id maps, environment and stdio apply
/// to every worker. Workers get no death signal by default (the kernel ties it to the
/// thread that started them, and a replacement may start on any thread): a worker ends
/// when its input pipe does, so with the pool or with the parent, whichever goes first.
///
/// ```no_run
/// #[reexec::entry("square")]
/// fn square(value: u64) -> u64 {
///     value * value
/// }
///
/// reexec::main! {
///     fn main() -> Result<(), reexec::Error> {
///         let pool = reexec::Pool::new::<square>(4)?;
///         let squares: Vec<u64> = (0..100)
///             .map(|value| pool.call(&value))
///             .collect::<Result<_, _>>()?;
///         assert_eq!(squares[9], 81);
///         Ok(())
///     }
/// }
/// ```
pub struct Pool<In, Out> {
    entry: &'static str,
    configure: Box<dyn Fn(&mut Command) + Send + Sync>,
    size: usize,
    workers: Mutex<Workers>,
    returned: Condvar,
    _types: PhantomData<fn(In) -> Out>,
}

impl<In, Out> fmt::Debug for Pool<In, Out> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("entry", &self.entry)
            .field("size", &self.size)
            .field("idle", &self.lock().idle.len())
            .finish_non_exhaustive()
    }
}

/// The idle workers, and how many there are in all, busy ones included.
struct Workers {
    idle: Vec<Worker>,
    live: usize,
}

/// One worker: the child, and our ends of its two pipes.
struct Worker {
    child: Child,
    input: File,
    answer: BufReader<AnswerPipe>,
}

/// Our end of a worker's answer pipe, read until the call's deadline, if it has one.
struct AnswerPipe {
    file: File,
    deadline: Option<Instant>,
}

impl Read for AnswerPipe {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if self.deadline.is_some() {
            wait_for(&self.file, PollFlags::POLLIN, self.deadline)?;
        }
        self.file.read(buffer)
    }
}

impl<In, Out> Pool<In, Out> {
    fn lock(&self) -> MutexGuard<'_, Workers> {
        // The state is whole at every unlock: a panic elsewhere leaves it usable.
        self.workers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<In, Out> Pool<In, Out>
where
    In: Serialize + 'static,
    Out: DeserializeOwned + 'static,
{
    /// Starts `size` workers (at least one) of the entry `E`, in the parent's namespaces,
    /// with inherited stdio.
    pub fn new<E>(size: usize) -> Result<Self, Error>
    where
        E: TypedEntry<Input = In, Output = Out>,
    {
        Self::with_command::<E>(size, |_| {})
    }

    /// Starts `size` workers (at least one) of the entry `E`, each from a [`Command`] that
    /// `configure` sets up — now, and again for each replacement.
    ///
    /// ```no_run
    /// use reexec::{Namespaces, Pool};
    ///
    /// #[reexec::entry("pool-parse")]
    /// fn parse(text: String) -> Option<i64> {
    ///     text.trim().parse().ok()
    /// }
    ///
    /// reexec::main! {
    ///     fn main() -> Result<(), reexec::Error> {
    ///         let pool = Pool::with_command::<parse>(2, |command| {
    ///             command
    ///                 .namespaces(Namespaces::USER | Namespaces::NET)
    ///                 .map_root_to_caller();
    ///         })?;
    ///         assert_eq!(pool.call(&" 12 ".to_owned())?, Some(12));
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn with_command<E>(
        size: usize,
        configure: impl Fn(&mut Command) + Send + Sync + 'static,
    ) -> Result<Self, Error>
    where
        E: TypedEntry<Input = In, Output = Out>,
    {
        let pool = Pool {
            entry: E::NAME,
            configure: Box::new(configure),
            size: size.max(1),
            workers: Mutex::new(Workers {
                idle: Vec::new(),
                live: 0,
            }),
            returned: Condvar::new(),
            _types: PhantomData,
        };
        for _ in 0..pool.size {
            let worker = pool.start_worker()?;
            let mut workers = pool.lock();
            workers.idle.push(worker);
            workers.live += 1;
        }
        Ok(pool)
    }

    /// Calls the entry with `input` on an idle worker, waiting for one if all are busy.
    pub fn call(&self, input: &In) -> Result<Out, Error> {
        self.call_until(input, None)
    }

    /// As [`call`](Self::call), but gives up after `timeout`, counted from now: waiting
    /// for an idle worker, sending the input and waiting for the answer. A worker that
    /// has not answered by then is killed (`SIGKILL`) and replaced, and the call is
    /// [`Error::Timeout`]; a call that never reached a worker leaves every worker as it
    /// was.
    ///
    /// ```no_run
    /// use std::time::Duration;
    ///
    /// #[reexec::entry("pool-collatz")]
    /// fn steps(mut value: u64) -> u32 {
    ///     let mut steps = 0;
    ///     while value > 1 {
    ///         value = if value % 2 == 0 { value / 2 } else { 3 * value + 1 };
    ///         steps += 1;
    ///     }
    ///     steps
    /// }
    ///
    /// reexec::main! {
    ///     fn main() -> Result<(), reexec::Error> {
    ///         let pool = reexec::Pool::new::<steps>(2)?;
    ///         match pool.call_timeout(&27, Duration::from_secs(1)) {
    ///             Ok(steps) => assert_eq!(steps, 111),
    ///             Err(reexec::Error::Timeout { .. }) => eprintln!("a worker took too long"),
    ///             Err(other) => return Err(other),
    ///         }
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn call_timeout(&self, input: &In, timeout: Duration) -> Result<Out, Error> {
        self.call_until(input, Some((Instant::now() + timeout, timeout)))
    }

    fn call_until(&self, input: &In, limit: Option<(Instant, Duration)>) -> Result<Out, Error> {
        let (types, request) = request::<In, Out>(self.entry, input)?;
        // Only a call with a limit times out.
        let timed_out = || Error::Timeout {
            entry: self.entry.to_owned(),
            timeout: limit.map_or(Duration::ZERO, |(_, timeout)| timeout),
        };
        let deadline = limit.map(|(deadline, _)| deadline);
        let Some(mut worker) = self.take_idle(deadline)? else {
            return Err(timed_out());
        };
        let answer = exchange(&mut worker, &request, deadline);
        match answer {
            Ok(frame) => {
                let value = decode_answer(self.entry, &types, Some((frame.tag, &frame.body)), None);
                self.give_back(worker);
                value
            }
            Err(error) => {
                // The worker is gone, going, or too slow: its end says why the call has no
                // value, unless the deadline does.
                let _ = worker.child.kill();
                let status = worker.child.wait().ok();
                let value = if error.kind() == io::ErrorKind::TimedOut {
                    Err(timed_out())
                } else {
                    decode_answer(self.entry, &types, None, status)
                };
                match self.start_worker() {
                    Ok(worker) => self.give_back(worker),
                    Err(_) => {
                        // One worker fewer: the next call that finds none idle starts one.
                        self.lock().live -= 1;
                        self.returned.notify_one();
                    }
                }
                value
            }
        }
    }

    /// The process ids of the idle workers, as seen from the parent's PID namespace.
    pub fn idle_worker_ids(&self) -> Vec<u32> {
        self.lock()
            .idle
            .iter()
            .map(|worker| worker.child.id())
            .collect()
    }

    /// An idle worker that has not exited meanwhile (a dead one is replaced), or a new one
    /// where one is missing; else waits for one to come back, until `deadline` if there is
    /// one (`None` then).
    fn take_idle(&self, deadline: Option<Instant>) -> Result<Option<Worker>, Error> {
        let mut workers = self.lock();
        loop {
            if let Some(mut worker) = workers.idle.pop() {
                drop(workers);
                if matches!(worker.child.try_wait(), Ok(None)) {
                    return Ok(Some(worker));
                }
                let _ = worker.child.wait();
                return self
                    .start_worker()
                    .map(Some)
                    .inspect_err(|_| self.lock().live -= 1);
            }
            if workers.live < self.size {
                workers.live += 1;
                drop(workers);
                return self
                    .start_worker()
                    .map(Some)
                    .inspect_err(|_| self.lock().live -= 1);
            }
            workers = match deadline {
                None => self
                    .returned
                    .wait(workers)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(None);
                    }
                    self.returned
                        .wait_timeout(workers, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
    }

    fn give_back(&self, worker: Worker) {
        self.lock().idle.push(worker);
        self.returned.notify_one();
    }

    fn start_worker(&self) -> Result<Worker, Error> {
        let mut command = Command::new(self.entry);
        command.death_signal(None);
        (self.configure)(&mut command);
        let (child, input, answer) = start_on_pipes(&mut command)?;
        Ok(Worker {
            child,
            input,
            answer: BufReader::with_capacity(
                1 << 16,
                AnswerPipe {
                    file: answer,
                    deadline: None,
                },
            ),
        })
    }
}

/// Sends one call and reads its one answer, on blocking pipes: the worker reads the whole
/// input before it writes, so neither side can block the other. With a `deadline`, each
/// step first waits for its pipe until then, and a write takes no more than a pipe's
/// free page holds, which never blocks: `TimedOut` once the deadline has passed.
fn exchange(
    worker: &mut Worker,
    request: &[u8],
    deadline: Option<Instant>,
) -> io::Result<wire::Frame> {
    match deadline {
        None => worker.input.write_all(request)?,
        Some(_) => {
            for piece in request.chunks(PIPE_BUF) {
                wait_for(&worker.input, PollFlags::POLLOUT, deadline)?;
                worker.input.write_all(piece)?;
            }
        }
    }
    worker.answer.get_mut().deadline = deadline;
    let frame = wire::read_frame(&mut worker.answer);
    worker.answer.get_mut().deadline = None;
    frame?.ok_or_else(|| io::ErrorKind::UnexpectedEof.into())
}

/// What a pipe said writable takes without blocking: one page, as Linux gives a pipe's
/// free slot (POSIX's `PIPE_BUF`).
const PIPE_BUF: usize = 4096;

impl<In, Out> Drop for Pool<In, Out> {
    /// Closes every worker's input, which ends it, and reaps it.
    fn drop(&mut self) {
        let workers = std::mem::take(&mut self.lock().idle);
        for Worker {
            mut child, input, ..
        } in workers
        {
            drop(input);
            let _ = child.wait();
        }
    }
}
