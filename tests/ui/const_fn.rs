#[reexec::entry("child")]
const fn child() {}

fn main() {}
