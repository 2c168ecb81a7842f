//! Where a server is: [`HostPort`], the one parse of `host:port` (or `[v6]:port`), and
//! [`list_or_comma`], the deserializer of endpoint lists that accepts `["a:1", "b:2"]` or, as a
//! list arrives from an environment variable, `"a:1,b:2"` ([`comma_list`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

/// A `host:port` endpoint. The host is kept as written (a name, an IPv4 or an IPv6 address
/// without its brackets); the port is a number from 0 to 65535.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

/// Why a text is not `host:port`; the message quotes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPortError(String);

impl fmt::Display for HostPortError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HostPortError {}

impl FromStr for HostPort {
    type Err = HostPortError;

    fn from_str(text: &str) -> Result<HostPort, HostPortError> {
        let s = text.trim();
        let (host, port) = s.rsplit_once(':').ok_or_else(|| HostPortError(format!("{text:?} is not host:port")))?;
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        let port = port.parse().map_err(|_| HostPortError(format!("{text:?} has a bad port")))?;
        if host.is_empty() {
            return Err(HostPortError(format!("{text:?} has no host")));
        }
        Ok(HostPort { host: host.to_string(), port })
    }
}

impl HostPort {
    /// Parses `host:port` (or `[v6]:port`).
    pub fn parse(text: &str) -> Result<HostPort, HostPortError> {
        text.parse()
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Deserializes `["a:1", "b:2"]` or `"a:1,b:2"` into a list, each entry trimmed, empty ones
/// left out. For `#[serde(deserialize_with = "endpoints::list_or_comma")]`.
pub fn list_or_comma<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        List(Vec<String>),
        Text(String),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::List(l) => l.into_iter().map(|e| e.trim().to_string()).filter(|e| !e.is_empty()).collect(),
        Raw::Text(t) => comma_list(&t),
    })
}

/// Splits `"a:1, b:2"` (an endpoint list from an environment variable) into its entries, each
/// trimmed, empty ones left out.
pub fn comma_list(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|e| !e.is_empty()).map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_are_split_and_bad_ones_refused() {
        let hp = |s: &str| HostPort::parse(s).map(|h| (h.host, h.port));
        assert_eq!(hp("127.0.0.1:9999").unwrap(), ("127.0.0.1".to_string(), 9999));
        assert_eq!(hp(" db.example:5432 ").unwrap(), ("db.example".to_string(), 5432));
        assert_eq!(hp("[::1]:5432").unwrap(), ("::1".to_string(), 5432));
        assert_eq!(HostPort::parse("[::1]:5432").unwrap().to_string(), "[::1]:5432");
        assert_eq!(HostPort::parse("127.0.0.1:1").unwrap().to_string(), "127.0.0.1:1");
        assert!(hp("localhost").unwrap_err().to_string().contains("\"localhost\" is not host:port"));
        assert!(hp(":5432").unwrap_err().to_string().contains("no host"));
        assert!(hp("h:70000").unwrap_err().to_string().contains("bad port"));
        assert!(hp("h:").is_err());
    }

    #[derive(Deserialize)]
    struct S {
        #[serde(deserialize_with = "list_or_comma")]
        l: Vec<String>,
    }

    #[test]
    fn a_list_or_a_comma_separated_string() {
        let s: S = serde_json::from_str(r#"{"l":"a:1, b:2,,"}"#).unwrap();
        assert_eq!(s.l, ["a:1", "b:2"]);
        let s: S = serde_json::from_str(r#"{"l":[" a:1 ", ""]}"#).unwrap();
        assert_eq!(s.l, ["a:1"]);
        assert!(serde_json::from_str::<S>(r#"{"l":1}"#).is_err());
        assert_eq!(comma_list(" a:1 ,, b:2"), ["a:1", "b:2"]);
        assert!(comma_list(" ").is_empty());
    }
}
