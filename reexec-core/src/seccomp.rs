//! Seccomp filters: which system calls the child's program may make, compiled in the
//! parent into a classic BPF program that [`Command::seccomp`](crate::Command::seccomp)
//! installs in the child as its very last step before `execve`.
//!
//! The compiler is ours, not `seccompiler`'s nor libseccomp's: what a sandbox needs — an
//! architecture check, a list of calls (optionally with one masked argument test each),
//! an action per call and a default — compiles into a straight list of a few instructions
//! per rule, which a reader can check against seccomp(2) in one sitting. It adds no
//! dependency (no C library for users to install), and anything fancier can still be
//! compiled elsewhere and handed over as instructions
//! ([`SeccompProgram::from_instructions`]).

use std::mem::offset_of;

use crate::error::Error;

mod syscalls;

/// The architecture the filter lets through (`AUDIT_ARCH_*` of linux/audit.h): calls
/// made with another convention — i386's `int 0x80` on x86_64 — carry other numbers, which
/// a list of this architecture's numbers must not be asked to judge.
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

/// x86_64's x32 ABI: the same `AUDIT_ARCH` with this bit in the number. Numbers with it
/// are other calls than the ones a list names (x32's `keyctl` is not 250), so they take
/// the other-architecture action.
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// The kernel's limit on one program (`BPF_MAXINSNS`).
const MAX_INSTRUCTIONS: usize = 4096;

/// The highest errno a filter may return (`MAX_ERRNO`): the kernel caps larger values.
const MAX_ERRNO: u16 = 4095;

/// What happens to a system call a [`SeccompFilter`] matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SeccompAction {
    /// The call runs.
    Allow,
    /// The call does not run and fails with this errno (1 to 4095): `EPERM` for what is
    /// refused, `ENOSYS` for what should look absent, so programs fall back.
    Errno(u16),
    /// The whole process is killed, as by an uncatchable `SIGSYS` (Linux 4.14).
    KillProcess,
    /// The calling thread is killed, as by an uncatchable `SIGSYS`.
    KillThread,
    /// The call does not run and the thread gets `SIGSYS`, which it may handle.
    Trap,
    /// The call runs and the kernel logs it (Linux 4.14).
    Log,
}

impl SeccompAction {
    /// The filter's return value (`SECCOMP_RET_*`).
    fn ret(self) -> u32 {
        match self {
            SeccompAction::Allow => libc::SECCOMP_RET_ALLOW,
            SeccompAction::Errno(errno) => libc::SECCOMP_RET_ERRNO | u32::from(errno),
            SeccompAction::KillProcess => libc::SECCOMP_RET_KILL_PROCESS,
            SeccompAction::KillThread => libc::SECCOMP_RET_KILL_THREAD,
            SeccompAction::Trap => libc::SECCOMP_RET_TRAP,
            SeccompAction::Log => libc::SECCOMP_RET_LOG,
        }
    }
}

/// A test of one argument of a system call: `(argument & mask) == value`, on all 64 bits.
///
/// ```
/// // unshare(2) asking for a new user namespace, whatever else it asks for.
/// let new_user = reexec::ArgCondition::masked_equal(
///     0,
///     libc::CLONE_NEWUSER as u64,
///     libc::CLONE_NEWUSER as u64,
/// );
/// # let _ = new_user;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArgCondition {
    index: u8,
    mask: u64,
    value: u64,
}

impl ArgCondition {
    /// Argument `index` (0 to 5), masked with `mask`, equals `value`.
    pub fn masked_equal(index: u8, mask: u64, value: u64) -> ArgCondition {
        ArgCondition { index, mask, value }
    }

    /// Argument `index` (0 to 5) equals `value`.
    pub fn equal(index: u8, value: u64) -> ArgCondition {
        ArgCondition::masked_equal(index, u64::MAX, value)
    }
}

/// One rule: the first that matches a call decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rule {
    number: u32,
    /// Whether the rule matches every number from `number` up, not `number` alone.
    and_above: bool,
    condition: Option<ArgCondition>,
    action: SeccompAction,
}

/// A seccomp filter being built: a default action, and rules for chosen system calls,
/// the first matching rule deciding. [`compile`](Self::compile) turns it into the
/// [`SeccompProgram`] that [`Command::seccomp`](crate::Command::seccomp) installs.
///
/// Calls of another architecture than this build's (i386's `int 0x80` on x86_64, x32's
/// numbers) are never judged by the rules, whose numbers mean other calls there: they
/// take [`other_architectures`](Self::other_architectures)'s action, by default
/// [`SeccompAction::KillProcess`].
///
/// ```no_run
/// use reexec::{SeccompAction, SeccompFilter};
///
/// #[reexec::entry("no-keyrings")]
/// fn no_keyrings() {
///     // SAFETY: keyctl(KEYCTL_GET_KEYRING_ID, ...) with numbers only.
///     let result = unsafe { libc::syscall(libc::SYS_keyctl, 0, -3, 0) };
///     assert_eq!(result, -1);
///     assert_eq!(std::io::Error::last_os_error().raw_os_error(), Some(libc::EPERM));
/// }
///
/// reexec::main! {
///     fn main() -> Result<(), reexec::Error> {
///         let mut filter = SeccompFilter::new(SeccompAction::Allow);
///         for name in ["keyctl", "add_key", "request_key"] {
///             let number = SeccompFilter::syscall_number(name).expect("known on Linux");
///             filter.rule(number, SeccompAction::Errno(libc::EPERM as u16));
///         }
///         let status = reexec::Command::new("no-keyrings")
///             .seccomp(filter.compile()?)
///             .status()?;
///         assert!(status.success());
///         Ok(())
///     }
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeccompFilter {
    default: SeccompAction,
    other_architectures: SeccompAction,
    rules: Vec<Rule>,
    /// The first number given that no system call can have, refused by `compile`.
    invalid_number: Option<i64>,
}

impl SeccompFilter {
    /// A filter that gives every call no rule matches `default`.
    pub fn new(default: SeccompAction) -> SeccompFilter {
        SeccompFilter {
            default,
            other_architectures: SeccompAction::KillProcess,
            rules: Vec::new(),
            invalid_number: None,
        }
    }

    /// The action for calls made with another architecture's convention, which the rules
    /// can't judge; [`SeccompAction::KillProcess`] unless set.
    pub fn other_architectures(&mut self, action: SeccompAction) -> &mut SeccompFilter {
        self.other_architectures = action;
        self
    }

    /// System call `number` (see [`syscall_number`](Self::syscall_number), or
    /// `libc::SYS_*`) gets `action`, unless an earlier rule matched it.
    pub fn rule(&mut self, number: i64, action: SeccompAction) -> &mut SeccompFilter {
        self.push_rule(number, false, None, action)
    }

    /// System call `number` gets `action` when `condition` holds of its arguments, unless
    /// an earlier rule matched it; otherwise the later rules, then the default, decide.
    pub fn rule_if(
        &mut self,
        number: i64,
        condition: ArgCondition,
        action: SeccompAction,
    ) -> &mut SeccompFilter {
        self.push_rule(number, false, Some(condition), action)
    }

    /// Every system call numbered `first` or above gets `action`, unless an earlier rule
    /// matched it: calls newer than a list knows, made to look absent with
    /// `Errno(ENOSYS)` so that programs fall back to older ones.
    pub fn rule_from(&mut self, first: i64, action: SeccompAction) -> &mut SeccompFilter {
        self.push_rule(first, true, None, action)
    }

    fn push_rule(
        &mut self,
        number: i64,
        and_above: bool,
        condition: Option<ArgCondition>,
        action: SeccompAction,
    ) -> &mut SeccompFilter {
        match u32::try_from(number) {
            Ok(number) => self.rules.push(Rule {
                number,
                and_above,
                condition,
                action,
            }),
            Err(_) => {
                self.invalid_number.get_or_insert(number);
            }
        }
        self
    }

    /// The number of the system call `name` (`"keyctl"`, `"open_by_handle_at"`) on this
    /// build's architecture, from the kernel's table up to Linux 6.17; `None` for a name
    /// this architecture does not have (`"iopl"` on aarch64) or a newer call.
    pub fn syscall_number(name: &str) -> Option<i64> {
        syscalls::TABLE
            .binary_search_by_key(&name, |&(known, _)| known)
            .ok()
            .map(|index| i64::from(syscalls::TABLE[index].1))
    }

    /// The highest number [`syscall_number`](Self::syscall_number) knows on this
    /// architecture: a filter that refuses what it does not know starts
    /// [`rule_from`](Self::rule_from) the next one.
    pub fn last_known_syscall() -> i64 {
        syscalls::TABLE
            .iter()
            .map(|&(_, number)| i64::from(number))
            .max()
            .unwrap_or(0)
    }

    /// Compiles the filter into a BPF program. Fails with [`Error::InvalidInput`] for a
    /// number no system call has, an argument index above 5, an errno outside 1 to 4095,
    /// or a program longer than the kernel takes (4096 instructions, about 1,300 rules).
    pub fn compile(&self) -> Result<SeccompProgram, Error> {
        let invalid = |what: &'static str, value: String, why: &str| Error::InvalidInput {
            what,
            value: value.into(),
            why: why.into(),
        };
        if let Some(number) = self.invalid_number {
            return Err(invalid(
                "system call number (SeccompFilter::rule)",
                number.to_string(),
                "system call numbers are 0 or more and fit in 32 bits",
            ));
        }
        let actions = self.rules.iter().map(|rule| rule.action);
        for action in actions.chain([self.default, self.other_architectures]) {
            if let SeccompAction::Errno(errno) = action
                && !(1..=MAX_ERRNO).contains(&errno)
            {
                return Err(invalid(
                    "errno (SeccompAction::Errno)",
                    errno.to_string(),
                    "a filter returns an errno from 1 to 4095 (EPERM is 1); use \
                     SeccompAction::Allow to let the call run",
                ));
            }
        }
        if let Some(condition) = self
            .rules
            .iter()
            .filter_map(|rule| rule.condition)
            .find(|condition| condition.index > 5)
        {
            return Err(invalid(
                "argument index (ArgCondition)",
                condition.index.to_string(),
                "system calls have arguments 0 to 5",
            ));
        }
        let instructions = self.instructions();
        if instructions.len() > MAX_INSTRUCTIONS {
            return Err(invalid(
                "seccomp filter",
                format!("{} rules", self.rules.len()),
                &format!(
                    "it compiles into {} instructions and the kernel takes at most \
                     {MAX_INSTRUCTIONS}: use fewer rules, or a default action that spares \
                     the longer list",
                    instructions.len()
                ),
            ));
        }
        Ok(SeccompProgram { instructions })
    }

    /// The program: the architecture check, each rule in order, the default.
    fn instructions(&self) -> Vec<libc::sock_filter> {
        let other_arch = self.other_architectures.ret();
        let mut program = vec![
            load(offset_of!(libc::seccomp_data, arch)),
            jump_if_equal(AUDIT_ARCH, 1, 0),
            ret(other_arch),
            load(offset_of!(libc::seccomp_data, nr)),
        ];
        #[cfg(target_arch = "x86_64")]
        program.extend([jump(libc::BPF_JGE, X32_SYSCALL_BIT, 0, 1), ret(other_arch)]);
        for rule in &self.rules {
            let Some(condition) = rule.condition else {
                // The number stays loaded for the next rule.
                let test = if rule.and_above {
                    libc::BPF_JGE
                } else {
                    libc::BPF_JEQ
                };
                program.push(jump(test, rule.number, 0, 1));
                program.push(ret(rule.action.ret()));
                continue;
            };
            let tests = argument_tests(condition);
            // Another number skips the tests and the action, to the reload of the number
            // that the tests replace: where a failed test goes on too.
            let past_tests = (TEST_LENGTH * tests.len() + 1) as u8;
            program.push(jump_if_equal(rule.number, 0, past_tests));
            for (position, test) in tests.iter().enumerate() {
                let tests_after = tests.len() - position - 1;
                program.extend(test.instructions((TEST_LENGTH * tests_after + 1) as u8));
            }
            program.push(ret(rule.action.ret()));
            program.push(load(offset_of!(libc::seccomp_data, nr)));
        }
        program.push(ret(self.default.ret()));
        program
    }
}

/// The instructions of a [`HalfTest`]: load, mask, compare.
const TEST_LENGTH: usize = 3;

/// One half of an argument's test: `(half & mask) == value`.
struct HalfTest {
    offset: usize,
    mask: u32,
    value: u32,
}

impl HalfTest {
    /// The instructions; a mismatch jumps over the next `skip` ones.
    fn instructions(&self, skip: u8) -> [libc::sock_filter; TEST_LENGTH] {
        [
            load(self.offset),
            // Also when the mask is all ones: one length for every test keeps the jumps
            // simple to count.
            statement(libc::BPF_ALU | libc::BPF_AND | libc::BPF_K, self.mask),
            jump_if_equal(self.value, 0, skip),
        ]
    }
}

/// The half-tests of `condition`: the low half always, the high half when the mask
/// reaches it. Both architectures are little-endian: the low half comes first.
fn argument_tests(condition: ArgCondition) -> Vec<HalfTest> {
    let offset = offset_of!(libc::seccomp_data, args) + 8 * usize::from(condition.index);
    // Not masked: a value with bits outside the mask never matches, as written.
    let value = condition.value;
    let mut tests = vec![HalfTest {
        offset,
        mask: condition.mask as u32,
        value: value as u32,
    }];
    if condition.mask >> 32 != 0 || value >> 32 != 0 {
        tests.push(HalfTest {
            offset: offset + 4,
            mask: (condition.mask >> 32) as u32,
            value: (value >> 32) as u32,
        });
    }
    tests
}

fn statement(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(condition: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: (libc::BPF_JMP | condition | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    }
}

fn jump_if_equal(k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    jump(libc::BPF_JEQ, k, jt, jf)
}

fn load(offset: usize) -> libc::sock_filter {
    statement(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, offset as u32)
}

fn ret(k: u32) -> libc::sock_filter {
    statement(libc::BPF_RET | libc::BPF_K, k)
}

/// A compiled seccomp filter: classic BPF instructions for seccomp(2), ready to install
/// with [`Command::seccomp`](crate::Command::seccomp).
#[derive(Clone)]
pub struct SeccompProgram {
    instructions: Vec<libc::sock_filter>,
}

impl std::fmt::Debug for SeccompProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SeccompProgram({} instructions)",
            self.instructions.len()
        )
    }
}

impl SeccompProgram {
    /// A program compiled elsewhere (`seccompiler`, libseccomp's `seccomp_export_bpf`):
    /// 1 to 4096 instructions, which the kernel checks when the child installs them.
    pub fn from_instructions(
        instructions: Vec<libc::sock_filter>,
    ) -> Result<SeccompProgram, Error> {
        if instructions.is_empty() || instructions.len() > MAX_INSTRUCTIONS {
            return Err(Error::InvalidInput {
                what: "seccomp program",
                value: format!("{} instructions", instructions.len()).into(),
                why: format!("a program has 1 to {MAX_INSTRUCTIONS} instructions"),
            });
        }
        Ok(SeccompProgram { instructions })
    }

    /// The instructions, as `struct sock_fprog` points to them.
    pub fn instructions(&self) -> &[libc::sock_filter] {
        &self.instructions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_knows_the_usual_calls() {
        assert!(
            syscalls::TABLE.windows(2).all(|pair| pair[0].0 < pair[1].0),
            "sorted by name, each name once"
        );
        for (name, number) in [
            ("read", libc::SYS_read),
            ("keyctl", libc::SYS_keyctl),
            ("execve", libc::SYS_execve),
            ("open_by_handle_at", libc::SYS_open_by_handle_at),
            ("clone3", libc::SYS_clone3),
            ("mount_setattr", libc::SYS_mount_setattr),
        ] {
            assert_eq!(SeccompFilter::syscall_number(name), Some(number), "{name}");
        }
        assert_eq!(SeccompFilter::syscall_number("no_such_call"), None);
        assert_eq!(SeccompFilter::last_known_syscall(), 469);
    }

    #[test]
    fn bad_rules_are_refused_at_compile() {
        let refused =
            |filter: &SeccompFilter| matches!(filter.compile(), Err(Error::InvalidInput { .. }));
        assert!(refused(
            SeccompFilter::new(SeccompAction::Allow).rule(-1, SeccompAction::Trap)
        ));
        assert!(refused(&SeccompFilter::new(SeccompAction::Errno(0))));
        assert!(refused(&SeccompFilter::new(SeccompAction::Errno(4096))));
        assert!(refused(SeccompFilter::new(SeccompAction::Allow).rule_if(
            0,
            ArgCondition::equal(6, 0),
            SeccompAction::Trap
        )));
        let mut long = SeccompFilter::new(SeccompAction::Allow);
        for number in 0..3000 {
            long.rule(number, SeccompAction::Trap);
        }
        assert!(refused(&long));
        assert!(SeccompProgram::from_instructions(Vec::new()).is_err());
    }

    /// Runs `program` on `data` as the kernel would: a classic BPF interpreter for the
    /// instructions the compiler emits, to check the jumps without installing anything.
    fn run(program: &[libc::sock_filter], data: &libc::seccomp_data) -> u32 {
        // SAFETY: seccomp_data is plain old data; read as bytes.
        let bytes = unsafe {
            std::slice::from_raw_parts(
                (data as *const libc::seccomp_data).cast::<u8>(),
                std::mem::size_of::<libc::seccomp_data>(),
            )
        };
        let (mut pc, mut a) = (0usize, 0u32);
        loop {
            let instruction = program[pc];
            let code = u32::from(instruction.code);
            pc += 1;
            match code {
                c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => {
                    let at = instruction.k as usize;
                    a = u32::from_ne_bytes(bytes[at..at + 4].try_into().unwrap());
                }
                c if c == libc::BPF_ALU | libc::BPF_AND | libc::BPF_K => a &= instruction.k,
                c if c == libc::BPF_RET | libc::BPF_K => return instruction.k,
                c if c == libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K => {
                    let taken = a == instruction.k;
                    pc += usize::from(if taken {
                        instruction.jt
                    } else {
                        instruction.jf
                    });
                }
                c if c == libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K => {
                    let taken = a >= instruction.k;
                    pc += usize::from(if taken {
                        instruction.jt
                    } else {
                        instruction.jf
                    });
                }
                other => panic!("the compiler emitted an unexpected instruction {other:#x}"),
            }
        }
    }

    fn call(number: i64, args: [u64; 6]) -> libc::seccomp_data {
        libc::seccomp_data {
            nr: number as i32,
            arch: AUDIT_ARCH,
            instruction_pointer: 0,
            args,
        }
    }

    #[test]
    fn the_first_matching_rule_decides_and_arguments_are_tested_on_64_bits() {
        let eperm = SeccompAction::Errno(libc::EPERM as u16);
        let high = 1u64 << 40;
        let program = SeccompFilter::new(SeccompAction::Errno(libc::ENOSYS as u16))
            .rule(libc::SYS_getpid, SeccompAction::Allow)
            .rule_if(
                libc::SYS_unshare,
                ArgCondition::masked_equal(0, 0x10, 0x10),
                eperm,
            )
            .rule_if(
                libc::SYS_personality,
                ArgCondition::equal(0, high | 8),
                SeccompAction::Allow,
            )
            .rule(libc::SYS_unshare, SeccompAction::Allow)
            .rule(libc::SYS_getpid, SeccompAction::Trap)
            .compile()
            .unwrap();
        let program = program.instructions();
        let verdict = |number, arg0| run(program, &call(number, [arg0, 0, 0, 0, 0, 0]));
        assert_eq!(verdict(libc::SYS_getpid, 0), libc::SECCOMP_RET_ALLOW);
        assert_eq!(verdict(libc::SYS_unshare, 0x30), eperm.ret());
        assert_eq!(verdict(libc::SYS_unshare, 0x20), libc::SECCOMP_RET_ALLOW);
        assert_eq!(
            verdict(libc::SYS_personality, high | 8),
            libc::SECCOMP_RET_ALLOW
        );
        // The low half alone, or the high half alone, is not the value.
        assert_eq!(
            verdict(libc::SYS_personality, 8),
            libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32
        );
        assert_eq!(
            verdict(libc::SYS_personality, high),
            libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32
        );
        assert_eq!(
            verdict(libc::SYS_read, 0),
            libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32
        );
    }

    #[test]
    fn numbers_from_a_first_one_up_take_its_action() {
        let enosys = SeccompAction::Errno(libc::ENOSYS as u16);
        let program = SeccompFilter::new(SeccompAction::Allow)
            .rule(500, SeccompAction::Allow)
            .rule_from(470, enosys)
            .compile()
            .unwrap();
        let verdict = |number| run(program.instructions(), &call(number, [0; 6]));
        assert_eq!(verdict(469), libc::SECCOMP_RET_ALLOW);
        assert_eq!(verdict(470), enosys.ret());
        assert_eq!(verdict(1000), enosys.ret());
        assert_eq!(
            verdict(500),
            libc::SECCOMP_RET_ALLOW,
            "an earlier rule decides"
        );
    }

    #[test]
    fn other_architectures_are_not_judged_by_the_rules() {
        let program = SeccompFilter::new(SeccompAction::Allow)
            .other_architectures(SeccompAction::Errno(libc::EXDEV as u16))
            .compile()
            .unwrap();
        let mut i386 = call(20, [0; 6]);
        i386.arch = 0x4000_0003;
        assert_eq!(
            run(program.instructions(), &i386),
            libc::SECCOMP_RET_ERRNO | libc::EXDEV as u32
        );
        #[cfg(target_arch = "x86_64")]
        {
            let x32 = call(i64::from(X32_SYSCALL_BIT) | libc::SYS_getpid, [0; 6]);
            assert_eq!(
                run(program.instructions(), &x32),
                libc::SECCOMP_RET_ERRNO | libc::EXDEV as u32
            );
        }
        assert_eq!(
            run(program.instructions(), &call(libc::SYS_getpid, [0; 6])),
            libc::SECCOMP_RET_ALLOW
        );
    }
}
