//! Porting a `std::process` program to forkexec: one line changes.
//!
//! ```sh
//! cargo run --example port_from_std
//! ```
use std::process::Command;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "echo \"hello from $NAME in $(pwd)\""])
        .env("NAME", "forkexec")
        .current_dir("/");

    // Before: let status = cmd.status()?;
    let status = forkexec::Cmd::from(&cmd).status()?; // program, args, env, cwd; stdio inherited as std

    assert!(status.success());
    println!("{status}"); // Go's text: "exit status 0"
    Ok(())
}
