//! `harness test` of several lanes (`--lane a --lane b`, `--all`,
//! `--affected`): as many at once as memory holds or `--lanes-at-once`
//! says, each exactly as `harness test --lane` runs it (its own run id,
//! cluster, namespaces, report, JUnit and bundle), the host ports that
//! clash between them moved ([`harness::lanes`]), one summary and one exit
//! code at the end. A lane that fails does not stop the others;
//! `--fail-fast` starts no more after it, an interrupt neither.

use std::time::Instant;

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;

use harness::config::{Lane, Project};
use harness::exit::Exit;
use harness::failure::StageFailure;
use harness::lanes::{self, LaneResult};
use harness::preflight::{self, PreflightFailed};

use super::{OutputFormat, emit, json_line, report_error, test_command};
use crate::cli::TestArgs;

/// Runs `lanes` of `project` and returns the run's exit: the first
/// panic or interrupt among the lanes, else the first failure, else 0.
pub async fn test_lanes(
    project: &Project,
    lanes: &[&Lane],
    args: &TestArgs,
    format: OutputFormat,
) -> Result<Exit, StageFailure> {
    let started = Instant::now();
    let text = format == OutputFormat::Text;
    // Suites named on the command line must be every lane's: a usage error
    // before any lane starts, not one lane's failure beside the others' runs.
    let options = args.options();
    for lane in lanes {
        options.check_suites(lane)?;
    }
    // Whether the machine holds them: memory and disk for each lane at once
    // (each lane's own preflight still checks what it needs alone).
    let layout = harness::layout::Layout::new(&project.root);
    let mut disks = vec![layout.disk_to_check()];
    let engine = lanes.iter().find_map(|l| match &l.cluster.provider {
        harness::config::ClusterProvider::Kind(k) => Some(k.engine),
        harness::config::ClusterProvider::Existing(_) => None,
    });
    if let Some(engine) = engine
        && let Some(root) = preflight::engine_root(engine).await
    {
        disks.push(root);
    }
    let (at_once, checks) = preflight::lanes_at_once(
        &[
            preflight::Capacity::memory(project.preflight.memory_per_lane),
            preflight::Capacity::disk(&disks, project.preflight.min_free_disk),
        ],
        lanes.len(),
        args.lanes_at_once,
    );
    if text {
        for check in &checks {
            eprintln!("{}", check.line());
        }
    }
    if checks.iter().any(|c| c.status == preflight::Status::Fail) {
        return Err(PreflightFailed(preflight::Report {
            lane: names(lanes),
            checks,
        })
        .into());
    }
    // A lane that is up already keeps the ports its cluster has: it claims
    // them first, so only lanes still to be made move theirs.
    let (made, up): (Vec<Lane>, Vec<bool>) = lanes
        .iter()
        .map(|l| {
            let state = harness::cluster::state::read(&project.root, &l.name).ok();
            (lanes::as_made(l, state.as_ref()), state.is_some())
        })
        .unzip();
    let claim_order: Vec<&Lane> = (made.iter().zip(&up).filter(|(_, up)| **up))
        .chain(made.iter().zip(&up).filter(|(_, up)| !**up))
        .map(|(l, _)| l)
        .collect();
    let moved = if at_once > 1 {
        lanes::remap(&claim_order, lanes::free_port)?
    } else {
        Vec::new()
    };
    let mut running_lanes = Vec::new();
    for lane in &made {
        running_lanes.push(lanes::moved_lane(
            lane,
            &moved,
            &layout.kind_config_copy(&lane.name),
        )?);
    }
    if text {
        for m in &moved {
            eprintln!("{m}");
        }
    }
    // An interrupt between lanes starts no more (each running lane hears
    // it too, and gathers and tears down as `harness test` does).
    let interrupts = harness::run::count_interrupts(|_| {})
        .map_err(|source| harness::run::SignalError { source })?;
    let mut waiting: Vec<&Lane> = running_lanes.iter().collect();
    let moved = &moved[..];
    let mut clusters: Vec<String> = Vec::new();
    let mut running = FuturesUnordered::new();
    let mut results: Vec<LaneResult> = Vec::new();
    let mut stop: Option<&str> = None;
    loop {
        if stop.is_none() && *interrupts.borrow() > 0 {
            stop = Some("interrupted");
        }
        while stop.is_none() {
            let busy: Vec<&str> = clusters.iter().map(String::as_str).collect();
            let Some(i) = lanes::next_to_start(&waiting, &busy, at_once) else {
                break;
            };
            let lane = waiting.remove(i);
            clusters.push(lane.cluster.name.clone());
            running.push(async move {
                let run_id = harness::stage::new_run_id();
                let began = Instant::now();
                let exit =
                    match test_command(project, lane, &run_id, args, format, Some(moved)).await {
                        Ok(exit) => exit,
                        Err(failure) => report_error(&failure, format),
                    };
                LaneResult::ran(&lane.name, &run_id, exit, began.elapsed().as_secs_f64())
            });
        }
        let Some(result) = running.next().await else {
            break;
        };
        let lane = &project.lanes[result.lane.as_str()];
        if let Some(i) = clusters.iter().position(|c| *c == lane.cluster.name) {
            clusters.remove(i);
        }
        if result.exit_code == Exit::Interrupted.code() {
            stop = Some("interrupted");
        } else if result.exit_code != 0 && args.fail_fast && stop.is_none() {
            stop = Some("an earlier lane failed (--fail-fast)");
        }
        results.push(result);
    }
    for lane in waiting {
        results.push(LaneResult::not_started(
            &lane.name,
            stop.unwrap_or("interrupted"),
        ));
    }
    // In the order they were asked for.
    results.sort_by_key(|r| lanes.iter().position(|l| l.name == r.lane));
    let seconds = started.elapsed().as_secs_f64();
    match format {
        OutputFormat::Text => eprint!("\n{}", lanes::summary(&results, moved, seconds)),
        OutputFormat::Json => emit(
            &(json_line(&serde_json::json!({
                "event": "lanes_finished",
                "lanes": results,
                "moved_ports": moved,
                "seconds": seconds,
            })) + "\n"),
        )?,
    }
    Ok(lanes::combined_exit(
        results.iter().filter_map(LaneResult::exit),
    ))
}

fn names(lanes: &[&Lane]) -> String {
    lanes
        .iter()
        .map(|l| l.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
