//! Unit tests of the bench's own logic: `cargo test --example spawn_bench`.

use crate::peers::parse_result;
use crate::rows::{OUTPUT_ROWS, Row, STATUS_ROWS};

#[test]
fn help_explains_every_row_and_the_ratios() {
    let help = crate::cli::HELP;
    for row in Row::all() {
        let key = row.key();
        assert!(
            help.lines().any(|l| {
                let l = l.trim_start();
                l.starts_with(key) && l[key.len()..].starts_with([' ', ',', '\n'])
                    || l.split(", ").any(|k| k.trim() == key)
                    || l == key
            }),
            "--help does not describe row {key}"
        );
    }
    for words in [
        "vs std",
        "vs floor",
        "cpu µs",
        "THE FLOOR",
        "How long it takes",
    ] {
        assert!(help.contains(words), "--help does not say {words:?}");
    }
    assert!(
        !help.contains('@'),
        "a measurement placeholder is left in help.txt"
    );
}

#[test]
fn keys_are_unique_and_rows_have_references() {
    let keys: Vec<_> = Row::all().map(Row::key).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), keys.len());
    for row in Row::all() {
        let refs = [row.std_ref(), row.floor_ref()];
        let set: &[Row] = if row.is_output() {
            &OUTPUT_ROWS
        } else {
            &STATUS_ROWS
        };
        assert!(refs.iter().all(|r| set.contains(r)), "{}", row.key());
    }
}

#[test]
fn peer_results_parse_and_bad_ones_are_refused() {
    let r = parse_result(
        "forkexec-peer version go1.19.8 status 256 bytes 12 wall_ns 3000 cpu_ns 500 samples 1000 2000\n",
        2,
    )
    .unwrap();
    assert_eq!((r.status, r.bytes, r.samples), (256, 12, vec![1000, 2000]));
    assert_eq!(r.version, "go1.19.8");
    assert_eq!(r.cpu.as_nanos(), 500);
    for bad in [
        "",
        "forkexec-peer version x status 0 bytes 0 wall_ns 1 cpu_ns 1 samples 5",
        "forkexec-peer version x status 0 bytes 0 wall_ns 1 cpu_ns 1 samples 5 6 7",
        "forkexec-peer version x status zero bytes 0 wall_ns 1 cpu_ns 1 samples 5 6",
        "peer version x status 0 bytes 0 wall_ns 1 cpu_ns 1 samples 5 6",
    ] {
        assert!(parse_result(bad, 2).is_err(), "{bad:?}");
    }
}

#[test]
fn tiny_elf_is_132_bytes_of_elf() {
    let elf = crate::tiny::tiny_elf();
    assert_eq!(elf.len(), 132);
    assert_eq!(&elf[..4], b"\x7fELF");
}

#[test]
fn quantiles_interpolate() {
    let q = crate::measure::quantile;
    assert_eq!(q(&[10, 20, 30], 0.5), 20.0);
    assert_eq!(q(&[10, 20], 0.5), 15.0);
    assert_eq!(q(&[7], 0.9), 7.0);
}
