#[reexec::entry("child")]
fn child(name: String, count: u32) {
    println!("{name} {count}");
}

fn main() {}
