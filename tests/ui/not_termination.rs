struct Status;

#[reexec::entry("child")]
fn child() -> Status {
    Status
}

fn main() {}
