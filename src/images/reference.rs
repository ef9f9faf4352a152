//! Image references: the names the harness gives the images it builds, and
//! the parts of a third-party reference the engine's pull API wants.
//!
//! Built images are `localhost/harness/<name>:<first 16 hex of the input
//! hash>`. The `localhost/` domain makes the reference fully qualified, so
//! Docker, Podman (which prefixes local images with `localhost/` itself)
//! and containerd in a kind node all store and look it up under the same
//! name; an image that was not loaded makes the node try `localhost:80`,
//! which fails at once, instead of pulling a stranger's `docker.io/harness/…`
//! from Docker Hub. The tag is never `latest`, so Kubernetes defaults
//! `imagePullPolicy` to `IfNotPresent` and uses the loaded image.

/// The repository every built image lives under.
pub const REPOSITORY: &str = "localhost/harness";

/// Hex digits of the input hash used in the tag (64 bits: collisions are
/// not a practical concern for one project's images).
pub const TAG_HEX: usize = 16;

/// A repository path component from an image name: lowercase, with any
/// character Docker does not allow replaced by `-`.
pub fn repository_component(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '.' | '_' | '-') => c,
            _ => '-',
        })
        .collect();
    // A component must start and end with a letter or digit.
    while out.starts_with(['.', '_', '-']) {
        out.remove(0);
    }
    while out.ends_with(['.', '_', '-']) {
        out.pop();
    }
    if out.is_empty() {
        out.push_str("image");
    }
    out
}

/// The reference of a built image.
pub fn built(name: &str, input_hash: &str) -> String {
    let tag = &input_hash[..TAG_HEX.min(input_hash.len())];
    format!("{REPOSITORY}/{}:{tag}", repository_component(name))
}

/// Splits a reference into the repository and the tag or digest the pull
/// API takes (`fromImage`, `tag`). A reference without either means
/// `latest`, as the docker CLI does: an empty tag would pull every tag.
pub fn split_for_pull(reference: &str) -> (&str, &str) {
    if let Some((name, digest)) = reference.split_once('@') {
        return (name, digest);
    }
    let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[last_slash..].rfind(':') {
        Some(i) => (
            &reference[..last_slash + i],
            &reference[last_slash + i + 1..],
        ),
        None => (reference, "latest"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_references() {
        let hash = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        for (name, want) in [
            (
                "datastorage",
                "localhost/harness/datastorage:0123456789abcdef",
            ),
            (
                "Data_Storage",
                "localhost/harness/data_storage:0123456789abcdef",
            ),
            ("my app!", "localhost/harness/my-app:0123456789abcdef"),
            ("--", "localhost/harness/image:0123456789abcdef"),
        ] {
            assert_eq!(built(name, hash), want, "{name}");
        }
    }

    #[test]
    fn references_split_for_pull() {
        for (reference, name, tag) in [
            ("postgres", "postgres", "latest"),
            ("postgres:16-alpine", "postgres", "16-alpine"),
            (
                "docker.io/library/postgres:16",
                "docker.io/library/postgres",
                "16",
            ),
            ("localhost:5000/app", "localhost:5000/app", "latest"),
            ("localhost:5000/app:v1", "localhost:5000/app", "v1"),
            ("redis@sha256:abcd", "redis", "sha256:abcd"),
            ("r.io:443/a/b:1@sha256:ab", "r.io:443/a/b:1", "sha256:ab"),
        ] {
            assert_eq!(split_for_pull(reference), (name, tag), "{reference}");
        }
    }
}
