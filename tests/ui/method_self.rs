struct Server;

impl Server {
    #[reexec::entry("serve")]
    fn serve(&self) {}
}

fn main() {
    Server.serve();
}
