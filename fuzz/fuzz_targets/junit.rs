//! The JUnit merger: a suite's own report (any text), parsed as
//! `parse_junit` tolerates, merged by `assemble` with the suite's result
//! and log tail, and serialized. The run's junit.xml must always be XML
//! that the same reader reads back, with every test case kept: CI pages
//! reject a malformed report whole.
//!
//! Input: the suite's report, then after a NUL byte its log tail.

#![no_main]

use std::path::PathBuf;
use std::time::Duration;

use harness::suites::junit::{OwnReport, SuiteReports, assemble, parse_junit};
use harness::suites::{Outcome, SuiteResult};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let (xml, log_tail) = input.split_once('\0').unwrap_or((input, ""));
    let own = OwnReport::parse(PathBuf::from("suite/junit.xml"), xml);
    let cases_in = own
        .report
        .as_ref()
        .map(|r| {
            r.test_suites
                .iter()
                .map(|s| s.test_cases.len())
                .sum::<usize>()
        })
        .unwrap_or(0);
    let outcome = if log_tail.len() % 2 == 0 {
        Outcome::Passed
    } else {
        Outcome::Failed(harness::suites::runner::Exit::Code(1))
    };
    let suite = SuiteReports {
        result: SuiteResult {
            name: "suite".into(),
            outcome,
            duration: Duration::from_millis(1500),
            log_path: PathBuf::from("suite/output.log"),
            artifacts_dir: PathBuf::from("suite"),
            namespace: Some("suite-p1-0123abcd".into()),
        },
        own: vec![own],
        log_tail: log_tail.to_owned(),
    };
    let report = assemble("run", &[suite]);
    let written = report.to_string().expect("the merged report serializes");
    let back = parse_junit(&written)
        .unwrap_or_else(|e| panic!("the merged report does not read back: {e}\n{written}"));
    let cases_out: usize = back.test_suites.iter().map(|s| s.test_cases.len()).sum();
    assert!(
        cases_out >= cases_in,
        "test cases lost: {cases_in} in, {cases_out} out"
    );
});
