//! The kind config port reader: the fixed host ports of
//! `nodes[].extraPortMappings`, or one located diagnostic.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match harness::config::kind::host_ports(Path::new("kind.yaml"), text) {
        Ok(ports) => {
            for p in &ports {
                assert_ne!(p.port, 0, "hostPort 0 is random and never listed");
                assert!(p.at.line >= 1 && p.at.column >= 1, "{p:?}");
                for q in &ports {
                    // Clashing is symmetric.
                    assert_eq!(p.clashes_with(q), q.clashes_with(p));
                }
            }
        }
        Err(d) => assert!(d.at.line >= 1 && d.at.column >= 1, "{d:?}"),
    }
});
