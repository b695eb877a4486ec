#[reexec::entry("child", crate = reexec, crate = reexec)]
fn child() {}

fn main() {}
