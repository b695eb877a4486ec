//! OCI hooks: `createRuntime`, `createContainer`, `startContainer`, `poststart`,
//! `poststop`, each given the container's state on stdin.
