#[reexec::entry(1)]
fn child() {}

fn main() {}
