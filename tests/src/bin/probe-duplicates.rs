//! Two entries under one name: the binary must refuse to run at all.

#[reexec::entry("twice")]
fn first() {}

mod elsewhere {
    #[reexec::entry("twice")]
    fn second() {}
}

reexec::main! {
    fn main() {
        println!("main ran");
    }
}
