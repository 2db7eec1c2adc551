//! One test per scenario of the public store suite
//! (`artha_engine::testing::store`), for `store_local.rs` and
//! `store_s3.rs`.

/// Defines one `#[tokio::test]` per scenario, each running it on a fresh
/// harness from `$make` (an async fn returning `Option<Harness<B>>`;
/// `None`: the backend is not configured here, the maker said why, and the
/// test passes without checking), and a test that the list is the suite's.
#[macro_export]
macro_rules! store_scenarios {
    ($make:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(h) = $make().await {
                    artha_engine::testing::store::run_scenario(stringify!($name), h).await;
                }
            }
        )*

        #[test]
        fn every_store_scenario_has_a_test() {
            assert_eq!(
                [$(stringify!($name)),*].as_slice(),
                artha_engine::testing::store::SCENARIOS
            );
        }
    };
    ($make:path) => {
        $crate::store_scenarios!($make;
            blob_contract,
            file_round_trip,
            tree_round_trip_and_dedup,
            materialize_read_only,
            corruption_is_detected,
            missing_content_is_reported,
            traversal_is_refused,
            pins_and_gc,
            verify_clean,
            concurrent_tasks,
            push_errors,
            manifest_bomb_is_refused,
            oversized_directory_is_refused,
            tree_limits_are_exact,
        );
    };
}
