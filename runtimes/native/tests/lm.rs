//! The language model (`runtimes/LM.md`) through the binary: it learns,
//! is bit-identical on any thread count, resumes and replays a window bit
//! for bit, generates (greedy and seeded), and refuses bad input by field.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use artha_core::merkle::JobTree;
use common::*;

/// A small corpus: sentences drawn from a fixed vocabulary (seeded).
fn corpus(seed: u64, words: usize) -> String {
    const VOCAB: &[&str] = &[
        "the", "node", "proves", "every", "step", "of", "a", "small", "model", "verifier",
        "replays", "window", "and", "pays", "for", "work",
    ];
    let mut g = Gen::new(seed);
    let mut s = String::new();
    for i in 0..words {
        s.push_str(VOCAB[(g.u64() % VOCAB.len() as u64) as usize]);
        s.push(if i % 9 == 8 { '.' } else { ' ' });
    }
    s
}

fn lm_job(tokenizer: &str) -> Job {
    let mut job = Job::new();
    job.data_file("train.txt", corpus(3, 700).as_bytes());
    std::fs::write(
        job.model.join("config.json"),
        format!(
            r#"{{"kind": "llama", "tokenizer": "{tokenizer}", "hidden_size": 32,
                "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
                "max_position_embeddings": 32}}"#
        ),
    )
    .unwrap();
    job.set(&[
        ("EPOCHS", "2"),
        ("BATCH_SIZE", "8"),
        ("LEARNING_RATE", "0.01"),
        ("ARTHA_SEED", "11"),
        ("ARTHA_SEQ_LEN", "24"),
        ("ARTHA_PROOF_WINDOW", "5"),
    ]);
    job
}

#[test]
fn the_lm_learns_and_is_the_same_on_any_thread_count() {
    let job = lm_job("char");
    let run = |threads: &str| {
        let out = job.run_with(&[], &[("RAYON_NUM_THREADS", threads)]);
        out.assert_ok();
        (out, job.checkpoint_bytes("final.safetensors"))
    };
    let (one, final_one) = run("1");
    let steps = one.steps();
    // Rows of 24 characters (and the next), 8 a batch, 2 epochs.
    let rows = (corpus(3, 700).chars().count() - 1) / 24;
    let n = 2 * rows.div_ceil(8);
    assert_eq!(steps.len(), n);
    assert_contiguous(&steps, 1, n as u64);
    let (first, last) = (steps[0].loss, steps[n - 1].loss);
    // Step 1 is near ln(vocabulary) (a small init), and the loss falls.
    let vocab = {
        let mut c: Vec<char> = corpus(3, 700).chars().collect();
        c.sort_unstable();
        c.dedup();
        c.len() as f64
    };
    assert!(
        (first - vocab.ln()).abs() < 0.1,
        "first loss {first}, ln V {}",
        vocab.ln()
    );
    assert!(last < 0.6 * first, "loss {first} -> {last}");
    let (two, final_two) = run("2");
    assert_eq!(two.proof_events(), one.proof_events());
    assert!(final_two == final_one, "final checkpoints differ");
    let (three, _) = run("3");
    assert_eq!(three.proof_events(), one.proof_events());
    // Another seed is another run (the comparison above can fail).
    let other = job.run_with(&[], &[("ARTHA_SEED", "12")]);
    other.assert_ok();
    assert_ne!(other.steps()[0], steps[0]);
}

#[test]
fn the_lm_resumes_and_replays_a_window_bit_for_bit() {
    let worker = lm_job("byte");
    let out = worker.run_ok(&[]);
    let steps = out.steps();
    let n = steps.len() as u64;
    assert!(n > 20, "{n} steps");
    // Resume from the step-10 checkpoint in a fresh job directory.
    let mut part = lm_job("byte");
    part.set(&[("ARTHA_RESUME", "latest"), ("RAYON_NUM_THREADS", "2")]);
    std::fs::copy(
        worker.checkpoints.join("step-00000010.safetensors"),
        part.checkpoints.join("step-00000010.safetensors"),
    )
    .unwrap();
    let resumed = part.run_ok(&[]);
    assert_eq!(resumed.steps(), steps[10..]);
    assert_eq!(resumed.complete(), out.complete());
    assert!(
        part.checkpoint_bytes("final.safetensors") == worker.checkpoint_bytes("final.safetensors")
    );
    // Replay window 3 (steps 16..=20) from its checkpoint, as a verifier.
    let tree = JobTree::build(&steps, 5).unwrap();
    let mut verifier = lm_job("byte");
    let ck = worker.checkpoints.join("step-00000015.safetensors");
    verifier.set(&[
        ("ARTHA_RESUME", ck.to_str().unwrap()),
        ("ARTHA_MAX_STEPS", "20"),
        ("RAYON_NUM_THREADS", "3"),
    ]);
    let replay = verifier.run_ok(&[]);
    let leaves: Vec<_> = replay.steps().iter().map(|s| s.leaf()).collect();
    assert_eq!(leaves, tree.window(3).unwrap().leaves());
    // A checkpoint of another sequence length is another dataset.
    let mut wrong = lm_job("byte");
    wrong.set(&[
        ("ARTHA_RESUME", ck.to_str().unwrap()),
        ("ARTHA_SEQ_LEN", "16"),
    ]);
    wrong.run(&[]).assert_failed(2, "dataset");
}

#[test]
fn the_lm_generates_greedily_or_by_seeded_sampling() {
    let trainer = lm_job("char");
    trainer.run_ok(&[]);
    let mut job = Job::new();
    std::fs::copy(
        trainer.checkpoints.join("final.safetensors"),
        job.model.join("final.safetensors"),
    )
    .unwrap();
    job.data_file("prompts.txt", b"the node\n\nverifier replays\n");
    let out_dir = job.root.path().join("out");
    job.set(&[
        ("ARTHA_MODE", "infer"),
        ("ARTHA_OUTPUT_DIR", out_dir.to_str().unwrap()),
        ("ARTHA_MAX_NEW_TOKENS", "30"),
    ]);
    let read = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(out_dir.join("generations.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let greedy = job.run_ok(&[]);
    assert_eq!(greedy.infers().len(), 3);
    let g = read();
    assert_eq!(g.len(), 3);
    assert_eq!(g[0]["prompt"], "the node");
    assert_eq!(g[1]["prompt"], "");
    assert_eq!(g[0]["tokens"].as_array().unwrap().len(), 30);
    assert_eq!(g[0]["completion"].as_str().unwrap().chars().count(), 30);
    let again = job.run_ok(&[]);
    assert_eq!(again.infers(), greedy.infers());
    let sampled = job.run_with(&[], &[("ARTHA_TEMPERATURE", "1.0"), ("ARTHA_SEED", "1")]);
    sampled.assert_ok();
    let s1 = read();
    let same = job.run_with(&[], &[("ARTHA_TEMPERATURE", "1.0"), ("ARTHA_SEED", "1")]);
    assert_eq!(read(), s1);
    assert_eq!(same.infers(), sampled.infers());
    let other = job.run_with(&[], &[("ARTHA_TEMPERATURE", "1.0"), ("ARTHA_SEED", "2")]);
    other.assert_ok();
    assert_ne!(other.infers(), sampled.infers());
    assert_ne!(sampled.infers(), greedy.infers());
    // A prompt character outside the model's alphabet is refused by line.
    job.data_file("prompts.txt", "the node\nthe nöde\n".as_bytes());
    job.run(&[]).assert_failed(2, "alphabet");
}

#[test]
fn bad_lm_configurations_and_texts_are_refused_by_field() {
    let with_config = |config: &str| {
        let job = lm_job("byte");
        std::fs::write(job.model.join("config.json"), config).unwrap();
        job
    };
    for (config, field) in [
        (r#"{"kind": "gpt"}"#, "config.json"),
        (
            r#"{"kind": "llama", "hidden_size": 30, "num_attention_heads": 4}"#,
            "num_attention_heads",
        ),
        (
            r#"{"kind": "llama", "num_hidden_layers": 0}"#,
            "num_hidden_layers",
        ),
        (r#"{"kind": "llama", "vocab_size": 100}"#, "vocab_size"),
        (
            r#"{"kind": "llama", "tokenizer": "char", "vocab_size": 5}"#,
            "vocab_size",
        ),
        (
            r#"{"kind": "llama", "max_position_embeddings": 16}"#,
            "ARTHA_SEQ_LEN",
        ),
    ] {
        let out = with_config(config).run(&[]);
        assert_eq!(out.code, Some(2), "{config}: {:?}", out.events);
        let errors = out.errors();
        assert_eq!(errors.len(), 1, "{config}");
        assert!(
            errors[0].contains(field),
            "{config}: `{}` should name {field}",
            errors[0]
        );
        assert!(out.steps().is_empty());
    }
    // Invalid UTF-8 under the char tokenizer names the file.
    let job = lm_job("char");
    job.data_file(
        "train.txt",
        b"valid text \xff\xfe and more text to make rows",
    );
    job.run(&[]).assert_failed(2, "UTF-8");
    // Text too short for one sequence.
    let job = lm_job("byte");
    job.data_file("train.txt", b"short");
    job.run(&[]).assert_failed(2, "too short");
    // A text file for an MLP, and no text for the LM.
    let mut job = lm_job("byte");
    std::fs::remove_file(job.model.join("config.json")).unwrap();
    job.set(&[("ARTHA_MODEL_KIND", "mlp")]);
    let out = job.run(&[]);
    assert_eq!(out.code, Some(2));
    let job = lm_job("byte");
    std::fs::remove_file(job.data.join("train.txt")).unwrap();
    job.data_file("train.csv", b"x,y\n1,0\n");
    job.run(&[]).assert_failed(2, ".txt");
}
