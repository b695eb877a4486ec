#[reexec::entry("child", crate)]
fn child() {}

fn main() {}
