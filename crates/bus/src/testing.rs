//! A NATS server with JetStream for tests (Debian's `nats-server`), on loopback with
//! its store in a folder of the caller's; killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `nats-server -js`.
pub struct NatsServer {
    child: Option<Child>,
    /// Its client port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
}

impl NatsServer {
    /// Starts one with its JetStream store in `dir`. None when `nats-server` is not
    /// installed outside CI (the caller skips); under CI (`CI` set) that panics, as
    /// `scripts/test` installs it.
    pub fn start(dir: &Path) -> Option<NatsServer> {
        if Command::new("nats-server").arg("--version").output().is_err() {
            assert!(std::env::var_os("CI").is_none(), "CI must run the JetStream tests: scripts/test installs nats-server");
            eprintln!("skipping: nats-server is not installed (apt-get install nats-server)");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let mut nats = NatsServer { child: None, port, dir: dir.to_path_buf() };
        nats.run();
        Some(nats)
    }

    /// Starts it again (after [`NatsServer::kill`]) with the same store and port.
    pub fn run(&mut self) {
        let child = Command::new("nats-server")
            .args(["-js", "-sd", &self.dir.to_string_lossy(), "-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = child else { panic!("cannot start nats-server") };
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills it (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}
