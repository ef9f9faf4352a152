//! Unique namespace names for suites: `{prefix}-p{process}-{8 random hex}`.
//!
//! Names are random rather than time-based because time-based names let a
//! re-run reuse a namespace that is still terminating [SPEC §5]. The random
//! source is a trait so that tests can pin it; production uses the operating
//! system's generator, which stays unique across concurrent harness processes
//! (a seeded PRNG could collide when two CI jobs start in the same instant).
//!
//! Creating the namespace in the cluster (and waiting until it is Active with
//! its `default` ServiceAccount) is the job of a [`NamespaceProvisioner`], a
//! seam that the Kubernetes adapter implements later; the executor only needs
//! to know that it happened.

use std::future::Future;

/// Longest valid DNS-1123 label, which is what a namespace name must be.
pub const MAX_NAMESPACE_LEN: usize = 63;

/// Number of random hex digits at the end of every namespace name.
pub const RANDOM_HEX_LEN: usize = 8;

/// A source of random bytes, injectable so that tests get fixed names.
pub trait RandomSource {
    /// Fills `buf` with random bytes.
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), NamespaceError>;
}

/// The operating system's random generator (`getrandom`).
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl RandomSource for OsRandom {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), NamespaceError> {
        getrandom::fill(buf).map_err(|e| NamespaceError::Random(e.to_string()))
    }
}

/// Errors while naming or creating a suite namespace.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NamespaceError {
    /// The prefix cannot start a DNS-1123 label.
    #[error(
        "invalid namespace prefix {prefix:?}: use lowercase letters, digits and '-', starting with a letter or digit"
    )]
    InvalidPrefix {
        /// The prefix as given.
        prefix: String,
    },
    /// The operating system's random generator failed.
    #[error("failed to read random bytes for a namespace name: {0}")]
    Random(String),
    /// The cluster refused to create the namespace or it never became usable.
    #[error("failed to create namespace {namespace}: {reason}")]
    Create {
        /// The namespace that could not be created.
        namespace: String,
        /// What the cluster adapter reported.
        reason: String,
    },
    /// The namespace could not be deleted, or is stuck terminating.
    #[error("failed to delete namespace {namespace}: {reason}")]
    Delete {
        /// The namespace.
        namespace: String,
        /// What went wrong, or what holds it (finalizers, remaining content).
        reason: String,
    },
}

/// A prefix that cannot make a name is a usage error (2); a namespace the
/// cluster will not make or remove is a cluster failure (5).
impl crate::failure::Failure for NamespaceError {
    fn exit(&self) -> crate::exit::Exit {
        match self {
            NamespaceError::InvalidPrefix { .. } => crate::exit::Exit::Usage,
            NamespaceError::Random(_)
            | NamespaceError::Create { .. }
            | NamespaceError::Delete { .. } => crate::exit::Exit::Cluster,
        }
    }

    fn fix(&self) -> Option<String> {
        match self {
            // The message says what a prefix may hold.
            NamespaceError::InvalidPrefix { .. } | NamespaceError::Random(_) => None,
            NamespaceError::Create { .. } | NamespaceError::Delete { .. } => {
                Some("check the cluster with `harness status`; `harness diagnose` says what is not Ready".to_owned())
            }
        }
    }
}

/// Builds a namespace name `{prefix}-p{process}-{8 random hex}`.
///
/// The result is always a valid DNS-1123 label of at most 63 characters: when
/// too long, the *prefix* is shortened, never the process or random suffix,
/// because the suffix is what makes the name unique. A prefix with characters
/// a label cannot hold is an error rather than silently rewritten, so that the
/// name a user greps for in the cluster is the one they configured.
pub fn namespace_name(
    prefix: &str,
    process: usize,
    random: &mut dyn RandomSource,
) -> Result<String, NamespaceError> {
    validate_prefix(prefix)?;
    let mut bytes = [0u8; RANDOM_HEX_LEN / 2];
    random.fill(&mut bytes)?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let suffix = format!("-p{process}-{hex}");
    // The prefix is ASCII (validated), so byte length is character length.
    let room = MAX_NAMESPACE_LEN.saturating_sub(suffix.len());
    let prefix = &prefix[..prefix.len().min(room)];
    Ok(format!("{prefix}{suffix}"))
}

fn validate_prefix(prefix: &str) -> Result<(), NamespaceError> {
    let ok = prefix
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(NamespaceError::InvalidPrefix {
            prefix: prefix.to_owned(),
        })
    }
}

/// Whether `name` is a valid DNS-1123 label (what Kubernetes requires of a
/// namespace name).
pub fn is_dns1123_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !bytes.is_empty()
        && bytes.len() <= MAX_NAMESPACE_LEN
        && bytes.first().is_some_and(alnum)
        && bytes.last().is_some_and(alnum)
        && bytes.iter().all(|b| alnum(b) || *b == b'-')
}

/// Creates suite namespaces in the cluster.
///
/// Implementations must return only once the namespace is usable: phase
/// Active and its `default` ServiceAccount present, because pods created
/// before the ServiceAccount exists are rejected.
pub trait NamespaceProvisioner: Send + Sync {
    /// Creates `namespace` and waits until it is usable.
    fn create(&self, namespace: &str) -> impl Future<Output = Result<(), NamespaceError>> + Send;
}

/// A provisioner that creates nothing: for runs where the suites create
/// their own namespaces, and for tests of the process machinery.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoNamespaces;

impl NamespaceProvisioner for NoNamespaces {
    async fn create(&self, _namespace: &str) -> Result<(), NamespaceError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Yields the given bytes in a cycle, so names are predictable.
    struct Fixed(Vec<u8>);

    impl RandomSource for Fixed {
        fn fill(&mut self, buf: &mut [u8]) -> Result<(), NamespaceError> {
            for (i, b) in buf.iter_mut().enumerate() {
                *b = self.0[i % self.0.len()];
            }
            Ok(())
        }
    }

    #[test]
    fn names_follow_the_pattern_and_are_valid_labels() {
        let long = "a".repeat(80);
        let long_dash = format!("{}-{}", "b".repeat(50), "c".repeat(20));
        // (prefix, process, random bytes, expected name)
        let table: &[(&str, usize, &[u8], String)] = &[
            ("gw", 1, &[0xde, 0xad, 0xbe, 0xef], "gw-p1-deadbeef".into()),
            (
                "e2e-gateway",
                12,
                &[0x00, 0x01, 0x0a, 0xff],
                "e2e-gateway-p12-00010aff".into(),
            ),
            ("9lives", 3, &[0x12], "9lives-p3-12121212".into()),
            // 63 - len("-p7-0f0f0f0f") = 51 characters of prefix survive.
            (&long, 7, &[0x0f], format!("{}-p7-0f0f0f0f", "a".repeat(51))),
            (
                &long_dash,
                1,
                &[0xab],
                format!("{}-p1-abababab", &long_dash[..51]),
            ),
            ("x", 123456, &[0x01], "x-p123456-01010101".into()),
        ];
        for (prefix, process, bytes, expected) in table {
            let name = namespace_name(prefix, *process, &mut Fixed(bytes.to_vec())).unwrap();
            assert_eq!(&name, expected, "prefix {prefix:?} process {process}");
            assert!(is_dns1123_label(&name), "{name} is not a DNS-1123 label");
            assert!(name.len() <= MAX_NAMESPACE_LEN);
        }
    }

    #[test]
    fn invalid_prefixes_are_rejected_with_the_prefix_named() {
        for prefix in ["", "-gw", "Gateway", "gw_e2e", "gw.e2e", "gw e2e", "ĝw"] {
            let err = namespace_name(prefix, 1, &mut Fixed(vec![1])).unwrap_err();
            assert_eq!(
                err,
                NamespaceError::InvalidPrefix {
                    prefix: prefix.to_owned()
                }
            );
            assert!(err.to_string().contains("lowercase letters"), "{err}");
        }
    }

    #[test]
    fn os_random_names_differ() {
        let a = namespace_name("gw", 1, &mut OsRandom).unwrap();
        let b = namespace_name("gw", 1, &mut OsRandom).unwrap();
        // 32 random bits: a collision here means the source is not random.
        assert_ne!(a, b);
        assert!(is_dns1123_label(&a) && is_dns1123_label(&b));
    }

    #[test]
    fn dns1123_label_table() {
        let table = [
            ("a", true),
            ("a-b-1", true),
            ("1a", true),
            ("", false),
            ("-a", false),
            ("a-", false),
            ("A", false),
            ("a_b", false),
            ("a.b", false),
        ];
        for (name, ok) in table {
            assert_eq!(is_dns1123_label(name), ok, "{name:?}");
        }
        assert!(is_dns1123_label(&"a".repeat(63)));
        assert!(!is_dns1123_label(&"a".repeat(64)));
    }
}
