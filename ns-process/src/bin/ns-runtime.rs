//! `ns-runtime`: an OCI runtime with runc's command line, on ns-process's engine. See
//! `ns-runtime --help`.

reexec::main! {
    fn main() -> std::process::ExitCode {
        ns_process::runtime::main()
    }
}
