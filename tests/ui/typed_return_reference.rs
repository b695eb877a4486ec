#[reexec::entry("child")]
fn child(index: usize) -> &'static str {
    ["a", "b"][index]
}

fn main() {}
