#[reexec::entry("a\0b")]
fn child() {}

fn main() {}
