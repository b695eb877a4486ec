//! `ns-process`: a shell, or any command, in new mount, UTS, IPC, PID, network and user
//! namespaces, with root mapped to the caller. See `ns-process --help`; the engine is the
//! library of this package.

reexec::main! {
    fn main() -> std::process::ExitCode {
        ns_process::ns_process_main()
    }
}
