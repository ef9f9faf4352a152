//! Running a lane's E2E suites (SPEC §5).
//!
//! A suite is a command. The decisions are pure functions of plain data:
//! which suites this CI shard runs ([`schedule::Shard`]), in which order
//! ([`schedule::schedule`]: non-serial suites in parallel up to `jobs`,
//! serial ones alone and last), what each is called in the cluster
//! ([`namespace::namespace_name`]) and what environment it gets
//! ([`env::suite_env`]). Around them sit two thin shells: [`runner`] runs
//! one suite as a child process in its own process group (stdin null, output
//! logged and streamed, timeout → SIGTERM → grace → SIGKILL of the whole
//! group), and [`executor`] drives a whole schedule with a pool of slots and
//! a cancellation token. Everything observable is a [`runner::SuiteEvent`]
//! on one channel, so the terminal, CI lines, JSON output and the report all
//! consume the same stream and nothing here prints. [`junit`] turns the
//! results into one JUnit report, merging the reports suites write
//! themselves. Creating namespaces in the cluster is behind the
//! [`namespace::NamespaceProvisioner`] seam, implemented by the Kubernetes
//! adapter.

pub mod cancel;
pub mod env;
pub mod executor;
pub mod junit;
pub mod namespace;
pub mod runner;
pub mod schedule;
pub mod stage;
pub mod verdict;

pub use cancel::{CancelHandle, CancelToken, cancellation};
pub use env::{SuiteEnv, endpoint_variable, suite_env};
pub use executor::{RunConfig, RunError, RunSummary, SuiteSpec, run_suites};
pub use namespace::{NamespaceError, NamespaceProvisioner, NoNamespaces, OsRandom, RandomSource};
pub use runner::{
    Exit, Outcome, StartError, StopReason, Stream, SuiteCommand, SuiteEvent, SuiteResult, run_suite,
};
pub use schedule::{Schedule, Shard, ShardError, schedule};
