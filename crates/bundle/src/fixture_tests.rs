//! The real bundles: loading, digests, namespacing, versions and run-target resolution.

use std::fs;
use std::sync::Arc;

use serde_json::json;

use super::archive::{Limits, read_bundle};
use super::error::ResolveErrorKind;
use super::manifest::{Entrypoint, Manifest, PathMap};
use super::model::{Bundle, BundleSource};
use super::pack::write_bundle_zip;
use super::registry::BundleSet;
use super::test_support::{SMALL_FLOW, fixture};

/// `(file, bundle_ref, sha256, flow ids in manifest order)` of every shipped `.flow` fixture.
const FLOW_FILES: &[(&str, &str, &str, &[&str])] = &[
    (
        "no-llm/ask-user@1.0.0.flow",
        "ask-user@1.0.0",
        "f039221ddab7cb9a70fd18d30089463e0551a02a716043827a4073ab5f986b3d",
        &["ask"],
    ),
    (
        "no-llm/chain@1.0.0.flow",
        "chain@1.0.0",
        "5cabf92b30e3132015e9a67ef6c07c4bf31c4c14d2fa5c4e06c5d4155db6af36",
        &["chain"],
    ),
    (
        "no-llm/delay@1.0.0.flow",
        "delay@1.0.0",
        "ee421f60dc7afb4c48b8432c738131dd00bbc96ff92b556544a9b70bbde3734c",
        &["delay"],
    ),
    (
        "no-llm/echo-upper@1.0.0.flow",
        "echo-upper@1.0.0",
        "6b77e37c9406732fb7fd0546d7ee7c03bb01f714447ebf19bdbc4db5bd3c0533",
        &["echo"],
    ),
    (
        "no-llm/wait-event@1.0.0.flow",
        "wait-event@1.0.0",
        "efc10181c81768fe7bd7cb95db84e82a22e2496e80f34c4b79040a069e26b240",
        &["waitev"],
    ),
    (
        "seed/basic-agent.flow",
        "basic-agent@0.0.0",
        "f4a8c09b69ca982d3c3c2d74c828f97a101ba73d90abe67b3b0e3ecf8d67ba3d",
        &["15f19f7f", "81795ea9"],
    ),
    (
        "seed/basic-agent@0.0.1.flow",
        "basic-agent@0.0.1",
        "04636bc12b460630e1638f9412229a6260ee9f9118a0cde0fd1df9589947fb0e",
        &["15f19f7f", "81795ea9"],
    ),
    (
        "seed/basic-llm-test@0.0.0.flow",
        "basic-llm-test@0.0.0",
        "d7e5cff2276bd014a5b35627a6f66c09f64b4a05d03fdb3b969eadba01af0970",
        &["ec5a574d"],
    ),
    (
        "upstream/Untitled-Flow@draft.7dc05dbc-58d5-4175-b58f-3531f5548246.flow",
        "Untitled-Flow@draft.7dc05dbc-58d5-4175-b58f-3531f5548246",
        "423a4edd884bf14aa2b452702e22e3bb404e29c843c6d422717ea543e9f3b268",
        &["0d021714"],
    ),
    (
        "upstream/basic-followup@dev.flow",
        "basic-followup@dev",
        "d17766d0f17181297c6a1386fbc04095193edce6322dc5d3b4f47c294237f581",
        &["a8f5b5f8"],
    ),
    (
        "upstream/basic@dev.flow",
        "basic@dev",
        "1ca5f05ee58a40910e64006bcdb9abf2f2b0fe877714c0f8c723e8ca8e017227",
        &["06af7170"],
    ),
    (
        "upstream/ralph@dev.flow",
        "ralph@dev",
        "8a453b99c863606a99feb070078973259ef40dcd39a429f34825c3cfc8efc1c8",
        &["ee1a6daa"],
    ),
    (
        "upstream/test@dev.flow",
        "test@dev",
        "cf33c2b3ef972f3a8d0884a912cdbdf4b25d0538bbbf428691ad93df27c5f13a",
        &["b4c6f107"],
    ),
];

fn load(rel: &str) -> Bundle {
    read_bundle(&fixture(&format!("bundles/{rel}")), &Limits::default())
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn every_shipped_bundle_loads_with_its_digest() {
    for (file, bundle_ref, sha, flows) in FLOW_FILES {
        let b = load(file);
        assert_eq!(b.bundle_ref(), *bundle_ref, "{file}");
        assert_eq!(b.sha256, *sha, "{file}");
        assert_eq!(b.flow_ids().collect::<Vec<_>>(), *flows, "{file}");
        for (fid, flow) in &b.flows {
            assert_eq!(flow["id"], format!("{bundle_ref}:{fid}"), "{file}");
            let raw: serde_json::Value = serde_json::from_slice(b.raw_flow(fid).unwrap()).unwrap();
            assert_eq!(raw["id"], *fid, "raw bytes stay un-namespaced");
        }
        assert!(b.has_flow(b.default_flow().unwrap()), "{file}");
        assert!(matches!(b.source, BundleSource::File(_)));
    }
}

#[test]
fn unpacked_sources_match_their_zips() {
    let src = fixture("bundles/no-llm/src");
    let mut dirs: Vec<_> = fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    assert_eq!(dirs.len(), 5);
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let from_dir = read_bundle(&dir, &Limits::default()).unwrap();
        let from_zip = load(&format!("no-llm/{name}.flow"));
        assert_eq!(from_dir.bundle_ref(), name);
        assert_eq!(from_dir.manifest, from_zip.manifest);
        assert_eq!(from_dir.flows, from_zip.flows);
        assert_eq!(from_dir.raw_flows, from_zip.raw_flows);
        assert_eq!(from_dir.source, BundleSource::Dir(dir.clone()));
        assert_eq!(from_dir.sha256.len(), 64);
        assert_ne!(
            from_dir.sha256, from_zip.sha256,
            "directory digest is its own encoding"
        );
        let again = read_bundle(&dir, &Limits::default()).unwrap();
        assert_eq!(
            again.sha256, from_dir.sha256,
            "directory digest is deterministic"
        );
    }
}

#[test]
fn namespacing_of_the_real_flows() {
    let b = load("seed/basic-agent@0.0.1.flow");
    let root = b.flow("81795ea9").unwrap();
    let node = |id: &str| {
        root["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(
        node("node-2")["data"]["agentConfig"]["_react_workflow_id"],
        "visual_react_agent_basic-agent_0_0_1_81795ea9_node-2"
    );
    assert_eq!(
        node("node-4")["data"]["subflowId"],
        "basic-agent@0.0.1:15f19f7f"
    );
    assert_eq!(
        node("node-5")["data"]["subflowId"],
        "basic-agent@0.0.1:15f19f7f"
    );
    assert_eq!(b.workflow_id("81795ea9"), "basic-agent@0.0.1:81795ea9");

    let ralph = load("upstream/ralph@dev.flow");
    let flow = ralph.flow("ee1a6daa").unwrap();
    let sub = flow["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == "node-25")
        .unwrap();
    assert_eq!(
        sub["data"]["subflowId"], "ralph@dev:ee1a6daa",
        "self-recursion is namespaced"
    );
    let agents: Vec<_> = flow["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["type"] == "agent")
        .map(|n| n["data"]["agentConfig"]["_react_workflow_id"].clone())
        .collect();
    assert_eq!(
        agents,
        [
            "visual_react_agent_ralph_dev_ee1a6daa_node-3",
            "visual_react_agent_ralph_dev_ee1a6daa_node-4"
        ]
    );

    let draft = load("upstream/Untitled-Flow@draft.7dc05dbc-58d5-4175-b58f-3531f5548246.flow");
    assert_eq!(
        draft.flow("0d021714").unwrap()["id"],
        "Untitled-Flow@draft.7dc05dbc-58d5-4175-b58f-3531f5548246:0d021714"
    );
}

#[test]
fn entry_inputs_and_node_index() {
    let b = load("no-llm/echo-upper@1.0.0.flow");
    assert_eq!(
        serde_json::to_value(b.entry_inputs("echo")).unwrap(),
        json!([{"id": "name", "label": "name", "type": "string", "default": "world"}])
    );
    let index = b.node_index("echo");
    assert_eq!(
        index["start"],
        json!({"type": "on_flow_start", "label": "on_flow_start"})
    );
    assert_eq!(index.keys().next().map(String::as_str), Some("start"));
    assert!(b.entry_inputs("nope").is_empty());

    let b = load("seed/basic-llm-test@0.0.0.flow");
    let inputs = b.entry_inputs("ec5a574d");
    assert_eq!(inputs.len(), 13);
    assert!(inputs.iter().all(|i| i.default.is_none()));
    assert_eq!(inputs[2].ty, "object");

    let b = load("seed/basic-agent.flow");
    let idx = b.node_index("81795ea9");
    assert_eq!(idx["node-2"]["type"], "agent");
    assert!(idx["node-2"]["headerColor"].is_string());
    let sub = b.entry_inputs("15f19f7f");
    assert_eq!(
        sub.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        ["state", "post_delay"],
        "pinDefaults keys without an output pin are not inputs"
    );
}

#[test]
fn seed_directory_loads_and_picks_latest() {
    let (set, problems) = BundleSet::load_dir(&fixture("bundles/seed"));
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(set.len(), 3);
    assert_eq!(set.versions("basic-agent"), ["0.0.0", "0.0.1"]);
    assert_eq!(set.latest_version("basic-agent"), Some("0.0.1"));
    assert_eq!(
        set.resolve_bundle_ref("basic-agent").unwrap().bundle_ref(),
        "basic-agent@0.0.1"
    );
    assert_eq!(
        set.resolve_bundle_ref("basic-agent.flow")
            .unwrap()
            .bundle_ref(),
        "basic-agent@0.0.1"
    );
    assert_eq!(
        set.resolve_bundle_ref("basic-agent@0.0.0.flow")
            .unwrap()
            .bundle_ref(),
        "basic-agent@0.0.0"
    );
    assert_eq!(set.default_bundle_id(), None);
    let refs: Vec<String> = set.iter().map(|b| b.bundle_ref()).collect();
    assert_eq!(
        refs,
        [
            "basic-agent@0.0.0",
            "basic-agent@0.0.1",
            "basic-llm-test@0.0.0"
        ]
    );
    let latest: Vec<String> = set.latest_bundles().map(|b| b.bundle_ref()).collect();
    assert_eq!(latest, ["basic-agent@0.0.1", "basic-llm-test@0.0.0"]);
    let (b, flow) = set.find_workflow("basic-agent@0.0.0:15f19f7f").unwrap();
    assert_eq!(
        (b.bundle_ref().as_str(), flow.as_str()),
        ("basic-agent@0.0.0", "15f19f7f")
    );
    assert!(set.find_workflow("basic-agent@0.0.0:nope").is_none());
    assert_eq!(
        set.find_workflow("basic-agent:81795ea9")
            .unwrap()
            .0
            .bundle_version(),
        "0.0.1"
    );
}

#[test]
fn upstream_dev_and_draft_versions_load() {
    let (set, problems) = BundleSet::load_dir(&fixture("bundles/upstream"));
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(
        set.bundle_ids().collect::<Vec<_>>(),
        ["Untitled-Flow", "basic", "basic-followup", "ralph", "test"]
    );
    assert_eq!(set.latest_version("basic"), Some("dev"));
    assert_eq!(
        set.latest_version("Untitled-Flow"),
        Some("draft.7dc05dbc-58d5-4175-b58f-3531f5548246")
    );
}

fn synthetic(id: &str, version: &str, created_at: &str, entrypoints: &[&str]) -> Bundle {
    let manifest = Manifest {
        bundle_format_version: "1".into(),
        bundle_id: id.into(),
        bundle_version: version.into(),
        created_at: created_at.into(),
        entrypoints: entrypoints
            .iter()
            .map(|f| Entrypoint {
                flow_id: (*f).into(),
                name: Some(format!("{id}-{f}")),
                description: String::new(),
                interfaces: vec![],
            })
            .collect(),
        default_entrypoint: None,
        flows: entrypoints
            .iter()
            .map(|f| (*f, format!("flows/{f}.json")))
            .collect::<PathMap>(),
        artifacts: PathMap::new(),
        assets: PathMap::new(),
        metadata: Default::default(),
        plugins: Vec::new(),
    };
    let files = entrypoints
        .iter()
        .map(|f| {
            (
                (*f).to_string(),
                format!("flows/{f}.json"),
                SMALL_FLOW.to_vec(),
            )
        })
        .collect();
    Bundle::assemble(manifest, "0".repeat(64), BundleSource::Upload, files).unwrap()
}

#[test]
fn latest_mixes_dev_draft_and_numeric_by_created_at() {
    let tmp = tempfile::tempdir().unwrap();
    for (version, created) in [
        ("dev", "2026-02-01T00:00:00+00:00"),
        ("draft.aaa", "2026-03-01T00:00:00+00:00"),
        ("1.0.0", "2026-01-01T00:00:00+00:00"),
    ] {
        let b = synthetic("mix", version, created, &["f"]);
        let files: Vec<(String, Vec<u8>)> = vec![("flows/f.json".into(), SMALL_FLOW.to_vec())];
        write_bundle_zip(
            &tmp.path().join(format!("mix@{version}.flow")),
            &b.manifest,
            &files,
        )
        .unwrap();
    }
    let (mut set, problems) = BundleSet::load_dir(tmp.path());
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(set.latest_version("mix"), Some("draft.aaa"));
    assert_eq!(set.remove("mix", Some("draft.aaa")).len(), 1);
    assert_eq!(set.latest_version("mix"), Some("dev"));
    assert_eq!(set.remove("mix", Some("nope")).len(), 0);
    assert_eq!(set.remove("mix", None).len(), 2);
    assert!(set.is_empty());
    assert!(!set.contains_id("mix"));
}

#[test]
fn bad_and_duplicate_bundles_do_not_stop_loading() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let agent = fixture("bundles/seed/basic-agent@0.0.1.flow");
    fs::copy(&agent, d.join("a.flow")).unwrap();
    fs::copy(&agent, d.join("b.flow")).unwrap();
    fs::write(d.join("broken.flow"), b"garbage").unwrap();
    fs::write(d.join(".upload_x.flow"), b"in progress").unwrap();
    fs::write(d.join("notes.txt"), b"ignored").unwrap();
    fs::create_dir(d.join("empty-dir")).unwrap();
    let unpacked = fixture("bundles/no-llm/src/echo-upper@1.0.0");
    std::os::unix::fs::symlink(&unpacked, d.join("echo")).unwrap();

    let (set, problems) = BundleSet::load_dir(d);
    assert_eq!(
        set.iter().map(|b| b.bundle_ref()).collect::<Vec<_>>(),
        ["basic-agent@0.0.1", "echo-upper@1.0.0"]
    );
    assert_eq!(
        set.get("basic-agent", "0.0.1").unwrap().source,
        BundleSource::File(d.join("a.flow"))
    );
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert_eq!(problems[0].path, d.join("b.flow"));
    assert!(
        problems[0]
            .message
            .starts_with("duplicate bundle basic-agent@0.0.1 (already loaded from "),
        "{}",
        problems[0].message
    );
    assert_eq!(problems[1].path, d.join("broken.flow"));
    assert!(
        problems[1]
            .message
            .starts_with("not a valid .flow zip archive")
    );

    let (set, problems) = BundleSet::load_dir(&d.join("missing"));
    assert!(set.is_empty());
    assert_eq!(problems.len(), 1);

    let (set, problems) = BundleSet::load_dir(&agent);
    assert!(problems.is_empty());
    assert_eq!(
        set.len(),
        1,
        "a single .flow file is a bundle directory of one"
    );
}

fn no_llm() -> BundleSet {
    let (set, problems) = BundleSet::load_dir(&fixture("bundles/no-llm"));
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(set.len(), 5);
    set
}

fn resolved(set: &BundleSet, b: Option<&str>, v: Option<&str>, f: Option<&str>) -> String {
    let (bundle, flow) = set
        .resolve_flow(b, v, f)
        .unwrap_or_else(|e| panic!("{b:?} {v:?} {f:?}: {e}"));
    bundle.workflow_id(&flow)
}

fn refused(set: &BundleSet, b: Option<&str>, v: Option<&str>, f: Option<&str>) -> (u16, String) {
    let e = set.resolve_flow(b, v, f).unwrap_err();
    (e.kind().status(), e.message().to_string())
}

#[test]
fn start_run_resolution_accepts_every_seed_form() {
    let set = no_llm();
    let echo = "echo-upper@1.0.0:echo";
    assert_eq!(resolved(&set, Some("echo-upper"), None, None), echo);
    assert_eq!(resolved(&set, Some("echo-upper@1.0.0"), None, None), echo);
    assert_eq!(
        resolved(&set, Some("echo-upper"), Some("1.0.0"), None),
        echo
    );
    assert_eq!(
        resolved(&set, Some(" echo-upper "), Some(""), Some("echo")),
        echo
    );
    assert_eq!(resolved(&set, None, None, Some("echo-upper:echo")), echo);
    assert_eq!(
        resolved(&set, None, None, Some("echo-upper@1.0.0:echo")),
        echo
    );
    assert_eq!(
        resolved(&set, Some("echo-upper"), None, Some("echo-upper:echo")),
        echo
    );
    assert_eq!(
        resolved(&set, None, Some("1.0.0"), Some("echo-upper:echo")),
        echo
    );
    // An entrypoint name that is unique across the loaded bundles.
    assert_eq!(resolved(&set, None, None, Some("echo-upper")), echo);
    assert_eq!(resolved(&set, Some("ECHO-UPPER"), None, None), echo);
}

/// `(bundle_id, bundle_version, flow_id, status, message)`.
type ResolveCase<'a> = (
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    u16,
    &'a str,
);

#[test]
fn start_run_resolution_errors_match_the_seed() {
    let set = no_llm();
    let cases: &[ResolveCase] = &[
        (
            None,
            None,
            None,
            400,
            "flow_id is required (or provide bundle_id to start a bundle entrypoint)",
        ),
        (
            Some(" "),
            None,
            Some(""),
            400,
            "flow_id is required (or provide bundle_id to start a bundle entrypoint)",
        ),
        (Some("nope"), None, None, 404, "Bundle not found"),
        (
            Some("echo-upper"),
            Some("9.9.9"),
            None,
            404,
            "Bundle not found",
        ),
        (
            Some("echo-upper"),
            None,
            Some("nope"),
            404,
            "Flow 'nope' not found",
        ),
        (
            Some("nope"),
            None,
            Some("echo"),
            404,
            "Flow 'echo' not found",
        ),
        (
            None,
            None,
            Some("echo-upper:nope"),
            404,
            "Flow 'echo-upper:nope' not found",
        ),
        (
            None,
            None,
            Some("echo"),
            400,
            "Failed to start run: bundle_id is required when multiple bundles are loaded (or pass flow_id as 'bundle:flow')",
        ),
        (
            Some("delay"),
            None,
            Some("echo-upper:echo"),
            400,
            "Failed to start run: flow_id bundle prefix does not match bundle_id",
        ),
        (
            Some("echo-upper@1.0.0"),
            Some("2.0.0"),
            None,
            400,
            "Failed to start run: bundle_version conflicts with bundle_id (bundle_id already includes '@version')",
        ),
        (
            None,
            Some("2.0.0"),
            Some("echo-upper@1.0.0:echo"),
            400,
            "Failed to start run: flow_id version does not match bundle_version",
        ),
        (
            Some("delay"),
            None,
            Some("scheduled:1234"),
            400,
            "Failed to start run: flow_id 'scheduled:1234' is already namespaced, but bundle_id/bundle_version was also provided",
        ),
    ];
    for (b, v, f, status, message) in cases {
        assert_eq!(
            refused(&set, *b, *v, *f),
            (*status, message.to_string()),
            "{b:?} {v:?} {f:?}"
        );
    }

    let e = set
        .resolve_flow(None, None, Some("scheduled:1234"))
        .unwrap_err();
    assert_eq!(e.kind(), ResolveErrorKind::NotFound);
    assert_eq!(e.message(), "Flow 'scheduled:1234' not found");
    assert_eq!(e.verbatim_workflow_id(), Some("scheduled:1234"));
}

#[test]
fn single_bundle_is_the_default_and_entrypoint_rules_apply() {
    let mut set = BundleSet::new();
    set.insert(synthetic("multi", "1.0.0", "", &["a", "b"]));
    assert_eq!(set.default_bundle_id(), Some("multi"));
    assert_eq!(resolved(&set, None, None, Some("b")), "multi@1.0.0:b");
    assert_eq!(resolved(&set, None, None, Some("multi-a")), "multi@1.0.0:a");
    assert_eq!(
        refused(&set, Some("multi"), None, None),
        (
            400,
            "Failed to start run: Bundle 'multi@1.0.0' has 2 entrypoints; specify flow_id to select which \
             entrypoint to start (or set manifest.default_entrypoint)"
                .to_string()
        )
    );
    let b = set.get("multi", "1.0.0").unwrap();
    assert!(b.default_flow().is_err());

    let mut with_default = synthetic("multi", "1.0.1", "", &["a", "b"]);
    with_default.manifest.default_entrypoint = Some("b".into());
    let replaced = set.insert(with_default);
    assert!(replaced.is_none());
    assert_eq!(resolved(&set, Some("multi"), None, None), "multi@1.0.1:b");
    assert_eq!(
        resolved(&set, Some("multi"), Some("1.0.0"), Some("a")),
        "multi@1.0.0:a"
    );
    assert!(
        set.insert(Arc::new(synthetic("multi", "1.0.0", "", &["a"])))
            .is_some()
    );
    assert_eq!(
        resolved(&set, Some("multi@1.0.0"), None, None),
        "multi@1.0.0:a"
    );

    // Entrypoint names matching in two bundles are ambiguous.
    set.insert(synthetic("other", "1.0.0", "", &["x"]));
    let mut clash = synthetic("third", "1.0.0", "", &["y"]);
    clash.manifest.entrypoints[0].name = Some("other-x".into());
    set.insert(clash);
    let (status, msg) = refused(&set, None, None, Some("other-x"));
    assert_eq!(status, 400);
    assert!(
        msg.contains("matches multiple entrypoints (other@1.0.0, third@1.0.0)"),
        "{msg}"
    );
}

#[test]
fn get_bundle_errors_match_the_seed() {
    let set = no_llm();
    let err = |id: &str, v: Option<&str>| {
        let e = set.get_bundle(id, v).unwrap_err();
        (e.kind().status(), e.message().to_string())
    };
    assert_eq!(err("nope", None), (404, "Bundle 'nope' not found".into()));
    assert_eq!(
        err("echo-upper@9", None),
        (404, "Bundle 'echo-upper@9' not found".into())
    );
    assert_eq!(
        err("echo-upper", Some("9")),
        (404, "Bundle 'echo-upper@9' not found".into())
    );
    assert_eq!(err("", None), (400, "bundle_id is required".into()));
    assert_eq!(
        err("echo-upper@1.0.0", Some("2")),
        (
            400,
            "bundle_version conflicts with bundle_id (bundle_id already includes '@version')"
                .into()
        )
    );
    assert_eq!(
        set.get_bundle("echo-upper@1.0.0", Some("1.0.0"))
            .unwrap()
            .bundle_ref(),
        "echo-upper@1.0.0"
    );
}
