#[reexec::entry(child)]
fn child() {}

fn main() {}
