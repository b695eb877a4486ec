#[reexec::entry("child")]
fn child()
where
    String: Clone,
{
}

fn main() {}
