//! Bad input never yields a step record: the runtime reports an `error`
//! event with the reason, says it on standard error, and exits non-zero
//! (2 bad input, 3 non-finite loss, 4 cannot write).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Job, Table, blobs, regression};

/// A job with a small valid training set and settings.
fn job() -> (Job, Table) {
    let t = blobs(21, 64, 2, 2, 3.0);
    let mut j = Job::new();
    j.data_file("train.csv", &t.csv());
    j.set(&[("EPOCHS", "2"), ("BATCH_SIZE", "16"), ("ARTHA_HIDDEN", "8")]);
    (j, t)
}

#[test]
fn missing_data_is_reported() {
    let j = Job::new();
    j.run(&[]).assert_failed(2, "no data file");
    let (mut j, _) = job();
    j.set(&[("ARTHA_DATA_FILE", "missing.csv")]);
    j.run(&[]).assert_failed(2, "data file not found");
    let (mut j, _) = job();
    j.set(&[("ARTHA_DATA_FILE", "../train.csv")]);
    j.run(&[]).assert_failed(2, "without `..`");
    let (mut j, _) = job();
    j.set(&[("ARTHA_DATA_DIR", "/nonexistent/artha-data")]);
    j.run(&[])
        .assert_failed(2, "cannot read the data directory");
    // NPY inputs without their targets.
    let j = Job::new();
    let (x, _) = regression(1, 10).npy();
    j.data_file("x.npy", &x);
    j.run(&[]).assert_failed(2, "y.npy");
}

#[test]
fn malformed_data_files_are_reported_with_the_place() {
    for (body, needle) in [
        (&b"a,b,label\n1,2,0\n3,oops,1\n"[..], "line 3, column 2"),
        (
            b"a,b,label\n1,2,0\n1,2,1,4\n",
            "line 3: 4 columns, the header has 3",
        ),
        (b"a,b,label\n1,2,0.5\n", "not a class index"),
        (b"a,b,label\n1,inf,1\n", "not a finite number"),
        (b"a,b,label\n", "no data rows"),
        (b"label\n1\n", "need at least one input column"),
        (b"\xff\xfe\x00", "not UTF-8"),
    ] {
        let mut j = Job::new();
        j.data_file("train.csv", body);
        j.set(&[("ARTHA_HIDDEN", "4")]);
        j.run(&[]).assert_failed(2, needle);
    }
    let npy = regression(2, 12).npy();
    let mut truncated = npy.0.clone();
    truncated.truncate(truncated.len() - 4);
    for (x, y, needle) in [
        (b"\x93NUMPX".to_vec(), npy.1.clone(), "bad magic"),
        (truncated, npy.1.clone(), "data bytes"),
        (
            npy.0.clone(),
            artha_runtime::data::npy_f32_bytes(&[2, 2, 3], &[0.0; 12]),
            "do not match 12 input rows",
        ),
    ] {
        let mut j = Job::new();
        j.data_file("x.npy", &x);
        j.data_file("y.npy", &y);
        j.set(&[("ARTHA_TASK", "regress")]);
        j.run(&[]).assert_failed(2, needle);
    }
}

#[test]
fn shape_mismatches_are_reported() {
    // Targets with fewer rows than the inputs.
    let t = regression(3, 30);
    let mut j = Job::new();
    let (x, _) = t.npy();
    j.data_file("x.npy", &x);
    j.data_file(
        "y.npy",
        &artha_runtime::data::npy_f32_bytes(&[29], &t.y[..29]),
    );
    j.set(&[("ARTHA_TASK", "regress")]);
    j.run(&[]).assert_failed(2, "do not match 30 input rows");
    // Labels beyond the number of classes the job asks for.
    let (mut j, _) = job();
    j.data_file("train.csv", b"a,b,label\n1,2,0\n3,4,5\n");
    j.set(&[("ARTHA_CLASSES", "3")]);
    j.run(&[]).assert_failed(2, "label 5 is out of range");
    // Logistic regression with hidden layers.
    let (mut j, _) = job();
    j.set(&[("ARTHA_MODEL_KIND", "logreg")]);
    j.run(&[]).assert_failed(2, "no hidden layers");
    // Inference inputs that do not fit the model.
    let (j, _) = job();
    j.run_ok(&[]);
    let server = Job::new();
    std::fs::copy(
        j.checkpoints.join("final.safetensors"),
        server.model.join("final.safetensors"),
    )
    .unwrap();
    server.data_file("inputs.csv", b"a,b,c,d,e\n1,2,3,4,5\n");
    server
        .run(&["infer"])
        .assert_failed(2, "inputs have 5 columns, the model takes 2");
}

#[test]
fn a_non_finite_loss_stops_the_run_before_its_step_is_reported() {
    // Targets whose squared error overflows f32 at the first step.
    let mut j = Job::new();
    j.data_file("train.csv", b"a,b,y\n1,2,3e38\n3,4,-3e38\n");
    j.set(&[("ARTHA_TASK", "regress"), ("ARTHA_HIDDEN", "4")]);
    j.run(&[]).assert_failed(3, "loss is not finite");

    // A run that diverges after some good steps: the steps it computed are
    // reported, the one whose loss went non-finite is not.
    let mut t = regression(4, 64);
    for row in &mut t.x {
        for v in row.iter_mut() {
            *v *= 1000.0;
        }
    }
    let mut j = Job::new();
    j.data_file("train.csv", &t.csv());
    j.set(&[
        ("ARTHA_TASK", "regress"),
        ("ARTHA_OPTIMIZER", "sgd"),
        ("LEARNING_RATE", "10"),
        ("ARTHA_HIDDEN", "8"),
        ("BATCH_SIZE", "8"),
        ("EPOCHS", "50"),
    ]);
    let out = j.run(&[]);
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    let steps = out.steps();
    let errors = out.errors();
    assert_eq!(errors.len(), 1);
    let bad = steps.len() as u64 + 1;
    assert!(
        errors[0].contains(&format!("at step {bad}:")),
        "{} after {} steps",
        errors[0],
        steps.len()
    );
    common::assert_contiguous(&steps, 1, bad - 1);
    assert!(steps.iter().all(|s| s.loss.is_finite()));
}

#[test]
fn checkpoints_of_another_model_or_run_are_refused() {
    let (j, _) = job();
    j.run_ok(&[]);
    let ck = j.checkpoints.join("final.safetensors");
    let resume = ck.to_str().unwrap();
    // Another architecture, another seed, another batch size, other
    // optimizer settings, other data.
    for (extra, needle) in [
        (&[("ARTHA_HIDDEN", "16")][..], "another architecture"),
        (
            &[("ARTHA_MODEL_KIND", "logreg"), ("ARTHA_HIDDEN", "")],
            "another model kind",
        ),
        (&[("ARTHA_TASK", "regress")], "another task"),
        (&[("ARTHA_SEED", "5")], "another run (seed)"),
        (&[("BATCH_SIZE", "8")], "another run (batch size)"),
        (
            &[("LEARNING_RATE", "0.5")],
            "another run (optimizer settings)",
        ),
        (
            &[("ARTHA_OPTIMIZER", "sgd")],
            "another run (optimizer settings)",
        ),
    ] {
        let (mut k, _) = job();
        k.set(&[("ARTHA_RESUME", resume)]).set(extra);
        k.run(&[]).assert_failed(2, needle);
    }
    let (mut k, _) = job();
    k.data_file("train.csv", &blobs(22, 64, 2, 2, 3.0).csv());
    k.set(&[("ARTHA_RESUME", resume)]);
    k.run(&[]).assert_failed(2, "another dataset");
    let (mut k, _) = job();
    k.data_file("train.csv", &blobs(21, 64, 3, 2, 3.0).csv());
    k.set(&[("ARTHA_RESUME", resume)]);
    k.run(&[]).assert_failed(2, "another input width");

    // Not a checkpoint, a tampered one, a missing one.
    let (mut k, _) = job();
    std::fs::write(k.checkpoints.join("junk.safetensors"), b"junk bytes here").unwrap();
    k.set(&[("ARTHA_RESUME", "junk.safetensors")]);
    k.run(&[]).assert_failed(2, "not a safetensors file");
    // Flipped bits in the weights (the first tensor in the file) or in the
    // optimizer state (the last one).
    let clean = std::fs::read(&ck).unwrap();
    let header = u64::from_le_bytes(clean[..8].try_into().unwrap()) as usize;
    for (at, needle) in [
        (8 + header, "weights do not match"),
        (clean.len() - 1, "optimizer state does not match"),
    ] {
        let (mut k, _) = job();
        let mut bytes = clean.clone();
        bytes[at] ^= 0x01;
        std::fs::write(k.checkpoints.join("step-00000002.safetensors"), &bytes).unwrap();
        k.set(&[("ARTHA_RESUME", "latest")]);
        k.run(&[]).assert_failed(2, needle);
    }
    let (mut k, _) = job();
    k.set(&[("ARTHA_RESUME", "step-00000099.safetensors")]);
    k.run(&[])
        .assert_failed(2, "checkpoint to resume from not found");
    // Replaying up to a step before the checkpoint.
    let (mut k, _) = job();
    k.set(&[("ARTHA_RESUME", resume), ("ARTHA_MAX_STEPS", "3")]);
    k.run(&[])
        .assert_failed(2, "before the step the run resumes from");
    // Inference with a safetensors file that is not an artha checkpoint.
    let server = Job::new();
    std::fs::write(
        server.model.join("model.safetensors"),
        b"\x08\0\0\0\0\0\0\0{}      ",
    )
    .unwrap();
    server.data_file("inputs.csv", b"a,b\n1,2\n");
    server
        .run(&["infer"])
        .assert_failed(2, "not an artha-runtime checkpoint");
}

#[test]
fn an_unwritable_checkpoint_directory_is_reported() {
    let (mut j, _) = job();
    // Below a regular file: no user (root included) can create it.
    let file = j.root.path().join("plain-file");
    std::fs::write(&file, b"").unwrap();
    let dir = file.join("checkpoints");
    j.set(&[("ARTHA_CHECKPOINT_DIR", dir.to_str().unwrap())]);
    j.run(&[])
        .assert_failed(4, "checkpoint directory is not writable");
    // The inference output directory likewise.
    let (t, _) = job();
    t.run_ok(&[]);
    let mut server = Job::new();
    std::fs::copy(
        t.checkpoints.join("final.safetensors"),
        server.model.join("final.safetensors"),
    )
    .unwrap();
    server.data_file("inputs.csv", b"a,b\n1,2\n");
    server.set(&[("ARTHA_OUTPUT_DIR", dir.to_str().unwrap())]);
    let out = server.run(&["infer"]);
    assert_eq!(out.code, Some(4), "{}", out.stderr);
    assert!(out.errors()[0].contains("output directory is not writable"));
}

#[test]
fn bad_settings_and_arguments_are_reported() {
    for (extra, needle) in [
        (&[("EPOCHS", "many")][..], "EPOCHS"),
        (&[("BATCH_SIZE", "0")], "BATCH_SIZE"),
        (&[("LEARNING_RATE", "-1")], "LEARNING_RATE"),
        (&[("ARTHA_OPTIMIZER", "lbfgs")], "not an optimizer"),
        (&[("ARTHA_MODEL_KIND", "transformer")], "not a model"),
        (&[("ARTHA_MODE", "agent")], "not a mode"),
        (&[("ARTHA_HIDDEN", "8,x")], "ARTHA_HIDDEN"),
        (&[("ARTHA_DEVICE", "cuda")], "no CUDA support"),
    ] {
        let (mut j, _) = job();
        j.set(extra);
        j.run(&[]).assert_failed(2, needle);
    }
    let (j, _) = job();
    j.run(&["fly", "away"])
        .assert_failed(2, "unexpected arguments");
    // A malformed model configuration file.
    let (j, _) = job();
    std::fs::write(j.model.join("config.json"), b"{\"layers\": 3}").unwrap();
    j.run(&[]).assert_failed(2, "malformed model configuration");
}

#[test]
fn an_unwritable_events_file_is_reported_on_stderr() {
    let (mut j, _) = job();
    j.set(&[("ARTHA_EVENTS", "/nonexistent/artha/events.jsonl")]);
    let out = j.run(&[]);
    assert_eq!(out.code, Some(4));
    assert!(out.stderr.contains("events file"), "{}", out.stderr);
    assert!(!j.checkpoints.join("final.safetensors").exists());
}
