//! `Pool`: re-executed workers that serve typed calls one after another, each over its own
//! two pipes, and are started again when one dies.
//!
//! Runs in the parent. A worker is an ordinary typed child (`serve.rs` loops over calls
//! until its input pipe ends); what is here is the choice of an idle worker, the call's
//! exchange on blocking pipes, and the restart.

use std::fmt;
use std::fs::File;
use std::io::{BufReader, Write};
use std::marker::PhantomData;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::wire;
use super::{TypedEntry, decode_answer, request, start_on_pipes};
use crate::command::{Child, Command};
use crate::error::{Error, Step};

/// A fixed number of workers, each a child re-executed into one typed entry, serving calls
/// one at a time: a call costs a round trip on two pipes, not a process start.
///
/// [`call`](Self::call) takes an idle worker — waiting while all are busy, from any number
/// of threads — sends the input, reads the answer and gives the worker back. A worker
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
    answer: BufReader<File>,
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
        let (types, request) = request::<In, Out>(self.entry, input)?;
        let mut worker = self.take_idle()?;
        let answer = exchange(&mut worker, &request);
        match answer {
            Ok(frame) => {
                let value = decode_answer(self.entry, &types, Some((frame.tag, &frame.body)), None);
                self.give_back(worker);
                value
            }
            Err(_) => {
                // The worker is gone, or going: its end says why the call has no value.
                let _ = worker.child.kill();
                let status = worker.child.wait().ok();
                let value = decode_answer(self.entry, &types, None, status);
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
    /// where one is missing; else waits for one to come back.
    fn take_idle(&self) -> Result<Worker, Error> {
        let mut workers = self.lock();
        loop {
            if let Some(mut worker) = workers.idle.pop() {
                drop(workers);
                if matches!(worker.child.try_wait(), Ok(None)) {
                    return Ok(worker);
                }
                let _ = worker.child.wait();
                return self.start_worker().inspect_err(|_| self.lock().live -= 1);
            }
            if workers.live < self.size {
                workers.live += 1;
                drop(workers);
                return self.start_worker().inspect_err(|_| self.lock().live -= 1);
            }
            workers = self
                .returned
                .wait(workers)
                .unwrap_or_else(PoisonError::into_inner);
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
            answer: BufReader::with_capacity(1 << 16, answer),
        })
    }
}

/// Sends one call and reads its one answer, on blocking pipes: the worker reads the whole
/// input before it writes, so neither side can block the other.
fn exchange(worker: &mut Worker, request: &[u8]) -> Result<wire::Frame, Error> {
    worker
        .input
        .write_all(request)
        .map_err(|error| Error::os(Step::SendInput, error))?;
    match wire::read_frame(&mut worker.answer) {
        Ok(Some(frame)) => Ok(frame),
        Ok(None) => Err(Error::os(
            Step::ReadAnswer,
            std::io::ErrorKind::UnexpectedEof.into(),
        )),
        Err(error) => Err(Error::os(Step::ReadAnswer, error)),
    }
}

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
