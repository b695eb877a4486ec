#[reexec::entry("child", foo = 1)]
fn child() {}

fn main() {}
