//! The command line: every command, flag and example users see.
//!
//! Only `main` and [`crate::app`] see these types; the library is
//! configured with plain values ([`TestArgs::options`]), and never sees clap.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use harness::suites::Shard;

/// Output format of a command.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Human-readable text.
    #[default]
    Text,
    /// JSON on stdout, for tools.
    Json,
}

#[derive(Debug, Parser)]
#[command(
    name = "harness",
    version,
    about = "Stand up the E2E environment of a Kubernetes operator project, run its suites, and say exactly why when something is not ready.",
    long_about = None,
    after_help = "Run `harness <command> --help` for examples.",
    after_long_help = harness::exit::help_table(),
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// The lane file [default: harness.yaml in this directory or the nearest parent]
    #[arg(long, global = true, value_name = "PATH", env = "HARNESS_CONFIG")]
    pub config: Option<PathBuf>,
    /// The lane to act on [default: every lane for `plan`; the only lane when there is one]; `test` takes several, run at once
    #[arg(
        long,
        global = true,
        value_name = "LANE",
        env = "HARNESS_LANE",
        value_delimiter = ',',
        action = clap::ArgAction::Append
    )]
    pub lane: Vec<String>,
    /// Output format
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// The cluster's kubeconfig for diagnose, status and namespace create [default: the lane's state file]
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// More detail (repeat for more)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// Whether tests that failed and then passed on a retry (`flaky`) pass the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum FlakyResult {
    /// They pass (and are reported as flaky)
    #[default]
    Pass,
    /// They fail the run (exit 1)
    Fail,
}

impl From<FlakyResult> for harness::suites::verdict::FlakyResult {
    fn from(result: FlakyResult) -> Self {
        match result {
            FlakyResult::Pass => Self::Pass,
            FlakyResult::Fail => Self::Fail,
        }
    }
}

/// When to collect a must-gather bundle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum GatherWhen {
    Always,
    #[default]
    OnFailure,
    Never,
}

impl From<GatherWhen> for harness::run::GatherWhen {
    fn from(when: GatherWhen) -> Self {
        match when {
            GatherWhen::Always => Self::Always,
            GatherWhen::OnFailure => Self::OnFailure,
            GatherWhen::Never => Self::Never,
        }
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (write e.g. 30s, 5m or 1h30m)"))
}

fn parse_shard(s: &str) -> Result<Shard, harness::suites::ShardError> {
    s.parse()
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build images, create the cluster, load images, deploy and wait until Ready
    #[command(after_help = "\
Examples:
  harness up --lane audit                 bring the lane up, leave it running (again: reuses its cluster)
  harness up --lane audit --reuse         pick up a running cluster of the same name that harness did not make
  harness up --lane audit --rebuild       rebuild images even when their content is unchanged")]
    Up(UpArgs),

    /// Run suites: up (when needed), suites, gather, teardown unless --preserve
    #[command(after_help = "\
Examples:
  harness test --lane gateway                     the CI job step
  harness test --lane gateway e2e                 only the suite `e2e`
  harness test --lane gateway --shard 2/4         the second of four CI shards
  harness test --lane gateway --preserve          keep the cluster for debugging
  harness test --lane gateway --deadline 55m      finish (gather included) before a 60m job limit
  harness test --lane gateway --retries 1         run failed suites again once: verdicts infrastructure, flaky or real
  harness test --lane gateway --retries 2 --flaky-result fail   a strict gate: a flaky test fails the run
  harness test --lane audit --lane controller     two lanes at once, each on its own cluster (clashing host ports are moved)
  harness test --all --lanes-at-once 2            every lane, two at a time
  harness test --affected --base origin/main      every lane the branch's changes affect")]
    Test(TestArgs),

    /// Tear down what `up` created (gathering first with --gather)
    #[command(after_help = "\
Examples:
  harness down --lane audit
  harness down --lane audit --gather      collect a bundle, then delete the cluster")]
    Down(DownArgs),

    /// Collect a must-gather bundle from the running environment
    #[command(after_help = "\
Examples:
  harness gather --lane audit
  harness gather --lane audit --out /tmp/bundle --since 30m")]
    Gather(GatherArgs),

    /// Print a run's report again from its must-gather bundle
    #[command(after_help = "\
Examples:
  harness report .harness/runs/r-1a2b3c4d/gather/must-gather-audit-r-1a2b3c4d.tar.gz
  harness report must-gather-audit-r-1a2b3c4d/              an unpacked bundle (the CI artifact)
  harness report must-gather-audit-r-1a2b3c4d.tar.gz --output json   the same, as JSON

The report is the one the run printed, as it stood when the bundle was
gathered: the gather itself, post-suite hooks and teardown came later.
No lane file or cluster is needed.")]
    Report(ReportArgs),

    /// Explain why components are not Ready: verdicts ranked, with evidence
    #[command(after_help = "\
Examples:
  harness diagnose --lane audit                  every component of the lane
  harness diagnose --lane audit datastorage      why is DataStorage not Ready?")]
    Diagnose(DiagnoseArgs),

    /// Show the lane's components: state, restarts, age
    #[command(after_help = "Example:\n  harness status --lane audit")]
    Status,

    /// Print the deploy waves of each lane and the dependency matrix
    #[command(after_help = "\
Examples:
  harness plan                             every lane, as text
  harness plan --lane audit --output json  one lane, for tools")]
    Plan,

    /// Print the lanes a change affects since a git ref, each with why
    #[command(after_help = "\
Examples:
  harness affected --base origin/main                  the lanes to run for this branch
  harness affected --base origin/main --output json    {\"lanes\": [...], ...} for a CI matrix
  harness test --affected --base origin/main           run them, one after the other

A lane is affected when a changed file is one of its inputs (an image's
context after .dockerignore, its Dockerfile, host-build inputs, a
component's manifests, kustomize directories and charts, the kind config,
files the suites name) or when the lane file's entries it uses changed.
Changes are those of the work tree against the ref, untracked files
included; pass `$(git merge-base origin/main HEAD)` to leave out what
landed on the base branch since this one forked.")]
    Affected(AffectedArgs),

    /// Check the machine: engine, kind, free disk, host ports
    #[command(after_help = "\
Examples:
  harness preflight --lane audit
  DOCKER_HOST=tcp://10.0.0.5:2375 harness preflight --lane audit")]
    Preflight,

    /// Manage suite namespaces
    #[command(subcommand)]
    Namespace(NamespaceCommand),
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Reuse a running cluster of exactly the lane's cluster name that harness did not create (one `up` created is reused without it)
    #[arg(long)]
    pub reuse: bool,
    /// Accepted for `harness test --preserve` habits: `up` always keeps the cluster
    #[arg(long)]
    pub preserve: bool,
    /// Rebuild every image even when its content tag already exists
    #[arg(long)]
    pub rebuild: bool,
    /// Give up (and say why) when the environment is not Ready by then
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub deadline: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// Suites to run [default: all of the lane's]
    #[arg(value_name = "SUITE")]
    pub suites: Vec<String>,
    /// Suites run at once (serial suites always run alone, last)
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<u32>,
    /// Run the m-th of n deterministic slices of the suites (CI matrices)
    #[arg(long, value_name = "M/N", value_parser = parse_shard)]
    pub shard: Option<Shard>,
    /// When to collect a must-gather bundle
    #[arg(long, value_enum, default_value_t = GatherWhen::OnFailure)]
    pub gather: GatherWhen,
    /// Keep the cluster afterwards (it is still gathered, never scaled down)
    #[arg(long)]
    pub preserve: bool,
    /// Finish everything, gather included, within this time
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub deadline: Option<Duration>,
    /// Rebuild every image even when its content tag already exists
    #[arg(long)]
    pub rebuild: bool,
    /// Run each failed suite again up to N times, in a fresh namespace, once every component is Ready again [default: each suite's `retries:`, else 0]
    #[arg(long, value_name = "N")]
    pub retries: Option<u32>,
    /// Whether tests that passed only on a retry (flaky) pass the run
    #[arg(long, value_enum, default_value_t = FlakyResult::Pass)]
    pub flaky_result: FlakyResult,
    /// Run every lane the changes since --base affect (instead of --lane), as --lanes-at-once says
    #[arg(long, requires = "base", conflicts_with_all = ["suites", "all"])]
    pub affected: bool,
    /// Run every lane of the lane file (instead of --lane)
    #[arg(long)]
    pub all: bool,
    /// How many of several lanes run at the same time [default: as many as memory holds, by `preflight.memory_per_lane`]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub lanes_at_once: Option<u32>,
    /// With several lanes: after a lane fails, start no more (the running ones finish)
    #[arg(long)]
    pub fail_fast: bool,
    /// The git ref --affected compares the work tree with
    #[arg(long, value_name = "REF", requires = "affected")]
    pub base: Option<String>,
}

#[derive(Debug, Args)]
pub struct AffectedArgs {
    /// The git ref the work tree is compared with (a branch, tag or commit)
    #[arg(long, value_name = "REF")]
    pub base: String,
}

impl TestArgs {
    /// What the library's `harness test` takes.
    pub fn options(&self) -> harness::run::test::TestOptions {
        harness::run::test::TestOptions {
            suites: self.suites.clone(),
            jobs: self.jobs,
            shard: self.shard,
            gather: self.gather.into(),
            preserve: self.preserve,
            deadline: self.deadline,
            rebuild: self.rebuild,
            retries: self.retries,
            flaky_result: self.flaky_result.into(),
        }
    }
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// Collect a must-gather bundle before tearing down
    #[arg(long)]
    pub gather: bool,
}

#[derive(Debug, Args)]
pub struct GatherArgs {
    /// Directory to write the bundle into [default: .harness/gather]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Only logs and events newer than this
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub since: Option<Duration>,
    /// Cap the bundle's size: healthy pods' logs are cut first (e.g. 200MiB)
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_size: Option<u64>,
}

fn parse_size(s: &str) -> Result<u64, String> {
    s.trim()
        .parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|e| format!("{e} (write e.g. 200MiB or 1GiB)"))
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The bundle: its .tar.gz, or its directory
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,
}

#[derive(Debug, Args)]
pub struct DiagnoseArgs {
    /// Components to diagnose [default: all of the lane's]
    #[arg(value_name = "COMPONENT")]
    pub components: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum NamespaceCommand {
    /// Create a unique, ready suite namespace and print its name
    #[command(after_help = "\
Examples (inside a suite, e.g. one Ginkgo process per namespace):
  NS=$(harness namespace create --prefix audit --process \"$GINKGO_PARALLEL_PROCESS\")")]
    Create {
        /// Namespace prefix: names are {prefix}-p{process}-{8 random hex}
        #[arg(long)]
        prefix: String,
        /// Process index that goes into the name
        #[arg(long, default_value_t = 1)]
        process: u32,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn shard_flag_uses_the_suites_parser() {
        let cli = Cli::try_parse_from(["harness", "test", "--shard", "2/4"]).unwrap();
        let Command::Test(args) = cli.command else {
            panic!("not test")
        };
        assert_eq!(args.shard.map(|s| (s.index(), s.count())), Some((2, 4)));
        let err = Cli::try_parse_from(["harness", "test", "--shard", "5/4"]).unwrap_err();
        assert!(err.to_string().contains("must be between 1 and 4"), "{err}");
    }

    #[test]
    fn test_affected_needs_a_base_and_takes_no_suites() {
        let cli = Cli::try_parse_from(["harness", "test", "--affected", "--base", "main"]).unwrap();
        let Command::Test(args) = cli.command else {
            panic!("not test")
        };
        assert!(args.affected && args.base.as_deref() == Some("main"));
        for argv in [
            &["harness", "test", "--affected"][..],
            &["harness", "test", "--base", "main"],
            &["harness", "test", "--affected", "--base", "main", "e2e"],
        ] {
            assert!(Cli::try_parse_from(argv).is_err(), "{argv:?}");
        }
    }

    #[test]
    fn test_takes_several_lanes_or_all() {
        let cli = Cli::try_parse_from([
            "harness",
            "test",
            "--lane",
            "audit",
            "--lane",
            "controller",
            "--lanes-at-once",
            "2",
        ])
        .unwrap();
        assert_eq!(cli.global.lane, ["audit", "controller"]);
        let Command::Test(args) = cli.command else {
            panic!("not test")
        };
        assert_eq!(args.lanes_at_once, Some(2));
        let cli = Cli::try_parse_from(["harness", "test", "--all", "--fail-fast"]).unwrap();
        let Command::Test(args) = cli.command else {
            panic!("not test")
        };
        assert!(args.all && args.fail_fast);
        for argv in [
            &["harness", "test", "--all", "--affected", "--base", "main"][..],
            &["harness", "test", "--all", "--lanes-at-once", "0"],
        ] {
            assert!(Cli::try_parse_from(argv).is_err(), "{argv:?}");
        }
    }

    #[test]
    fn up_accepts_preserve() {
        let cli = Cli::try_parse_from(["harness", "up", "--preserve", "--lane", "audit"]).unwrap();
        let Command::Up(args) = cli.command else {
            panic!("not up")
        };
        assert!(args.preserve && !args.reuse);
    }

    #[test]
    fn global_flags_work_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "harness", "plan", "--lane", "audit", "--output", "json", "-vv",
        ])
        .unwrap();
        assert_eq!(cli.global.lane, ["audit"]);
        assert_eq!(cli.global.output, OutputFormat::Json);
        assert_eq!(cli.global.verbose, 2);
    }
}
