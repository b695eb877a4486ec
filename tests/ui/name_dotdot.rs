#[reexec::entry("..")]
fn dotdot() {}

fn main() {}
