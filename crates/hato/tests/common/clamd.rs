//! A real ClamAV daemon for the tests: Debian's `clamd` (package `clamav-daemon`), run in the
//! foreground as the test user, with everything in a temporary directory: its configuration, a
//! signature directory holding only the files the test gives (nothing is downloaded: no
//! freshclam, no official database), a Unix socket, a TCP port on 127.0.0.1, its log and its
//! PID file. Killed by its PID and the directory removed on drop.
//!
//! `TestClamd::start` returns `None` (and says why on stderr) only when `/usr/sbin/clamd` is not
//! installed and `HATO_REQUIRE_CLAMD` is not set; `scripts/test.sh` installs it and sets the
//! variable, so the suite never skips silently.

use hato_protection::malware::{Clamd, ClamdAddress};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's clamd.
pub const CLAMD: &str = "/usr/sbin/clamd";
/// Set (to anything but empty or `0`): a missing clamd, or missing `clamav-testfiles`, is a test
/// failure rather than a skip.
pub const REQUIRE_ENV: &str = "HATO_REQUIRE_CLAMD";

/// How long clamd may take to load its database and answer `PING`. With a few signatures it
/// answers within a fraction of a second; the machine may be busy with other builds.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// clamd appends this to the name of every signature from a database that is not signed by
/// ClamAV (all of the tests' local `.hdb`/`.ndb` files): `Test.Sig` is reported as
/// `Test.Sig.UNOFFICIAL` (observed with clamd 1.4).
pub const UNOFFICIAL_SUFFIX: &str = ".UNOFFICIAL";

/// Whether `HATO_REQUIRE_CLAMD` asks for clamd (and the test files) to be there.
pub fn required() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// A signature name as clamd reports it, without the suffix it adds to local signatures, so
/// it can be compared with the built-in engine's name for the same signature line.
pub fn signature_name(clamd_name: &str) -> &str {
    clamd_name
        .strip_suffix(UNOFFICIAL_SUFFIX)
        .unwrap_or(clamd_name)
}

pub struct TestClamd {
    dir: tempfile::TempDir,
    child: Option<Child>,
    pid: u32,
    tcp: SocketAddr,
    socket: PathBuf,
}

impl TestClamd {
    /// Starts clamd with a database directory holding exactly `signatures` (file name, e.g.
    /// `test.hdb`, and contents). clamd refuses to start without any signature, so at least one
    /// file must be given. Waits (with a deadline) until it answers `PING` on both sockets.
    /// Panics, with clamd's log, if it does not start.
    pub fn start(signatures: &[(&str, &[u8])]) -> Option<TestClamd> {
        Self::start_binary(Path::new(CLAMD), required(), signatures)
    }

    /// [`start`](Self::start) with another binary and the `HATO_REQUIRE_CLAMD` setting given
    /// (the harness's own tests use it).
    pub fn start_binary(
        binary: &Path,
        required: bool,
        signatures: &[(&str, &[u8])],
    ) -> Option<TestClamd> {
        let binary_name = binary.display();
        if !binary.exists() {
            assert!(
                !required,
                "{binary_name} is missing and {REQUIRE_ENV} is set: install Debian's \
                 clamav-daemon (scripts/test.sh does)"
            );
            eprintln!(
                "skipping: {binary_name} is missing (install clamav-daemon; set {REQUIRE_ENV}=1 \
                 to make this a failure)"
            );
            return None;
        }
        assert!(
            !signatures.is_empty(),
            "clamd does not start with an empty database directory: give it a signature file"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("db");
        std::fs::create_dir(&db).expect("create the database directory");
        for (name, contents) in signatures {
            assert!(
                !name.is_empty() && !name.contains('/') && !name.starts_with('.'),
                "a signature file name, not a path: {name:?}"
            );
            std::fs::write(db.join(name), contents).expect("write a signature file");
        }
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).expect("create clamd's temporary directory");
        let socket = dir.path().join("clamd.sock");

        // The TCP port is found free by binding port 0 and letting it go before clamd binds
        // it: another process may take it in between, so a clamd that could not bind is
        // started again on another port.
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free loopback port")
                .port();
            let tcp: SocketAddr = ([127, 0, 0, 1], port).into();
            let config = dir.path().join("clamd.conf");
            // clamd.conf(5). No `User`: it runs as whoever runs the tests. `Foreground`: it is
            // our child, and its PID is the one we kill.
            let text = format!(
                "Foreground yes\n\
                 DatabaseDirectory {db}\n\
                 TemporaryDirectory {tmp}\n\
                 LocalSocket {socket}\n\
                 TCPSocket {port}\n\
                 TCPAddr 127.0.0.1\n\
                 StreamMaxLength 64M\n\
                 LogFile {log}\n\
                 LogTime yes\n\
                 PidFile {pid}\n",
                db = db.display(),
                tmp = tmp.display(),
                socket = socket.display(),
                log = dir.path().join("clamd.log").display(),
                pid = dir.path().join("clamd.pid").display(),
            );
            std::fs::write(&config, text).expect("write clamd.conf");
            let _ = std::fs::remove_file(dir.path().join("clamd.log"));
            let out = std::fs::File::create(dir.path().join("clamd.out")).expect("clamd.out");
            let err = out.try_clone().expect("clamd.out");
            let mut child = Command::new(binary)
                .arg(format!("--config-file={}", config.display()))
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {binary_name}: {e}"));
            match wait_ready(&mut child, dir.path(), tcp, &socket) {
                Ok(()) => {
                    return Some(TestClamd {
                        pid: child.id(),
                        child: Some(child),
                        dir,
                        tcp,
                        socket,
                    });
                }
                Err(not_ready) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_log = read_log(dir.path());
                    if let NotReady::Failed(why) = not_ready {
                        panic!("clamd did not start: {why}\n{last_log}");
                    }
                    let _ = std::fs::remove_file(&socket);
                }
            }
        }
        panic!("clamd could not bind a loopback port in 5 attempts\n{last_log}");
    }

    /// Its TCP address, as `hato_protection` takes it.
    pub fn addr(&self) -> ClamdAddress {
        ClamdAddress::Tcp(self.tcp.to_string())
    }

    /// Its Unix socket, as `hato_protection` takes it.
    pub fn unix_addr(&self) -> ClamdAddress {
        ClamdAddress::Unix(self.socket.clone())
    }

    pub fn tcp(&self) -> SocketAddr {
        self.tcp
    }

    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    /// The database directory (holding only the files given to `start`).
    pub fn db_dir(&self) -> PathBuf {
        self.dir.path().join("db")
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// A client for its TCP socket, with a timeout short enough for a test.
    pub fn client(&self) -> Clamd {
        let mut c = Clamd::new(self.addr());
        c.timeout = Duration::from_secs(20);
        c
    }

    /// A client for its Unix socket.
    pub fn unix_client(&self) -> Clamd {
        let mut c = Clamd::new(self.unix_addr());
        c.timeout = Duration::from_secs(20);
        c
    }

    /// Its log file and what it wrote to stdout/stderr, for failure messages.
    pub fn log(&self) -> String {
        read_log(self.dir.path())
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Kills clamd (SIGKILL, by its PID: the child we started) and reaps it. Once this returns
    /// nothing listens on its socket or port any more. Idempotent.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for TestClamd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// clamd's log file and what it wrote to stdout/stderr.
fn read_log(dir: &Path) -> String {
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| format!("({name}: {e})\n"))
    };
    format!(
        "--- clamd.log ---\n{}--- clamd stdout/stderr ---\n{}",
        read("clamd.log"),
        read("clamd.out")
    )
}

enum NotReady {
    /// Another process took the TCP port between our probe and clamd's bind (clamd then goes
    /// on with its Unix socket alone): start again on another port.
    LostPort,
    Failed(String),
}

/// Polls `PING` until clamd answers on both sockets, exits, or the deadline passes. clamd binds
/// its TCP socket before its Unix socket, so once the Unix socket answers its log says whether
/// the TCP bind worked.
fn wait_ready(
    child: &mut Child,
    dir: &Path,
    tcp: SocketAddr,
    socket: &Path,
) -> Result<(), NotReady> {
    let deadline = Instant::now() + START_DEADLINE;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(NotReady::Failed(format!("clamd exited ({status})")));
        }
        let over_unix = ping(|| UnixStream::connect(socket).map(Conn::Unix));
        let mut over_tcp = Err("not tried before the Unix socket answers".to_owned());
        if over_unix.is_ok() {
            let log = std::fs::read_to_string(dir.join("clamd.log")).unwrap_or_default();
            if log.contains("TCP: Cannot bind") {
                return Err(NotReady::LostPort);
            }
            over_tcp =
                ping(|| TcpStream::connect_timeout(&tcp, Duration::from_secs(1)).map(Conn::Tcp));
            if over_tcp.is_ok() {
                return Ok(());
            }
        }
        if Instant::now() >= deadline {
            return Err(NotReady::Failed(format!(
                "no PONG within {} s (Unix: {over_unix:?}; TCP: {over_tcp:?})",
                START_DEADLINE.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

enum Conn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// clamd(8) `zPING`: the answer is `PONG` and a NUL.
fn ping(connect: impl Fn() -> std::io::Result<Conn>) -> Result<(), String> {
    let exchange = |s: &mut dyn ReadWrite| -> std::io::Result<Vec<u8>> {
        s.write_all(b"zPING\0")?;
        let mut reply = Vec::new();
        let mut buf = [0u8; 64];
        while !reply.contains(&0) && reply.len() < 64 {
            let n = s.read(&mut buf)?;
            if n == 0 {
                break;
            }
            reply.extend_from_slice(&buf[..n]);
        }
        Ok(reply)
    };
    let reply = match connect().map_err(|e| e.to_string())? {
        Conn::Tcp(mut s) => {
            s.set_read_timeout(Some(Duration::from_secs(2)))
                .map_err(|e| e.to_string())?;
            exchange(&mut s)
        }
        Conn::Unix(mut s) => {
            s.set_read_timeout(Some(Duration::from_secs(2)))
                .map_err(|e| e.to_string())?;
            exchange(&mut s)
        }
    }
    .map_err(|e| e.to_string())?;
    if reply.starts_with(b"PONG") {
        Ok(())
    } else {
        Err(format!("answered {:?}", String::from_utf8_lossy(&reply)))
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}
