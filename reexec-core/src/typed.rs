//! Typed calls: a value into an entry, a value — or its panic — back. The `typed` feature.
//!
//! Runs in the parent: [`TypedCommand`] builds on a [`Command`], writes the call into the
//! memory file it gives the child and starts it; [`TypedChild`] waits for the child,
//! reaps it and reads the answer. `wire.rs` is the frames both sides speak; `serve.rs` is
//! the child's side.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::marker::PhantomData;
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::command::{Child, Command};
use crate::error::{Error, Step};
use crate::sys;

mod pool;
mod serve;
mod wire;

pub use pool::Pool;
pub use serve::EXIT_NOT_A_TYPED_CALL;
#[doc(hidden)]
pub use serve::{Decoder, Encoder, input_type, output_type, serve};
use wire::{Signature, Tag};

/// The typed handle of an entry that takes a value: `#[reexec::entry]` implements it, on a
/// type of the function's own name, for every entry with one argument.
///
/// The function's name is taken, in the value namespace, by the function; the handle has
/// the same name in the type namespace, where a function never is. Name it where a type
/// goes — `TypedCommand::new::<parse>()`, `reexec::call::<parse>(&input)` — and the
/// compiler knows the entry's name and both its types; misspell it, or give the wrong
/// input, and the program does not build.
///
/// ```
/// #[reexec::entry("double")]
/// fn double(value: u64) -> u64 {
///     value * 2
/// }
///
/// fn main() {
///     assert_eq!(<double as reexec::TypedEntry>::NAME, "double");
/// }
/// ```
pub trait TypedEntry: 'static {
    /// What the entry takes.
    type Input: 'static;
    /// What the entry returns — for an entry returning `Result<T, E>`, the whole `Result`.
    type Output: 'static;
    /// The name the entry is registered under.
    const NAME: &'static str;
}

/// A typed call being prepared: a [`Command`] for the entry, plus its types.
///
/// Everything a `Command` offers — namespaces, id maps, environment, stdio, descriptors,
/// the death signal, hooks — applies to the call through [`command`](Self::command). The
/// input goes to the child in a memory file (memfd) of its own, written before the child
/// starts, and the answer comes back after it in the same file, read once the child has
/// exited: neither shows in `argv` or the environment, and neither has a size limit but
/// memory (the input is held twice while the call starts: serialized, and in the file).
///
/// ```no_run
/// use reexec::{Namespaces, TypedCommand};
///
/// #[reexec::entry("count-words")]
/// fn count_words(text: String) -> usize {
///     text.split_whitespace().count()
/// }
///
/// reexec::main! {
///     fn main() -> Result<(), reexec::Error> {
///         let mut call = TypedCommand::new::<count_words>();
///         call.command()
///             .namespaces(Namespaces::USER | Namespaces::NET)
///             .map_root_to_caller();
///         assert_eq!(call.call(&"one two three".to_owned())?, 3);
///         Ok(())
///     }
/// }
/// ```
pub struct TypedCommand<In, Out> {
    command: Command,
    entry: String,
    _types: PhantomData<fn(In) -> Out>,
}

impl<In, Out> fmt::Debug for TypedCommand<In, Out> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedCommand")
            .field("command", &self.command)
            .field("input", &std::any::type_name::<In>())
            .field("output", &std::any::type_name::<Out>())
            .finish()
    }
}

impl<In, Out> TypedCommand<In, Out>
where
    In: Serialize + 'static,
    Out: DeserializeOwned + 'static,
{
    /// A call of the entry `E`, by its handle: the types are `E`'s, checked by the
    /// compiler.
    pub fn new<E>() -> Self
    where
        E: TypedEntry<Input = In, Output = Out>,
    {
        TypedCommand {
            command: Command::new(E::NAME),
            entry: E::NAME.to_owned(),
            _types: PhantomData,
        }
    }

    /// A call of the entry registered as `name`, whose types the caller states: for an
    /// entry whose handle is out of reach. The types are checked when the child reads the
    /// call, before the entry runs — by a fingerprint of their `TypeId`s — and a mismatch
    /// is [`Error::TypeMismatch`], never a value read as the wrong type.
    ///
    /// ```no_run
    /// #[reexec::entry("add-one")]
    /// fn add_one(value: u32) -> u32 {
    ///     value + 1
    /// }
    ///
    /// reexec::main! {
    ///     fn main() {
    ///         let wrong = reexec::TypedCommand::<String, u32>::by_name("add-one")
    ///             .call(&"one".to_owned());
    ///         assert!(matches!(wrong, Err(reexec::Error::TypeMismatch { .. })));
    ///     }
    /// }
    /// ```
    pub fn by_name(name: &str) -> Self {
        TypedCommand {
            command: Command::new(name),
            entry: name.to_owned(),
            _types: PhantomData,
        }
    }

    /// The command the call runs as, to set namespaces, id maps, environment, stdio and
    /// the rest. Its arguments reach the entry as `std::env::args()`; its descriptors
    /// 3 and up keep the numbers asked for (the call's own take two free ones).
    pub fn command(&mut self) -> &mut Command {
        &mut self.command
    }

    /// Starts the child and hands it `input`: the value is serialized now, into the memory
    /// file the child reads its call from and writes its answer to.
    pub fn spawn(&mut self, input: &In) -> Result<TypedChild<Out>, Error> {
        let (types, request) = request::<In, Out>(&self.entry, input)?;
        let (child, call) = start_call(&mut self.command, &request)?;
        Ok(TypedChild {
            child,
            entry: self.entry.clone(),
            types,
            call,
            answer_at: request.len() as u64,
            received: Vec::new(),
            _out: PhantomData,
        })
    }

    /// Starts the child, sends `input` and waits for the answer: [`spawn`](Self::spawn)
    /// then [`join`](TypedChild::join).
    pub fn call(&mut self, input: &In) -> Result<Out, Error> {
        self.spawn(input)?.join()
    }
}

/// Calls the entry `E` with `input` in a child re-executed for it and returns what the
/// entry returned; the child inherits stdio and starts in the parent's namespaces. See
/// [`TypedCommand`] to set up more.
///
/// ```no_run
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Request {
///     text: String,
/// }
///
/// #[derive(Serialize, Deserialize, Debug, PartialEq)]
/// enum Parsed {
///     Number(i64),
///     Word(String),
/// }
///
/// #[reexec::entry("parse")]
/// fn parse(request: Request) -> Result<Parsed, String> {
///     match request.text.parse() {
///         Ok(number) => Ok(Parsed::Number(number)),
///         Err(_) if !request.text.is_empty() => Ok(Parsed::Word(request.text)),
///         Err(_) => Err("empty input".to_owned()),
///     }
/// }
///
/// reexec::main! {
///     fn main() -> Result<(), reexec::Error> {
///         let parsed = reexec::call::<parse>(&Request { text: "42".into() })?;
///         assert_eq!(parsed, Ok(Parsed::Number(42)));
///         // The entry's own `Err` comes back as the inner `Err`:
///         let empty = reexec::call::<parse>(&Request { text: String::new() })?;
///         assert_eq!(empty, Err("empty input".to_owned()));
///         Ok(())
///     }
/// }
/// ```
pub fn call<E>(input: &E::Input) -> Result<E::Output, Error>
where
    E: TypedEntry,
    E::Input: Serialize,
    E::Output: DeserializeOwned,
{
    TypedCommand::new::<E>().call(input)
}

/// A typed call under way: the child, and the file its answer comes back in.
///
/// Unlike a [`Child`], dropping it without a join kills (`SIGKILL`) and reaps the child:
/// a call given up on leaves no process behind.
pub struct TypedChild<Out> {
    child: Child,
    entry: String,
    /// The call's types, for a mismatch's message.
    types: Signature,
    /// The memfd that holds the call, then the child's answer, read once it has exited.
    call: File,
    /// Where the answer starts in `call`: right after the call.
    answer_at: u64,
    received: Vec<u8>,
    _out: PhantomData<fn() -> Out>,
}

impl<Out> fmt::Debug for TypedChild<Out> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedChild")
            .field("entry", &self.entry)
            .field("child", &self.child)
            .finish_non_exhaustive()
    }
}

/// What [`TypedChild::join_with_output`] returns: the call's result, and what the child
/// left behind.
#[derive(Debug)]
pub struct TypedOutput<Out> {
    /// The entry's return value, or why there is none.
    pub value: Result<Out, Error>,
    /// How the child ended; `None` only when waiting for it failed.
    pub status: Option<ExitStatus>,
    /// What it wrote to stdout, when that was [`Stdio::piped`](crate::Stdio::piped) and
    /// not taken from [`child`](TypedChild::child) before.
    pub stdout: Vec<u8>,
    /// What it wrote to stderr, likewise.
    pub stderr: Vec<u8>,
}

impl<Out: DeserializeOwned + 'static> TypedChild<Out> {
    /// The child's process id, as seen from the parent's PID namespace.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The child, to take its piped stdin, stdout or stderr, or to signal it.
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Waits for the child, reaps it and reads its answer. Piped stdout and stderr
    /// left on the child are read meanwhile (so that a chatty child cannot block) and
    /// dropped: use [`join_with_output`](Self::join_with_output) to keep them.
    ///
    /// The entry's value is `Ok`; for an entry returning `Result<T, E>`, its `Err(e)` is
    /// the value `Ok(Err(e))`. Distinct errors say why there is no value:
    /// [`Error::Panicked`] (message and place), [`Error::Killed`] (the signal),
    /// [`Error::NoAnswer`] (exited without answering), [`Error::TypeMismatch`],
    /// [`Error::Encoding`].
    pub fn join(self) -> Result<Out, Error> {
        self.join_with_output(None).value
    }

    /// As [`join`](Self::join), but gives up after `timeout`: then the child is killed
    /// (`SIGKILL`) and reaped, and the call is [`Error::Timeout`]. With the child in a new
    /// PID namespace, everything it started dies with it.
    pub fn join_timeout(self, timeout: Duration) -> Result<Out, Error> {
        self.join_with_output(Some(timeout)).value
    }

    /// As [`join`](Self::join) or, with a timeout, [`join_timeout`](Self::join_timeout),
    /// and keeps the child's exit status and piped output.
    pub fn join_with_output(mut self, timeout: Option<Duration>) -> TypedOutput<Out> {
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let exchanged = self.exchange(deadline, &mut stdout, &mut stderr);
        let mut timed_out = matches!(exchanged, Ok(false));
        let value = match exchanged {
            Ok(_) => Ok(()),
            Err(error) => Err(error),
        };
        if value.is_ok() && !timed_out {
            timed_out = !self.wait_until(deadline);
        }
        if timed_out || value.is_err() {
            // Nothing stays behind a call given up on.
            let _ = self.child.kill();
        }
        let status = self.child.wait();
        let value = if let (Some(timeout), true) = (timeout, timed_out) {
            Err(Error::Timeout {
                entry: self.entry.clone(),
                timeout,
            })
        } else {
            value
                .and_then(|()| {
                    read_answer(&self.call, self.answer_at, &mut self.received)
                        .map_err(|error| Error::os(Step::ReadAnswer, error))
                })
                .and_then(|()| {
                    let frame =
                        wire::complete_frame(&self.received).map_err(|error| Error::Encoding {
                            entry: self.entry.clone(),
                            what: "reading the child's answer",
                            message: error.to_string(),
                        })?;
                    decode_answer(
                        &self.entry,
                        &self.types,
                        frame,
                        status.as_ref().ok().copied(),
                    )
                })
        };
        TypedOutput {
            value,
            status: status.ok(),
            stdout,
            stderr,
        }
    }

    /// Reads piped output until the output pipes end; `Ok(false)`: the deadline came
    /// first. Neither the input nor the answer passes here: both are in a file, which no
    /// write can fill, so that the parent sleeps once, until the child has exited, and
    /// not also to send or when the answer arrives.
    fn exchange(
        &mut self,
        deadline: Option<Instant>,
        stdout: &mut Vec<u8>,
        stderr: &mut Vec<u8>,
    ) -> Result<bool, Error> {
        let mut out = self
            .child
            .stdout
            .take()
            .map(|pipe| File::from(OwnedFd::from(pipe)));
        let mut err = self
            .child
            .stderr
            .take()
            .map(|pipe| File::from(OwnedFd::from(pipe)));
        let mut chunk = Vec::new();
        loop {
            if out.is_none() && err.is_none() {
                return Ok(true);
            }
            let Some(wait) = poll_timeout(deadline) else {
                return Ok(false);
            };
            let ready = {
                let mut fds = Vec::with_capacity(2);
                for file in [&out, &err].into_iter().flatten() {
                    fds.push(PollFd::new(file.as_fd(), PollFlags::POLLIN));
                }
                sys::retry_interrupted(|| Ok(poll(&mut fds, wait)?))
                    .map_err(|error| Error::os(Step::ReadAnswer, error))?;
                fds.iter()
                    .map(|fd| fd.any().unwrap_or(true))
                    .collect::<Vec<bool>>()
            };
            let mut ready = ready.into_iter();
            for (source, sink) in [(&mut out, &mut *stdout), (&mut err, &mut *stderr)] {
                if source.is_none() || !ready.next().unwrap_or(false) {
                    continue;
                }
                if let Some(file) = source {
                    // Room for one pipe's worth, made once and only for a piped output.
                    chunk.resize(64 * 1024, 0);
                    match sys::retry_interrupted(|| file.read(&mut chunk)) {
                        Ok(0) => *source = None,
                        Ok(read) => sink.extend_from_slice(&chunk[..read]),
                        Err(error) => return Err(Error::os(Step::ReadOutput, error)),
                    }
                }
            }
        }
    }

    /// Waits for the child to exit, until `deadline`; `false` when the deadline came first.
    /// Through the child's pidfd, which turns readable at its exit; by polling its status
    /// where there is none (before Linux 5.3).
    fn wait_until(&mut self, deadline: Option<Instant>) -> bool {
        let Some(deadline) = deadline else {
            return true;
        };
        if let Some(pidfd) = self.child.pidfd() {
            match wait_for(pidfd, PollFlags::POLLIN, Some(deadline)) {
                Ok(()) => return true,
                Err(error) if error.kind() == io::ErrorKind::TimedOut => return false,
                // Not a pollable pidfd after all: ask for the status instead.
                Err(_) => {}
            }
        }
        let mut pause = Duration::from_micros(100);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return true,
                Ok(None) => {}
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }
}

/// Waits until `fd` is ready for `events` (or its other end is gone: what follows says
/// which); `TimedOut` once `deadline` has passed.
fn wait_for(fd: impl AsFd, events: PollFlags, deadline: Option<Instant>) -> io::Result<()> {
    loop {
        let Some(wait) = poll_timeout(deadline) else {
            return Err(io::ErrorKind::TimedOut.into());
        };
        let mut fds = [PollFd::new(fd.as_fd(), events)];
        match poll(&mut fds, wait) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => {}
            Ok(_) => return Ok(()),
            Err(errno) => return Err(errno.into()),
        }
    }
}

/// How long a poll may wait for `deadline`: forever without one, `None` once it has
/// passed. Rounded up, so that a wait never ends just before the deadline.
fn poll_timeout(deadline: Option<Instant>) -> Option<PollTimeout> {
    let Some(deadline) = deadline else {
        return Some(PollTimeout::NONE);
    };
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return None;
    }
    let millis = left.as_millis().saturating_add(1).min(i32::MAX as u128 - 1);
    Some(PollTimeout::try_from(millis as i32).unwrap_or(PollTimeout::MAX))
}

/// Reads the answer the child wrote into `file` (the call's memfd) after the call, from
/// `answer_at`: one frame, whose head says how long it is — a first read of a page takes
/// a small one whole — and then no more than the file's pages hold, in steps of 64 MiB,
/// so that a child lying about the length gets no more memory of its parent than it
/// wrote. What the file lacks of a frame is left for the decoding to call an answer that
/// never came.
fn read_answer(file: &File, answer_at: u64, received: &mut Vec<u8>) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    const FIRST_READ: usize = 4096;
    received.clear();
    // Asked only of an answer larger than the first read.
    let mut file_size = None;
    loop {
        let want = match wire::missing(received) {
            Some(0) => return Ok(()),
            Some(missing) => {
                let size = match file_size {
                    Some(size) => size,
                    None => {
                        use std::os::unix::fs::MetadataExt;
                        let file = file.metadata()?;
                        // Holes hold nothing the child wrote: a file made large without
                        // writing gets none of its parent's memory either.
                        *file_size.insert(file.len().min(file.blocks().saturating_mul(512)))
                    }
                };
                let left = size.saturating_sub(answer_at + received.len() as u64);
                missing.min(left).min(1 << 26) as usize
            }
            // No head yet, or one that is not a frame's: the decoding says which.
            None => FIRST_READ.saturating_sub(received.len()),
        };
        let at = received.len();
        received.resize(at + want, 0);
        // The memfd's offset is shared with the child's copy, which read and wrote
        // through it: read at a position, not from the offset.
        let position = answer_at + at as u64;
        let read = sys::retry_interrupted(|| file.read_at(&mut received[at..], position));
        match read {
            Ok(read) => received.truncate(at + read),
            Err(error) => {
                received.truncate(at);
                return Err(error);
            }
        }
        if received.len() == at {
            return Ok(());
        }
    }
}

/// The value an answer carries, or the error that says why there is none: `frame` is the
/// answer, if one came whole; `status`, how the child ended, if it did.
fn decode_answer<Out: DeserializeOwned>(
    entry: &str,
    types: &Signature,
    frame: Option<(Tag, &[u8])>,
    status: Option<ExitStatus>,
) -> Result<Out, Error> {
    let entry = || entry.to_owned();
    let bad_answer = |message: String| Error::Encoding {
        entry: entry(),
        what: "reading the child's answer",
        message,
    };
    let Some((tag, body)) = frame else {
        return Err(match status.and_then(|status| status.signal()) {
            Some(signal) => Error::Killed {
                entry: entry(),
                signal,
            },
            None => Error::NoAnswer {
                entry: entry(),
                code: status.and_then(|status| status.code()),
            },
        });
    };
    match tag {
        Tag::Value => wire::decode(body).map_err(|error| Error::Encoding {
            entry: entry(),
            what: "reading the entry's value with postcard",
            message: error.to_string(),
        }),
        Tag::Panic => {
            let (message, file, line, column) = wire::decode::<(String, String, u32, u32)>(body)
                .map_err(|error| bad_answer(error.to_string()))?;
            Err(Error::Panicked {
                entry: entry(),
                message,
                file,
                line,
                column,
            })
        }
        Tag::Mismatch => {
            let theirs = Signature::decode(body).map_err(|error| bad_answer(error.to_string()))?;
            Err(Error::TypeMismatch {
                entry: entry(),
                entry_types: format!("{} -> {}", theirs.input, theirs.output),
                call_types: format!("{} -> {}", types.input, types.output),
            })
        }
        Tag::Failed => Err(Error::Encoding {
            entry: entry(),
            what: "the child's reading of the input or writing of the value",
            message: wire::decode::<String>(body)
                .unwrap_or_else(|error| format!("(unreadable: {error})")),
        }),
        Tag::Types | Tag::Input => Err(bad_answer(format!("a frame of kind {tag:?}"))),
    }
}

impl<Out> Drop for TypedChild<Out> {
    fn drop(&mut self) {
        // After a join the status is known and this does nothing.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The frames a call of `entry` with `input` sends: its types, then the value.
fn request<In: Serialize + 'static, Out: 'static>(
    entry: &str,
    input: &In,
) -> Result<(Signature, Vec<u8>), Error> {
    let mut request = Vec::new();
    let types = Signature::of::<In, Out>();
    types
        .encode(Tag::Types, &mut request)
        .and_then(|()| wire::encode(Tag::Input, input, &mut request))
        .map_err(|error| Error::Encoding {
            entry: entry.to_owned(),
            what: "writing the input with postcard",
            message: error.to_string(),
        })?;
    Ok((types, request))
}

/// Starts `command` for a [`Pool`](crate::Pool) worker, which answers call after call and
/// does not exit between them: an input pipe and an answer pipe, our ends of both back
/// with the child.
pub(crate) fn start_on_pipes(command: &mut Command) -> Result<(Child, File, File), Error> {
    let (input_at, answer_at) = free_pair(command.given_fd_numbers());
    let (input_read, input_write) =
        sys::cloexec_pipe().map_err(|error| Error::os(Step::CreatePipe, error))?;
    let (answer_read, answer_write) =
        sys::cloexec_pipe().map_err(|error| Error::os(Step::CreatePipe, error))?;
    command.fd(input_at, input_read).fd(answer_at, answer_write);
    let child = spawn_with_numbers(command, format!("{input_at},{answer_at}"))?;
    Ok((child, File::from(input_write), File::from(answer_read)))
}

/// Starts `command` for one call of `request`: a memfd that holds the call, read by the
/// child, which then writes its answer after it. No answer can fill a file, so the child
/// never waits for its parent to read, nor the parent for the child to read its input;
/// the parent sleeps only until the exit it waits for anyway.
fn start_call(command: &mut Command, request: &[u8]) -> Result<(Child, File), Error> {
    use nix::sys::memfd::{MFdFlags, memfd_create};
    use std::os::unix::fs::FileExt;
    let (call_at, _) = free_pair(command.given_fd_numbers());
    let ours = memfd_create(c"reexec-typed-call", MFdFlags::MFD_CLOEXEC)
        .map(File::from)
        .map_err(|errno| Error::os(Step::CreateAnswerFile, errno.into()))?;
    // At a position, so that the offset the child reads from stays at the start.
    ours.write_all_at(request, 0)
        .map_err(|error| Error::os(Step::SendInput, error))?;
    let theirs = ours
        .try_clone()
        .map_err(|error| Error::os(Step::CreateAnswerFile, error))?;
    command.fd(call_at, OwnedFd::from(theirs));
    let child = spawn_with_numbers(command, call_at.to_string())?;
    Ok((child, ours))
}

/// Spawns `command`, whose typed-call descriptors are given already, telling the child
/// their `numbers` in [`wire::FDS_ENV`].
fn spawn_with_numbers(command: &mut Command, numbers: String) -> Result<Child, Error> {
    command.set_own_variable(Some((wire::FDS_ENV, numbers.into())));
    let child = command.spawn();
    // Spawn took the descriptors; the numbers must not reach a later plain spawn.
    command.set_own_variable(None);
    child
}

/// Two descriptor numbers from 3 up that the command does not give already.
fn free_pair(taken: impl Iterator<Item = RawFd> + Clone) -> (RawFd, RawFd) {
    let mut free = (3..).filter(|number| !taken.clone().any(|taken| taken == *number));
    let first = free.next().unwrap_or(3);
    let second = free.next().unwrap_or(4);
    (first, second)
}
