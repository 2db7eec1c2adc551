//! `arthai serve`: the REST API through a real HTTP client against the
//! built daemon (its security, its errors, a job's life over HTTP), many
//! shells on one home through the daemon, and the reference's plan typed
//! verbatim against it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const ARTHAI: &str = env!("CARGO_BIN_EXE_arthai");

fn arthai(home: &Path, args: &[&str]) -> Output {
    Command::new(ARTHAI)
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("ARTHA_NATIVE_RUNTIME")
        .env_remove("ARTHA_RPC_URL")
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "arthai failed ({:?}): {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn ok_json(out: &Output) -> serde_json::Value {
    serde_json::from_str(&ok(out)).unwrap()
}

/// A running `arthai serve` on a free loopback port.
struct Daemon {
    child: Child,
    url: String,
    token: String,
    home: PathBuf,
}

impl Daemon {
    fn start(home: &Path, extra: &[&str]) -> Daemon {
        let mut child = Command::new(ARTHAI)
            .arg("--home")
            .arg(home)
            .args(["--json", "serve", "--addr", "127.0.0.1:0"])
            .args(extra)
            .env_remove("ARTHA_NATIVE_RUNTIME")
            .env_remove("ARTHA_RPC_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let read = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
        let announced = read
            .ok()
            .and_then(|_| serde_json::from_str::<serde_json::Value>(&line).ok());
        let Some(v) = announced else {
            // Not left running when the test fails here.
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve printed {line:?}");
        };
        let token = std::fs::read_to_string(home.join("serve.token")).unwrap_or_default();
        Daemon {
            child,
            url: v["url"].as_str().unwrap_or_default().to_string(),
            token: token.trim().to_string(),
            home: home.to_path_buf(),
        }
    }

    fn client(&self) -> Http {
        Http {
            base: self.url.clone(),
            token: Some(self.token.clone()),
        }
    }

    /// SIGTERM, and the daemon's exit status.
    fn stop(mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "the daemon did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = &self.home;
    }
}

/// A minimal blocking HTTP/1.1 client over a TCP socket, so the tests
/// speak to the daemon exactly as any client would.
struct Http {
    base: String,
    token: Option<String>,
}

struct Resp {
    status: u16,
    headers: String,
    body: String,
}

impl Resp {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
    fn error_kind(&self) -> String {
        self.json()["error"]["kind"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

impl Http {
    fn raw(&self, request: &[u8]) -> Resp {
        use std::io::{Read, Write};
        let addr = self.base.trim_start_matches("http://");
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        s.write_all(request).unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        let text = String::from_utf8_lossy(&buf).to_string();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(body)
        } else {
            body.to_string()
        };
        Resp {
            status,
            headers: head.to_string(),
            body,
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<&str>) -> Resp {
        let mut req =
            format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
        if let Some(t) = &self.token {
            req.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        if let Some(b) = body {
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
                b.len()
            ));
        } else {
            req.push_str("\r\n");
        }
        self.raw(req.as_bytes())
    }

    fn get(&self, path: &str) -> Resp {
        self.call("GET", path, None)
    }

    fn post(&self, path: &str, body: &str) -> Resp {
        self.call("POST", path, Some(body))
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn blobs_csv(dir: &Path) -> PathBuf {
    let mut csv = String::from("x0,x1,label\n");
    for i in 0..64 {
        let c = i % 2;
        csv.push_str(&format!("{}.{},{}.5,{c}\n", c * 2, i % 7, 1 - c));
    }
    let p = dir.join("test-data.csv");
    std::fs::write(&p, csv).unwrap();
    p
}

fn model_dir(dir: &Path) -> PathBuf {
    let m = dir.join("model");
    std::fs::create_dir_all(&m).unwrap();
    std::fs::write(
        m.join("config.json"),
        r#"{"kind": "mlp", "task": "classify", "hidden": [16]}"#,
    )
    .unwrap();
    m
}

/// The API's guards and errors, and one job's life over HTTP.
#[test]
fn the_api_guards_its_routes_and_runs_a_job() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let d = Daemon::start(&home, &[]);
    let api = d.client();
    let anon = Http {
        base: d.url.clone(),
        token: None,
    };
    let wrong = Http {
        base: d.url.clone(),
        token: Some("0".repeat(64)),
    };

    // Public routes; everything else needs the token.
    assert_eq!(anon.get("/health").status, 200);
    let doc = anon.get("/openapi.json").json();
    for p in [
        "/ai/train",
        "/ai/infer",
        "/ai/agent",
        "/ai/model/register",
        "/ai/dataset/list",
        "/job/start",
        "/job/{id}/stop",
        "/job/{id}/logs",
        "/job/{id}/status",
        "/jobs",
        "/proof/submit",
        "/finalize",
        "/proofs/{job_id}",
        "/stats",
        "/metrics",
    ] {
        assert!(doc["paths"].get(p).is_some(), "{p} in the OpenAPI document");
    }
    let r = anon.get("/jobs");
    assert_eq!(r.status, 401);
    assert!(
        r.headers
            .to_ascii_lowercase()
            .contains("www-authenticate: bearer")
    );
    assert_eq!(r.error_kind(), "permission_denied");
    assert_eq!(wrong.post("/ai/train", "{}").status, 401);
    assert_eq!(wrong.get("/jobs").status, 401);

    // Bad input: named fields, right codes, nothing recorded.
    let r = api.post("/ai/train", "{not json");
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["error"]["field"], "body");
    let r = api.post(
        "/ai/train",
        r#"{"runtime": {"native": "mlp"}, "budget": 5}"#,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let r = api.post(
        "/ai/train",
        r#"{"kind": "infer", "runtime": {"native": "mlp"}}"#,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["error"]["field"], "kind");
    let big = format!(
        r#"{{"runtime": {{"native": "mlp"}}, "env": {{"A": "{}"}}}}"#,
        "x".repeat(2 << 20)
    );
    let r = api.post("/ai/train", &big);
    assert_eq!(r.status, 413, "{}", &r.body[..r.body.len().min(300)]);
    let r = api.get("/job/..%2F..%2F..%2Fetc%2Fpasswd/status");
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["error"]["field"], "job_id");
    let r = api.get("/job/../../etc/passwd");
    assert_eq!(r.status, 404, "{}", r.body);
    let unknown = format!("job-{}", "0".repeat(32));
    let r = api.get(&format!("/job/{unknown}/status"));
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.error_kind(), "not_found");
    assert_eq!(api.get("/no/such/route").status, 404);
    let r = api.get("/job/x/logs?since=-1");
    assert_eq!(r.status, 400, "{}", r.body);
    let r = api.post("/dev/advance", r#"{"secs": 0}"#);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["field"], "secs");
    assert_eq!(
        api.get("/jobs").json().as_array().unwrap().len(),
        0,
        "nothing recorded"
    );

    // A job over HTTP: register through the CLI (which talks to the daemon),
    // submit, follow its logs as a stream, read its status and proofs.
    let ds = ok(&arthai(
        &home,
        &["dataset-register", blobs_csv(tmp.path()).to_str().unwrap()],
    ));
    assert!(ds.starts_with("dataset-"), "{ds}");
    let spec = format!(
        r#"{{"runtime": {{"native": "mlp"}}, "dataset": "{ds}", "hyper": {{"epochs": 2, "batch_size": 16}},
            "resources": {{"max_duration_secs": 120}}, "proof_window": 4}}"#
    );
    let r = api.post("/ai/train", &spec);
    assert_eq!(r.status, 201, "{}", r.body);
    let sub = r.json();
    let job = sub["job_id"].as_str().unwrap().to_string();
    assert_eq!(sub["estimate"]["duration_secs"], 120);
    assert!(sub["estimate"]["cost"].as_str().unwrap().ends_with("ARTH"));
    let r = api.get(&format!("/job/{job}/logs?follow=true"));
    assert_eq!(r.status, 200);
    assert!(r.headers.contains("application/x-ndjson"), "{}", r.headers);
    for line in r.body.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v.get("text").is_some(), "{line}");
    }
    let st = api.get(&format!("/job/{job}/status")).json();
    assert_eq!(st["status"], "completed", "{st}");
    for k in [
        "job_id",
        "progress",
        "started_at",
        "completed_at",
        "duration_secs",
        "assigned_node",
        "artifacts",
        "receipts",
    ] {
        assert!(st.get(k).is_some(), "{k} in {st}");
    }
    let m = api.get(&format!("/proofs/{job}")).json();
    assert_eq!(m["job_id"], job.as_str());
    let commit = api.post("/proof/submit", &format!(r#"{{"job_id": "{job}"}}"#));
    assert_eq!(commit.status, 200, "{}", commit.body);
    let early = api.post("/finalize", &format!(r#"{{"job_id": "{job}"}}"#));
    assert_eq!(early.status, 409, "{}", early.body);
    assert_eq!(api.get("/finalize/due").json()[0]["job_id"], job.as_str());
    let stats = api.get("/stats").json();
    assert_eq!(stats["proof_commits"], 1, "{stats}");
    let metrics = anon.get("/metrics");
    assert_eq!(metrics.status, 200);
    for m in [
        "artha_jobs{phase=\"completed\"} 1",
        "artha_outbox_depth",
        "artha_gpus_in_use",
        "artha_store_bytes",
        "artha_http_request_duration_seconds_bucket",
    ] {
        assert!(metrics.body.contains(m), "{m} in metrics");
    }
    assert_eq!(api.post("/dev/advance", r#"{"secs": 7200}"#).status, 200);
    let fin = api.post("/finalize", "");
    assert_eq!(fin.status, 200, "{}", fin.body);
    assert_eq!(fin.json()["settled"], 1);
    let st = api.get(&format!("/job/{job}/status")).json();
    assert_eq!(st["status"], "settled", "{st}");

    // Graceful stop: exit 0, discovery file gone; the next command opens
    // the home itself and sees the same job.
    assert!(home.join("serve.json").exists());
    assert!(d.stop().success());
    assert!(!home.join("serve.json").exists());
    let list = ok(&arthai(&home, &["job-list"]));
    assert!(list.contains(&job), "{list}");
}

/// A caller over its rate gets 429 with Retry-After; others are not held
/// up.
#[test]
fn callers_over_their_rate_get_429() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let d = Daemon::start(
        &home,
        &[
            "--rate-limit",
            "1",
            "--burst",
            "3",
            "--request-timeout",
            "1",
        ],
    );
    let api = d.client();
    let codes: Vec<u16> = (0..6).map(|_| api.get("/jobs").status).collect();
    assert_eq!(&codes[..3], &[200, 200, 200], "{codes:?}");
    assert!(codes[3..].contains(&429), "{codes:?}");
    let r = api.get("/jobs");
    if r.status == 429 {
        assert!(r.headers.to_ascii_lowercase().contains("retry-after"));
        assert_eq!(r.error_kind(), "resource_exhausted");
    }
    // A slow client that never finishes its headers is cut off.
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(d.url.trim_start_matches("http://")).unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "the connection was closed by the daemon"
    );
    // A body that trickles in is cut at the request timeout (408), and the
    // daemon goes on answering.
    std::thread::sleep(Duration::from_secs(4));
    let mut s = std::net::TcpStream::connect(d.url.trim_start_matches("http://")).unwrap();
    let head = format!(
        "POST /ai/train HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"runt",
        d.token
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert_eq!(api.get("/health").status, 200);
    assert_eq!(api.get("/jobs").json().as_array().unwrap().len(), 0);
    assert!(d.stop().success());
}

/// Shell completions and examples in `--help`.
#[test]
fn completions_and_help_with_examples() {
    let tmp = tempfile::tempdir().unwrap();
    let out = ok(&arthai(tmp.path(), &["completions", "bash"]));
    assert!(
        out.contains("arthai") && out.contains("dataset-register"),
        "{}",
        &out[..out.len().min(200)]
    );
    for cmd in [
        "train",
        "serve",
        "dataset-register",
        "model-register",
        "job-status",
    ] {
        let help = ok(&arthai(tmp.path(), &[cmd, "--help"]));
        assert!(help.contains("Example"), "{cmd}: {help}");
    }
    let help = ok(&arthai(tmp.path(), &["train", "--help"]));
    for alias in ["--data", "--batch", "--lr", "--hold"] {
        assert!(help.contains(alias), "{alias} in {help}");
    }
}

/// Ten shells submit at once through the daemon and all get job ids;
/// status, logs, cancel work from any shell.
#[test]
fn ten_shells_at_once_share_one_home_through_the_daemon() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let d = Daemon::start(&home, &[]);
    let ds = ok(&arthai(
        &home,
        &[
            "dataset-register",
            blobs_csv(tmp.path()).to_str().unwrap(),
            "--name",
            "blobs",
        ],
    ));
    let shells: Vec<Child> = (0..10)
        .map(|i| {
            Command::new(ARTHAI)
                .arg("--home")
                .arg(&home)
                .args([
                    "train", "--data", &ds, "--epochs", "1", "--batch", "16", "--lr", "0.05",
                    "--seed",
                ])
                .arg(i.to_string())
                .arg("--detach")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let ids: Vec<String> = shells
        .into_iter()
        .map(|c| ok(&c.wait_with_output().unwrap()))
        .collect();
    assert_eq!(ids.len(), 10);
    for id in &ids {
        assert!(id.starts_with("job-"), "{id}");
    }
    let mut uniq = ids.clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(uniq.len(), 10);
    // Another shell follows one to its end; another reads its logs.
    let st = ok_json(&arthai(&home, &["--json", "job-status", &ids[0], "--wait"]));
    assert!(
        matches!(st["status"].as_str(), Some("completed" | "settled")),
        "{st}"
    );
    let logs = arthai(&home, &["job-logs", &ids[0], "--follow"]);
    assert!(logs.status.success());
    // Every job ends; the list from yet another shell shows them all.
    for id in &ids {
        let st = ok_json(&arthai(&home, &["--json", "job-status", id, "--wait"]));
        assert!(st["status"].as_str().is_some(), "{st}");
    }
    let list = ok_json(&arthai(&home, &["--json", "job-list"]));
    assert_eq!(list.as_array().unwrap().len(), 10);
    // A following command stopped by Ctrl-C says the job goes on.
    let mut follower = Command::new(ARTHAI)
        .arg("--home")
        .arg(&home)
        // Long enough to be cancelled while it runs: the native runtime
        // takes this MLP at thousands of steps a second.
        .args(["train", "--data", &ds, "--epochs", "20000", "--batch", "8"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(follower.stderr.take().unwrap());
    let mut job = String::new();
    for _ in 0..30 {
        let mut line = String::new();
        err.read_line(&mut line).unwrap();
        if let Some(id) = line.trim().strip_prefix("Job ID: ") {
            job = id.to_string();
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    Command::new("kill")
        .args(["-INT", &follower.id().to_string()])
        .status()
        .unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    let code = follower.wait().unwrap().code();
    assert!(
        rest.contains("was not cancelled") && rest.contains(&format!("job-status {job} --wait")),
        "{rest}"
    );
    assert_eq!(code, Some(130));
    let st = ok_json(&arthai(&home, &["--json", "job-cancel", &job]));
    assert_eq!(st["status"], "cancelled", "the daemon still ran it: {st}");
    // Cancel from another shell: a finished job cannot be, and says so.
    let c = arthai(&home, &["job-cancel", &ids[1]]);
    assert_eq!(
        c.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&c.stderr)
    );
    // Held from one shell, released from another.
    let held = ok(&arthai(&home, &["train", "--data", &ds, "--hold"]));
    let st = ok_json(&arthai(&home, &["--json", "job-status", &held]));
    assert_eq!(st["status"], "accepted", "{st}");
    ok(&arthai(&home, &["job-release", &held]));
    let st = ok_json(&arthai(&home, &["--json", "job-status", &held, "--wait"]));
    assert!(
        matches!(st["status"].as_str(), Some("completed" | "settled")),
        "{st}"
    );
    // Options that would open the home differently are refused while it is served.
    let r = arthai(&home, &["--store", "local", "job-list"]);
    assert_eq!(r.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&r.stderr).contains("arthai serve"));
    assert!(d.stop().success());
}

/// The reference's plan, typed as it is written (its flags and spellings),
/// against a served home: push → dataset-register with licence and tags →
/// model-register with arch, code hash and version → train with the
/// reference's flags → job-status → job-logs → dev advance → settle →
/// job-status shows the FinalReceipt.
#[test]
fn the_reference_plan_verbatim() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let d = Daemon::start(&home, &[]);
    let data_dir = tmp.path().join("test-data");
    std::fs::create_dir_all(&data_dir).unwrap();
    std::fs::copy(blobs_csv(tmp.path()), data_dir.join("train.csv")).unwrap();
    let licence = tmp.path().join("LICENSE.txt");
    std::fs::write(&licence, "CC-BY-4.0\n").unwrap();

    let pushed = ok(&arthai(
        &home,
        &[
            "storage-push",
            data_dir.to_str().unwrap(),
            "--replicas",
            "5",
            "--months",
            "12",
        ],
    ));
    let data_uri = pushed
        .lines()
        .last()
        .unwrap()
        .split_whitespace()
        .find(|w| w.starts_with("artha://"))
        .unwrap()
        .to_string();
    let lic = ok(&arthai(&home, &["storage-push", licence.to_str().unwrap()]));
    let lic_uri = lic
        .split_whitespace()
        .find(|w| w.starts_with("artha://"))
        .unwrap()
        .to_string();
    let ds = ok(&arthai(
        &home,
        &[
            "dataset-register",
            &data_uri,
            "--license",
            &lic_uri,
            "--tags",
            "nlp,english,gpt",
        ],
    ));
    assert!(ds.starts_with("dataset-"), "{ds}");
    let model = ok(&arthai(
        &home,
        &["storage-push", model_dir(tmp.path()).to_str().unwrap()],
    ));
    let model_uri = model
        .split_whitespace()
        .find(|w| w.starts_with("artha://"))
        .unwrap()
        .to_string();
    let code_hash = format!("0x{}", "ab".repeat(32));
    let m = ok(&arthai(
        &home,
        &[
            "model-register",
            &model_uri,
            "--arch",
            "mlp",
            "--dataset",
            &ds,
            "--code-hash",
            &code_hash,
            "--version",
            "v1.0",
        ],
    ));
    assert!(m.starts_with("model-"), "{m}");
    let shown = ok_json(&arthai(&home, &["--json", "model-list"]));
    assert_eq!(shown[0]["code_hash"], code_hash.as_str(), "{shown}");
    assert_eq!(shown[0]["version"], "v1.0");
    let dsl = ok_json(&arthai(&home, &["--json", "dataset-list"]));
    assert_eq!(dsl[0]["tags"], "nlp,english,gpt");
    assert_eq!(dsl[0]["license"], lic_uri.as_str());

    let train = arthai(
        &home,
        &[
            "train", "--model", &m, "--data", &ds, "--epochs", "3", "--batch", "64", "--lr",
            "0.001", "--budget", "1000",
        ],
    );
    let job = ok(&train);
    let err = String::from_utf8_lossy(&train.stderr);
    for s in [
        "Job ID: job-",
        "Estimated Cost:",
        "Estimated Duration:",
        "Budget:     1000 ARTH",
    ] {
        assert!(err.contains(s), "{s} in {err}");
    }
    let job = job
        .lines()
        .find_map(|l| l.strip_prefix("job "))
        .unwrap()
        .trim()
        .to_string();
    ok(&arthai(&home, &["job-status", &job]));
    ok(&arthai(&home, &["job-logs", &job]));
    let when = ok(&arthai(&home, &["settle", "--when"]));
    assert!(when.contains(&job), "{when}");
    ok(&arthai(&home, &["dev", "advance", "3601"]));
    let settled = ok(&arthai(&home, &["settle"]));
    assert!(settled.contains("settled 1"), "{settled}");
    let st = ok_json(&arthai(&home, &["--json", "job-status", &job]));
    let fin = st["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "FinalReceipt")
        .unwrap_or_else(|| panic!("{st}"));
    for k in ["gpu_seconds", "payout", "refund", "tx_hash"] {
        assert!(fin.get(k).is_some(), "{k} in {fin}");
    }
    let lineage = ok_json(&arthai(&home, &["--json", "model-lineage", &m]));
    assert_eq!(lineage[0]["id"], m.as_str());
    // The trained model is shown, and descends from the registered one.
    let trained = st["trained_model"]
        .as_str()
        .unwrap_or_else(|| panic!("{st}"));
    let lineage = ok_json(&arthai(&home, &["--json", "model-lineage", trained]));
    let ids: Vec<&str> = lineage
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [trained, m.as_str()], "{lineage}");
    let nodes = ok_json(&arthai(&home, &["--json", "node-list"]));
    assert_eq!(nodes.as_array().unwrap().len(), 1);
    assert!(d.stop().success());
}

/// With a certificate and key the daemon speaks TLS only, and the CLI
/// finds it (and the certificate to trust) through the discovery file.
#[test]
fn the_daemon_speaks_tls_when_given_a_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let (cert, key) = (tmp.path().join("cert.pem"), tmp.path().join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .args([
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            "extendedKeyUsage=serverAuth",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let d = Daemon::start(
        &home,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    assert!(d.url.starts_with("https://127.0.0.1:"), "{}", d.url);
    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = Http {
        base: d.url.replace("https://", "http://"),
        token: None,
    };
    assert_eq!(plain.get("/health").status, 0);
    // The CLI talks to it over TLS.
    let list = ok_json(&arthai(&home, &["--json", "job-list"]));
    assert_eq!(list.as_array().unwrap().len(), 0);
    let nodes = ok_json(&arthai(&home, &["--json", "node-list"]));
    assert_eq!(nodes.as_array().unwrap().len(), 1);
    // A key that does not match is refused at start, naming the option.
    let bad = tmp.path().join("bad.pem");
    std::fs::write(&bad, "not a key").unwrap();
    let out = arthai(
        &tmp.path().join("home2"),
        &[
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            bad.to_str().unwrap(),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("tls_key"));
    assert!(d.stop().success());
}
