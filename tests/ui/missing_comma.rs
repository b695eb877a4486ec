#[reexec::entry("child" crate = reexec)]
fn child() {}

fn main() {}
