//! The client's `CONNECT` options.

use serde::Deserialize;

/// Options a client sends in CONNECT. Missing fields take nats-server's
/// `defaultOpts` (verbose, pedantic and echo on); unknown fields are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ConnectOptions {
    pub verbose: bool,
    pub pedantic: bool,
    pub echo: bool,
    pub headers: bool,
    pub no_responders: bool,
    pub protocol: i64,
    pub name: Option<String>,
    pub lang: Option<String>,
    pub version: Option<String>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            verbose: true,
            pedantic: true,
            echo: true,
            headers: false,
            no_responders: false,
            protocol: 0,
            name: None,
            lang: None,
            version: None,
        }
    }
}

/// Why a CONNECT was refused; each closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// Not JSON: nats-server closes without an `-ERR`.
    #[error("invalid CONNECT JSON: {0}")]
    Json(String),
    #[error("invalid client protocol")]
    BadProtocol,
    #[error("no responders requires headers support")]
    NoRespondersWithoutHeaders,
}

impl ConnectError {
    /// The `-ERR` text nats-server sends before closing, if any.
    pub fn err_text(&self) -> Option<&'static str> {
        match self {
            ConnectError::Json(_) => None,
            ConnectError::BadProtocol => Some("invalid client protocol"),
            ConnectError::NoRespondersWithoutHeaders => {
                Some("no responders requires headers support")
            }
        }
    }
}

impl ConnectOptions {
    /// Parses and validates a CONNECT argument.
    pub fn parse(json: &[u8]) -> Result<Self, ConnectError> {
        // serde would take an array for the struct (its fields in order);
        // nats-server's decoder takes only an object (found by fuzz/).
        if json.trim_ascii_start().first() != Some(&b'{') {
            return Err(ConnectError::Json(
                "CONNECT options are not a JSON object".into(),
            ));
        }
        let opts: ConnectOptions =
            serde_json::from_slice(json).map_err(|e| ConnectError::Json(e.to_string()))?;
        // ClientProtoZero (0) and ClientProtoInfo (1) are the only ones.
        if !(0..=1).contains(&opts.protocol) {
            return Err(ConnectError::BadProtocol);
        }
        if opts.no_responders && !opts.headers {
            return Err(ConnectError::NoRespondersWithoutHeaders);
        }
        Ok(opts)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn defaults_like_nats_server() {
        let o = ConnectOptions::parse(b"{}").unwrap();
        assert!(o.verbose && o.pedantic && o.echo && !o.headers && !o.no_responders);
    }

    #[test]
    fn async_nats_style_connect() {
        let o = ConnectOptions::parse(
            br#"{"verbose":false,"pedantic":false,"echo":true,"lang":"rust","version":"0.51.0","protocol":1,"tls_required":false,"headers":true,"no_responders":true,"user":null}"#,
        )
        .unwrap();
        assert!(!o.verbose && !o.pedantic && o.headers && o.no_responders);
        assert_eq!(o.lang.as_deref(), Some("rust"));
    }

    #[test]
    fn refusals() {
        assert!(matches!(
            ConnectOptions::parse(b"{bad"),
            Err(ConnectError::Json(_))
        ));
        assert!(matches!(
            ConnectOptions::parse(b""),
            Err(ConnectError::Json(_))
        ));
        let e = ConnectOptions::parse(b"[false]").unwrap_err();
        assert_eq!(e.err_text(), None, "closed without -ERR, as nats-server");
        let e = ConnectOptions::parse(br#"{"protocol":5}"#).unwrap_err();
        assert_eq!(e.err_text(), Some("invalid client protocol"));
        let e = ConnectOptions::parse(br#"{"no_responders":true}"#).unwrap_err();
        assert_eq!(e.err_text(), Some("no responders requires headers support"));
    }
}
