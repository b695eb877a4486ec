#[reexec::entry("child")]
async fn child(text: String) -> String {
    text
}

fn main() {}
