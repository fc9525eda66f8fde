//! `hato`: the server (`hato serve`) and its command line, a client of the admin API.

mod cli;
mod config;
mod serve;
mod throttle;

use clap::Parser;
use std::process::ExitCode;

/// Fixes glibc's mmap threshold at its initial 128 KiB. By default glibc raises the threshold
/// to the size of each large mmapped block freed (up to 32 MiB), after which the buffers of
/// large messages come from its arenas instead, and every arena (up to eight per core, one per
/// busy thread of the blocking pool) keeps the most it ever held. With 200 sessions each
/// sending a 30 MB message, the server's peak RSS was 860 MB with the dynamic threshold and 363
/// MB with it fixed (`bash bench/memory.sh`, `GLIBC_TUNABLES=glibc.malloc.mmap_threshold=131072`
/// for the comparison). mallopt(3): setting M_MMAP_THRESHOLD turns the adjustment off, so a
/// block above it goes back to the system when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn fix_malloc_mmap_threshold() {
    // SAFETY: mallopt only changes the allocator's parameters; it is called first thing in
    // main, before any other thread exists, as mallopt(3) advises.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn fix_malloc_mmap_threshold() {}

fn main() -> ExitCode {
    fix_malloc_mmap_threshold();
    let args = match cli::Cli::try_parse() {
        Ok(a) => a,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            // One clear line, like every other error (clap's own text starts with "error: ").
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!("{first} (see hato --help)");
            return ExitCode::FAILURE;
        }
    };
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
