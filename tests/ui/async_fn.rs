#[reexec::entry("child")]
async fn child() {}

fn main() {}
