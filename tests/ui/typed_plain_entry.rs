// A plain entry (no argument) has no typed handle: its name is only the function's.
#[reexec::entry("child")]
fn child() {}

fn main() {
    let _ = reexec::call::<child>(&());
}
