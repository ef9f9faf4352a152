//! The demo's two lanes in one `harness test`, at once (`--lanes-at-once 2`)
//! and one after the other (`--lanes-at-once 1`), through the release
//! binary on kind clusters of the 1.20 test node image: the wall time of
//! each and their ratio, and the memory each lane's kind node took at its
//! peak while both ran (what `preflight.memory_per_lane` estimates), with
//! how far the machine's `MemAvailable` fell.
//!
//! `$HARNESS_BENCH_ROUNDS` pairs (default 1), alternating which goes first.
//! The images must be cached or are built by the first run (it is then not
//! a fair first round: run it twice, or build them first with
//! `harness up`/`down`). Uses the clusters `audit-e2e` and `controller-e2e`
//! and host port 28090: nothing else may hold them. Needs what
//! `eval "$(scripts/test-cluster env)"` sets.
//!
//! `cargo bench --profile dev --bench lanes`. Not part of the test run.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "support/release.rs"]
mod release;

use release::{binary, median, root};

const CLUSTERS: [&str; 2] = ["audit-e2e", "controller-e2e"];

/// `harness test` of both demo lanes, `at_once` at a time: its wall time.
fn both(at_once: u32) -> Duration {
    let start = Instant::now();
    let out = Command::new(binary())
        .args(["test", "--lane", "audit", "--lane", "controller"])
        .args(["--lanes-at-once", &at_once.to_string(), "--output", "json"])
        .current_dir(root())
        .env_remove("CI")
        .output()
        .expect("the harness binary runs");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "harness test --lanes-at-once {at_once} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

/// `540.7MiB` (docker stats) in bytes.
fn bytes(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let factor = match unit {
        "B" => 1.0,
        "KiB" | "kB" => 1024.0,
        "MiB" | "MB" => 1024.0 * 1024.0,
        "GiB" | "GB" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some(number.trim().parse::<f64>().ok()? * factor)
}

fn mem_available() -> f64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with("MemAvailable:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib * 1024.0)
}

/// Samples, until dropped, each kind node's memory (`docker stats`) and
/// the machine's `MemAvailable`, keeping the peak and the low.
struct Sampler {
    stop: Arc<AtomicBool>,
    peaks: Arc<Mutex<BTreeMap<String, f64>>>,
    low: Arc<Mutex<f64>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peaks = Arc::new(Mutex::new(BTreeMap::new()));
        let low = Arc::new(Mutex::new(mem_available()));
        let thread = {
            let (stop, peaks, low) = (stop.clone(), peaks.clone(), low.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let out = Command::new("docker")
                        .args([
                            "stats",
                            "--no-stream",
                            "--format",
                            "{{.Name}} {{.MemUsage}}",
                        ])
                        .output();
                    let text = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
                    for line in text.unwrap_or_default().lines() {
                        let mut words = line.split_whitespace();
                        let (Some(name), Some(used)) = (words.next(), words.next()) else {
                            continue;
                        };
                        if !name.ends_with("-control-plane") {
                            continue;
                        }
                        if let Some(b) = bytes(used) {
                            let mut peaks = peaks.lock().unwrap();
                            let peak: &mut f64 = peaks.entry(name.to_owned()).or_insert(0.0);
                            *peak = peak.max(b);
                        }
                    }
                    let mut low = low.lock().unwrap();
                    *low = low.min(mem_available());
                }
            })
        };
        Sampler {
            stop,
            peaks,
            low,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> (BTreeMap<String, f64>, f64) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let peaks = self.peaks.lock().unwrap().clone();
        let low = *self.low.lock().unwrap();
        (peaks, low)
    }
}

fn gib(b: f64) -> String {
    format!("{:.2} GiB", b / 1024.0 / 1024.0 / 1024.0)
}

fn main() {
    let rounds: usize = std::env::var("HARNESS_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1);
    release::build();
    release::none_up(&CLUSTERS);
    let (mut together, mut apart) = (Vec::new(), Vec::new());
    let mut peaks: BTreeMap<String, f64> = BTreeMap::new();
    let mut fell = 0.0f64;
    for round in 0..rounds {
        let order: [u32; 2] = if round % 2 == 0 { [2, 1] } else { [1, 2] };
        for at_once in order {
            if at_once == 2 {
                let before = mem_available();
                let sampler = Sampler::start();
                together.push(both(2).as_secs_f64());
                let (seen, low) = sampler.finish();
                for (node, peak) in seen {
                    let p: &mut f64 = peaks.entry(node).or_insert(0.0);
                    *p = p.max(peak);
                }
                fell = fell.max(before - low);
            } else {
                apart.push(both(1).as_secs_f64());
            }
        }
    }
    let show = |v: &[f64]| {
        v.iter()
            .map(|s| format!("{s:.1}s"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (t, a) = (median(together.clone()), median(apart.clone()));
    println!(
        "two demo lanes: one after the other {} (median {a:.1}s), at once {} (median {t:.1}s): {:.2}× faster at once",
        show(&apart),
        show(&together),
        a / t
    );
    for (node, peak) in &peaks {
        println!("memory per lane: {node} peaked at {}", gib(*peak));
    }
    println!(
        "MemAvailable fell by at most {} with both lanes up (the harness, kind and kubectl included)",
        gib(fell)
    );
}
