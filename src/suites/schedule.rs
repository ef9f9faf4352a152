//! Which suites run, and in what order: sharding and scheduling, both pure.
//!
//! Sharding follows nextest's `slice:m/n`: suites are sorted by name and
//! shard `m` takes every `n`-th one starting at the `m`-th. Sorting first
//! makes the split independent of the order suites appear in the lane file,
//! so CI matrix jobs built from different checkouts still agree, and slicing
//! (rather than hashing) keeps shards balanced in count.
//!
//! Scheduling puts non-serial suites in a parallel phase bounded by `jobs`
//! and serial suites after it, one at a time, because serial suites are the
//! high-load ones that may take shared services down under everyone else.

use std::fmt;
use std::num::NonZeroUsize;
use std::str::FromStr;

/// One shard of a CI matrix: `index` of `count`, 1-based as written on the
/// command line (`--shard 2/4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: NonZeroUsize,
    count: NonZeroUsize,
}

/// A `--shard` value that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShardError {
    /// Not of the form `m/n` with two whole numbers.
    #[error("invalid shard {0:?}: expected m/n with whole numbers, e.g. --shard 2/4")]
    Syntax(String),
    /// `n` is zero.
    #[error("invalid shard {0:?}: the shard count must be at least 1, e.g. --shard 1/1")]
    ZeroCount(String),
    /// `m` is zero or larger than `n`.
    #[error(
        "invalid shard {input:?}: the shard index is 1-based and must be between 1 and {count}"
    )]
    IndexOutOfRange {
        /// The value as given.
        input: String,
        /// The shard count, the largest valid index.
        count: usize,
    },
}

impl Shard {
    /// Shard `index` of `count` (1-based), validated like the parsed form.
    pub fn new(index: usize, count: usize) -> Result<Self, ShardError> {
        Self::checked(index, count, &format!("{index}/{count}"))
    }

    fn checked(index: usize, count: usize, input: &str) -> Result<Self, ShardError> {
        let count =
            NonZeroUsize::new(count).ok_or_else(|| ShardError::ZeroCount(input.to_owned()))?;
        let index = NonZeroUsize::new(index)
            .filter(|m| *m <= count)
            .ok_or_else(|| ShardError::IndexOutOfRange {
                input: input.to_owned(),
                count: count.get(),
            })?;
        Ok(Self { index, count })
    }

    /// The 1-based index of this shard.
    pub fn index(&self) -> usize {
        self.index.get()
    }

    /// How many shards the suites are split into.
    pub fn count(&self) -> usize {
        self.count.get()
    }

    /// The names this shard runs, out of `names`, in sorted order.
    ///
    /// Every name lands in exactly one of the `count` shards, whatever order
    /// `names` is in.
    pub fn select<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
        let mut sorted: Vec<&str> = names.into_iter().collect();
        sorted.sort_unstable();
        sorted
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % self.count() == self.index() - 1)
            .map(|(_, name)| name)
            .collect()
    }

    /// The suites of `suites` this shard runs, in their input order.
    pub fn filter<S: Schedulable>(&self, suites: Vec<S>) -> Vec<S> {
        let selected: std::collections::HashSet<String> = self
            .select(suites.iter().map(Schedulable::name))
            .into_iter()
            .map(str::to_owned)
            .collect();
        suites
            .into_iter()
            .filter(|s| selected.contains(s.name()))
            .collect()
    }
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let syntax = || ShardError::Syntax(input.to_owned());
        let (m, n) = input.trim().split_once('/').ok_or_else(syntax)?;
        let m: usize = m.trim().parse().map_err(|_| syntax())?;
        let n: usize = n.trim().parse().map_err(|_| syntax())?;
        Self::checked(m, n, input)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// What the scheduler needs to know about a suite.
pub trait Schedulable {
    /// The suite's name, unique within a lane.
    fn name(&self) -> &str;
    /// Whether the suite must run alone, after all others.
    fn serial(&self) -> bool;
}

/// The order in which suites run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// At most this many suites of `parallel` run at once.
    pub jobs: NonZeroUsize,
    /// Indices (into the input) of suites run in parallel, in start order.
    pub parallel: Vec<usize>,
    /// Indices of serial suites, run one at a time after every parallel one
    /// has finished.
    pub serial: Vec<usize>,
}

/// Splits `suites` into a bounded parallel phase and a serial phase.
///
/// Input order is kept within each phase: the lane file's order is how users
/// say which suites should start first.
pub fn schedule<S: Schedulable>(suites: &[S], jobs: NonZeroUsize) -> Schedule {
    let (serial, parallel): (Vec<usize>, Vec<usize>) =
        (0..suites.len()).partition(|&i| suites[i].serial());
    Schedule {
        jobs,
        parallel,
        serial,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_parsing_table() {
        let ok = [
            ("1/1", 1, 1),
            ("2/4", 2, 4),
            (" 3 / 3 ", 3, 3),
            ("10/12", 10, 12),
        ];
        for (input, m, n) in ok {
            let shard: Shard = input.parse().unwrap();
            assert_eq!((shard.index(), shard.count()), (m, n), "{input}");
        }
        let bad = [
            ("", ShardError::Syntax(String::new())),
            ("2", ShardError::Syntax("2".into())),
            ("a/b", ShardError::Syntax("a/b".into())),
            ("-1/2", ShardError::Syntax("-1/2".into())),
            ("1/2/3", ShardError::Syntax("1/2/3".into())),
            ("1/0", ShardError::ZeroCount("1/0".into())),
            (
                "0/3",
                ShardError::IndexOutOfRange {
                    input: "0/3".into(),
                    count: 3,
                },
            ),
            (
                "4/3",
                ShardError::IndexOutOfRange {
                    input: "4/3".into(),
                    count: 3,
                },
            ),
        ];
        for (input, expected) in bad {
            assert_eq!(input.parse::<Shard>().unwrap_err(), expected, "{input:?}");
        }
        let msg = "5/4".parse::<Shard>().unwrap_err().to_string();
        assert!(msg.contains("between 1 and 4"), "{msg}");
        assert_eq!(Shard::new(2, 5).unwrap().to_string(), "2/5");
    }

    #[test]
    fn shard_slices_sorted_names() {
        let names = ["e", "a", "d", "b", "c"];
        let table: &[(usize, usize, &[&str])] = &[
            (1, 1, &["a", "b", "c", "d", "e"]),
            (1, 2, &["a", "c", "e"]),
            (2, 2, &["b", "d"]),
            (3, 3, &["c"]),
            (5, 5, &["e"]),
        ];
        for (m, n, expected) in table {
            let got = Shard::new(*m, *n).unwrap().select(names);
            assert_eq!(&got, expected, "shard {m}/{n}");
        }
        // More shards than suites: the extra shards are empty, not an error.
        assert!(Shard::new(7, 7).unwrap().select(names).is_empty());
    }

    #[test]
    fn every_suite_lands_in_exactly_one_shard_whatever_the_input_order() {
        let names: Vec<String> = (0..11).map(|i| format!("suite-{i:02}")).collect();
        let forward: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut shuffled = forward.clone();
        shuffled.reverse();
        shuffled.rotate_left(4);
        for n in 1..=5 {
            let mut seen: Vec<&str> = Vec::new();
            for m in 1..=n {
                let shard = Shard::new(m, n).unwrap();
                let a = shard.select(forward.iter().copied());
                let b = shard.select(shuffled.iter().copied());
                assert_eq!(a, b, "shard {shard} depends on input order");
                // Slices are balanced: sizes differ by at most one.
                assert!(
                    a.len().abs_diff(names.len() / n) <= 1,
                    "shard {shard}: {a:?}"
                );
                seen.extend(a);
            }
            seen.sort_unstable();
            assert_eq!(seen, forward, "n = {n}: not a partition");
        }
    }

    struct S(&'static str, bool);
    impl Schedulable for S {
        fn name(&self) -> &str {
            self.0
        }
        fn serial(&self) -> bool {
            self.1
        }
    }

    #[test]
    fn filter_keeps_input_order_and_the_serial_flag() {
        let suites = vec![
            S("e", false),
            S("a", true),
            S("d", false),
            S("b", false),
            S("c", true),
        ];
        let kept = Shard::new(1, 2).unwrap().filter(suites);
        let kept: Vec<(&str, bool)> = kept.iter().map(|s| (s.0, s.1)).collect();
        // Shard 1/2 of a..e is {a, c, e}, listed as the input lists them.
        assert_eq!(kept, [("e", false), ("a", true), ("c", true)]);
    }

    #[test]
    fn serial_suites_go_last_in_input_order() {
        let suites = [
            S("load", true),
            S("api", false),
            S("audit", false),
            S("chaos", true),
            S("ui", false),
        ];
        let jobs = NonZeroUsize::new(3).unwrap();
        let plan = schedule(&suites, jobs);
        assert_eq!(plan.parallel, vec![1, 2, 4]);
        assert_eq!(plan.serial, vec![0, 3]);
        assert_eq!(plan.jobs, jobs);
        let empty: [S; 0] = [];
        let plan = schedule(&empty, jobs);
        assert!(plan.parallel.is_empty() && plan.serial.is_empty());
    }
}
