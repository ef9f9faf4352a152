//! What Ready means where the lane file says so.
//!
//! A project's own kinds (and anything the built-in rules get wrong) get a
//! rule from the lane file's `readiness:` maps: a key selects objects — a
//! kind (`ServiceMonitor`, any group), a kind in one group
//! (`Widget.example.com`), or one object (`Widget.example.com/w1`,
//! `Widget/ns/w1`) — and its value says when they are Ready: `exists`, or
//! `{condition: Synced}` (that condition True). Keys are parsed here so that
//! validation and matching agree on one grammar. When several keys match an
//! object the most specific wins (an object, then a kind in a group, then a
//! kind); keys of equal specificity were already merged by the lane file
//! (a component's over its lane's over the file's), so the first found of
//! the most specific wins.

use std::fmt;

/// Which objects a `readiness:` key selects.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Selector {
    /// The kind, as manifests write it (`Widget`).
    pub kind: String,
    /// The API group, when the key names one (`example.com`).
    pub group: Option<String>,
    /// The namespace, when the key names one.
    pub namespace: Option<String>,
    /// The object's name, when the key selects one object.
    pub name: Option<String>,
}

/// Why a `readiness:` key is not a selector.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error(
        "`{0}` is not a kind: a kind starts with an uppercase letter (as in manifests: `ServiceMonitor`)"
    )]
    NotAKind(String),
    #[error("`{0}` has an empty part")]
    Empty(String),
    #[error(
        "`{0}` has too many `/`: write Kind, Kind.group, Kind[.group]/name or Kind[.group]/namespace/name"
    )]
    TooManyParts(String),
}

impl Selector {
    /// Parses `Kind`, `Kind.group`, `Kind[.group]/name` or
    /// `Kind[.group]/namespace/name`.
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        let mut parts = text.split('/');
        let kind_part = parts.next().unwrap_or_default();
        let rest: Vec<&str> = parts.collect();
        if kind_part.is_empty() || rest.iter().any(|p| p.is_empty()) {
            return Err(SelectorError::Empty(text.to_owned()));
        }
        let (kind, group) = match kind_part.split_once('.') {
            Some((kind, group)) => (kind, Some(group)),
            None => (kind_part, None),
        };
        if group.is_some_and(str::is_empty) || kind.is_empty() {
            return Err(SelectorError::Empty(text.to_owned()));
        }
        if !kind.starts_with(|c: char| c.is_ascii_uppercase())
            || !kind.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(SelectorError::NotAKind(kind_part.to_owned()));
        }
        let (namespace, name) = match rest.as_slice() {
            [] => (None, None),
            [name] => (None, Some(*name)),
            [namespace, name] => (Some(*namespace), Some(*name)),
            _ => return Err(SelectorError::TooManyParts(text.to_owned())),
        };
        Ok(Self {
            kind: kind.to_owned(),
            group: group.map(str::to_owned),
            namespace: namespace.map(str::to_owned),
            name: name.map(str::to_owned),
        })
    }

    /// How specific it is: an object (with or without its namespace) over
    /// a kind in a group over a kind.
    pub fn specificity(&self) -> u8 {
        match (&self.name, &self.namespace, &self.group) {
            (Some(_), Some(_), _) => 4,
            (Some(_), None, _) => 3,
            (None, _, Some(_)) => 2,
            (None, _, None) => 1,
        }
    }

    /// Whether it selects the object of `group`/`kind` named `name` in
    /// `namespace` (`None` for a cluster-scoped object).
    pub fn matches(&self, group: &str, kind: &str, namespace: Option<&str>, name: &str) -> bool {
        self.kind == kind
            && self.group.as_deref().is_none_or(|g| g == group)
            && self.name.as_deref().is_none_or(|n| n == name)
            && self
                .namespace
                .as_deref()
                .is_none_or(|ns| Some(ns) == namespace)
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.kind)?;
        if let Some(g) = &self.group {
            write!(f, ".{g}")?;
        }
        if let Some(ns) = &self.namespace {
            write!(f, "/{ns}")?;
        }
        if let Some(n) = &self.name {
            write!(f, "/{n}")?;
        }
        Ok(())
    }
}

/// When the selected objects are Ready.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadyWhen {
    /// As soon as it exists (and is not being deleted).
    Exists,
    /// When this status condition is `True` (and its controller has
    /// observed the latest generation, where it reports one).
    Condition(String),
}

impl fmt::Display for ReadyWhen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadyWhen::Exists => f.write_str("exists"),
            ReadyWhen::Condition(c) => write!(f, "{{condition: {c}}}"),
        }
    }
}

/// One `readiness:` entry.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Override {
    pub selector: Selector,
    pub ready_when: ReadyWhen,
    /// Where the lane file says it (`harness.yaml:12:5`), for messages.
    pub from: String,
}

/// The `readiness:` entries that apply to one component, most deliberate
/// first (the component's, then its lane's, then the file's).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct Overrides(pub Vec<Override>);

impl Overrides {
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The entry that decides for an object: the most specific selector
    /// that matches, and of equally specific ones the first.
    pub fn find(
        &self,
        group: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<&Override> {
        let mut best: Option<&Override> = None;
        for o in &self.0 {
            if o.selector.matches(group, kind, namespace, name)
                && best.is_none_or(|b| o.selector.specificity() > b.selector.specificity())
            {
                best = Some(o);
            }
        }
        best
    }

    /// The entries of `more` whose keys are not already here, after these:
    /// `self` is the more deliberate level.
    pub fn then(mut self, more: &Overrides) -> Self {
        for o in &more.0 {
            if !self.0.iter().any(|mine| mine.selector == o.selector) {
                self.0.push(o.clone());
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(s: &str) -> Selector {
        Selector::parse(s).unwrap()
    }

    #[test]
    fn keys_parse_into_selectors() {
        let cases = [
            ("ServiceMonitor", ("ServiceMonitor", None, None, None)),
            (
                "Widget.example.com",
                ("Widget", Some("example.com"), None, None),
            ),
            ("Widget/w1", ("Widget", None, None, Some("w1"))),
            (
                "Widget.example.com/ns/w.1",
                ("Widget", Some("example.com"), Some("ns"), Some("w.1")),
            ),
        ];
        for (text, (kind, group, ns, name)) in cases {
            let s = sel(text);
            assert_eq!(
                (
                    s.kind.as_str(),
                    s.group.as_deref(),
                    s.namespace.as_deref(),
                    s.name.as_deref()
                ),
                (kind, group, ns, name),
                "{text}"
            );
            assert_eq!(s.to_string(), text);
        }
        for bad in [
            "",
            "servicemonitor",
            "Widget.",
            ".example.com",
            "W/",
            "W//x",
            "W/a/b/c",
            "Wid-get",
        ] {
            assert!(Selector::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_most_specific_match_wins() {
        let o = |key: &str, when: ReadyWhen| Override {
            selector: sel(key),
            ready_when: when,
            from: String::new(),
        };
        let overrides = Overrides(vec![
            o("Widget", ReadyWhen::Exists),
            o("Widget.example.com", ReadyWhen::Condition("Synced".into())),
            o("Widget/special", ReadyWhen::Condition("Ready".into())),
            o("Widget.example.com/ns2/special", ReadyWhen::Exists),
        ]);
        let find = |group, ns, name| {
            overrides
                .find(group, "Widget", ns, name)
                .map(|o| &o.ready_when)
        };
        assert_eq!(find("other.io", Some("ns"), "w"), Some(&ReadyWhen::Exists));
        assert_eq!(
            find("example.com", Some("ns"), "w"),
            Some(&ReadyWhen::Condition("Synced".into()))
        );
        assert_eq!(
            find("example.com", Some("ns"), "special"),
            Some(&ReadyWhen::Condition("Ready".into()))
        );
        assert_eq!(
            find("example.com", Some("ns2"), "special"),
            Some(&ReadyWhen::Exists)
        );
        assert_eq!(overrides.find("example.com", "Gadget", None, "w"), None);
    }

    #[test]
    fn a_more_deliberate_level_keeps_its_keys() {
        let o = |key: &str, when: ReadyWhen| Override {
            selector: sel(key),
            ready_when: when,
            from: key.into(),
        };
        let component = Overrides(vec![o("Widget", ReadyWhen::Condition("Synced".into()))]);
        let file = Overrides(vec![
            o("Widget", ReadyWhen::Exists),
            o("ServiceMonitor", ReadyWhen::Exists),
        ]);
        let merged = component.then(&file);
        assert_eq!(merged.0.len(), 2);
        assert_eq!(
            merged
                .find("example.com", "Widget", None, "w")
                .unwrap()
                .ready_when,
            ReadyWhen::Condition("Synced".into())
        );
    }
}
