#[reexec::entry(".")]
fn dot() {}

fn main() {}
