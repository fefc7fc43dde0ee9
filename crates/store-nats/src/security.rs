//! How a node proves who it is to the NATS servers, and how it checks who they are: one authentication method
//! (user and password, a token, an nkey seed or a credentials file) and TLS (required, with the operator's CA and,
//! for mutual TLS, a client certificate).
//!
//! Secrets come from the environment or from files, never from the cluster URL: a URL ends up in process lists and
//! logs, so `ClusterConfig::parse` refuses credentials in it. Nothing here prints a secret (see the `Debug` impl).

use std::path::{Path, PathBuf};

use async_nats::ConnectOptions;

use crate::NatsError;

/// How the node authenticates to the servers.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Auth {
    /// No credentials (a server without authorization).
    #[default]
    None,
    /// `ABSTRACTGATEWAY_NATS_USER` and `ABSTRACTGATEWAY_NATS_PASSWORD`.
    UserPassword { user: String, password: String },
    /// `ABSTRACTGATEWAY_NATS_TOKEN`.
    Token(String),
    /// `ABSTRACTGATEWAY_NATS_NKEY_FILE`: a file holding an nkey user seed (`SU…`); the server knows its public key.
    NkeySeedFile(PathBuf),
    /// `ABSTRACTGATEWAY_NATS_CREDS`: a credentials file (user JWT and nkey seed, as `nsc` writes it).
    CredsFile(PathBuf),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::UserPassword { user, .. } => write!(f, "UserPassword({user}, ***)"),
            Auth::Token(_) => f.write_str("Token(***)"),
            Auth::NkeySeedFile(p) => write!(f, "NkeySeedFile({})", p.display()),
            Auth::CredsFile(p) => write!(f, "CredsFile({})", p.display()),
        }
    }
}

/// TLS towards the servers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tls {
    /// Refuse a connection that is not TLS (`ABSTRACTGATEWAY_NATS_TLS=1`, a `tls://` URL, or any file below).
    pub required: bool,
    /// PEM file of the CA that signed the servers' certificates (`ABSTRACTGATEWAY_NATS_TLS_CA`); the system's
    /// roots when unset.
    pub ca: Option<PathBuf>,
    /// PEM certificate and key this node presents, for servers that verify clients
    /// (`ABSTRACTGATEWAY_NATS_TLS_CERT`, `ABSTRACTGATEWAY_NATS_TLS_KEY`).
    pub client: Option<(PathBuf, PathBuf)>,
}

/// Authentication and TLS of a node's connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Security {
    pub auth: Auth,
    pub tls: Tls,
}

/// The environment variables [`Security::from_env`] reads.
pub const ENV_VARS: &[&str] = &[
    "ABSTRACTGATEWAY_NATS_USER",
    "ABSTRACTGATEWAY_NATS_PASSWORD",
    "ABSTRACTGATEWAY_NATS_TOKEN",
    "ABSTRACTGATEWAY_NATS_NKEY_FILE",
    "ABSTRACTGATEWAY_NATS_CREDS",
    "ABSTRACTGATEWAY_NATS_TLS",
    "ABSTRACTGATEWAY_NATS_TLS_CA",
    "ABSTRACTGATEWAY_NATS_TLS_CERT",
    "ABSTRACTGATEWAY_NATS_TLS_KEY",
];

impl Security {
    /// Reads the `ABSTRACTGATEWAY_NATS_*` variables through `get` (empty values count as unset). Refuses more
    /// than one authentication method, a password without a user (or the reverse), a certificate without its key
    /// (or the reverse), and a `…_TLS` value other than a boolean.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Security, NatsError> {
        let var = |k: &str| {
            get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let bad = |why: String| Err(NatsError::Config(why));
        let user = var("ABSTRACTGATEWAY_NATS_USER");
        // A password may legitimately have surrounding spaces: only an empty one counts as unset.
        let password = get("ABSTRACTGATEWAY_NATS_PASSWORD").filter(|v| !v.is_empty());
        let token = get("ABSTRACTGATEWAY_NATS_TOKEN").filter(|v| !v.trim().is_empty());
        let nkey = var("ABSTRACTGATEWAY_NATS_NKEY_FILE").map(PathBuf::from);
        let creds = var("ABSTRACTGATEWAY_NATS_CREDS").map(PathBuf::from);
        let mut methods = Vec::new();
        if user.is_some() || password.is_some() {
            methods.push("ABSTRACTGATEWAY_NATS_USER/_PASSWORD");
        }
        if token.is_some() {
            methods.push("ABSTRACTGATEWAY_NATS_TOKEN");
        }
        if nkey.is_some() {
            methods.push("ABSTRACTGATEWAY_NATS_NKEY_FILE");
        }
        if creds.is_some() {
            methods.push("ABSTRACTGATEWAY_NATS_CREDS");
        }
        if methods.len() > 1 {
            return bad(format!(
                "set one NATS authentication method, not {}",
                methods.join(" and ")
            ));
        }
        let auth = match (user, password, token, nkey, creds) {
            (Some(user), Some(password), ..) => Auth::UserPassword { user, password },
            (Some(_), None, ..) => {
                return bad(
                    "ABSTRACTGATEWAY_NATS_USER is set without ABSTRACTGATEWAY_NATS_PASSWORD".into(),
                );
            }
            (None, Some(_), ..) => {
                return bad(
                    "ABSTRACTGATEWAY_NATS_PASSWORD is set without ABSTRACTGATEWAY_NATS_USER".into(),
                );
            }
            (_, _, Some(token), ..) => Auth::Token(token),
            (_, _, _, Some(path), _) => Auth::NkeySeedFile(path),
            (_, _, _, _, Some(path)) => Auth::CredsFile(path),
            _ => Auth::None,
        };
        let required = match var("ABSTRACTGATEWAY_NATS_TLS").as_deref() {
            None => false,
            Some("1" | "true" | "yes" | "on") => true,
            Some("0" | "false" | "no" | "off") => false,
            Some(other) => {
                return bad(format!(
                    "ABSTRACTGATEWAY_NATS_TLS must be 1 or 0 (got {other:?})"
                ));
            }
        };
        let ca = var("ABSTRACTGATEWAY_NATS_TLS_CA").map(PathBuf::from);
        let client = match (
            var("ABSTRACTGATEWAY_NATS_TLS_CERT"),
            var("ABSTRACTGATEWAY_NATS_TLS_KEY"),
        ) {
            (Some(c), Some(k)) => Some((PathBuf::from(c), PathBuf::from(k))),
            (None, None) => None,
            (Some(_), None) => {
                return bad(
                    "ABSTRACTGATEWAY_NATS_TLS_CERT is set without ABSTRACTGATEWAY_NATS_TLS_KEY"
                        .into(),
                );
            }
            (None, Some(_)) => {
                return bad(
                    "ABSTRACTGATEWAY_NATS_TLS_KEY is set without ABSTRACTGATEWAY_NATS_TLS_CERT"
                        .into(),
                );
            }
        };
        // Naming a CA or a client certificate only makes sense over TLS: never fall back to plain text then.
        let required = required || ca.is_some() || client.is_some();
        Ok(Security {
            auth,
            tls: Tls {
                required,
                ca,
                client,
            },
        })
    }

    /// Checks that every named file is a readable file, so a typo fails at start with its name rather than as a
    /// handshake error.
    pub(crate) fn validate(&self) -> Result<(), NatsError> {
        let mut files: Vec<(&str, &Path)> = Vec::new();
        match &self.auth {
            Auth::NkeySeedFile(p) => files.push(("nkey seed file", p)),
            Auth::CredsFile(p) => files.push(("credentials file", p)),
            _ => {}
        }
        if let Some(ca) = &self.tls.ca {
            files.push(("TLS CA file", ca));
        }
        if let Some((cert, key)) = &self.tls.client {
            files.push(("TLS client certificate", cert));
            files.push(("TLS client key", key));
        }
        for (what, path) in files {
            if let Err(e) = std::fs::File::open(path).and_then(|f| {
                if f.metadata()?.is_file() {
                    Ok(())
                } else {
                    Err(std::io::Error::other("not a regular file"))
                }
            }) {
                return Err(NatsError::Config(format!("{what} {}: {e}", path.display())));
            }
        }
        Ok(())
    }

    /// `options` with this node's authentication and TLS.
    pub(crate) async fn apply(
        &self,
        mut options: ConnectOptions,
    ) -> Result<ConnectOptions, NatsError> {
        options = match &self.auth {
            Auth::None => options,
            Auth::UserPassword { user, password } => {
                options.user_and_password(user.clone(), password.clone())
            }
            Auth::Token(token) => options.token(token.clone()),
            Auth::NkeySeedFile(path) => {
                let seed = std::fs::read_to_string(path).map_err(|e| {
                    NatsError::Config(format!("nkey seed file {}: {e}", path.display()))
                })?;
                let seed = seed.trim().to_string();
                // Checked here so a wrong file is named at start (the client only fails at the handshake).
                if nkeys::KeyPair::from_seed(&seed).is_err() {
                    return Err(NatsError::Config(format!(
                        "nkey seed file {}: not an nkey seed",
                        path.display()
                    )));
                }
                options.nkey(seed)
            }
            Auth::CredsFile(path) => options.credentials_file(path).await.map_err(|e| {
                NatsError::Config(format!("credentials file {}: {e}", path.display()))
            })?,
        };
        if self.tls.required {
            options = options.require_tls(true);
        }
        if let Some(ca) = &self.tls.ca {
            options = options.add_root_certificates(ca.clone());
        }
        if let Some((cert, key)) = &self.tls.client {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Result<Security, NatsError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Security::from_env(|k| map.get(k).cloned())
    }

    #[test]
    fn reads_one_method_and_tls() {
        assert_eq!(env(&[]).expect("empty"), Security::default());
        let s = env(&[
            ("ABSTRACTGATEWAY_NATS_USER", "ag"),
            ("ABSTRACTGATEWAY_NATS_PASSWORD", " pass word "),
        ])
        .expect("user");
        assert_eq!(
            s.auth,
            Auth::UserPassword {
                user: "ag".into(),
                password: " pass word ".into()
            }
        );
        assert!(!s.tls.required);
        let s = env(&[
            ("ABSTRACTGATEWAY_NATS_TOKEN", "t0k"),
            ("ABSTRACTGATEWAY_NATS_TLS_CA", "/etc/ca.pem"),
        ])
        .expect("token");
        assert_eq!(s.auth, Auth::Token("t0k".into()));
        assert!(s.tls.required, "a CA implies TLS");
        let s = env(&[
            ("ABSTRACTGATEWAY_NATS_CREDS", "/x.creds"),
            ("ABSTRACTGATEWAY_NATS_TLS", "1"),
            ("ABSTRACTGATEWAY_NATS_TLS_CERT", "/c.pem"),
            ("ABSTRACTGATEWAY_NATS_TLS_KEY", "/k.pem"),
        ])
        .expect("creds");
        assert_eq!(s.auth, Auth::CredsFile("/x.creds".into()));
        assert_eq!(s.tls.client, Some(("/c.pem".into(), "/k.pem".into())));
        assert_eq!(
            env(&[("ABSTRACTGATEWAY_NATS_NKEY_FILE", "/seed")])
                .expect("nkey")
                .auth,
            Auth::NkeySeedFile("/seed".into())
        );
    }

    #[test]
    fn refuses_ambiguous_or_half_settings() {
        for pairs in [
            &[
                ("ABSTRACTGATEWAY_NATS_TOKEN", "t"),
                ("ABSTRACTGATEWAY_NATS_CREDS", "/c"),
            ][..],
            &[
                ("ABSTRACTGATEWAY_NATS_USER", "u"),
                ("ABSTRACTGATEWAY_NATS_PASSWORD", "p"),
                ("ABSTRACTGATEWAY_NATS_NKEY_FILE", "/s"),
            ][..],
            &[("ABSTRACTGATEWAY_NATS_USER", "u")][..],
            &[("ABSTRACTGATEWAY_NATS_PASSWORD", "p")][..],
            &[("ABSTRACTGATEWAY_NATS_TLS_CERT", "/c")][..],
            &[("ABSTRACTGATEWAY_NATS_TLS_KEY", "/k")][..],
            &[("ABSTRACTGATEWAY_NATS_TLS", "maybe")][..],
        ] {
            let err = env(pairs).expect_err(&format!("{pairs:?}"));
            assert!(matches!(err, NatsError::Config(_)), "{err}");
        }
    }

    #[test]
    fn never_prints_a_secret() {
        let s = env(&[
            ("ABSTRACTGATEWAY_NATS_USER", "ag"),
            ("ABSTRACTGATEWAY_NATS_PASSWORD", "s3cret-pw"),
        ])
        .expect("user");
        assert!(!format!("{s:?}").contains("s3cret"));
        let s = env(&[("ABSTRACTGATEWAY_NATS_TOKEN", "s3cret-tok")]).expect("token");
        assert!(!format!("{s:?}").contains("s3cret"));
        let err = env(&[("ABSTRACTGATEWAY_NATS_PASSWORD", "s3cret-pw")]).expect_err("half");
        assert!(!err.to_string().contains("s3cret"));
    }

    #[test]
    fn missing_files_are_named_at_start() {
        let dir = tempfile::tempdir().expect("dir");
        let missing = dir.path().join("nope.pem");
        let s = Security {
            auth: Auth::None,
            tls: Tls {
                required: true,
                ca: Some(missing.clone()),
                client: None,
            },
        };
        let err = s.validate().expect_err("missing CA").to_string();
        assert!(
            err.contains("TLS CA file") && err.contains("nope.pem"),
            "{err}"
        );
        let s = Security {
            auth: Auth::CredsFile(dir.path().to_path_buf()),
            tls: Tls::default(),
        };
        let err = s.validate().expect_err("a directory").to_string();
        assert!(err.contains("credentials file"), "{err}");
    }
}
