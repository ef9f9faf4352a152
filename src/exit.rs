//! The documented exit codes of `harness`.
//!
//! Every way the program can end maps to exactly one code, so a CI step can
//! tell "the suites failed" from "the cluster never came up" without reading
//! the log. The table is repeated in the README and tested end to end.

use std::fmt;

/// How `harness` ended. The numeric values are a public contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Exit {
    /// Everything that was asked for succeeded.
    Ok,
    /// At least one suite (or post-suite hook: the user's own commands) failed
    /// or timed out; the environment itself was fine.
    SuitesFailed,
    /// The command line or the lane file is wrong; nothing was started.
    Usage,
    /// A preflight check failed: the engine, kind, disk space or a host port.
    Preflight,
    /// An image failed to build or to load into the cluster.
    ImageBuild,
    /// The cluster could not be created, reached or deleted.
    Cluster,
    /// A component failed to deploy or was found doomed (a readiness verdict).
    Deploy,
    /// A deadline ran out (a component's readiness deadline or `--deadline`).
    Timeout,
    /// The must-gather bundle could not be written.
    Gather,
    /// A command that acts on a running environment (`status`, `diagnose`,
    /// `gather`, `namespace create`) found none up for the lane.
    NotUp,
    /// An unexpected error: a bug in `harness` or an I/O failure it cannot classify.
    Internal,
    /// `harness` panicked (a bug). The report was still written and, once a
    /// cluster existed, gather and teardown still ran, unless the report
    /// says why they could not. Wins over every other code: what they would
    /// say can no longer be trusted.
    Panicked,
    /// Stopped by SIGINT or SIGTERM (after gathering and tearing down).
    Interrupted,
}

impl Exit {
    /// Every exit, in the order of the README's table.
    pub const ALL: [Exit; 13] = [
        Exit::Ok,
        Exit::SuitesFailed,
        Exit::Usage,
        Exit::Preflight,
        Exit::ImageBuild,
        Exit::Cluster,
        Exit::Deploy,
        Exit::Timeout,
        Exit::Gather,
        Exit::NotUp,
        Exit::Internal,
        Exit::Panicked,
        Exit::Interrupted,
    ];

    /// The process exit status.
    pub const fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::SuitesFailed => 1,
            Exit::Usage => 2,
            Exit::Preflight => 3,
            Exit::ImageBuild => 4,
            Exit::Cluster => 5,
            Exit::Deploy => 6,
            Exit::Timeout => 7,
            Exit::Gather => 8,
            Exit::NotUp => 9,
            Exit::Internal => 70,
            // Not 101, Rust's own code for a panic that nothing caught: 71
            // says harness caught it and still reported (and cleaned up).
            Exit::Panicked => 71,
            // 128 + SIGINT, as shells report a process killed by Ctrl-C.
            Exit::Interrupted => 130,
        }
    }

    /// One line for the README and `--help`.
    pub const fn meaning(self) -> &'static str {
        match self {
            Exit::Ok => "success",
            Exit::SuitesFailed => "one or more suites (or post-suite hooks) failed or timed out",
            Exit::Usage => "bad command line or lane file (nothing was started)",
            Exit::Preflight => "a preflight check failed (engine, kind, disk, host ports)",
            Exit::ImageBuild => "an image failed to build or load",
            Exit::Cluster => "the cluster could not be created, reached or deleted",
            Exit::Deploy => "a component failed to deploy or is doomed (readiness verdict)",
            Exit::Timeout => "a deadline ran out",
            Exit::Gather => "the must-gather bundle could not be written",
            Exit::NotUp => "no environment is up for the lane (bring it up with harness up)",
            Exit::Internal => "unexpected internal error",
            Exit::Panicked => "harness panicked (a bug); the report, gather and teardown still ran",
            Exit::Interrupted => "interrupted by SIGINT/SIGTERM",
        }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.code(), self.meaning())
    }
}

/// The table of exit codes as printed at the end of `harness --help`.
pub fn help_table() -> String {
    let mut out = String::from("Exit codes:\n");
    for exit in Exit::ALL {
        out.push_str(&format!("  {:>3}  {}\n", exit.code(), exit.meaning()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_distinct() {
        let codes: HashSet<u8> = Exit::ALL.iter().map(|e| e.code()).collect();
        assert_eq!(codes.len(), Exit::ALL.len());
    }

    #[test]
    fn fixed_codes_match_the_contract() {
        // These three are promised by the README and relied on by CI scripts.
        assert_eq!(Exit::Ok.code(), 0);
        assert_eq!(Exit::SuitesFailed.code(), 1);
        assert_eq!(Exit::Usage.code(), 2);
        // Added after 0-8 were published: the existing codes did not move.
        assert_eq!(Exit::Gather.code(), 8);
        assert_eq!(Exit::NotUp.code(), 9);
        assert_eq!(Exit::Interrupted.code(), 130);
        // Not Rust's 101, which would mean nothing caught the panic.
        assert_eq!(Exit::Panicked.code(), 71);
    }

    #[test]
    fn help_table_lists_every_code() {
        let table = help_table();
        for exit in Exit::ALL {
            assert!(table.contains(exit.meaning()), "{exit:?} missing");
        }
    }
}
