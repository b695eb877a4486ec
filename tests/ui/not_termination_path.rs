mod status {
    pub struct Status<T>(pub T);
}

#[reexec::entry("child")]
fn child() -> status::Status<()> {
    status::Status(())
}

fn main() {}
