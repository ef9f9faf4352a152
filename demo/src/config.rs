//! DataStorage's configuration, read from the environment that
//! deploy/datastorage/base/ sets (its ConfigMap and Secret).
//!
//! Parsing is a pure function of a variable lookup, so every default and
//! every error message is tested without touching the process environment.

use std::net::SocketAddr;
use std::time::Duration;

/// Everything DataStorage needs to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub listen: SocketAddr,
    pub db: DbConfig,
    /// Flush the write buffer when it holds this many events…
    pub flush_events: usize,
    /// …or when its oldest event has waited this long.
    pub flush_interval: Duration,
    /// How long to keep retrying the first connection to PostgreSQL.
    pub connect_timeout: Duration,
}

/// Where the database is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbConfig {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub name: String,
}

impl DbConfig {
    pub fn pg_config(&self) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.host(&self.host)
            .port(self.port)
            .user(&self.user)
            .password(&self.password)
            .dbname(&self.name)
            .application_name("datastorage")
            .connect_timeout(Duration::from_secs(5));
        c
    }
}

/// A missing or malformed variable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error(
        "{0} is not set: set it in the datastorage ConfigMap or Secret (deploy/datastorage/base/configmap.yaml)"
    )]
    Missing(&'static str),
    #[error("{name}={value:?} is invalid: {why}")]
    Invalid {
        name: &'static str,
        value: String,
        why: &'static str,
    },
}

impl Config {
    /// Reads the configuration through `var` (e.g. `|k| std::env::var(k).ok()`).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &'static str| {
            var(name)
                .filter(|v| !v.is_empty())
                .ok_or(ConfigError::Missing(name))
        };
        let invalid = |name, value: String, why| ConfigError::Invalid { name, value, why };
        let listen = var("DATASTORAGE_LISTEN").unwrap_or_else(|| "0.0.0.0:8080".into());
        let listen = listen.parse().map_err(|_| {
            invalid(
                "DATASTORAGE_LISTEN",
                listen,
                "expected host:port, e.g. 0.0.0.0:8080",
            )
        })?;
        let port = match var("DATASTORAGE_DB_PORT") {
            None => 5432,
            Some(p) => p
                .parse()
                .map_err(|_| invalid("DATASTORAGE_DB_PORT", p, "expected a port number"))?,
        };
        let flush_events = match var("DATASTORAGE_FLUSH_EVENTS") {
            None => 100,
            Some(n) => match n.parse::<usize>() {
                Ok(v) if v > 0 => v,
                _ => {
                    return Err(invalid(
                        "DATASTORAGE_FLUSH_EVENTS",
                        n,
                        "expected a positive number of events",
                    ));
                }
            },
        };
        let duration = |name: &'static str, default: Duration| match var(name) {
            None => Ok(default),
            Some(d) => match humantime::parse_duration(&d) {
                Ok(v) if !v.is_zero() => Ok(v),
                _ => Err(invalid(
                    name,
                    d,
                    "expected a positive duration, e.g. 1s or 500ms",
                )),
            },
        };
        Ok(Config {
            listen,
            db: DbConfig {
                host: required("DATASTORAGE_DB_HOST")?,
                port,
                user: required("DATASTORAGE_DB_USER")?,
                password: required("DATASTORAGE_DB_PASSWORD")?,
                name: required("DATASTORAGE_DB_NAME")?,
            },
            flush_events,
            flush_interval: duration("DATASTORAGE_FLUSH_INTERVAL", Duration::from_secs(1))?,
            connect_timeout: duration("DATASTORAGE_DB_CONNECT_TIMEOUT", Duration::from_secs(30))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut env: HashMap<String, String> = [
            ("DATASTORAGE_DB_HOST", "postgresql"),
            ("DATASTORAGE_DB_USER", "audit"),
            ("DATASTORAGE_DB_PASSWORD", "pw"),
            ("DATASTORAGE_DB_NAME", "audit"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        for (k, v) in vars {
            if v.is_empty() {
                env.remove(*k);
            } else {
                env.insert((*k).to_owned(), (*v).to_owned());
            }
        }
        Config::from_lookup(|k| env.get(k).cloned())
    }

    #[test]
    fn defaults_match_the_manifest() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(c.db.port, 5432);
        assert_eq!(
            (c.flush_events, c.flush_interval),
            (100, Duration::from_secs(1))
        );
        let c = parse(&[
            ("DATASTORAGE_FLUSH_INTERVAL", "250ms"),
            ("DATASTORAGE_FLUSH_EVENTS", "7"),
            ("DATASTORAGE_DB_PORT", "25432"),
        ])
        .unwrap();
        assert_eq!(
            (c.flush_events, c.flush_interval, c.db.port),
            (7, Duration::from_millis(250), 25432)
        );
    }

    #[test]
    fn errors_name_the_variable_and_the_fix() {
        let cases = [
            (
                ("DATASTORAGE_DB_HOST", ""),
                "DATASTORAGE_DB_HOST is not set: set it in the datastorage ConfigMap or Secret (deploy/datastorage/base/configmap.yaml)",
            ),
            (
                ("DATASTORAGE_LISTEN", ":80"),
                "DATASTORAGE_LISTEN=\":80\" is invalid: expected host:port, e.g. 0.0.0.0:8080",
            ),
            (
                ("DATASTORAGE_FLUSH_EVENTS", "0"),
                "DATASTORAGE_FLUSH_EVENTS=\"0\" is invalid: expected a positive number of events",
            ),
            (
                ("DATASTORAGE_FLUSH_INTERVAL", "soon"),
                "DATASTORAGE_FLUSH_INTERVAL=\"soon\" is invalid: expected a positive duration, e.g. 1s or 500ms",
            ),
            (
                ("DATASTORAGE_DB_PORT", "x"),
                "DATASTORAGE_DB_PORT=\"x\" is invalid: expected a port number",
            ),
        ];
        for (var, want) in cases {
            assert_eq!(parse(&[var]).unwrap_err().to_string(), want);
        }
    }
}
