use super::*;

/// The faults `faultline test` would run on `system` (a built-in, or a path to a file).
fn kinds(system: &str, nemesis: Option<&str>) -> anyhow::Result<Vec<FaultKind>> {
    let mut args = TestArgs {
        system: system.into(),
        ..TestArgs::default()
    };
    if system.ends_with(".toml") {
        args.system_file = Some(system.into());
    }
    if let Some(n) = nemesis {
        args.nemesis = n.into();
    }
    plan(&args).map(|p| p.kinds)
}

#[test]
fn the_default_faults_are_those_the_system_can_take() {
    // leaderkv's file says how a node leaves and joins: the membership fault is a
    // default. (Its file without [files], which would look for the leaderkv binary.)
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/systems/leaderkv.toml"),
    )
    .unwrap();
    let without_files = text.replace("\"{artifact.leaderkv}\" = \"{dir}/leaderkv\"", "");
    assert_ne!(without_files, text);
    let path = dir.path().join("leaderkv.toml");
    std::fs::write(&path, without_files).unwrap();
    let kv = kinds(path.to_str().unwrap(), None).unwrap();
    for k in [
        FaultKind::Partition,
        FaultKind::Pause,
        FaultKind::Kill,
        FaultKind::Member,
    ] {
        assert!(kv.contains(&k), "{kv:?}");
    }
    // etcd's file refuses clock faults (left out, no error) and says how a member leaves.
    let etcd = kinds("etcd", None).unwrap();
    assert!(!etcd.contains(&FaultKind::Clock), "{etcd:?}");
    assert!(etcd.contains(&FaultKind::Partition) && etcd.contains(&FaultKind::Member));
    // Asked for by name, a refused kind is refused with the reason.
    let e = kinds("etcd", Some("partition,clock"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("LD_PRELOAD"), "{e}");
    // The repmgr file defines no leave: `member` is left out, and refused by name.
    let repmgr = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/systems/postgres-repmgr.toml");
    let repmgr = repmgr.to_str().unwrap();
    assert!(!kinds(repmgr, None).unwrap().contains(&FaultKind::Member));
    let e = kinds(repmgr, Some("partition,member"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("[commands] leave"), "{e}");
}
