#[reexec::entry("child")]
fn child<'a>() -> Option<&'a str> {
    None
}

fn main() {}
