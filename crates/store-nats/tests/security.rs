//! A node's connection to servers that require TLS (mutual TLS) and authentication: each method the gateway
//! offers joins, appends, tails and takes the lease; a wrong secret, a missing client certificate, an untrusted
//! server or a plain-text connection is refused at connect with an error that names no secret.

mod common;

use std::path::PathBuf;

use abstractgateway_store::replica::{EntryKind, Log};
use abstractgateway_store_nats::{Auth, Cluster, ClusterConfig, NatsError, Security, Tls};
use abstractgateway_testkit::nats::{NatsCluster, TlsFiles};
use common::{MemApplier, config, runtime, wait_until, within};

/// A node config for `url` with `security`.
fn secured(url: &str, security: Security) -> ClusterConfig {
    let mut cfg = config(url, "secure");
    cfg.security = security;
    cfg
}

/// TLS with this test's CA and client certificate.
fn mutual(files: &TlsFiles) -> Tls {
    Tls {
        required: true,
        ca: Some(files.ca.clone()),
        client: Some((files.client_cert.clone(), files.client_key.clone())),
    }
}

/// Connecting works end to end: the stream and buckets exist, an intake append lands and is tailed, the lease is
/// taken and an owner append lands after the marker.
fn works(rt: &tokio::runtime::Runtime, cfg: ClusterConfig) {
    let cluster = within(rt, 30, "connect", Cluster::connect(cfg)).expect("connects");
    let log = cluster.log();
    let first = log.append_intake("s:1", b"hello".to_vec()).expect("intake");
    let replica = MemApplier::new();
    let tailer = cluster.tail(replica.clone());
    within(rt, 20, "caught up", tailer.caught_up());
    let _lease = within(
        rt,
        20,
        "acquire",
        cluster.acquire(replica.clone(), Box::new(|| {})),
    )
    .expect("lease");
    let owned = log
        .append_owned(0, b"owned".to_vec())
        .expect("owner append");
    wait_until(10, "owner entry applied", || {
        replica.entries().iter().any(|a| a.seq == owned)
    });
    let kinds: Vec<EntryKind> = replica.entries().iter().map(|a| a.kind).collect();
    assert_eq!(
        kinds,
        vec![EntryKind::Intake, EntryKind::Marker, EntryKind::Owned]
    );
    assert_eq!(replica.entries()[0].seq, first.seq);
}

/// Connecting fails with a `Connect` or `Config` error that does not contain `secret`.
fn refused(rt: &tokio::runtime::Runtime, cfg: ClusterConfig, secret: &str) -> String {
    let err = match within(rt, 30, "connect", Cluster::connect(cfg)) {
        Ok(_) => panic!("connected although it must be refused"),
        Err(e) => e,
    };
    assert!(
        matches!(err, NatsError::Connect(_) | NatsError::Config(_)),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        secret.is_empty() || !text.contains(secret),
        "the error shows a secret: {text}"
    );
    text
}

#[test]
fn mutual_tls_with_user_and_password() {
    let dir = tempfile::tempdir().expect("dir");
    let files = TlsFiles::make(dir.path());
    let extra = format!(
        "{}authorization {{\n  users = [ {{ user: \"ag\", password: \"pw-right-1\" }} ]\n}}\n",
        files.server_block(true)
    );
    let nats = NatsCluster::start_with(1, &extra);
    let rt = runtime();
    let user = |password: &str| Auth::UserPassword {
        user: "ag".into(),
        password: password.into(),
    };
    works(
        &rt,
        secured(
            &nats.url(),
            Security {
                auth: user("pw-right-1"),
                tls: mutual(&files),
            },
        ),
    );
    // A wrong password.
    refused(
        &rt,
        secured(
            &nats.url(),
            Security {
                auth: user("pw-wrong-2"),
                tls: mutual(&files),
            },
        ),
        "pw-wrong-2",
    );
    // No client certificate, where the server verifies clients.
    let mut tls = mutual(&files);
    tls.client = None;
    refused(
        &rt,
        secured(
            &nats.url(),
            Security {
                auth: user("pw-right-1"),
                tls,
            },
        ),
        "pw-right-1",
    );
    // A server whose CA this node does not trust (the system's roots only).
    let mut tls = mutual(&files);
    tls.ca = None;
    refused(
        &rt,
        secured(
            &nats.url(),
            Security {
                auth: user("pw-right-1"),
                tls,
            },
        ),
        "pw-right-1",
    );
    // A client certificate signed by another CA.
    let other_dir = tempfile::tempdir().expect("dir");
    let other = TlsFiles::make(other_dir.path());
    let mut tls = mutual(&files);
    tls.client = Some((other.client_cert.clone(), other.client_key.clone()));
    refused(
        &rt,
        secured(
            &nats.url(),
            Security {
                auth: user("pw-right-1"),
                tls,
            },
        ),
        "pw-right-1",
    );
}

#[test]
fn token_and_nkey_over_tls_url() {
    let dir = tempfile::tempdir().expect("dir");
    let files = TlsFiles::make(dir.path());
    let key = nkeys::KeyPair::new_user();
    let seed = key.seed().expect("seed");
    let seed_file = dir.path().join("user.nk");
    std::fs::write(&seed_file, format!("{seed}\n")).expect("seed file");
    // One server with both: a token for one client kind is not allowed beside users, so two servers.
    let token_nats = NatsCluster::start_with(
        1,
        &format!(
            "{}authorization {{\n  token: \"tok-right-3\"\n}}\n",
            files.server_block(false)
        ),
    );
    let nkey_nats = NatsCluster::start_with(
        1,
        &format!(
            "{}authorization {{\n  users = [ {{ nkey: \"{}\" }} ]\n}}\n",
            files.server_block(false),
            key.public_key()
        ),
    );
    let rt = runtime();
    // A tls:// URL requires TLS with only a CA set.
    let tls_url = |nats: &NatsCluster| nats.url().replacen("nats://", "tls://", 1);
    let server_only = Tls {
        required: false,
        ca: Some(files.ca.clone()),
        client: None,
    };
    let mut cfg = ClusterConfig::parse(&tls_url(&token_nats)).expect("tls url");
    assert!(cfg.security.tls.required);
    cfg.security.tls.ca = Some(files.ca.clone());
    cfg.security.auth = Auth::Token("tok-right-3".into());
    cfg.node_id = "token".into();
    works(&rt, cfg);
    refused(
        &rt,
        secured(
            &token_nats.url(),
            Security {
                auth: Auth::Token("tok-wrong-4".into()),
                tls: server_only.clone(),
            },
        ),
        "tok-wrong-4",
    );
    // No credentials at all.
    refused(
        &rt,
        secured(
            &token_nats.url(),
            Security {
                auth: Auth::None,
                tls: server_only.clone(),
            },
        ),
        "",
    );
    works(
        &rt,
        secured(
            &nkey_nats.url(),
            Security {
                auth: Auth::NkeySeedFile(seed_file.clone()),
                tls: server_only.clone(),
            },
        ),
    );
    // Another user's seed.
    let stranger = dir.path().join("stranger.nk");
    std::fs::write(&stranger, nkeys::KeyPair::new_user().seed().expect("seed")).expect("seed file");
    refused(
        &rt,
        secured(
            &nkey_nats.url(),
            Security {
                auth: Auth::NkeySeedFile(stranger),
                tls: server_only.clone(),
            },
        ),
        "",
    );
    // A file that is not a seed is named at start; a missing file too.
    let not_seed = dir.path().join("garbage.nk");
    std::fs::write(&not_seed, "not a seed").expect("file");
    for (file, says) in [
        (not_seed, "not an nkey seed"),
        (PathBuf::from("/nonexistent/user.nk"), "nkey seed file"),
    ] {
        let text = refused(
            &rt,
            secured(
                &nkey_nats.url(),
                Security {
                    auth: Auth::NkeySeedFile(file),
                    tls: server_only.clone(),
                },
            ),
            "",
        );
        assert!(text.contains(says), "{text}");
    }
}
