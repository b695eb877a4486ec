//! The child's side of a typed call: read the call from one descriptor, run the entry,
//! answer on the other — the value, or the panic with its message and place.
//!
//! Runs in the re-executed child, after `execve`, from the entry's registration (the code
//! `#[reexec::entry]` generates calls [`serve`]), while the process has one thread.

use std::cell::RefCell;
use std::fs::File;
use std::io::{BufReader, Write};
use std::mem::ManuallyDrop;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::panic::{self, AssertUnwindSafe};
use std::process::ExitCode;
use std::sync::Once;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::wire::{self, FDS_ENV, Signature, Tag};
use crate::dispatch::EXIT_PANIC;

/// Exit status of a typed entry started without a typed call — by
/// [`Command::new`](crate::Command::new), say — so with no input to read.
pub const EXIT_NOT_A_TYPED_CALL: u8 = 123;

thread_local! {
    /// The answer descriptor while an entry runs on this thread: the panic hook answers
    /// on it, and takes it so that only the first panic answers.
    static ANSWER_ON_PANIC: RefCell<Option<RawFd>> = const { RefCell::new(None) };
}

/// How the entry's input is read: made only where the type is serde's, by [`input_type`],
/// which the generated code calls spanned on the entry's argument type — so that a type
/// serde cannot read is reported there, once, and not again on the call of [`serve`].
#[doc(hidden)]
pub struct Decoder<T>(fn(&[u8]) -> Result<T, postcard::Error>);

/// How the entry's value is written: see [`Decoder`].
#[doc(hidden)]
pub struct Encoder<T>(fn(&T, &mut Vec<u8>) -> Result<(), postcard::Error>);

/// The [`Decoder`] of a typed entry's argument type.
#[doc(hidden)]
pub fn input_type<T: DeserializeOwned + 'static>() -> Decoder<T> {
    Decoder(wire::decode::<T>)
}

/// The [`Encoder`] of a typed entry's return type.
#[doc(hidden)]
pub fn output_type<T: Serialize + 'static>() -> Encoder<T> {
    Encoder(|value, into| wire::encode(Tag::Value, value, into))
}

/// Serves the calls that arrive on the descriptors the parent gave — one from a
/// [`TypedCommand`](crate::TypedCommand)'s file, one after another on a
/// [`Pool`](crate::Pool) worker's pipes — and ends with 0, or [`EXIT_PANIC`] when the
/// last call panicked.
#[doc(hidden)]
pub fn serve<In: 'static, Out: 'static>(
    name: &'static str,
    entry: fn(In) -> Out,
    decoder: Decoder<In>,
    encoder: Encoder<Out>,
) -> ExitCode {
    let Some(channel) = take_descriptors(name) else {
        return ExitCode::from(EXIT_NOT_A_TYPED_CALL);
    };
    install_panic_hook();
    let ours = Signature::of::<In, Out>();
    let run = |call, mut answer: &File| {
        let (frame, panicked) = answer_call(&ours, call, entry, &decoder, &encoder, answer);
        if let Some(frame) = frame {
            // Through the descriptor's offset: a call's file is read up to its end, so
            // the answer follows the call there.
            if let Err(error) = answer.write_all(&frame) {
                eprintln!("reexec: the typed entry {name:?} could not send its answer: {error}");
                return Err(ExitCode::FAILURE);
            }
        }
        Ok(if panicked {
            ExitCode::from(EXIT_PANIC)
        } else {
            ExitCode::SUCCESS
        })
    };
    let could_not_read = |error: std::io::Error| {
        eprintln!("reexec: the typed entry {name:?} could not read its call: {error}");
        ExitCode::FAILURE
    };
    match channel {
        Channel::OneCall(file) => {
            // Small reads, each of what the frame's head says, rather than a buffer whose
            // pages a single call would touch for nothing.
            match read_call(&mut &file) {
                Ok(Some(call)) => run(call, &file).unwrap_or_else(|failed| failed),
                Ok(None) => could_not_read(std::io::ErrorKind::UnexpectedEof.into()),
                Err(error) => could_not_read(error),
            }
        }
        Channel::Pipes { input, answer } => {
            let mut input = BufReader::with_capacity(1 << 16, input);
            let mut status = ExitCode::SUCCESS;
            loop {
                match read_call(&mut input) {
                    Ok(Some(call)) => match run(call, &answer) {
                        Ok(ran) => status = ran,
                        Err(failed) => return failed,
                    },
                    // The parent closed its end: no more calls.
                    Ok(None) => return status,
                    Err(error) => return could_not_read(error),
                }
            }
        }
    }
}

/// Where a child's calls come from and its answers go.
enum Channel {
    /// One call's memfd: the call, which the child reads to its end, then the answer.
    OneCall(File),
    /// A pool worker's two pipes, for call after call.
    Pipes { input: File, answer: File },
}

/// The descriptors [`FDS_ENV`] names — `CALL` or `INPUT,ANSWER` — made close-on-exec so
/// that a program the entry runs does not hold them; `None`, said on stderr, when the
/// variable is missing or bad.
fn take_descriptors(name: &str) -> Option<Channel> {
    // An entry's registration calls this before the entry runs, from the dispatch.
    let value = crate::dispatch::take_env_var_in_dispatch(FDS_ENV)
        .and_then(|value| value.into_string().ok());
    let parse = |number: &str| number.parse::<RawFd>().ok().filter(|fd| *fd >= 3);
    let numbers = value
        .as_deref()
        .and_then(|value| match value.split_once(',') {
            None => Some((parse(value)?, None)),
            Some((input, answer)) => {
                let (input, answer) = (parse(input)?, parse(answer)?);
                (input != answer).then_some((input, Some(answer)))
            }
        });
    let Some((first, second)) = numbers else {
        eprintln!(
            "reexec: the entry {name:?} takes a typed input, which only a typed call sends: \
             start it with reexec::TypedCommand or reexec::call, not reexec::Command::new"
        );
        return None;
    };
    for fd in std::iter::once(first).chain(second) {
        if let Err(errno) = nix::fcntl::fcntl(
            // SAFETY: the borrow lives for this one call, in a process with one thread
            // (see above), so nothing closes or reuses the number meanwhile; were it not
            // open, fcntl would fail with EBADF and it is refused below.
            unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        ) {
            eprintln!(
                "reexec: the entry {name:?} was not given its descriptor {fd} \
                 (fcntl: {errno}); was it started by reexec::TypedCommand?"
            );
            return None;
        }
    }
    // SAFETY: the parent gave exactly these open descriptors for the calls alone
    // (`typed::start_call`, `typed::start_on_pipes`), checked open just above and
    // distinct; nothing else in the process knows their numbers, now that the variable
    // is gone.
    let owned = |fd| File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    Some(match second {
        None => Channel::OneCall(owned(first)),
        Some(answer) => Channel::Pipes {
            input: owned(first),
            answer: owned(answer),
        },
    })
}

/// A call as read: the parent's types, and the input's bytes.
struct Call {
    types: Vec<u8>,
    input: Vec<u8>,
}

fn read_call(reader: &mut impl std::io::Read) -> std::io::Result<Option<Call>> {
    let invalid = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
    let Some(types) = wire::read_frame(reader)? else {
        return Ok(None);
    };
    if types.tag != Tag::Types {
        return Err(invalid("a call must start with its types"));
    }
    match wire::read_frame(reader)? {
        Some(input) if input.tag == Tag::Input => Ok(Some(Call {
            types: types.body,
            input: input.body,
        })),
        _ => Err(invalid("the call's types came without its input")),
    }
}

/// The answer to `call` (`None` when the panic hook sent it already), and whether the
/// entry panicked.
fn answer_call<In, Out>(
    ours: &Signature,
    call: Call,
    entry: fn(In) -> Out,
    decoder: &Decoder<In>,
    encoder: &Encoder<Out>,
    answer: &File,
) -> (Option<Vec<u8>>, bool) {
    let mut frame = Vec::new();
    let theirs = match Signature::decode(&call.types) {
        Ok(theirs) => theirs,
        Err(error) => {
            return (
                Some(failed(&format!("reading the call's types: {error}"))),
                false,
            );
        }
    };
    if theirs.fingerprint != ours.fingerprint {
        // Nothing of the input is read as a type it may not be.
        let encoded = ours.encode(Tag::Mismatch, &mut frame);
        return (
            Some(encoded.map_or_else(|error| failed(&error.to_string()), |()| frame)),
            false,
        );
    }
    let input: In = match (decoder.0)(&call.input) {
        Ok(input) => input,
        Err(error) => {
            let message = format!(
                "reading the input as {} with postcard: {error} (postcard cannot read types \
                 that need serde's deserialize_any, such as untagged enums or flattened fields)",
                ours.input
            );
            return (Some(failed(&message)), false);
        }
    };
    drop(call);
    use std::os::fd::AsRawFd;
    ANSWER_ON_PANIC.with(|slot| *slot.borrow_mut() = Some(answer.as_raw_fd()));
    let result = panic::catch_unwind(AssertUnwindSafe(|| entry(input)));
    // Still there after a panic when the hook did not run: `resume_unwind`.
    let unanswered = ANSWER_ON_PANIC
        .with(|slot| slot.borrow_mut().take())
        .is_some();
    match result {
        Ok(value) => match (encoder.0)(&value, &mut frame) {
            Ok(()) => (Some(frame), false),
            Err(error) => (
                Some(failed(&format!(
                    "writing the entry's value as {} with postcard: {error}",
                    ours.output
                ))),
                false,
            ),
        },
        Err(payload) if unanswered => {
            let message = payload_text(payload.as_ref());
            (Some(panic_frame(message, "<unknown>", 0, 0)), true)
        }
        Err(_) => (None, true),
    }
}

fn failed(message: &str) -> Vec<u8> {
    let mut frame = Vec::new();
    // A string always encodes.
    let _ = wire::encode(Tag::Failed, message, &mut frame);
    frame
}

fn panic_frame(message: &str, file: &str, line: u32, column: u32) -> Vec<u8> {
    let mut frame = Vec::new();
    let _ = wire::encode(Tag::Panic, &(message, file, line, column), &mut frame);
    frame
}

fn payload_text(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text
    } else {
        "Box<dyn Any>"
    }
}

/// Adds to the panic hook: on the thread running an entry, send the panic's message and
/// place as the answer, then print it as before. Answering from the hook, rather than
/// after unwinding, answers under `panic = "abort"` too.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if let Some(fd) = ANSWER_ON_PANIC.with(|slot| slot.borrow_mut().take()) {
                let (file, line, column) = info.location().map_or(("<unknown>", 0, 0), |at| {
                    (at.file(), at.line(), at.column())
                });
                let message = payload_text(info.payload());
                let frame = panic_frame(message, file, line, column);
                // SAFETY: `fd` is the answer descriptor `serve` owns, open for as long as
                // the entry runs, which is when the slot holds it; ManuallyDrop leaves
                // closing it to its owner.
                let mut answer = ManuallyDrop::new(unsafe { File::from_raw_fd(fd) });
                let _ = answer.write_all(&frame);
            }
            previous(info);
        }));
    });
}
