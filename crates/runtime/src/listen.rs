//! Listeners that components declare: checked for clashes, bound by the runtime (before
//! it gives up root), handed to the component by name.

use serde::Serialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// The transport of a listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// A TCP listener (HTTP, SMTP, syslog over TCP or TLS).
    Tcp,
    /// A UDP socket (syslog, DNS).
    Udp,
}

impl Transport {
    /// Returns `tcp` or `udp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }
}

/// A listener a component needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Resource {
    /// The component's own name for it, e.g. `smtp` or `syslog_udp`.
    pub name: String,
    /// Address and port.
    pub addr: SocketAddr,
    /// TCP or UDP.
    pub transport: Transport,
}

impl Resource {
    /// A TCP listener.
    pub fn tcp(name: impl Into<String>, addr: SocketAddr) -> Self {
        Self { name: name.into(), addr, transport: Transport::Tcp }
    }

    /// A UDP socket.
    pub fn udp(name: impl Into<String>, addr: SocketAddr) -> Self {
        Self { name: name.into(), addr, transport: Transport::Udp }
    }

    /// Whether two listeners would take the same port: same transport and port, and
    /// the same address or either of them on every address.
    pub fn clashes_with(&self, other: &Resource) -> bool {
        self.transport == other.transport
            && self.addr.port() == other.addr.port()
            && self.addr.port() != 0
            && (self.addr.ip() == other.addr.ip() || self.addr.ip().is_unspecified() || other.addr.ip().is_unspecified())
    }
}

/// Returns a line for each pair of listeners (owner, listener) that clash.
pub fn clashes(all: &[(String, Resource)]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, (owner_a, a)) in all.iter().enumerate() {
        for (owner_b, b) in &all[i + 1..] {
            if a.clashes_with(b) {
                out.push(format!(
                    "{owner_a} '{}' ({} {}) and {owner_b} '{}' ({} {}) take the same port / 同じポートを二つの待ち受けが使います",
                    a.name,
                    a.transport.as_str(),
                    a.addr,
                    b.name,
                    b.transport.as_str(),
                    b.addr
                ));
            }
        }
    }
    out
}

enum Socket {
    Tcp(std::net::TcpListener),
    Udp(std::net::UdpSocket),
}

/// Sockets bound by the runtime, by (component, listener name).
#[derive(Clone, Default)]
pub struct Bound {
    sockets: Arc<HashMap<(String, String), Socket>>,
}

/// Pending connections the kernel keeps per TCP listener: enough for bursts on a hot
/// path (std's default is 128).
const BACKLOG: u32 = 1024;

impl Bound {
    /// Binds every resource. Must run inside the tokio runtime.
    pub fn bind(resources: &[(String, Resource)]) -> Result<Bound, (Resource, std::io::Error)> {
        let mut sockets = HashMap::new();
        for (owner, r) in resources {
            let socket = match r.transport {
                Transport::Tcp => {
                    let s = if r.addr.is_ipv4() { tokio::net::TcpSocket::new_v4() } else { tokio::net::TcpSocket::new_v6() }.map_err(|e| (r.clone(), e))?;
                    s.set_reuseaddr(true).map_err(|e| (r.clone(), e))?;
                    s.bind(r.addr).map_err(|e| (r.clone(), e))?;
                    let l = s.listen(BACKLOG).map_err(|e| (r.clone(), e))?;
                    Socket::Tcp(l.into_std().map_err(|e| (r.clone(), e))?)
                }
                Transport::Udp => {
                    let s = std::net::UdpSocket::bind(r.addr).map_err(|e| (r.clone(), e))?;
                    s.set_nonblocking(true).map_err(|e| (r.clone(), e))?;
                    Socket::Udp(s)
                }
            };
            sockets.insert((owner.clone(), r.name.clone()), socket);
        }
        Ok(Bound { sockets: Arc::new(sockets) })
    }

    /// Returns a new handle on the TCP listener `name` of `component`.
    pub fn tcp(&self, component: &str, name: &str) -> std::io::Result<tokio::net::TcpListener> {
        match self.sockets.get(&(component.to_string(), name.to_string())) {
            Some(Socket::Tcp(l)) => {
                let l = l.try_clone()?;
                l.set_nonblocking(true)?;
                tokio::net::TcpListener::from_std(l)
            }
            _ => Err(std::io::Error::new(std::io::ErrorKind::NotFound, format!("no TCP listener '{name}' was declared by '{component}'"))),
        }
    }

    /// Returns a new handle on the UDP socket `name` of `component`.
    pub fn udp(&self, component: &str, name: &str) -> std::io::Result<tokio::net::UdpSocket> {
        match self.sockets.get(&(component.to_string(), name.to_string())) {
            Some(Socket::Udp(s)) => tokio::net::UdpSocket::from_std(s.try_clone()?),
            _ => Err(std::io::Error::new(std::io::ErrorKind::NotFound, format!("no UDP socket '{name}' was declared by '{component}'"))),
        }
    }

    /// Returns the local address of a bound listener (tests bind port 0).
    pub fn local_addr(&self, component: &str, name: &str) -> Option<SocketAddr> {
        match self.sockets.get(&(component.to_string(), name.to_string()))? {
            Socket::Tcp(l) => l.local_addr().ok(),
            Socket::Udp(s) => s.local_addr().ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clashes_are_found_across_wildcards_and_not_across_transports() {
        let a = ("mail".to_string(), Resource::tcp("smtp", "0.0.0.0:25".parse().unwrap()));
        let b = ("edge".to_string(), Resource::tcp("http", "192.0.2.1:25".parse().unwrap()));
        let c = ("soc".to_string(), Resource::udp("syslog", "0.0.0.0:25".parse().unwrap()));
        let d = ("soc".to_string(), Resource::tcp("syslog", "192.0.2.2:514".parse().unwrap()));
        let e = ("edge".to_string(), Resource::tcp("https", "192.0.2.3:514".parse().unwrap()));
        let found = clashes(&[a, b, c, d, e]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("mail 'smtp' (tcp 0.0.0.0:25) and edge 'http'"), "{found:?}");
    }

    #[tokio::test]
    async fn a_bound_listener_is_handed_out_again_after_a_restart() {
        let bound = Bound::bind(&[("echo".into(), Resource::tcp("echo", "127.0.0.1:0".parse().unwrap()))]).unwrap();
        let addr = bound.local_addr("echo", "echo").unwrap();
        for _ in 0..2 {
            let l = bound.tcp("echo", "echo").unwrap();
            let client = tokio::net::TcpStream::connect(addr);
            let (accepted, connected) = tokio::join!(l.accept(), client);
            accepted.unwrap();
            connected.unwrap();
            drop(l);
        }
        assert!(bound.tcp("echo", "other").is_err());
        assert!(bound.udp("echo", "echo").is_err());
    }
}
