//! Notices: what a run says along the way that is neither a phase, a
//! result nor an artifact — an image reused, a wave started, an interrupt
//! heard, a namespace deleted.
//!
//! Stages emit each as typed data ([`Notice`]); the words are made here, in
//! its `Display`, and only when a sink shows it: the plain line, the
//! report's notices, and the `message` member of its JSON form, written
//! beside the typed `notice` member so tools read fields and people read
//! sentences. A run recorded before notices were typed replays as
//! [`Notice::Text`].

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One thing worth saying that is not a phase, a result or an artifact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Notice {
    /// One preflight check, as it came out.
    PreflightCheck {
        check: String,
        /// `ok`, `FAIL` or `skip`.
        status: String,
        summary: String,
        fix: Option<String>,
    },
    /// `up` found the cluster an earlier `up` recorded and uses it.
    ClusterReused {
        cluster: String,
        lane: String,
        /// `up` created it, so `harness down` deletes it.
        ours: bool,
    },
    /// `harness test` runs on the environment `harness up` left.
    EnvironmentUsed { lane: String, cluster: String },
    /// Teardown leaves the environment that was up before the run.
    EnvironmentKept { lane: String },
    /// Teardown left a cluster harness did not create, deleting only what
    /// the run created in it.
    ClusterLeftRunning {
        cluster: String,
        /// What the run had created there and teardown deleted.
        deleted: Vec<String>,
    },
    /// `down` found nothing up for the lane.
    NothingUp {
        lane: String,
        /// `down --gather`: nothing to gather either.
        gather: bool,
        /// A kind cluster of the lane's name that exists although `up`
        /// did not record making it.
        stray_kind_cluster: Option<String>,
    },
    /// A host build started.
    HostBuildStarted {
        name: String,
        command: String,
        log: PathBuf,
    },
    /// A deploy wave started.
    WaveStarted {
        wave: usize,
        components: Vec<String>,
    },
    /// A component's health URL answered.
    Healthy { component: String, url: String },
    /// A component's readiness did not hold through its settle window.
    Unsettled { component: String, what: String },
    /// A watch of a component keeps failing.
    WatchFailing { component: String, message: String },
    /// An object of a kind in `exclude_unserved:` was left out: the cluster
    /// does not serve its apiVersion.
    LeftOut {
        component: String,
        /// `Kind (apiVersion)`.
        object: String,
    },
    /// A node could not import an archive of only the image blobs it
    /// lacked, and is sent the engine's whole export instead.
    LoadSentWhole {
        node: String,
        /// The images of the export (lane file names).
        images: Vec<String>,
        /// The importer's (or the layout's) words.
        why: String,
    },
    /// Something worth knowing about an object that does not keep its
    /// component from being Ready (a budget that refuses every eviction, a
    /// quota used up, an autoscaler without metrics).
    Noted {
        component: String,
        /// `Kind/namespace/name`.
        object: String,
        note: String,
    },
    /// A suite (or a post-suite hook) is being stopped.
    Stopping {
        /// `suite` or `hook`.
        what: String,
        name: String,
        /// `Timeout` or `Cancelled`.
        reason: String,
    },
    /// A suite namespace was deleted after the run (or could not be).
    SuiteNamespaceDeleted {
        namespace: String,
        error: Option<String>,
    },
    /// The post-suite hooks were not run: the cluster is kept.
    HooksSkipped {
        hooks: Vec<String>,
        /// The environment was up before the run (else `--preserve`).
        up_before: bool,
    },
    /// A legacy "keep the cluster" variable was read.
    PreserveAlias {
        name: String,
        value: String,
        /// It was a yes/no value (and so counted); else it was ignored.
        understood: bool,
    },
    /// `--preserve` (or an alias) given to `up`, which always keeps the cluster.
    PreserveChangesNothing { given: Vec<String> },
    /// An interrupt was heard during a run: what it will do.
    Interrupted {
        /// Which interrupt (1-based).
        count: u32,
        /// The cluster is preserved (else teardown follows).
        preserve: bool,
    },
    /// An interrupt was heard during `up`.
    UpInterrupted,
    /// A step failed and no phase told it.
    StepFailed {
        step: String,
        error: String,
        fix: Option<String>,
    },
    /// harness panicked in a task no stage awaited; the run went on.
    Panicked { panic: String, thread: String },
    /// Teardown panicked, so the cluster may still exist.
    ClusterMayRemain { cluster: String, lane: String },
    /// The live output panicked and stopped; the report is complete.
    LiveOutputStopped,
    /// A notice from a run recorded before notices were typed: its words.
    Text { message: String },
}

impl Notice {
    /// A notice that is only words (tests, and runs recorded before
    /// notices were typed).
    pub fn text(message: impl Into<String>) -> Self {
        Notice::Text {
            message: message.into(),
        }
    }
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::PreflightCheck {
                check,
                status,
                summary,
                fix: Some(fix),
            } => write!(f, "preflight {check}: {status}: {summary}; fix: {fix}"),
            Notice::PreflightCheck {
                check,
                status,
                summary,
                fix: None,
            } => write!(f, "preflight {check}: {status}: {summary}"),
            Notice::ClusterReused {
                cluster,
                lane,
                ours: true,
            } => write!(
                f,
                "reusing cluster {cluster}, which harness up created for lane {lane} (harness down deletes it)"
            ),
            Notice::ClusterReused {
                cluster,
                ours: false,
                ..
            } => write!(
                f,
                "reusing cluster {cluster}, which harness did not create (harness down leaves it running)"
            ),
            Notice::EnvironmentUsed { lane, cluster } => write!(
                f,
                "using the environment harness up made for lane {lane} (cluster {cluster})"
            ),
            Notice::EnvironmentKept { lane } => write!(
                f,
                "the environment of lane {lane} was up before this run; leaving it as it is"
            ),
            Notice::ClusterLeftRunning { cluster, deleted } => {
                write!(
                    f,
                    "cluster {cluster} was not created by harness; leaving it running"
                )?;
                if !deleted.is_empty() {
                    write!(
                        f,
                        ", and deleted what the run created in it: {}",
                        deleted.join(", ")
                    )?;
                }
                Ok(())
            }
            Notice::NothingUp {
                lane,
                gather,
                stray_kind_cluster,
            } => {
                let what = if *gather {
                    "nothing to gather or tear down"
                } else {
                    "nothing to tear down"
                };
                write!(f, "nothing is up for lane {lane} (no state file): {what}")?;
                if let Some(cluster) = stray_kind_cluster {
                    write!(
                        f,
                        "; a kind cluster named {cluster} exists, but harness up did not record making it: `kind delete cluster --name {cluster}` deletes it if it is yours"
                    )?;
                }
                Ok(())
            }
            Notice::HostBuildStarted { name, command, log } => write!(
                f,
                "host build {name}: running `{command}` (log {})",
                log.display()
            ),
            Notice::WaveStarted { wave, components } => {
                write!(f, "deploy wave {wave}: {}", components.join(", "))
            }
            Notice::Healthy { component, url } => write!(f, "{component} healthy at {url}"),
            Notice::Unsettled { component, what } => {
                write!(f, "{component}: readiness did not hold: {what}")
            }
            Notice::WatchFailing { component, message } => write!(f, "{component}: {message}"),
            Notice::Noted {
                component,
                object,
                note,
            } => write!(f, "{component}: {object}: {note}"),
            Notice::LeftOut { component, object } => write!(
                f,
                "{component}: left out {object}: the cluster does not serve it (exclude_unserved)"
            ),
            Notice::LoadSentWhole { node, images, why } => write!(
                f,
                "{node}: sending the whole export of {} after all: an archive of only the blobs it lacks failed: {why}",
                images.join(", ")
            ),
            Notice::Stopping { what, name, reason } => write!(
                f,
                "stopping {what} {name} ({reason}): SIGTERM sent to its process group"
            ),
            Notice::SuiteNamespaceDeleted {
                namespace,
                error: None,
            } => write!(f, "deleted suite namespace {namespace}"),
            Notice::SuiteNamespaceDeleted {
                namespace,
                error: Some(error),
            } => write!(f, "suite namespace {namespace} was not deleted: {error}"),
            Notice::HooksSkipped { hooks, up_before } => {
                let why = if *up_before {
                    "the environment was up before this run and is left as it is"
                } else {
                    "the cluster is preserved (--preserve)"
                };
                write!(
                    f,
                    "post-suite hooks skipped ({}): {why}, and hooks may disturb it; run them by hand when you are done with it",
                    hooks.join(", ")
                )
            }
            Notice::PreserveAlias {
                name,
                value,
                understood: true,
            } => write!(
                f,
                "{name}={value} is accepted as an alias of --preserve; prefer --preserve"
            ),
            Notice::PreserveAlias {
                name,
                value,
                understood: false,
            } => write!(
                f,
                "{name}={value} is not a yes/no value and was ignored; use --preserve to keep the cluster"
            ),
            Notice::PreserveChangesNothing { given } => {
                let verb = if given.len() == 1 { "changes" } else { "change" };
                write!(
                    f,
                    "{} {verb} nothing for `harness up`: up always keeps the cluster (`harness down` deletes it)",
                    given.join(" and ")
                )
            }
            Notice::Interrupted { count, preserve } => {
                let last = if *preserve {
                    "the cluster is preserved"
                } else {
                    "teardown follows"
                };
                match count {
                    0 | 1 => write!(
                        f,
                        "interrupted: stopping what runs now, then gather; {last} (interrupt again to skip to teardown)"
                    ),
                    2 => write!(
                        f,
                        "interrupted again: skipping what is left of gather; {last} (a third interrupt leaves at once)"
                    ),
                    _ => f.write_str(
                        "interrupted a third time: leaving now; whatever the run created may still be running (`harness down` removes it)",
                    ),
                }
            }
            Notice::UpInterrupted => f.write_str(
                "interrupted: stopping; what `up` made so far stays (`harness down` removes it)",
            ),
            Notice::StepFailed {
                step,
                error,
                fix: Some(fix),
            } => write!(f, "{step}: {error}; fix: {fix}"),
            Notice::StepFailed {
                step,
                error,
                fix: None,
            } => write!(f, "{step}: {error}"),
            Notice::Panicked { panic, thread } => write!(
                f,
                "{panic} [thread {thread}]; the run went on without that task"
            ),
            Notice::ClusterMayRemain { cluster, lane } => write!(
                f,
                "cluster {cluster} may still exist (teardown panicked before it finished): `harness down --lane {lane}` deletes it"
            ),
            Notice::LiveOutputStopped => f.write_str(
                "the live output stopped after a panic (a bug in harness); the report below is complete",
            ),
            Notice::Text { message } => f.write_str(message),
        }
    }
}

/// How [`super::Event::Notice`] writes a notice: its fields under
/// `notice`, its words under `message`. Runs recorded before notices were
/// typed have only `message`, and read back as [`Notice::Text`].
pub mod wire {
    use super::Notice;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize)]
    struct Out<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        notice: Option<&'a Notice>,
        message: String,
    }

    #[derive(Deserialize)]
    struct In {
        #[serde(default)]
        notice: Option<Notice>,
        message: String,
    }

    pub fn serialize<S: Serializer>(notice: &Notice, serializer: S) -> Result<S::Ok, S::Error> {
        let typed = !matches!(notice, Notice::Text { .. });
        Out {
            notice: typed.then_some(notice),
            message: notice.to_string(),
        }
        .serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Notice, D::Error> {
        let wire = In::deserialize(deserializer)?;
        Ok(wire.notice.unwrap_or(Notice::Text {
            message: wire.message,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_is_written_with_its_fields_and_its_words() {
        let notice = Notice::ClusterReused {
            cluster: "audit-e2e".into(),
            lane: "audit".into(),
            ours: true,
        };
        let event = super::super::Event::Notice {
            notice: notice.clone(),
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["event"], "notice");
        assert_eq!(json["notice"]["kind"], "cluster_reused");
        assert_eq!(json["notice"]["cluster"], "audit-e2e");
        assert_eq!(json["notice"]["ours"], true);
        assert_eq!(
            json["message"],
            "reusing cluster audit-e2e, which harness up created for lane audit (harness down deletes it)"
        );
        let back: super::super::Event = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn a_node_sent_the_whole_export_is_told_with_the_importers_words() {
        let notice = Notice::LoadSentWhole {
            node: "audit-e2e-control-plane".into(),
            images: vec!["postgres".into(), "redis".into()],
            why: "`ctr import` exited 1: content digest sha256:ab: not found".into(),
        };
        assert_eq!(
            notice.to_string(),
            "audit-e2e-control-plane: sending the whole export of postgres, redis after all: \
             an archive of only the blobs it lacks failed: `ctr import` exited 1: content digest sha256:ab: not found"
        );
        let json = serde_json::to_value(&notice).unwrap();
        assert_eq!(json["kind"], "load_sent_whole");
        assert_eq!(json["images"][1], "redis");
    }

    #[test]
    fn a_notice_recorded_before_notices_were_typed_reads_as_its_words() {
        let old =
            serde_json::json!({"event": "notice", "message": "deploy wave 1: postgresql, redis"});
        let super::super::Event::Notice { notice } = serde_json::from_value(old).unwrap() else {
            panic!("not a notice")
        };
        assert_eq!(
            notice,
            Notice::Text {
                message: "deploy wave 1: postgresql, redis".into()
            }
        );
        assert_eq!(notice.to_string(), "deploy wave 1: postgresql, redis");
    }
}
