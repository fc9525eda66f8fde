//! Postfix's smtp-sink as a receiving server on loopback (as `tests/mx_delivery.rs` starts it),
//! with its running counters (`-c`) in a file the test reads.

use std::time::{Duration, Instant};

pub struct Sink {
    child: std::process::Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e == "0"))
        .unwrap_or(false)
}

/// The TCP port a process listens on, from its sockets in /proc.
fn listening_port(pid: u32) -> Option<u16> {
    let mut inodes = Vec::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd")).ok()? {
        let link = std::fs::read_link(fd.ok()?.path()).ok()?;
        if let Some(inode) = link
            .to_str()
            .and_then(|l| l.strip_prefix("socket:["))
            .and_then(|l| l.strip_suffix(']'))
        {
            inodes.push(inode.to_string());
        }
    }
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() > 9 && f[3] == "0A" && inodes.iter().any(|i| i == f[9]) {
            let port = f[1].split(':').nth(1)?;
            u16::from_str_radix(port, 16).ok()
        } else {
            None
        }
    })
}

impl Sink {
    /// smtp-sink on a free port of 127.0.0.1 with `extra` options (`-r rcpt`: every RCPT
    /// answered 4xx).
    pub fn start(extra: &[&str]) -> Sink {
        let bin = ["/usr/sbin", "/usr/bin", "/sbin"]
            .iter()
            .map(|d| std::path::Path::new(d).join("smtp-sink"))
            .find(|p| p.exists())
            .expect("smtp-sink not found: install Postfix (scripts/test.sh does)");
        let dir = tempfile::tempdir().expect("tempdir");
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
                .expect("chmod");
        }
        let out = std::fs::File::create(dir.path().join("counters")).expect("counters file");
        let mut cmd = std::process::Command::new(bin);
        if running_as_root() {
            cmd.args(["-u", "nobody"]);
        }
        cmd.arg("-c")
            .args(extra)
            .args(["127.0.0.1:0", "16"])
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(std::process::Stdio::inherit());
        let mut child = cmd.spawn().expect("start smtp-sink");
        let deadline = Instant::now() + Duration::from_secs(20);
        let port = loop {
            if let Some(port) = listening_port(child.id()) {
                break port;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("smtp-sink exited: {status}");
            }
            assert!(Instant::now() < deadline, "smtp-sink never listened");
            std::thread::sleep(Duration::from_millis(20));
        };
        Sink { child, port, dir }
    }

    /// The last counters smtp-sink printed: `sess`, `quit`, `mesg` (0 before any).
    pub fn counters(&self) -> (u64, u64, u64) {
        let text = std::fs::read_to_string(self.dir.path().join("counters")).unwrap_or_default();
        let last = text
            .split(['\r', '\n'])
            .map(str::trim)
            .rfind(|l| l.starts_with("sess="))
            .unwrap_or("");
        let field = |name: &str| {
            last.split_whitespace()
                .find_map(|f| f.strip_prefix(name))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("sess="), field("quit="), field("mesg="))
    }

    /// Sessions so far.
    pub fn sessions(&self) -> u64 {
        self.counters().0
    }

    /// Messages received so far.
    pub fn messages(&self) -> u64 {
        self.counters().2
    }
}
