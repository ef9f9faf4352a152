//! What the settle window costs and what it buys, measured in one run on a
//! real cluster (`$HARNESS_TEST_KUBECONFIG`, with `fixtures/app:v1` loaded),
//! through the real deploy stage:
//!
//! 1. time to Ready of a healthy Deployment (readiness probe, one replica)
//!    without a settle window and with the default one;
//! 2. time to the verdict of the containers that crash, or are OOMKilled,
//!    3 s after they start (the 1.28 captures), under the default tolerance
//!    and settle window — and, without a window, what the harness used to
//!    say about them (Ready).
//!
//! Run with `HARNESS_TEST_KUBECONFIG=... cargo bench --bench settle`.

#[path = "../tests/support/cluster.rs"]
mod cluster;

use cluster::{CRASH_AFTER_3S, HEALTHY, OOM_AFTER_3S, deployment};

fn outcome(d: &cluster::Deployed) -> String {
    match &d.result {
        Ok(r) => format!("Ready after {:.1}s", r.components[0].elapsed.as_secs_f64()),
        Err(e) => {
            let verdict = e
                .diagnoses()
                .iter()
                .flat_map(|d| &d.findings)
                .find_map(|f| f.verdict.as_ref().map(|v| v.kind.name()))
                .unwrap_or("no verdict");
            format!("{verdict} after {:.1}s", d.took.as_secs_f64())
        }
    }
}

#[tokio::main]
async fn main() {
    let Some(kubeconfig) = cluster::kubeconfig() else {
        return;
    };
    let default = format!(
        "default settle ({}s)",
        harness::config::defaults::SETTLE.as_secs()
    );
    let cases: [(&str, &str, String, &str); 6] = [
        (
            "healthy",
            HEALTHY,
            "no settle window".into(),
            ", settle: 0s",
        ),
        ("healthy", HEALTHY, default.clone(), ""),
        (
            "crash-after-3s",
            CRASH_AFTER_3S,
            "no settle window".into(),
            ", settle: 0s",
        ),
        ("crash-after-3s", CRASH_AFTER_3S, default.clone(), ""),
        (
            "oom-after-3s",
            OOM_AFTER_3S,
            "no settle window".into(),
            ", settle: 0s",
        ),
        ("oom-after-3s", OOM_AFTER_3S, default, ""),
    ];
    let rounds = 3;
    println!("{:<16} {:<22} outcome per round", "container", "window");
    for (name, container, window, extra) in cases {
        let mut outcomes = Vec::new();
        for _ in 0..rounds {
            let d = cluster::deploy(&kubeconfig, &deployment("bench", "", container), extra).await;
            outcomes.push(outcome(&d));
        }
        println!("{name:<16} {window:<22} {}", outcomes.join("; "));
    }
}
