//! `--console-socket`: the pty's master sent to the caller's socket with `SCM_RIGHTS`.
