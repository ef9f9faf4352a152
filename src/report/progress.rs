//! Live progress on a terminal: what the run is waiting on, right now.
//!
//! The stages say what happens as [`super::Event`]s; while they wait they
//! also say how far along they are as [`Progress`]: an image build's step,
//! bytes streamed into a node, where each component of the deploy wave
//! stands, the suites planned, gather's collectors done. Progress is for
//! the eyes only: the bus hands it to the live sink and nowhere else, so the
//! plain CI lines, `--output json`, the recorded events and the report are
//! the same with or without it. The emitters keep it cheap: state changes,
//! at most a few a second per stream ([`crate::throttle`]).
//!
//! [`LiveView`] folds events and progress into the state of every phase
//! that is running (load and deploy overlap); [`frame`] renders it for a
//! terminal `width` wide at `now` — a pure function, so the frames of a
//! scripted run are snapshot tests, and the terminal sink only redraws it
//! (at most ten times a second, see [`super::sink::ProgressSink`]). Times
//! are carried as instants and counted at render time, so a line that
//! waits keeps its clock running without any event.

use std::time::Duration;

use indexmap::IndexMap;
use jiff::Timestamp;

use super::{Event, Phase, Stamped};
use crate::readiness::Standing;
use crate::readiness::{LiveState, Stand};

/// How far along a stage is: for the live display only.
#[derive(Clone, Debug, PartialEq)]
pub enum Progress {
    /// The harness started building (or pulling) an image.
    ImageStarted { image: String, pulling: bool },
    /// A build reached a step: `Step 5/9 : RUN cargo build --release`.
    ImageStep { image: String, step: String },
    /// One engine export streaming into a node: bytes sent so far, of about
    /// `total` (the images' sizes in the engine less the layers the node
    /// holds; `None` when unknown).
    LoadSending {
        node: String,
        images: Vec<String>,
        sent: u64,
        total: Option<u64>,
    },
    /// A deploy wave started: wave `wave` (1-based) of `waves`.
    DeployWave {
        wave: usize,
        waves: usize,
        components: Vec<String>,
    },
    /// Where a component of the current wave stands, when that changed.
    DeployLive { component: String, state: LiveState },
    /// The suites this run runs, with their timeouts.
    SuitesPlanned { suites: Vec<(String, Duration)> },
    /// Gather's collectors done, of those it will run.
    Collectors { done: usize, total: usize },
}

#[derive(Clone, Debug)]
struct ImageRow {
    pulling: bool,
    started: Timestamp,
    step: Option<String>,
}

#[derive(Clone, Debug)]
struct LoadRow {
    node: String,
    images: Vec<String>,
    first: (Timestamp, u64),
    last: (Timestamp, u64),
    total: Option<u64>,
}

#[derive(Clone, Debug)]
enum Line {
    Applying,
    Live(LiveState),
    /// The component's final word: a Ready one, or its verdict.
    Done {
        ok: bool,
        text: String,
    },
}

#[derive(Clone, Debug)]
struct Wave {
    number: usize,
    of: usize,
    components: IndexMap<String, Line>,
}

#[derive(Clone, Debug, Default)]
struct Suites {
    planned: Vec<(String, Duration)>,
    running: IndexMap<String, Timestamp>,
    passed: usize,
    failed: usize,
    incidents: usize,
}

/// The state of every running phase, folded from events and progress.
#[derive(Clone, Debug, Default)]
pub struct LiveView {
    phases: Vec<(Phase, Timestamp)>,
    images: IndexMap<String, ImageRow>,
    images_done: usize,
    loads: Vec<LoadRow>,
    loads_done: usize,
    wave: Option<Wave>,
    suites: Suites,
    collectors: Option<(usize, usize)>,
}

impl LiveView {
    /// Takes in one event of the run.
    pub fn event(&mut self, stamped: &Stamped) {
        match &stamped.event {
            Event::PhaseStarted { phase } => {
                self.phases.retain(|(p, _)| p != phase);
                self.phases.push((*phase, stamped.at));
                match phase {
                    Phase::Images => {
                        self.images.clear();
                        self.images_done = 0;
                    }
                    Phase::Load => {
                        self.loads.clear();
                        self.loads_done = 0;
                    }
                    Phase::Deploy => self.wave = None,
                    Phase::Suites => {
                        let planned = std::mem::take(&mut self.suites.planned);
                        self.suites = Suites {
                            planned,
                            ..Suites::default()
                        };
                    }
                    Phase::Gather => self.collectors = None,
                    _ => {}
                }
            }
            Event::PhaseFinished { phase, .. } => self.phases.retain(|(p, _)| p != phase),
            Event::Image { image, .. } => {
                self.images_done += 1;
                // The event names the image with its reference: `ds (ds:7f3a)`.
                self.images
                    .retain(|name, _| image != name && !image.starts_with(&format!("{name} (")));
            }
            Event::Load { image, node, .. } => {
                self.loads_done += 1;
                self.loads
                    .retain(|row| !(&row.node == node && row.images.contains(image)));
            }
            Event::ComponentReady {
                component, seconds, ..
            } => {
                self.set_line(
                    component,
                    Line::Done {
                        ok: true,
                        text: format!("Ready after {}", crate::readiness::human(secs(*seconds))),
                    },
                );
            }
            Event::Verdict {
                component,
                standing,
                summary,
                diagnosis,
            } => {
                let line = match standing {
                    Standing::Ready => Line::Done {
                        ok: true,
                        text: summary.clone(),
                    },
                    _ => {
                        // A doomed line already says the verdict and its
                        // facts; the whole diagnosis is printed above.
                        if let Some(Line::Live(LiveState {
                            stand: Stand::Doomed { .. },
                            ..
                        })) = self.line(component)
                        {
                            return;
                        }
                        let text = match diagnosis.as_ref().and_then(|d| d.title()) {
                            Some(title) => format!("{title}: {summary}"),
                            None => summary.clone(),
                        };
                        Line::Done { ok: false, text }
                    }
                };
                self.set_line(component, line);
            }
            Event::SuiteStarted { suite, .. } => {
                self.suites.running.insert(suite.clone(), stamped.at);
            }
            Event::SuiteFinished { suite, passed, .. } => {
                self.suites.running.shift_remove(suite);
                match passed {
                    true => self.suites.passed += 1,
                    false => self.suites.failed += 1,
                }
            }
            Event::Infra { .. } => self.suites.incidents += 1,
            _ => {}
        }
    }

    /// Takes in one progress report, made at `at`.
    pub fn progress(&mut self, progress: &Progress, at: Timestamp) {
        match progress {
            Progress::ImageStarted { image, pulling } => {
                self.images.insert(
                    image.clone(),
                    ImageRow {
                        pulling: *pulling,
                        started: at,
                        step: None,
                    },
                );
            }
            Progress::ImageStep { image, step } => {
                self.images
                    .entry(image.clone())
                    .or_insert(ImageRow {
                        pulling: false,
                        started: at,
                        step: None,
                    })
                    .step = Some(step.clone());
            }
            Progress::LoadSending {
                node,
                images,
                sent,
                total,
            } => match self
                .loads
                .iter_mut()
                .find(|r| &r.node == node && &r.images == images)
            {
                Some(row) => {
                    // The rate counts from the first byte: before it, the
                    // engine was making the archive.
                    if row.first.1 == 0 {
                        row.first = (at, *sent);
                    }
                    row.last = (at, *sent);
                    row.total = *total;
                }
                None => self.loads.push(LoadRow {
                    node: node.clone(),
                    images: images.clone(),
                    first: (at, *sent),
                    last: (at, *sent),
                    total: *total,
                }),
            },
            Progress::DeployWave {
                wave,
                waves,
                components,
            } => {
                // The earlier waves' components still settling stay in
                // view (the next wave starts on Ready): until they are done.
                let settling = self.wave.take().into_iter().flat_map(|w| {
                    w.components
                        .into_iter()
                        .filter(|(_, line)| !matches!(line, Line::Done { .. }))
                });
                let starting = components.iter().map(|c| (c.clone(), Line::Applying));
                self.wave = Some(Wave {
                    number: *wave,
                    of: *waves,
                    components: settling.chain(starting).collect(),
                });
            }
            Progress::DeployLive { component, state } => {
                if !matches!(self.line(component), Some(Line::Done { .. })) {
                    self.set_line(component, Line::Live(state.clone()));
                }
            }
            Progress::SuitesPlanned { suites } => self.suites.planned = suites.clone(),
            Progress::Collectors { done, total } => self.collectors = Some((*done, *total)),
        }
    }

    fn line(&self, component: &str) -> Option<&Line> {
        self.wave.as_ref()?.components.get(component)
    }

    /// Sets a component's line, in the current wave (a component that
    /// turns doomed after Ready joins it).
    fn set_line(&mut self, component: &str, line: Line) {
        let wave = self.wave.get_or_insert_with(|| Wave {
            number: 0,
            of: 0,
            components: IndexMap::new(),
        });
        wave.components.insert(component.to_owned(), line);
    }
}

fn secs(seconds: f64) -> Duration {
    Duration::try_from_secs_f64(seconds).unwrap_or_default()
}

fn since(from: Timestamp, now: Timestamp) -> Duration {
    Duration::try_from(now.duration_since(from)).unwrap_or_default()
}

/// A running clock: `45s`, `2m05s`, `1h02m`.
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// A limit as it was written: `18m`, `1h 30m`.
fn limit(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
}

fn bytes(n: u64) -> String {
    bytesize::ByteSize::b(n).display().iec().to_string()
}

/// `[=======>            ]`, `cells` wide inside the brackets.
fn bar(done: u64, total: u64, cells: usize) -> String {
    let filled = match total {
        0 => 0,
        t => ((done.min(t) as u128 * cells as u128) / t as u128) as usize,
    };
    let mut s = String::with_capacity(cells + 2);
    s.push('[');
    for i in 0..cells {
        s.push(match i.cmp(&filled) {
            std::cmp::Ordering::Less => '=',
            std::cmp::Ordering::Equal => '>',
            std::cmp::Ordering::Greater => ' ',
        });
    }
    s.push(']');
    s
}

const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// Detail lines shown under a phase before the rest is counted.
const MAX_DETAILS: usize = 8;

/// Cuts `line` to `width` characters, marking the cut.
fn fit(line: &str, width: usize) -> String {
    if line.chars().count() <= width {
        return line.to_owned();
    }
    let mut cut: String = line.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// The names column: as wide as the longest name, within bounds.
fn column<'a>(names: impl Iterator<Item = &'a str>) -> usize {
    names.map(|n| n.chars().count()).max().unwrap_or(0).min(24)
}

/// The frame to draw at `now` on a terminal `width` columns wide: a header
/// per running phase (spinner, elapsed, phase, how far), and under it what
/// it waits on, one line each. Empty when no phase runs.
pub fn frame(view: &LiveView, now: Timestamp, width: usize) -> String {
    let width = width.max(20);
    let spin = SPINNER[(now.as_millisecond() / 100).rem_euclid(10) as usize];
    let mut lines = Vec::new();
    for (phase, started) in &view.phases {
        let (summary, details) = match phase {
            Phase::Images => images(view, now),
            Phase::Load => loads(view),
            Phase::Deploy => deploy(view, now),
            Phase::Suites => suites(view, now),
            Phase::Gather => gather(view),
            _ => (String::new(), Vec::new()),
        };
        let header = format!(
            "{spin} {:>6} {:<9}{summary}",
            clock(since(*started, now)),
            phase.name()
        );
        lines.push(header.trim_end().to_owned());
        let more = details.len().saturating_sub(MAX_DETAILS);
        lines.extend(details.into_iter().take(MAX_DETAILS));
        if more > 0 {
            lines.push(format!("  … and {more} more"));
        }
    }
    lines
        .iter()
        .map(|l| fit(l, width))
        .collect::<Vec<_>>()
        .join("\n")
}

fn images(view: &LiveView, now: Timestamp) -> (String, Vec<String>) {
    let summary = match (view.images_done, view.images.len()) {
        (0, 0) => String::new(),
        (done, 0) => format!("{done} ready"),
        (0, n) => format!("{n} in progress"),
        (done, n) => format!("{done} ready, {n} in progress"),
    };
    let w = column(view.images.keys().map(String::as_str));
    let details = view
        .images
        .iter()
        .map(|(name, row)| {
            let what = if row.pulling { "pulling" } else { "building" };
            let step = row
                .step
                .as_deref()
                .map_or(String::new(), |s| format!("  {s}"));
            format!(
                "  {name:<w$}  {what} {:>5}{step}",
                clock(since(row.started, now))
            )
        })
        .collect();
    (summary, details)
}

fn loads(view: &LiveView) -> (String, Vec<String>) {
    let summary = match (view.loads_done, view.loads.len()) {
        (0, 0) => String::new(),
        (done, 0) => format!("{done} done"),
        (0, n) => format!("{n} streaming"),
        (done, n) => format!("{done} done, {n} streaming"),
    };
    let labels: Vec<String> = view
        .loads
        .iter()
        .map(|r| format!("{}: {}", r.node, r.images.join(", ")))
        .collect();
    // Wider than the other columns: node names are long. A longer label is
    // cut, so the figures stay aligned.
    let w = labels
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(0)
        .min(40);
    let details = view
        .loads
        .iter()
        .zip(&labels)
        .map(|(row, label)| {
            let label = fit(label, w);
            let (t0, b0) = row.first;
            let (t1, sent) = row.last;
            let seconds = since(t0, t1).as_secs_f64();
            let rate = (seconds > 0.0).then(|| sent.saturating_sub(b0) as f64 / seconds);
            if sent == 0 {
                return format!("  {label:<w$}  waiting for the engine's export");
            }
            let mut text = match row.total {
                Some(total) if total > 0 => format!(
                    "  {label:<w$}  {} {} of ~{}",
                    bar(sent, total, 20),
                    bytes(sent),
                    bytes(total)
                ),
                _ => format!("  {label:<w$}  {}", bytes(sent)),
            };
            if let Some(rate) = rate.filter(|r| *r > 0.0) {
                text.push_str(&format!(", {}/s", bytes(rate as u64)));
                if let Some(total) = row.total.filter(|t| *t > sent) {
                    let left = Duration::from_secs_f64((total - sent) as f64 / rate);
                    text.push_str(&format!(", ~{} left", clock(left)));
                }
            }
            text
        })
        .collect();
    (summary, details)
}

fn deploy(view: &LiveView, now: Timestamp) -> (String, Vec<String>) {
    let Some(wave) = &view.wave else {
        return (String::new(), Vec::new());
    };
    let names: Vec<&str> = wave.components.keys().map(String::as_str).collect();
    let summary = match (wave.number, wave.of) {
        (0, _) => names.join(", "),
        (n, 0) => format!("wave {n}: {}", names.join(", ")),
        (n, of) => format!("wave {n} of {of}: {}", names.join(", ")),
    };
    let w = column(names.iter().copied());
    let details = wave
        .components
        .iter()
        .map(|(name, line)| {
            let (pods, text) = match line {
                Line::Applying => (None, "applying".to_owned()),
                Line::Done { ok: true, text } => (None, format!("✓ {text}")),
                Line::Done { ok: false, text } => (None, format!("✗ {text}")),
                Line::Live(state) => (state.pods, stand(&state.stand, now)),
            };
            let pods = pods.map_or(String::new(), |(r, w)| format!("{r}/{w}"));
            format!("  {name:<w$}  {pods:>5}  {text}")
        })
        .collect();
    (summary, details)
}

fn stand(stand: &Stand, now: Timestamp) -> String {
    match stand {
        Stand::Waiting { why, since: None } => why.clone(),
        Stand::Waiting {
            why,
            since: Some(t),
        } => format!("{why} {}", clock(since(*t, now))),
        Stand::Settling { until } => {
            let left = Duration::try_from(until.duration_since(now)).unwrap_or_default();
            // Rounded up: "Ready in 0s" would be a lie for most of a second.
            let left = Duration::from_secs(left.as_secs() + u64::from(left.subsec_nanos() > 0));
            format!("Ready, settling: {} to go", clock(left))
        }
        Stand::Doomed { verdict, message } => format!("✗ {verdict}: {message}"),
    }
}

fn suites(view: &LiveView, now: Timestamp) -> (String, Vec<String>) {
    let s = &view.suites;
    let done = s.passed + s.failed;
    let total = s.planned.len().max(done + s.running.len());
    let waiting = total - done - s.running.len();
    let mut summary = format!(
        "{} {done}/{total}: {} running, {} passed, {} failed, {waiting} waiting",
        bar(done as u64, total as u64, 20),
        s.running.len(),
        s.passed,
        s.failed
    );
    match s.incidents {
        0 => {}
        1 => summary.push_str(", 1 incident"),
        n => summary.push_str(&format!(", {n} incidents")),
    }
    let w = column(s.running.keys().map(String::as_str));
    // In the lane file's order: suites that start together start in any
    // order, and the frame must not shuffle with them.
    let mut running: Vec<(&String, &Timestamp)> = s.running.iter().collect();
    running.sort_by_key(|(name, _)| {
        s.planned
            .iter()
            .position(|(n, _)| n == *name)
            .unwrap_or(usize::MAX)
    });
    let details = running
        .into_iter()
        .map(|(name, started)| {
            let elapsed = clock(since(*started, now));
            match s.planned.iter().find(|(n, _)| n == name) {
                Some((_, timeout)) => format!("  {name:<w$}  {elapsed:>6} of {}", limit(*timeout)),
                None => format!("  {name:<w$}  {elapsed:>6}"),
            }
        })
        .collect();
    (summary, details)
}

fn gather(view: &LiveView) -> (String, Vec<String>) {
    match view.collectors {
        Some((done, total)) => (
            format!(
                "{} {done} of {total} collectors",
                bar(done as u64, total as u64, 20)
            ),
            Vec::new(),
        ),
        None => (String::new(), Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: &str = "2026-11-22T14:20:00Z";

    fn at(seconds: f64) -> Timestamp {
        T0.parse::<Timestamp>().unwrap() + Duration::from_secs_f64(seconds)
    }

    /// A scripted run: events and progress at seconds after `T0`.
    #[derive(Default)]
    struct Script {
        view: LiveView,
    }

    impl Script {
        fn event(&mut self, t: f64, event: Event) -> &mut Self {
            self.view.event(&Stamped { at: at(t), event });
            self
        }
        fn progress(&mut self, t: f64, p: Progress) -> &mut Self {
            self.view.progress(&p, at(t));
            self
        }
        fn frame(&self, t: f64, width: usize) -> String {
            frame(&self.view, at(t), width)
        }
    }

    fn started(phase: Phase) -> Event {
        Event::PhaseStarted { phase }
    }

    fn finished(phase: Phase) -> Event {
        Event::PhaseFinished {
            phase,
            seconds: 1.0,
            ok: true,
            error: None,
            fix: None,
        }
    }

    #[test]
    fn images_show_each_build_s_step_and_elapsed() {
        let mut s = Script::default();
        s.event(0.0, started(Phase::Images))
            .progress(
                0.0,
                Progress::ImageStarted {
                    image: "datastorage".into(),
                    pulling: false,
                },
            )
            .progress(
                0.2,
                Progress::ImageStarted {
                    image: "postgres".into(),
                    pulling: true,
                },
            )
            .progress(
                0.5,
                Progress::ImageStarted {
                    image: "controller".into(),
                    pulling: false,
                },
            )
            .progress(
                3.0,
                Progress::ImageStep {
                    image: "datastorage".into(),
                    step: "Step 5/9 : RUN cargo build --release --bin datastorage".into(),
                },
            )
            .progress(
                4.0,
                Progress::ImageStep {
                    image: "controller".into(),
                    step: "Step 2/9 : COPY . /src".into(),
                },
            )
            .event(
                9.0,
                Event::Image {
                    image: "postgres (postgres:16-alpine)".into(),
                    outcome: "pulled".into(),
                    seconds: 8.8,
                },
            );
        insta::assert_snapshot!("images", s.frame(12.0, 100));
        // Narrow: every line is cut to the width, none wraps.
        let narrow = s.frame(12.0, 40);
        assert!(narrow.lines().all(|l| l.chars().count() <= 40), "{narrow}");
        insta::assert_snapshot!("images_narrow", narrow);
    }

    #[test]
    fn load_shows_bytes_sent_of_the_total_with_rate_and_estimate() {
        let mut s = Script::default();
        let sending =
            |node: &str, images: &[&str], sent: u64, total: Option<u64>| Progress::LoadSending {
                node: node.into(),
                images: images.iter().map(|i| i.to_string()).collect(),
                sent,
                total,
            };
        const MIB: u64 = 1024 * 1024;
        s.event(0.0, started(Phase::Load))
            .event(
                0.1,
                Event::Load {
                    image: "postgres".into(),
                    node: "audit-e2e-control-plane".into(),
                    skipped: true,
                    bytes: 0,
                    seconds: 0.0,
                },
            )
            .progress(
                0.2,
                sending(
                    "audit-e2e-control-plane",
                    &["datastorage", "controller"],
                    0,
                    Some(956 * MIB),
                ),
            )
            .progress(
                0.5,
                sending(
                    "audit-e2e-control-plane",
                    &["datastorage", "controller"],
                    8 * MIB,
                    Some(956 * MIB),
                ),
            )
            .progress(
                0.5,
                sending(
                    "audit-e2e-worker",
                    &["datastorage", "controller"],
                    8 * MIB,
                    Some(956 * MIB),
                ),
            )
            .progress(
                12.5,
                sending(
                    "audit-e2e-control-plane",
                    &["datastorage", "controller"],
                    320 * MIB,
                    Some(956 * MIB),
                ),
            )
            .progress(
                12.5,
                sending(
                    "audit-e2e-worker",
                    &["datastorage", "controller"],
                    200 * MIB,
                    Some(956 * MIB),
                ),
            )
            .progress(12.5, sending("kubectl", &["redis"], 3 * MIB, None));
        insta::assert_snapshot!("load", s.frame(13.0, 120));
        s.progress(
            13.0,
            sending("audit-e2e-worker", &["postgres"], 0, Some(90 * MIB)),
        );
        let exporting = s.frame(13.0, 120);
        assert!(
            exporting
                .lines()
                .any(|l| l.starts_with("  audit-e2e-worker: postgres ")
                    && l.ends_with("  waiting for the engine's export")),
            "{exporting}"
        );
        // An image that arrived takes its stream's line away.
        s.event(
            30.0,
            Event::Load {
                image: "datastorage".into(),
                node: "audit-e2e-worker".into(),
                skipped: false,
                bytes: 900 * MIB,
                seconds: 29.0,
            },
        );
        let after = s.frame(30.0, 120);
        assert!(!after.contains("audit-e2e-worker: datastorage"), "{after}");
        assert!(after.contains("2 done, 3 streaming"), "{after}");
    }

    fn live(pods: Option<(usize, usize)>, stand: Stand) -> Progress {
        Progress::DeployLive {
            component: String::new(),
            state: LiveState { pods, stand },
        }
    }

    fn named(component: &str, p: Progress) -> Progress {
        match p {
            Progress::DeployLive { state, .. } => Progress::DeployLive {
                component: component.into(),
                state,
            },
            other => other,
        }
    }

    #[test]
    fn deploy_shows_each_component_s_live_state_the_settle_countdown_and_a_doomed_verdict_at_once()
    {
        let mut s = Script::default();
        s.event(0.0, started(Phase::Deploy))
            .progress(
                0.0,
                Progress::DeployWave {
                    wave: 2,
                    waves: 3,
                    components: vec![
                        "datastorage".into(),
                        "redis".into(),
                        "migrations".into(),
                        "crds".into(),
                    ],
                },
            )
            .progress(
                1.0,
                named(
                    "datastorage",
                    live(
                        Some((0, 2)),
                        Stand::Waiting {
                            why: "ContainerCreating".into(),
                            since: Some(at(1.0)),
                        },
                    ),
                ),
            )
            .progress(
                1.5,
                named(
                    "redis",
                    live(Some((1, 1)), Stand::Settling { until: at(6.5) }),
                ),
            )
            .progress(
                2.0,
                named(
                    "migrations",
                    live(
                        None,
                        Stand::Waiting {
                            why: "waiting on init container migrate".into(),
                            since: Some(at(0.8)),
                        },
                    ),
                ),
            );
        insta::assert_snapshot!("deploy_waiting", s.frame(5.0, 100));
        // The countdown runs with the clock alone.
        let later = s.frame(6.0, 100);
        assert!(later.contains("settling: 1s to go"), "{later}");
        assert!(later.contains("ContainerCreating 5s"), "{later}");

        s.progress(
            7.0,
            named(
                "datastorage",
                live(
                    Some((1, 2)),
                    Stand::Waiting {
                        why: "readiness probe failing 3x, restarted 1x".into(),
                        since: Some(at(4.0)),
                    },
                ),
            ),
        )
        .event(
            6.6,
            Event::ComponentReady {
                component: "redis".into(),
                seconds: 6.6,
                ready_seconds: Some(1.6),
                lag: None,
            },
        )
        .progress(
            8.0,
            named(
                "migrations",
                live(
                    None,
                    Stand::Doomed {
                        verdict: "OOMKilled".into(),
                        message: "container migrate was OOMKilled (exit 137); memory limit 64Mi"
                            .into(),
                    },
                ),
            ),
        )
        .event(
            8.0,
            Event::Verdict {
                component: "crds".into(),
                standing: Standing::InProgress,
                summary: "stopped: another component of its wave failed".into(),
                diagnosis: None,
            },
        );
        let doomed = s.frame(9.0, 100);
        insta::assert_snapshot!("deploy_doomed", doomed);
        // The verdict with its evidence comes later; the doomed line stays.
        s.event(
            9.5,
            Event::Verdict {
                component: "migrations".into(),
                standing: Standing::Doomed,
                summary: "component `migrations` will not become Ready".into(),
                diagnosis: Some(Box::new(crate::report::tests::oom_reported())),
            },
        );
        assert_eq!(s.frame(9.0, 100), doomed);
    }

    #[test]
    fn running_suites_are_listed_in_the_lane_files_order_whichever_started_first() {
        let mut s = Script::default();
        s.event(0.0, started(Phase::Suites)).progress(
            0.0,
            Progress::SuitesPlanned {
                suites: vec![
                    ("audit".into(), Duration::from_secs(60)),
                    ("storage".into(), Duration::from_secs(60)),
                ],
            },
        );
        for suite in ["storage", "audit"] {
            s.event(
                0.1,
                Event::SuiteStarted {
                    suite: suite.into(),
                    namespace: None,
                },
            );
        }
        let frame = s.frame(1.0, 100);
        let at = |name: &str| {
            frame
                .lines()
                .position(|l| l.starts_with(&format!("  {name} ")))
                .unwrap_or_else(|| panic!("no line for {name}: {frame}"))
        };
        assert!(at("audit") < at("storage"), "{frame}");
    }

    #[test]
    fn suites_show_counts_with_a_bar_each_running_suite_against_its_timeout_and_incidents() {
        let mut s = Script::default();
        let finished_suite = |suite: &str, passed: bool| Event::SuiteFinished {
            suite: suite.into(),
            passed,
            outcome: if passed {
                "passed"
            } else {
                "failed (exit code 1)"
            }
            .into(),
            seconds: 30.0,
            log: "suite.log".into(),
        };
        let minutes = |m: u64| Duration::from_secs(m * 60);
        s.event(0.0, started(Phase::Suites)).progress(
            0.0,
            Progress::SuitesPlanned {
                suites: vec![
                    ("audit".into(), minutes(18)),
                    ("gateway".into(), minutes(10)),
                    ("signals".into(), minutes(10)),
                    ("storage".into(), minutes(5)),
                    ("load".into(), minutes(15)),
                ],
            },
        );
        for (t, suite) in [(0.1, "audit"), (0.1, "gateway"), (0.2, "signals")] {
            s.event(
                t,
                Event::SuiteStarted {
                    suite: suite.into(),
                    namespace: None,
                },
            );
        }
        s.event(40.0, finished_suite("gateway", true))
            .event(
                41.0,
                Event::SuiteStarted {
                    suite: "storage".into(),
                    namespace: None,
                },
            )
            .event(55.0, finished_suite("signals", false))
            .event(
                60.0,
                Event::Infra {
                    component: "datastorage".into(),
                    pod: "datastorage-7d9f-x2".into(),
                    what: "OOMKilled".into(),
                    detail: "limit 512Mi".into(),
                    evidence: None,
                },
            );
        insta::assert_snapshot!("suites", s.frame(72.0, 100));
    }

    #[test]
    fn gather_shows_collectors_done_of_total_and_phases_without_details_their_clock() {
        let mut s = Script::default();
        s.event(0.0, started(Phase::Suites))
            .event(90.0, finished(Phase::Suites))
            .event(90.0, started(Phase::Gather))
            .progress(91.0, Progress::Collectors { done: 0, total: 40 })
            .progress(
                93.0,
                Progress::Collectors {
                    done: 12,
                    total: 40,
                },
            );
        insta::assert_snapshot!("gather", s.frame(94.5, 100));
        s.event(96.0, finished(Phase::Gather))
            .event(96.0, started(Phase::Teardown));
        assert_eq!(
            s.frame(100.0, 100)
                .trim_start_matches(|c| SPINNER.contains(&c)),
            "     4s teardown"
        );
        s.event(101.0, finished(Phase::Teardown));
        assert_eq!(s.frame(101.0, 100), "", "nothing runs: nothing drawn");
    }

    #[test]
    fn load_and_deploy_overlap_and_both_are_drawn() {
        let mut s = Script::default();
        s.event(0.0, started(Phase::Load))
            .event(2.0, started(Phase::Deploy))
            .progress(
                2.0,
                Progress::DeployWave {
                    wave: 1,
                    waves: 2,
                    components: vec!["postgres".into()],
                },
            );
        let f = s.frame(3.0, 80);
        let headers: Vec<&str> = f.lines().filter(|l| !l.starts_with("  ")).collect();
        assert_eq!(headers.len(), 2, "{f}");
        assert!(
            headers[0].contains("load") && headers[1].contains("deploy"),
            "{f}"
        );
    }

    #[test]
    fn clocks_bars_and_cuts() {
        assert_eq!(clock(Duration::from_secs(45)), "45s");
        assert_eq!(clock(Duration::from_secs(125)), "2m05s");
        assert_eq!(clock(Duration::from_secs(3720)), "1h02m");
        assert_eq!(bar(0, 10, 10), "[>         ]");
        assert_eq!(bar(5, 10, 10), "[=====>    ]");
        assert_eq!(bar(10, 10, 10), "[==========]");
        assert_eq!(bar(3, 0, 4), "[>   ]");
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("abc", 4), "abc");
        assert_eq!(fit("→→→→→", 3), "→→…", "characters, not bytes");
    }
}
