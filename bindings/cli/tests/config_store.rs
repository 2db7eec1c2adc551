//! `arthai` configured through `artha.toml`, `ARTHA_*` and `--store`: the
//! whole quickstart on an S3 store (the real moto server the test script
//! starts on loopback: `ARTHA_TEST_S3_ENDPOINT`, `ARTHA_TEST_S3_BUCKET`),
//! a configured GPU inventory, and bad configuration refused with the key
//! and file named, changing nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

const ARTHAI: &str = env!("CARGO_BIN_EXE_arthai");

fn arthai(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(ARTHAI);
    c.arg("--home").arg(home).args(args);
    for k in ["ARTHA_NATIVE_RUNTIME", "ARTHA_RPC_URL", "ARTHA_STORE"] {
        c.env_remove(k);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "arthai failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The S3 server of the test script, or `None` outside it (a failure in CI).
fn s3() -> Option<(String, String)> {
    match (
        std::env::var("ARTHA_TEST_S3_ENDPOINT"),
        std::env::var("ARTHA_TEST_S3_BUCKET"),
    ) {
        (Ok(e), Ok(b)) => Some((e, b)),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI runs the S3 tests against moto (tests/lib/s3.sh)"
            );
            eprintln!("skipped: no ARTHA_TEST_S3_ENDPOINT (run under tests/run.sh)");
            None
        }
    }
}

#[test]
fn quickstart_runs_on_an_s3_store() {
    let Some((endpoint, bucket)) = s3() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let store = format!("s3://{bucket}/quickstart-{}", std::process::id());
    let env = [
        ("ARTHA_S3_ENDPOINT", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ];
    let v = json(&arthai(
        &home,
        &["--store", &store, "--json", "quickstart"],
        &env,
    ));
    assert_eq!(v["status"], "settled", "{v:#}");
    // Every artifact is in the bucket, not in the home.
    let blobs = home.join("store").join("blobs");
    assert!(
        !blobs.exists() || std::fs::read_dir(&blobs).unwrap().next().is_none(),
        "nothing stored locally"
    );
    for (i, a) in v["artifacts"].as_array().unwrap().iter().enumerate() {
        let uri = a["uri"].as_str().unwrap();
        let dest = tmp.path().join(format!("got-{i}"));
        let got = arthai(
            &home,
            &[
                "--store",
                &store,
                "storage-get",
                uri,
                dest.to_str().unwrap(),
            ],
            &env,
        );
        assert!(
            got.status.success(),
            "{}",
            String::from_utf8_lossy(&got.stderr)
        );
        assert!(dest.exists());
        // The local store cannot serve it.
        let local = arthai(&home, &["storage-ls", uri], &[]);
        assert!(!local.status.success(), "{uri} is not in the local store");
    }
}

#[test]
fn a_silent_s3_endpoint_is_unavailable_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    // A loopback port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let env = [
        ("ARTHA_S3_ENDPOINT", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ];
    let out = arthai(
        &home,
        &["--store", "s3://nobucket/x", "--json", "job-list"],
        &env,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unavailable"), "{err}");
    assert!(err.contains("s3://nobucket/x"), "{err}");
    assert!(!home.exists(), "nothing was created");
}

#[test]
fn artha_toml_sets_the_gpu_inventory_and_bad_keys_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    // A typo is refused with the key and the file, before anything opens.
    std::fs::write(
        home.join("artha.toml"),
        "[gpus]\nsource = \"simulated\"\ncont = 2\n",
    )
    .unwrap();
    let out = arthai(&home, &["job-list"], &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("gpus.cont"), "{err}");
    assert!(err.contains("artha.toml"), "{err}");
    assert!(!home.join("jobs").exists(), "nothing was created");

    // Two simulated GPUs: a job asking for three is refused at submission.
    std::fs::write(
        home.join("artha.toml"),
        "[gpus]\nsource = \"simulated\"\ncount = 2\nmemory_mib = 8192\n",
    )
    .unwrap();
    let data = tmp.path().join("d.csv");
    std::fs::write(&data, "x0,x1,label\n0,1,0\n1,0,1\n").unwrap();
    let ds = json(&arthai(
        &home,
        &[
            "--json",
            "dataset-register",
            data.to_str().unwrap(),
            "--name",
            "d",
        ],
        &[],
    ));
    let ds = ds["id"].as_str().unwrap();
    let out = arthai(
        &home,
        &["train", "--dataset", ds, "--epochs", "1", "--gpus", "3"],
        &[],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("resources.gpus"), "{err}");
    assert!(err.contains("2 GPU"), "{err}");
    let list = json(&arthai(&home, &["--json", "job-list"], &[]));
    assert_eq!(list.as_array().unwrap().len(), 0, "nothing was submitted");
}

#[test]
fn a_malformed_store_url_names_the_option_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    for bad in ["s3://Bad_Bucket/x", "ftp://x", "s3://bucket/../up"] {
        let out = arthai(&home, &["--store", bad, "job-list"], &[]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--store"), "{bad}: {err}");
        assert!(!home.exists(), "{bad}: nothing was created");
    }
}
