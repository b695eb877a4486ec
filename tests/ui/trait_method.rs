trait Service {
    #[reexec::entry("serve")]
    fn serve();
}

fn main() {}
