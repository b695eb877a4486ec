// The return value must be serde's `Serialize`: the error names the return type.
struct Parsed {
    length: usize,
}

#[reexec::entry("child")]
fn child(text: String) -> Parsed {
    Parsed { length: text.len() }
}

fn main() {}
