//! Probe targets as blackbox_exporter takes them: an address or host name, `host:port`,
//! `[v6]:port`, an `http://` or `https://` URL (scheme, port, path and query), or a `sip:` or
//! `sips:` URI (user, port, `;transport=`). What the target implies is returned as settings
//! for the caller to apply; the target itself is never resolved here.

use std::net::{IpAddr, Ipv6Addr};

/// The scheme a target was written with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
    Sip,
    Sips,
}

impl Scheme {
    /// The service-check kind that speaks this scheme.
    pub fn kind(self) -> &'static str {
        match self {
            Scheme::Http | Scheme::Https => "http",
            Scheme::Sip | Scheme::Sips => "sip",
        }
    }

    /// The port used when the target names none.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
            Scheme::Sip => 5060,
            Scheme::Sips => 5061,
        }
    }
}

/// A parsed target.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Target {
    /// An IP literal (without brackets) or a host name.
    pub host: String,
    pub port: Option<u16>,
    pub scheme: Option<Scheme>,
    /// HTTP: path and query (origin form), when the URL has more than the authority.
    pub path: Option<String>,
    /// SIP: the URI's user part.
    pub user: Option<String>,
    /// SIP: the URI's `transport` parameter, lower-cased.
    pub transport: Option<String>,
}

impl Target {
    /// Parses a target; `Err` is a message for the user.
    pub fn parse(text: &str) -> Result<Target, String> {
        let text = text.trim();
        let lower = text.to_ascii_lowercase();
        if let Some(i) = lower.find("://") {
            let scheme = match &lower[..i] {
                "http" => Scheme::Http,
                "https" => Scheme::Https,
                other => {
                    return Err(format!(
                        "{text:?}: scheme {other:?} is not supported; use http:// or https://"
                    ));
                }
            };
            return url(text, &text[i + 3..], scheme);
        }
        for (prefix, scheme) in [("sips:", Scheme::Sips), ("sip:", Scheme::Sip)] {
            if lower.starts_with(prefix) {
                return sip_uri(text, &text[prefix.len()..], scheme);
            }
        }
        let (host, port) = host_port(text)?;
        Ok(Target {
            host,
            port,
            ..Target::default()
        })
    }

    /// The host as an IP address, when it is a literal.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }
}

/// `http(s)://authority[/path][?query][#fragment]`; the fragment is never sent.
fn url(text: &str, rest: &str, scheme: Scheme) -> Result<Target, String> {
    let rest = rest.split('#').next().unwrap_or_default();
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.contains('@') {
        return Err(format!(
            "{text:?}: credentials in the URL are not supported; remove the user:password@ part"
        ));
    }
    let (host, port) = host_port(authority)?;
    let path = match path {
        "" => None,
        p if p.starts_with('?') => Some(format!("/{p}")),
        p => Some(p.to_owned()),
    };
    Ok(Target {
        host,
        port,
        scheme: Some(scheme),
        path,
        ..Target::default()
    })
}

/// `sip(s):[user@]host[:port][;param=value…][?headers]` (RFC 3261 section 19.1).
fn sip_uri(text: &str, rest: &str, scheme: Scheme) -> Result<Target, String> {
    let rest = rest.split('?').next().unwrap_or_default();
    let mut parts = rest.split(';');
    let address = parts.next().unwrap_or_default();
    let (user, hostport) = match address.rsplit_once('@') {
        Some((u, h)) if !u.is_empty() => (Some(u.to_owned()), h),
        Some((_, h)) => (None, h),
        None => (None, address),
    };
    let (host, port) = host_port(hostport)?;
    let mut transport = None;
    for param in parts {
        if let Some((k, v)) = param.split_once('=')
            && k.eq_ignore_ascii_case("transport")
        {
            let v = v.to_ascii_lowercase();
            if !["udp", "tcp", "tls"].contains(&v.as_str()) {
                return Err(format!("{text:?}: transport {v:?} is not udp, tcp or tls"));
            }
            transport = Some(v);
        }
    }
    Ok(Target {
        host,
        port,
        scheme: Some(scheme),
        user,
        transport,
        ..Target::default()
    })
}

/// `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 literal.
fn host_port(s: &str) -> Result<(String, Option<u16>), String> {
    if s.is_empty() {
        return Err("the target names no host".into());
    }
    if s.parse::<IpAddr>().is_ok() {
        return Ok((s.to_owned(), None));
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (v6, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{s:?}: missing ']' after the IPv6 address"))?;
        if v6.parse::<Ipv6Addr>().is_err() {
            return Err(format!("{s:?}: {v6:?} in brackets is not an IPv6 address"));
        }
        match after {
            "" => return Ok((v6.to_owned(), None)),
            a => match a.strip_prefix(':') {
                Some(p) => (v6, p),
                None => return Err(format!("{s:?}: write [IPv6]:port")),
            },
        }
    } else {
        match s.rsplit_once(':') {
            None => return Ok((s.to_owned(), None)),
            Some((h, _)) if h.contains(':') => {
                return Err(format!(
                    "{s:?}: put an IPv6 address in brackets before a port: [IPv6]:port"
                ));
            }
            Some((h, p)) => (h, p),
        }
    };
    if host.is_empty() {
        return Err(format!("{s:?} names no host"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok((host.to_owned(), Some(p))),
        _ => Err(format!("{s:?}: port {port:?} is not a number from 1 to 65535")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(host: &str, port: Option<u16>) -> Target {
        Target {
            host: host.into(),
            port,
            ..Target::default()
        }
    }

    #[test]
    fn addresses_and_host_ports() {
        assert_eq!(Target::parse("10.0.0.5"), Ok(t("10.0.0.5", None)));
        assert_eq!(Target::parse("10.0.0.5:5060"), Ok(t("10.0.0.5", Some(5060))));
        assert_eq!(Target::parse("::1"), Ok(t("::1", None)));
        assert_eq!(Target::parse("[::1]"), Ok(t("::1", None)));
        assert_eq!(Target::parse("[2001:db8::5]:5061"), Ok(t("2001:db8::5", Some(5061))));
        assert_eq!(Target::parse("dc.example.vn:443"), Ok(t("dc.example.vn", Some(443))));
        assert_eq!(Target::parse("dc.example.vn"), Ok(t("dc.example.vn", None)));
        for bad in [
            "",
            "10.0.0.5:",
            "10.0.0.5:0",
            "10.0.0.5:70000",
            "[::1",
            "[x]:1",
            "[::1]5",
            ":80",
            "a::b:1:x",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn urls_set_scheme_port_and_path() {
        let u = Target::parse("HTTPS://dc.example.vn/health?full=1#top").expect("url");
        assert_eq!(
            (u.scheme, u.port, u.path.as_deref()),
            (Some(Scheme::Https), None, Some("/health?full=1"))
        );
        assert_eq!(u.host, "dc.example.vn");
        let u = Target::parse("http://[::1]:8080").expect("url");
        assert_eq!((u.host.as_str(), u.port, u.path), ("::1", Some(8080), None));
        assert_eq!(Target::parse("http://h?x").expect("url").path.as_deref(), Some("/?x"));
        assert!(Target::parse("ftp://h/").is_err());
        assert!(Target::parse("http://u:p@h/").is_err());
        assert!(Target::parse("http:///x").is_err());
    }

    #[test]
    fn sip_uris_set_user_port_and_transport() {
        let u = Target::parse("sip:ping@10.0.0.5:5070;transport=TCP?Subject=x").expect("uri");
        assert_eq!(u.user.as_deref(), Some("ping"));
        assert_eq!((u.host.as_str(), u.port), ("10.0.0.5", Some(5070)));
        assert_eq!(u.transport.as_deref(), Some("tcp"));
        assert_eq!(u.scheme, Some(Scheme::Sip));
        let u = Target::parse("sips:[2001:db8::1]").expect("uri");
        assert_eq!(
            (u.host.as_str(), u.port, u.scheme),
            ("2001:db8::1", None, Some(Scheme::Sips))
        );
        assert!(Target::parse("sip:h;transport=sctp").is_err());
    }
}
