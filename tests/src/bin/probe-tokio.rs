//! `main!` around `#[tokio::main]`: the entry must run before the runtime starts threads.

use reexec_tests::procfs::thread_count;

#[reexec::entry("count-threads")]
fn count_threads() {
    println!("entry_threads={}", thread_count());
}

reexec::main! {
    #[tokio::main(flavor = "multi_thread", worker_threads = 4)]
    async fn main() -> Result<(), reexec::Error> {
        println!("main_threads={}", thread_count());
        let output = reexec::Command::new("count-threads").output()?;
        print!("{}", String::from_utf8_lossy(&output.stdout));
        Ok(())
    }
}
