//! Leaving objects out by kind: `exclude: [ServiceMonitor,
//! "BuildConfig.build.openshift.io"]`.
//!
//! A real deploy tree holds objects a kind cluster cannot serve
//! (prometheus-operator's ServiceMonitor and PrometheusRule, cert-manager's
//! Certificate, OpenShift's BuildConfig and ImageStream). A pattern names a
//! kind, optionally qualified by its API group the way `kubectl` writes
//! resources (`Kind.group`), so that a kind name two groups share can be
//! told apart. Patterns are matched against rendered objects, whatever
//! rendered them.

use std::fmt;

use serde::Serialize;

/// A kind, in any group, or in one group.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KindPattern {
    /// `ServiceMonitor`.
    pub kind: String,
    /// `monitoring.coreos.com`; `None`: any group.
    pub group: Option<String>,
}

/// Why a pattern is not one.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a kind: {why}")]
pub struct PatternError {
    /// The text as written.
    pub text: String,
    /// What is wrong with it.
    pub why: &'static str,
}

impl PatternError {
    /// How to write it.
    pub fn help(&self) -> &'static str {
        "write a kind as the manifests spell it (`ServiceMonitor`), or a kind and its API group (`BuildConfig.build.openshift.io`)"
    }
}

impl std::str::FromStr for KindPattern {
    type Err = PatternError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = |why| PatternError {
            text: text.to_owned(),
            why,
        };
        let (kind, group) = match text.trim().split_once('.') {
            Some((kind, group)) => (kind, Some(group)),
            None => (text.trim(), None),
        };
        if kind.is_empty() {
            return Err(err("it has no kind"));
        }
        // Kinds are CamelCase (`ServiceMonitor`); a lowercase word is the
        // resource name (`servicemonitors`), which matches no object.
        if !kind.starts_with(|c: char| c.is_ascii_uppercase())
            || !kind.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(err(
                "a kind starts with a capital letter and has only letters and digits",
            ));
        }
        if let Some(group) = group
            && (group.is_empty()
                || !group
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-.".contains(c)))
        {
            return Err(err(
                "an API group is lowercase letters, digits, '-' and '.' (e.g. monitoring.coreos.com)",
            ));
        }
        Ok(KindPattern {
            kind: kind.to_owned(),
            group: group.map(str::to_owned),
        })
    }
}

impl KindPattern {
    /// Whether an object of this `apiVersion` and `kind` matches.
    pub fn matches(&self, api_version: &str, kind: &str) -> bool {
        self.kind == kind
            && self
                .group
                .as_deref()
                .is_none_or(|g| g == super::group_of(api_version))
    }
}

impl fmt::Display for KindPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.group {
            Some(g) => write!(f, "{}.{g}", self.kind),
            None => f.write_str(&self.kind),
        }
    }
}

impl Serialize for KindPattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Whether any of `patterns` matches an object of this `apiVersion` and `kind`.
pub fn any_matches(patterns: &[KindPattern], api_version: &str, kind: &str) -> bool {
    patterns.iter().any(|p| p.matches(api_version, kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> KindPattern {
        text.parse().unwrap()
    }

    #[test]
    fn patterns_match_a_kind_in_any_group_or_in_one() {
        let table = [
            (
                "ServiceMonitor",
                "monitoring.coreos.com/v1",
                "ServiceMonitor",
                true,
            ),
            ("ServiceMonitor", "example.com/v1", "ServiceMonitor", true),
            (
                "ServiceMonitor",
                "monitoring.coreos.com/v1",
                "PodMonitor",
                false,
            ),
            (
                "BuildConfig.build.openshift.io",
                "build.openshift.io/v1",
                "BuildConfig",
                true,
            ),
            ("BuildConfig.build.openshift.io", "v1", "BuildConfig", false),
            (
                "BuildConfig.build.openshift.io",
                "example.com/v1",
                "BuildConfig",
                false,
            ),
            (
                "Certificate.cert-manager.io",
                "cert-manager.io/v1",
                "Certificate",
                true,
            ),
            // The core group is the empty one: `Service` matches `v1`.
            ("Service", "v1", "Service", true),
            (
                "PodDisruptionBudget.policy",
                "policy/v1beta1",
                "PodDisruptionBudget",
                true,
            ),
        ];
        for (pattern, api_version, kind, want) in table {
            assert_eq!(
                p(pattern).matches(api_version, kind),
                want,
                "{pattern} vs {api_version} {kind}"
            );
        }
    }

    #[test]
    fn patterns_that_match_nothing_are_refused_with_how_to_write_them() {
        for (text, why) in [
            ("", "it has no kind"),
            (".monitoring.coreos.com", "it has no kind"),
            ("servicemonitors", "a kind starts with"),
            ("Service Monitor", "a kind starts with"),
            ("BuildConfig.", "an API group is"),
            ("BuildConfig.Build.OpenShift.io", "an API group is"),
        ] {
            let e = text.parse::<KindPattern>().unwrap_err();
            assert!(e.why.starts_with(why), "{text}: {}", e.why);
            assert!(e.help().contains("ServiceMonitor"));
        }
    }

    #[test]
    fn patterns_print_as_written() {
        for text in ["ServiceMonitor", "BuildConfig.build.openshift.io"] {
            assert_eq!(p(text).to_string(), text);
            assert_eq!(
                serde_json::to_value(p(text)).unwrap(),
                serde_json::json!(text)
            );
        }
    }
}
