#[reexec::entry("child")]
struct Child;

fn main() {}
