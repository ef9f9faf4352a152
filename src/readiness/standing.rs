//! Where a component stands: live, while it deploys (for the progress
//! frame), and when its wave is judged (for the report). The deploy makes
//! these; the report shows them. Plain data, so both stand on it without
//! standing on each other.

use serde::{Deserialize, Serialize};

use super::Timestamp;

/// Where a component stands when its wave failed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// Ready (and it held).
    Ready,
    /// A verdict says it will not become Ready.
    Doomed,
    /// It was Ready, then a verdict came before the suites started.
    DoomedAfterReady,
    /// Its deadline ran out.
    TimedOut,
    /// Still on its way when its wave was stopped.
    #[default]
    InProgress,
    /// It could not be deployed at all (manifests, apply, health URL).
    Failed,
}

impl Standing {
    /// In words, after the component's name.
    pub fn describe(self) -> &'static str {
        match self {
            Standing::Ready => "Ready",
            Standing::Doomed => "will not become Ready",
            Standing::DoomedAfterReady => "was Ready, then went down",
            Standing::TimedOut => "not Ready by its deadline",
            Standing::InProgress => "still in progress",
            Standing::Failed => "could not be deployed",
        }
    }
}

/// Where a component of the current wave stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveState {
    /// Pods Ready, of those its workloads want (`None` without workloads:
    /// CRDs, ConfigMaps, a Job's finish).
    pub pods: Option<(usize, usize)>,
    pub stand: Stand,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stand {
    /// Not Ready yet: why, and since when the step began.
    Waiting {
        why: String,
        since: Option<Timestamp>,
    },
    /// Ready; counts once that has held until `until`.
    Settling { until: Timestamp },
    /// Will not become Ready: the verdict's name and its facts.
    Doomed { verdict: String, message: String },
}

impl LiveState {
    /// Whether it should be shown at once, whatever was shown just before.
    pub fn urgent(&self) -> bool {
        matches!(self.stand, Stand::Doomed { .. } | Stand::Settling { .. })
    }

    /// Waiting on something other than the objects (a health URL).
    pub fn waiting(pods: Option<(usize, usize)>, why: String, since: Timestamp) -> Self {
        Self {
            pods,
            stand: Stand::Waiting {
                why,
                since: Some(since),
            },
        }
    }
}
