//! Post-suite hooks (`after_suites:` in a lane): commands that run on the
//! host after the suites and gather, before teardown.
//!
//! They exist for work that disturbs the cluster — coverage collection that
//! scales the service under test to zero so it flushes its counters,
//! exporting state, draining queues — and so must come after gather (which
//! has to see the cluster as the suites left it [coverage collection once
//! scaled the service under test to zero before its logs were gathered]) and
//! never run on a preserved cluster. The order is the pipeline's
//! ([`crate::run::lifecycle::closing_steps`]); this module says what a hook is
//! given and how its result is judged. A hook runs exactly like a suite —
//! through [`crate::suites::runner`], in its own process group, stdin null,
//! timeout → SIGTERM → grace → SIGKILL of the group, output logged and
//! streamed as [`SuiteEvent`]s — but without a namespace, one after the
//! other in the order written. A failing hook does not stop the ones after
//! it (each is reported; put dependent steps in one script), nor teardown.
//! The environment and the verdict are pure functions; [`run`] is the shell.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::config::Hook;
use crate::exit::Exit;
use crate::failure::{Failure, StageFailure};
use crate::report::{Event, Notice};
use crate::stage::Ctx;
use crate::suites::env::EndpointCollision;
use crate::suites::{CancelToken, Outcome, SuiteCommand, SuiteEvent, SuiteResult, run_suite};

/// The lane being run (also what `harness --lane` falls back to, so a hook
/// that calls `harness status` or `harness diagnose` acts on the same lane).
pub const HARNESS_LANE: &str = "HARNESS_LANE";
/// The lane file (what `harness --config` falls back to).
pub const HARNESS_CONFIG: &str = "HARNESS_CONFIG";
/// How the suites ended: `passed`, `failed` or `not-run` (up failed), so a
/// hook can decide whether its work means anything. (An interrupted run
/// runs no hooks.)
pub const HARNESS_SUITES: &str = "HARNESS_SUITES";

pub use crate::config::is_reserved_variable;

/// How the suites of the run ended, as hooks are told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SuitesOutcome {
    Passed,
    Failed,
    NotRun,
}

impl SuitesOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            SuitesOutcome::Passed => "passed",
            SuitesOutcome::Failed => "failed",
            SuitesOutcome::NotRun => "not-run",
        }
    }
}

/// What every hook of a run is told, and where its files go.
#[derive(Clone, Debug)]
pub struct HookContext {
    pub lane: String,
    pub run_id: String,
    /// The lane file.
    pub config_file: PathBuf,
    pub kubeconfig: PathBuf,
    /// Component name → endpoint URL in this lane.
    pub endpoints: BTreeMap<String, String>,
    pub suites: SuitesOutcome,
    /// `.harness/runs/<run>/hooks/`: `<name>.log` and `<name>/` per hook.
    pub dir: PathBuf,
    /// Time between SIGTERM and SIGKILL when a hook runs past its timeout.
    pub grace: Duration,
}

/// The log file of hook `name`.
pub fn log_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.log"))
}

/// The variables a hook runs with: its own `env:`, then the harness's
/// contract (`KUBECONFIG`, `HARNESS_LANE`, `HARNESS_RUN_ID`,
/// `HARNESS_CONFIG`, `HARNESS_SUITES`, `HARNESS_ARTIFACTS`,
/// `HARNESS_ENDPOINT_<COMPONENT>`), which wins (validation already refuses
/// an `env:` that names one of them).
pub fn hook_env(
    hook: &Hook,
    ctx: &HookContext,
) -> Result<BTreeMap<String, OsString>, EndpointCollision> {
    let mut vars: BTreeMap<String, OsString> = hook
        .env
        .iter()
        .map(|(k, v)| (k.clone(), OsString::from(v)))
        .collect();
    // The suites' endpoint variables, computed the same way (and refused the
    // same way when two components would share one).
    let contract = crate::suites::suite_env(&crate::suites::SuiteEnv {
        kubeconfig: ctx.kubeconfig.clone(),
        namespace: String::new(),
        run_id: ctx.run_id.clone(),
        process: 1,
        artifacts: ctx.dir.join(&hook.name),
        endpoints: ctx.endpoints.clone(),
    })?;
    for (k, v) in contract {
        // A hook has no namespace and no parallel slot.
        if k == crate::suites::env::HARNESS_NAMESPACE || k == crate::suites::env::HARNESS_PROCESS {
            continue;
        }
        vars.insert(k, v);
    }
    vars.insert(HARNESS_LANE.into(), ctx.lane.clone().into());
    vars.insert(HARNESS_CONFIG.into(), ctx.config_file.clone().into());
    vars.insert(HARNESS_SUITES.into(), ctx.suites.as_str().into());
    Ok(vars)
}

/// The runner's command for one hook.
pub fn command(hook: &Hook, ctx: &HookContext) -> Result<SuiteCommand, EndpointCollision> {
    let (program, args) = hook
        .command
        .split_first()
        .map(|(p, a)| (p.clone(), a.to_vec()))
        .unwrap_or_default();
    Ok(SuiteCommand {
        name: hook.name.clone(),
        program: program.into(),
        args: args.into_iter().map(OsString::from).collect(),
        env: hook_env(hook, ctx)?,
        cwd: hook.workdir.clone(),
        timeout: hook.timeout,
        grace: ctx.grace,
        log_path: log_path(&ctx.dir, &hook.name),
        artifacts_dir: ctx.dir.join(&hook.name),
        process: 1,
        namespace: None,
    })
}

/// The most the hooks can take, each to its timeout and the stop after it
/// (TERM, a grace, KILL, and a grace for the pipes to close), with a margin:
/// the pipeline's budget for the step, so that each hook's own timeout
/// always fires first.
pub fn budget(hooks: &[Hook], grace: Duration) -> Duration {
    hooks
        .iter()
        .map(|h| h.timeout.saturating_add(grace.saturating_mul(4)))
        .fold(Duration::from_secs(30), Duration::saturating_add)
}

/// Runs the hooks one after the other, in order, each to its end (a failing
/// hook does not stop the next). Events for each go to `events`; the results
/// come back in order. Fails only when the hooks cannot be given their
/// environment at all.
pub async fn run(
    hooks: &[Hook],
    ctx: &HookContext,
    events: mpsc::Sender<SuiteEvent>,
) -> Result<Vec<SuiteResult>, EndpointCollision> {
    let commands = hooks
        .iter()
        .map(|h| command(h, ctx))
        .collect::<Result<Vec<_>, _>>()?;
    let mut results = Vec::with_capacity(commands.len());
    // No cancellation: an interrupt drops this future, and the runner's
    // group guard then kills the running hook's process group.
    let never = CancelToken::never();
    for cmd in &commands {
        results.push(run_suite(cmd, &events, &never).await);
    }
    Ok(results)
}

/// One hook that did not pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedHook {
    pub name: String,
    pub outcome: String,
    pub log: PathBuf,
}

/// Hooks that failed, timed out or could not start.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{}", describe(.0))]
pub struct HooksFailed(pub Vec<FailedHook>);

fn describe(failed: &[FailedHook]) -> String {
    let each: Vec<String> = failed
        .iter()
        .map(|f| format!("`{}` {} (log: {})", f.name, f.outcome, f.log.display()))
        .collect();
    let noun = if failed.len() == 1 { "hook" } else { "hooks" };
    format!("post-suite {noun} failed: {}", each.join("; "))
}

/// The user's own commands failed, as a suite fails (1).
impl Failure for HooksFailed {
    fn exit(&self) -> Exit {
        Exit::SuitesFailed
    }

    /// The message names each hook's log.
    fn fix(&self) -> Option<String> {
        None
    }
}

/// Two components whose endpoints would share one variable: the lane file
/// must rename one (2).
impl Failure for EndpointCollision {
    fn exit(&self) -> Exit {
        Exit::Usage
    }

    /// The message says to rename one.
    fn fix(&self) -> Option<String> {
        None
    }
}

/// The verdict on a run of hooks: `Err` names every hook that did not pass.
pub fn verdict(results: &[SuiteResult]) -> Result<(), HooksFailed> {
    let failed: Vec<FailedHook> = results
        .iter()
        .filter(|r| !matches!(r.outcome, Outcome::Passed))
        .map(|r| FailedHook {
            name: r.name.clone(),
            outcome: r.outcome.describe(),
            log: r.log_path.clone(),
        })
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(HooksFailed(failed))
    }
}

/// Why a lane's hooks did not run: the cluster is kept as it is.
/// `up_before` when the environment was up before this run (`harness up`),
/// else `--preserve` (or an alias) asked for it.
pub fn skipped_notice(hooks: &[Hook], up_before: bool) -> Notice {
    Notice::HooksSkipped {
        hooks: hooks.iter().map(|h| h.name.clone()).collect(),
        up_before,
    }
}

// ------------------------------------------------------------------ in a run

/// Time a hook has between SIGTERM and SIGKILL, as suites have.
pub const HOOK_GRACE: Duration = Duration::from_secs(10);

/// What the lane's hooks are told in this run; their files go to
/// `<run_dir>/hooks/`.
pub fn hook_context(ctx: &Ctx<'_>, kubeconfig: PathBuf, suites: SuitesOutcome) -> HookContext {
    HookContext {
        lane: ctx.lane.name.clone(),
        run_id: ctx.run_id.clone(),
        config_file: ctx.project.file.clone(),
        kubeconfig,
        endpoints: crate::suites::stage::endpoints(ctx.project, ctx.lane),
        suites,
        dir: ctx.run_dir().join("hooks"),
        grace: HOOK_GRACE,
    }
}

/// Runs post-suite hooks in order as the `hooks` phase, reporting each on
/// the bus. A hook that fails, times out or cannot start fails the step
/// with exit 1 (like a suite: the user's own command failed), after every
/// hook has run; the pipeline still tears down, and keeps an earlier
/// failure's exit code.
pub async fn run_hooks(ctx: &Ctx<'_>, context: &HookContext) -> Result<(), StageFailure> {
    let (hooks, bus) = (&ctx.lane.after_suites, &ctx.bus);
    let (tx, mut rx) = mpsc::channel(256);
    let forward = {
        let bus = bus.clone();
        tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                let event = match event {
                    SuiteEvent::Started {
                        suite, log_path, ..
                    } => Event::HookStarted {
                        hook: suite,
                        log: log_path,
                    },
                    SuiteEvent::Output { suite, line, .. } => {
                        Event::HookOutput { hook: suite, line }
                    }
                    SuiteEvent::Stopping { suite, reason } => Event::Notice {
                        notice: Notice::Stopping {
                            what: "hook".into(),
                            name: suite,
                            reason: format!("{reason:?}"),
                        },
                    },
                    SuiteEvent::Finished(result) => Event::HookFinished {
                        ok: !result.outcome.is_failure(),
                        outcome: result.outcome.describe(),
                        seconds: result.duration.as_secs_f64(),
                        log: result.log_path,
                        hook: result.name,
                    },
                };
                bus.emit(event);
            }
        })
    };
    let result = crate::report::phase::phase(bus, crate::report::Phase::Hooks, async {
        let results = run(hooks, context, tx).await?;
        Ok::<_, StageFailure>(verdict(&results)?)
    })
    .await;
    let _ = forward.await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suites::Exit as ProcessExit;
    use indexmap::IndexMap;

    fn hook(name: &str, env: &[(&str, &str)]) -> Hook {
        Hook {
            name: name.into(),
            command: vec!["sh".into(), "-c".into(), "true".into()],
            timeout: Duration::from_secs(60),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<IndexMap<_, _>>(),
            workdir: "/project".into(),
        }
    }

    fn ctx() -> HookContext {
        HookContext {
            lane: "audit".into(),
            run_id: "r-1a2b3c4d".into(),
            config_file: "/project/harness.yaml".into(),
            kubeconfig: "/home/ci/.kube/audit-e2e-config".into(),
            endpoints: BTreeMap::from([("datastorage".into(), "http://localhost:28090".into())]),
            suites: SuitesOutcome::Failed,
            dir: "/project/.harness/runs/r-1a2b3c4d/hooks".into(),
            grace: Duration::from_secs(10),
        }
    }

    #[test]
    fn hooks_get_the_contract_and_their_own_env() {
        let vars = hook_env(&hook("coverage", &[("GOCOVERDIR", "/tmp/cov")]), &ctx()).unwrap();
        let expected: BTreeMap<String, OsString> = [
            ("GOCOVERDIR", "/tmp/cov"),
            ("KUBECONFIG", "/home/ci/.kube/audit-e2e-config"),
            ("HARNESS_LANE", "audit"),
            ("HARNESS_RUN_ID", "r-1a2b3c4d"),
            ("HARNESS_CONFIG", "/project/harness.yaml"),
            ("HARNESS_SUITES", "failed"),
            (
                "HARNESS_ARTIFACTS",
                "/project/.harness/runs/r-1a2b3c4d/hooks/coverage",
            ),
            ("HARNESS_ENDPOINT_DATASTORAGE", "http://localhost:28090"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.into()))
        .collect();
        assert_eq!(vars, expected);
    }

    #[test]
    fn the_contract_wins_over_a_hooks_env() {
        // Validation refuses this; the runner still never lets it through.
        let vars = hook_env(&hook("h", &[("KUBECONFIG", "/elsewhere")]), &ctx()).unwrap();
        assert_eq!(vars["KUBECONFIG"], "/home/ci/.kube/audit-e2e-config");
    }

    #[test]
    fn reserved_variables() {
        for (name, reserved) in [
            ("KUBECONFIG", true),
            ("HARNESS_LANE", true),
            ("HARNESS_ANYTHING", true),
            ("GOCOVERDIR", false),
            ("kubeconfig", false),
        ] {
            assert_eq!(is_reserved_variable(name), reserved, "{name}");
        }
    }

    #[test]
    fn command_logs_to_the_hooks_dir() {
        let cmd = command(&hook("coverage", &[]), &ctx()).unwrap();
        assert_eq!(cmd.program, "sh");
        assert_eq!(cmd.args, ["-c", "true"]);
        assert_eq!(
            cmd.log_path,
            Path::new("/project/.harness/runs/r-1a2b3c4d/hooks/coverage.log")
        );
        assert_eq!(cmd.cwd, Path::new("/project"));
        assert_eq!(cmd.namespace, None);
    }

    #[test]
    fn budget_outlasts_every_timeout() {
        let hooks = [hook("a", &[]), hook("b", &[])];
        let grace = Duration::from_secs(10);
        // 2 × (60s + 40s) + 30s.
        assert_eq!(budget(&hooks, grace), Duration::from_secs(230));
        assert_eq!(budget(&[], grace), Duration::from_secs(30));
    }

    fn result(name: &str, outcome: Outcome) -> SuiteResult {
        SuiteResult {
            name: name.into(),
            outcome,
            duration: Duration::from_secs(1),
            log_path: format!("hooks/{name}.log").into(),
            artifacts_dir: format!("hooks/{name}").into(),
            namespace: None,
        }
    }

    #[test]
    fn verdict_names_every_failed_hook() {
        assert_eq!(verdict(&[result("a", Outcome::Passed)]), Ok(()));
        let err = verdict(&[
            result("a", Outcome::Failed(ProcessExit::Code(3))),
            result("b", Outcome::Passed),
            result(
                "c",
                Outcome::TimedOut {
                    timeout: Duration::from_secs(60),
                },
            ),
        ])
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "post-suite hooks failed: `a` exited with status 3 (log: hooks/a.log); `c` timed out after 1m (log: hooks/c.log)"
        );
    }

    #[test]
    fn skipped_notice_says_why() {
        let hooks = [hook("coverage", &[]), hook("export", &[])];
        let preserved = skipped_notice(&hooks, false).to_string();
        assert!(
            preserved.starts_with(
                "post-suite hooks skipped (coverage, export): the cluster is preserved (--preserve)"
            ),
            "{preserved}"
        );
        assert!(
            skipped_notice(&hooks, true)
                .to_string()
                .contains("was up before this run")
        );
    }
}
