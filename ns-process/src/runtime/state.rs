//! The state directory: one directory per container, what `state`, `kill`, `delete`,
//! `exec` and `list` read.
