//! Test support for the reexec workspace: the binaries in `src/bin` re-execute themselves
//! for real, and the tests in `tests/` run those binaries.
