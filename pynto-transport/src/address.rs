//! Addresses (`host:port`, `tcp://host:port`, `unix:///path`, `tls://host:port`), and
//! connecting to or listening on one.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::tcp::{TcpAcceptor, TcpTransport};
use crate::tls::{self, TlsAcceptor, TlsClient, TlsServer};
use crate::unix::{UnixAcceptor, UnixTransport};
use crate::{Transport, TransportError};

/// Where a peer listens.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Address {
    /// Plain TCP: `host:port` or `tcp://host:port`.
    Tcp {
        /// A DNS name or IP address (IPv6 without brackets).
        host: String,
        /// The port.
        port: u16,
    },
    /// A Unix socket path: `unix:///absolute/path` or `unix://relative/path`.
    Unix(PathBuf),
    /// TLS over TCP: `tls://host:port`. The host is also the name the server's certificate
    /// must carry.
    Tls {
        /// A DNS name or IP address (IPv6 without brackets).
        host: String,
        /// The port.
        port: u16,
    },
}

impl Address {
    /// Parse an address; the same as `s.parse()`.
    pub fn parse(s: &str) -> Result<Address, TransportError> {
        s.parse()
    }
}

fn bad(input: &str, why: impl fmt::Display) -> TransportError {
    TransportError::Address(format!("{input:?}: {why}"))
}

/// Split `host:port` (`[v6]:port` for IPv6 literals).
fn host_port(input: &str, rest: &str) -> Result<(String, u16), TransportError> {
    let (host, port) = if let Some(after) = rest.strip_prefix('[') {
        let (host, tail) = after
            .split_once(']')
            .ok_or_else(|| bad(input, "unclosed '[' in IPv6 address"))?;
        let port = tail
            .strip_prefix(':')
            .ok_or_else(|| bad(input, "expected ':port' after ']'"))?;
        (host, port)
    } else {
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| bad(input, "expected host:port"))?;
        if host.contains(':') {
            return Err(bad(input, "IPv6 addresses must be written as [addr]:port"));
        }
        (host, port)
    };
    if host.is_empty() {
        return Err(bad(input, "missing host"));
    }
    if host.contains('/') {
        return Err(bad(input, "unexpected '/' in host"));
    }
    let port = port.parse::<u16>().map_err(|_| {
        bad(
            input,
            format!("port {port:?} is not a number from 0 to 65535"),
        )
    })?;
    Ok((host.to_string(), port))
}

impl FromStr for Address {
    type Err = TransportError;

    fn from_str(s: &str) -> Result<Address, TransportError> {
        let input = s.trim();
        if input.is_empty() {
            return Err(TransportError::Address("empty address".to_string()));
        }
        match input.split_once("://") {
            None => {
                let (host, port) = host_port(input, input)?;
                Ok(Address::Tcp { host, port })
            }
            Some((scheme, rest)) => match scheme.to_ascii_lowercase().as_str() {
                "tcp" => {
                    let (host, port) = host_port(input, rest)?;
                    Ok(Address::Tcp { host, port })
                }
                "tls" => {
                    let (host, port) = host_port(input, rest)?;
                    Ok(Address::Tls { host, port })
                }
                "unix" => {
                    if rest.is_empty() {
                        return Err(bad(input, "missing socket path"));
                    }
                    Ok(Address::Unix(PathBuf::from(rest)))
                }
                other => Err(bad(
                    input,
                    format!("unknown scheme {other:?} (expected tcp, tls or unix)"),
                )),
            },
        }
    }
}

fn fmt_host(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp { host, port } => write!(f, "tcp://{}:{port}", fmt_host(host)),
            Address::Tls { host, port } => write!(f, "tls://{}:{port}", fmt_host(host)),
            Address::Unix(path) => write!(f, "unix://{}", path.display()),
        }
    }
}

/// Connect to `addr`. A `tls://` address needs `tls`, whose CA the server's certificate must
/// chain to, for the address's host name; other addresses ignore it.
pub fn connect(
    addr: &Address,
    tls: Option<&TlsClient>,
) -> Result<Box<dyn Transport>, TransportError> {
    connect_timeout(addr, tls, None)
}

/// [`connect`], giving up on the TCP connection after `timeout` (a full accept queue
/// otherwise leaves a connect waiting for the system's timeout, minutes).
pub fn connect_timeout(
    addr: &Address,
    tls: Option<&TlsClient>,
    timeout: Option<Duration>,
) -> Result<Box<dyn Transport>, TransportError> {
    match addr {
        Address::Tcp { host, port } => Ok(Box::new(TcpTransport::connect_timeout(
            host, *port, timeout,
        )?)),
        Address::Unix(path) => Ok(Box::new(UnixTransport::connect(path)?)),
        Address::Tls { host, port } => {
            let settings = tls.ok_or_else(|| {
                TransportError::Tls(format!("{addr} needs TLS client settings (a CA to trust)"))
            })?;
            let config = settings.config()?;
            let stream = crate::tcp::dial(host, *port, timeout)?;
            Ok(Box::new(tls::client_handshake(stream, host, config)?))
        }
    }
}

/// A connection accepted by a [`Listener`], not yet established.
pub enum Incoming {
    /// Nothing left to do (TCP, Unix).
    Ready(Box<dyn Transport>),
    /// The TLS handshake is still to be done.
    Tls {
        /// The accepted socket.
        stream: std::net::TcpStream,
        /// Where it comes from.
        from: std::net::SocketAddr,
        /// The server's TLS configuration.
        config: std::sync::Arc<crate::rustls::ServerConfig>,
    },
}

impl Incoming {
    /// Where the connection comes from.
    pub fn peer(&self) -> String {
        match self {
            Incoming::Ready(t) => t.peer(),
            Incoming::Tls { from, .. } => format!("tls://{from}"),
        }
    }

    /// Finish establishing the transport (the TLS handshake), giving up at `deadline`.
    pub fn establish(
        self,
        deadline: std::time::Instant,
    ) -> Result<Box<dyn Transport>, TransportError> {
        match self {
            Incoming::Ready(t) => Ok(t),
            Incoming::Tls { stream, config, .. } => Ok(Box::new(tls::server_handshake_until(
                stream, config, deadline,
            )?)),
        }
    }
}

impl fmt::Debug for Incoming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Incoming({})", self.peer())
    }
}

/// Listens on an [`Address`].
#[derive(Debug)]
pub enum Listener {
    /// Plain TCP.
    Tcp(TcpAcceptor),
    /// A Unix socket path (removed when the listener is dropped).
    Unix(UnixAcceptor),
    /// TLS over TCP.
    Tls(TlsAcceptor),
}

impl Listener {
    /// Listen on `addr` (port 0 picks a free port). A `tls://` address needs `tls`; other
    /// addresses ignore it.
    pub fn bind(addr: &Address, tls: Option<&TlsServer>) -> Result<Listener, TransportError> {
        match addr {
            Address::Tcp { host, port } => {
                Ok(Listener::Tcp(TcpAcceptor::bind((host.as_str(), *port))?))
            }
            Address::Unix(path) => Ok(Listener::Unix(UnixAcceptor::bind(path)?)),
            Address::Tls { host, port } => {
                let settings = tls.ok_or_else(|| {
                    TransportError::Tls(format!(
                        "{addr} needs TLS server settings (certificate and key)"
                    ))
                })?;
                Ok(Listener::Tls(TlsAcceptor::bind(
                    (host.as_str(), *port),
                    settings.config()?,
                )?))
            }
        }
    }

    /// Wait for the next connection and establish it (for TLS, the handshake is done here,
    /// within [`tls::HANDSHAKE_TIMEOUT`]). A failed handshake ([`TransportError::Tls`])
    /// concerns that connection only: log it and accept again. Accept loops that must not
    /// wait on any one peer use [`accept_incoming`](Self::accept_incoming) instead.
    pub fn accept(&self) -> Result<Box<dyn Transport>, TransportError> {
        self.accept_incoming()?
            .establish(std::time::Instant::now() + tls::HANDSHAKE_TIMEOUT)
    }

    /// Wait for the next connection without talking to the peer: the caller finishes it with
    /// [`Incoming::establish`] on a thread of its choosing, so a slow or silent peer never
    /// holds up the accept loop.
    pub fn accept_incoming(&self) -> Result<Incoming, TransportError> {
        match self {
            Listener::Tcp(l) => Ok(Incoming::Ready(l.accept()?)),
            Listener::Unix(l) => Ok(Incoming::Ready(l.accept()?)),
            Listener::Tls(l) => {
                let (stream, from) = l.accept_tcp()?;
                Ok(Incoming::Tls {
                    stream,
                    from,
                    config: l.config(),
                })
            }
        }
    }

    /// The address listened on: `tcp://127.0.0.1:PORT`, `unix:///path` or
    /// `tls://127.0.0.1:PORT`.
    pub fn local_addr(&self) -> String {
        match self {
            Listener::Tcp(l) => l.local_addr(),
            Listener::Unix(l) => l.local_addr(),
            Listener::Tls(l) => l.local_addr(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16) -> Address {
        Address::Tcp {
            host: host.to_string(),
            port,
        }
    }

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(
            Address::parse("localhost:5000").unwrap(),
            tcp("localhost", 5000)
        );
        assert_eq!(
            Address::parse("tcp://10.0.0.1:1").unwrap(),
            tcp("10.0.0.1", 1)
        );
        assert_eq!(Address::parse("tcp://[::1]:80").unwrap(), tcp("::1", 80));
        assert_eq!(
            Address::parse("tls://example.com:443").unwrap(),
            Address::Tls {
                host: "example.com".to_string(),
                port: 443
            }
        );
        assert_eq!(
            Address::parse("unix:///tmp/p.sock").unwrap(),
            Address::Unix(PathBuf::from("/tmp/p.sock"))
        );
        for s in [
            "tcp://[::1]:80",
            "tls://h:1",
            "unix:///tmp/p.sock",
            "tcp://h:0",
        ] {
            assert_eq!(Address::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn rejects_bad_addresses_clearly() {
        for (s, needle) in [
            ("", "empty"),
            ("localhost", "host:port"),
            (":80", "missing host"),
            ("tcp://h:99999", "port"),
            ("tcp://h:x", "port"),
            ("ftp://h:1", "unknown scheme"),
            ("unix://", "missing socket path"),
            ("::1:80", "IPv6"),
            ("tcp://[::1:80", "unclosed"),
        ] {
            let e = Address::parse(s).unwrap_err();
            assert!(matches!(e, TransportError::Address(_)), "{s}");
            assert!(e.to_string().contains(needle), "{s}: {e}");
        }
    }
}
