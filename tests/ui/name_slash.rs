#[reexec::entry("bin/child")]
fn child() {}

fn main() {}
