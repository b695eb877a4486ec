//! The container's cgroup at `linux.cgroupsPath`, limited by `linux.resources`, kept from
//! `create` to `delete`.
