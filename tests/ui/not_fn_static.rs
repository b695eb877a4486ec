#[reexec::entry("child")]
static CHILD: fn() = main;

fn main() {}
