//! The command line answers `--help` and mistakes with its usage, never a backtrace, and before
//! it reads any setting or touches any store.

use std::process::Command;

fn worker(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_checkout-worker"))
        .args(args)
        .env("RUST_BACKTRACE", "1")
        // A setting that would fail to parse: proves the usage comes before settings are read.
        .env("WORKER_MAX_BATCH", "not a number")
        .output()
        .expect("the worker binary runs")
}

#[test]
fn help_prints_the_usage_and_succeeds() {
    for flag in ["--help", "-h", "help"] {
        let out = worker(&[flag]);
        assert!(out.status.success(), "{flag}: {out:?}");
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("usage: checkout-worker"));
        assert!(out.stderr.is_empty(), "{flag}: {out:?}");
    }
}

#[test]
fn mistakes_print_the_usage_and_exit_2_without_a_backtrace() {
    for args in [
        &["bogus"][..],
        &["delete-topics"],
        &["park-record", "1"],
        &["park-record", "x", "2"],
    ] {
        let out = worker(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("usage: checkout-worker"), "{args:?}: {err}");
        assert!(
            !err.contains("backtrace") && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
}
