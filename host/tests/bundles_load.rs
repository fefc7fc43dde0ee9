//! Every fixture bundle loads, or is refused with a message naming the node type it cannot run and
//! its node id; a refused bundle never keeps the others from loading.

mod in_process;

use in_process::shared;

use std::sync::Arc;

use abstractgateway::bundle::{BundleSet, Limits, read_bundle};
use abstractgateway::engine::NodeRegistry;
use abstractgateway::runner::catalog;

#[test]
fn every_fixture_bundle_loads_or_names_what_it_lacks() {
    let mut all = Vec::new();
    for sub in ["no-llm", "seed", "upstream"] {
        let (set, problems) = BundleSet::load_dir(&shared().join("fixtures/bundles").join(sub));
        assert!(
            problems.is_empty(),
            "archive/manifest problems in {sub}: {problems:?}"
        );
        all.extend(set.iter().cloned());
    }
    assert_eq!(all.len(), 13);
    let (flows, loaded, problems) = catalog::build(all, &NodeRegistry::new());
    let loaded: Vec<String> = loaded.iter().map(|b| b.bundle_ref()).collect();
    for b in [
        "ask-user@1.0.0",
        "chain@1.0.0",
        "delay@1.0.0",
        "echo-upper@1.0.0",
        "wait-event@1.0.0",
    ] {
        assert!(
            loaded.contains(&b.to_string()),
            "{b} must load: {problems:?}"
        );
    }
    assert!(flows.get("echo-upper@1.0.0:echo").is_some());
    assert_eq!(problems.len(), 8, "{problems:?}");
    let node_msg = regex::Regex::new(r#"node type "[a-z_]+" \(node [^)]+\)"#).expect("regex");
    for p in &problems {
        assert!(
            node_msg.is_match(&p.message) || p.message.contains("loop body"),
            "{p:?}"
        );
    }
    // The seed's upstream basic-followup has a real authoring error the seed also refuses.
    assert!(
        problems
            .iter()
            .any(|p| p.source == "basic-followup@dev" && p.message.contains("goes back out of"))
    );
}

#[test]
fn a_directory_bundle_and_its_zip_have_the_same_flows() {
    let dir = read_bundle(
        &shared().join("fixtures/bundles/no-llm/src/echo-upper@1.0.0"),
        &Limits::default(),
    )
    .expect("dir");
    let zip = read_bundle(
        &shared().join("fixtures/bundles/no-llm/echo-upper@1.0.0.flow"),
        &Limits::default(),
    )
    .expect("zip");
    assert_eq!(dir.bundle_ref(), zip.bundle_ref());
    assert_eq!(dir.flow("echo"), zip.flow("echo"));
    let (f1, _, p1) = catalog::build(vec![Arc::new(dir)], &NodeRegistry::new());
    let (f2, _, p2) = catalog::build(vec![Arc::new(zip)], &NodeRegistry::new());
    assert!(p1.is_empty() && p2.is_empty());
    assert_eq!(f1.len(), f2.len());
}
