//! Example: describe a training job, check it, price it, and build the
//! proof commitment of a (tiny, real) gradient-descent run the way the
//! engine does.
//!
//! Run: `cargo run -p artha-core --example proofs`

use artha_core::{
    Amount, ArthaUri, Cid, CostModel, InputRef, JobKind, JobSpec, JobTree, Runtime, StepRecord,
    tensor_digest_f32,
};

fn main() -> Result<(), artha_core::Error> {
    // 1. Content ids: the dataset's bytes name it.
    let data: Vec<(f32, f32)> = (0..32)
        .map(|i| (i as f32 / 8.0, 3.0 * i as f32 / 8.0 + 1.0))
        .collect();
    let bytes: Vec<u8> = data
        .iter()
        .flat_map(|(x, y)| [x.to_le_bytes(), y.to_le_bytes()].concat())
        .collect();
    let dataset = ArthaUri::new(Cid::of(&bytes));
    println!("dataset  {dataset}");

    // 2. A spec, validated against a price.
    let mut spec = JobSpec::new(
        JobKind::Train,
        Runtime::Native("linreg".into()),
        Amount::parse_arth("1")?,
    );
    spec.dataset = Some(InputRef::Uri(dataset));
    spec.hyper.epochs = 4;
    spec.hyper.batch_size = 8;
    spec.hyper.learning_rate = 0.05;
    spec.resources.max_duration_secs = 60;
    spec.proof_window = 4;
    let pricing = CostModel::new(Amount::parse_arth("0.001")?);
    spec.validate_with(&pricing)?;
    let estimate = pricing.estimate(&spec)?;
    println!(
        "estimate {} GPU-s → {}",
        estimate.gpu_seconds, estimate.cost
    );

    // 3. Train y = w·x + b by mini-batch gradient descent, recording each step.
    let (mut w, mut b) = (0.0f32, 0.0f32);
    let mut records = Vec::new();
    let mut step = 0u64;
    for epoch in 0..spec.hyper.epochs {
        for batch in data.chunks(spec.hyper.batch_size as usize) {
            let n = batch.len() as f32;
            let (mut gw, mut gb, mut loss) = (0.0f32, 0.0f32, 0.0f32);
            for &(x, y) in batch {
                let err = w * x + b - y;
                gw += 2.0 * err * x / n;
                gb += 2.0 * err / n;
                loss += err * err / n;
            }
            w -= spec.hyper.learning_rate as f32 * gw;
            b -= spec.hyper.learning_rate as f32 * gb;
            step += 1;
            let batch_bytes: Vec<u8> = batch
                .iter()
                .flat_map(|(x, y)| [x.to_le_bytes(), y.to_le_bytes()].concat())
                .collect();
            records.push(StepRecord {
                step,
                epoch,
                loss: f64::from(loss),
                grad_digest: tensor_digest_f32(&[2], &[gw, gb])?,
                weight_digest: tensor_digest_f32(&[2], &[w, b])?,
                batch_digest: artha_core::Blake3Digest::of(&batch_bytes),
            });
        }
    }
    let first = records.first().map_or(0.0, |r| r.loss);
    let last = records.last().map_or(0.0, |r| r.loss);
    println!("trained  {step} steps, loss {first:.3} → {last:.3}, w={w:.3} b={b:.3}");

    // 4. The commitment: window roots and the one job root that goes on chain.
    let tree = JobTree::build(&records, spec.proof_window)?;
    println!("windows  {}", tree.window_roots().len());
    println!("job root {}", tree.root());
    let proof = tree.prove_step(5)?;
    assert!(proof.verify(&tree.root(), &records[5].leaf()));
    println!("step 6 is proven under the job root");
    Ok(())
}
