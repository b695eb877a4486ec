// The handle carries the entry's types: the wrong input does not build.
#[reexec::entry("child")]
fn child(text: String) -> usize {
    text.len()
}

fn main() {
    let _ = reexec::call::<child>(&42u32);
}
