//! A plain WASI command: a valid component, but not a moat plugin.
fn main() {
    println!("I am a command, not a plugin");
}
