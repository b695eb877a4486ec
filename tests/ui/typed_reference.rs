#[reexec::entry("child")]
fn child(text: &str) -> usize {
    text.len()
}

fn main() {}
