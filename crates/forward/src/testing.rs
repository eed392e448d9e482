//! A real rsyslog for tests (Debian's `rsyslog` and `rsyslog-relp`), on loopback,
//! writing every message it receives to a file; killed on drop.

use std::path::Path;
use std::time::{Duration, Instant};

/// A real rsyslog (Debian's `rsyslog` and `rsyslog-relp`) taking TCP and RELP on
/// loopback and writing each message as received to a file.
pub struct Rsyslog {
    child: Option<std::process::Child>,
    dir: std::path::PathBuf,
    /// Its TCP port (RFC 6587).
    pub tcp: u16,
    /// Its RELP port.
    pub relp: u16,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Rsyslog {
    /// Starts one in `dir`. None when rsyslog is not installed outside CI; under CI
    /// that panics, as `scripts/test` installs it.
    pub fn start(dir: &Path) -> Option<Rsyslog> {
        let relp = std::fs::read_dir("/usr/lib").into_iter().flatten().flatten().any(|d| d.path().join("rsyslog/imrelp.so").exists());
        if !Path::new("/usr/sbin/rsyslogd").exists() || !relp {
            assert!(std::env::var_os("CI").is_none(), "CI must run the rsyslog tests: scripts/test installs rsyslog and rsyslog-relp");
            eprintln!("skipping: rsyslog / rsyslog-relp are not installed (apt-get install rsyslog rsyslog-relp)");
            return None;
        }
        let mut r = Rsyslog { child: None, dir: dir.to_path_buf(), tcp: free_port(), relp: free_port() };
        r.run();
        Some(r)
    }

    /// Starts it (again, after [`Rsyslog::stop`]) on the same ports and file.
    pub fn run(&mut self) {
        let d = self.dir.display();
        let conf = format!(
            "global(workDirectory=\"{d}\")\nmodule(load=\"imtcp\")\nmodule(load=\"imrelp\")\n\
             template(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\n\
             ruleset(name=\"out\") {{ action(type=\"omfile\" file=\"{d}/out.log\" template=\"raw\" flushOnTXEnd=\"on\") }}\n\
             input(type=\"imtcp\" port=\"{}\" ruleset=\"out\")\ninput(type=\"imrelp\" port=\"{}\" ruleset=\"out\")\n",
            self.tcp, self.relp
        );
        std::fs::write(self.dir.join("rsyslog.conf"), conf).unwrap();
        let child = std::process::Command::new("/usr/sbin/rsyslogd")
            .args(["-n", "-f"])
            .arg(self.dir.join("rsyslog.conf"))
            .arg("-i")
            .arg(self.dir.join("rsyslog.pid"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("cannot start rsyslogd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.relp)).is_err() || std::net::TcpStream::connect(("127.0.0.1", self.tcp)).is_err() {
            assert!(Instant::now() < deadline, "rsyslogd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops it the way a service manager does (SIGTERM), and waits.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = std::process::Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
            let _ = c.wait();
        }
    }

    /// The messages it wrote, one per line.
    pub fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("out.log")).unwrap_or_default().lines().map(str::to_string).collect()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
