#[reexec::entry("child")]
extern "C" fn child() {}

fn main() {}
