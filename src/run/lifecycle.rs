//! The order of a run's last steps, and how it reacts to interrupts.
//!
//! The order is fixed (SPEC §6): suites → gather → anything that disturbs
//! the cluster (post-suite hooks such as coverage collection, teardown).
//! Gather comes first because everything after it changes what it would see;
//! it has its own time budget, separate from the suites' and from any
//! cancellation. These decisions are pure functions here; `app` carries
//! them out.

use std::time::Duration;

use crate::report::Notice;

/// When to collect a must-gather bundle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GatherWhen {
    Always,
    #[default]
    OnFailure,
    Never,
}

/// The legacy "keep the cluster" variables accepted as aliases of `--preserve`.
pub const PRESERVE_ALIASES: [&str; 3] = ["KEEP_CLUSTER", "PRESERVE_E2E_CLUSTER", "SKIP_CLEANUP"];

/// Whether to keep the cluster, and the notices to print about how that was decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preserve {
    pub preserve: bool,
    pub notices: Vec<Notice>,
}

fn truthy(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "y" | "on" => Some(true),
        "" | "0" | "false" | "no" | "n" | "off" => Some(false),
        _ => None,
    }
}

/// `--preserve`, or one of the legacy variables set to a true value.
pub fn preserve(flag: bool, env: impl Fn(&str) -> Option<String>) -> Preserve {
    let mut preserve = flag;
    let mut notices = Vec::new();
    for name in PRESERVE_ALIASES {
        let Some(value) = env(name) else { continue };
        let alias = |understood| Notice::PreserveAlias {
            name: name.to_owned(),
            value: value.clone(),
            understood,
        };
        match truthy(&value) {
            Some(true) => {
                preserve = true;
                notices.push(alias(true));
            }
            Some(false) => {}
            None => notices.push(alias(false)),
        }
    }
    Preserve { preserve, notices }
}

/// What `up` says about `--preserve` or an alias: one notice, since `up`
/// always keeps the cluster; `None` when neither was given.
pub fn up_preserve_notice(flag: bool, env: impl Fn(&str) -> Option<String>) -> Option<Notice> {
    let mut given: Vec<String> = Vec::new();
    if flag {
        given.push("--preserve".into());
    }
    for name in PRESERVE_ALIASES {
        if env(name).as_deref().and_then(truthy) == Some(true) {
            given.push(name.to_owned());
        }
    }
    (!given.is_empty()).then_some(Notice::PreserveChangesNothing { given })
}

/// Whether to gather after the suites.
pub fn should_gather(when: GatherWhen, failed: bool, interrupted: bool) -> bool {
    match when {
        GatherWhen::Always => true,
        GatherWhen::OnFailure => failed || interrupted,
        GatherWhen::Never => false,
    }
}

/// One of the closing steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Gather,
    /// Post-suite hooks that disturb the cluster (e.g. coverage scale-down).
    Hooks,
    Teardown,
}

impl Step {
    /// Its name in the run's record and messages.
    pub fn name(self) -> &'static str {
        match self {
            Step::Gather => "gather",
            Step::Hooks => "hooks",
            Step::Teardown => "teardown",
        }
    }
}

/// The closing steps in their fixed order. A preserved cluster is gathered
/// but never disturbed: no hooks that scale it down, no teardown.
pub fn closing_steps(gather: bool, preserve: bool, has_hooks: bool) -> Vec<Step> {
    let mut steps = Vec::new();
    if gather {
        steps.push(Step::Gather);
    }
    if !preserve {
        if has_hooks {
            steps.push(Step::Hooks);
        }
        steps.push(Step::Teardown);
    }
    steps
}

/// What an interrupt (SIGINT or SIGTERM) means at this point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnInterrupt {
    /// Stop the suites, then gather and tear down as usual.
    Wind,
    /// The second interrupt: skip what is left of gather, go to teardown.
    SkipToTeardown,
    /// A third: the user insists; leave now.
    Abandon,
}

/// The reaction to the `n`-th interrupt (1-based).
pub fn on_interrupt(n: u32) -> OnInterrupt {
    match n {
        0 | 1 => OnInterrupt::Wind,
        2 => OnInterrupt::SkipToTeardown,
        _ => OnInterrupt::Abandon,
    }
}

/// What the `n`-th interrupt does, as the run announces it.
pub fn interrupt_notice(n: u32, preserve: bool) -> Notice {
    Notice::Interrupted { count: n, preserve }
}

pub use crate::stage::GATHER_BUDGET;

/// How long the suites may run so that gather and what follows it still fit
/// before `--deadline`: the remaining time less the gather budget and an
/// allowance for the rest (post-suite hooks and teardown). `None` when there is no deadline. The gather budget is never
/// cut below a minute: a bundle is the point of a failed CI run.
pub fn suite_budget(
    remaining: Option<Duration>,
    gather: Duration,
    teardown: Duration,
) -> Option<Duration> {
    remaining.map(|r| r.saturating_sub(gather.max(Duration::from_secs(60)) + teardown))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn preserve_flag_and_aliases() {
        assert_eq!(
            preserve(true, env(&[])),
            Preserve {
                preserve: true,
                notices: vec![]
            }
        );
        assert_eq!(
            preserve(false, env(&[])),
            Preserve {
                preserve: false,
                notices: vec![]
            }
        );
        for alias in PRESERVE_ALIASES {
            let p = preserve(false, env(&[(alias, "true")]));
            assert!(p.preserve, "{alias}");
            assert_eq!(p.notices.len(), 1);
            assert!(p.notices[0].to_string().starts_with(&format!(
                "{alias}=true is accepted as an alias of --preserve"
            )));
        }
        assert!(!preserve(false, env(&[("KEEP_CLUSTER", "0")])).preserve);
        let odd = preserve(false, env(&[("SKIP_CLEANUP", "maybe")]));
        assert!(!odd.preserve);
        assert!(odd.notices[0].to_string().contains("was ignored"));
    }

    #[test]
    fn up_says_once_that_preserve_changes_nothing() {
        assert_eq!(up_preserve_notice(false, env(&[])), None);
        assert_eq!(
            up_preserve_notice(false, env(&[("KEEP_CLUSTER", "0")])),
            None
        );
        assert_eq!(
            up_preserve_notice(true, env(&[]))
                .map(|n| n.to_string())
                .as_deref(),
            Some(
                "--preserve changes nothing for `harness up`: up always keeps the cluster (`harness down` deletes it)"
            )
        );
        let both = up_preserve_notice(true, env(&[("PRESERVE_E2E_CLUSTER", "yes")]))
            .unwrap()
            .to_string();
        assert!(
            both.starts_with("--preserve and PRESERVE_E2E_CLUSTER change nothing"),
            "{both}"
        );
    }

    #[test]
    fn gather_decision_table() {
        use GatherWhen::*;
        let cases = [
            (Always, false, false, true),
            (OnFailure, false, false, false),
            (OnFailure, true, false, true),
            (OnFailure, false, true, true),
            (Never, true, true, false),
        ];
        for (when, failed, interrupted, want) in cases {
            assert_eq!(
                should_gather(when, failed, interrupted),
                want,
                "{when:?} {failed} {interrupted}"
            );
        }
    }

    #[test]
    fn gather_always_comes_before_anything_that_disturbs_the_cluster() {
        assert_eq!(
            closing_steps(true, false, true),
            vec![Step::Gather, Step::Hooks, Step::Teardown]
        );
        assert_eq!(closing_steps(false, false, false), vec![Step::Teardown]);
        // Preserved: gathered, never scaled down or deleted.
        assert_eq!(closing_steps(true, true, true), vec![Step::Gather]);
    }

    #[test]
    fn interrupts_escalate() {
        assert_eq!(on_interrupt(1), OnInterrupt::Wind);
        assert_eq!(on_interrupt(2), OnInterrupt::SkipToTeardown);
        assert_eq!(on_interrupt(3), OnInterrupt::Abandon);
    }

    #[test]
    fn each_interrupt_says_what_it_does() {
        let say = |n, preserve| interrupt_notice(n, preserve).to_string();
        assert!(say(1, false).contains("then gather; teardown follows"));
        assert!(say(1, true).contains("the cluster is preserved"));
        assert!(say(2, false).starts_with("interrupted again: skipping"));
        assert!(say(3, false).contains("leaving now"));
        assert_eq!(say(4, false), say(3, false));
    }

    #[test]
    fn suites_leave_room_for_gather_and_teardown() {
        let m = |s: u64| Duration::from_secs(s * 60);
        assert_eq!(suite_budget(Some(m(55)), m(5), m(2)), Some(m(48)));
        assert_eq!(suite_budget(Some(m(3)), m(5), m(2)), Some(Duration::ZERO));
        assert_eq!(
            suite_budget(Some(m(10)), Duration::from_secs(10), m(1)),
            Some(m(8)),
            "gather keeps a minute"
        );
        assert_eq!(suite_budget(None, m(5), m(2)), None);
    }
}
