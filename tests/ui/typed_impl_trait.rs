#[reexec::entry("child")]
fn child(text: impl Into<String>) -> impl serde::Serialize {
    text.into()
}

fn main() {}
