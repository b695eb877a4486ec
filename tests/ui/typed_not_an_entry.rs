// Only an entry's handle can be called.
struct NotAnEntry;

fn main() {
    let _ = reexec::call::<NotAnEntry>(&());
}
