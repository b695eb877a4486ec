// The argument must be serde's `DeserializeOwned`: the error names the argument's type.
struct Request {
    text: String,
}

#[reexec::entry("child")]
fn child(request: Request) -> usize {
    request.text.len()
}

fn main() {}
