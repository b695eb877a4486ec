#[reexec::entry("child")]
unsafe fn child() {}

fn main() {}
