#[reexec::entry("child")]
fn child<const N: usize>() {
    println!("{N}");
}

fn main() {}
