//! Seccomp filters: which system calls the child's program may make, compiled in the
//! parent into a classic BPF program that [`Command::seccomp`](crate::Command::seccomp)
//! installs in the child as its very last step before `execve`.
//!
//! The compiler is ours, not `seccompiler`'s nor libseccomp's: what a sandbox needs — an
//! architecture check, a list of calls (optionally with argument tests, all of which must
//! hold: masked equality or an unsigned comparison),
//! an action per call and a default — compiles into a binary search of the call number
//! whose every end is an action, and, for the calls whose first rule tests arguments,
//! those rules in order: a program a reader can check against seccomp(2) in one sitting.
//! It adds no dependency (no C library for users to install), and anything fancier can
//! still be compiled elsewhere and handed over as instructions
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
    compare: Compare,
}

/// How an [`ArgCondition`] compares its argument: masked equality, or one of the
/// unsigned 64-bit comparisons seccomp profiles name (`SCMP_CMP_NE`, `_LT`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Compare {
    MaskedEqual,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

impl ArgCondition {
    /// Argument `index` (0 to 5), masked with `mask`, equals `value`.
    pub fn masked_equal(index: u8, mask: u64, value: u64) -> ArgCondition {
        ArgCondition {
            index,
            mask,
            value,
            compare: Compare::MaskedEqual,
        }
    }

    /// Argument `index` (0 to 5) equals `value`.
    pub fn equal(index: u8, value: u64) -> ArgCondition {
        ArgCondition::masked_equal(index, u64::MAX, value)
    }

    fn compared(index: u8, value: u64, compare: Compare) -> ArgCondition {
        ArgCondition {
            index,
            mask: u64::MAX,
            value,
            compare,
        }
    }

    /// Argument `index` (0 to 5) differs from `value`.
    pub fn not_equal(index: u8, value: u64) -> ArgCondition {
        ArgCondition::compared(index, value, Compare::NotEqual)
    }

    /// Argument `index` (0 to 5) is below `value`, both taken as unsigned 64-bit numbers.
    pub fn less(index: u8, value: u64) -> ArgCondition {
        ArgCondition::compared(index, value, Compare::Less)
    }

    /// Argument `index` (0 to 5) is `value` or below, unsigned.
    pub fn less_or_equal(index: u8, value: u64) -> ArgCondition {
        ArgCondition::compared(index, value, Compare::LessOrEqual)
    }

    /// Argument `index` (0 to 5) is above `value`, unsigned.
    pub fn greater(index: u8, value: u64) -> ArgCondition {
        ArgCondition::compared(index, value, Compare::Greater)
    }

    /// Argument `index` (0 to 5) is `value` or above, unsigned.
    pub fn greater_or_equal(index: u8, value: u64) -> ArgCondition {
        ArgCondition::compared(index, value, Compare::GreaterOrEqual)
    }
}

/// One rule: the first that matches a call decides it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    number: u32,
    /// Whether the rule matches every number from `number` up, not `number` alone.
    and_above: bool,
    /// Every one must hold for the rule to match; none: the number alone decides.
    conditions: Vec<ArgCondition>,
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
        self.push_rule(number, false, Vec::new(), action)
    }

    /// System call `number` gets `action` when `condition` holds of its arguments, unless
    /// an earlier rule matched it; otherwise the later rules, then the default, decide.
    pub fn rule_if(
        &mut self,
        number: i64,
        condition: ArgCondition,
        action: SeccompAction,
    ) -> &mut SeccompFilter {
        self.push_rule(number, false, vec![condition], action)
    }

    /// System call `number` gets `action` when every one of `conditions` holds of its
    /// arguments (all of them, as a seccomp profile's `args`), unless an earlier rule
    /// matched it; otherwise the later rules, then the default, decide. No conditions is
    /// [`rule`](Self::rule).
    ///
    /// ```
    /// use reexec::{ArgCondition, SeccompAction, SeccompFilter};
    ///
    /// // socket(AF_NETLINK, _, NETLINK_AUDIT) refused, as podman's default profile does.
    /// let socket = SeccompFilter::syscall_number("socket").expect("known on Linux");
    /// let mut filter = SeccompFilter::new(SeccompAction::Allow);
    /// filter.rule_if_all(
    ///     socket,
    ///     &[ArgCondition::equal(0, 16), ArgCondition::equal(2, 9)],
    ///     SeccompAction::Errno(libc::EINVAL as u16),
    /// );
    /// assert!(filter.compile().is_ok());
    /// ```
    pub fn rule_if_all(
        &mut self,
        number: i64,
        conditions: &[ArgCondition],
        action: SeccompAction,
    ) -> &mut SeccompFilter {
        self.push_rule(number, false, conditions.to_vec(), action)
    }

    /// Every system call numbered `first` or above gets `action`, unless an earlier rule
    /// matched it: calls newer than a list knows, made to look absent with
    /// `Errno(ENOSYS)` so that programs fall back to older ones.
    pub fn rule_from(&mut self, first: i64, action: SeccompAction) -> &mut SeccompFilter {
        self.push_rule(first, true, Vec::new(), action)
    }

    fn push_rule(
        &mut self,
        number: i64,
        and_above: bool,
        conditions: Vec<ArgCondition>,
        action: SeccompAction,
    ) -> &mut SeccompFilter {
        match u32::try_from(number) {
            Ok(number) => self.rules.push(Rule {
                number,
                and_above,
                conditions,
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
        syscalls::number(name).map(i64::from)
    }

    /// The highest number [`syscall_number`](Self::syscall_number) knows on this
    /// architecture: a filter that refuses what it does not know starts
    /// [`rule_from`](Self::rule_from) the next one.
    pub fn last_known_syscall() -> i64 {
        i64::from(syscalls::LAST)
    }

    /// Compiles the filter into a BPF program. Fails with [`Error::InvalidInput`] for a
    /// number no system call has, an argument index above 5, an errno outside 1 to 4095,
    /// or a program longer than the kernel takes (4096 instructions: about 2,000 runs of
    /// call numbers with one action, or 500 rules that test an argument).
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
            .flat_map(|rule| rule.conditions.iter())
            .find(|condition| condition.index > 5)
        {
            return Err(invalid(
                "argument index (ArgCondition)",
                condition.index.to_string(),
                "system calls have arguments 0 to 5",
            ));
        }
        if let Some(rule) = self
            .rules
            .iter()
            .find(|rule| rule_tests(&rule.conditions).len() > MAX_RULE_TESTS)
        {
            return Err(invalid(
                "argument conditions (SeccompFilter::rule_if_all)",
                format!("{} conditions", rule.conditions.len()),
                "one rule's tests must fit in 254 instructions: split the conditions",
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

    /// The program: the architecture check, the search that decides each call number
    /// (`decision_tree`), then the rules that test arguments, in order, and the default.
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
        let first_rules = FirstRules::of(&self.rules);
        let segments = self.segments(&first_rules);
        let (tree, to_rules) = decision_tree(&segments);
        let rules_at = tree.len();
        let header = program.len();
        program.extend(tree);
        // Each of those jumps lands on the first rule, the number still loaded.
        for at in to_rules {
            program[header + at].k = (rules_at - at - 1) as u32;
        }
        // Only the rules a number sent here can match: those of its own number, and those
        // of every number from one up.
        let argument_tested = |rule: &Rule| {
            rule.and_above || self.verdict(&first_rules, rule.number) == Verdict::TestArguments
        };
        for rule in self.rules.iter().filter(|rule| argument_tested(rule)) {
            if rule.conditions.is_empty() {
                // The number stays loaded for the next rule.
                let test = if rule.and_above {
                    libc::BPF_JGE
                } else {
                    libc::BPF_JEQ
                };
                program.push(jump(test, rule.number, 0, 1));
                program.push(ret(rule.action.ret()));
                continue;
            }
            // Another number skips the tests and the action, to the reload of the number
            // that the tests replace: where a failed test goes on too.
            let tests = rule_tests(&rule.conditions);
            let reload = tests.len() + 1;
            program.push(jump_if_equal(rule.number, 0, reload as u8));
            for (position, step) in tests.iter().enumerate() {
                program.push(step.instruction(position, reload));
            }
            program.push(ret(rule.action.ret()));
            program.push(load(offset_of!(libc::seccomp_data, nr)));
        }
        program.push(ret(self.default.ret()));
        program
    }

    /// What the rules make of call `number` before its arguments are looked at: the
    /// first rule that names it decides, unless that rule tests arguments.
    fn verdict(&self, first_rules: &FirstRules, number: u32) -> Verdict {
        match first_rules.matching(number).map(|index| &self.rules[index]) {
            None => Verdict::Return(self.default.ret()),
            Some(rule) if rule.conditions.is_empty() => Verdict::Return(rule.action.ret()),
            Some(_) => Verdict::TestArguments,
        }
    }

    /// The call numbers cut where the verdict changes: the first number of each run of
    /// one verdict, from 0 up, the last run going on to the highest. A verdict can only
    /// change where a rule's number starts or ends, so those are the numbers to try.
    fn segments(&self, first_rules: &FirstRules) -> Vec<(u32, Verdict)> {
        let mut cuts: Vec<u32> = self
            .rules
            .iter()
            .flat_map(|rule| [rule.number, rule.number.saturating_add(1)])
            .chain([0])
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        let mut segments: Vec<(u32, Verdict)> = Vec::new();
        for first in cuts {
            let verdict = self.verdict(first_rules, first);
            if segments.last().is_none_or(|&(_, last)| last != verdict) {
                segments.push((first, verdict));
            }
        }
        segments
    }
}

/// What a call number gets from the search: an action, or the rules that test its
/// arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Return(u32),
    TestArguments,
}

/// Which rule matches a call number first, found without walking the rules: a
/// profile such as podman's names 400 calls, and the compiler asks about each of them
/// and their neighbours, which walking would make 400 × 800 rule tests.
struct FirstRules {
    /// For each number a rule names alone, the first such rule's index, by number.
    named: Vec<(u32, usize)>,
    /// The rules for every number from one up, as `(that number, index)`, in order.
    from: Vec<(u32, usize)>,
}

impl FirstRules {
    fn of(rules: &[Rule]) -> FirstRules {
        let mut named: Vec<(u32, usize)> = rules
            .iter()
            .enumerate()
            .filter(|(_, rule)| !rule.and_above)
            .map(|(index, rule)| (rule.number, index))
            .collect();
        // By number, then by position: the first of each number is kept.
        named.sort_unstable();
        named.dedup_by_key(|&mut (number, _)| number);
        let from = rules
            .iter()
            .enumerate()
            .filter(|(_, rule)| rule.and_above)
            .map(|(index, rule)| (rule.number, index))
            .collect();
        FirstRules { named, from }
    }

    /// The index of the first rule that matches `number`, if any.
    fn matching(&self, number: u32) -> Option<usize> {
        let named = self
            .named
            .binary_search_by_key(&number, |&(named, _)| named)
            .ok()
            .map(|at| self.named[at].1);
        let from = self
            .from
            .iter()
            .find(|&&(first, _)| number >= first)
            .map(|&(_, index)| index);
        named.into_iter().chain(from).min()
    }
}

/// A binary search of `segments` (as [`SeccompFilter::segments`] gives them, the call
/// number loaded): each comparison halves the runs left, and each run ends in its action,
/// so that every call is decided in about log2(runs) comparisons. The kernel runs the
/// filter on every call number when it installs it, to learn which ones it always allows
/// (its action cache, Linux 5.11): a short walk for each is a short install. Also returns
/// where the jumps to the rules that test arguments are, for the caller to aim once it
/// knows where those rules start.
///
/// Lower halves follow their comparison; a jump to the upper half longer than a
/// comparison's 8 bits takes a `BPF_JA`, whose offset has 32 bits.
fn decision_tree(segments: &[(u32, Verdict)]) -> (Vec<libc::sock_filter>, Vec<usize>) {
    let mut program = Vec::new();
    let mut to_rules = Vec::new();
    emit_decision(segments, &mut program, &mut to_rules);
    (program, to_rules)
}

/// Appends the search of `segments` to `program`, and the positions of its jumps to the
/// rules to `to_rules`.
fn emit_decision(
    segments: &[(u32, Verdict)],
    program: &mut Vec<libc::sock_filter>,
    to_rules: &mut Vec<usize>,
) {
    if let [(_, verdict)] = segments {
        match *verdict {
            Verdict::Return(value) => program.push(ret(value)),
            Verdict::TestArguments => {
                to_rules.push(program.len());
                // Aimed by the caller.
                program.push(statement(libc::BPF_JMP | libc::BPF_JA, 0));
            }
        }
        return;
    }
    let (below, at_or_above) = segments.split_at(segments.len() / 2);
    let pivot = at_or_above[0].0;
    let mut lower = Vec::new();
    let mut lower_to_rules = Vec::new();
    emit_decision(below, &mut lower, &mut lower_to_rules);
    let skip = lower.len();
    match u8::try_from(skip) {
        Ok(skip) => program.push(jump(libc::BPF_JGE, pivot, skip, 0)),
        Err(_) => {
            program.push(jump(libc::BPF_JGE, pivot, 0, 1));
            program.push(statement(libc::BPF_JMP | libc::BPF_JA, skip as u32));
        }
    }
    let base = program.len();
    to_rules.extend(lower_to_rules.into_iter().map(|at| base + at));
    program.extend(lower);
    emit_decision(at_or_above, program, to_rules);
}

/// The most instructions a rule's conditions compile into: the jumps over them are 8 bits.
const MAX_RULE_TESTS: usize = 254;

/// Where a step of a rule's tests goes: on to the next instruction, to the end of its
/// condition (it holds), or to the reload of the number after the rule's action (it
/// fails). Positions are counted from the first test of the rule.
#[derive(Clone, Copy)]
enum Go {
    Next,
    To(usize),
    Fail,
}

/// One instruction of a rule's tests, its jumps still symbolic.
struct Step {
    code: u32,
    k: u32,
    jt: Go,
    jf: Go,
}

impl Step {
    fn plain(code: u32, k: u32) -> Step {
        Step {
            code,
            k,
            jt: Go::Next,
            jf: Go::Next,
        }
    }

    fn jump(condition: u32, k: u32, jt: Go, jf: Go) -> Step {
        Step {
            code: libc::BPF_JMP | condition | libc::BPF_K,
            k,
            jt,
            jf,
        }
    }

    /// The instruction at `position`, `reload` being the position of the number's reload.
    fn instruction(&self, position: usize, reload: usize) -> libc::sock_filter {
        let offset = |go: Go| match go {
            Go::Next => 0,
            Go::To(target) => (target - position - 1) as u8,
            Go::Fail => (reload - position - 1) as u8,
        };
        libc::sock_filter {
            code: self.code as u16,
            jt: offset(self.jt),
            jf: offset(self.jf),
            k: self.k,
        }
    }
}

impl ArgCondition {
    /// The instructions that test it, at positions from 0 up within the rule's tests once
    /// shifted: `To` targets are relative to the condition's own first step, fixed up by
    /// [`ArgCondition::steps`].
    fn own_steps(&self) -> Vec<Step> {
        let low = offset_of!(libc::seccomp_data, args) + 8 * usize::from(self.index);
        let high = low + 4;
        let load =
            |offset: usize| Step::plain(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, offset as u32);
        let (value_low, value_high) = (self.value as u32, (self.value >> 32) as u32);
        match self.compare {
            Compare::MaskedEqual => argument_tests(*self)
                .iter()
                .flat_map(|test| {
                    [
                        load(test.offset),
                        // Also when the mask is all ones: one length for every test.
                        Step::plain(libc::BPF_ALU | libc::BPF_AND | libc::BPF_K, test.mask),
                        Step::jump(libc::BPF_JEQ, test.value, Go::Next, Go::Fail),
                    ]
                })
                .collect(),
            // Either half differs.
            Compare::NotEqual => vec![
                load(high),
                Step::jump(libc::BPF_JEQ, value_high, Go::Next, Go::To(4)),
                load(low),
                Step::jump(libc::BPF_JEQ, value_low, Go::Fail, Go::To(4)),
            ],
            // The high halves decide unless equal; then the low ones.
            Compare::Greater | Compare::GreaterOrEqual => vec![
                load(high),
                Step::jump(libc::BPF_JGT, value_high, Go::To(5), Go::Next),
                Step::jump(libc::BPF_JEQ, value_high, Go::Next, Go::Fail),
                load(low),
                Step::jump(
                    if self.compare == Compare::Greater {
                        libc::BPF_JGT
                    } else {
                        libc::BPF_JGE
                    },
                    value_low,
                    Go::To(5),
                    Go::Fail,
                ),
            ],
            // The negation of the one above: less is not greater-or-equal.
            Compare::Less | Compare::LessOrEqual => vec![
                load(high),
                Step::jump(libc::BPF_JGT, value_high, Go::Fail, Go::Next),
                Step::jump(libc::BPF_JEQ, value_high, Go::Next, Go::To(5)),
                load(low),
                Step::jump(
                    if self.compare == Compare::Less {
                        libc::BPF_JGE
                    } else {
                        libc::BPF_JGT
                    },
                    value_low,
                    Go::Fail,
                    Go::To(5),
                ),
            ],
        }
    }
}

/// The steps of a rule's conditions, one after the other, each condition's `To` made
/// relative to the rule's first test.
fn rule_tests(conditions: &[ArgCondition]) -> Vec<Step> {
    let mut tests: Vec<Step> = Vec::new();
    for condition in conditions {
        let base = tests.len();
        let shift = |go: Go| match go {
            Go::To(target) => Go::To(base + target),
            other => other,
        };
        tests.extend(condition.own_steps().into_iter().map(|step| Step {
            jt: shift(step.jt),
            jf: shift(step.jf),
            ..step
        }));
    }
    tests
}

/// One half of an argument's masked equality test: `(half & mask) == value`.
struct HalfTest {
    offset: usize,
    mask: u32,
    value: u32,
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
        // Rules that test an argument run one after the other: 700 of them, of 7
        // instructions each, are more than the kernel takes.
        let mut long = SeccompFilter::new(SeccompAction::Allow);
        for number in 0..700 {
            long.rule_if(number, ArgCondition::equal(0, 1), SeccompAction::Trap);
        }
        assert!(refused(&long));
        assert!(SeccompProgram::from_instructions(Vec::new()).is_err());
    }

    /// Runs `program` on `data` as the kernel would: a classic BPF interpreter for the
    /// instructions the compiler emits, to check the jumps without installing anything.
    fn run(program: &[libc::sock_filter], data: &libc::seccomp_data) -> u32 {
        interpret(program, data).0
    }

    /// How many instructions `program` runs on `data`.
    fn steps(program: &[libc::sock_filter], data: &libc::seccomp_data) -> usize {
        interpret(program, data).1
    }

    /// The verdict, and how many instructions gave it.
    fn interpret(program: &[libc::sock_filter], data: &libc::seccomp_data) -> (u32, usize) {
        // SAFETY: seccomp_data is plain old data; read as bytes.
        let bytes = unsafe {
            std::slice::from_raw_parts(
                (data as *const libc::seccomp_data).cast::<u8>(),
                std::mem::size_of::<libc::seccomp_data>(),
            )
        };
        let (mut pc, mut a, mut steps) = (0usize, 0u32, 0usize);
        loop {
            let instruction = program[pc];
            let code = u32::from(instruction.code);
            pc += 1;
            steps += 1;
            match code {
                c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => {
                    let at = instruction.k as usize;
                    a = u32::from_ne_bytes(bytes[at..at + 4].try_into().unwrap());
                }
                c if c == libc::BPF_ALU | libc::BPF_AND | libc::BPF_K => a &= instruction.k,
                c if c == libc::BPF_RET | libc::BPF_K => return (instruction.k, steps),
                c if c == libc::BPF_JMP | libc::BPF_JA => pc += instruction.k as usize,
                c if c == libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K => {
                    let taken = a == instruction.k;
                    pc += usize::from(if taken {
                        instruction.jt
                    } else {
                        instruction.jf
                    });
                }
                c if c == libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K => {
                    let taken = a > instruction.k;
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

    /// What `filter`'s rules decide for `data`, read straight off them: the first rule
    /// that matches, else the default.
    fn decided(filter: &SeccompFilter, data: &libc::seccomp_data) -> u32 {
        let holds = |condition: &ArgCondition| {
            let argument = data.args[usize::from(condition.index)] & condition.mask;
            match condition.compare {
                Compare::MaskedEqual => argument == condition.value,
                Compare::NotEqual => argument != condition.value,
                Compare::Less => argument < condition.value,
                Compare::LessOrEqual => argument <= condition.value,
                Compare::Greater => argument > condition.value,
                Compare::GreaterOrEqual => argument >= condition.value,
            }
        };
        let number = data.nr as u32;
        filter
            .rules
            .iter()
            .find(|rule| {
                let named = number == rule.number || (rule.and_above && number > rule.number);
                named && rule.conditions.iter().all(holds)
            })
            .map_or(filter.default, |rule| rule.action)
            .ret()
    }

    /// A filter of `count` rules on even numbers, runs of one action broken by other
    /// actions and by rules with conditions (two numbers whose first rule tests an
    /// argument), a number named twice, and, `from_900`, a rule for every number from 900
    /// up.
    fn mixed_filter(count: u32, from_900: bool) -> SeccompFilter {
        let eperm = SeccompAction::Errno(libc::EPERM as u16);
        let mut filter = SeccompFilter::new(SeccompAction::Allow);
        for number in 0..count {
            filter.rule(i64::from(number) * 2 + 10, eperm);
        }
        filter
            .rule(1, SeccompAction::Trap)
            .rule(3, SeccompAction::Trap)
            .rule_if(5, ArgCondition::equal(0, 7), SeccompAction::KillThread)
            .rule(5, eperm)
            .rule_if(7, ArgCondition::equal(0, 0), SeccompAction::Log)
            .rule(7, eperm)
            .rule(1, SeccompAction::Allow);
        if from_900 {
            filter.rule_from(900, SeccompAction::Errno(libc::ENOSYS as u16));
        }
        filter
    }

    #[test]
    fn the_program_decides_every_call_as_the_rules_read_directly_do() {
        // 300 rules on every other number make a search whose lower halves are longer
        // than a comparison's jump: those take a BPF_JA.
        for (count, from_900) in [(100, true), (100, false), (1, false), (300, true)] {
            let filter = mixed_filter(count, from_900);
            let label = format!("{count} rules, from 900: {from_900}");
            let program = filter.compile().unwrap();
            // A comparison that goes on to a BPF_JA when it holds.
            let long_jumps = program.instructions().windows(2).any(|pair| {
                u32::from(pair[0].code) == libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K
                    && (pair[0].jt, pair[0].jf) == (0, 1)
                    && u32::from(pair[1].code) == libc::BPF_JMP | libc::BPF_JA
            });
            assert_eq!(long_jumps, count == 300, "{label}: long jumps");
            for number in (0..1000).chain([0x3fff_ffff]) {
                for arg0 in [0, 7] {
                    let data = call(number, [arg0, 0, 0, 0, 0, 0]);
                    assert_eq!(
                        run(program.instructions(), &data),
                        decided(&filter, &data),
                        "{label}: call {number}, first argument {arg0}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_call_is_decided_in_a_few_comparisons_unless_its_arguments_are_tested() {
        // What the kernel's action cache walks for every number at install, and every
        // call the cache does not answer.
        let filter = mixed_filter(100, true);
        let program = filter.compile().unwrap();
        let steps = |number: i64| steps(program.instructions(), &call(number, [0; 6]));
        // Not named, named, from 900 up: 6 of the header, 8 comparisons, the return.
        for number in [11, 500, 208, 1, 950] {
            assert!(
                steps(number) <= 16,
                "{} instructions for call {number}",
                steps(number)
            );
        }
        // Number 5's first rule tests an argument: on to the rules, which are its own.
        assert!(steps(5) <= 24, "{} instructions for call 5", steps(5));
    }

    #[test]
    fn runs_of_one_action_cost_one_comparison_each() {
        // 3,000 rules: one run refused, one allowed, the rest the default.
        let mut filter = SeccompFilter::new(SeccompAction::Allow);
        for number in 0..3000 {
            filter.rule(number, SeccompAction::Errno(libc::EPERM as u16));
        }
        filter.rule(3000, SeccompAction::Trap);
        let program = filter.compile().unwrap();
        // The header (6 on x86_64), 2 comparisons, 3 returns, the default's.
        assert!(
            program.instructions().len() <= 12,
            "{} instructions",
            program.instructions().len()
        );
        for (number, verdict) in [
            (0, 0x5_0001),
            (2999, 0x5_0001),
            (3000, libc::SECCOMP_RET_TRAP),
        ] {
            assert_eq!(run(program.instructions(), &call(number, [0; 6])), verdict);
        }
        assert_eq!(
            run(program.instructions(), &call(3001, [0; 6])),
            libc::SECCOMP_RET_ALLOW
        );
    }

    /// One rule of a random filter: its number, whether it tests argument 0 (against
    /// `value`) or covers every number from it up, and which of four actions it takes.
    #[derive(Debug, Clone)]
    struct RandomRule {
        number: u32,
        tests_argument: bool,
        and_above: bool,
        action: usize,
        value: u64,
    }

    fn random_rule() -> impl proptest::strategy::Strategy<Value = RandomRule> {
        use proptest::prelude::*;
        (0u32..600, 0u8..20, 0usize..4, 0u64..3).prop_map(|(number, kind, action, value)| {
            RandomRule {
                number,
                tests_argument: kind < 3,
                and_above: kind == 3,
                action,
                value,
            }
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn any_filter_decides_every_call_as_its_rules_read_directly_do(
            rules in proptest::collection::vec(random_rule(), 0..150)
        ) {
            let actions = [
                SeccompAction::Allow,
                SeccompAction::Errno(libc::EPERM as u16),
                SeccompAction::Errno(libc::ENOSYS as u16),
                SeccompAction::Trap,
            ];
            let mut filter = SeccompFilter::new(SeccompAction::Log);
            for rule in &rules {
                let (number, action) = (i64::from(rule.number), actions[rule.action]);
                if rule.and_above {
                    filter.rule_from(number, action);
                } else if rule.tests_argument {
                    filter.rule_if(number, ArgCondition::equal(0, rule.value), action);
                } else {
                    filter.rule(number, action);
                }
            }
            let program = filter.compile().unwrap();
            for number in (0..650).chain([0x3fff_ffff]) {
                for arg0 in 0..3 {
                    let data = call(number, [arg0, 0, 0, 0, 0, 0]);
                    proptest::prop_assert_eq!(
                        run(program.instructions(), &data),
                        decided(&filter, &data),
                        "call {} with first argument {}", number, arg0
                    );
                }
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
    fn comparisons_are_unsigned_on_64_bits_and_all_conditions_must_hold() {
        let high = 1u64 << 40;
        let values = [0, 1, 7, 8, 9, high - 1, high, high + 8, high + 9, u64::MAX];
        type Make = fn(u8, u64) -> ArgCondition;
        type Holds = fn(u64, u64) -> bool;
        let compares: [(Make, Holds); 5] = [
            (ArgCondition::not_equal, |a, v| a != v),
            (ArgCondition::less, |a, v| a < v),
            (ArgCondition::less_or_equal, |a, v| a <= v),
            (ArgCondition::greater, |a, v| a > v),
            (ArgCondition::greater_or_equal, |a, v| a >= v),
        ];
        for (make, holds) in compares {
            for value in [8, high + 8] {
                let program = SeccompFilter::new(SeccompAction::Allow)
                    .rule_if(libc::SYS_read, make(1, value), SeccompAction::Trap)
                    .compile()
                    .unwrap();
                for argument in values {
                    let got = run(
                        program.instructions(),
                        &call(libc::SYS_read, [0, argument, 0, 0, 0, 0]),
                    );
                    let expected = if holds(argument, value) {
                        libc::SECCOMP_RET_TRAP
                    } else {
                        libc::SECCOMP_RET_ALLOW
                    };
                    assert_eq!(got, expected, "{:?} {argument:#x}", make(1, value));
                }
            }
        }
        // socket(16, _, 9) refused; socket(16, _, 1) and socket(2, _, 9) not; each
        // condition's jumps land inside the rule, whatever follows.
        let einval = SeccompAction::Errno(libc::EINVAL as u16);
        let program = SeccompFilter::new(SeccompAction::Allow)
            .rule_if_all(
                libc::SYS_socket,
                &[
                    ArgCondition::not_equal(1, 5),
                    ArgCondition::equal(0, 16),
                    ArgCondition::greater_or_equal(2, 9),
                ],
                einval,
            )
            .rule(libc::SYS_socket, SeccompAction::Log)
            .compile()
            .unwrap();
        let verdict = |args| run(program.instructions(), &call(libc::SYS_socket, args));
        assert_eq!(verdict([16, 1, 9, 0, 0, 0]), einval.ret());
        assert_eq!(verdict([16, 1, 1, 0, 0, 0]), libc::SECCOMP_RET_LOG);
        assert_eq!(verdict([2, 1, 9, 0, 0, 0]), libc::SECCOMP_RET_LOG);
        assert_eq!(verdict([16, 5, 9, 0, 0, 0]), libc::SECCOMP_RET_LOG);
        assert_eq!(
            run(program.instructions(), &call(libc::SYS_read, [0; 6])),
            libc::SECCOMP_RET_ALLOW
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
