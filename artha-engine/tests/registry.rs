//! Datasets and models on a real engine (embedded chain): a dataset's
//! licence and a model's code hash go on chain and into the catalog; the
//! engine lists both registries, walks a model's lineage, lists its node,
//! and refuses a catalog entry that no longer matches the chain.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use artha_core::{ArthaUri, Cid, DatasetId, ErrorKind, KeccakHash, Registry};
use artha_engine::Engine;
use artha_engine::engine::{DatasetMeta, DockerChoice, ModelRegistration};

async fn engine(home: &std::path::Path) -> Engine {
    Engine::builder()
        .home(home)
        .docker(DockerChoice::Off)
        .simulated_gpus(2)
        .build()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registries_hold_licences_code_hashes_and_lineage_and_catch_a_tampered_catalog() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let e = engine(&home).await;
    let write = |name: &str, text: &str| {
        let p = tmp.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let data = write("data.csv", "x0,x1,label\n0,1,0\n1,0,1\n");
    let licence = e
        .push(&write("LICENSE", "CC-BY-4.0, for testing"))
        .await
        .unwrap()
        .uri;

    // A licence must be stored.
    let missing = ArthaUri::new(Cid::of(b"never stored"));
    let err = e
        .register_dataset_path(
            &data,
            &DatasetMeta {
                name: "corpus".into(),
                license: Some(missing),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert_eq!(err.context_value("field"), Some("license"), "{err}");

    let ds = e
        .register_dataset_path(
            &data,
            &DatasetMeta {
                name: "corpus".into(),
                tags: "nlp,english,gpt".into(),
                license: Some(licence.clone()),
            },
        )
        .await
        .unwrap();
    assert_eq!(ds.license.as_deref(), Some(licence.to_string().as_str()));
    assert_eq!(ds.tags, "nlp,english,gpt");
    let on_chain = e.chain().dataset(&ds.id).await.unwrap();
    assert_eq!(on_chain.license, Some(*licence.cid()));
    assert_eq!(on_chain.tags, "nlp,english,gpt");
    let plain = e
        .register_dataset_path(&data, &artha_engine::engine::DatasetMeta::named("plain"))
        .await
        .unwrap();
    assert_eq!(plain.license, None);
    assert_eq!(e.chain().dataset(&plain.id).await.unwrap().license, None);

    // A base model (default code hash) and a fine-tune of it.
    let weights = e.push(&write("w0.bin", "weights v0")).await.unwrap().uri;
    let base = e
        .register_model(
            &weights,
            &ModelRegistration {
                name: "base".into(),
                architecture: "llama".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(base.code_hash, KeccakHash::of(b"llama").to_string());
    let code = KeccakHash::of(b"train.py at abc123");
    let tuned_weights = e.push(&write("w1.bin", "weights v1")).await.unwrap().uri;
    let tuned = e
        .register_model(
            &tuned_weights,
            &ModelRegistration {
                name: "tuned".into(),
                architecture: "llama".into(),
                version: "v1.0".into(),
                parent: Some(base.id),
                dataset: Some(ds.id),
                code_hash: Some(code),
            },
        )
        .await
        .unwrap();
    assert_eq!(tuned.code_hash, code.to_string());
    assert_eq!(tuned.version, "v1.0");
    let record = e.chain().model(&tuned.id).await.unwrap();
    assert_eq!(record.code_hash, code);
    assert_eq!(record.parent, Some(base.id));

    // Listings, newest first; reads checked against the chain.
    assert_eq!(e.datasets().unwrap(), vec![plain.clone(), ds.clone()]);
    assert_eq!(e.models().unwrap(), vec![tuned.clone(), base.clone()]);
    assert_eq!(e.dataset(&ds.id).await.unwrap(), ds);
    assert_eq!(e.model(&tuned.id).await.unwrap(), tuned);
    let unknown = DatasetId::derive(&[b"unknown"]);
    let err = e.dataset(&unknown).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert_eq!(
        err.context_value("dataset_id"),
        Some(unknown.to_string().as_str())
    );
    assert_eq!(
        e.lineage(&tuned.id).await.unwrap(),
        vec![tuned.clone(), base.clone()]
    );

    // This engine's node, with its standing on chain.
    let nodes = e.nodes().await.unwrap();
    assert_eq!(nodes.len(), 1, "{nodes:?}");
    let n = &nodes[0];
    assert_eq!(n.id, e.node_id());
    assert!(n.standing.active && n.standing.eligible, "{n:?}");
    assert_eq!((n.gpus_total, n.gpus_free), (2, 2));
    assert!(n.runtimes.iter().any(|r| r == "mlp"), "{n:?}");
    let json = serde_json::to_string(n).unwrap();
    assert_eq!(
        &serde_json::from_str::<artha_engine::engine::NodeInfo>(&json).unwrap(),
        n
    );

    let db = rusqlite::Connection::open(home.join("jobs/catalog.db")).unwrap();
    // An ancestor the catalog lacks appears with what the chain holds.
    db.execute("DELETE FROM models WHERE id = ?1", [base.id.to_string()])
        .unwrap();
    let lineage = e.lineage(&tuned.id).await.unwrap();
    assert_eq!(lineage[0], tuned);
    let from_chain = &lineage[1];
    assert_eq!(from_chain.id, base.id);
    assert_eq!(from_chain.uri, base.uri);
    assert_eq!(from_chain.code_hash, base.code_hash);
    assert_eq!(
        (
            from_chain.architecture.as_str(),
            from_chain.version.as_str()
        ),
        ("llama", "1")
    );
    assert_eq!(e.models().unwrap(), vec![tuned.clone()]);

    // Tampered rows: each is `Corrupted`, naming the entry and the field.
    let corrupted = |r: artha_core::Result<()>, key: &str, id: String, field: &str| {
        let err = r.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupted, "{err}");
        assert_eq!(err.context_value(key), Some(id.as_str()), "{err}");
        assert_eq!(err.context_value("field"), Some(field), "{err}");
    };
    db.execute(
        "UPDATE datasets SET license = ?1 WHERE id = ?2",
        [weights.to_string(), ds.id.to_string()],
    )
    .unwrap();
    corrupted(
        e.dataset(&ds.id).await.map(|_| ()),
        "dataset_id",
        ds.id.to_string(),
        "license",
    );
    db.execute(
        "UPDATE datasets SET license = NULL, uri = ?1 WHERE id = ?2",
        [weights.to_string(), plain.id.to_string()],
    )
    .unwrap();
    corrupted(
        e.dataset(&plain.id).await.map(|_| ()),
        "dataset_id",
        plain.id.to_string(),
        "uri",
    );
    db.execute(
        "UPDATE models SET code_hash = ?1 WHERE id = ?2",
        [KeccakHash::of(b"other").to_string(), tuned.id.to_string()],
    )
    .unwrap();
    corrupted(
        e.model(&tuned.id).await.map(|_| ()),
        "model_id",
        tuned.id.to_string(),
        "code_hash",
    );
    corrupted(
        e.lineage(&tuned.id).await.map(|_| ()),
        "model_id",
        tuned.id.to_string(),
        "code_hash",
    );
    drop(db);
    e.shutdown().await;
}
