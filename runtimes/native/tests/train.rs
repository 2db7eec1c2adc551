//! The `artha-runtime` binary trains real models, serves them, and is
//! bit-deterministic: across runs, thread counts, resumes and replays.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use artha_core::{JobTree, MerkleTree, RuntimeEvent, tensor_digest_f32};
use common::{
    Job, Table, assert_contiguous, blobs, last_epoch_loss, read_predictions, regression, variance,
};

/// Trains, then serves `inputs` with the final weights; returns the
/// predictions file's header and rows.
fn serve(
    trained: &Job,
    inputs: &[u8],
    name: &str,
    extra: &[(&str, &str)],
) -> (Job, Vec<String>, Vec<Vec<f32>>) {
    let mut job = Job::new();
    std::fs::copy(
        trained.checkpoints.join("final.safetensors"),
        job.model.join("final.safetensors"),
    )
    .unwrap();
    job.data_file(name, inputs);
    job.set(extra);
    let out = job.run_ok(&["infer"]);
    assert!(!out.infers().is_empty());
    let (header, rows) = read_predictions(&job.checkpoints.join("predictions.csv"));
    (job, header, rows)
}

fn accuracy(rows: &[Vec<f32>], table: &Table) -> f64 {
    let right = rows
        .iter()
        .zip(&table.y)
        .filter(|(r, y)| r[0] == **y)
        .count();
    right as f64 / table.y.len() as f64
}

#[test]
fn mlp_classifier_learns_blobs_from_csv() {
    let train = blobs(1, 360, 4, 3, 4.0);
    let mut job = Job::new();
    job.data_file("train.csv", &train.csv());
    job.set(&[
        ("EPOCHS", "12"),
        ("BATCH_SIZE", "32"),
        ("LEARNING_RATE", "0.01"),
        ("ARTHA_SEED", "7"),
        ("ARTHA_HIDDEN", "16"),
        ("ARTHA_CHECKPOINT_EVERY", "25"),
    ]);
    let out = job.run_ok(&[]);
    let steps = out.steps();
    // 360 rows in batches of 32: 12 steps an epoch (the last one short).
    assert_contiguous(&steps, 1, 144);
    assert!(steps.iter().all(|s| s.epoch == ((s.step - 1) / 12) as u32));
    let first = steps[0].loss;
    let last = last_epoch_loss(&steps);
    assert!(
        first > 0.5,
        "an untrained 3-class model starts near ln 3: {first}"
    );
    assert!(last < 0.1, "last epoch's loss {last} (first step {first})");
    let ck = out.checkpoints();
    let want: Vec<(String, u64)> = [25, 50, 75, 100, 125]
        .iter()
        .map(|&k| (format!("step-{k:08}.safetensors"), k))
        .chain([("final.safetensors".to_string(), 144)])
        .collect();
    assert_eq!(ck, want);
    for (name, _) in &ck {
        assert!(job.checkpoints.join(name).is_file(), "{name}");
    }
    // Each checkpoint event follows the record of its step, at once.
    let mut last_step = 0;
    for e in &out.events {
        match e {
            RuntimeEvent::Step(s) => last_step = s.step,
            RuntimeEvent::Checkpoint { step, .. } => assert_eq!(*step, last_step),
            _ => {}
        }
    }
    let (steps_run, final_weights) = out.complete();
    assert_eq!(steps_run, 144);
    assert_eq!(final_weights, steps.last().unwrap().weight_digest);

    // Held-out samples from the same distribution.
    let test = blobs(2, 150, 4, 3, 4.0);
    let (_, header, rows) = serve(&job, &test.inputs_csv(), "inputs.csv", &[]);
    assert_eq!(header, ["prediction", "p0", "p1", "p2"]);
    assert_eq!(rows.len(), 150);
    for r in &rows {
        let total: f32 = r[1..].iter().sum();
        assert!((total - 1.0).abs() < 1e-4, "{r:?}");
    }
    let acc = accuracy(&rows, &test);
    assert!(acc >= 0.95, "held-out accuracy {acc}");
}

#[test]
fn mlp_regressor_learns_from_npy_with_sgd_momentum() {
    let train = regression(3, 400);
    let mut job = Job::new();
    let (x, y) = train.npy();
    job.data_file("x.npy", &x);
    job.data_file("y.npy", &y);
    job.set(&[
        ("ARTHA_TASK", "regress"),
        ("ARTHA_OPTIMIZER", "sgd"),
        ("ARTHA_MOMENTUM", "0.9"),
        ("LEARNING_RATE", "0.02"),
        ("EPOCHS", "30"),
        ("BATCH_SIZE", "20"),
        ("ARTHA_HIDDEN", "32"),
        ("ARTHA_SEED", "11"),
    ]);
    let out = job.run_ok(&[]);
    let steps = out.steps();
    assert_contiguous(&steps, 1, 600);
    let var = variance(&train.y);
    let last = last_epoch_loss(&steps);
    assert!(
        last < 0.05 * var,
        "last epoch's MSE {last}, variance of y {var}"
    );

    let test = regression(4, 100);
    let (xt, _) = test.npy();
    let (_, header, rows) = serve(&job, &xt, "inputs.npy", &[]);
    assert_eq!(header, ["y0"]);
    let mse = rows
        .iter()
        .zip(&test.y)
        .map(|(r, &y)| f64::from(r[0] - y).powi(2))
        .sum::<f64>()
        / test.y.len() as f64;
    assert!(mse < 0.05 * variance(&test.y), "held-out MSE {mse}");
}

#[test]
fn logistic_regression_with_sgd_separates_two_classes() {
    let train = blobs(5, 200, 2, 2, 4.0);
    let mut job = Job::new();
    job.data_file("data.csv", &train.csv());
    job.set(&[
        ("ARTHA_MODEL_KIND", "logreg"),
        ("ARTHA_OPTIMIZER", "sgd"),
        ("LEARNING_RATE", "0.1"),
        ("EPOCHS", "10"),
        ("BATCH_SIZE", "16"),
    ]);
    let out = job.run_ok(&[]);
    let steps = out.steps();
    assert_contiguous(&steps, 1, 130);
    let last = last_epoch_loss(&steps);
    assert!(last < 0.2, "last epoch's loss {last}");
    // The training file itself as inputs: its label column is dropped.
    let (_, header, rows) = serve(&job, &train.csv(), "inputs.csv", &[]);
    assert_eq!(header, ["prediction", "p0", "p1"]);
    let acc = accuracy(&rows, &train);
    assert!(acc >= 0.95, "training accuracy {acc}");
}

/// The determinism benchmark-sized job: big enough that the products run
/// on the rayon pool (rows are split across threads).
fn parallel_job() -> Job {
    let train = blobs(9, 512, 16, 4, 2.0);
    let mut job = Job::new();
    job.data_file("train.csv", &train.csv());
    job.set(&[
        ("EPOCHS", "3"),
        ("BATCH_SIZE", "64"),
        ("LEARNING_RATE", "0.005"),
        ("ARTHA_SEED", "42"),
        ("ARTHA_HIDDEN", "64,32"),
        ("ARTHA_CHECKPOINT_EVERY", "10"),
    ]);
    job
}

#[test]
fn same_inputs_give_the_same_records_on_any_thread_count() {
    let job = parallel_job();
    let run = |threads: &str| {
        let out = job.run_with(&[], &[("RAYON_NUM_THREADS", threads)]);
        out.assert_ok();
        let bytes = job.checkpoint_bytes("final.safetensors");
        let mid = job.checkpoint_bytes("step-00000010.safetensors");
        (out.proof_events(), bytes, mid)
    };
    let reference = run("1");
    assert_contiguous(
        &reference
            .0
            .iter()
            .filter_map(|e| match e {
                RuntimeEvent::Step(s) => Some(*s),
                _ => None,
            })
            .collect::<Vec<_>>(),
        1,
        24,
    );
    for threads in ["2", "3", "1"] {
        let again = run(threads);
        // Every step record, checkpoint event and the final digest…
        assert_eq!(again.0, reference.0, "RAYON_NUM_THREADS={threads}");
        // …and the checkpoint files byte for byte (so their CIDs agree).
        assert!(
            again.1 == reference.1,
            "final checkpoint, {threads} threads"
        );
        assert!(
            again.2 == reference.2,
            "step-10 checkpoint, {threads} threads"
        );
    }
    // A different seed is a different run (the comparison above can fail).
    let other = job.run_with(&[], &[("ARTHA_SEED", "43")]);
    other.assert_ok();
    let (a, b) = (other.steps(), reference.0.clone());
    assert_ne!(RuntimeEvent::Step(a[0]), b[0]);
}

/// Resuming from the checkpoint after step `k` gives the steps after `k`
/// of the uninterrupted run, the same final weights and the same final
/// checkpoint, for both optimizers (their state is in the checkpoint).
#[test]
fn resume_from_a_mid_checkpoint_equals_the_uninterrupted_run() {
    for optimizer in [
        &[("ARTHA_OPTIMIZER", "adamw")][..],
        &[("ARTHA_OPTIMIZER", "sgd"), ("ARTHA_MOMENTUM", "0.9")],
    ] {
        let mut full = parallel_job();
        full.set(optimizer).set(&[("ARTHA_CHECKPOINT_EVERY", "7")]);
        let whole = full.run_ok(&[]);
        let steps = whole.steps();
        assert_eq!(steps.len(), 24);

        // A fresh job directory holding only the step-14 checkpoint (mid
        // epoch 1: 8 steps an epoch), resumed with `latest`.
        let mut part = parallel_job();
        part.set(optimizer).set(&[
            ("ARTHA_CHECKPOINT_EVERY", "7"),
            ("ARTHA_RESUME", "latest"),
            ("RAYON_NUM_THREADS", "2"),
        ]);
        std::fs::copy(
            full.checkpoints.join("step-00000014.safetensors"),
            part.checkpoints.join("step-00000014.safetensors"),
        )
        .unwrap();
        let resumed = part.run_ok(&[]);
        assert_eq!(resumed.steps(), steps[14..], "{optimizer:?}");
        // `complete` counts the job's steps, those before the checkpoint too.
        assert_eq!(resumed.complete(), whole.complete());
        assert_eq!(
            resumed.checkpoints(),
            [
                ("step-00000021.safetensors".to_string(), 21),
                ("final.safetensors".to_string(), 24)
            ]
        );
        for name in ["step-00000021.safetensors", "final.safetensors"] {
            assert!(
                part.checkpoint_bytes(name) == full.checkpoint_bytes(name),
                "{name} differs after resume ({optimizer:?})"
            );
        }
    }
}

/// What an audit does (DESIGN §6): build the job's Merkle tree from the
/// reported steps, take a window's start checkpoint, replay the window
/// elsewhere with `ARTHA_RESUME` + `ARTHA_MAX_STEPS`, and compare leaves.
#[test]
fn replaying_a_window_from_its_checkpoint_reproduces_its_leaves() {
    const W: u64 = 6;
    let mut worker = parallel_job();
    worker
        .set(&[("ARTHA_PROOF_WINDOW", "6")])
        .unset("ARTHA_CHECKPOINT_EVERY");
    let out = worker.run_ok(&[]);
    let steps = out.steps();
    let tree = JobTree::build(&steps, W as u32).unwrap();
    assert_eq!(tree.window_roots().len(), 4);
    // Checkpoints land at every window boundary (the default interval is
    // the proof window).
    let boundaries: Vec<u64> = out.checkpoints().iter().map(|c| c.1).collect();
    assert_eq!(boundaries, [6, 12, 18, 24, 24]);

    for window in [0u64, 2, 3] {
        let k = window * W;
        let mut verifier = parallel_job();
        verifier.set(&[
            ("ARTHA_PROOF_WINDOW", "6"),
            ("ARTHA_MAX_STEPS", &(k + W).to_string()),
            ("RAYON_NUM_THREADS", "3"),
        ]);
        if k > 0 {
            // An absolute path: the worker's own checkpoint, read-only.
            let ck = worker.checkpoints.join(format!("step-{k:08}.safetensors"));
            verifier.set(&[("ARTHA_RESUME", ck.to_str().unwrap())]);
        }
        let replay = verifier.run_ok(&[]);
        let replayed = replay.steps();
        assert_contiguous(&replayed, k + 1, k + W);
        let leaves: Vec<_> = replayed.iter().map(|s| s.leaf()).collect();
        let want = tree.window(window as usize).unwrap();
        assert_eq!(leaves, want.leaves(), "window {window}");
        assert_eq!(
            MerkleTree::from_steps(&replayed).unwrap().root(),
            want.root(),
            "window {window}"
        );
        assert_eq!(replay.complete().0, k + W);
    }
}

#[test]
fn inference_reports_digests_of_what_it_read_and_wrote() {
    let train = blobs(12, 120, 3, 2, 2.0);
    let mut job = Job::new();
    job.data_file("train.csv", &train.csv());
    job.set(&[
        ("EPOCHS", "5"),
        ("BATCH_SIZE", "16"),
        ("LEARNING_RATE", "0.01"),
    ]);
    let trained = job.run_ok(&[]);
    let test = blobs(13, 110, 3, 2, 2.0);
    let extra = [("BATCH_SIZE", "50")];
    let (server, header, rows) = serve(&job, &test.inputs_csv(), "inputs.csv", &extra);
    assert_eq!(header.len(), 3);
    // Batches of 50, 50 and 10 rows: one `infer` event each.
    let out = server.run_ok(&["infer"]);
    let infers = out.infers();
    assert_eq!(infers.len(), 3);
    let x = test.flat_x();
    let probs: Vec<f32> = rows.iter().flat_map(|r| r[1..].to_vec()).collect();
    let mut at = 0;
    for (rec, n) in infers.iter().zip([50usize, 50, 10]) {
        let want_in = tensor_digest_f32(&[n as u64, 3], &x[at * 3..(at + n) * 3]).unwrap();
        let want_out = tensor_digest_f32(&[n as u64, 2], &probs[at * 2..(at + n) * 2]).unwrap();
        assert_eq!(rec.input_digest, want_in);
        assert_eq!(rec.output_digest, want_out);
        at += n;
    }
    // `complete` names the weights served: the training run's final ones.
    assert_eq!(out.complete(), (0, trained.complete().1));
    // The predictions are the arg-max of the probabilities.
    for r in &rows {
        let best = if r[2] > r[1] { 1.0 } else { 0.0 };
        assert_eq!(r[0], best, "{r:?}");
    }
    // Serving again gives the same events and the same file.
    let before = std::fs::read(server.checkpoints.join("predictions.csv")).unwrap();
    let again = server.run_ok(&["infer"]);
    assert_eq!(again.proof_events(), out.proof_events());
    assert_eq!(
        std::fs::read(server.checkpoints.join("predictions.csv")).unwrap(),
        before
    );
}

/// `$ARTHA_MODEL_DIR/model.safetensors` gives the initial weights of a
/// new run (fine-tuning): step 1 starts from them, with a fresh optimizer.
#[test]
fn model_weights_in_the_model_dir_start_a_new_run() {
    let train = blobs(14, 96, 2, 2, 2.0);
    let mut a = Job::new();
    a.data_file("train.csv", &train.csv());
    a.set(&[("EPOCHS", "2"), ("BATCH_SIZE", "16")]);
    let first = a.run_ok(&[]);
    let mut b = Job::new();
    b.data_file("train.csv", &train.csv());
    b.set(&[("EPOCHS", "1"), ("BATCH_SIZE", "16")]);
    let scratch = b.run_ok(&[]);
    std::fs::copy(
        a.checkpoints.join("final.safetensors"),
        b.model.join("model.safetensors"),
    )
    .unwrap();
    let tuned = b.run_ok(&[]);
    assert_contiguous(&tuned.steps(), 1, 6);
    assert!(
        tuned.stdout.contains("Started from"),
        "the banner names the initial weights"
    );
    // Same batches as the run from scratch (same seed), other weights.
    assert_eq!(
        tuned.steps()[0].batch_digest,
        scratch.steps()[0].batch_digest
    );
    assert_ne!(
        tuned.steps()[0].weight_digest,
        scratch.steps()[0].weight_digest
    );
    assert!(tuned.steps()[0].loss < first.steps()[0].loss);
}
