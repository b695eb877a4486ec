#[reexec::entry("child")]
fn child(code: i32) -> ! {
    std::process::exit(code)
}

fn main() {}
