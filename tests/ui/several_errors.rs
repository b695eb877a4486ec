// Every mistake is reported at once.
#[reexec::entry("a/b", "c")]
async unsafe fn child(_argument: u8) {}

fn main() {}
