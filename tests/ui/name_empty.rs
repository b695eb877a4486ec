#[reexec::entry("")]
fn child() {}

fn main() {}
