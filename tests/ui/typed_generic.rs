#[reexec::entry("child")]
fn child<T: serde::de::DeserializeOwned>(value: T) -> u32 {
    drop(value);
    0
}

fn main() {}
