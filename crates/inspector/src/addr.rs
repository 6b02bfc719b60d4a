//! Inspector addresses as users write them, checked to be loopback.

use crate::error::{Error, Result};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Where an inspector is: a websocket URL to connect to directly, or the
/// HTTP address whose `/json/list` names the websocket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    WebSocket { url: String, addr: SocketAddr },
    Http(SocketAddr),
}

/// Parse `ws://127.0.0.1:9229/<id>`, `http://127.0.0.1:9229`,
/// `127.0.0.1:9229`, `localhost:9229`, `[::1]:9229` or a bare port `9229`.
/// Anything that is not on the loopback interface is refused; host names
/// other than `localhost` are not resolved.
pub fn parse_endpoint(s: &str) -> Result<Endpoint> {
    let bad = |why: &str| Error::BadAddress { addr: s.to_string(), why: why.to_string() };
    let t = s.trim();
    if t.is_empty() {
        return Err(bad("empty"));
    }
    if let Some(rest) = t.strip_prefix("ws://") {
        let authority = rest.split('/').next().unwrap_or("");
        let addr = host_port(authority, s)?;
        return Ok(Endpoint::WebSocket { url: t.to_string(), addr });
    }
    if t.starts_with("wss://") || t.starts_with("https://") {
        return Err(bad("TLS is not supported; Node's inspector speaks plain ws:// on loopback"));
    }
    let rest = t.strip_prefix("http://").unwrap_or(t);
    let authority = rest.split('/').next().unwrap_or("");
    if !authority.is_empty() && authority.bytes().all(|b| b.is_ascii_digit()) {
        let port: u16 = authority.parse().map_err(|_| bad("port out of range"))?;
        return Ok(Endpoint::Http(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)));
    }
    Ok(Endpoint::Http(host_port(authority, s)?))
}

/// `host:port` with a loopback host.
fn host_port(authority: &str, original: &str) -> Result<SocketAddr> {
    let bad = |why: &str| Error::BadAddress { addr: original.to_string(), why: why.to_string() };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, p) = v6.split_once("]:").ok_or_else(|| bad("expected [IPv6]:PORT"))?;
        (h, p)
    } else {
        authority.rsplit_once(':').ok_or_else(|| bad("expected HOST:PORT"))?
    };
    let port: u16 = port.parse().map_err(|_| bad("the port is not a number from 0 to 65535"))?;
    let ip: IpAddr = if host.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        host.parse().map_err(|_| Error::NotLoopback { addr: original.to_string() })?
    };
    if !ip.is_loopback() {
        return Err(Error::NotLoopback { addr: original.to_string() });
    }
    Ok(SocketAddr::new(ip, port))
}

/// The loopback socket address of a websocket URL (`ws://HOST:PORT/...`).
pub fn ws_url_addr(url: &str) -> Result<SocketAddr> {
    match parse_endpoint(url)? {
        Endpoint::WebSocket { addr, .. } => Ok(addr),
        Endpoint::Http(_) => Err(Error::BadAddress { addr: url.to_string(), why: "not a ws:// URL".into() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let lo = |p| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p);
        assert_eq!(parse_endpoint("9229").unwrap(), Endpoint::Http(lo(9229)));
        assert_eq!(parse_endpoint("127.0.0.1:9230").unwrap(), Endpoint::Http(lo(9230)));
        assert_eq!(parse_endpoint("localhost:9230").unwrap(), Endpoint::Http(lo(9230)));
        assert_eq!(parse_endpoint("http://127.0.0.1:9230/json/list").unwrap(), Endpoint::Http(lo(9230)));
        assert_eq!(parse_endpoint("[::1]:9229").unwrap(), Endpoint::Http("[::1]:9229".parse().unwrap()));
        assert_eq!(parse_endpoint("127.0.0.2:1").unwrap(), Endpoint::Http("127.0.0.2:1".parse().unwrap()));
        let ws = "ws://127.0.0.1:40000/0f2c-11";
        assert_eq!(parse_endpoint(ws).unwrap(), Endpoint::WebSocket { url: ws.into(), addr: lo(40000) });
    }

    #[test]
    fn refusals() {
        for s in ["10.0.0.1:9229", "example.com:9229", "ws://192.168.1.2:9229/x", "0.0.0.0:9229"] {
            let e = parse_endpoint(s).unwrap_err();
            assert!(matches!(e, Error::NotLoopback { .. }), "{s}: {e}");
            assert!(e.to_string().contains(s), "{e}");
        }
        for s in ["", "127.0.0.1", "127.0.0.1:http", "127.0.0.1:70000", "wss://127.0.0.1:1/x", "99999"] {
            assert!(matches!(parse_endpoint(s).unwrap_err(), Error::BadAddress { .. }), "{s}");
        }
    }
}
