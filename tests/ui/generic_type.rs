#[reexec::entry("child")]
fn child<T: Default>() {
    let _ = T::default();
}

fn main() {}
