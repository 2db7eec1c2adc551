//! Shared set-up for the executor tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

pub use artha_engine::testing::executor::{job_dir, launch_spec};

/// The `artha-testrt` binary built next to this test binary.
pub fn testrt_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join("artha-testrt");
    assert!(
        bin.exists(),
        "{} missing: run `cargo build -p artha-testrt` (the test entry point does)",
        bin.display()
    );
    bin
}

/// The `FROM scratch` test image tag, from `ARTHA_TESTRT_IMAGE` (set by
/// tests/run.sh). `None` outside CI when unset (the test is skipped with a
/// message); under `CI=true` a missing image fails the test.
pub fn testrt_image() -> Option<String> {
    match std::env::var("ARTHA_TESTRT_IMAGE") {
        Ok(t) if !t.is_empty() => Some(t),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "ARTHA_TESTRT_IMAGE is not set: under CI the Docker executor suite must run"
            );
            eprintln!("skipping: ARTHA_TESTRT_IMAGE not set (run via tests/run.sh)");
            None
        }
    }
}

/// Defines one `#[tokio::test]` per scenario of the public executor suite
/// (`artha_engine::testing::executor`), each on a fresh executor from
/// `$setup` (an async fn returning `Option<(TempDir, Executor,
/// ExecutorFixture)>`; `None`: not configured here, the test passes
/// without checking), and a test that the list is the suite's.
#[macro_export]
macro_rules! executor_scenarios {
    ($setup:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some((_tmp, ex, fx)) = $setup().await {
                    artha_engine::testing::executor::run_scenario(stringify!($name), &ex, &fx)
                        .await;
                }
            }
        )*

        #[test]
        fn every_executor_scenario_has_a_test() {
            assert_eq!(
                [$(stringify!($name)),*].as_slice(),
                artha_engine::testing::executor::SCENARIOS
            );
        }
    };
    ($setup:path) => {
        $crate::executor_scenarios!($setup;
            declares_the_runtime_it_runs,
            launch_writes_events_and_exits_zero,
            failing_program_exits_non_zero,
            stop_ends_a_sleeping_job,
            logs_in_order_and_since_skips,
            remove_is_idempotent,
            list_contains_a_launched_handle,
            second_launch_is_refused,
        );
    };
}
