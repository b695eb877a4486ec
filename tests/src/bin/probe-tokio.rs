//! `main!` around `#[tokio::main]`: the entry must run before the runtime starts threads.

fn threads_of_this_process() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

#[reexec::entry("count-threads")]
fn count_threads() {
    println!("entry_threads={}", threads_of_this_process());
}

reexec::main! {
    #[tokio::main(flavor = "multi_thread", worker_threads = 4)]
    async fn main() -> Result<(), reexec::Error> {
        println!("main_threads={}", threads_of_this_process());
        let output = reexec::Command::new("count-threads").output()?;
        print!("{}", String::from_utf8_lossy(&output.stdout));
        Ok(())
    }
}
