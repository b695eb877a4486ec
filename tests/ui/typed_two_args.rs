#[reexec::entry("child")]
fn child(name: String, count: u32) -> String {
    name.repeat(count as usize)
}

fn main() {}
