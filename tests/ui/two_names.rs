#[reexec::entry("child", "kid")]
fn child() {}

fn main() {}
