#[reexec::entry("child")]
fn child(_: ...) {}

fn main() {}
